"""Every chapter ends with exercises a student can run with the kit as it is: their pipeline overrides are
accepted as written (``--show``: keys, types and values checked, nothing run), and the other commands they
name exist."""
from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from fvos_utils import cli
from fvos_utils.base import paths
from fvos_utils.run import pipeline

CHAPTERS = pipeline.CHAPTERS


def exercises(chapter: str) -> list[str]:
    """The numbered items of the chapter's last cell, which must be its exercises."""
    cells = json.loads((paths.KIT_DIR / "notebooks" / f"{chapter}.ipynb").read_text())["cells"]
    last = "".join(cells[-1]["source"])
    assert cells[-1]["cell_type"] == "markdown" and re.match(r"## \d+\. Exercises\n", last), f"{chapter} ends without exercises"
    return re.findall(r"^\d+\. (.+)$", last, flags=re.M)


def commands(text: str) -> list[list[str]]:
    return [shlex.split(code) for code in re.findall(r"`([^`]*\bfvos [^`]*)`", text)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_ends_with_two_to_four_exercises_naming_what_to_look_for(chapter):
    items = exercises(chapter)
    assert 2 <= len(items) <= 4, items
    assert all("?" in item or "must" in item for item in items), "each exercise says what to look for"
    assert any(commands(item) for item in items), "at least one exercise runs something"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_exercises_commands_are_accepted_as_written(chapter, capsys, monkeypatch):
    monkeypatch.chdir(paths.KIT_DIR)  # where a student runs them
    for item in exercises(chapter):
        for command in commands(item):
            assert command[0] == ".venv/bin/fvos" and command[1] in cli.STEPS, command
            if command[1] != "pipeline":
                with pytest.raises(SystemExit) as shown:
                    cli.main([command[1], "--help"])
                assert shown.value.code == 0
                continue
            capsys.readouterr()
            assert cli.main(command[1:] + ["--show"]) == 0, command  # values checked as a run checks them
            shown = yaml.safe_load(capsys.readouterr().out)["chapters"]
            for override in [command[i + 1] for i, word in enumerate(command) if word == "--set"]:
                key, value = override.split("=", 1)
                section, name = key.split(".")
                assert shown[section][name] == yaml.safe_load(value), override  # the value as written

"""Marks for the executed reference notebooks that ``--nbval-lax`` collects from ``tests/nbval/``, the
fixtures several test files share, and the log's list of the tests run against real services."""
from pathlib import Path

import pytest

from fvos_utils.base import paths


@pytest.fixture
def kit_root(tmp_path, monkeypatch) -> Path:
    """A kit folder of its own (``$FVOS_ROOT``): runs write under ``<tmp>/outputs/``."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":  # each cell of a reference notebook is an item
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)


#: test files run against a real service each (the scheduler, the browser): the log lists their tests by name
REAL_SERVICE_TESTS = {"tests/test_slurm.py": "a real SLURM scheduler", "tests/test_viewer_browser.py": "Chromium",
                      "tests/test_latex.py": "TeX Live (pdflatex)"}


def pytest_terminal_summary(terminalreporter):
    for path, service in REAL_SERVICE_TESTS.items():
        outcomes = [(report.nodeid.split("::", 1)[1], outcome) for outcome in ("passed", "failed", "skipped")
                    for report in terminalreporter.stats.get(outcome, [])
                    if report.nodeid.startswith(path + "::") and (report.when == "call" or outcome == "skipped")]
        if outcomes:
            terminalreporter.section(f"against {service} ({path})")
            for name, outcome in outcomes:
                terminalreporter.write_line(f"{outcome.upper():8s} {name}")

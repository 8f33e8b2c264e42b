"""Packaging: the one command (`fvos`) pyproject.toml declares, and the git filter that keeps committed
notebooks free of outputs (.gitattributes, set up by `make install`)."""
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fvos_utils import cli
from fvos_utils.base import paths


def _declared_scripts() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((paths.project_root() / "pyproject.toml").read_text())["project"]["scripts"]


def test_one_console_script_fvos_runs_every_step_and_python_m_runs_the_same():
    assert _declared_scripts() == {"fvos": "fvos_utils.cli:main"}
    main_module = (paths.PACKAGE_DIR / "__main__.py").read_text()
    assert re.search(r"from fvos_utils\.cli import main\s+sys\.exit\(main\(\)\)\s*$", main_module)
    for step, (module_name, function_name, line) in cli.STEPS.items():
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
        # a console script exits with the function's return value: it must be an exit status
        assert inspect.signature(function).return_annotation in ("int", int), step
        assert line and "\n" not in line, step
        assert 'if __name__ == "__main__"' not in inspect.getsource(module), \
            f"{module_name}: a second way to run {step}; the command is fvos {step}"


def test_fvos_help_lists_every_step_with_its_line_and_each_step_names_itself(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for step, (_, _, line) in cli.STEPS.items():
        assert re.search(rf"^  {step} +{re.escape(line)}$", listing, re.M), step
        with pytest.raises(SystemExit) as done:
            cli.main([step, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: fvos {step} "), step


def _documented_commands() -> set[tuple[str, str]]:
    """``(file, step)`` of every ``fvos <step>`` written as a command (``.venv/bin/fvos``, in backticks, or
    opening a line) in the README, docs/, the Makefile, params/ and the notebooks."""
    root = paths.project_root()
    files = [root / "README.md", root / "CONTRIBUTING.md", root / "Makefile", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "params").glob("*.yaml")), *sorted((root / "notebooks").glob("*.ipynb"))]
    found = set()
    for path in files:
        for step in re.findall(r"(?:^[ \t]*|`|bin/)fvos ([a-z][a-z_-]*)", path.read_text(), re.M):
            found.add((path.relative_to(root).as_posix(), step))
    return found


def test_every_documented_fvos_command_exists_and_its_help_runs():
    documented = _documented_commands()
    assert {step for _, step in documented} == set(cli.STEPS), "a step is undocumented, or a documented one is missing"
    script = Path(sys.prefix) / "bin" / "fvos"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "fvos_utils"]
    for step in sorted({step for _, step in documented}):
        done = subprocess.run([*command, step, "--help"], capture_output=True, text=True, timeout=300,
                              cwd=paths.project_root())
        assert done.returncode == 0, (step, done.stderr)
        assert done.stdout.startswith(f"usage: fvos {step} "), step
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(step in done.stdout for step in cli.STEPS), done.stderr


# ------------------------------------------------------------------------------------ nbstripout
def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def _in_git_checkout(root: Path) -> bool:
    try:
        return _git("rev-parse", "--is-inside-work-tree", cwd=root).stdout.strip() == "true"
    except OSError:  # no git at all
        return False


def _notebook_with_outputs(runs: int = 1) -> str:
    """A one-cell notebook as JupyterLab saves it after running the cell ``runs`` times."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=runs, id="cell-00")  # ids are kept
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n" * runs)]
    nb.cells = [cell]
    return nbformat.writes(nb)


def _assert_stripped(text: str):
    cell = nbformat.reads(text, as_version=4).cells[0]
    assert cell.source == "print(1)" and cell.outputs == [] and cell.execution_count is None


def test_gitattributes_filters_the_chapters_but_not_the_nbval_references():
    root = paths.project_root()
    lines = (root / ".gitattributes").read_text().splitlines()
    # nbstripout --install (make install) looks for these two lines and appends them when either is
    # missing: as they are, it leaves the tracked file alone
    assert "*.ipynb filter=nbstripout" in lines and "*.ipynb diff=ipynb" in lines
    if not _in_git_checkout(root):
        return
    chapter, reference = "notebooks/00_data_and_metrics.ipynb", "tests/nbval/00_data_and_metrics.ipynb"
    attributes = _git("check-attr", "filter", "--", chapter, reference, cwd=root).stdout.splitlines()
    assert attributes == [f"{chapter}: filter: nbstripout", f"{reference}: filter: unspecified"]


def _committed_chapters() -> dict[str, str]:
    """Each chapter notebook's name and text as it is committed: the git index's copy in a checkout (the
    working copy may hold an autosave's outputs), the file itself elsewhere."""
    root = paths.project_root()
    in_git = _in_git_checkout(root)
    return {path.name: _git("show", f":notebooks/{path.name}", cwd=root).stdout if in_git else path.read_text()
            for path in sorted((root / "notebooks").glob("*.ipynb"))}


def test_the_configured_filter_strips_outputs_and_leaves_the_committed_chapters_as_they_are():
    root = paths.project_root()
    clean = _git("config", "--get", "filter.nbstripout.clean", cwd=root).stdout.strip() \
        if _in_git_checkout(root) else ""
    if not clean:
        pytest.skip("no nbstripout filter in this checkout's git config (make install sets it up)")

    def cleaned(text: str) -> str:  # as git runs the filter: a shell command, the file on stdin
        done = subprocess.run(clean, shell=True, input=text, capture_output=True, text=True, cwd=root, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    _assert_stripped(cleaned(_notebook_with_outputs()))
    for name, text in _committed_chapters().items():  # else a fresh checkout shows every notebook as changed
        assert cleaned(text) == text, name


def test_make_git_filter_stages_notebooks_without_outputs(tmp_path):
    """`make git-filter` (part of `make install`) in a fresh repository holding the kit's .gitattributes."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    root = paths.project_root()
    attributes = (root / ".gitattributes").read_text()
    (tmp_path / ".gitattributes").write_text(attributes)
    assert _git("init", "-q", cwd=tmp_path).returncode == 0
    done = subprocess.run(["make", "--no-print-directory", "-f", str(root / "Makefile"), "git-filter",
                           f"PY={sys.executable}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / ".gitattributes").read_text() == attributes  # the tracked file stays as committed
    (tmp_path / "notebooks").mkdir()
    chapters = _committed_chapters()
    for name, text in chapters.items():
        (tmp_path / "notebooks" / name).write_text(text)
    (tmp_path / "notebooks" / "a.ipynb").write_text(_notebook_with_outputs())
    (tmp_path / "tests" / "nbval").mkdir(parents=True)
    (tmp_path / "tests" / "nbval" / "a.ipynb").write_text(_notebook_with_outputs())
    assert _git("add", "notebooks", "tests", cwd=tmp_path).returncode == 0
    for name, text in chapters.items():  # a fresh checkout stays clean: the committed chapters pass unchanged
        assert _git("show", f":notebooks/{name}", cwd=tmp_path).stdout == text, name
    _assert_stripped(_git("show", ":notebooks/a.ipynb", cwd=tmp_path).stdout)
    assert nbformat.reads(_git("show", ":tests/nbval/a.ipynb", cwd=tmp_path).stdout, as_version=4).cells[0].outputs
    assert _git("-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false",
                "commit", "-q", "-m", "stripped", cwd=tmp_path).returncode == 0
    # a later autosave with other outputs: no difference to commit (git status lists the file until it is
    # added again, since its size changed, but adding it stages nothing)
    (tmp_path / "notebooks" / "a.ipynb").write_text(_notebook_with_outputs(runs=2))
    assert _git("diff", "--exit-code", "--", "notebooks", cwd=tmp_path).returncode == 0
    assert _git("add", "notebooks/a.ipynb", cwd=tmp_path).returncode == 0
    assert _git("status", "--porcelain", "--untracked-files=no", cwd=tmp_path).stdout == ""

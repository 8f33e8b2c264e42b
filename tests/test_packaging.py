"""Packaging: the console scripts pyproject.toml declares, and the git filter that keeps committed
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

from fvos_utils import paths

#: the kit's command-line modules: each is the console script fvos-<module> as well as python -m fvos_utils.<module>
COMMANDS = ("infer", "evaluate", "pipeline", "train", "synthetic", "recipe", "postprocess", "fusion")


def _declared_scripts() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((paths.project_root() / "pyproject.toml").read_text())["project"]["scripts"]


def test_console_scripts_run_what_python_m_runs_and_return_an_exit_status():
    scripts = _declared_scripts()
    assert sorted(scripts) == sorted(f"fvos-{name}" for name in COMMANDS)
    for script, target in scripts.items():
        module_name, _, function_name = target.partition(":")
        assert module_name == f"fvos_utils.{script.removeprefix('fvos-')}", script
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
        assert callable(function), target
        # a console script exits with the function's return value: it must be an exit status
        assert inspect.signature(function).return_annotation in ("int", int), target
        main_block = inspect.getsource(module).split('if __name__ == "__main__":')[-1]
        assert re.fullmatch(rf"\s*sys\.exit\({function_name}\(\)\)\s*", main_block), \
            f"{module_name}: python -m runs something other than {target}"


def test_installed_fvos_evaluate_script_runs():
    script = Path(sys.prefix) / "bin" / "fvos-evaluate"
    if not script.is_file():
        pytest.skip(f"{script}: not installed here (make install installs the console scripts)")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--gt" in done.stdout and "--pred" in done.stdout


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

"""Every chapter notebook: committed clean, documented parameters, and executed headless by papermill
with its defaults (the fast CPU setting), leaving its metrics and figures under outputs/<run>/."""
import json
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from fvos_utils import paths
from fvos_utils.testing import NBVAL_CHAPTERS, NBVAL_MARK, checked_outputs

NOTEBOOKS = sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
RUN = "pytest-notebooks"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_documented_parameters(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)], \
        "strip outputs before committing (executed copies belong under outputs/)"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = papermill.inspect_notebook(str(notebook))
    assert "run" in params
    # papermill silently drops a line it cannot parse (e.g. a second '=' in the comment): every
    # assignment in the cell must come back as a parameter
    assigned = re.findall(r"^([A-Za-z_]\w*)\s*[:=]", tagged[0].source, flags=re.M)
    assert sorted(assigned) == sorted(params), "parameters papermill cannot see (check their comments)"
    for name, p in params.items():
        assert p["inferred_type_name"] != "None", f"{name}: give it a type annotation"
        assert p["help"], f"{name}: give it a trailing comment (papermill --help-notebook shows it)"


def _execute(notebook: Path) -> Path:
    out = paths.outputs_dir(RUN) / notebook.name
    papermill.execute_notebook(str(notebook), str(out), parameters={"run": RUN}, kernel_name="python3",
                               cwd=str(notebook.parent), progress_bar=False)  # a cwd unlike the pipeline's
    return out


@pytest.mark.notebook
def test_chapter_00_runs_and_records_its_numbers():
    notebook = paths.notebooks_dir() / "00_data_and_metrics.ipynb"
    executed = nbformat.read(_execute(notebook), as_version=4)
    chapter = paths.outputs_dir(RUN) / "00_data_and_metrics"
    metrics = json.loads((chapter / "metrics.json").read_text())
    assert metrics["parameters"]["run"] == RUN and metrics["environment"]["packages"]["numpy"]
    zero = metrics["zero_motion"]["global"]
    assert 0.0 < zero["J&F"] < 0.6 and zero["J&F"] == pytest.approx((zero["J"] + zero["F"]) / 2)
    assert set(metrics["zero_motion"]["per_tag"]) == {"crowd", "occlusion", "exit-reenter", "small", "touching"}
    assert checked_outputs(executed) == [f"zero-motion J&F on the synthetic valid split: {zero['J&F']:.4f}\n"]
    for figure in ("hard_cases", "j_and_f_explained", "zero_motion_decay"):
        assert (chapter / f"{figure}.png").stat().st_size > 10_000 and (chapter / f"{figure}.pdf").is_file()
    if paths.shared_samples_dir() is not None:
        assert 0.0 < metrics["zero_motion_real"]["global"]["J&F"] <= 1.0


@pytest.mark.notebook
def test_chapter_07_gathers_the_run():
    if not (paths.outputs_dir(RUN) / "00_data_and_metrics" / "metrics.json").is_file():
        test_chapter_00_runs_and_records_its_numbers()
    _execute(paths.notebooks_dir() / "07_report.ipynb")
    chapter = paths.outputs_dir(RUN) / "07_report"
    metrics = json.loads((chapter / "metrics.json").read_text())
    zero = json.loads((paths.outputs_dir(RUN) / "00_data_and_metrics" / "metrics.json").read_text())
    assert "00_data_and_metrics" in metrics["chapters"]
    assert metrics["steps"][0]["J&F"] == zero["zero_motion"]["global"]["J&F"]  # read back, not recomputed
    text = (chapter / "report.md").read_text()
    assert "Table 2: MOSE val" in text and "0.7681" in text and "hard_cases.png" in text
    for table in ("fvos_steps", "leaderboard_mose_val", "leaderboard_mose_test"):
        assert {p.suffix for p in chapter.glob(f"{table}.*")} == {".csv", ".md", ".tex"}


@pytest.mark.parametrize("chapter", sorted(NBVAL_CHAPTERS))
def test_nbval_reference_is_the_current_chapter(chapter):
    """tests/nbval/ holds executed copies that `--nbval-lax` re-runs and compares; a chapter edited
    without `make nbval-reference` would pin stale code."""
    reference = nbformat.read(Path(__file__).parent / "nbval" / f"{chapter}.ipynb", as_version=4)
    source = nbformat.read(paths.notebooks_dir() / f"{chapter}.ipynb", as_version=4)
    injected = [c for c in reference.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f"run = \"nbval\"" in injected[0].source
    for name, value in NBVAL_CHAPTERS[chapter].items():
        assert f"{name} = {value!r}" in injected[0].source
    kept = [c for c in reference.cells if c not in injected]
    assert [(c.cell_type, c.source) for c in kept] == [(c.cell_type, c.source) for c in source.cells]
    checked = [c for c in kept if c.cell_type == "code" and NBVAL_MARK in c.source]
    assert checked and all(c.outputs for c in checked)
    assert not [c for c in kept if c.cell_type == "code" and c.outputs and c not in checked]

"""Every chapter notebook: committed clean, documented parameters, and executed headless by papermill
with its defaults (the fast CPU setting), leaving its metrics and figures under outputs/<run>/."""
import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import nbformat
import papermill
import pytest

import fvos_utils
from fvos_utils.base import paths
from fvos_utils.data.testing import NBVAL_CHAPTERS, NBVAL_MARK, checked_outputs
from fvos_utils.run import chapter
from fvos_utils.studies import claims

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
    assert checked_outputs(executed) == [f"zero-motion J&F on the synthetic valid split: {100 * zero['J&F']:.2f}\n"]
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
    assert "00_data_and_metrics" in metrics["chapters"] and zero["zero_motion"]["global"]["J&F"] > 0
    # no chapter of this run tested a claim: every claim is listed, none with a made-up number
    assert [row["verdict"] for row in metrics["scorecard"]] == ["not run"] * len(claims.CLAIMS)
    assert all(row["dJ&F"] is None for row in metrics["scorecard"])
    text = (chapter / "report.md").read_text()
    assert text.index(claims.in_words(RUN, claims.read_run(RUN))) < text.index("The paper's claims, tested on this run")
    assert text.index("The paper's claims, tested on this run") < text.index("Table 2: MOSE val")
    assert "Table 2: MOSE val" in text and re.search(r"\|\s*76\.81\s*\|", text) and "hard_cases.png" in text  # in percent
    for table in ("claims_scorecard", "leaderboard_mose_val", "leaderboard_mose_test"):
        assert {".csv", ".md", ".tex"} <= {p.suffix for p in chapter.glob(f"{table}.*")}
    assert {p.suffix for p in chapter.glob("claims_scorecard.*")} == {".csv", ".md", ".tex", ".png", ".pdf"}


@pytest.mark.parametrize("chapter", sorted(NBVAL_CHAPTERS))
def test_nbval_reference_is_the_current_chapter(chapter):
    """tests/nbval/ holds executed copies that `--nbval-lax` re-runs and compares; a chapter edited
    without `make nbval-reference` would pin stale code."""
    reference = nbformat.read(Path(__file__).parent / "nbval" / f"{chapter}.ipynb", as_version=4)
    source = nbformat.read(paths.notebooks_dir() / f"{chapter}.ipynb", as_version=4)
    injected = [c for c in reference.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "run = \"nbval\"" in injected[0].source
    for name, value in NBVAL_CHAPTERS[chapter].items():
        assert f"{name} = {value!r}" in injected[0].source
    kept = [c for c in reference.cells if c not in injected]
    assert [(c.cell_type, c.source) for c in kept] == [(c.cell_type, c.source) for c in source.cells]
    checked = [c for c in kept if c.cell_type == "code" and NBVAL_MARK in c.source]
    assert checked and all(c.outputs for c in checked)
    assert not [c for c in kept if c.cell_type == "code" and c.outputs and c not in checked]


def _code_cells(notebook: Path) -> list:
    return [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_declared_parameter_is_used(notebook):
    """A parameter that is only recorded (or not even that) misleads a batch user: each one must be read
    by the chapter's code; ``chapter.start`` itself reads ``run`` and ``threads`` (and records them all)."""
    cells = _code_cells(notebook)
    tagged = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    declared = [node.target.id for node in ast.parse(tagged.source).body if isinstance(node, ast.AnnAssign)]
    rest = ast.parse("\n".join(c.source for c in cells if c is not tagged))
    used = {node.id for node in ast.walk(rest) if isinstance(node, ast.Name)}
    if f'chapter.start("{notebook.stem}", globals())' in "\n".join(c.source for c in cells):
        used |= set(chapter.START_PARAMETERS)
    assert [name for name in declared if name not in used] == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_writes_a_record_or_metrics_by_hand(notebook):
    """Records belong to fvos_utils.method.choices, metrics.json to chapter.Chapter.write_metrics."""
    code = "\n".join(c.source for c in _code_cells(notebook))
    for writer in ("write_json(", "json.dump(", ".write_text(", "open("):
        assert writer not in code, writer
    assert f'chapter.start("{notebook.stem}", globals())' in code  # one set-up, named after the notebook


def test_the_chapter_map_is_the_code_s():
    """The chapter map in docs/chapters.md lists what each chapter's code calls; the chapters themselves
    leave it out, so that a student reads them straight through."""
    doc = (paths.project_root() / "docs" / "chapters.md").read_text()
    assert chapter.map_table() in doc, "docs/chapters.md chapter map is stale: paste chapter.map_table()"
    for name in chapter.PAPER_SECTIONS:
        first = nbformat.read(paths.notebooks_dir() / f"{name}.ipynb", as_version=4).cells[0]
        assert first.cell_type == "markdown" and "Chapter map" not in first.source, \
            f"{name}: the chapter map belongs in docs/chapters.md, not in the first cell"
    assert set(chapter.PAPER_SECTIONS) == {p.stem for p in NOTEBOOKS}


def kit_module(name: str) -> str:
    """The dotted path of the kit's module ``name`` (a chapter imports modules by their own names)."""
    return next(m.name for m in pkgutil.walk_packages(fvos_utils.__path__, "fvos_utils.") if m.name.endswith(f".{name}"))


def test_each_method_function_names_the_chapter_that_shows_it():
    missing = []
    for name in chapter.PAPER_SECTIONS:
        for call in chapter.calls(name):
            module, function = call.split(".")
            if module in chapter.METHOD_MODULES:
                doc = getattr(importlib.import_module(kit_module(module)), function).__doc__ or ""
                if not re.search(rf"Shown in chapters? [0-9, ]*\b{name[:2]}\b", doc):
                    missing.append(f"{call} (chapter {name[:2]})")
    assert missing == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_reads_straight_through(notebook):
    """One title style, numbered sections, no chapter map in the chapter, and every cell that exists for the
    tests tagged so that the book leaves it out."""
    nb = nbformat.read(notebook, as_version=4)
    number = int(notebook.stem[:2])
    assert re.match(rf"# Chapter {number} — \S", nb.cells[0].source), nb.cells[0].source.splitlines()[0]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for heading in re.findall(r"^## .*$", cell.source, flags=re.M):
                assert re.match(r"## \d+\. \S", heading), heading
        assert "Calls:" not in cell.source
        if NBVAL_MARK in cell.source:
            assert "test-only" in cell.metadata.get("tags", []), f"{notebook.name}: tag the nbval cell test-only"

"""The papermill chain: params checking, skipping current chapters, failure handling, the manifest.

Runs against a throw-away project (``$FVOS_ROOT``) holding two tiny chapter notebooks, so that it
tests the runner and not the kit's chapters (those are executed by tests/test_notebooks.py).
"""
import json
import os
import re
import subprocess

import nbformat
import pytest
import figure_print  # tests/
import texlive  # tests/
import units  # tests/

from fvos_utils.base.io import remove_dir
from fvos_utils.run import pipeline

pytestmark = pytest.mark.notebook


def _notebook(params_src: str, body_src: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body_src)]
    return nb


# what every chapter writes last (fvos_utils.run.chapter.Chapter.write_metrics): outputs/<run>/<chapter>/metrics.json
METRICS = """
(out / "{chapter}").mkdir(parents=True, exist_ok=True)
(out / "{chapter}" / "metrics.json").write_text("{{}}")
"""
WRITE_VALUE = """
import json, pathlib, os
out = pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run
out.mkdir(parents=True, exist_ok=True)
(out / "value.json").write_text(json.dumps({"value": value, "seed": seed}))
""" + METRICS.format(chapter="00_data_and_metrics")
READ_VALUE = """
import json, pathlib, os
out = pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run
got = json.loads((out / "value.json").read_text())
assert not fail, "asked to fail"
(out / "doubled.json").write_text(json.dumps(2 * got["value"]))
""" + METRICS.format(chapter="01_sam2_inference")


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    nbformat.write(_notebook('run: str = "x"  # run name\nvalue: int = 1  # a number\nseed: int = 0  # seed\n'
                             'ratio: float = 0.5  # a fraction\nmethods: list = ["a"]  # names\n'
                             'data_root: str = ""  # a dataset folder', WRITE_VALUE),
                   tmp_path / "notebooks" / "00_data_and_metrics.ipynb")
    nbformat.write(_notebook('run: str = "x"  # run name\nfail: bool = False  # raise in the body',
                             READ_VALUE), tmp_path / "notebooks" / "01_sam2_inference.ipynb")
    monkeypatch.setenv("FVOS_ROOT", str(tmp_path))
    return tmp_path


def _params(project, text):
    path = project / "p.yaml"
    path.write_text(text)
    return path


GOOD = """
run: t
common: {seed: 3}
chapters:
  00_data_and_metrics: {value: 21}
  01_sam2_inference: {}
"""


def test_chain_passes_results_through_files_and_writes_a_manifest(project):
    manifest = pipeline.run_pipeline(_params(project, GOOD))
    out = project / "outputs" / "t"
    assert json.loads((out / "value.json").read_text()) == {"value": 21, "seed": 3}
    assert json.loads((out / "doubled.json").read_text()) == 42
    assert (out / "00_data_and_metrics.ipynb").is_file() and (out / "01_sam2_inference.ipynb").is_file()
    written = json.loads((out / "manifest.json").read_text())
    assert written["chapters"]["00_data_and_metrics"]["parameters"] == {"seed": 3, "value": 21, "run": "t"}
    assert written["environment"]["packages"]["papermill"]
    assert manifest["chapters"]["01_sam2_inference"]["skipped"] is False


def test_current_chapters_are_skipped_and_a_change_reruns_the_rest(project):
    params = _params(project, GOOD)
    pipeline.run_pipeline(params)
    again = pipeline.run_pipeline(params)
    assert all(c["skipped"] for c in again["chapters"].values())
    changed = pipeline.run_pipeline(_params(project, GOOD.replace("value: 21", "value: 5")))
    assert [c["skipped"] for c in changed["chapters"].values()] == [False, False]
    assert json.loads((project / "outputs" / "t" / "doubled.json").read_text()) == 10
    forced = pipeline.run_pipeline(params, force=True)
    assert not any(c["skipped"] for c in forced["chapters"].values())


def test_a_file_named_by_a_parameter_counts_and_force_reaches_the_chapters_declaring_it(project):
    """Editing a file a chapter reads (as chapter 02 reads its training params) re-runs it; --force is
    passed on as ``force`` (chapter 02 then retrains) without making the next plain run redo anything."""
    nbformat.write(_notebook('run: str = "x"  # run name\nsettings: str = ""  # a file\nforce: bool = False  # redo',
                             'import json, pathlib, os\n'
                             'out = pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run\n'
                             '(out / "seen.json").write_text(json.dumps({"text": (pathlib.Path(os.environ["FVOS_ROOT"]) '
                             '/ settings).read_text(), "force": force}))' + METRICS.format(chapter="01_sam2_inference")),
                   project / "notebooks" / "01_sam2_inference.ipynb")
    (project / "settings.yaml").write_text("lr: 1")
    params = _params(project, GOOD.replace("01_sam2_inference: {}", "01_sam2_inference: {settings: settings.yaml}"))
    seen = project / "outputs" / "t" / "seen.json"
    pipeline.run_pipeline(params)
    assert json.loads(seen.read_text()) == {"text": "lr: 1", "force": False}
    assert all(c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values())
    (project / "settings.yaml").write_text("lr: 2")
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [True, False]
    assert json.loads(seen.read_text()) == {"text": "lr: 2", "force": False}
    pipeline.run_pipeline(params, force=True)
    assert json.loads(seen.read_text())["force"] is True
    assert all(c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values())


def test_a_failing_chapter_stops_the_chain_names_the_cell_and_keeps_outputs(project):
    pipeline.run_pipeline(_params(project, GOOD))
    out = project / "outputs" / "t"
    before = (out / "value.json").read_text()
    bad = _params(project, GOOD.replace("01_sam2_inference: {}", "01_sam2_inference: {fail: true}"))
    with pytest.raises(pipeline.PipelineError) as failure:
        pipeline.run_pipeline(bad)
    failed = nbformat.read(out / "01_sam2_inference.failed.ipynb", as_version=4)
    # the cell named is the one a user finds at that index of the kept notebook, with the line that raised
    # (its first line, `import json, pathlib, os`, told nothing)
    found = re.search(r"chapter 01_sam2_inference failed in cell (\d+), line 5 \(`assert not fail, \"asked to fail\"`\) of "
                      r".*01_sam2_inference\.failed\.ipynb: AssertionError: asked to fail", str(failure.value))
    assert found, str(failure.value)
    assert any(o.get("ename") == "AssertionError" for o in failed.cells[int(found[1])].get("outputs", []))
    # the last good notebook stays where it was; nothing says the chapter is done
    good = nbformat.read(out / "01_sam2_inference.ipynb", as_version=4)
    assert not any(o.get("output_type") == "error" for c in good.cells for o in c.get("outputs", []))
    assert (out / "value.json").read_text() == before
    state = json.loads((out / "pipeline_state.json").read_text())
    assert "01_sam2_inference" not in state and "00_data_and_metrics" in state
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chapters"]["01_sam2_inference"]["status"] == "failed" and "finished" not in manifest
    again = pipeline.run_pipeline(_params(project, GOOD))
    assert [c["skipped"] for c in again["chapters"].values()] == [True, False]
    assert not (out / "01_sam2_inference.failed.ipynb").exists()


def test_overrides_reach_the_chapters_are_recorded_and_make_them_rerun(project, capsys):
    """``--set``: one value of a params file changed on the command line, without copying the file."""
    assert pipeline.main([str(_params(project, GOOD)), "--set", "00_data_and_metrics.value=7",
                          "--set", "common.seed=5"]) == 0
    out = project / "outputs" / "t"
    assert json.loads((out / "value.json").read_text()) == {"value": 7, "seed": 5}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overrides"] == ["00_data_and_metrics.value=7", "common.seed=5"]
    again = pipeline.run_pipeline(_params(project, GOOD))  # without them: other values, so not current
    assert [c["skipped"] for c in again["chapters"].values()] == [False, False]
    assert json.loads((out / "value.json").read_text()) == {"value": 21, "seed": 3}


def test_chapters_run_without_the_kernels_tcp_warning(project, capfd):
    """Every chapter printed ipykernel's "Kernel is running over TCP without encryption" warning."""
    pipeline.run_pipeline(_params(project, GOOD))
    assert "without encryption" not in capfd.readouterr().err


def test_a_chapter_whose_outputs_are_gone_is_not_current(project):
    params = _params(project, GOOD)
    out = project / "outputs" / "t"
    pipeline.run_pipeline(params)
    remove_dir(out / "01_sam2_inference")
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [True, False]
    (out / "00_data_and_metrics.ipynb").unlink()
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [False, False]
    (out / "00_data_and_metrics" / "figure.png").write_bytes(b"a figure")  # as if the chapter wrote it
    pipeline.run_pipeline(params, force=True)
    (out / "00_data_and_metrics" / "figure.png").unlink()
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [False, False]


def test_deleted_training_weights_rerun_chapter_02(project):
    """Chapter 02 trains into outputs/<run>/train/, beside its own folder: those files are its outputs too."""
    nbformat.write(_notebook('run: str = "x"  # run name\nseed: int = 0  # seed',  # (one line alone: IPython's %run)
                             'import pathlib, os\n'
                             'out = pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run\n'
                             '(out / "train" / "stage1" / "weights").mkdir(parents=True, exist_ok=True)\n'
                             '(out / "train" / "stage1" / "weights" / "epoch_001.pt").write_bytes(b"w")'
                             + METRICS.format(chapter="02_finetune")),
                   project / "notebooks" / "02_finetune.ipynb")
    params = _params(project, GOOD + "  02_finetune: {}\n")
    pipeline.run_pipeline(params)
    assert all(c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values())
    (project / "outputs" / "t" / "train" / "stage1" / "weights" / "epoch_001.pt").unlink()
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [True, True, False]


def test_edited_data_in_a_folder_named_by_a_parameter_reruns_the_chapter(project):
    data = project / "data" / "set"
    (data / "Annotations" / "v").mkdir(parents=True)
    mask = data / "Annotations" / "v" / "00000.png"
    mask.write_bytes(b"mask")
    params = _params(project, GOOD.replace("value: 21", "value: 21, data_root: data/set"))
    pipeline.run_pipeline(params)
    (data / ".DS_Store").write_bytes(b"hidden files do not count")
    assert all(c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values())
    mask.write_bytes(b"edited mask")  # ground truth edited: another size (and mtime)
    assert [c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values()] == [False, False]
    assert all(c["skipped"] for c in pipeline.run_pipeline(params)["chapters"].values())
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10**9))  # same size, touched
    assert not pipeline.run_pipeline(params)["chapters"]["00_data_and_metrics"]["skipped"]


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("value: 21", "valeu: 21"), r"chapters\.00_data_and_metrics: unknown parameter 'valeu' \(did you mean 'value'\?\)"),
    (GOOD.replace("seed: 3", "sed: 3"), r"common \(no chapter declares it\): unknown parameter 'sed' \(did you mean 'seed'\?\)"),
    (GOOD.replace("run: t", "run: t\nchapter: {}"), r"unknown parameter 'chapter' \(did you mean 'chapters'\?\)"),
    (GOOD.replace("01_sam2_inference", "01_sam_inference"), r"unknown chapter '01_sam_inference'"),
    (GOOD.replace("run: t", "run: ../t"), r"'run' must be a plain folder name"),
    ("run: [", r"p\.yaml: not valid YAML"),
    (GOOD.replace("value: 21", "value: 21, run: u"), r"chapters\.00_data_and_metrics: 'run' is set by the runner"),
    (GOOD.replace("seed: 3", "seed: 3, force: true"), r"common: 'force' is set by the runner"),
    (GOOD.replace("run: t", "run: .."), r"'run' must be a plain folder name"),
    (GOOD.replace("run: t", "run: ."), r"'run' must be a plain folder name"),
    (GOOD.replace("run: t", "run: ''"), r"'run' must be a plain folder name"),
    (GOOD.replace("run: t", "run: 'a\\b'"), r"'run' must be a plain folder name"),
    (GOOD.replace("value: 21", "value: '21'"),
     r"p\.yaml: chapters\.00_data_and_metrics\.value: expected int, got str '21'"),
    (GOOD.replace("value: 21", "value: true"), r"chapters\.00_data_and_metrics\.value: expected int, got bool True"),
    (GOOD.replace("value: 21", "value: 21, methods: paper"),
     r"chapters\.00_data_and_metrics\.methods: expected list, got str 'paper'"),
    (GOOD.replace("value: 21", "value: 21, ratio: half"), r"\.ratio: expected float, got str 'half'"),
    (GOOD.replace("01_sam2_inference: {}", "01_sam2_inference: {fail: 1}"),
     r"chapters\.01_sam2_inference\.fail: expected bool, got int 1"),
    (GOOD.replace("seed: 3", "seed: '3'"), r"p\.yaml: common\.seed \(for chapter 00_data_and_metrics\): expected int, got str '3'"),
    ("run: t\nchapters:\n  - 00_data_and_metrics\n", r"p\.yaml: 'chapters' must be a mapping .*, got a list"),
    ("run: t\ncommon: [seed]\nchapters: {}\n", r"p\.yaml: 'common' must be a mapping .*, got a list"),
    (GOOD.replace("01_sam2_inference: {}", "01_sam2_inference: 5"),
     r"p\.yaml: chapters\.01_sam2_inference: expected a mapping of its parameters, got int 5"),
])
def test_params_mistakes_are_errors_naming_the_file_and_key(project, text, message):
    with pytest.raises(pipeline.PipelineError, match=message):
        pipeline.load_run_params(_params(project, text))
    assert not (project / "outputs").exists()  # nothing ran


def test_values_of_the_declared_types_are_accepted(project):
    """A float parameter takes an int; a list and an int as declared pass."""
    params = pipeline.load_run_params(_params(project, GOOD.replace("value: 21", "value: 21, ratio: 1, methods: [b]")))
    assert params["chapters"]["00_data_and_metrics"] == {"value": 21, "ratio": 1, "methods": ["b"]}


def test_cli_lists_the_chapters_for_only(capsys):
    with pytest.raises(SystemExit):
        pipeline.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(chapter in shown for chapter in pipeline.CHAPTERS)
    with pytest.raises(SystemExit) as stop:
        pipeline.main(["params/demo.yaml", "--only", "05_morphology"])
    assert stop.value.code == 2 and "invalid choice: '05_morphology'" in capsys.readouterr().err


def test_cli_reports_failure_with_exit_code(project, capsys):
    assert pipeline.main([str(_params(project, GOOD.replace("value: 21", "valeu: 21")))]) == 1
    assert "unknown parameter 'valeu'" in capsys.readouterr().err


@pytest.mark.parametrize("params_file", sorted(p.name for p in (pipeline.paths.params_dir()).glob("*.yaml")
                                               if "chapters:" in p.read_text()))
def test_shipped_pipeline_params_fit_the_notebooks(params_file, monkeypatch):
    monkeypatch.delenv("FVOS_ROOT", raising=False)
    params = pipeline.load_run_params(pipeline.paths.params_dir() / params_file)
    assert params["chapters"], "a pipeline params file runs at least one chapter"


def _tracked_changes() -> str | None:
    """``git status`` of the kit's tracked files (empty when clean); None outside a git checkout."""
    try:
        return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                              cwd=pipeline.paths.project_root(), capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_demo_pipeline_end_to_end(tmp_path, monkeypatch):
    """The README's main job on a run of its own: every chapter with its demo settings (about 25 min)."""
    import yaml

    from fvos_utils.base import io
    from fvos_utils.method import models

    monkeypatch.delenv("FVOS_ROOT", raising=False)
    # everything but the run's name exactly as the demo runs, the file's comments (the values' reasons) included
    text = (pipeline.paths.params_dir() / "demo.yaml").read_text()
    text, renamed = re.subn(r"(?m)^run: demo\b", "run: pytest-demo", text)
    assert renamed == 1 and yaml.safe_load(text)["run"] == "pytest-demo"
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    clean_before = _tracked_changes() == ""
    manifest = pipeline.run_pipeline(path, force=True)
    if clean_before:  # the demo writes no tracked file (README.md included: make readme-results does)
        assert _tracked_changes() == ""
    assert list(manifest["chapters"]) == list(pipeline.CHAPTERS)
    out = pipeline.paths.outputs_dir("pytest-demo")
    finetune = io.read_json(out / "02_finetune" / "metrics.json")
    recorded = io.read_json(models.ASSET_DIR / "fvos_tiny.json")["scores"]["synthetic mini-MOSE valid (seed 0)"]
    # the bundled weights score what their record says (measured when they were exported)
    assert finetune["start"]["J&F"] == pytest.approx(recorded["J&F"], abs=2e-3)
    assert finetune["zero_motion"]["J&F"] == pytest.approx(recorded["zero_motion_J&F"], abs=1e-4)
    selection = io.read_json(out / "03_epoch_selection" / "metrics.json")
    scored = [s for stage in ("1", "2") for s in selection["scores"][stage]]
    assert len(scored) == 2 + 1 and selection["best_fine_tuned"]["J&F"] == max(s["J&F"] for s in scored)
    # whether fine-tuning gains is measured, not assumed; every epoch stays a working tracker
    assert min(s["J&F"] for s in scored) > finetune["zero_motion"]["J&F"] + 0.2
    # the pick is the best candidate, the starting weights included (they win a tie)
    assert selection["best"]["J&F"] == max([finetune["start"]["J&F"]] + [s["J&F"] for s in scored])
    assert (selection["best"]["stage"] == 0) == (finetune["start"]["J&F"] >= selection["best_fine_tuned"]["J&F"])
    # claims 1 and 2 on the held-out test split, every test video
    assert [(c["claim"], c["videos"]) for c in selection["test"]] == [("finetune", 24), ("stage2", 24)]
    # every pick of the run is the best candidate on valid, doing nothing included
    kernel = io.read_json(out / "05_morphology_ablation" / "metrics.json")
    assert kernel["best_paper"]["J&F"] == max(v["J&F"] for name, v in kernel["variants"].items() if name.startswith("paper-"))
    fused = io.read_json(out / "06_multiscale_fusion" / "metrics.json")
    singles = [p["J&F"] for p in fused["passes"].values() if p["transform"] == "identity"]
    assert fused["scale_set"]["J&F"] >= max(singles) - 1e-12 or kernel["best_paper"]["kernel"] > 1
    # the final numbers: the full recipe on the test split against the starting model (claim 8)
    card = {row["claim"][:3]: row for row in io.read_json(out / "07_report" / "metrics.json")["scorecard"]}
    assert card["(8)"]["split"] == "test" and card["(8)"]["videos"] == 24
    assert card["(6)"]["baseline"].startswith("the best single scale")
    assert all(row["verdict"] != "not run" for key, row in card.items() if key != "(7)")  # no transforms in the demo
    assert io.read_json(out / "manifest.json")["environment"]["git_commit"]
    # the saved chapters are read, not watched: no progress-bar lines in them
    for executed in sorted(out.glob("[0-9][0-9]_*.ipynb")):
        outputs = [o for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code" for o in c.outputs]
        # a bar is a stream's line, or in a notebook kernel a widget whose text form is its first state
        texts = [o["text"] if o.output_type == "stream" else o.get("data", {}).get("text/plain", "") for o in outputs]
        bars = [line for text in texts for line in text.replace("\r", "\n").splitlines() if re.search(r"\d+%\|", line)]
        assert len(bars) <= 3, (executed.name, bars[:5])
    # under its parameters, each chapter says which values this run changed and why (the params file's words)
    shown = [o.get("data", {}).get("text/markdown", "") for c in nbformat.read(out / "02_finetune.ipynb", as_version=4).cells
             if c.cell_type == "code" for o in c.outputs]
    assert any("- `stage1_epochs` = `2` instead of `3`: " in text and "paper: 10" in text for text in shown)
    # a person reads J, F and J&F in percent: in the report's tables and words, and in the README's block
    from fvos_utils.studies import report

    for text in ((out / "07_report" / "report.md").read_text(), report.readme_results("pytest-demo")):
        assert units.score_cells_not_in_percent(text) == [] and units.fractions_in_words(text) == []
    # every table of the run and results.tex set on a one-column and a two-column page by TeX Live
    if texlive.available():
        chapter_tables = sorted(p for p in out.glob("[0-9][0-9]_*/*.tex") if p.name != "results.tex")
        printed = texlive.check_tables(chapter_tables, tmp_path / "latex", values=out / "07_report" / "results.tex")
        assert printed["claim8.test.JF"] == f"{100 * card['(8)']['J&F']:.2f}"
        assert len(chapter_tables) >= 20 and len(printed) > 50
    # every figure of the run legible in print: no text smaller than the caption's once set on the page
    run_figures = sorted(out.glob("[0-9][0-9]_*/*.pdf"))
    assert len(run_figures) >= 15 and figure_print.too_small(run_figures) == []



def test_a_chapter_says_which_values_this_run_changed_and_why(monkeypatch):
    """Papermill's injected cell lists values without a word on which ran: chapter.start names those that
    differ from the parameters cell, with the --set or the params file's comment that gave them."""
    from fvos_utils.run import chapter

    demo = pipeline.paths.params_dir() / "demo.yaml"
    monkeypatch.setenv(chapter.RUN_VALUES_ENV, json.dumps({"params_file": str(demo),
                                                           "overrides": ["04_sigmoid_search.threads=1"]}))
    params = pipeline.load_run_params(demo, ["04_sigmoid_search.threads=1"])
    values = pipeline.parameter_values(params, "04_sigmoid_search")
    rows = {row["name"]: row for row in chapter.values_used("04_sigmoid_search", values)}
    assert sorted(rows) == ["sigmoid_biases", "sigmoid_scales"]  # threads=1 is the cell's own default
    assert rows["sigmoid_scales"]["why"] == ("`params/demo.yaml`: 2 x 2 pairs, each scoring all 24 valid videos; "
                                             "SAM 2's default is 20 / -10")
    values["threads"] = 2
    rows = {row["name"]: row for row in chapter.values_used("04_sigmoid_search", values)}
    assert rows["threads"]["why"] == "`--set 04_sigmoid_search.threads=1`"
    note = chapter.values_note(chapter.values_used("02_finetune", pipeline.parameter_values(params, "02_finetune")))
    assert "- `stage2_epochs` = `1` instead of `2`: `params/demo.yaml`: paper: 40" in note
    assert "- `threads` = `2` instead of `1`: `params/demo.yaml`: torch threads of every chapter" in note
    monkeypatch.delenv(chapter.RUN_VALUES_ENV)
    assert chapter.values_note(chapter.values_used("04_sigmoid_search", {"sigmoid_scales": [1.0]})).endswith(
        "- `sigmoid_scales` = `[1.0]` instead of `[10.0, 20.0, 30.0]`: given by the caller")


def test_chapter_kernels_start_without_progress_bars(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "0")
    with pipeline.kernel_environment():
        assert os.environ["TQDM_DISABLE"] == "1"  # what a kernel started here inherits
    assert os.environ["TQDM_DISABLE"] == "0"
    monkeypatch.delenv("TQDM_DISABLE")
    with pipeline.kernel_environment():
        pass
    assert "TQDM_DISABLE" not in os.environ

"""The papermill chain: params checking, skipping current chapters, failure handling, the manifest.

Runs against a throw-away project (``$FVOS_ROOT``) holding two tiny chapter notebooks, so that it
tests the runner and not the kit's chapters (those are executed by tests/test_notebooks.py).
"""
import json
import subprocess

import nbformat
import pytest

from fvos_utils import pipeline

pytestmark = pytest.mark.notebook


def _notebook(params_src: str, body_src: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body_src)]
    return nb


WRITE_VALUE = """
import json, pathlib, os
out = pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run
out.mkdir(parents=True, exist_ok=True)
(out / "value.json").write_text(json.dumps({"value": value, "seed": seed}))
"""
READ_VALUE = """
import json, pathlib, os
got = json.loads((pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run / "value.json").read_text())
assert not fail, "asked to fail"
(pathlib.Path(os.environ["FVOS_ROOT"]) / "outputs" / run / "doubled.json").write_text(json.dumps(2 * got["value"]))
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    nbformat.write(_notebook('run: str = "x"  # run name\nvalue: int = 1  # a number\nseed: int = 0  # seed',
                             WRITE_VALUE), tmp_path / "notebooks" / "00_data_and_metrics.ipynb")
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
                             '/ settings).read_text(), "force": force}))'),
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
    before = (project / "outputs" / "t" / "value.json").read_text()
    bad = _params(project, GOOD.replace("01_sam2_inference: {}", "01_sam2_inference: {fail: true}"))
    with pytest.raises(pipeline.PipelineError, match=r"chapter 01_sam2_inference failed in cell \d+.*"
                                                     r"AssertionError: asked to fail"):
        pipeline.run_pipeline(bad)
    partial = nbformat.read(project / "outputs" / "t" / "01_sam2_inference.ipynb", as_version=4)
    assert any(o.get("ename") == "AssertionError" for c in partial.cells for o in c.get("outputs", []))
    assert (project / "outputs" / "t" / "value.json").read_text() == before
    state = json.loads((project / "outputs" / "t" / "pipeline_state.json").read_text())
    assert "01_sam2_inference" not in state and "00_data_and_metrics" in state


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("value: 21", "valeu: 21"), r"chapters\.00_data_and_metrics: unknown parameter 'valeu' \(did you mean 'value'\?\)"),
    (GOOD.replace("seed: 3", "sed: 3"), r"common \(no chapter declares it\): unknown parameter 'sed' \(did you mean 'seed'\?\)"),
    (GOOD.replace("run: t", "run: t\nchapter: {}"), r"unknown parameter 'chapter' \(did you mean 'chapters'\?\)"),
    (GOOD.replace("01_sam2_inference", "01_sam_inference"), r"unknown chapter '01_sam_inference'"),
    (GOOD.replace("run: t", "run: ../t"), r"'run' must be a plain folder name"),
    ("run: [", r"p\.yaml: not valid YAML"),
    (GOOD.replace("value: 21", "value: 21, run: u"), r"chapters\.00_data_and_metrics: 'run' is set by the runner"),
    (GOOD.replace("seed: 3", "seed: 3, force: true"), r"common: 'force' is set by the runner"),
])
def test_params_mistakes_are_errors_naming_the_file_and_key(project, text, message):
    with pytest.raises(pipeline.PipelineError, match=message):
        pipeline.load_run_params(_params(project, text))
    assert not (project / "outputs").exists()  # nothing ran


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
@pytest.mark.timeout(2400)
def test_demo_pipeline_end_to_end(tmp_path, monkeypatch):
    """The README's main job on a run of its own: every chapter with its demo settings (about 10 min)."""
    import yaml

    from fvos_utils import io, models

    monkeypatch.delenv("FVOS_ROOT", raising=False)
    params = yaml.safe_load((pipeline.paths.params_dir() / "demo.yaml").read_text())
    params["run"] = "pytest-demo"  # everything else exactly as the demo runs
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(params))
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
    assert len(scored) == 3 + 2 and selection["best"]["J&F"] == max(s["J&F"] for s in scored)
    # whether fine-tuning gains is measured, not assumed (README); every epoch stays a working tracker
    assert min(s["J&F"] for s in scored) > finetune["zero_motion"]["J&F"] + 0.2
    assert selection["improvement_over_start"] == pytest.approx(selection["best"]["J&F"] - finetune["start"]["J&F"])
    steps = io.read_json(out / "07_report" / "metrics.json")["steps"]
    assert [s["chapter"] for s in steps][:4] == ["00", "02", "03", "04"]
    assert io.read_json(out / "manifest.json")["environment"]["git_commit"]

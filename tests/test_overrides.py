"""Batch users' conventions: ``--set SECTION.KEY=VALUE`` overrides of a params file, type-checked as the
file's values, and ``--show`` (every chapter's resolved parameters, nothing run); the same for training."""
import pytest
import yaml

from fvos_utils.base import paths
from fvos_utils.run import pipeline

PAPER = "params/paper_mose_val.yaml"


def test_show_prints_a_common_override_for_every_chapter_that_declares_it(capsys):
    """A cluster's scratch copy of the data without copying the params file: ``--set common.data_root``."""
    assert pipeline.main([PAPER, "--show", "--set", "common.data_root=/scratch/me/MOSE",
                          "--set", "06_multiscale_fusion.scales=[1.0, 1.25]"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    chapters = yaml.safe_load((paths.project_root() / PAPER).read_text())["chapters"]
    declaring = [c for c in chapters if "data_root" in pipeline.notebook_parameters(c)]
    assert len(declaring) >= 6 and list(shown["chapters"]) == list(chapters)
    assert {c: shown["chapters"][c]["data_root"] for c in declaring} == {c: "/scratch/me/MOSE" for c in declaring}
    assert shown["chapters"]["06_multiscale_fusion"]["scales"] == [1.0, 1.25]
    assert shown["chapters"]["03_epoch_selection"]["server_root"] == "data/MOSE"  # only what was set changes
    assert shown["overrides"] == ["common.data_root=/scratch/me/MOSE", "06_multiscale_fusion.scales=[1.0, 1.25]"]
    assert not (paths.project_root() / "outputs" / "paper_mose_val").exists()  # nothing ran


@pytest.mark.parametrize("override, message", [
    ("06_multiscale_fusion.scales=abc", "error: --set: chapters.06_multiscale_fusion.scales: expected list, got str 'abc'"),
    ("common.data_rot=x", "error: --set: common (no chapter declares it): unknown parameter 'data_rot' (did you mean "
                          "'data_root'?)"),
    ("00_data_and_metrics.seed=1", "error: --set 00_data_and_metrics.seed=1: '00_data_and_metrics' is not 'common' "
                                   "nor a chapter"),
    ("seed=1", "error: --set seed=1: expected CHAPTER.KEY=VALUE or common.KEY=VALUE"),
    ("common.seed", "error: --set common.seed: expected KEY.SUB=VALUE"),
])
def test_a_bad_override_is_one_line_naming_it(capsys, override, message):
    assert pipeline.main([PAPER, "--show", "--set", override]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_train_show_applies_overrides_and_checks_them(tmp_path, capsys):
    from fvos_utils.data.testing import command_error
    from fvos_utils.method import train

    source = paths.project_root() / "params" / "pretrain_fvos_tiny.yaml"
    assert train.main(["--params", str(source), "--show", "--set", "data.root=/scratch/me/pretrain",
                       "--set", "stage1.epochs=3", "--set", "threads=4"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    expected = yaml.safe_load(source.read_text())
    expected["data"]["root"], expected["stage1"]["epochs"], expected["threads"] = "/scratch/me/pretrain", 3, 4
    assert shown == expected
    assert command_error(train.main, ["--params", str(source), "--show", "--set", "stage1.epochs=abc"]) == \
        f"error: {source}: stage1.epochs must be int, got 'abc'"
    assert command_error(train.main, ["--params", str(source), "--show", "--set", "stage1.epoch=3"]).startswith(
        f"error: {source}: unknown key 'stage1.epoch' (did you mean stage1.'epochs'?)")


# -------------------------------------------------------------------------------------------- threads
@pytest.mark.parametrize("environ, expected", [
    ({}, 64),
    ({"SLURM_CPUS_PER_TASK": "6"}, 6),
    ({"SLURM_CPUS_PER_TASK": "6", "OMP_NUM_THREADS": "3"}, 3),
    ({"SLURM_CPUS_PER_TASK": "128"}, 64),  # never more than the process may run on
])
def test_threads_default_to_the_cpus_the_job_was_given(monkeypatch, environ, expected):
    from fvos_utils.base import provenance

    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))
    assert provenance.allotted_cpus() == expected


def test_infer_without_threads_uses_the_jobs_cpus(tmp_path, monkeypatch):
    """Two ``infer`` runs on one node without ``--threads`` took 144 s and 152 s against 30 s alone."""
    import torch

    from fvos_utils.data.testing import write_mose_layout
    from fvos_utils.method import infer

    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        infer.main(["--data-root", str(data), "--split", "valid", "--ckpt", "random", "--out", str(tmp_path / "pred"),
                    "--no-progress"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

"""The choices passed between chapters (fvos_utils.method.choices): typed records with run-relative paths, and
the one fallback rule by which a step finds its weights, sigmoid, gap filling and scales."""
import json
import shutil
from pathlib import Path

import pytest

from fvos_utils.base import paths
from fvos_utils.base.io import DataError, read_json, write_json
from fvos_utils.method import choices, fusion, models
from fvos_utils.method.postprocess import GapFilling


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """An empty kit folder: outputs/ and data/ resolve under tmp_path."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


def _weights(folder: Path, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not loaded by chosen_model")
    return path


def _epoch_pick(run: str, weights: Path) -> choices.EpochPick:
    return choices.EpochPick(2, 3, choices.weights_reference(run, weights), 0.61, 0.6, 0.62)


def test_records_round_trip_with_their_usual_keys(project):
    pick = _epoch_pick("r", _weights(project / "outputs" / "r" / "train", "e3.pt"))
    path = pick.record("r")
    assert path == project / "outputs" / "r" / "03_epoch_selection" / "best.json"
    stored = read_json(path)
    assert stored == {"stage": 2, "epoch": 3, "weights": "train/e3.pt", "J&F": 0.61, "J": 0.6, "F": 0.62,
                      "gain": None, "gain_low": None, "gain_high": None, "starting_weights": "",
                      "fine_tuned_weights": "", "fine_tuned_label": ""}
    assert choices.EpochPick.read("r") == pick
    # a record written before the later fields existed reads with their defaults
    write_json(path, {k: stored[k] for k in ("stage", "epoch", "weights", "J&F", "J", "F")})
    assert choices.EpochPick.read("r") == pick
    assert choices.EpochPick.read("other") is None  # records are per run
    sigmoid = choices.SigmoidPick(30.0, -15.0, 0.5, None, "random")
    sigmoid.record("r")
    assert choices.SigmoidPick.read("r") == sigmoid and read_json(sigmoid.path("r"))["default J&F"] is None
    scales = choices.ScaleSetPick("low3", (1.0, 1.125, 1.25), 0.4)
    scales.record("r")
    assert choices.ScaleSetPick.read("r") == scales
    kernel = choices.KernelPick("paper", "circle", 3, 0.45)
    kernel.record("r")
    assert choices.KernelPick.read("r").filling == GapFilling("paper", "circle", 3)


def test_a_bad_record_is_an_error_naming_the_file_and_key(project):
    path = choices.SigmoidPick.path("r")
    write_json(path, {"scale": "30", "bias": -15.0, "J&F": 0.5, "default J&F": None, "tuned_on": "random"})
    with pytest.raises(DataError, match=r"best_sigmoid\.json.*'scale' must be float, got '30'"):
        choices.SigmoidPick.read("r")
    write_json(path, {"scale": 30.0})
    with pytest.raises(DataError, match="missing 'bias'"):
        choices.SigmoidPick.read("r")
    write_json(path, [1, 2])
    with pytest.raises(DataError, match="JSON object"):
        choices.SigmoidPick.read("r")


def test_weights_inside_the_run_survive_a_moved_outputs_folder(project, tmp_path_factory):
    weights = _weights(project / "outputs" / "r" / "train" / "stage2" / "weights", "epoch_003.pt")
    _epoch_pick("r", weights).record("r")
    moved = tmp_path_factory.mktemp("elsewhere")
    shutil.move(str(project / "outputs"), str(moved / "outputs"))
    paths_env = pytest.MonkeyPatch()
    paths_env.setenv(paths.ROOT_ENV, str(moved))
    try:
        choice = choices.chosen_model("r", ckpt="random")
        assert choice.checkpoint == str(moved / "outputs" / "r" / "train" / "stage2" / "weights" / "epoch_003.pt")
        assert "stage 2, epoch 3" in choice.source
    finally:
        paths_env.undo()
    outside = _weights(project / "mine", "w.pt")
    assert choices.weights_reference("r", outside) == str(outside.resolve())  # outside the run: absolute


def test_chosen_model_without_records_uses_ckpt(project, monkeypatch):
    choice = choices.chosen_model("r", ckpt=models.RANDOM)
    assert (choice.checkpoint, choice.sigmoid_scale, choice.sigmoid_bias) == ("random", None, None)
    assert "random" in choice.source and "config's" in choice.source
    given = _weights(project / "weights", "mine.pt")
    assert choices.chosen_model("r", ckpt=str(given)).checkpoint == str(given)
    assert choices.chosen_model("r", ckpt="weights/mine.pt").checkpoint == str(given)  # relative to the kit
    with pytest.raises(DataError, match="checkpoint file not found"):
        choices.chosen_model("r", ckpt="weights/missing.pt")
    asked = []
    monkeypatch.setattr(models, "resolve_checkpoint", lambda spec, ckpt: asked.append((spec.name, ckpt)) or given)
    choice = choices.chosen_model("r", model="fvos_tiny", ckpt=models.REGISTRY)
    assert asked == [("fvos_tiny", "registry")] and choice.checkpoint == str(given) and "registry" in choice.source


def test_the_epoch_pick_wins_over_ckpt_and_must_exist(project):
    weights = _weights(project / "outputs" / "r" / "train", "pick.pt")
    _epoch_pick("r", weights).record("r")
    assert choices.chosen_model("r", ckpt="random").checkpoint == str(weights)
    weights.unlink()
    with pytest.raises(DataError, match=r"best\.json.*do not exist"):
        choices.chosen_model("r", ckpt="random")


def test_the_sigmoid_applies_only_to_the_weights_it_was_tuned_on(project):
    pick, other = (_weights(project / "outputs" / "r" / "train", f"{n}.pt") for n in ("pick", "other"))
    _epoch_pick("r", pick).record("r")
    choices.SigmoidPick(15.0, -5.0, 0.5, 0.4, choices.weights_reference("r", pick)).record("r")
    choice = choices.chosen_model("r")
    assert (choice.sigmoid_scale, choice.sigmoid_bias) == (15.0, -5.0) and "scale 15, bias -5" in choice.source
    assert choices.chosen_model("r", tuned_sigmoid=False).sigmoid_scale is None  # chapter 04 searches it
    choices.SigmoidPick(15.0, -5.0, 0.5, 0.4, choices.weights_reference("r", other)).record("r")
    choice = choices.chosen_model("r")
    assert (choice.sigmoid_scale, choice.sigmoid_bias) == (None, None) and "other weights" in choice.source


def test_filling_and_scales_fall_back_to_the_parameters(project):
    filling, source = choices.chosen_filling("r", fill_kernel=3, fill_shape="circle")
    assert filling == GapFilling("paper", "circle", 3) and "no kernel pick" in source
    assert choices.chosen_filling("r")[0] == GapFilling("paper", "square", 2)  # the paper's
    choices.KernelPick("paper", "square", 5, 0.3).record("r")
    assert choices.chosen_filling("r", fill_kernel=3)[0] == GapFilling("paper", "square", 5)
    assert choices.chosen_scales("r", scales=[1.0, 1.5])[0] == (1.0, 1.5)
    choices.ScaleSetPick("wide3", fusion.SCALE_SETS["wide3"], 0.3).record("r")
    assert choices.chosen_scales("r", scales=[1.0, 1.5]) == (fusion.SCALE_SETS["wide3"], "chapter 06's pick (wide3, J&F 30.00)")


def test_model_choice_builds_with_its_sigmoid():
    choice = choices.ModelChoice("fvos_tiny", "random", 15.0, -5.0, "test")
    predictor = choice.build(scale=1.125)
    assert predictor.image_size == 288
    assert (predictor.sigmoid_scale_for_mem_enc, predictor.sigmoid_bias_for_mem_enc) == (15.0, -5.0)
    assert choices.ModelChoice("fvos_tiny", "random", None, None, "").build().sigmoid_scale_for_mem_enc == 20.0
    assert choice.spec(seed=3).weights == "random (seed 3)" and json.dumps(choice.as_dict())

"""Epoch selection, the memory-sigmoid grid, and the MOSE submission zip."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fvos_utils.base import io, paths
from fvos_utils.data import datasets, submissions, synthetic, testing
from fvos_utils.method import choices, infer, models, train
from fvos_utils.metrics import evaluate
from fvos_utils.studies import epoch_selection, sigmoid_search

TINY_DATA = synthetic.SyntheticConfig(videos_train=1, videos_valid=2, videos_test=2, frames=(5, 6), size=(96, 64),
                                      objects=(1, 2))


# ----------------------------------------------------------------------------------- epoch selection
def test_select_best_is_the_argmax_and_the_earliest_on_a_tie():
    scores = [{"epoch": e, "J&F": v} for e, v in [(1, 0.2), (2, 0.7), (3, 0.5), (4, 0.7), (5, 0.1)]]
    assert epoch_selection.select_best(scores)["epoch"] == 2
    assert epoch_selection.select_best(scores[2:])["epoch"] == 4
    assert epoch_selection.select_best(list(reversed(scores)))["epoch"] == 2
    with pytest.raises(ValueError, match="no epoch scores"):
        epoch_selection.select_best([])


def test_recorded_best_epoch_is_what_stage_two_starts_from(kit_root):
    scores = [{"epoch": 1, "J&F": 0.3}, {"epoch": 2, "J&F": 0.6}, {"epoch": 3, "J&F": 0.4}]
    assert epoch_selection.record_best("r", 1, scores)["epoch"] == 2
    assert epoch_selection.read_best("r", 1)["scores"] == scores
    assert train.best_epoch_file("r", 1) == kit_root / "outputs" / "r" / "train" / "stage1" / "best_epoch.json"


def test_epoch_scores_equal_a_fresh_predictor_per_epoch(kit_root):
    """One predictor reloaded per epoch scores exactly what a predictor built from each file does."""
    data = synthetic.generate(kit_root / "data", seed=5, config=TINY_DATA, progress=False)
    stage = train.stage_dir("r", 1)
    for epoch, seed in ((1, 0), (2, 1)):
        models.save_checkpoint(models.build_predictor("fvos_tiny", "random", seed=seed, device="cpu"),
                               train.weights_path(stage, epoch))
    gt = data / "valid_gt" / "Annotations"
    scores = epoch_selection.score_epochs(stage, data_root=data, gt_dir=gt, out_dir=kit_root / "sel", progress=False)
    assert [s["epoch"] for s in scores] == [1, 2]
    for entry in scores:
        fresh = kit_root / f"fresh{entry['epoch']}"
        infer.run_dataset(models.build_predictor("fvos_tiny", entry["weights"], device="cpu"), data, fresh,
                          model="fvos_tiny", weights=entry["weights"], split="valid", progress=False)
        expected = evaluate.evaluate(gt, fresh, progress=False)["global"]
        assert entry["J&F"] == pytest.approx(expected["J&F"], abs=1e-12)
        assert entry["J"] == pytest.approx(expected["J"], abs=1e-12)
    assert scores[0]["J&F"] != scores[1]["J&F"]  # different weights really were loaded
    # sharded over two processes (as over two GPUs), each building each epoch's predictor: the same scores
    sharded = epoch_selection.score_epochs(stage, data_root=data, gt_dir=gt, out_dir=kit_root / "sel2", processes=2,
                                     device="cpu", progress=False)
    assert sharded == scores
    with pytest.raises(io.DataError, match=r"no weights for epoch\(s\) \[7\]"):
        epoch_selection.score_epochs(stage, data_root=data, gt_dir=gt, out_dir=kit_root / "sel", epochs=[7])


def test_epochs_on_the_test_split_against_the_start_with_intervals(kit_root):
    """score_weights and score_epochs on the test split score what the evaluator gives for a fresh run; the
    epoch table's changes and intervals are paired_difference's against the starting weights."""
    data = synthetic.generate(kit_root / "data", seed=5, config=TINY_DATA, progress=False)
    test = datasets.ValidationSplit(data, data / "test_gt" / "Annotations", data / "meta.json",
                                    io.VOSDataset(data, "test").video_names(), "test")
    start_weights, stage = kit_root / "start.pt", train.stage_dir("r", 1)
    models.save_checkpoint(models.build_predictor("fvos_tiny", "random", seed=0, device="cpu"), start_weights)
    for epoch, seed in ((1, 1), (2, 2)):
        models.save_checkpoint(models.build_predictor("fvos_tiny", "random", seed=seed, device="cpu"),
                               train.weights_path(stage, epoch))
    start = epoch_selection.score_weights("fvos_tiny", start_weights, test, kit_root / "start")
    fresh = kit_root / "fresh"
    infer.run_dataset(models.build_predictor("fvos_tiny", start_weights, device="cpu"), data, fresh, model="fvos_tiny",
                      weights=str(start_weights), split="test", progress=False)
    expected = evaluate.evaluate(test.gt_dir, fresh, progress=False)
    assert start["J&F"] == pytest.approx(expected["global"]["J&F"], abs=1e-12)
    assert [(o["video"], o["object"], o["J"], o["F"]) for o in start["objects"]] == \
        [(o["video"], o["object"], o["J"], o["F"]) for o in expected["objects"]]
    scores = {1: epoch_selection.score_epochs(stage, data_root=data, split="test", gt_dir=test.gt_dir,
                                        out_dir=kit_root / "sel", progress=False)}
    table = epoch_selection.epoch_table(scores, start)
    assert table.index.tolist() == [(1, 1), (1, 2)]
    for entry in scores[1]:
        change = evaluate.paired_difference(start, entry)
        row = table.loc[(1, entry["epoch"])]
        assert row["dJ&F"] == pytest.approx(entry["J&F"] - start["J&F"], abs=1e-12)
        assert (row["CI low"], row["CI high"]) == (change.ci_low, change.ci_high)


def test_epochs_of_a_stage_that_never_trained_is_an_error(kit_root):
    with pytest.raises(io.DataError, match="no per-epoch weights"):
        epoch_selection.score_epochs(kit_root / "nothing", data_root=kit_root, gt_dir=kit_root, out_dir=kit_root / "o")


# ------------------------------------------------------------------------------------ sigmoid search
class FakePredictor:
    """Just the two attributes SAM 2 reads on every memory encoding."""

    sigmoid_scale_for_mem_enc = 20.0
    sigmoid_bias_for_mem_enc = -10.0



def test_sigmoid_search_sharded_over_two_processes_scores_as_one_predictor(kit_root):
    """Each process builds each pair's predictor itself; one process sets each pair on one predictor."""
    data = synthetic.generate(kit_root / "data", seed=5, config=TINY_DATA, progress=False)
    spec = models.PredictorSpec("fvos_tiny", models.RANDOM, seed=1)
    runs = {n: sigmoid_search.sigmoid_search(spec, scales=[20.0], biases=[-10.0, 0.0], data_root=data,
                                        gt_dir=data / "valid_gt" / "Annotations", out_dir=kit_root / f"grid{n}",
                                        processes=n, device="cpu", progress=False) for n in (1, 2)}
    assert runs[1] == runs[2] and list(runs[1]) == [(20.0, -10.0), (20.0, 0.0)]
    assert runs[1][(20.0, -10.0)]["J&F"] != runs[1][(20.0, 0.0)]["J&F"]  # the pair reached the memory encoder

def test_sigmoid_grid_sets_each_pair_on_one_predictor(monkeypatch, tmp_path):
    seen = []
    predictor = FakePredictor()
    monkeypatch.setattr(models.PredictorSpec, "build", lambda spec, device=None: predictor)

    def score(spec, *, predictor, **kwargs):  # a known surface with its peak at scale 15, bias -5, over two videos
        scale, bias = predictor.sigmoid_scale_for_mem_enc, predictor.sigmoid_bias_for_mem_enc
        assert (spec.sigmoid_scale, spec.sigmoid_bias) == (scale, bias)
        seen.append((scale, bias, kwargs["out_dir"].name))
        jf = 1.0 - (scale - 15) ** 2 / 100 - (bias + 5) ** 2 / 100
        return {"J&F": jf, "J": jf, "F": jf, **testing.evaluator_result({("a", 1): (jf, jf), ("b", 1): (jf - scale / 1000, jf)})}

    monkeypatch.setattr(epoch_selection, "score_model", score)
    scales, biases = [10.0, 15.0, 20.0], [-10.0, -5.0]
    results = sigmoid_search.sigmoid_search(models.PredictorSpec("fvos_tiny", "w.pt"), scales=scales, biases=biases,
                                       data_root=tmp_path, gt_dir=tmp_path, out_dir=tmp_path, processes=1,
                                       progress=False)
    assert list(results) == [(s, b) for s in scales for b in biases]
    grid = sigmoid_search.sigmoid_grid(results, scales, biases)
    expected = np.array([[1 - (s - 15) ** 2 / 100 - (b + 5) ** 2 / 100 for b in biases] for s in scales])
    np.testing.assert_allclose(grid, expected)
    table = sigmoid_search.sigmoid_table(results)  # against the default 20 / -10
    for pair, result in results.items():
        change = evaluate.paired_difference(results[(20.0, -10.0)], result)
        assert table.loc[pair, ["dJ&F", "CI low", "CI high"]].tolist() == [change.delta, change.ci_low, change.ci_high]
    assert "dJ&F" not in sigmoid_search.sigmoid_table(results, default=(1.0, 2.0))  # default not on the grid
    assert [(s, b) for s, b, _ in seen] == [(s, b) for s in scales for b in biases]
    assert len({name for _, _, name in seen}) == 6  # one prediction folder per pair
    # a pair already scored on these videos is taken as it is, in its place in the grid, and not run again
    seen.clear()
    known = {(20.0, -10.0): results[(20.0, -10.0)]}
    again = sigmoid_search.sigmoid_search(models.PredictorSpec("fvos_tiny", "w.pt"), scales=scales, biases=biases,
                                     data_root=tmp_path, gt_dir=tmp_path, out_dir=tmp_path, processes=1, known=known,
                                     progress=False)
    assert list(again) == list(results) and again[(20.0, -10.0)] is known[(20.0, -10.0)]
    assert [(s, b) for s, b, _ in seen] == [(s, b) for s in scales for b in biases if (s, b) != (20.0, -10.0)]
    pick = sigmoid_search.pick_sigmoid("r", grid, scales, biases, tuned_on="random")
    assert (pick.scale, pick.bias, pick.j_and_f, pick.tuned_on) == (15.0, -5.0, 1.0, "random")
    assert pick.default_j_and_f == pytest.approx(expected[2, 0])  # the config's 20 / -10 is on this grid


def test_the_sigmoid_pick_takes_the_first_maximum_and_names_its_weights(kit_root):
    grid = np.array([[0.1, 0.5], [0.2, 0.5]])  # the default pair (20, -10) is the 0.2; two maxima
    weights = kit_root / "outputs" / "r" / "train" / "stage1" / "weights" / "epoch_001.pt"
    pick = sigmoid_search.pick_sigmoid("r", grid, [1, 20], [-10, 4], tuned_on=str(weights))
    assert (pick.scale, pick.bias, pick.j_and_f, pick.default_j_and_f) == (1.0, 4.0, 0.5, 0.2)
    assert pick.tuned_on == "train/stage1/weights/epoch_001.pt"  # relative to the run folder
    with pytest.raises(ValueError, match="not on the grid"):
        sigmoid_search.pick_sigmoid("r", grid, [1, 2], [3, 4], tuned_on=str(weights))


def test_the_sigmoid_pick_keeps_the_default_pair_unless_another_beats_it(kit_root):
    scales, biases = sigmoid_search.with_default_pair([30.0], [-15.0, -5.0])
    assert (scales, biases) == ([20.0, 30.0], [-15.0, -10.0, -5.0])
    grid = np.array([[0.5, 0.6, 0.6], [0.6, 0.55, 0.3]])  # (20, -10) ties the best: doing nothing wins
    pick = sigmoid_search.pick_sigmoid("r", grid, scales, biases, tuned_on="random")
    assert (pick.scale, pick.bias, pick.j_and_f, pick.default_j_and_f) == (20.0, -10.0, 0.6, 0.6)
    grid[1, 0] = 0.61
    pick = sigmoid_search.pick_sigmoid("r", grid, scales, biases, tuned_on="random")
    assert (pick.scale, pick.bias, pick.j_and_f) == (30.0, -15.0, 0.61)
    results = {(s, b): {"J&F": float(grid[i, j])} for i, s in enumerate(scales) for j, b in enumerate(biases)}
    assert sigmoid_search.best_other_pair(results) == (30.0, -15.0)
    assert sigmoid_search.best_other_pair({(20.0, -10.0): {"J&F": 0.5}}) is None


def test_the_epoch_pick_prefers_the_best_then_the_earlier_stage_and_epoch(kit_root):
    def objects(jf):
        return [{"video": f"v{i}", "object": 1, "J": jf - 0.01, "F": jf + 0.01} for i in range(3)]

    def entry(stage, epoch, jf):
        weights = train.weights_path(train.stage_dir("r", stage), epoch)
        return {"epoch": epoch, "weights": str(weights), "J&F": jf, "J": jf - 0.01, "F": jf + 0.01,
                "objects": objects(jf)}

    start = {"J&F": 0.5, "J": 0.49, "F": 0.51, "objects": objects(0.5)}
    scores = {1: [entry(1, 1, 0.4), entry(1, 2, 0.6)], 2: [entry(2, 1, 0.6), entry(2, 2, 0.5)]}
    pick = epoch_selection.pick_epoch("r", scores, start_weights="random", start=start)
    assert (pick.stage, pick.epoch, pick.j_and_f, pick.weights) == (1, 2, 0.6, "train/stage1/weights/epoch_002.pt")
    assert pick.fine_tuned and pick.label == "stage 1, epoch 2"
    # its change from the starting weights (every video +0.1), and what the paper's recipe would use
    assert (pick.gain, pick.gain_low, pick.gain_high) == (pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.1))
    assert (pick.starting_weights, pick.fine_tuned_label) == ("random", "stage 1, epoch 2")
    scores[2].append(entry(2, 3, 0.7))
    pick = epoch_selection.pick_epoch("r", scores, start_weights="random", start=start)
    assert (pick.stage, pick.epoch) == (2, 3)
    # the starting weights win: the best fine-tuned epoch is still recorded, for the paper's recipe
    pick = epoch_selection.pick_epoch("r", scores, start_weights="random", start={**start, "J&F": 0.8})
    assert (pick.stage, pick.gain, pick.fine_tuned_weights) == (0, None, "train/stage2/weights/epoch_003.pt")
    assert epoch_selection.best_epoch(scores, stages=[1])[1]["epoch"] == 2
    with pytest.raises(ValueError, match="no epoch scores"):
        epoch_selection.pick_epoch("r", {1: [], 2: []}, start_weights="random", start=start)


def test_the_epoch_pick_keeps_the_starting_weights_unless_an_epoch_beats_them(kit_root):
    start_weights = kit_root / "start.pt"
    scores = {1: [{"epoch": 1, "weights": "w1", "J&F": 0.58, "J": 0.5, "F": 0.66}],
              2: [{"epoch": 1, "weights": "w2", "J&F": 0.6, "J": 0.5, "F": 0.7}]}
    for start_jf in (0.6, 0.61):  # a tie, then a loss: every fine-tuned epoch is no better than the start
        pick = epoch_selection.pick_epoch("r", scores, start_weights=str(start_weights),
                                    start={"J&F": start_jf, "J": 0.55, "F": 0.65})
        assert (pick.stage, pick.epoch, pick.j_and_f) == (choices.STARTING_STAGE, 0, start_jf)
        assert not pick.fine_tuned and pick.label == "the starting weights"
        assert pick.weights == str(start_weights)  # outside the run folder: absolute


# ------------------------------------------------------------------------------- submission zip
@pytest.fixture
def val_and_predictions(tmp_path) -> tuple[Path, Path]:
    """A two-video val folder (JPEG frames, first-frame masks) and matching predictions."""
    val, pred = tmp_path / "valid", tmp_path / "pred"
    rng = np.random.default_rng(0)
    for video, (h, w), n in (("aaa", (24, 32), 3), ("bbb", (20, 20), 2)):
        for t in range(n):
            io.write_frame(val / "JPEGImages" / video / f"{t:05d}.jpg", rng.integers(0, 255, (h, w, 3), np.uint8))
            io.write_mask(pred / video / f"{t:05d}.png", rng.integers(0, 3, (h, w), np.uint8))
        io.write_mask(val / "Annotations" / video / "00000.png", np.ones((h, w), np.uint8))
    return val, pred


def test_submission_zip_holds_every_prediction_byte_for_byte(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    zip_path = submissions.write_submission(pred, val, tmp_path / "out" / "submission.zip", split=None)
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        assert names == ["Annotations/aaa/00000.png", "Annotations/aaa/00001.png", "Annotations/aaa/00002.png",
                         "Annotations/bbb/00000.png", "Annotations/bbb/00001.png"]
        for name in names:
            assert archive.read(name) == (pred / name.split("/", 1)[1]).read_bytes()


def test_submission_ignores_and_leaves_out_the_temporaries_of_a_killed_run(val_and_predictions, tmp_path):
    """A run killed while writing leaves hidden temporaries (a video folder, a frame): not videos or frames."""
    val, pred = val_and_predictions
    io.write_mask(pred / ".bbb.bw4s_wry.tmp" / "00000.png", np.zeros((20, 20), np.uint8))
    io.write_mask(pred / "aaa" / ".00001.png.k2x9.tmp.png", np.zeros((24, 32), np.uint8))
    assert submissions.check_submission(pred, val, split=None) == ["aaa", "bbb"]
    zip_path = submissions.write_submission(pred, val, tmp_path / "submission.zip", split=None)
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["Annotations/aaa/00000.png", "Annotations/aaa/00001.png",
                                              "Annotations/aaa/00002.png", "Annotations/bbb/00000.png",
                                              "Annotations/bbb/00001.png"]


def _rejects(pred, val, tmp_path, match):
    target = tmp_path / "rejected.zip"
    with pytest.raises(io.DataError, match=match):
        submissions.write_submission(pred, val, target, split=None)
    assert not target.exists()


def test_submission_rejects_a_wrong_frame_name(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    (pred / "aaa" / "00001.png").rename(pred / "aaa" / "1.png")
    _rejects(pred, val, tmp_path, r"aaa/1\.png.*does not match a frame")


def test_submission_rejects_a_missing_frame(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    (pred / "bbb" / "00001.png").unlink()
    _rejects(pred, val, tmp_path, r"bbb/00001\.png.*prediction missing")


def test_submission_rejects_a_wrong_size(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    io.write_mask(pred / "aaa" / "00002.png", np.zeros((24, 31), np.uint8))
    _rejects(pred, val, tmp_path, r"aaa/00002\.png.*size 31x24 \(WxH\) differs from the frame 00002\.jpg 32x24")


def test_submission_rejects_rgb_and_foreign_palettes(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    Image.new("RGB", (20, 20)).save(pred / "bbb" / "00000.png")
    _rejects(pred, val, tmp_path, r"bbb/00000\.png.*image mode 'RGB'")
    odd = Image.new("P", (20, 20))
    odd.putpalette([255, 255, 255] * 256)
    odd.save(pred / "bbb" / "00000.png")
    _rejects(pred, val, tmp_path, r"bbb/00000\.png.*palette differs")


def test_submission_rejects_missing_and_extra_videos(val_and_predictions, tmp_path):
    val, pred = val_and_predictions
    (pred / "zzz").mkdir()
    _rejects(pred, val, tmp_path, r"pred/zzz.*not in the val folder")
    (pred / "zzz").rmdir()
    for png in (pred / "bbb").iterdir():
        png.unlink()
    (pred / "bbb").rmdir()
    _rejects(pred, val, tmp_path, r"pred/bbb.*prediction folder missing")


def test_the_domain_gap_is_here_minus_the_pretraining_world_per_tag():
    here = {"global": {"J&F": 0.4}, "per_tag": {"crowd": {"J&F": 0.3}, "small": {"J&F": 0.2}}}
    gap = epoch_selection.domain_gap_table(here, {"J&F": 0.6, "per_tag": {"crowd": 0.5}})
    assert gap.index.tolist() == ["all videos", "tag: crowd", "tag: small"]
    assert gap["gap"].iloc[:2].tolist() == pytest.approx([-0.2, -0.2])
    assert np.isnan(gap.loc["tag: small", "gap"])  # no video of the pretraining world carried that tag
    # of the bundled weights, against their record; of any other weights, none
    bundled = models.resolve_checkpoint(models.get_spec("fvos_tiny"), models.REGISTRY)
    world = models.bundled_record("fvos_tiny", bundled)["scores"][epoch_selection.PRETRAIN_WORLD]
    assert epoch_selection.domain_gap("fvos_tiny", bundled, here).equals(epoch_selection.domain_gap_table(here, world))
    assert epoch_selection.domain_gap("fvos_tiny", models.RANDOM, here) is None


def test_the_sigmoid_heatmap_colours_the_change_from_the_default_on_a_fixed_minimum_span():
    import matplotlib.pyplot as plt

    grid = np.array([[0.581, 0.585], [0.591, 0.583]])  # (20, -10) is 0.583: every change within 0.01
    fig, ax = plt.subplots()
    image = sigmoid_search.plot_sigmoid_grid(ax, grid, [10.0, 20.0], [-15.0, -10.0])
    np.testing.assert_allclose(image.get_array(), 100 * (grid - 0.583))  # in points
    assert image.get_clim() == (-100 * sigmoid_search.SIGMOID_COLOUR_SPAN, 100 * sigmoid_search.SIGMOID_COLOUR_SPAN)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["58.10", "58.50", "59.10", "58.30 (default)"]
    grid[0, 0] = 0.483  # a change beyond the minimum span sets the scale
    image = sigmoid_search.plot_sigmoid_grid(ax, grid, [10.0, 20.0], [-15.0, -10.0])
    assert image.get_clim() == pytest.approx((-10, 10))
    plt.close(fig)


def test_the_epoch_plot_has_one_legend_entry_per_series():
    import matplotlib.pyplot as plt

    scores = {1: [{"epoch": e, "J&F": j} for e, j in ((1, 0.5), (2, 0.6))], 2: [{"epoch": 1, "J&F": 0.55}]}
    fig, ax = plt.subplots()
    epoch_selection.plot_epoch_scores(ax, scores, baseline=0.2, reference=0.58)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["stage 1", "best epoch of its stage", "stage 2", "starting model (58.00)",
                      "zero-motion baseline (20.00, off the axis)"]
    # percent on the y axis, spanning the epochs and the start: the baseline far below would flatten them
    low, high = ax.get_ylim()
    assert 47 < low < 50 and 60 < high < 63
    plt.close(fig)


def test_the_epoch_plot_marks_the_pick_and_its_caption_says_what_was_picked():
    import matplotlib.pyplot as plt

    scores = {1: [{"epoch": e, "J&F": j} for e, j in ((1, 0.5), (2, 0.6))], 2: [{"epoch": 1, "J&F": 0.55}]}
    tuned = choices.EpochPick(1, 2, "w", 0.6, 0.6, 0.6)
    fig, ax = plt.subplots()
    epoch_selection.plot_epoch_scores(ax, scores, baseline=0.57, reference=0.58, pick=tuned)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "the pick: stage 1, epoch 2" in labels and "zero-motion baseline (57.00)" in labels  # near: drawn
    star = [c for c in ax.collections if c.get_label() == "the pick: stage 1, epoch 2"][0]
    assert star.get_offsets().tolist() == [[2.0, 60.0]]
    plt.close(fig)
    assert epoch_selection.epoch_figure_caption(tuned, scores).endswith(
        "the pick, stage 1, epoch 2 (J&F 60.00), is starred.")
    start = choices.EpochPick(choices.STARTING_STAGE, 0, "w0", 0.58, 0.58, 0.58)
    fig, ax = plt.subplots()
    epoch_selection.plot_epoch_scores(ax, scores, reference=0.58, pick=start)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "starting model (58.00); the pick" in labels and not any(label.startswith("the pick") for label in labels)
    plt.close(fig)
    caption = epoch_selection.epoch_figure_caption(start, scores)
    assert "(2 + 1 epochs)" in caption and caption.endswith(
        "the pick is the starting weights (J&F 58.00), as no epoch scored above them.")


def test_the_default_pair_of_the_pick_is_read_back_where_it_was_scored_on_the_same_videos(kit_root):
    objects = testing.evaluator_result({("v1", 1): (0.5, 0.5), ("v2", 1): (0.6, 0.6)})["objects"]
    start = {"J&F": 0.55, "J": 0.55, "F": 0.55, "objects": objects}
    epoch = {"epoch": 2, "weights": "w", "J&F": 0.6, "J": 0.6, "F": 0.6, "objects": objects}
    io.write_json(kit_root / "outputs" / "r" / "02_finetune" / "metrics.json",
                  {"parameters": {"data_root": "data/x", "seed": 0}, "start": start})
    io.write_json(kit_root / "outputs" / "r" / "03_epoch_selection" / "metrics.json", {"scores": {"1": [epoch]}})
    found = dict(data_root="data/x", seed=0, videos=["v2", "v1"])
    assert sigmoid_search.pick_default_scores("r", **found) is None  # chapter 03 has not picked
    choices.EpochPick(choices.STARTING_STAGE, 0, "w0", 0.55, 0.55, 0.55).record("r")
    assert sigmoid_search.pick_default_scores("r", **found) == start
    choices.EpochPick(1, 2, "w", 0.6, 0.6, 0.6).record("r")
    assert sigmoid_search.pick_default_scores("r", **found) == epoch
    assert sigmoid_search.pick_default_scores("r", **{**found, "seed": 1}) is None  # another set: scored again
    assert sigmoid_search.pick_default_scores("r", **{**found, "videos": ["v1"]}) is None


def test_the_held_out_scores_carry_the_pick_s_own_test_scores():
    on_test = {"start": {"J&F": 0.6}, 1: {"J&F": 0.62}, 2: {"J&F": 0.61}}
    tuned = epoch_selection.held_out_scores(choices.EpochPick(2, 1, "w", 0.7, 0.7, 0.7), on_test, 24)
    assert (tuned.videos, tuned.starting, tuned.picked, tuned.picked_label) == (24, on_test["start"], on_test[2],
                                                                                "stage 2, epoch 1")
    start = epoch_selection.held_out_scores(choices.EpochPick(choices.STARTING_STAGE, 0, "w0", 0.7, 0.7, 0.7), on_test, 24)
    assert start.picked == on_test["start"] and start.picked_label == choices.STARTING_LABEL


def test_the_mapping_figure_draws_each_pair_and_marks_the_default():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = sigmoid_search.mapping_figure([10.0, 20.0], [-5.0, -10.0])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert sorted(lines) == ["scale 10, bias -10", "scale 10, bias -5", "scale 20, bias -10 (default)", "scale 20, bias -5"]
    chosen = lines["scale 20, bias -10 (default)"]
    assert chosen.get_linestyle() == "-" and all(lines[k].get_linestyle() == "--" for k in lines if lines[k] is not chosen)
    x, y = chosen.get_xdata(), chosen.get_ydata()
    np.testing.assert_allclose(y, 20 / (1 + np.exp(-x)) - 10)  # SAM 2's 20 / -10 is the default
    assert x.min() == -8 and x.max() == 8
    plt.close(fig)

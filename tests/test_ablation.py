"""The ablation runners of chapters 05 and 06: which model they pick, what they fill, fuse and score,
checked against literal per-pixel references and hand-computed numbers; the two notebooks end to end."""
import json
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import nbformat
import numpy as np
import papermill
import pandas as pd
import pytest
from PIL import Image

from fvos_utils import ablation, evaluate, fusion, infer, models, paths, postprocess, train
from fvos_utils.io import DataError, read_json, read_mask, remove_dir, write_frame, write_json, write_mask
from fvos_utils.probs import load_probs, save_probs
from fvos_utils.testing import checked_outputs, moving_objects, write_mose_layout


# ------------------------------------------------------------------------------ literal references
def literal_vote(maps) -> np.ndarray:
    """Per pixel: the most frequent label; a tie goes to the first map's label if tied, else the highest."""
    out = np.zeros(maps[0].shape, np.int64)
    for y, x in np.ndindex(out.shape):
        votes = Counter(int(m[y, x]) for m in maps)
        tied = [label for label, n in votes.items() if n == max(votes.values())]
        out[y, x] = int(maps[0][y, x]) if int(maps[0][y, x]) in tied else max(tied)
    return out


def literal_soft_vote(stored, ids) -> np.ndarray:
    """Per pixel, from ``(S, N, H, W)`` stored uint8: the object with the largest summed value (the
    highest id among equals) where the mean exceeds 127.5, else 0."""
    sums = stored.astype(np.int64).sum(axis=0)
    out = np.zeros(sums.shape[1:], np.int64)
    for y, x in np.ndindex(out.shape):
        best = sums[:, y, x].max()
        if best * 2 > 255 * len(stored):
            out[y, x] = max(i for i, s in zip(ids, sums[:, y, x]) if s == best)
    return out


def literal_contact(gt) -> np.ndarray:
    """Object pixels (not 0 or 255) with a 4-neighbour holding another object."""
    h, w = gt.shape
    out = np.zeros(gt.shape, bool)
    for y, x in np.ndindex(gt.shape):
        if gt[y, x] in (0, 255):
            continue
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            v, u = y + dy, x + dx
            if 0 <= v < h and 0 <= u < w and gt[v, u] not in (0, 255, gt[y, x]):
                out[y, x] = True
    return out


def result(objects) -> dict:
    """An evaluator-shaped result from ``{(video, object): (J, F)}``."""
    rows = [{"video": v, "object": o, "J": j, "F": f, "J&F": (j + f) / 2} for (v, o), (j, f) in objects.items()]
    jm, fm = np.mean([r["J"] for r in rows]), np.mean([r["F"] for r in rows])
    return {"global": {"J": jm, "F": fm, "J&F": (jm + fm) / 2}, "objects": rows, "per_tag": {}}


# ------------------------------------------------------------------------------- the model choice
@pytest.fixture()
def project(tmp_path, monkeypatch):
    """An empty kit folder: outputs/ and data/ resolve under tmp_path."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


def _weights(project: Path, name: str) -> Path:
    path = project / "weights" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not loaded by resolve_model")
    return path


def test_resolve_model_without_records_uses_ckpt(project):
    choice = ablation.resolve_model("r", ckpt="random")
    assert (choice.checkpoint, choice.sigmoid_scale, choice.sigmoid_bias) == ("random", None, None)
    assert "random" in choice.source and "config's" in choice.source
    given = _weights(project, "mine.pt")
    assert ablation.resolve_model("r", ckpt=str(given)).checkpoint == str(given)
    assert ablation.resolve_model("r", ckpt="weights/mine.pt").checkpoint == str(given)  # relative to the kit
    with pytest.raises(DataError, match="checkpoint file not found"):
        ablation.resolve_model("r", ckpt="weights/missing.pt")


def test_resolve_model_default_asks_the_registry(project, monkeypatch):
    asked = []
    registry_file = _weights(project, "registry.pt")
    monkeypatch.setattr(models, "resolve_checkpoint", lambda spec, ckpt: asked.append((spec.name, ckpt)) or registry_file)
    choice = ablation.resolve_model("r", model="fvos_tiny", ckpt="default")
    assert asked == [("fvos_tiny", None)] and choice.checkpoint == str(registry_file)
    assert "registry" in choice.source


def test_resolve_model_prefers_chapter_3_then_stage_2_then_stage_1(project):
    stage1, stage2, pick = (_weights(project, f"{n}.pt") for n in ("s1", "s2", "pick"))
    write_json(train.best_epoch_file("r", 1), {"epoch": 4, "weights": str(stage1)})
    assert ablation.resolve_model("r", ckpt="random").checkpoint == str(stage1)
    write_json(train.best_epoch_file("r", 2), {"epoch": 2, "weights": str(stage2)})
    choice = ablation.resolve_model("r", ckpt="random")
    assert choice.checkpoint == str(stage2) and "stage-2 epoch" in choice.source and "epoch 2" in choice.source
    write_json(project / "outputs" / "r" / ablation.EPOCH_PICK, {"stage": 1, "epoch": 3, "weights": str(pick)})
    assert ablation.resolve_model("r", ckpt="random").checkpoint == str(pick)
    assert ablation.resolve_model("other", ckpt="random").checkpoint == "random"  # records are per run
    write_json(train.best_epoch_file("gone", 1), {"epoch": 1, "weights": str(project / "nowhere.pt")})
    with pytest.raises(DataError, match="best_epoch.json.*do not exist"):
        ablation.resolve_model("gone", ckpt="random")


def test_resolve_model_takes_the_sigmoid_tuned_on_the_same_weights(project):
    pick, other = _weights(project, "pick.pt"), _weights(project, "other.pt")
    write_json(project / "outputs" / "r" / ablation.EPOCH_PICK, {"epoch": 3, "weights": str(pick)})
    sigmoid = project / "outputs" / "r" / ablation.SIGMOID_PICK
    write_json(sigmoid, {"scale": 15.0, "bias": -5.0, "J&F": 0.5, "weights": str(pick)})
    choice = ablation.resolve_model("r")
    assert (choice.sigmoid_scale, choice.sigmoid_bias) == (15.0, -5.0) and "scale 15, bias -5" in choice.source
    write_json(sigmoid, {"scale": 15.0, "bias": -5.0, "J&F": 0.5, "weights": str(other)})
    choice = ablation.resolve_model("r")
    assert (choice.sigmoid_scale, choice.sigmoid_bias) == (None, None) and "other weights" in choice.source


def test_model_choice_builds_with_its_sigmoid():
    choice = ablation.ModelChoice("fvos_tiny", "random", 15.0, -5.0, "test")
    predictor = choice.build(scale=1.125)
    assert predictor.image_size == 288
    assert (predictor.sigmoid_scale_for_mem_enc, predictor.sigmoid_bias_for_mem_enc) == (15.0, -5.0)
    assert ablation.ModelChoice("fvos_tiny", "random", None, None, "").build().sigmoid_scale_for_mem_enc == 20.0


# ------------------------------------------------------------------------------------ gap filling
def _scene_probs(seed: int, n_frames: int = 3, shape=(24, 30)) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, H, W) uint8`` stored probabilities of three blocky objects with gaps and overlaps,
    and their ids (not in ascending channel order)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    stored = np.zeros((n_frames, 3, h, w), np.uint8)
    for t in range(n_frames):
        edges = np.sort(rng.choice(np.arange(4, w - 4), size=4, replace=False))
        for k, (a, b) in enumerate([(0, edges[0]), (edges[1], edges[2]), (edges[2] - 1, edges[3])]):
            stored[t, k, 2:h - 2, a:b] = rng.integers(128, 256, size=(h - 4, b - a))
        stored[t] |= (rng.random((3, h, w)) < 0.05) * rng.integers(100, 160, size=(3, h, w)).astype(np.uint8)
    return stored, np.array([4, 1, 2], np.int32)


@pytest.fixture()
def run_output(tmp_path):
    """A single-model run's folder: two videos of probabilities and their merged label maps."""
    folder = tmp_path / "single"
    for index, name in enumerate(("vid_a", "vid_b")):
        stored, ids = _scene_probs(index)
        frames = [f"{t:05d}" for t in range(len(stored))]
        save_probs(folder / f"{name}.npz", stored, ids, frames)
        for frame, frame_probs in zip(frames, stored):
            write_mask(folder / name / f"{frame}.png", infer.merge_objects(frame_probs, ids, threshold=127.5))
    return folder


def test_object_masks_threshold_like_the_merge():
    stored = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert np.array_equal(ablation.object_masks(stored), stored / 255 > 0.5)
    with pytest.raises(ValueError, match="uint8"):
        ablation.object_masks(stored.astype(np.float32))


def test_fill_variants_from_probs_fill_the_separate_masks(run_output, tmp_path):
    variants = [ablation.GapFilling("paper", shape, k) for shape in ("square", "circle") for k in (0, 2, 3, 5)]
    variants += [ablation.GapFilling("background", "square", 3), ablation.GapFilling("expand_labels", "square", 5)]
    folders = ablation.fill_variants(run_output, tmp_path / "filled", variants, from_probs=True, progress=False)
    assert set(folders) == set(variants)
    for name in ("vid_a", "vid_b"):
        video = load_probs(run_output / f"{name}.npz")
        for frame, stored in zip(video.frames, video.probs):
            masks = stored > 127  # p > 0.5 as stored
            merged = infer.merge_objects(stored, video.object_ids, threshold=127.5)
            for v in variants:
                got = read_mask(folders[v] / name / f"{frame}.png")
                if v.method == "paper":
                    want = postprocess.fill_gaps_reference(masks, video.object_ids, v.kernel, shape=v.shape)
                elif v.method == "background":  # only the merged map's background may change
                    want = np.where(merged == 0, postprocess.fill_gaps_reference(masks, video.object_ids, v.kernel),
                                    merged)
                else:
                    want = postprocess.fill_gaps_labels(merged, v.kernel, method="expand_labels")
                assert np.array_equal(got, want), (v.name, name, frame)
        # k = 0 from the separate masks is exactly the run's own merge
        assert all(np.array_equal(read_mask(folders[variants[0]] / name / f"{f}.png"),
                                  read_mask(run_output / name / f"{f}.png")) for f in video.frames)


def test_fill_variants_from_labels_and_the_videos_subset(run_output, tmp_path):
    variants = [ablation.GapFilling("paper", "square", 3), ablation.GapFilling("paper", "circle", 5)]
    folders = ablation.fill_variants(run_output, tmp_path / "filled", variants, from_probs=False, videos=["vid_b"],
                                     progress=False)
    for v in variants:
        assert sorted(p.name for p in folders[v].iterdir()) == ["vid_b"]
        for png in sorted((run_output / "vid_b").glob("*.png")):
            want = postprocess.fill_gaps_labels(read_mask(png), v.kernel, shape=v.shape)
            assert np.array_equal(read_mask(folders[v] / "vid_b" / png.name), want)


def test_fill_variants_refuse_and_leave_nothing_behind(run_output, tmp_path):
    work = tmp_path / "filled"
    square3, circle3 = ablation.GapFilling("paper", "square", 3), ablation.GapFilling("paper", "circle", 3)
    ablation.fill_variants(run_output, work, [circle3], from_probs=True, progress=False)
    with pytest.raises(FileExistsError):  # circle3 exists: square3 must not appear either
        ablation.fill_variants(run_output, work, [square3, circle3], from_probs=True, progress=False)
    assert sorted(p.name for p in work.iterdir()) == [circle3.name]
    with pytest.raises(ValueError, match="distinct"):
        ablation.fill_variants(run_output, work, [square3, square3], from_probs=True, overwrite=True)
    with pytest.raises(DataError, match="vid_c.npz.*missing"):
        ablation.fill_variants(run_output, work, [square3], from_probs=True, videos=["vid_c"], overwrite=True)
    with pytest.raises(DataError, match="no probability files"):
        ablation.fill_variants(run_output / "vid_a", work, [square3], from_probs=True, overwrite=True)
    assert sorted(p.name for p in work.iterdir()) == [circle3.name]


def test_gap_filling_variants_and_their_checks():
    variants = ablation.gap_filling_variants((0, 3), methods=("paper", "expand_labels"))
    assert [v.name for v in variants] == ["paper-square-k0", "paper-square-k3", "paper-circle-k0", "paper-circle-k3",
                                          "expand_labels-square-k0", "expand_labels-square-k3"]
    with pytest.raises(ValueError, match="method"):
        ablation.GapFilling("dilate", "square", 3)
    with pytest.raises(ValueError, match="shape"):
        ablation.GapFilling("paper", "diamond", 3)
    with pytest.raises(ValueError, match="kernel_size"):
        ablation.GapFilling("paper", "square", -1)


def test_bridged_gap_table_follows_the_kernel_geometry():
    """A gap pixel x (1..w) is filled iff both dilations cover it. With ``cv2.dilate``'s rule
    dst(x) = max over kernel cells v of src(x + v - a), anchor a = k // 2, the left object grows right by
    a - min(v) and the right one grows left by max(v) - a (v over the kernel's nonzero columns)."""
    widths = (1, 2, 3, 4)
    table = ablation.bridged_gap_table((0, 1, 2, 3, 4, 5, 7, 9), widths=widths)
    for (shape, k), row in table.iterrows():
        if k <= 1:
            assert (row == 0).all()
            continue
        kernel = np.ones((k, k)) if shape == "square" else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        cols = np.flatnonzero(kernel.any(axis=0))
        right, left = k // 2 - cols.min(), cols.max() - k // 2
        for w in widths:
            want = np.mean([x <= right and w + 1 - x <= left for x in range(1, w + 1)])
            assert row[f"gap {w} px"] == pytest.approx(want), (shape, k, w)
    assert (table.loc[("square", 2)] == 0).all()  # the paper's size bridges no straight gap
    assert table.loc[("square", 3), "gap 1 px"] == 1 and table.loc[("square", 4), "gap 2 px"] == 0.5


# ---------------------------------------------------------------------------------------- scores
def test_object_deltas_and_their_summary():
    before = result({("a", 1): (0.5, 0.6), ("a", 2): (0.8, 0.9), ("b", 1): (0.2, 0.4)})
    after = result({("a", 2): (0.7, 0.95), ("a", 1): (0.6, 0.6), ("b", 1): (0.2, 0.4)})
    deltas = ablation.object_deltas(before, after)
    assert deltas.loc[("a", 1), "dJ"] == pytest.approx(0.1) and deltas.loc[("a", 1), "dF"] == 0
    assert deltas.loc[("a", 2), "dJ"] == pytest.approx(-0.1) and deltas.loc[("a", 2), "dF"] == pytest.approx(0.05)
    assert deltas.loc[("a", 2), "J after"] == 0.7
    assert ablation.delta_summary(deltas) == pytest.approx(
        {"mean dJ": 0.0, "mean dF": 0.05 / 3, "objects better": 1, "objects worse": 1, "objects": 3})
    with pytest.raises(ValueError, match="different objects"):
        ablation.object_deltas(before, result({("a", 1): (0.5, 0.6)}))


def test_gap_filling_table_rows():
    base, k3 = ablation.GapFilling(), ablation.GapFilling("paper", "square", 3)
    results = {base: result({("a", 1): (0.5, 0.6), ("a", 2): (0.8, 0.9)}),
               k3: result({("a", 1): (0.6, 0.7), ("a", 2): (0.8, 0.9)})}
    results[k3]["per_tag"] = {"touching": {"J&F": 0.42}}
    table = ablation.gap_filling_table(results)
    row = table.loc[("paper", "square", 3)]
    assert row["dJ&F"] == pytest.approx(0.05) and row["J&F touching"] == 0.42
    assert (row["objects better"], row["objects worse"]) == (1, 0) and row["mean dJ"] == pytest.approx(0.05)
    assert table.loc[("paper", "square", 0), "dJ&F"] == 0 and pd.isna(table.loc[("paper", "square", 0), "J&F touching"])
    with pytest.raises(ValueError, match="baseline"):
        ablation.gap_filling_table({k3: results[k3]})


def test_contact_pixels_match_the_literal_definition():
    rng = np.random.default_rng(3)
    for _ in range(5):
        gt = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), size=(13, 17), p=[0.3, 0.25, 0.2, 0.15, 0.1])
        assert np.array_equal(ablation.contact_pixels(gt), literal_contact(gt))


def test_contact_gaps_counts_the_true_contact_line(tmp_path):
    gt = np.zeros((6, 8), np.uint8)
    gt[:, :4], gt[:, 4:7] = 1, 2  # contact: columns 3 and 4, 12 pixels
    pred = gt.copy()
    pred[:, 3] = 0  # a 1-px gap on object 1's side
    pred[:2, 4] = 1  # object 1 spills onto object 2 for two rows
    write_mask(tmp_path / "gt" / "v" / "00000.png", gt)
    write_mask(tmp_path / "pred" / "v" / "00000.png", pred)
    assert ablation.contact_gaps(tmp_path / "gt", tmp_path / "pred") == {
        "contact": 12, "background": 6 / 12, "correct": 4 / 12}
    write_mask(tmp_path / "pred" / "v" / "00000.png", pred[:, :5])
    with pytest.raises(DataError, match="size"):
        ablation.contact_gaps(tmp_path / "gt", tmp_path / "pred")


def test_score_folder_keeps_the_evaluator_result(tmp_path):
    truth = list(moving_objects(24, 32, 4, 2, seed=0))
    for t, labels in enumerate(truth):
        write_mask(tmp_path / "gt" / "v" / f"{t:05d}.png", labels)
        write_mask(tmp_path / "pred" / "v" / f"{t:05d}.png", np.roll(labels, 2, axis=1))
    got = ablation.score_folder(tmp_path / "gt", tmp_path / "pred")
    assert got == evaluate.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert read_json(tmp_path / "pred" / ablation.SCORES_FILE)["global"] == pytest.approx(got["global"])
    assert ablation.summary(got, tag="x") == {**{k: got["global"][k] for k in ("J&F", "J", "F")}, "J&F x": None}


# ---------------------------------------------------------------------------------- figure helpers
def test_most_changed_frame_and_zoomed_crops(tmp_path):
    maps = {"00000": np.zeros((8, 10), np.uint8), "00001": np.ones((8, 10), np.uint8)}
    changed = {"00000": maps["00000"].copy(), "00001": maps["00001"].copy()}
    changed["00000"][:2, :3] = 2  # 6 pixels
    changed["00001"][5:, 5:] = 2  # 15 pixels
    for frame in maps:
        write_mask(tmp_path / "a" / "v" / f"{frame}.png", maps[frame])
        write_mask(tmp_path / "b" / "v" / f"{frame}.png", changed[frame])
    assert ablation.most_changed_frame(tmp_path / "a", tmp_path / "b") == ("v", "00001", 15)
    assert ablation.frame_changes(tmp_path / "a", tmp_path / "b") == {("v", "00000"): (6, 80), ("v", "00001"): (15, 80)}
    assert ablation.changed_share(tmp_path / "a", tmp_path / "b") == 21 / 160
    assert ablation.most_changed_frame(tmp_path / "a", tmp_path / "a") == ("v", "00000", 0)  # ties: the first
    write_mask(tmp_path / "c" / "v" / "00000.png", maps["00000"][:4])
    with pytest.raises(DataError, match="size"):
        ablation.frame_changes(tmp_path / "a", tmp_path / "c")
    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    cells = ablation.zoomed_crops(rgb, [maps["00001"], changed["00001"]], [(slice(4, 8), slice(3, 9))], zoom=3)
    assert len(cells) == 1 and len(cells[0]) == 2 and cells[0][0].shape == (12, 18, 3)
    from fvos_utils.figures import overlay
    drawn = overlay(rgb, changed["00001"], alpha=0.55)[4:8, 3:9]
    assert np.array_equal(cells[0][1][::3, ::3], drawn) and np.array_equal(cells[0][1][2::3, 2::3], drawn)


def test_union_folder_makes_one_object(tmp_path):
    labels = np.array([[0, 1, 2], [255, 0, 3]], np.uint8)
    write_mask(tmp_path / "src" / "v" / "00000.png", labels, allow_void=True)
    write_mask(tmp_path / "src" / "v" / "00001.png", labels[::-1], allow_void=True)
    out = ablation.union_folder(tmp_path / "src", tmp_path / "out", video="v", frames=["00001"])
    assert sorted(p.name for p in (out / "v").iterdir()) == ["00001.png"]
    assert np.array_equal(read_mask(out / "v" / "00001.png"), (labels[::-1] != 0).astype(np.uint8))
    with pytest.raises(DataError, match="folder not found"):
        ablation.union_folder(tmp_path / "src", tmp_path / "out2", video="w")


def test_union_scores_score_each_variant_as_one_object(tmp_path):
    """Two objects splitting a 4x8 block score J = 1 against the block; object 1 alone (half) scores J = 0.5."""
    block = np.zeros((12, 16), np.uint8)
    block[4:8, 4:12] = 255  # DAVIS 2016 style: 0 / 255
    split = np.zeros_like(block)
    split[4:8, 4:8], split[4:8, 8:12] = 1, 2
    for t in range(4):  # the truth has a frame more than was predicted
        write_mask(tmp_path / "truth" / "v" / f"{t:05d}.png", block, allow_void=True)
    variants = {ablation.GapFilling("paper", "square", k): tmp_path / f"k{k}" for k in (0, 2)}
    for t in range(3):
        write_mask(tmp_path / "k0" / "v" / f"{t:05d}.png", split)
        write_mask(tmp_path / "k2" / "v" / f"{t:05d}.png", np.where(split == 1, 1, 0).astype(np.uint8))
    scores = ablation.union_scores(variants, tmp_path / "truth", tmp_path / "work", video="v",
                                   frames=["00000", "00001", "00002"])  # frame 00001 is scored (DAVIS rule)
    assert list(scores) == list(variants)
    assert [scores[v]["global"]["J"] for v in variants] == pytest.approx([1.0, 0.5])
    assert sorted(p.name for p in (tmp_path / "work" / "union_gt" / "v").iterdir()) == ["00000.png", "00001.png", "00002.png"]


# ----------------------------------------------------------------------------------------- fusion
SCALE_SETS = {"one": (1.0,), "two": (1.0, 1.125)}
TRANSFORM_SETS = {"identity": ("identity",), "hflip": ("identity", "hflip")}


@pytest.fixture()
def pass_folders(tmp_path):
    """Four passes (2 scales x 2 transforms) of one 3-frame video: probabilities and their merged labels,
    plus ground truth. Scale 1 / identity comes first, as run_passes orders them."""
    passes = ablation.passes_for((1.0, 1.125), ("identity", "hflip"))
    folders = {}
    for index, one in enumerate(passes):
        stored, ids = _scene_probs(10 + index, n_frames=3)
        folder = tmp_path / "passes" / one.name
        frames = ["00000", "00001", "00002"]
        save_probs(folder / "v.npz", stored, ids, frames)
        for frame, frame_probs in zip(frames, stored):
            write_mask(folder / "v" / f"{frame}.png", infer.merge_objects(frame_probs, ids, threshold=127.5))
        folders[one] = folder
    stored, ids = _scene_probs(99, n_frames=3)
    for t in range(3):
        write_mask(tmp_path / "gt" / "v" / f"{t:05d}.png", infer.merge_objects(stored[t], ids, threshold=127.5))
    return folders


def test_passes_and_available_sets():
    assert [p.name for p in ablation.passes_for((1.0, 1.25), ("identity", "rot90"))] == [
        "scale1-identity", "scale1-rot90", "scale1.25-identity", "scale1.25-rot90"]
    assert list(ablation.available_sets(fusion.SCALE_SETS, (1.0, 1.125, 1.25))) == ["single", "low3"]
    assert list(ablation.available_sets(fusion.TRANSFORM_SETS, ("identity", "hflip"))) == ["identity", "hflip"]


def test_fusion_variants_and_their_checks():
    variants = ablation.fusion_variants(["one", "two"], ["identity", "hflip"], fillings_for=["identity"])
    assert len(variants) == 2 * 5 + 2 * 2 and len({v.name for v in variants}) == len(variants)
    assert ablation.FusionVariant("two", "hflip", "soft", "after").name == "two-hflip-soft-fill_after"
    with pytest.raises(ValueError, match="after"):
        ablation.FusionVariant("one", "identity", "soft", "before")
    with pytest.raises(ValueError, match="fusion"):
        ablation.FusionVariant("one", "identity", "mean")


def test_fusion_ablation_fuses_fills_and_scores_the_right_passes(pass_folders, tmp_path):
    filling = ablation.GapFilling("paper", "square", 3)
    variants = ablation.fusion_variants(list(SCALE_SETS), list(TRANSFORM_SETS), fillings_for=["hflip"])
    results = ablation.fusion_ablation(pass_folders, tmp_path / "gt", tmp_path / "fused", variants,
                                       scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS, filling=filling,
                                       progress=False)
    passes = list(pass_folders)
    for v in variants:
        members = [p for p in passes if p.scale in SCALE_SETS[v.scales] and p.transform in TRANSFORM_SETS[v.transforms]]
        assert members[0] == passes[0]  # scale 1 without transform breaks the ties
        for t in range(3):
            frame = f"{t:05d}"
            videos = [load_probs(pass_folders[p] / "v.npz") for p in members]
            if v.fusion == "soft":
                want = literal_soft_vote(np.stack([vp.probs[t][np.argsort(vp.object_ids)] for vp in videos]),
                                         np.sort(videos[0].object_ids))
            elif v.filling == "before":  # the paper's order: fill each pass's separate masks, then vote
                want = literal_vote([postprocess.fill_gaps_reference(vp.probs[t] > 127, vp.object_ids, 3)
                                     for vp in videos])
            else:
                want = literal_vote([read_mask(pass_folders[p] / "v" / f"{frame}.png") for p in members])
            if v.filling == "after":
                want = postprocess.fill_gaps_reference(want[None] == np.arange(1, 5)[:, None, None],
                                                       np.arange(1, 5), 3)
            got = read_mask(tmp_path / "fused" / v.name / "v" / f"{frame}.png")
            assert np.array_equal(got, want), (v.name, frame)
        assert results[v] == evaluate.evaluate(tmp_path / "gt", tmp_path / "fused" / v.name, progress=False)
        assert json.loads((tmp_path / "fused" / v.name / ablation.SCORES_FILE).read_text())["global"] == \
            pytest.approx(results[v]["global"])
    with pytest.raises(ValueError, match=r"no pass for .*1\.125"):
        ablation.fusion_ablation({p: d for p, d in pass_folders.items() if p.scale == 1.0}, tmp_path / "gt",
                                 tmp_path / "fused2", [ablation.FusionVariant("two", "identity")],
                                 scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS, progress=False)


def test_fusion_and_cost_tables():
    passes = ablation.passes_for((1.0, 1.125), ("identity", "hflip"))
    runs = {p: {"seconds_per_frame": s} for p, s in zip(passes, (0.1, 0.3, 0.5, 0.7))}
    assert ablation.seconds_per_scale(runs) == pytest.approx({1.0: 0.2, 1.125: 0.6})
    variants = [ablation.FusionVariant("two", "hflip", "hard"), ablation.FusionVariant("two", "hflip", "soft"),
                ablation.FusionVariant("two", "hflip", "hard", "after")]
    results = {v: result({("a", 1): (0.1 * i, 0.2)}) for i, v in enumerate(variants, 1)}
    table = ablation.fusion_table(results, scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS,
                                  singles={passes[0]: result({("a", 1): (0.5, 0.5)})})
    assert table.loc[("1", "identity", "single", "none"), "J&F"] == 0.5
    assert table.loc[("two", "hflip", "soft", "none"), "passes"] == 4
    assert table.loc[("two", "hflip", "hard", "after"), "J&F"] == pytest.approx(0.25)
    cost = ablation.cost_table(results, runs, scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS)
    assert cost.loc[("two", "hflip"), "seconds_per_frame"] == pytest.approx((0.2 + 0.6) * 2)
    assert cost.loc[("one", "identity"), "seconds_per_frame"] == pytest.approx(0.2)
    assert cost.loc[("two", "hflip"), "J&F hard"] == pytest.approx(0.15)  # filling "none" only
    assert cost.loc[("two", "hflip"), "J&F soft"] == pytest.approx(0.2)
    assert pd.isna(cost.loc[("one", "identity"), "J&F hard"])


# -------------------------------------------------------------------------------- with a real model
@pytest.fixture(scope="module")
def clip_root(tmp_path_factory):
    """A DAVIS-style clip: 5 frames of two touching objects, annotated on frame 0."""
    root = tmp_path_factory.mktemp("clip")
    truth = list(moving_objects(64, 96, 5, 2, seed=4, vanish=False))
    rng = np.random.default_rng(4)
    for t, labels in enumerate(truth):
        frame = rng.integers(0, 40, size=(64, 96, 3)).astype(np.uint8)
        frame[labels == 1], frame[labels == 2] = (220, 60, 60), (60, 200, 60)
        write_frame(root / "JPEGImages" / "v" / f"{t:05d}.jpg", frame)
    write_mask(root / "Annotations" / "v" / "00000.png", truth[0])
    return root


def test_run_passes_and_predict_clip(clip_root, tmp_path):
    choice = ablation.ModelChoice("fvos_tiny", "random", None, None, "test")
    passes = ablation.passes_for((1.0, 1.125), ("identity", "hflip"))
    runs = ablation.run_passes(choice, clip_root, tmp_path / "passes", passes, split=None, progress=False)
    assert list(runs) == passes
    for one, run in runs.items():
        assert run["frames"] == 5 and run["seconds_per_frame"] > 0
        assert read_json(run["folder"] / infer.MANIFEST)["image_size"] == (256 if one.scale == 1.0 else 288)
        assert read_json(run["folder"] / infer.MANIFEST)["transform"] == one.transform
        video = load_probs(run["folder"] / "v.npz")
        for frame, stored in zip(video.frames, video.probs):  # labels and probabilities belong together
            merged = infer.merge_objects(stored, video.object_ids, threshold=127.5)
            assert (read_mask(run["folder"] / "v" / f"{frame}.png") != merged).mean() < 1e-3
    clip = ablation.predict_clip(choice.build(), clip_root, tmp_path / "clip", n_frames=3, progress=False)
    assert clip["frames"] == ["00000", "00001", "00002"] and clip["objects"] == [1, 2]
    # the same model, frames and objects as the identity pass at scale 1: the same labels
    for frame in clip["frames"]:
        assert np.array_equal(read_mask(tmp_path / "clip" / "v" / f"{frame}.png"),
                              read_mask(runs[passes[0]]["folder"] / "v" / f"{frame}.png"))
    assert load_probs(tmp_path / "clip" / "v.npz").frames == clip["frames"]


# ------------------------------------------------------------------------------------ the notebooks
RUN = "pytest-ablation"


def _execute(chapter: str, parameters: dict, *, run: str = RUN) -> nbformat.NotebookNode:
    out = paths.outputs_dir(run) / f"{chapter}.ipynb"
    papermill.execute_notebook(str(paths.notebooks_dir() / f"{chapter}.ipynb"), str(out),
                               parameters={"run": run, "ckpt": "random", **parameters}, kernel_name="python3",
                               cwd=str(paths.notebooks_dir()), progress_bar=False)
    return nbformat.read(out, as_version=4)


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_05_records_what_the_evaluator_said():
    executed = _execute("05_morphology_ablation", {"n_videos": 1, "kernel_sizes": [0, 2, 3],
                                                    "methods": ["paper", "background"], "clip_frames": 4})
    chapter = paths.outputs_dir(RUN) / "05_morphology_ablation"
    metrics = read_json(chapter / "metrics.json")
    assert metrics["model"]["checkpoint"] == "random" and metrics["environment"]["packages"]["numpy"]
    names = [f"{m}-{s}-k{k}" for m in ("paper", "background") for s in ("square", "circle") for k in (0, 2, 3)]
    assert sorted(metrics["variants"]) == sorted(names)
    for name in names:
        scores = read_json(chapter / "filled" / name / ablation.SCORES_FILE)["global"]
        assert metrics["variants"][name]["J&F"] == scores["J&F"]
    best = metrics["best_paper"]
    assert best["J&F"] == max(metrics["variants"][f"paper-{s}-k{k}"]["J&F"] for s in ("square", "circle") for k in (2, 3))
    assert best["J&F"] == metrics["variants"][f"paper-{best['shape']}-k{best['kernel']}"]["J&F"]
    base = metrics["variants"]["paper-square-k0"]["J&F"]
    assert checked_outputs(executed) == [f"J&F without filling {base:.4f}; best kernel with the paper's rule: "
                                         f"{best['shape']} k {best['kernel']} ({best['J&F']:.4f})\n"]
    assert metrics["bridged_gaps"]["square-k2"] == {"gap 1 px": 0.0, "gap 2 px": 0.0, "gap 3 px": 0.0, "gap 4 px": 0.0}
    for figure in ("kernel2_anchor", "kernel_ablation"):
        assert (chapter / f"{figure}.png").stat().st_size > 10_000 and (chapter / f"{figure}.pdf").is_file()
    if paths.shared_samples_dir() is not None and (paths.shared_samples_dir() / "davis_bmx-trees").is_dir():
        assert metrics["clip"]["frames"] == 4 and metrics["clip"]["objects"] == [1, 2]
        assert set(metrics["clip"]["union_scores"]) == {n for n in names if n.startswith("paper")}


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_06_records_what_the_evaluator_said():
    executed = _execute("06_multiscale_fusion", {"n_videos": 1, "scales": [1.0, 1.125, 1.25],
                                                  "transforms": ["identity", "hflip"]})
    chapter = paths.outputs_dir(RUN) / "06_multiscale_fusion"
    metrics = read_json(chapter / "metrics.json")
    assert sorted(metrics["passes"]) == sorted(p.name for p in ablation.passes_for((1.0, 1.125, 1.25), ("identity", "hflip")))
    for name, fused in metrics["fused"].items():
        assert fused["J&F"] == read_json(chapter / "fused" / name / ablation.SCORES_FILE)["global"]["J&F"]
    assert {(f["scales"], f["transforms"]) for f in metrics["fused"].values()} == {
        (s, t) for s in ("single", "low3") for t in ("identity", "hflip")}
    assert {row["scales"] for row in metrics["cost"]} == {"single", "low3"}
    first = metrics["passes"]["scale1-identity"]["J&F"]
    assert checked_outputs(executed) == [f"single pass (scale1-identity) J&F {first:.4f}; best fused: "
                                         f"{metrics['best_fused']['variant']} J&F {metrics['best_fused']['J&F']:.4f}\n"]
    for figure in ("fusion_ablation", "fill_order"):
        assert (chapter / f"{figure}.png").stat().st_size > 10_000 and (chapter / f"{figure}.pdf").is_file()


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_06_on_a_mose_layout_chooses_on_a_holdout_and_zips_the_server_split(tmp_path):
    """The real-data path: data_root is a MOSE-layout folder (hidden valid ground truth), so the chapter
    scores on videos held out of train and writes the recipe's zip of valid for the server."""
    mose = write_mose_layout(tmp_path / "fake-mose-pytest", n_train=7, n_valid=2)
    try:
        executed = _execute("06_multiscale_fusion", {"data_root": str(mose), "server_root": str(mose), "n_videos": 0,
                                                      "scales": [1.0, 1.125], "transforms": ["identity"],
                                                      "fill_kernel": 2}, run=f"{RUN}-mose")  # other videos: own run
    finally:  # the hold-out view (links into tmp_path) that datasets.prepare made under data/
        remove_dir(paths.data_dir() / "fake-mose-pytest-holdout1-seed0")
    chapter = paths.outputs_dir(f"{RUN}-mose") / "06_multiscale_fusion"
    metrics = read_json(chapter / "metrics.json")
    assert metrics["videos"] == ["train06"]  # 7 // 7 = 1 held-out video, scored against its full masks
    assert metrics["submission"] == str(chapter / "fvos_valid.zip")
    with zipfile.ZipFile(metrics["submission"]) as archive:
        assert sorted(archive.namelist()) == [f"Annotations/valid{v:02d}/{t:05d}.png" for v in range(2) for t in range(4)]
    assert checked_outputs(executed)


def test_full_settings_fit_the_notebooks():
    """params/ablations_full.yaml: every key is a parameter of its chapter (checked by the pipeline)."""
    from fvos_utils import pipeline

    params = pipeline.load_params(paths.params_dir() / "ablations_full.yaml")
    assert list(params["chapters"]) == ["05_morphology_ablation", "06_multiscale_fusion"]
    fused = pipeline.chapter_parameters(params, "06_multiscale_fusion")
    assert fused["n_videos"] == 0 and fused["scales"] == list(fusion.FVOS_SCALES)
    assert sorted(fused["transforms"]) == sorted(fusion.TRANSFORM_SETS["all"])


def test_meeting_crops_figure_crops_where_filling_changed_the_maps():
    before = np.zeros((60, 60), np.uint8)
    before[10:30, 10:29], before[10:30, 30:50] = 1, 2  # a 1-px gap at column 29
    after = postprocess.fill_gaps_labels(before, 3)
    rgb = np.zeros((60, 60, 3), np.uint8)
    fig, corners = ablation.meeting_crops_figure(rgb, [before, after], ["k 0", "k 3"], title="t", truth=after, n_crops=1)
    assert fig is not None and len(corners) == 1
    y, x = corners[0]
    assert y <= 10 + 19 and x <= 29 < x + 40  # the crop holds the filled gap
    assert [ax.get_title() for ax in fig.axes[:3]] == ["ground truth", "k 0", "k 3"]
    assert ablation.meeting_crops_figure(rgb, [before, before], ["a", "b"], title="t") == (None, [])


def test_fvos_submission_fills_each_scale_then_votes(clip_root, tmp_path):
    choice = ablation.ModelChoice("fvos_tiny", "random", None, None, "test")
    scales = (1.0, 1.125, 1.25)
    filling = ablation.GapFilling("paper", "square", 2)
    zip_path = ablation.fvos_submission(choice, clip_root, tmp_path / "work", tmp_path / "sub.zip", split=None,
                                        scales=scales, filling=filling, progress=False)
    # the same recipe from the saved probabilities, written out step by step
    stacks = []
    for scale in scales:
        video = load_probs(tmp_path / "work" / "passes" / f"scale{scale:g}-identity" / "v.npz")
        stacks.append([postprocess.fill_gaps(ablation.object_masks(stored), video.object_ids.astype(np.int64), 2, shape="square",
                                             method="paper") for stored in video.probs])
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == [f"Annotations/v/{t:05d}.png" for t in range(5)]
        for t in range(5):
            with archive.open(f"Annotations/v/{t:05d}.png") as png:
                zipped = np.array(Image.open(png))
            np.testing.assert_array_equal(zipped, fusion.vote([stack[t] for stack in stacks]))
    # a second call keeps the finished passes (resume) and writes the same zip
    first_pass = tmp_path / "work" / "passes" / "scale1-identity" / "v"
    stamp = first_pass.stat().st_mtime_ns
    ablation.fvos_submission(choice, clip_root, tmp_path / "work", tmp_path / "again.zip", split=None,
                             scales=scales, filling=filling, progress=False)
    assert first_pass.stat().st_mtime_ns == stamp
    with zipfile.ZipFile(zip_path) as one, zipfile.ZipFile(tmp_path / "again.zip") as two:
        assert [one.read(n) for n in sorted(one.namelist())] == [two.read(n) for n in sorted(two.namelist())]

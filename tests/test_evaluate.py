"""Tests of fvos_utils.metrics.evaluate against hand computations, a literal reference and vos-benchmark.

The reference below is written straight from ../shared/reference/jf-spec.md: whole frames, numpy, a
brute-force disk dilation (one shifted OR per disk offset) and the spec's float formula for the Decay
bins. It is slow, so it runs on small frames; the fast evaluator must match it to 1e-6 everywhere.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fvos_utils.base.io import DataError, write_mask
from fvos_utils.base.paths import project_root, shared_samples_dir
from fvos_utils.data import testing
from fvos_utils.metrics import evaluate as ev

TOL = 1e-6


# ------------------------------------------------------------------------------ literal reference
def ref_read(path) -> np.ndarray:
    return np.array(Image.open(path))


def ref_boundary(mask: np.ndarray) -> np.ndarray:
    """Spec step 5: differs from right, lower or lower-right; outside the image counts as equal
    (edge padding repeats the last row/column, so it never differs)."""
    m = np.pad(mask.astype(bool), ((0, 1), (0, 1)), mode="edge")
    centre = m[:-1, :-1]
    return (centre != m[:-1, 1:]) | (centre != m[1:, :-1]) | (centre != m[1:, 1:])


def ref_dilate(b: np.ndarray, r: int) -> np.ndarray:
    """Brute force: OR of ``b`` shifted by every (dy, dx) with dy^2 + dx^2 <= r^2; outside is 0."""
    h, w = b.shape
    out = np.zeros_like(b, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r:
                out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                    b[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def ref_radius(h: int, w: int) -> int:
    return int(np.ceil(0.008 * np.sqrt(h ** 2 + w ** 2)))


def ref_j(g: np.ndarray, p: np.ndarray) -> float:
    union = np.sum(g | p)
    return 1.0 if union == 0 else float(np.sum(g & p) / union)


def ref_f(g: np.ndarray, p: np.ndarray, r: int) -> float:
    bg, bp = ref_boundary(g), ref_boundary(p)
    if bp.sum() == 0 and bg.sum() > 0:
        precision, recall = 1.0, 0.0
    elif bg.sum() == 0 and bp.sum() > 0:
        precision, recall = 0.0, 1.0
    elif bg.sum() == 0 and bp.sum() == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = np.sum(bp & ref_dilate(bg, r)) / bp.sum()
        recall = np.sum(bg & ref_dilate(bp, r)) / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def ref_stats(v) -> tuple[float, float, float]:
    """Spec step 8 with the float formula; int64 indices (not the official uint8)."""
    v = np.asarray(v, float)
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.int64)
    bins = [v[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return float(v.mean()), float(np.mean(v > 0.5)), float(bins[0].mean() - bins[3].mean())


def ref_evaluate(gt_dir: Path, pred_dir: Path) -> dict:
    """DAVIS 2017 semi-supervised, whole videos in memory: {(video, k): (J-frames, F-frames)} + global."""
    series = {}
    for video in sorted(p.name for p in gt_dir.iterdir() if p.is_dir()):
        files = sorted((gt_dir / video).glob("*.png"))
        first = ref_read(files[0]).copy()
        first[first == 255] = 0
        k_max = int(first.max())
        for k in range(1, k_max + 1):
            js, fs = [], []
            for f in files[1:-1]:
                gt, pred = ref_read(f), ref_read(pred_dir / video / f.name)
                g, p = gt == k, pred == k
                js.append(ref_j(g, p))
                fs.append(ref_f(g, p, ref_radius(*gt.shape)))
            series[(video, k)] = (js, fs)
    stats = {key: (ref_stats(js), ref_stats(fs)) for key, (js, fs) in series.items()}
    j_global = np.mean([s[0][0] for s in stats.values()])
    f_global = np.mean([s[1][0] for s in stats.values()])
    glob = {"J": j_global, "F": f_global, "J&F": (j_global + f_global) / 2,
            "J-Recall": np.mean([s[0][1] for s in stats.values()]),
            "J-Decay": np.mean([s[0][2] for s in stats.values()]),
            "F-Recall": np.mean([s[1][1] for s in stats.values()]),
            "F-Decay": np.mean([s[1][2] for s in stats.values()])}
    return {"series": series, "stats": stats, "global": glob}


# ------------------------------------------------------------------------------ helpers
def write_video(root: Path, video: str, frames: list[np.ndarray]) -> None:
    for t, labels in enumerate(frames):
        write_mask(root / video / f"{t:05d}.png", labels, allow_void=True)


def random_labels(rng, shape, n_objects: int) -> np.ndarray:
    """Rectangles and noise: touching objects, objects on the frame edge, sometimes absent ones."""
    h, w = shape
    out = np.zeros(shape, np.uint8)
    for k in range(1, n_objects + 1):
        if rng.random() < 0.15:
            continue
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = rng.integers(y0, h + 1), rng.integers(x0, w + 1)
        out[y0:y1 + 1, x0:x1 + 1] = k
    noise = rng.random(shape) < 0.03
    out[noise] = rng.integers(0, n_objects + 1, size=int(noise.sum()))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two generated videos (moving, touching objects, noisy predictions) at 120x214 (radius 2)."""
    root = tmp_path_factory.mktemp("generated")
    gt, pred = testing.write_dataset(root, n_videos=2, height=120, width=214, n_frames=8, objects=(2, 4), seed=3)
    return gt, pred, root / "meta.json"


# ------------------------------------------------------------------------------ radius, boundary, J, F by hand
@pytest.mark.parametrize("shape, radius", [((480, 854), 8), ((360, 640), 6), ((1080, 1920), 18),
                                           ((480, 720), 7), ((10, 10), 1)])
def test_boundary_radius(shape, radius):
    assert ev.boundary_radius(*shape) == radius


def test_boundary_map_by_hand():
    square = np.zeros((4, 4), bool)
    square[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(ev.boundary_map(square), expected)
    corner = np.zeros((4, 4), bool)  # touches the bottom and right edges: those edges add nothing
    corner[2:, 2:] = True
    expected = np.array([[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]], bool)
    np.testing.assert_array_equal(ev.boundary_map(corner), expected)
    assert not ev.boundary_map(np.ones((5, 7), bool)).any()
    assert not ev.boundary_map(np.zeros((5, 7), bool)).any()


def test_j_and_f_by_hand():
    g = np.zeros((4, 6), bool)
    g[1:3, 1:3] = True
    p = np.roll(g, 1, axis=1)  # one column to the right: 2 of 4 pixels shared
    assert ev.jaccard(g, p) == pytest.approx(2 / 6)
    assert ev.jaccard(g, p, mode="mosev2") == pytest.approx(3 / 7)
    # radius 0: boundaries (8 pixels each) share 4 pixels -> P = R = 1/2; radius 1 covers the shift
    assert ev.f_measure(g, p, radius=0) == pytest.approx(0.5)
    assert ev.f_measure(g, p, radius=1) == 1.0
    far = np.zeros((40, 40), bool)
    far[30:34, 30:34] = True
    near = np.zeros((40, 40), bool)
    near[2:6, 2:6] = True
    assert ev.f_measure(near, far, radius=3) == 0.0  # P = R = 0


def test_j_and_f_empty_and_full_masks():
    empty, full = np.zeros((6, 9), bool), np.ones((6, 9), bool)
    blob = np.zeros((6, 9), bool)
    blob[2:4, 3:6] = True
    assert ev.jaccard(empty, empty) == 1.0 and ev.f_measure(empty, empty) == 1.0
    assert ev.jaccard(blob, empty) == 0.0 and ev.f_measure(blob, empty) == 0.0  # P=1, R=0
    assert ev.jaccard(empty, blob) == 0.0 and ev.f_measure(empty, blob) == 0.0  # P=0, R=1
    assert ev.jaccard(full, full) == 1.0 and ev.f_measure(full, full) == 1.0
    # a full-frame mask has no boundary, so against an empty one both boundaries are empty: F = 1
    assert ev.jaccard(full, empty) == 0.0 and ev.f_measure(full, empty) == 1.0
    assert ev.jaccard(empty, empty, mode="mosev2") == 1.0
    assert ev.jaccard(blob, empty, mode="mosev2") == pytest.approx(1 / 7)


def test_f_matches_reference_on_random_masks():
    rng = np.random.default_rng(0)
    for trial in range(40):
        shape = tuple(rng.integers(5, 45, size=2))
        g = random_labels(rng, shape, 1) == 1
        p = random_labels(rng, shape, 1) == 1
        r = int(rng.integers(0, 7))
        np.testing.assert_array_equal(ev.boundary_map(g), ref_boundary(g))
        assert ev.f_measure(g, p, radius=r) == pytest.approx(ref_f(g, p, r), abs=TOL), trial
        assert ev.jaccard(g, p) == pytest.approx(ref_j(g, p), abs=TOL)


def test_f_matches_reference_on_dense_noise():
    """Noise-like masks have edge maps denser than the disk rows: the dilation path."""
    rng = np.random.default_rng(2)
    for r in (1, 2, 4):
        g, p = rng.random((30, 41)) < 0.5, rng.random((30, 41)) < 0.3
        assert ev.f_measure(g, p, radius=r) == pytest.approx(ref_f(g, p, r), abs=TOL)


def test_frame_scores_matches_reference_on_random_label_maps():
    rng = np.random.default_rng(1)
    for trial in range(25):
        shape = (int(rng.integers(20, 140)), int(rng.integers(20, 260)))
        k = int(rng.integers(1, 6))
        gt, pred = random_labels(rng, shape, k), random_labels(rng, shape, k)
        scores = ev.frame_scores(gt, pred, range(1, k + 1))
        r = ref_radius(*shape)
        for i, obj in enumerate(range(1, k + 1)):
            assert scores.j[i] == pytest.approx(ref_j(gt == obj, pred == obj), abs=TOL)
            assert scores.f[i] == pytest.approx(ref_f(gt == obj, pred == obj, r), abs=TOL), (trial, obj)
            assert scores.gt_present[i] == bool((gt == obj).any())


# ------------------------------------------------------------------------------ statistics and Decay
def test_decay_bins_by_hand():
    assert ev.decay_bins(1) == [0, 0, 0, 0, 0]
    assert ev.decay_bins(3) == [0, 1, 1, 2, 2]  # 1 + k/2: 1, 1.5 -> 2, 2, 2.5 -> 3, 3 (minus 1)
    assert ev.decay_bins(5) == [0, 1, 2, 3, 4]
    assert ev.decay_bins(300) == [0, 75, 150, 224, 299]  # 1 + k * 74.75: 1, 75.75, 150.5, 225.25, 300
    for n in range(1, 700):
        ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(int)
        assert ev.decay_bins(n) == ids.tolist(), n


def test_object_statistics_by_hand():
    values = np.r_[np.ones(60), np.zeros(190), np.ones(50)]  # 300 frames
    mean, recall, decay = ev.object_statistics(values)
    assert mean == pytest.approx(110 / 300) and recall == pytest.approx(110 / 300)
    # bin 0 = frames 0..75 (60 ones of 76), bin 3 = frames 224..299 (50 ones of 76)
    assert decay == pytest.approx(60 / 76 - 50 / 76)


def test_decay_past_255_frames_end_to_end(tmp_path):
    square = np.zeros((8, 10), np.uint8)
    square[2:6, 3:8] = 1
    n_scored = 300
    good = np.r_[np.ones(60), np.zeros(190), np.ones(50)].astype(bool)
    gt_frames = [square] * (n_scored + 2)
    pred_frames = [square] + [square if ok else np.zeros_like(square) for ok in good] + [square]
    write_video(tmp_path / "gt", "long", gt_frames)
    write_video(tmp_path / "pred", "long", pred_frames)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    obj = result["objects"][0]
    assert len(obj["J-frames"]) == 300
    assert obj["J"] == pytest.approx(110 / 300) and obj["J-Recall"] == pytest.approx(110 / 300)
    assert obj["J-Decay"] == pytest.approx(10 / 76) and obj["F-Decay"] == pytest.approx(10 / 76)


# ------------------------------------------------------------------------------ whole folders vs reference
def assert_matches_reference(result: dict, ref: dict) -> None:
    assert [(o["video"], o["object"]) for o in result["objects"]] == list(ref["series"])
    for obj in result["objects"]:
        js, fs = ref["series"][(obj["video"], obj["object"])]
        np.testing.assert_allclose(obj["J-frames"], js, atol=TOL, rtol=0)
        np.testing.assert_allclose(obj["F-frames"], fs, atol=TOL, rtol=0)
        (jm, jr, jd), (fm, fr, fd) = ref["stats"][(obj["video"], obj["object"])]
        got = [obj[k] for k in ("J", "J-Recall", "J-Decay", "F", "F-Recall", "F-Decay")]
        np.testing.assert_allclose(got, [jm, jr, jd, fm, fr, fd], atol=TOL, rtol=0)
    for key, value in ref["global"].items():
        assert result["global"][key] == pytest.approx(value, abs=TOL), key


def test_evaluate_matches_reference_on_generated_videos(generated):
    gt, pred, _ = generated
    assert_matches_reference(ev.evaluate(gt, pred, progress=False), ref_evaluate(gt, pred))


def test_evaluate_matches_reference_on_random_videos(tmp_path):
    rng = np.random.default_rng(7)
    for v in range(3):
        shape = (int(rng.integers(30, 90)), int(rng.integers(30, 160)))
        k = int(rng.integers(1, 5))
        n = int(rng.integers(3, 9))
        gt = [random_labels(rng, shape, k) for _ in range(n)]
        gt[0][0, 0] = k  # the first frame fixes K
        gt[1][gt[1] == 1] = 255  # void in a scored frame is background
        write_video(tmp_path / "gt", f"v{v}", gt)
        write_video(tmp_path / "pred", f"v{v}", [random_labels(rng, shape, k) for _ in range(n)])
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert_matches_reference(result, ref_evaluate(tmp_path / "gt", tmp_path / "pred"))


def test_evaluate_matches_reference_at_360p(tmp_path):
    """Radius 6 at 360x640: a real-size disk on generated touching objects."""
    testing.write_video(tmp_path / "gt", tmp_path / "pred", "v", height=360, width=640, n_frames=5,
                        n_objects=3, seed=11)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert_matches_reference(result, ref_evaluate(tmp_path / "gt", tmp_path / "pred"))


def test_unused_ids_between_count_as_objects(tmp_path):
    frame = np.zeros((12, 16), np.uint8)
    frame[1:5, 1:5], frame[6:10, 8:14] = 1, 3  # id 2 is never used: K = 3
    pred = frame.copy()
    pred[6:10, 8:11] = 0
    write_video(tmp_path / "gt", "v", [frame] * 4)
    write_video(tmp_path / "pred", "v", [pred] * 4)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert [o["object"] for o in result["objects"]] == [1, 2, 3]
    assert result["objects"][1]["J-frames"] == [1.0, 1.0] and result["objects"][1]["F"] == 1.0
    assert result["global"]["J"] == pytest.approx((1 + 1 + 12 / 24) / 3)
    mose = ev.evaluate(tmp_path / "gt", tmp_path / "pred", mode="mosev2", progress=False)
    assert [o["object"] for o in mose["objects"]] == [1, 3]


# ------------------------------------------------------------------------------ vos-benchmark (a peer package)
def vos_benchmark_series(gt_dir: Path, pred_dir: Path, video: str):
    """vos-benchmark's per-frame lists (fractions), fed the way its VideoEvaluator feeds them."""
    from vos_benchmark.evaluator import Evaluator

    evaluator = Evaluator(name=video)
    for name in sorted(p.name for p in (gt_dir / video).iterdir())[1:-1]:
        evaluator.feed_frame(ref_read(pred_dir / video / name), ref_read(gt_dir / video / name))
    return evaluator


def assert_matches_vos_benchmark(result: dict, gt_dir: Path, pred_dir: Path) -> int:
    compared = 0
    for video in result["videos"]:
        peer = vos_benchmark_series(gt_dir, pred_dir, video)
        for obj in (o for o in result["objects"] if o["video"] == video):
            js, fs = peer.object_iou[obj["object"]], peer.boundary_f[obj["object"]]
            start = len(obj["J-frames"]) - len(js)  # its series start at first appearance
            np.testing.assert_allclose(obj["J-frames"][start:], js, atol=TOL, rtol=0)
            np.testing.assert_allclose(obj["F-frames"][start:], fs, atol=TOL, rtol=0)
            assert all(v == 1.0 for v in obj["J-frames"][:start] + obj["F-frames"][:start])
            compared += len(js)
    return compared


def test_per_frame_values_match_vos_benchmark(generated):
    gt, pred, _ = generated
    result = ev.evaluate(gt, pred, progress=False)
    assert assert_matches_vos_benchmark(result, gt, pred) > 20


@pytest.mark.skipif(shared_samples_dir() is None, reason="real sample clips (../shared/data/samples) absent")
def test_real_clip_matches_reference_and_vos_benchmark(tmp_path):
    """xmempp_chair (480x720, radius 7): prediction for frame t = the annotation of frame t + 2."""
    source = sorted((shared_samples_dir() / "xmempp_chair" / "Annotations" / "chair").glob("*.png"))[:9]
    (tmp_path / "gt" / "chair").mkdir(parents=True)
    (tmp_path / "pred" / "chair").mkdir(parents=True)
    for i, path in enumerate(source[:7]):
        shutil.copy(path, tmp_path / "gt" / "chair" / path.name)
        shutil.copy(source[i + 2], tmp_path / "pred" / "chair" / path.name)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert result["videos"]["chair"]["height"] == 480 and len(result["objects"]) == 1
    assert 0.5 < result["global"]["J"] < 1.0  # a real, imperfect prediction
    assert_matches_reference(result, ref_evaluate(tmp_path / "gt", tmp_path / "pred"))
    assert assert_matches_vos_benchmark(result, tmp_path / "gt", tmp_path / "pred") == 5


# ------------------------------------------------------------------------------ mosev2
def mose_f(g: np.ndarray, p: np.ndarray, radius: float) -> float:
    """MOSE-api's F step on whole frames: skimage's disk (a peer), cv2.dilate, the spec's P/R rules."""
    from skimage.morphology import disk

    bg, bp = ref_boundary(g).astype(np.uint8), ref_boundary(p).astype(np.uint8)
    n_g, n_p = int(bg.sum()), int(bp.sum())
    if n_g == 0 or n_p == 0:
        precision, recall = float(n_p == 0), float(n_g == 0)
    else:
        precision = np.sum(bp * cv2.dilate(bg, disk(radius))) / n_p
        recall = np.sum(bg * cv2.dilate(bp, disk(radius))) / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def mose_frame(g: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """(J, F adaptive, F legacy) as the MOSEv2 scorer computes them for one object and frame."""
    h, w = g.shape
    diagonal = 0.008 * np.linalg.norm((h, w))
    j = (np.sum(g & p) + 1) / (np.sum(g | p) + 1)
    bound = np.ceil(0.1 * np.sqrt(g.sum())) if g.any() else np.ceil(diagonal)
    bound = min(diagonal, bound)
    if bound < diagonal:
        return j, mose_f(g, p, bound), mose_f(g, p, np.ceil(diagonal))
    f = mose_f(g, p, diagonal)
    return j, f, f


@pytest.mark.parametrize("radius", [0, 1, 2, 3.5, 5, 7.837, 8, 8.5, 17.62, 18])
def test_disk_kernel_equals_skimage_disk(radius):
    from skimage.morphology import disk

    np.testing.assert_array_equal(ev.disk_kernel(radius), disk(radius))


def test_mosev2_radii_by_hand():
    diagonal = 0.008 * math.sqrt(480 ** 2 + 854 ** 2)  # 7.837...
    assert ev.mosev2_radii(0, 480, 854) == (diagonal, diagonal)
    assert ev.mosev2_radii(100, 480, 854) == (1, 8)  # ceil(0.1 * 10) = 1
    assert ev.mosev2_radii(2500, 480, 854) == (5, 8)
    assert ev.mosev2_radii(10_000, 480, 854) == (diagonal, diagonal)  # ceil(10) = 10 > 7.84: unrounded


def test_mosev2_frame_scores_match_mose_procedure():
    rng = np.random.default_rng(5)
    shapes = [(480, 854), (96, 170), (200, 120)]
    for trial in range(12):
        h, w = shapes[trial % 3]
        k = int(rng.integers(1, 4))
        gt, pred = random_labels(rng, (h, w), k), random_labels(rng, (h, w), k)
        if trial % 2:  # small objects: the adaptive radius drops below the diagonal one
            gt[h // 4:, :] = 0
            gt[:, w // 8:] = 0
        scores = ev.frame_scores(gt, pred, range(1, k + 1), mode="mosev2")
        for i, obj in enumerate(range(1, k + 1)):
            j, f, f_legacy = mose_frame(gt == obj, pred == obj)
            assert (scores.j[i], scores.f[i], scores.f_legacy[i]) == pytest.approx((j, f, f_legacy), abs=TOL)


def test_presence_segments_by_hand():
    assert ev.presence_segments([1, 1, 0, 0, 1, 1, 1, 0]) == ([(2, 4), (7, 8)], [(4, 7)])
    assert ev.presence_segments([0, 0, 1, 1, 0]) == ([(4, 5)], [(2, 4)])  # no disappearance at t = 0
    assert ev.presence_segments([1, 1, 1]) == ([], [])


def mose_event_scores(values: np.ndarray, empty: np.ndarray) -> tuple[float | None, float | None]:
    """MOSEv2's procedure: disappearance starts (plus 0 when the first frame is empty) and
    reappearance starts, paired by position; a disappearance starting at frame 0 is skipped."""
    disappear = list(np.flatnonzero(~empty[:-1] & empty[1:]) + 1)
    if empty[0]:
        disappear.insert(0, 0)
    reappear = list(np.flatnonzero(empty[:-1] & ~empty[1:]) + 1)
    gone = [values[s:reappear[i] if i < len(reappear) else len(empty)].mean()
            for i, s in enumerate(disappear) if s > 0]
    back = [values[s:disappear[i + 1] if i + 1 < len(disappear) else len(empty)].mean()
            for i, s in enumerate(reappear)]
    return (float(np.mean(gone)) if gone else None), (float(np.mean(back)) if back else None)


def test_presence_segments_match_mose_procedure():
    rng = np.random.default_rng(9)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        present = rng.random(n) < rng.uniform(0.2, 0.9)
        values = rng.random(n)
        disappear, reappear = ev.presence_segments(present)
        ours = [float(np.mean([values[a:b].mean() for a, b in segments])) if segments else None
                for segments in (disappear, reappear)]
        assert ours == pytest.approx(list(mose_event_scores(values, ~present)))


def test_mosev2_disappearance_and_reappearance(tmp_path):
    """Object 1 present, gone for scored frames 2-3, back for 4-5; the tracker keeps a false blob
    during the first absent frame and finds the object again one frame late."""
    present = np.zeros((10, 12), np.uint8)
    present[2:7, 2:8] = 1
    empty = np.zeros_like(present)
    blob = np.zeros_like(present)
    blob[0:2, 0:2] = 1
    gt = [present, present, present, empty, empty, present, present, present]
    pred = [present, present, present, blob, empty, empty, present, present]
    write_video(tmp_path / "gt", "v", gt)
    write_video(tmp_path / "pred", "v", pred)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", mode="mosev2", progress=False)
    obj = result["objects"][0]
    # J per scored frame: 1, 1, (0+1)/(4+1), 1, (0+1)/(30+1), 1; F: 1, 1, 0, 1, 0, 1
    np.testing.assert_allclose(obj["J-frames"], [1, 1, 1 / 5, 1, 1 / 31, 1])
    np.testing.assert_allclose(obj["F-frames"], [1, 1, 0, 1, 0, 1])
    assert obj["J-disappear"] == pytest.approx((1 / 5 + 1) / 2) and obj["F-disappear"] == pytest.approx(0.5)
    assert obj["J-reappear"] == pytest.approx((1 / 31 + 1) / 2) and obj["F-reappear"] == pytest.approx(0.5)
    assert result["global"]["J&F-disappear"] == pytest.approx(((1 / 5 + 1) / 2 + 0.5) / 2)
    assert result["global"]["disappear-objects"] == 1


# ------------------------------------------------------------------------------ errors
def test_missing_prediction_frame_and_video_are_named(tmp_path):
    frame = np.zeros((8, 8), np.uint8)
    frame[2:5, 2:5] = 1
    write_video(tmp_path / "gt", "a", [frame] * 4)
    write_video(tmp_path / "pred", "a", [frame] * 4)
    (tmp_path / "pred" / "a" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"pred/a/00002\.png"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    result = ev.evaluate(tmp_path / "gt", tmp_path / "pred", missing_as_empty=True, progress=False)
    assert result["objects"][0]["J-frames"] == [1.0, 0.0]
    write_mask(tmp_path / "pred" / "a" / "00002.png", frame)
    write_video(tmp_path / "gt", "b", [frame] * 3)
    with pytest.raises(DataError, match=r"pred/b"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", missing_as_empty=False, progress=False)


def test_missing_prediction_root_is_an_error_even_with_missing_as_empty(tmp_path):
    """--missing-as-empty covers frames and videos inside the predictions, not a mistyped --pred."""
    frame = np.zeros((8, 8), np.uint8)
    frame[2:5, 2:5] = 1
    write_video(tmp_path / "gt", "a", [frame] * 4)
    write_video(tmp_path / "pred", "a", [frame] * 4)
    with pytest.raises(DataError, match=r"perd: prediction folder not found"):
        ev.evaluate(tmp_path / "gt", tmp_path / "perd", missing_as_empty=True, progress=False)


def test_gt_video_link_to_a_missing_folder_is_named(tmp_path):
    frame = np.ones((8, 8), np.uint8)
    write_video(tmp_path / "gt", "a", [frame] * 3)
    write_video(tmp_path / "pred", "a", [frame] * 3)
    (tmp_path / "gt" / "b").symlink_to(tmp_path / "moved" / "b", target_is_directory=True)
    with pytest.raises(DataError, match=r"gt/b: symbolic link to a missing folder"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)


def test_stray_gt_file_is_named_not_scored_as_the_last_frame(tmp_path):
    frame = np.zeros((8, 8), np.uint8)
    frame[2:5, 2:5] = 1
    write_video(tmp_path / "gt", "a", [frame] * 4)
    write_video(tmp_path / "pred", "a", [frame] * 4)
    write_mask(tmp_path / "gt" / "a" / "thumbnail.png", frame)
    with pytest.raises(DataError, match=r"gt/a/thumbnail\.png: frame name 'thumbnail' does not follow"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", missing_as_empty=True, progress=False)


def test_id_above_k_and_size_mismatch_are_named(tmp_path):
    frame = np.zeros((8, 8), np.uint8)
    frame[2:5, 2:5] = 1
    bad = frame.copy()
    bad[0, 0] = 2
    write_video(tmp_path / "gt", "a", [frame] * 4)
    write_video(tmp_path / "pred", "a", [frame, frame, bad, frame])
    with pytest.raises(DataError, match=r"pred/a/00002\.png.*predicted id 2"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert ev.evaluate(tmp_path / "gt", tmp_path / "pred", mode="mosev2", progress=False)["objects"]
    write_video(tmp_path / "pred", "a", [frame] * 2 + [np.zeros((8, 9), np.uint8)] + [frame])
    with pytest.raises(DataError, match=r"pred/a/00002\.png.*gt/a/00002\.png"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)


def test_split_root_instead_of_annotations_is_named(tmp_path):
    (tmp_path / "valid_gt" / "Annotations" / "v").mkdir(parents=True)
    (tmp_path / "valid_gt" / "Amodal" / "v").mkdir(parents=True)
    with pytest.raises(DataError, match=r"valid_gt: holds an Annotations/ folder"):
        ev.evaluate(tmp_path / "valid_gt", tmp_path, progress=False)


def test_rgb_prediction_is_an_error(tmp_path):
    frame = np.zeros((8, 8), np.uint8)
    write_video(tmp_path / "gt", "a", [frame + 1] * 3)
    write_video(tmp_path / "pred", "a", [frame] * 3)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "pred" / "a" / "00001.png")
    with pytest.raises(DataError, match=r"00001\.png.*mode 'RGB'"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)


# ------------------------------------------------------------------------------ tags, workers, CLI
def test_per_tag_means_over_tagged_objects(generated):
    gt, pred, meta = generated
    tags = ev.load_tags(meta)
    result = ev.evaluate(gt, pred, tags=meta, progress=False)
    assert set(result["per_tag"]) == {t for ts in tags.values() for t in ts}
    for tag, summary in result["per_tag"].items():
        objects = [o for o in result["objects"] if tag in tags[o["video"]]]
        assert summary["objects"] == len(objects)
        assert summary["J"] == pytest.approx(np.mean([o["J"] for o in objects]), abs=TOL)
        assert summary["J&F"] == pytest.approx((summary["J"] + summary["F"]) / 2, abs=TOL)
    by_dict = ev.evaluate(gt, pred, tags={"video000": ["x"]}, progress=False)["per_tag"]
    assert by_dict["x"]["videos"] == 1
    with pytest.raises(ValueError, match="list of strings"):
        ev.load_tags({"video000": "x"})


def test_bad_tags_file_is_named(tmp_path):
    bad = tmp_path / "meta.json"
    bad.write_text(json.dumps({"videos": {"a": {"tags": "crowded"}}}))
    with pytest.raises(DataError, match=r"meta\.json.*list of strings"):
        ev.load_tags(bad)
    bad.write_text(json.dumps({"clips": {}}))
    with pytest.raises(DataError, match=r"meta\.json.*\"videos\""):
        ev.load_tags(bad)


def test_two_workers_give_identical_results(generated):
    gt, pred, _ = generated
    assert ev.evaluate(gt, pred, workers=2, progress=False) == ev.evaluate(gt, pred, progress=False)


def test_cli_writes_json_csv_and_table(generated, tmp_path, capsys):
    gt, pred, meta = generated
    out_json, out_csv = tmp_path / "out" / "metrics.json", tmp_path / "out" / "metrics.csv"
    code = ev.main(["--gt", str(gt), "--pred", str(pred), "--json", str(out_json), "--csv", str(out_csv),
                    "--tags", str(meta)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "global" in printed and "tag:disappearance" in printed
    data = json.loads(out_json.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    expected = ev.evaluate(gt, pred, tags=meta, progress=False)
    assert data["global"] == pytest.approx(expected["global"])
    assert set(data["global"]) >= {"J", "F", "J&F", "J-Recall", "J-Decay", "F-Recall", "F-Decay"}
    first = data["objects"][0]
    assert set(first) >= {"video", "object", "J", "F", "J-Recall", "J-Decay", "F-Recall", "F-Decay",
                          "J-frames", "F-frames"}
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == len(data["objects"]) + 1 and rows[-1]["video"] == "global"
    assert float(rows[-1]["J&F"]) == pytest.approx(data["global"]["J&F"], abs=1e-6)
    assert float(rows[0]["J"]) == pytest.approx(first["J"], abs=1e-6)


def test_cli_mosev2_json_is_valid(generated, tmp_path):
    gt, pred, _ = generated
    out = tmp_path / "m.json"
    assert ev.main(["--gt", str(gt), "--pred", str(pred), "--mode", "mosev2", "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert {"F-legacy", "J&F-legacy", "J&F-disappear", "J&F-reappear"} <= set(data["global"])


def test_cli_errors_name_the_file(tmp_path):
    frame = np.zeros((8, 8), np.uint8)
    frame[2:5, 2:5] = 1
    write_video(tmp_path / "gt", "a", [frame] * 4)
    write_video(tmp_path / "pred", "a", [frame, frame, frame + 1, frame])
    run = [sys.executable, "-m", "fvos_utils", "evaluate", "--gt", str(tmp_path / "gt"),
           "--pred", str(tmp_path / "pred"), "--json", str(tmp_path / "m.json")]
    proc = subprocess.run(run, cwd=project_root(), capture_output=True, text=True)
    assert proc.returncode == 1 and "pred/a/00002.png" in proc.stderr and "predicted id 2" in proc.stderr
    assert not (tmp_path / "m.json").exists()
    (tmp_path / "pred" / "a" / "00002.png").unlink()
    proc = subprocess.run(run, cwd=project_root(), capture_output=True, text=True)
    assert proc.returncode == 1 and "pred/a/00002.png" in proc.stderr and "missing" in proc.stderr
    proc = subprocess.run(run + ["--missing-as-empty", "--quiet"], cwd=project_root(), capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads((tmp_path / "m.json").read_text())["global"]["J"] == 0.5



def test_cli_checks_its_output_paths_before_scoring(generated, tmp_path, monkeypatch, capsys):
    """A --json that cannot be written fails at once, not after the scoring it would lose."""
    gt, pred, _ = generated
    monkeypatch.setattr(ev, "evaluate", lambda *args, **kwargs: pytest.fail("scored before checking --json/--csv"))
    (tmp_path / "taken").write_text("a file")
    for option, target, problem in (("--json", tmp_path, "is a folder"),
                                    ("--csv", tmp_path / "taken" / "out" / "m.csv", "is not a folder")):
        assert ev.main(["--gt", str(gt), "--pred", str(pred), option, str(target), "--quiet"]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and problem in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


# ------------------------------------------------------------------------------ generated data (fvos_utils.data.testing)
def test_generated_videos_are_deterministic_touching_and_vanish():
    frames = list(testing.moving_objects(90, 160, 12, 3, seed=4))
    again = list(testing.moving_objects(90, 160, 12, 3, seed=4))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    assert all(f.dtype == np.uint8 and f.max() <= 3 for f in frames)
    first = frames[0]
    touching = (first[:, :-1] != first[:, 1:]) & (first[:, :-1] > 0) & (first[:, 1:] > 0)
    assert touching.any()  # two objects share a boundary
    present = [bool((f == 3).any()) for f in frames]
    assert present == [t not in range(4, 6) for t in range(12)]  # gone for frames 12 // 3 .. 12 // 2 - 1
    rng = np.random.default_rng(0)
    assert all(testing.noisy_prediction(f, rng, n_objects=3).max() <= 3 for f in frames)



def test_worker_pool_reports_a_missing_frame_naming_it(tmp_path):
    for video in ("a", "b"):
        for t in range(3):
            write_mask(tmp_path / "gt" / video / f"{t:05d}.png", np.ones((8, 8), np.uint8))
            if not (video == "b" and t == 1):
                write_mask(tmp_path / "pred" / video / f"{t:05d}.png", np.ones((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"pred/b/00001\.png"):
        ev.evaluate(tmp_path / "gt", tmp_path / "pred", workers=2, progress=False)


def test_workers_do_not_hang_after_the_caller_used_cv2_threads(tmp_path):
    """A caller that ran cv2's thread pool (the synthetic generator, inference) and then scores with
    workers: forked workers inherited a locked pool and hung (seen: the suite stalled here)."""
    for t, labels in enumerate(testing.moving_objects(48, 64, 4, 2, seed=1)):
        write_mask(tmp_path / "gt" / "v" / f"{t:05d}.png", labels)
        write_mask(tmp_path / "gt" / "w" / f"{t:05d}.png", labels)
        write_mask(tmp_path / "pred" / "v" / f"{t:05d}.png", np.roll(labels, 1, axis=0))
        write_mask(tmp_path / "pred" / "w" / f"{t:05d}.png", labels)
    script = (
        "import cv2, numpy as np, sys\n"
        "from fvos_utils.metrics.evaluate import evaluate\n"
        "cv2.setNumThreads(4)\n"
        "image = np.random.default_rng(0).random((2000, 2000)).astype(np.float32)\n"
        "for _ in range(5):\n"
        "    cv2.GaussianBlur(image, (31, 31), 5)  # the parallel path: the pool's threads now exist\n"
        f"result = evaluate({str(tmp_path / 'gt')!r}, {str(tmp_path / 'pred')!r}, workers=2, progress=False)\n"
        "print(result['global']['J&F'])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    single = ev.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert float(done.stdout.strip()) == pytest.approx(single["global"]["J&F"], abs=1e-12)


# ------------------------------------------------------------------------------ paired bootstrap
def _result(per_video: dict[str, list[tuple[float, float]]]) -> dict:
    """An evaluate()-shaped result from ``{video: [(J, F) per object]}`` (global J&F over all objects)."""
    objects = [{"video": video, "object": k + 1, "J": j, "F": f}
               for video, scores in per_video.items() for k, (j, f) in enumerate(scores)]
    mean_j = sum(o["J"] for o in objects) / len(objects)
    mean_f = sum(o["F"] for o in objects) / len(objects)
    return {"global": {"J&F": (mean_j + mean_f) / 2}, "objects": objects}


def _literal_bootstrap(a: dict, b: dict, resamples: int, seed: int) -> list[float]:
    """The resampled differences, one resample at a time: draw videos, pool their objects, compare."""
    names = sorted({o["video"] for o in a["objects"]})
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    out = []
    for row in draws:
        def jf(res):
            pooled = [o for i in row for o in res["objects"] if o["video"] == names[i]]
            return (sum(o["J"] for o in pooled) / len(pooled) + sum(o["F"] for o in pooled) / len(pooled)) / 2
        out.append(jf(b) - jf(a))
    return out


def _random_pair(seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    videos = {f"v{i}": int(rng.integers(1, 5)) for i in range(9)}  # 1-4 objects: video and object weights differ
    a = {v: [tuple(rng.random(2)) for _ in range(n)] for v, n in videos.items()}
    b = {v: [(min(1, j + rng.normal(0.05, 0.1)), f) for j, f in scores] for v, scores in a.items()}
    return _result(a), _result(b)


def test_paired_difference_matches_a_literal_resampling_loop():
    a, b = _random_pair(0)
    got = ev.paired_difference(a, b, resamples=300, seed=7)
    literal = _literal_bootstrap(a, b, 300, 7)
    assert got.delta == pytest.approx(b["global"]["J&F"] - a["global"]["J&F"], abs=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.quantile(literal, [0.025, 0.975])), abs=1e-12)
    assert got.videos == 9 and got.resamples == 300 and got.seed == 7
    assert list(got.row()) == list(ev.PairedDifference.COLUMNS)
    # seeded: the same call gives the same interval, another seed another one
    assert ev.paired_difference(a, b, resamples=300, seed=7) == got
    assert ev.paired_difference(a, b, resamples=300, seed=8).ci_low != got.ci_low


def test_paired_difference_of_identical_and_shifted_results():
    a, _ = _random_pair(1)
    same = ev.paired_difference(a, a)
    assert (same.delta, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0) and same.within_noise
    shifted = _result({v: [(o["J"] - 0.1, o["F"]) for o in a["objects"] if o["video"] == v]
                       for v in sorted({o["video"] for o in a["objects"]})})
    lower = ev.paired_difference(a, shifted)  # J down 0.1 everywhere: J&F down 0.05 in every resample
    assert lower.delta == pytest.approx(-0.05) and lower.ci_low == pytest.approx(-0.05)
    assert lower.ci_high == pytest.approx(-0.05) and not lower.within_noise
    assert lower.describe() == "-5.00 (95% CI -5.00 to -5.00)"  # points of J&F in percent
    # a row read back from a table says the same
    assert ev.PairedDifference.describe_row({"dJ&F": 0.012, "CI low": -0.003, "CI high": 0.027}) == \
        "+1.20 (95% CI -0.30 to +2.70, within noise)"


def test_paired_difference_refuses_different_objects():
    a, b = _random_pair(2)
    b["objects"] = b["objects"][:-1]
    with pytest.raises(ValueError, match="different objects"):
        ev.paired_difference(a, b)

"""J&F evaluation of video object segmentation: DAVIS 2017 semi-supervised and MOSEv2 modes.

Command line (each DIR holds ``<video>/<frame>.png``; the videos scored are those in GT_DIR)::

    fvos evaluate --gt GT_DIR --pred PRED_DIR [--mode davis|mosev2] [--workers N]
        [--json OUT.json] [--csv OUT.csv] [--tags META.json] [--missing-as-empty] [--quiet]

From Python: :func:`evaluate` for folders; :func:`paired_difference` for the difference of two results
with a video-level bootstrap interval; :func:`jaccard`, :func:`boundary_map`, :func:`boundary_radius`,
:func:`f_measure` and :func:`frame_scores` (all objects of one frame at once) for arrays.

``davis`` mode (the default) follows ``../shared/reference/jf-spec.md``, i.e. the official DAVIS 2017
semi-supervised evaluator, value for value:

- PNGs are read as palette indices; frames are the GT file names in sorted order, f0..f(T+1); frames
  f1..fT are scored (first and last excluded) and each needs a prediction PNG of the same name.
- Objects are ``1..K`` with ``K`` the largest id in f0 (void 255 not counted); unused ids in between are
  objects too. Predicted ids above ``K`` are an error.
- Per object and frame: ``J = |G & P| / |G | P|`` (1 when both are empty) and the boundary F-measure
  with radius ``ceil(0.008 * sqrt(H^2 + W^2))`` and the disk ``dy^2 + dx^2 <= r^2`` (see :func:`f_measure`).
- Per object over its T frames: Mean, Recall (fraction of frames > 0.5) and Decay (mean of the first
  quarter bin minus mean of the last, bins as in :func:`decay_bins`). Unlike the official tool (which
  keeps the bin indices in uint8), Decay stays correct past 255 frames.
- Global values are means over all (video, object) pairs; ``J&F = (J + F) / 2``.

``mosev2`` mode follows the MOSEv2 scorer (MOSE-api), on the same frames and objects except that the
objects are the ids present in f0 (MOSE lists each video's objects; DAVIS's unused ids do not exist there)
and predicted ids that are not objects are ignored:

- ``J = (|G & P| + 1) / (|G | P| + 1)``.
- F (the headline "F_new") uses the adaptive radius ``r = min(d, ceil(0.1 * sqrt(|G|)))`` where
  ``d = 0.008 * sqrt(H^2 + W^2)`` unrounded (``r = d`` when G is empty); "F-legacy" uses ``ceil(d)``
  when ``r < d`` and ``d`` itself otherwise. A non-integer radius gets MOSE's structuring element
  (see :func:`disk_kernel`). ``J&F = (J + F) / 2``; ``J&F-legacy`` uses F-legacy.
- Disappearance and reappearance, per object over its scored frames ``t = 0..T-1`` with ``present[t]``
  meaning the GT holds at least one pixel of the object:

  * a *disappearance segment* is a maximal run of absent frames that starts at some ``t > 0`` with
    ``present[t-1]`` (an object absent from the first scored frame on has no disappearance there);
  * a *reappearance segment* is a maximal run of present frames that starts at some ``t > 0`` with
    ``present[t-1]`` false, i.e. the frames from its return until it vanishes again or the video ends.

  ``J-disappear`` of an object is the mean over its disappearance segments of the mean J within each
  segment (segments weigh equally, whatever their length); likewise ``F-disappear``, ``J-reappear`` and
  ``F-reappear``; ``None`` for an object without such a segment. Globally each is the mean over the
  objects that have one, and ``J&F-disappear = (J-disappear + F-disappear) / 2``. With J = 1 only for an
  empty prediction, a disappearance score measures how well a tracker stays silent while its object is
  gone, and a reappearance score how well it picks the object up again.
- Differences from the MOSE-api script kept on purpose: a missing prediction is an error here (MOSE
  scores a missing video 0, use ``missing_as_empty`` to score it as empty), and the frame list comes from
  the GT folder (MOSE lists the prediction folder; the two agree when the names match).

Memory stays bounded: frames are streamed one at a time and each object is scored on the bounding box of
``G | P`` (one pixel of margin), never as full-frame one-hot stacks.
"""
from __future__ import annotations

import argparse
import csv
import functools
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

import cv2
import numpy as np

from fvos_utils.base.io import VOID_LABEL, DataError, atomic_path, file_in_the_way, frame_files, read_json, read_mask, \
    video_folders, write_json
from fvos_utils.base.progress import progress_bar
from fvos_utils.metrics.percent import signed

SCORING_MODES = ("davis", "mosev2")
BOUNDARY_FRACTION = 0.008  # of the frame diagonal: the F-measure's matching radius
ADAPTIVE_FRACTION = 0.1  # mosev2: of sqrt(GT area)
GLOBAL_KEYS = ("J", "F", "J&F", "J-Recall", "J-Decay", "F-Recall", "F-Decay")
MOSEV2_OBJECT_KEYS = ("F-legacy", "J-disappear", "F-disappear", "J-reappear", "F-reappear")


# ------------------------------------------------------------------------------ single masks (arrays)
def _check_mode(mode: str) -> None:
    if mode not in SCORING_MODES:
        raise ValueError(f"mode must be one of {SCORING_MODES}, got {mode!r}")


def boundary_radius(h: int, w: int) -> int:
    """The DAVIS F-measure radius in pixels: ``ceil(0.008 * sqrt(h^2 + w^2))`` (8 at 480x854)."""
    return math.ceil(diagonal_radius(h, w))


def diagonal_radius(h: int, w: int) -> float:
    """``0.008 * sqrt(h^2 + w^2)``, unrounded (the float operations of the reference tools)."""
    return BOUNDARY_FRACTION * math.sqrt(h * h + w * w)


def mosev2_radii(gt_area: int, h: int, w: int) -> tuple[float, float]:
    """mosev2 radii ``(adaptive, legacy)`` for a GT mask of ``gt_area`` pixels in an ``h x w`` frame."""
    diagonal = diagonal_radius(h, w)
    if gt_area == 0:
        return diagonal, diagonal
    adaptive = min(diagonal, math.ceil(ADAPTIVE_FRACTION * math.sqrt(gt_area)))
    if adaptive < diagonal:
        return adaptive, math.ceil(diagonal)
    return diagonal, diagonal


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: float) -> np.ndarray:
    """The structuring element for ``radius``: ``(n, n) uint8``, anchored at ``(n // 2, n // 2)``.

    Grid coordinates are ``-radius + i`` for ``i = 0..n-1`` (``n`` = the length of
    ``arange(-radius, radius + 1)``) and the element holds those with ``y^2 + x^2 <= radius^2``. For an
    integer radius that is the centred disk ``dy^2 + dx^2 <= r^2``; for a fractional one (mosev2's
    unrounded radius) the grid sits off-centre by the fraction, as in the MOSE scorer.
    """
    coords = np.arange(-radius, radius + 1)
    kernel = (coords[:, None] ** 2 + coords[None, :] ** 2 <= radius ** 2).astype(np.uint8)
    kernel.flags.writeable = False
    return kernel


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of ``mask (H, W) bool``: ``(H, W) bool``.

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour, where
    that neighbour exists: the image edge never creates boundary, and a full-frame mask has none.
    """
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, bool)
    np.not_equal(mask[:, :-1], mask[:, 1:], out=out[:, :-1])
    out[:-1] |= mask[:-1] != mask[1:]
    out[:-1, :-1] |= mask[:-1, :-1] != mask[1:, 1:]
    return out


def jaccard(gt_mask: np.ndarray, pred_mask: np.ndarray, *, mode: str = "davis") -> float:
    """Region similarity of ``gt_mask`` and ``pred_mask`` (both ``(H, W) bool``).

    ``davis``: ``|G & P| / |G | P|``, 1 when both are empty; ``mosev2``: ``(|G & P| + 1) / (|G | P| + 1)``.
    """
    _check_mode(mode)
    gt_mask, pred_mask = _same_shape(gt_mask, pred_mask)
    inter = int(np.count_nonzero(gt_mask & pred_mask))
    union = int(np.count_nonzero(gt_mask | pred_mask))
    return _jaccard_from_counts(inter, union, mode)


def f_measure(gt_mask: np.ndarray, pred_mask: np.ndarray, radius: float | None = None) -> float:
    """Boundary F-measure of ``pred_mask`` against ``gt_mask`` (both ``(H, W) bool``).

    Precision is the fraction of the prediction's boundary pixels within ``radius`` (see
    :func:`disk_kernel`) of a GT boundary pixel; Recall the converse; ``F = 2PR / (P + R)`` (0 when
    ``P + R = 0``). Empty boundaries: prediction only empty gives P=1, R=0; GT only, P=0, R=1; both, 1.
    ``radius`` defaults to :func:`boundary_radius` of the frame.
    """
    gt_mask, pred_mask = _same_shape(gt_mask, pred_mask)
    if radius is None:
        radius = boundary_radius(*gt_mask.shape)
    return _boundary_f(gt_mask, pred_mask, (radius,))[0]


def _same_shape(gt_mask, pred_mask) -> tuple[np.ndarray, np.ndarray]:
    gt_mask, pred_mask = np.asarray(gt_mask, dtype=bool), np.asarray(pred_mask, dtype=bool)
    if gt_mask.ndim != 2 or gt_mask.shape != pred_mask.shape:
        raise ValueError(f"masks must be 2-D and of one shape, got {gt_mask.shape} and {pred_mask.shape}")
    return gt_mask, pred_mask


def _jaccard_from_counts(inter: int, union: int, mode: str) -> float:
    if mode == "mosev2":
        return (inter + 1) / (union + 1)
    return 1.0 if union == 0 else inter / union


def _f_from_counts(n_pred: int, n_gt: int, pred_hits: int, gt_hits: int) -> float:
    """F from boundary sizes and matched counts (pred boundary pixels near GT, and vice versa)."""
    if n_pred == 0 or n_gt == 0:
        precision, recall = (1.0 if n_pred == 0 else 0.0), (1.0 if n_gt == 0 else 0.0)
    else:
        precision, recall = pred_hits / n_pred, gt_hits / n_gt
    total = precision + recall
    return 0.0 if total == 0 else 2 * precision * recall / total


def _boundary_f(gt_mask: np.ndarray, pred_mask: np.ndarray, radii: Sequence[float]) -> list[float]:
    """F for each radius in ``radii``; masks ``(h, w) bool`` (a crop is fine if it holds both masks
    with one pixel of margin wherever it does not reach the frame edge)."""
    if np.array_equal(gt_mask, pred_mask):  # equal boundaries: P = R = 1 whatever the radius
        return [1.0] * len(radii)
    gt_edge, pred_edge = boundary_map(gt_mask), boundary_map(pred_mask)
    n_gt, n_pred = int(np.count_nonzero(gt_edge)), int(np.count_nonzero(pred_edge))
    if n_gt == 0 or n_pred == 0:
        return [_f_from_counts(n_pred, n_gt, 0, 0)] * len(radii)
    scores = []
    for radius in radii:
        pred_hits = _count_near(gt_edge, pred_edge, n_pred, float(radius))
        gt_hits = _count_near(pred_edge, gt_edge, n_gt, float(radius))
        scores.append(_f_from_counts(n_pred, n_gt, pred_hits, gt_hits))
    return scores


@functools.lru_cache(maxsize=64)
def _kernel_rows(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The rows of :func:`disk_kernel` as offsets from its anchor: ``(dy, first dx, last dx)``, each
    ``(R,) int64``, and the anchor. Every row of a disk is one run of ones."""
    kernel = disk_kernel(radius)
    anchor = kernel.shape[0] // 2
    rows = np.flatnonzero(kernel.any(axis=1))
    first = kernel[rows].argmax(axis=1)
    last = kernel.shape[1] - 1 - kernel[rows, ::-1].argmax(axis=1)
    return rows - anchor, first - anchor, last - anchor, anchor


def _count_near(target: np.ndarray, query: np.ndarray, n_query: int, radius: float) -> int:
    """``count(query & dilate(target, disk_kernel(radius)))`` for ``(h, w) bool`` edge maps.

    Boundaries are sparse, so instead of dilating the whole crop this looks, for each query pixel and
    each disk row, for a target pixel in that row's span, using per-row prefix sums of ``target``.
    Dense edge maps (a noise-like prediction) go through the dilation, which is then cheaper.
    """
    dys, first, last, reach = _kernel_rows(radius)
    h, w = target.shape
    if n_query * len(dys) > target.size:
        dilated = cv2.dilate(target.view(np.uint8), disk_kernel(radius))
        return int(np.count_nonzero(query.view(np.uint8) & dilated))
    prefix = np.zeros((h + 2 * reach, w + 1), np.int32)  # zero rows: nothing above or below the image
    np.cumsum(target, axis=1, dtype=np.int32, out=prefix[reach:reach + h, 1:])
    qy, qx = np.nonzero(query)
    rows = qy + (dys[:, None] + reach)
    lo = np.clip(qx + first[:, None], 0, w)
    hi = np.clip(qx + last[:, None] + 1, 0, w)
    return int(np.count_nonzero((prefix[rows, hi] > prefix[rows, lo]).any(axis=0)))


# ------------------------------------------------------------------------------ one frame, all objects
@dataclass(frozen=True)
class FrameScores:
    """Scores of one frame, each ``(N,)`` in the order of the object ids asked for.

    ``j``, ``f``: float64; ``f_legacy``: float64 in mosev2 mode, else None; ``gt_present``: bool, the
    GT holds the object.
    """

    j: np.ndarray
    f: np.ndarray
    f_legacy: np.ndarray | None
    gt_present: np.ndarray


def frame_scores(gt: np.ndarray, pred: np.ndarray, object_ids: Sequence[int], *,
                 mode: str = "davis") -> FrameScores:
    """J and F of every object in ``object_ids`` on one frame; ``gt``, ``pred``: ``(H, W) uint8`` label maps.

    Each object is scored on the bounding box of ``G | P`` grown by one pixel, which holds every boundary
    pixel of both masks, so the result equals the full-frame definition.
    """
    _check_mode(mode)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"label maps must be 2-D and of one shape, got {gt.shape} and {pred.shape}")
    height, width = gt.shape
    n = len(object_ids)
    j, f = np.ones(n), np.ones(n)
    f_legacy = np.ones(n) if mode == "mosev2" else None
    gt_present = np.zeros(n, bool)
    radius = boundary_radius(height, width)
    for i, k in enumerate(object_ids):
        union = gt == k
        union |= pred == k
        x, y, box_w, box_h = cv2.boundingRect(union.view(np.uint8))
        if box_w == 0:  # absent from both: J = F = 1 (both boundaries empty)
            continue
        rows = slice(max(y - 1, 0), min(y + box_h + 1, height))
        cols = slice(max(x - 1, 0), min(x + box_w + 1, width))
        gt_mask, pred_mask = gt[rows, cols] == k, pred[rows, cols] == k
        n_gt = int(np.count_nonzero(gt_mask))
        inter = int(np.count_nonzero(gt_mask & pred_mask))
        n_union = n_gt + int(np.count_nonzero(pred_mask)) - inter
        j[i] = _jaccard_from_counts(inter, n_union, mode)
        gt_present[i] = n_gt > 0
        if mode == "mosev2":
            f[i], f_legacy[i] = _boundary_f(gt_mask, pred_mask, mosev2_radii(n_gt, height, width))
        else:
            f[i] = _boundary_f(gt_mask, pred_mask, (radius,))[0]
    return FrameScores(j, f, f_legacy, gt_present)


# ------------------------------------------------------------------------------ per-object statistics
def decay_bins(n_frames: int) -> list[int]:
    """The 5 edges ``i_0..i_4`` of DAVIS's 4 Decay bins for a series of ``n_frames`` values.

    ``i_k = round(1 + k (T - 1) / 4 + 1e-10) - 1``; the spec's rounding of exact halves upwards is done
    in integers, so it holds for any T (the official tool stores these in uint8).
    """
    if n_frames < 1:
        raise ValueError(f"a Decay needs at least one frame, got {n_frames}")
    return [(k * (n_frames - 1) + 2) // 4 for k in range(5)]


def object_statistics(values: Sequence[float]) -> tuple[float, float, float]:
    """``(Mean, Recall, Decay)`` of one object's per-frame values ``(T,) float64``.

    Recall is the fraction of values above 0.5; Decay the mean of bin 0 minus the mean of bin 3, each
    bin ``values[i_k .. i_(k+1)]`` with both ends included (:func:`decay_bins`).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = decay_bins(len(values))
    decay = values[edges[0]:edges[1] + 1].mean() - values[edges[3]:edges[4] + 1].mean()
    return float(values.mean()), float(np.mean(values > 0.5)), float(decay)


def presence_segments(present: Sequence[bool]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(disappearances, reappearances)`` as ``[start, stop)`` frame ranges of ``present (T,) bool``.

    A disappearance is a maximal absent run entered from a present frame; a reappearance a maximal
    present run entered from an absent frame (see the module docstring).
    """
    present = np.asarray(present, dtype=bool)
    bounds = [int(t) for t in np.flatnonzero(present[1:] != present[:-1]) + 1] + [len(present)]
    disappear, reappear = [], []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        (reappear if present[start] else disappear).append((start, stop))
    return disappear, reappear


def _segment_score(values: np.ndarray, segments: list[tuple[int, int]]) -> float | None:
    if not segments:
        return None
    return float(np.mean([values[a:b].mean() for a, b in segments]))


# ------------------------------------------------------------------------------ one video (streamed)
def _read_prediction(path: Path, shape: tuple[int, int], gt_path: Path, missing_as_empty: bool) -> np.ndarray:
    if not path.is_file():
        if missing_as_empty:
            return np.zeros(shape, np.uint8)
        raise DataError(path, f"prediction missing for ground-truth frame {gt_path} "
                              "(pass missing_as_empty / --missing-as-empty to score it as empty)")
    pred = read_mask(path)
    if pred.shape != shape:
        raise DataError(path, f"prediction size {pred.shape[1]}x{pred.shape[0]} (WxH) differs from the "
                              f"ground truth {gt_path} {shape[1]}x{shape[0]}")
    return pred


def evaluate_video(gt_video: str | os.PathLike, pred_video: str | os.PathLike, *, mode: str = "davis",
                   missing_as_empty: bool = False) -> dict:
    """Score one video: GT frames ``gt_video/*.png`` against ``pred_video/<same name>.png``.

    Returns ``{"video", "frames": [scored frame names], "height", "width", "objects": [{"object": id,
    "J-frames": [...], "F-frames": [...], "present": [...]} (+ "F-legacy-frames" in mosev2)]}``.
    """
    _check_mode(mode)
    gt_video, pred_video = Path(gt_video), Path(pred_video)
    gt_files = frame_files(gt_video)
    if len(gt_files) < 3:
        raise DataError(gt_video, f"{len(gt_files)} ground-truth PNG(s); at least 3 are needed "
                                  "(the first and last frames are not scored)")
    if not pred_video.is_dir() and not missing_as_empty:
        raise DataError(pred_video, "prediction folder for this video not found "
                                    "(pass missing_as_empty / --missing-as-empty to score it as empty)")
    first = read_mask(gt_files[0])
    first_ids = sorted(set(np.unique(first).tolist()) - {0, VOID_LABEL})
    n_objects = first_ids[-1] if first_ids else 0
    object_ids = list(range(1, n_objects + 1)) if mode == "davis" else first_ids
    scored = gt_files[1:-1]
    keys = ("J-frames", "F-frames", "present") + (("F-legacy-frames",) if mode == "mosev2" else ())
    series = [{key: [] for key in keys} for _ in object_ids]
    for gt_path in scored:
        gt = read_mask(gt_path)
        if gt.shape != first.shape:
            raise DataError(gt_path, f"size {gt.shape[1]}x{gt.shape[0]} (WxH) differs from the video's "
                                     f"first frame {gt_files[0]} {first.shape[1]}x{first.shape[0]}")
        pred_path = pred_video / gt_path.name
        pred = _read_prediction(pred_path, gt.shape, gt_path, missing_as_empty)
        if mode == "davis":
            top = int(pred.max())
            if top > n_objects:
                raise DataError(pred_path, f"predicted id {top} is above the ground truth's {n_objects} "
                                           f"object(s) (ids 1..{n_objects} in {gt_files[0]})")
        scores = frame_scores(gt, pred, object_ids, mode=mode)
        for i, per_object in enumerate(series):
            per_object["J-frames"].append(float(scores.j[i]))
            per_object["F-frames"].append(float(scores.f[i]))
            per_object["present"].append(bool(scores.gt_present[i]))
            if scores.f_legacy is not None:
                per_object["F-legacy-frames"].append(float(scores.f_legacy[i]))
    return {"video": gt_video.name, "frames": [p.stem for p in scored], "height": first.shape[0],
            "width": first.shape[1], "objects": [{"object": k, **s} for k, s in zip(object_ids, series, strict=True)]}


def _evaluate_video_task(args: tuple) -> dict:
    """Pool entry point (a picklable function of one tuple)."""
    gt_video, pred_video, mode, missing_as_empty = args
    return evaluate_video(gt_video, pred_video, mode=mode, missing_as_empty=missing_as_empty)


def _pin_threads() -> None:
    cv2.setNumThreads(1)


# ------------------------------------------------------------------------------ summaries
def _object_summary(video: str, obj: dict, mode: str) -> dict:
    j_values, f_values = np.asarray(obj["J-frames"]), np.asarray(obj["F-frames"])
    j_mean, j_recall, j_decay = object_statistics(j_values)
    f_mean, f_recall, f_decay = object_statistics(f_values)
    row = {"video": video, "object": obj["object"], "J": j_mean, "F": f_mean, "J&F": (j_mean + f_mean) / 2,
           "J-Recall": j_recall, "J-Decay": j_decay, "F-Recall": f_recall, "F-Decay": f_decay}
    if mode == "mosev2":
        disappear, reappear = presence_segments(obj["present"])
        row.update({"F-legacy": float(np.mean(obj["F-legacy-frames"])),
                    "J-disappear": _segment_score(j_values, disappear),
                    "F-disappear": _segment_score(f_values, disappear),
                    "J-reappear": _segment_score(j_values, reappear),
                    "F-reappear": _segment_score(f_values, reappear)})
    row.update({key: obj[key] for key in ("J-frames", "F-frames", "F-legacy-frames") if key in obj})
    return row


def _mean_or_none(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _average(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (a + b) / 2


def _global_summary(objects: list[dict], mode: str) -> dict:
    """Means over (video, object) pairs; None where no object has a value (the JSON stays NaN-free)."""
    keys = [k for k in GLOBAL_KEYS if k != "J&F"] + (list(MOSEV2_OBJECT_KEYS) if mode == "mosev2" else [])
    means = {key: _mean_or_none([o[key] for o in objects]) for key in keys}
    summary = {key: means.get(key) for key in GLOBAL_KEYS}
    summary["J&F"] = _average(means["J"], means["F"])
    if mode == "mosev2":
        summary["F-legacy"] = means["F-legacy"]
        summary["J&F-legacy"] = _average(means["J"], means["F-legacy"])
        for event in ("disappear", "reappear"):
            summary[f"J-{event}"], summary[f"F-{event}"] = means[f"J-{event}"], means[f"F-{event}"]
            summary[f"J&F-{event}"] = _average(means[f"J-{event}"], means[f"F-{event}"])
            summary[f"{event}-objects"] = sum(o[f"J-{event}"] is not None for o in objects)
    summary["objects"] = len(objects)
    return summary


def load_tags(tags: Mapping[str, Sequence[str]] | str | os.PathLike) -> dict[str, list[str]]:
    """Video -> tags, from a dict or from a JSON file holding ``{"videos": {name: {"tags": [...]}}}``."""
    source = None
    if isinstance(tags, Mapping):
        mapping = dict(tags)
    else:
        source = Path(tags)
        meta = read_json(source)
        videos = meta.get("videos") if isinstance(meta, dict) else None
        if not isinstance(videos, dict) or not all(isinstance(entry, dict) for entry in videos.values()):
            raise DataError(source, 'expected {"videos": {name: {"tags": [...]}, ...}}')
        mapping = {name: entry.get("tags", []) for name, entry in videos.items()}
    for name, entry in mapping.items():
        if not isinstance(entry, (list, tuple)) or not all(isinstance(tag, str) for tag in entry):
            problem = f"tags of video {name!r} must be a list of strings, got {entry!r}"
            raise ValueError(problem) if source is None else DataError(source, problem)
    return {str(name): list(entry) for name, entry in mapping.items()}


def _per_tag(objects: list[dict], tags: dict[str, list[str]], mode: str) -> dict:
    by_tag: dict[str, list[dict]] = {}
    for obj in objects:
        for tag in tags.get(obj["video"], []):
            by_tag.setdefault(tag, []).append(obj)
    out = {}
    for tag in sorted(by_tag):
        summary = _global_summary(by_tag[tag], mode)
        summary["videos"] = len({o["video"] for o in by_tag[tag]})
        out[tag] = summary
    return out


# ------------------------------------------------------------------------------ folders
def _video_names(gt_dir: Path) -> list[str]:
    if not gt_dir.is_dir():
        raise DataError(gt_dir, "ground-truth folder not found")
    names = video_folders(gt_dir)
    if not names:
        raise DataError(gt_dir, "no video folders (expected GT_DIR/<video>/<frame>.png)")
    if "Annotations" in names:
        raise DataError(gt_dir, "holds an Annotations/ folder: pass that folder (of <video>/<frame>.png) instead")
    return names


def evaluate(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, mode: str = "davis", workers: int = 1,
             tags: Mapping[str, Sequence[str]] | str | os.PathLike | None = None, missing_as_empty: bool = False,
             videos: Sequence[str] | None = None, progress: bool = True) -> dict:
    """Score the predictions in ``pred_dir`` against the ground truth in ``gt_dir`` (module docstring).

    Args:
        gt_dir, pred_dir: folders of ``<video>/<frame>.png``; the videos scored are those in ``gt_dir``
            (or ``videos``, a subset of them).
        mode: ``"davis"`` or ``"mosev2"``.
        workers: processes scoring videos in parallel (1: in this process).
        tags: video -> tags (a dict, or a path to a ``meta.json`` with ``{"videos": {name: {"tags": [...]}}}``);
            adds ``"per_tag"``: global values over the objects of the videos carrying each tag.
        missing_as_empty: score a missing prediction frame or video as empty instead of raising (a
            missing ``pred_dir`` stays an error).
        progress: show a progress bar over videos.

    Returns:
        ``{"mode", "global": {"J", "F", "J&F", "J-Recall", "J-Decay", "F-Recall", "F-Decay", "objects", ...},
        "objects": [{"video", "object", "J", "F", "J&F", "J-Recall", "J-Decay", "F-Recall", "F-Decay",
        "J-frames", "F-frames", ...}], "videos": {name: {"frames", "height", "width", "objects"}},
        "per_tag"?}``; values are fractions in [0, 1] (Decay in [-1, 1]). mosev2 adds ``F-legacy``,
        ``J&F-legacy`` and the disappearance/reappearance scores.

    Raises:
        DataError: a missing or malformed file, naming it.
    """
    _check_mode(mode)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    names = _video_names(gt_dir)
    if videos is not None:
        unknown = sorted(set(videos) - set(names))
        if unknown:
            raise DataError(gt_dir, f"video(s) not in the ground truth: {', '.join(unknown[:5])}")
        names = list(videos)
    if not pred_dir.is_dir():  # even with missing_as_empty: a mistyped folder would score as all empty
        raise DataError(pred_dir, "prediction folder not found")
    tag_map = load_tags(tags) if tags is not None else None
    tasks = [(gt_dir / name, pred_dir / name, mode, missing_as_empty) for name in names]
    bar = dict(total=len(tasks), desc=f"J&F ({mode})", unit="video", show=progress)
    if workers == 1:
        results = [_evaluate_video_task(task) for task in progress_bar(tasks, **bar)]
    else:
        # Not plain fork: a process whose cv2 or torch thread pools have run (any chapter, after
        # inference or the synthetic generator) deadlocks its forked workers. The fork server is a clean
        # process started once (numpy and cv2 imported there, ~0.5 s), whose forks start in milliseconds;
        # where it does not exist (Windows) the workers are spawned.
        context = get_context("forkserver" if sys.platform != "win32" else "spawn")
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                                 initializer=_pin_threads) as pool:
            results = list(progress_bar(pool.map(_evaluate_video_task, tasks), **bar))
    objects = [_object_summary(video["video"], obj, mode) for video in results for obj in video["objects"]]
    out = {"mode": mode, "global": _global_summary(objects, mode), "objects": objects,
           "videos": {v["video"]: {"frames": v["frames"], "height": v["height"], "width": v["width"],
                                   "objects": [o["object"] for o in v["objects"]]} for v in results}}
    if tag_map is not None:
        out["per_tag"] = _per_tag(objects, tag_map, mode)
    return out


# ------------------------------------------------------------------------------ comparing two results
@dataclass(frozen=True)
class PairedDifference:
    """J&F of one result minus another's on the same objects, with a video-level bootstrap interval."""

    #: the table columns of a comparison (:meth:`row`)
    COLUMNS: ClassVar[tuple[str, str, str]] = ("dJ&F", "CI low", "CI high")

    delta: float      # J&F(result) - J&F(baseline), fractions in [-1, 1]
    ci_low: float     # the interval's bounds (percentile bootstrap)
    ci_high: float
    confidence: float  # 0.95: a 95% interval
    videos: int       # the videos resampled
    resamples: int
    seed: int

    @property
    def within_noise(self) -> bool:
        """Whether the interval covers 0: the data cannot tell the two apart."""
        return self.covers_zero(self.ci_low, self.ci_high)

    @staticmethod
    def covers_zero(ci_low: float, ci_high: float) -> bool:
        """Whether an interval read back from a table (``CI low``, ``CI high``) covers 0."""
        return ci_low <= 0.0 <= ci_high

    def row(self) -> dict[str, float]:
        """``{"dJ&F", "CI low", "CI high"}`` (:data:`COLUMNS`) for a comparison table."""
        return dict(zip(self.COLUMNS, (self.delta, self.ci_low, self.ci_high)))

    def describe(self) -> str:
        """``"+1.20 (95% CI -0.30 to +2.70, within noise)"``: the change in points of J&F in percent."""
        return self.describe_row(self.row(), confidence=self.confidence)

    @classmethod
    def describe_row(cls, row, *, confidence: float = 0.95) -> str:
        """:meth:`describe` of a comparison read back from a table row or dict (:data:`COLUMNS`)."""
        delta, low, high = (float(row[column]) for column in cls.COLUMNS)
        noise = ", within noise" if cls.covers_zero(low, high) else ""
        return f"{signed(delta)} ({confidence:.0%} CI {signed(low)} to {signed(high)}{noise})"


def _per_video_sums(result: dict) -> dict[str, tuple[int, float]]:
    """video -> (objects, sum over its objects of (J + F) / 2), from an :func:`evaluate` result."""
    sums: dict[str, tuple[int, float]] = {}
    for obj in result["objects"]:
        count, total = sums.get(obj["video"], (0, 0.0))
        sums[obj["video"]] = (count + 1, total + (obj["J"] + obj["F"]) / 2)
    return sums


def paired_difference(baseline: dict, result: dict, *, resamples: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> PairedDifference:
    """``J&F(result) - J&F(baseline)`` of two :func:`evaluate` results scored on the same objects, with a
    paired bootstrap interval over videos.

    Videos, not objects, are resampled: a video's objects share its frames and succeed or fail together.
    The draws are ``np.random.default_rng(seed).integers(0, V, size=(resamples, V))`` over the V videos
    in name order; each resample's J&F is the mean over the drawn videos' objects (a video drawn twice
    counts twice), as :func:`evaluate`'s global J&F is over all objects, and the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled differences.

    Raises:
        ValueError: the two results score different (video, object) pairs.
    """
    def keys(res):
        return sorted((o["video"], o["object"]) for o in res["objects"])

    if keys(baseline) != keys(result):
        different = sorted(set(keys(baseline)) ^ set(keys(result)))[:5]
        raise ValueError(f"the two results score different objects, e.g. {different}")
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    before, after = _per_video_sums(baseline), _per_video_sums(result)
    names = sorted(before)
    objects = np.array([before[name][0] for name in names], dtype=np.float64)
    gain = np.array([after[name][1] - before[name][1] for name in names])  # (V,) summed per-object change
    n_videos = len(names)
    draws = np.random.default_rng(seed).integers(0, n_videos, size=(resamples, n_videos))
    offsets = (np.arange(resamples) * n_videos)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * n_videos).reshape(resamples, n_videos)
    differences = (counts @ gain) / (counts @ objects)
    low, high = np.quantile(differences, [(1 - confidence) / 2, (1 + confidence) / 2])
    delta = float(gain.sum() / objects.sum())
    return PairedDifference(delta, float(low), float(high), confidence, n_videos, resamples, seed)


# ------------------------------------------------------------------------------ output
def _csv_columns(mode: str) -> list[str]:
    columns = ["video", "object", "J&F", "J", "F", "J-Recall", "J-Decay", "F-Recall", "F-Decay"]
    return columns + (list(MOSEV2_OBJECT_KEYS) if mode == "mosev2" else [])


def write_csv(results: dict, path: str | os.PathLike) -> None:
    """One row per object, then a ``global`` row; values as fractions (empty cell for None)."""
    columns = _csv_columns(results["mode"])
    rows = [{c: obj.get(c) for c in columns} for obj in results["objects"]]
    rows.append({"video": "global", "object": "", **{c: results["global"].get(c) for c in columns[2:]}})
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if v is None else (f"{v:.6f}" if isinstance(v, float) else v)
                             for c, v in row.items()})


def format_table(results: dict) -> str:
    """A short text table: the global row, then one row per tag (values in percent)."""
    keys = ["J&F", "J", "F", "J-Recall", "J-Decay", "F-Recall", "F-Decay"]
    if results["mode"] == "mosev2":
        keys += ["J&F-legacy", "J&F-disappear", "J&F-reappear"]
    rows = [("global", results["global"])] + [(f"tag:{t}", s) for t, s in results.get("per_tag", {}).items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}} {'objects':>7} " + " ".join(f"{k:>{max(6, len(k))}}" for k in keys)]
    for name, summary in rows:
        cells = [f"{'-' if summary[k] is None else f'{100 * summary[k]:.1f}':>{max(6, len(k))}}" for k in keys]
        lines.append(f"{name:<{width}} {summary['objects']:>7} " + " ".join(cells))
    return "\n".join(lines)


def _check_output_path(path: Path) -> None:
    """Raise DataError if ``path`` cannot be written as a file: it is a folder, or what should be its
    folder is a file. Checked before scoring, so that hours of scoring are not lost at the end."""
    if path.is_dir():
        raise DataError(path, "is a folder; give a file name to write the results to")
    blocking = file_in_the_way(path)  # missing folders are created when writing
    if blocking is not None:
        raise DataError(blocking, f"is not a folder, so {path} cannot be written")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fvos evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--gt", required=True, help="ground truth: GT_DIR/<video>/<frame>.png")
    parser.add_argument("--pred", required=True, help="predictions: PRED_DIR/<video>/<frame>.png")
    parser.add_argument("--mode", choices=SCORING_MODES, default="davis",
                        help="davis: the DAVIS 2017 evaluator (fixed boundary radius); mosev2: its adaptive radius")
    parser.add_argument("--workers", type=int, default=1, help="processes scoring videos in parallel")
    parser.add_argument("--json", type=Path, help="write all results (fractions in [0, 1]) to this file")
    parser.add_argument("--csv", type=Path, help="write one row per object plus a global row")
    parser.add_argument("--tags", type=Path, help='meta.json with {"videos": {name: {"tags": [...]}}}')
    parser.add_argument("--missing-as-empty", action="store_true",
                        help="score a missing prediction frame or video as empty instead of failing "
                             "(a missing PRED_DIR stays an error)")
    parser.add_argument("--quiet", action="store_true", help="no table, no progress bar")
    args = parser.parse_args(argv)
    try:
        for output in (args.json, args.csv):
            if output is not None:
                _check_output_path(output)
        results = evaluate(args.gt, args.pred, mode=args.mode, workers=args.workers, tags=args.tags,
                           missing_as_empty=args.missing_as_empty, progress=not args.quiet)
    except (ValueError, OSError) as err:  # a DataError; a --json or --csv it cannot write
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        write_json(args.json, results)
    if args.csv:
        write_csv(results, args.csv)
    if not args.quiet:
        print(format_table(results))
    return 0

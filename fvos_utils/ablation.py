"""The ablations of chapters 05 (gap filling, FVOS section 2.2) and 06 (multi-scale fusion, section 2.3).

Both chapters follow one recipe: write prediction folders (``<folder>/<video>/<frame>.png``), score each
with :func:`fvos_utils.evaluate.evaluate`, and build every table and figure from those scores, which
are kept as JSON beside the folders. Nothing here re-implements gap filling, voting or J&F: this module
only decides *what* is filled, fused and scored, and in which order.

- Which model: :func:`resolve_model` (the run's recorded best epoch and sigmoid, else a ``ckpt``).
- Gap filling (chapter 05): :class:`GapFilling` variants (method, kernel shape, kernel size) applied by
  :func:`fill_variants` to the per-object masks of a single-model run (its saved probabilities, as the
  paper fills the separately predicted masks) or to merged label maps; :func:`gap_filling_table`,
  :func:`object_deltas`, :func:`contact_gaps` (how much of the true contact line between touching
  objects is predicted as background), :func:`bridged_gap_table` (which straight gap a kernel can
  bridge at all), and helpers for Figure-2-style crops and the real two-object clip.
- Fusion (chapter 06): :class:`Pass` (one model pass: a scale and a test-time transform),
  :func:`run_passes`, :class:`FusionVariant` (scale set, transform set, hard or soft voting, gap filling
  none / before / after fusion) run by :func:`fusion_ablation`; :func:`fusion_table`, :func:`cost_table`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import evaluate as evaluation
from . import fusion, infer, models, postprocess, probs, selection, train
from .figures import frame_grid, overlay
from .io import VOID_LABEL, DataError, VOSDataset, atomic_dir, read_json, read_mask, write_json, write_mask
from .paths import outputs_dir, resolve

#: kernel sizes k of the ablation (the paper shows several in its Figure 2 and reports k = 2 best)
KERNEL_SIZES = (0, 1, 2, 3, 5, 7, 9)
#: stored probabilities are round(255 p): p > 0.5 <=> stored >= 128 (the single-source rule of fusion)
FOREGROUND = 128
#: file beside each scored folder holding the evaluator's result
SCORES_FILE = "scores.json"


# ------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ModelChoice:
    """The weights and memory-encoder sigmoid a chapter runs with, and where they came from."""

    model: str                  # a fvos_utils.models.MODELS name
    checkpoint: str             # a weights file, or "random"
    sigmoid_scale: float | None  # None: the model config's value
    sigmoid_bias: float | None
    source: str                 # in words, for the notebook's printout and metrics.json

    def build(self, *, scale: float = 1.0, seed: int = 0, device: str | None = None):
        """A ``SAM2VideoPredictor`` with these weights at ``scale`` x the model's base image size."""
        return models.build_predictor(self.model, self.checkpoint, scale=scale, seed=seed, device=device,
                                      sigmoid_scale=self.sigmoid_scale, sigmoid_bias=self.sigmoid_bias)

    def as_dict(self) -> dict:
        return {"model": self.model, "checkpoint": self.checkpoint, "sigmoid_scale": self.sigmoid_scale,
                "sigmoid_bias": self.sigmoid_bias, "source": self.source}


#: what chapter 03 (epoch selection) and chapter 04 (sigmoid search) record, under outputs/<run>/
EPOCH_PICK = Path("03_epoch_selection") / "best.json"
SIGMOID_PICK = Path("04_sigmoid_search") / "best_sigmoid.json"


def resolve_model(run: str, *, model: str = "fvos_tiny", ckpt: str = "default") -> ModelChoice:
    """The model a chapter of ``run`` uses.

    Weights, the first that exists: chapter 03's pick (``outputs/<run>/03_epoch_selection/best.json``,
    the best epoch of both stages), the best stage-2 epoch recorded by epoch selection, the best
    stage-1 epoch; else ``ckpt``: ``"default"`` (the registry's checkpoint of ``model``, downloaded when
    missing), ``"random"`` (seeded random weights) or a path. Memory-encoder sigmoid: the pair chapter 04
    recorded (``04_sigmoid_search/best_sigmoid.json``) when it was tuned on these weights (``"weights":
    null`` there: the registry's), else the config's. A record naming weights that do not exist is a DataError.
    """
    spec = models.get_spec(model)
    run_dir = outputs_dir() / run
    checkpoint, registry = None, False
    records = [(run_dir / EPOCH_PICK, "chapter 03's pick")]
    records += [(train.best_epoch_file(run, stage), f"the best stage-{stage} epoch") for stage in (2, 1)]
    for record, what in records:
        if record.is_file():
            picked = read_json(record)
            checkpoint = str(picked["weights"])
            if not Path(checkpoint).is_file():
                raise DataError(record, f"records weights {checkpoint} that do not exist")
            source = f"{what} of run {run!r} (epoch {picked.get('epoch')}, {record.name})"
            break
    if checkpoint is None:
        if ckpt == models.RANDOM:
            checkpoint, source = models.RANDOM, "ckpt parameter: seeded random weights (numbers show the machinery only)"
        else:
            registry = ckpt == "default"
            checkpoint = str(models.resolve_checkpoint(spec, None if registry else ckpt))
            source = ("the registry's checkpoint" if ckpt == "default" else "the ckpt parameter") + \
                f" (no epoch selection recorded for run {run!r})"
    scale = bias = None
    sigmoid_file = run_dir / SIGMOID_PICK
    if not sigmoid_file.is_file():
        source += "; memory sigmoid: the config's (no sigmoid search recorded)"
    else:
        tuned = read_json(sigmoid_file)
        tuned_on = tuned.get("weights")
        if (registry and tuned_on in (None, "None")) or (tuned_on not in (None, "None") and checkpoint != models.RANDOM
                                                        and resolve(tuned_on).resolve() == Path(checkpoint).resolve()):
            scale, bias = float(tuned["scale"]), float(tuned["bias"])
            source += f"; memory sigmoid scale {scale:g}, bias {bias:g} (chapter 04)"
        else:
            source += f"; memory sigmoid: the config's (chapter 04 tuned other weights, {tuned.get('weights')})"
    return ModelChoice(model, checkpoint, scale, bias, f"{source}: {checkpoint}")


# -------------------------------------------------------------------------------- scoring folders
def score_folder(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, videos: Sequence[str] | None = None,
                 tags: str | os.PathLike | Mapping | None = None) -> dict:
    """:func:`fvos_utils.evaluate.evaluate` of one folder, its result also written to ``<pred_dir>/scores.json``."""
    result = evaluation.evaluate(resolve(gt_dir), resolve(pred_dir), videos=videos, tags=tags, progress=False)
    write_json(resolve(pred_dir) / SCORES_FILE, result)
    return result


def summary(result: dict, *, tag: str | None = None) -> dict:
    """``{"J&F", "J", "F"}`` of an evaluator result, plus ``"J&F <tag>"`` (None if no video has the tag)."""
    row = {key: result["global"][key] for key in ("J&F", "J", "F")}
    if tag is not None:
        row[f"J&F {tag}"] = result.get("per_tag", {}).get(tag, {}).get("J&F")
    return row


def object_deltas(baseline: dict, result: dict) -> pd.DataFrame:
    """Per-object change of J and F from ``baseline`` to ``result`` (two evaluator results).

    Returns a DataFrame indexed by ``(video, object)`` with ``J``, ``F`` (baseline), ``J after``,
    ``F after``, ``dJ``, ``dF``. Both results must score the same objects (else ValueError).
    """
    def table(res):
        return pd.DataFrame([{"video": o["video"], "object": o["object"], "J": o["J"], "F": o["F"]}
                             for o in res["objects"]]).set_index(["video", "object"])

    before, after = table(baseline), table(result)
    if sorted(before.index) != sorted(after.index):
        missing = sorted(set(before.index) ^ set(after.index))[:5]
        raise ValueError(f"the two results score different objects, e.g. {missing}")
    out = before.join(after.add_suffix(" after"))
    out["dJ"] = out["J after"] - out["J"]
    out["dF"] = out["F after"] - out["F"]
    return out


def delta_summary(deltas: pd.DataFrame, *, tolerance: float = 1e-9) -> dict:
    """Mean dJ and dF of :func:`object_deltas`, and how many objects got better / worse in J&F."""
    mean = (deltas["dJ"] + deltas["dF"]) / 2
    return {"mean dJ": float(deltas["dJ"].mean()), "mean dF": float(deltas["dF"].mean()),
            "objects better": int((mean > tolerance).sum()), "objects worse": int((mean < -tolerance).sum()),
            "objects": len(deltas)}


# ------------------------------------------------------------------------------------ gap filling
@dataclass(frozen=True)
class GapFilling:
    """One gap-filling setting: ``method`` and ``shape`` from :mod:`fvos_utils.postprocess`, kernel size k."""

    method: str = "paper"
    shape: str = "square"
    kernel: int = 0

    def __post_init__(self):
        postprocess.structuring_element(self.kernel, self.shape)  # checks shape and size
        if self.method not in postprocess.METHODS:
            raise ValueError(f"unknown gap-filling method {self.method!r}; choose from {', '.join(postprocess.METHODS)}")

    @property
    def name(self) -> str:
        return f"{self.method}-{self.shape}-k{self.kernel}"


def gap_filling_variants(kernel_sizes: Sequence[int] = KERNEL_SIZES, shapes: Sequence[str] = postprocess.SHAPES,
                         methods: Sequence[str] = ("paper",)) -> list[GapFilling]:
    """Every (method, shape, kernel size) combination, in that nesting order; ``expand_labels`` grows by
    a distance, so it takes no shape: it comes with the first shape only."""
    return [GapFilling(m, s, int(k)) for m in methods for s in (shapes[:1] if m == "expand_labels" else shapes)
            for k in kernel_sizes]


def object_masks(stored: np.ndarray) -> np.ndarray:
    """``stored: (N, H, W) uint8`` probabilities (round(255 p)) -> ``(N, H, W) bool`` masks, p > 0.5."""
    stored = np.asarray(stored)
    if stored.dtype != np.uint8 or stored.ndim != 3:
        raise ValueError(f"stored probabilities must be (N, H, W) uint8, got {stored.dtype} {stored.shape}")
    return stored >= FOREGROUND


def _split_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` label map -> ``(N, H, W) bool`` masks and their ``(N,)`` ids (0 excluded)."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    return labels[None] == ids[:, None, None], ids


def _probability_files(folder: Path, videos: Sequence[str] | None) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "probability folder not found")
    names = sorted(p.stem for p in folder.glob(f"*{probs.SUFFIX}") if not p.name.startswith("."))
    if not names:
        raise DataError(folder, f"no probability files here (expected <video>{probs.SUFFIX}; run inference "
                                "with save_probs)")
    if videos is not None:
        missing = sorted(set(videos) - set(names))
        if missing:
            raise DataError(folder / f"{missing[0]}{probs.SUFFIX}", "probability file missing for this video")
        names = list(videos)
    return [probs.probs_path(folder, name) for name in names]


def _object_frames(source: Path, *, from_probs: bool, videos: Sequence[str] | None,
                   progress: bool) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(video, frame, masks (N, H, W) bool, ids (N,))`` for every frame of a run's output."""
    if from_probs:
        for path in tqdm(_probability_files(source, videos), desc="videos", disable=not progress):
            video = probs.load_probs(path)
            for frame, stored in zip(video.frames, video.probs):
                yield path.stem, frame, object_masks(stored), video.object_ids.astype(np.int64)
        return
    listing = postprocess.list_predictions(source)
    for name in tqdm(listing if videos is None else videos, desc="videos", disable=not progress):
        if name not in listing:
            raise DataError(source / name, "prediction folder missing for this video")
        for frame in listing[name]:
            masks, ids = _split_labels(read_mask(source / name / f"{frame}.png"))
            yield name, frame, masks, ids


def fill_variants(source: str | os.PathLike, work_dir: str | os.PathLike, variants: Sequence[GapFilling], *,
                  from_probs: bool, videos: Sequence[str] | None = None, overwrite: bool = False,
                  progress: bool = True) -> dict[GapFilling, Path]:
    """Apply every gap-filling variant to a run's output in one pass over its frames.

    Args:
        source: with ``from_probs``, a folder of ``<video>.npz`` per-object probabilities
            (:mod:`fvos_utils.probs`): each object's mask is p > 0.5, as predicted separately (masks may
            overlap), which is what the paper fills; else a prediction folder of merged label maps
            ``<video>/<frame>.png`` (split into masks by id).
        work_dir: variant v is written to ``work_dir/<v.name>/<video>/<frame>.png``; each folder
            appears only once every variant is complete.
        videos: a subset of the videos (default: all).

    Returns:
        ``{variant: its folder}``.
    """
    source, work_dir = resolve(source), resolve(work_dir)
    if len({v.name for v in variants}) != len(variants):
        raise ValueError("variants must be distinct")
    with contextlib.ExitStack() as stack:
        tmp = {v: stack.enter_context(atomic_dir(work_dir / v.name, overwrite=overwrite)) for v in variants}
        for video, frame, masks, ids in _object_frames(source, from_probs=from_probs, videos=videos,
                                                       progress=progress):
            for variant, folder in tmp.items():
                labels = postprocess.fill_gaps(masks, ids, variant.kernel, shape=variant.shape,
                                               method=variant.method)
                write_mask(folder / video / f"{frame}.png", labels)
    return {v: work_dir / v.name for v in variants}


def gap_filling_table(results: Mapping[GapFilling, dict], *, baseline: GapFilling = GapFilling(),
                      tag: str | None = "touching") -> pd.DataFrame:
    """One row per variant: J&F, J, F (and J&F on videos with ``tag``), the change of J&F from
    ``baseline``, and how many objects got better / worse (:func:`delta_summary`).

    Indexed by ``(method, shape, kernel)``, in the order of ``results``.
    """
    if baseline not in results:
        raise ValueError(f"the baseline {baseline.name} is not among the results")
    rows = []
    for variant, result in results.items():
        row = {"method": variant.method, "shape": variant.shape, "kernel": variant.kernel,
               **summary(result, tag=tag)}
        row["dJ&F"] = row["J&F"] - results[baseline]["global"]["J&F"]
        deltas = delta_summary(object_deltas(results[baseline], result))
        row.update({key: deltas[key] for key in ("mean dJ", "mean dF", "objects better", "objects worse")})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["method", "shape", "kernel"])


# ------------------------------------------------------------------------ where objects really touch
def contact_pixels(gt: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: pixels of an object (not 0, not void) with a 4-neighbour of another object."""
    gt = np.asarray(gt)
    objects = (gt != 0) & (gt != VOID_LABEL)
    out = np.zeros(gt.shape, bool)
    for shift in ((slice(1, None), slice(None)), (slice(None), slice(1, None))):  # the next row, the next column
        back = tuple(slice(None, -1) if s.start else s for s in shift)
        meet = objects[shift] & objects[back] & (gt[shift] != gt[back])
        out[shift] |= meet
        out[back] |= meet
    return out


def contact_gaps(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *,
                 videos: Sequence[str] | None = None) -> dict:
    """On the ground truth's contact pixels (:func:`contact_pixels`), what the prediction says.

    Returns ``{"contact": number of contact pixels over all frames, "background": share of them
    predicted as background (the gaps the paper closes), "correct": share given the right id}``.
    """
    gt_dir, pred_dir = resolve(gt_dir), resolve(pred_dir)
    names = videos if videos is not None else sorted(p.name for p in gt_dir.iterdir() if p.is_dir())
    total = background = correct = 0
    for name in names:
        for gt_path in sorted((gt_dir / name).glob("*.png")):
            gt = read_mask(gt_path)
            pred_path = pred_dir / name / gt_path.name
            pred = read_mask(pred_path)
            if pred.shape != gt.shape:
                raise DataError(pred_path, f"size {pred.shape[1]}x{pred.shape[0]} differs from {gt_path}")
            contact = contact_pixels(gt)
            total += int(contact.sum())
            background += int((pred[contact] == 0).sum())
            correct += int((pred[contact] == gt[contact]).sum())
    return {"contact": total, "background": background / total if total else None,
            "correct": correct / total if total else None}


def bridged_gap_table(kernel_sizes: Sequence[int] = KERNEL_SIZES, shapes: Sequence[str] = postprocess.SHAPES,
                      widths: Sequence[int] = (1, 2, 3, 4), *, side: int = 24) -> pd.DataFrame:
    """Which straight gap a kernel bridges: two ``side`` x ``side`` squares ``w`` px apart, filled by
    :func:`fvos_utils.postprocess.fill_gaps` (the paper's rule), with the gap along x and along y.

    Returns a DataFrame indexed by ``(shape, kernel)`` with one column per width: the share of the gap
    between the squares that was filled (the mean over both orientations).
    """
    margin = side + max(kernel_sizes, default=0)  # dilations never reach the image border
    rows = {}
    for shape in shapes:
        for k in kernel_sizes:
            row = {}
            for w in widths:
                masks = np.zeros((2, side + 2 * margin, 2 * side + w + 2 * margin), bool)
                across = slice(margin, margin + side)
                masks[0, across, margin:margin + side] = True
                masks[1, across, margin + side + w:margin + 2 * side + w] = True
                gap = (across, slice(margin + side, margin + side + w))
                shares = [(postprocess.fill_gaps(m, [1, 2], k, shape=shape)[g] != 0).mean()
                          for m, g in ((masks, gap), (masks.transpose(0, 2, 1), gap[::-1]))]
                row[f"gap {w} px"] = float(np.mean(shares))
            rows[(shape, k)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["shape", "kernel"]
    return table


# ---------------------------------------------------------------------------------- figure crops
def frame_changes(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                  videos: Sequence[str] | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(video, frame): (pixels that differ, pixels)}`` between two prediction folders (the frames of
    ``before_dir``)."""
    before_dir, after_dir = resolve(before_dir), resolve(after_dir)
    listing = postprocess.list_predictions(before_dir)
    out = {}
    for name in (videos if videos is not None else listing):
        for frame in listing[name]:
            before = read_mask(before_dir / name / f"{frame}.png")
            after_path = after_dir / name / f"{frame}.png"
            after = read_mask(after_path)
            if after.shape != before.shape:
                raise DataError(after_path, f"size {after.shape[1]}x{after.shape[0]} differs from {before_dir / name}")
            out[name, frame] = (int((before != after).sum()), before.size)
    return out


def most_changed_frame(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                       videos: Sequence[str] | None = None) -> tuple[str, str, int]:
    """The ``(video, frame, changed pixels)`` where two prediction folders differ most (first on ties)."""
    changes = frame_changes(before_dir, after_dir, videos=videos)
    (video, frame), (changed, _) = max(changes.items(), key=lambda item: item[1][0])
    return video, frame, changed


def changed_share(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                  videos: Sequence[str] | None = None) -> float:
    """The share of all pixels that differ between two prediction folders."""
    changes = frame_changes(before_dir, after_dir, videos=videos).values()
    return sum(c for c, _ in changes) / max(sum(n for _, n in changes), 1)


def zoomed_crops(rgb: np.ndarray, label_maps: Sequence[np.ndarray], crops: Sequence[tuple[slice, slice]], *,
                 zoom: int = 4, alpha: float = 0.55) -> list[list[np.ndarray]]:
    """Rows of image cells for a Figure-2-style panel: one row per crop, one column per label map.

    Args:
        rgb: ``(H, W, 3) uint8`` frame. label_maps: ``(H, W)`` integer maps (before, after each kernel).
        crops: ``(rows, cols)`` slices (e.g. :func:`fvos_utils.postprocess.meeting_crops`).
        zoom: each pixel becomes ``zoom x zoom`` (nearest neighbour), so 1-px gaps stay visible.

    Returns:
        ``[[(h * zoom, w * zoom, 3) uint8, ...], ...]`` (object colours over the frame, outlines drawn).
    """
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    drawn = [overlay(rgb, labels, alpha=alpha) for labels in label_maps]
    return [[np.repeat(np.repeat(image[rows, cols], zoom, axis=0), zoom, axis=1) for image in drawn]
            for rows, cols in crops]


def meeting_crops_figure(rgb: np.ndarray, pred_maps: Sequence[np.ndarray], labels: Sequence[str], *,
                         title: str, truth: np.ndarray | None = None, n_crops: int = 3, size: int = 40,
                         zoom: int = 4):
    """The Figure-2-style panel: crops where gap filling changed where objects meet, one column per map.

    Args:
        rgb: ``(H, W, 3) uint8`` frame. pred_maps: ``(H, W)`` label maps, first without filling, last with the
            largest kernel (the crops are where these two differ). labels: their column titles.
        truth: optional ``(H, W)`` ground truth, shown as the first column.
    Returns:
        ``(figure, [(y, x) corner of each crop])``, or ``(None, [])`` when no gap was filled.
    """
    crops = postprocess.meeting_crops(pred_maps[0], pred_maps[-1], size=size, max_crops=n_crops)
    if not crops:
        return None, []
    maps, labels = list(pred_maps), list(labels)
    if truth is not None:
        maps, labels = [truth, *maps], ["ground truth", *labels]
    fig = frame_grid(zoomed_crops(rgb, maps, crops, zoom=zoom), col_labels=labels, cell_width=1.7,
                     row_labels=[f"y {r.start}, x {c.start}" for r, c in crops])
    fig.suptitle(title, fontsize=9, y=1.02)
    return fig, [(int(r.start), int(c.start)) for r, c in crops]


# --------------------------------------------------------------------------------- the real clip
def predict_clip(predictor, clip_root: str | os.PathLike, out_dir: str | os.PathLike, *, n_frames: int,
                 video: str | None = None, mode: str = infer.DEFAULT_MODE, overwrite: bool = False,
                 progress: bool = True) -> dict:
    """Propagate one clip's first ``n_frames`` frames from its annotations; write labels and probabilities.

    Writes ``out_dir/<video>/<frame>.png`` and ``out_dir/<video>.npz`` (the folder appears complete or
    not at all). ``clip_root`` is a DAVIS-style folder (``JPEGImages/``, ``Annotations/``).

    Returns:
        ``{"video", "frames": [names], "objects": [ids], "seconds"}``.
    """
    dataset = VOSDataset(resolve(clip_root))
    name = video or dataset.video_names()[0]
    clip = dataset.video(name)
    frames = clip.frames[:n_frames]
    prompts = {i: p for i, p in infer.video_prompts(dataset, clip).items() if p[0] < len(frames)}
    result = infer.predict_video(predictor, frames, prompts, mode=mode, with_probs=True, progress=progress,
                                 desc=name)
    names = clip.frame_names[:len(frames)]
    out_dir = resolve(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for frame, labels in zip(names, result.labels):
            write_mask(tmp / name / f"{frame}.png", labels)
        probs.save_probs(probs.probs_path(tmp, name), result.probs, result.object_ids, names)
    return {"video": name, "frames": names, "objects": result.object_ids, "seconds": result.seconds}


def union_folder(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, video: str,
                 frames: Sequence[str] | None = None, overwrite: bool = False) -> Path:
    """One object, the union of all: ``out_dir/<video>/<frame>.png`` = 1 where ``src`` is not 0.

    For scoring multi-object predictions against a binary ground truth such as DAVIS 2016's (0/255
    PNGs, converted the same way). ``frames``: a subset, by name (default: every PNG).
    """
    src = resolve(src_dir) / video
    if not src.is_dir():
        raise DataError(src, "folder not found")
    names = frames if frames is not None else sorted(p.stem for p in src.glob("*.png"))
    with atomic_dir(resolve(out_dir), overwrite=overwrite) as tmp:
        for frame in names:
            write_mask(tmp / video / f"{frame}.png", (read_mask(src / f"{frame}.png") != 0).astype(np.uint8))
    return resolve(out_dir)


def union_scores(folders: Mapping[GapFilling, str | os.PathLike], union_truth: str | os.PathLike,
                 work_dir: str | os.PathLike, *, video: str, frames: Sequence[str]) -> dict[GapFilling, dict]:
    """Score each variant's predictions of one clip as a single object (the union of its objects)
    against a union ground truth such as DAVIS 2016's, on ``frames``.

    Writes ``work_dir/union_gt/`` and ``work_dir/union/<variant>/`` (see :func:`union_folder`); returns
    ``{variant: evaluator result}``.
    """
    work_dir = resolve(work_dir)
    truth = union_folder(union_truth, work_dir / "union_gt", video=video, frames=frames, overwrite=True)
    return {variant: score_folder(truth, union_folder(folder, work_dir / "union" / variant.name, video=video,
                                                      overwrite=True))
            for variant, folder in folders.items()}


# --------------------------------------------------------------------------------------- fusion
@dataclass(frozen=True)
class Pass:
    """One model pass: SAM 2 at ``scale`` x its base image size on frames under ``transform``."""

    scale: float
    transform: str = "identity"

    @property
    def name(self) -> str:
        return f"scale{self.scale:g}-{self.transform}"


def passes_for(scales: Sequence[float], transforms: Sequence[str]) -> list[Pass]:
    """Every (scale, transform) pair, scales outermost; the first pass breaks hard-voting ties."""
    return [Pass(float(s), t) for s in scales for t in transforms]


def run_passes(choice: ModelChoice, data_root: str | os.PathLike, work_dir: str | os.PathLike,
               passes: Sequence[Pass], *, split: str = "valid", videos: Sequence[str] | None = None,
               seed: int = 0, device: str | None = None, resume: bool = False,
               progress: bool = True) -> dict[Pass, dict]:
    """Run every pass (joint propagation, probabilities saved) into ``work_dir/<pass.name>/``.

    One predictor is built per scale. Folders are recomputed each call (timings must be fresh), unless
    ``resume``: then videos already done are kept (a killed run loses only the video in progress).

    Returns:
        ``{pass: run_dataset summary + "folder" + "seconds_per_frame"}`` (propagation time only).
    """
    work_dir = resolve(work_dir)
    out = {}
    for scale in dict.fromkeys(p.scale for p in passes):
        predictor = choice.build(scale=scale, seed=seed, device=device)
        for one in (p for p in passes if p.scale == scale):
            folder = work_dir / one.name
            done = infer.run_dataset(data_root, folder, split=split, videos=videos, model=choice.model,
                                     ckpt=choice.checkpoint, transform=one.transform,
                                     save_probs=True, overwrite=not resume, predictor=predictor,
                                     progress=progress)
            out[one] = {**done, "folder": folder, "seconds_per_frame": done["seconds"] / max(done["frames"], 1)}
    return out


@dataclass(frozen=True)
class FusionVariant:
    """A fused result: scale set x transform set (names), ``fusion`` hard or soft, and gap filling
    ``none``, ``before`` (each pass filled, then hard voting: the paper's order) or ``after`` fusion."""

    scales: str
    transforms: str
    fusion: str = "hard"
    filling: str = "none"

    def __post_init__(self):
        if self.fusion not in ("hard", "soft"):
            raise ValueError(f"fusion must be 'hard' or 'soft', got {self.fusion!r}")
        if self.filling not in ("none", "before", "after"):
            raise ValueError(f"filling must be 'none', 'before' or 'after', got {self.filling!r}")
        if self.fusion == "soft" and self.filling == "before":
            raise ValueError("soft voting fuses probabilities: gap filling can only come after it")

    @property
    def name(self) -> str:
        return f"{self.scales}-{self.transforms}-{self.fusion}-fill_{self.filling}"


def available_sets(sets: Mapping[str, Sequence], have: Sequence) -> dict[str, tuple]:
    """The named sets (e.g. :data:`fvos_utils.fusion.SCALE_SETS`) made only of values in ``have``."""
    return {name: tuple(values) for name, values in sets.items() if set(values) <= set(have)}


def fusion_variants(scale_sets: Sequence[str], transform_sets: Sequence[str], *,
                    fillings_for: Sequence[str] = ()) -> list[FusionVariant]:
    """Hard and soft voting without filling for every scale set x transform set, and, for the
    transform sets in ``fillings_for``, hard voting with filling before and after, soft with after."""
    out = []
    for t in transform_sets:
        for s in scale_sets:
            out += [FusionVariant(s, t, "hard"), FusionVariant(s, t, "soft")]
            if t in fillings_for:
                out += [FusionVariant(s, t, "hard", "before"), FusionVariant(s, t, "hard", "after"),
                        FusionVariant(s, t, "soft", "after")]
    return out


def fusion_ablation(pass_dirs: Mapping[Pass, str | os.PathLike], gt_dir: str | os.PathLike,
                    work_dir: str | os.PathLike, variants: Sequence[FusionVariant], *,
                    scale_sets: Mapping[str, Sequence[float]] = fusion.SCALE_SETS,
                    transform_sets: Mapping[str, Sequence[str]] = fusion.TRANSFORM_SETS,
                    filling: GapFilling = GapFilling("paper", "square", 3), videos: Sequence[str] | None = None,
                    tags: str | os.PathLike | Mapping | None = None, progress: bool = True) -> dict[FusionVariant, dict]:
    """Fuse, fill and score every variant; returns ``{variant: evaluator result}``.

    Args:
        pass_dirs: each available pass -> its folder (labels ``<video>/<frame>.png`` and probabilities
            ``<video>.npz``, as :func:`run_passes` writes; every folder holds the same videos). A variant
            fuses the passes of its scale set x transform set in ``pass_dirs`` order, so the first one
            (normally scale 1 without transform) breaks hard-voting ties.
        filling: the gap filling of ``before`` / ``after`` variants. ``before`` fills each pass's
            per-object masks (from its probabilities), as the paper fills single-model results;
            ``after`` fills the fused label maps.
        videos: the videos scored (default: every video of ``gt_dir``).

    Folders: ``work_dir/<variant.name>/`` (each with its ``scores.json``), the passes filled once under
    ``work_dir/filled/<pass.name>/``.
    """
    work_dir = resolve(work_dir)
    pass_dirs = {p: resolve(d) for p, d in pass_dirs.items()}
    filled: dict[Pass, Path] = {}
    fused: set[FusionVariant] = set()
    results = {}
    for variant in tqdm(variants, desc="fusion variants", disable=not progress):
        members = _members(variant, pass_dirs, scale_sets, transform_sets)
        out = work_dir / variant.name
        if variant.filling == "after":
            plain = replace(variant, filling="none")
            if plain not in fused:
                _fuse([pass_dirs[p] for p in members], work_dir / plain.name, plain.fusion)
                fused.add(plain)
            postprocess.fill_gaps_folder(work_dir / plain.name, out, filling.kernel, shape=filling.shape,
                                         method=filling.method, overwrite=True)
        else:
            if variant.filling == "before":
                for p in members:
                    if p not in filled:
                        filled[p] = fill_variants(pass_dirs[p], work_dir / "filled" / p.name, [filling],
                                                  from_probs=True, overwrite=True, progress=False)[filling]
            _fuse([(filled if variant.filling == "before" else pass_dirs)[p] for p in members], out, variant.fusion)
            fused.add(variant)
        results[variant] = score_folder(gt_dir, out, videos=videos, tags=tags)
    return results


def fvos_submission(choice: ModelChoice, server_root: str | os.PathLike, work_dir: str | os.PathLike,
                    zip_path: str | os.PathLike, *, split: str = "valid", scales: Sequence[float] = fusion.FVOS_SCALES,
                    filling: GapFilling = GapFilling("paper", "square", 2), seed: int = 0,
                    device: str | None = None, progress: bool = True) -> Path:
    """The FVOS inference recipe on a split with hidden ground truth (MOSE valid or test), zipped for
    the server: ``choice`` (chosen weights and sigmoid) at every scale, each pass's per-object masks gap
    filled (the paper's order), hard voting, then :func:`fvos_utils.selection.write_submission`'s check.

    Passes go to ``work_dir/passes/<pass>/`` and resume after an interruption; the filled passes and
    the fused masks (``work_dir/fused/``) are rebuilt from them. Returns ``zip_path``.
    """
    work_dir = resolve(work_dir)
    passes = passes_for(scales, ["identity"])
    runs = run_passes(choice, server_root, work_dir / "passes", passes, split=split, seed=seed, device=device,
                      resume=True, progress=progress)
    filled = [fill_variants(runs[p]["folder"], work_dir / "filled" / p.name, [filling], from_probs=True,
                            overwrite=True, progress=False)[filling] for p in passes]
    _fuse(filled, work_dir / "fused", "hard")
    return selection.write_submission(work_dir / "fused", server_root, zip_path, split=split)


def _members(variant: FusionVariant, pass_dirs: Mapping[Pass, Path], scale_sets: Mapping[str, Sequence[float]],
             transform_sets: Mapping[str, Sequence[str]]) -> list[Pass]:
    """The passes a variant fuses, in ``pass_dirs`` order; ValueError when one is missing."""
    scales, transforms = scale_sets[variant.scales], transform_sets[variant.transforms]
    members = [p for p in pass_dirs if p.scale in scales and p.transform in transforms]
    missing = sorted({(float(s), t) for s in scales for t in transforms} - {(p.scale, p.transform) for p in members})
    if missing:
        raise ValueError(f"{variant.name}: no pass for (scale, transform) {missing}")
    return members


def _fuse(sources: Sequence[Path], out: Path, method: str) -> None:
    if method == "hard":
        fusion.vote_folders(sources, out, overwrite=True)
    else:
        fusion.soft_vote_folders(sources, out, overwrite=True)


def fusion_table(results: Mapping[FusionVariant, dict], *, scale_sets: Mapping[str, Sequence[float]] = fusion.SCALE_SETS,
                 transform_sets: Mapping[str, Sequence[str]] = fusion.TRANSFORM_SETS,
                 singles: Mapping[Pass, dict] | None = None, tag: str | None = "touching") -> pd.DataFrame:
    """One row per single pass (``singles``: ``{pass: evaluator result}``) and per fused variant:
    scales, transforms, fusion (``single`` / ``hard`` / ``soft``), gap filling, model passes, J&F, J, F
    (and J&F on the videos with ``tag``). Indexed by the first four columns."""
    rows = [{"scales": f"{one.scale:g}", "transforms": one.transform, "fusion": "single", "filling": "none",
             "passes": 1, **summary(result, tag=tag)} for one, result in (singles or {}).items()]
    rows += [{"scales": v.scales, "transforms": v.transforms, "fusion": v.fusion, "filling": v.filling,
              "passes": len(scale_sets[v.scales]) * len(transform_sets[v.transforms]), **summary(result, tag=tag)}
             for v, result in results.items()]
    return pd.DataFrame(rows).set_index(["scales", "transforms", "fusion", "filling"])


def seconds_per_scale(pass_runs: Mapping[Pass, dict]) -> dict[float, float]:
    """Measured model seconds per frame at each scale: the mean over that scale's passes (a flip or a
    quarter turn keeps the pixel count and SAM 2 resizes to a square, so transforms cost the same)."""
    by_scale: dict[float, list[float]] = {}
    for one, run in pass_runs.items():
        by_scale.setdefault(one.scale, []).append(run["seconds_per_frame"])
    return {scale: float(np.mean(values)) for scale, values in by_scale.items()}


def cost_table(results: Mapping[FusionVariant, dict], pass_runs: Mapping[Pass, dict], *,
               scale_sets: Mapping[str, Sequence[float]], transform_sets: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """:func:`fvos_utils.fusion.cost_report` with the measured seconds of ``pass_runs``
    (:func:`run_passes`), and the J&F of hard and soft voting without gap filling where scored."""
    report = fusion.cost_report(scale_sets, transform_sets, seconds_per_pass=seconds_per_scale(pass_runs))
    scores = {(v.scales, v.transforms, v.fusion): r["global"]["J&F"] for v, r in results.items() if v.filling == "none"}
    for row in report:
        for method in ("hard", "soft"):
            row[f"J&F {method}"] = scores.get((row["scales"], row["transforms"], method))
    return pd.DataFrame(report).set_index(["scales", "transforms"])

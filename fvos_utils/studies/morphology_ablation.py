"""Chapter 05's study: the gap-filling kernel-size ablation (FVOS section 2.2).

The method itself (the paper's rule, its alternatives, :class:`fvos_utils.method.postprocess.GapFilling` and
:func:`fvos_utils.method.postprocess.fill_variants`) lives in :mod:`fvos_utils.method.postprocess`; this module decides
what the chapter fills, scores and draws:

- :func:`gap_filling_table`: every setting scored against no filling (J&F, objects better / worse);
  :func:`kernel_figure`: it drawn against the kernel size; :func:`kernel_pick`: the chapter's choice for
  the recipe (:class:`fvos_utils.method.choices.KernelPick`).
- :func:`contact_gaps`: how much of the true contact line between touching objects is predicted as
  background (what the paper set out to fix); :func:`bridged_gap_table`: which straight gap a kernel can
  bridge at all.
- Figure-2-style crops (:func:`meeting_crops_figure`) and the real two-object clip scored as the union
  of its objects (:func:`predict_clip`, :func:`union_scores`, :func:`union_table`).
"""
from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from fvos_utils.base.io import (VOID_LABEL, DataError, VOSDataset, atomic_dir, davis_palette, read_frame, read_mask,
                                write_mask)
from fvos_utils.base.paths import resolve
from fvos_utils.method import infer, postprocess, probs
from fvos_utils.method.choices import KernelPick, gain_fields
from fvos_utils.method.postprocess import NO_FILLING, PAPER_FILLING, GapFilling
from fvos_utils.metrics.evaluate import paired_difference
from fvos_utils.metrics.percent import percent
from fvos_utils.metrics.scoring import delta_summary, object_deltas, score_folder, summary
from fvos_utils.run.figures import PRINT_WIDTH, frame_grid, overlay
from fvos_utils.studies import claims

#: kernel sizes k of the ablation (the paper shows several in its Figure 2 and reports k = 2 best)
KERNEL_SIZES = (0, 1, 2, 3, 5, 7, 9)


#: the shape column of ``expand_labels`` rows: it grows by a distance, with no kernel shape
NO_SHAPE = "-"


def gap_filling_table(results: Mapping[GapFilling, dict], *, baseline: GapFilling = GapFilling(),
                      tag: str | None = "touching") -> pd.DataFrame:
    """One row per variant: J&F, J, F (and J&F on videos with ``tag``), the change of J&F from
    ``baseline`` with its video-bootstrap 95% interval (``dJ&F``, ``CI low``, ``CI high``:
    :func:`fvos_utils.metrics.evaluate.paired_difference`), and how many objects got better / worse
    (:func:`delta_summary`).

    Indexed by ``(method, shape, kernel)``, in the order of ``results`` (``expand_labels`` rows have the
    shape :data:`NO_SHAPE`).
    """
    if baseline not in results:
        raise ValueError(f"the baseline {baseline.name} is not among the results")
    rows = []
    for variant, result in results.items():
        row = {"method": variant.method, "shape": NO_SHAPE if variant.method == "expand_labels" else variant.shape,
               "kernel": variant.kernel,
               **summary(result, tag=tag)}
        row.update(paired_difference(results[baseline], result).row())
        deltas = delta_summary(object_deltas(results[baseline], result))
        row.update({key: deltas[key] for key in ("mean dJ", "mean dF", "objects better", "objects worse")})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["method", "shape", "kernel"])


#: how far apart along x :func:`kernel_figure` draws its series (kernel sizes are integers, so a small
#: offset cannot be mistaken for another k)
SERIES_SPREAD = 0.4


def kernel_figure(table: pd.DataFrame, results: Mapping[GapFilling, dict], baseline: GapFilling,
                  kernel_sizes: Sequence[int]):
    """Chapter 05's kernel figure, a page wide: the change of J&F from no filling (in points, with its 95%
    interval) and the contact left as gap (%) against the kernel size, and below them the per-object changes
    of the paper's rule with square kernels. Shown in chapter 05.

    Many settings score the same (every k <= 1 adds nothing; ``paper`` and ``background`` fill the same
    gaps), so each (method, shape) series has its own colour (method), line style (shape) and hollow
    marker, and is shifted along x (by up to half of :data:`SERIES_SPREAD` either way, as the legend says) so
    that equal values stay visible side by side.

    Args:
        table: :func:`gap_filling_table` indexed by ``(method, shape, kernel)``, with the columns ``J&F``
            and ``contact as gap`` (chapter 05 adds the share of :func:`contact_gaps`).
        results: ``{setting: evaluator result}`` (the per-object changes are taken from them).
        baseline: the setting the changes are measured from (no filling).
        kernel_sizes: the x ticks.
    Returns:
        the matplotlib figure (three panels, the legend of the settings at its foot).
    """
    import matplotlib.pyplot as plt

    if list(table.index.names) != ["method", "shape", "kernel"]:
        raise ValueError(f"table must be indexed by (method, shape, kernel), got {list(table.index.names)}")
    missing = [c for c in ("J&F", "contact as gap") if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column {missing} (columns: {list(table.columns)})")
    if baseline not in results:
        raise ValueError(f"the baseline {baseline.name} is not among the results")
    # a page's width (7 in) in two rows: the two kernel panels above, the per-object changes below
    fig = plt.figure(figsize=(7.0, 7.2))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 0.8))
    by_change, by_contact = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    per_object = fig.add_subplot(grid[1, :])
    series = list(table.groupby(level=["method", "shape"], sort=False))
    shifts = np.linspace(-SERIES_SPREAD / 2, SERIES_SPREAD / 2, len(series)) if len(series) > 1 else [0.0]
    method_colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(m for (m, _), _ in series))}
    markers = "osD^vph*"
    none = table.loc[(baseline.method, baseline.shape, baseline.kernel)]
    for i, ((method, shape), rows) in enumerate(series):
        style = dict(color=method_colours[method], marker=markers[i % len(markers)], markerfacecolor="none",
                     markersize=5, linewidth=1.2, linestyle="--" if shape == "circle" else "-",
                     label=method if method == "expand_labels" else f"{method}, {shape}")
        x = rows.index.get_level_values("kernel") + shifts[i]
        paired = {"dJ&F", "CI low", "CI high"} <= set(rows.columns)
        # in points: the paired change of the same objects, with its interval around it
        change = 100 * (rows["dJ&F"] if paired else rows["J&F"] - none["J&F"])
        by_change.plot(x, change, **style)
        if paired:
            by_change.errorbar(x, change, yerr=[change - 100 * rows["CI low"], 100 * rows["CI high"] - change],
                               fmt="none", ecolor=style["color"], elinewidth=0.8, capsize=2, alpha=0.7)
        by_contact.plot(x, 100 * rows["contact as gap"], **style)
    by_change.axhline(0, color="0.3", linestyle=":", linewidth=1, label="no filling")
    by_contact.axhline(100 * none["contact as gap"], color="0.3", linestyle=":", linewidth=1, label="no filling")
    by_change.set_ylabel("dJ&F against no filling (points)")
    by_contact.set_ylabel("contact pixels left as background (%)")
    for ax, title in ((by_change, "J&F change, 95% CI"), (by_contact, "true contact line left as a gap")):
        ax.set_xlabel("kernel size k (px)")
        ax.set_xticks(kernel_sizes)
        ax.set_title(title, fontsize=9)

    paper_square = [v for v in results if v.method == "paper" and v.shape == "square" and v.kernel > 1]
    per_object.axhline(0, color="0.6", linewidth=0.8)
    for x, variant in enumerate(paper_square):
        deltas = object_deltas(results[baseline], results[variant])
        spread = np.linspace(0.03, 0.2, len(deltas))  # dJ left of the tick, dF right of it: never on top
        per_object.scatter(x - spread, 100 * deltas["dJ"], s=10, color="C0", label="dJ" if x == 0 else None)
        per_object.scatter(x + spread, 100 * deltas["dF"], s=12, color="C3", marker="x", label="dF" if x == 0 else None)
    per_object.set_xticks(range(len(paper_square)), [f"k {v.kernel}" for v in paper_square])
    per_object.set_ylabel("change per object (points)")
    per_object.set_title("paper rule, square kernel: each object's change from no filling", fontsize=9)
    per_object.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    handles, labels = by_change.get_legend_handles_labels()
    fig.legend(handles, labels, ncol=min(len(series) + 1, 3), frameon=False, loc="lower center",
               title=f"setting (series shifted along k by up to ±{SERIES_SPREAD / 2:g} px so that equal values "
                     "stay visible)")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


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


def _read_same_size(path: Path, reference: np.ndarray, reference_name: str | os.PathLike) -> np.ndarray:
    """The label map at ``path``, refused (a DataError naming ``path``) unless it has ``reference``'s size;
    ``reference_name``: where ``reference`` came from, for the message."""
    labels = read_mask(path)
    if labels.shape != reference.shape:
        raise DataError(path, f"size {labels.shape[1]}x{labels.shape[0]} differs from {reference_name}")
    return labels


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
            pred = _read_same_size(pred_dir / name / gt_path.name, gt, gt_path)
            contact = contact_pixels(gt)
            total += int(contact.sum())
            background += int((pred[contact] == 0).sum())
            correct += int((pred[contact] == gt[contact]).sum())
    return {"contact": total, "background": background / total if total else None,
            "correct": correct / total if total else None}


#: the colours of :func:`anchor_figure`: background, object 1, object 2, their dilations, and where those overlap
ANCHOR_COLOURS = np.array([[255, 255, 255], [200, 60, 60], [60, 150, 60], [240, 190, 190], [190, 230, 190],
                           [250, 200, 60]], np.uint8)


def anchor_figure(kernel_sizes: Sequence[int] = (2, 3)):
    """Why a 2 x 2 kernel barely fills gaps: one row of two objects with a 1-px gap (column 5 of 11), then for
    each kernel (square, OpenCV's default anchor) both dilations and where they overlap, titled with whether
    the paper's rule (:func:`fvos_utils.method.postprocess.fill_gaps`) filled the gap column. Shown in chapter 05.

    Returns:
        the matplotlib figure (panels: the masks, then one per kernel).
    """
    import cv2
    import matplotlib.pyplot as plt

    row = np.zeros((2, 5, 11), bool)
    row[0, :, 1:5], row[1, :, 6:10] = True, True  # object 1 | gap at column 5 | object 2
    fig, axes = plt.subplots(1, len(kernel_sizes) + 1, figsize=(PRINT_WIDTH, 2.3))
    for ax, k in zip(axes, (None, *kernel_sizes)):
        picture = np.zeros(row.shape[1:], int)
        if k is not None:
            kernel = postprocess.structuring_element(k, "square")
            first, second = (cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in row)
            picture[first], picture[second], picture[first & second] = 3, 4, 5
        picture[row[0]], picture[row[1]] = 1, 2
        ax.imshow(ANCHOR_COLOURS[picture])
        ax.set_xticks(np.arange(-0.5, 11, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, 5, 1), minor=True)
        ax.grid(which="minor", color="0.8", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        for spine in ax.spines.values():  # the grid draws the cells' edges
            spine.set_visible(False)
        filled = postprocess.fill_gaps(row, [1, 2], k or 0)[:, 5]
        ax.set_title("masks, 1-px gap" if k is None else
                     f"k = {k}: dilations light,\noverlap yellow;\ngap column filled: {bool(filled.all())}")
    return fig


def bridged_gap_table(kernel_sizes: Sequence[int] = KERNEL_SIZES, shapes: Sequence[str] = postprocess.SHAPES,
                      widths: Sequence[int] = (1, 2, 3, 4), *, side: int = 24) -> pd.DataFrame:
    """Which straight gap a kernel bridges: two ``side`` x ``side`` squares ``w`` px apart, filled by
    :func:`fvos_utils.method.postprocess.fill_gaps` (the paper's rule), with the gap along x and along y.

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
def _paired_maps(before_dir: Path, after_dir: Path, videos: Sequence[str] | None):
    """``(video, frame, before, after)`` for every frame of ``before_dir`` (of ``videos``, default all), the
    label maps of both folders; a map of another size than ``before``'s is a DataError naming its file."""
    listing = postprocess.list_predictions(before_dir)
    for name in (videos if videos is not None else listing):
        for frame in listing[name]:
            before = read_mask(before_dir / name / f"{frame}.png")
            yield name, frame, before, _read_same_size(after_dir / name / f"{frame}.png", before, before_dir / name)


def frame_changes(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                  videos: Sequence[str] | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(video, frame): (pixels that differ, pixels)}`` between two prediction folders (the frames of
    ``before_dir``)."""
    return {(name, frame): (int((before != after).sum()), before.size)
            for name, frame, before, after in _paired_maps(resolve(before_dir), resolve(after_dir), videos)}


def most_changed_frame(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                       videos: Sequence[str] | None = None) -> tuple[str, str, int]:
    """The ``(video, frame, changed pixels)`` where two prediction folders differ most (first on ties)."""
    changes = frame_changes(before_dir, after_dir, videos=videos)
    (video, frame), (changed, _) = max(changes.items(), key=lambda item: item[1][0])
    return video, frame, changed


def meeting_frame(before_dir: str | os.PathLike, after_dir: str | os.PathLike, *,
                  truth_dir: str | os.PathLike | None = None, union: bool = False,
                  videos: Sequence[str] | None = None) -> tuple[str, str, int] | None:
    """The frame where gap filling changed the most pixels where adjacent objects meet
    (:func:`fvos_utils.method.postprocess.meeting_pixels`), the frame a Figure-2-style panel shows.

    Args:
        before_dir, after_dir: prediction folders ``<dir>/<video>/<frame>.png`` (without, with filling).
        truth_dir: ground truth ``<dir>/<video>/<frame>.png`` on which the objects are judged (frames without
            one are passed over); ``union``: it annotates the objects' union (see ``meeting_pixels``).
    Returns:
        ``(video, frame, pixels)``, the first of the best on ties; None when filling changed no pixel where
        objects meet.
    """
    truth_dir = resolve(truth_dir) if truth_dir is not None else None
    best = None
    for name, frame, before, after in _paired_maps(resolve(before_dir), resolve(after_dir), videos):
        truth = None
        if truth_dir is not None:
            truth_path = truth_dir / name / f"{frame}.png"
            if not truth_path.is_file():
                continue
            truth = _read_same_size(truth_path, before, resolve(before_dir) / name)
        count = int(postprocess.meeting_pixels(before, after, truth=truth, union=union).sum())
        if count and (best is None or count > best[2]):
            best = (name, frame, count)
    return best


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
        crops: ``(rows, cols)`` slices (e.g. :func:`fvos_utils.method.postprocess.meeting_crops`).
        zoom: each pixel becomes ``zoom x zoom`` (nearest neighbour), so 1-px gaps stay visible.

    Returns:
        ``[[(h * zoom, w * zoom, 3) uint8, ...], ...]`` (object colours over the frame, outlines drawn).
    """
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    drawn = [overlay(rgb, labels, alpha=alpha) for labels in label_maps]
    return [[_zoomed(image[rows, cols], zoom) for image in drawn] for rows, cols in crops]


def _zoomed(image: np.ndarray, zoom: int) -> np.ndarray:
    """Each pixel of ``image`` as a ``zoom x zoom`` block (nearest neighbour)."""
    return np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)


#: the colour of the dot that marks, in the filled columns of :func:`meeting_crops_figure`, a pixel the filling
#: changed (dark, and a ninth of the pixel, so that the object colour around it stays readable)
CHANGED_DOT = (20, 20, 20)


def mark_changed(cell: np.ndarray, changed: np.ndarray, labels: np.ndarray, zoom: int) -> np.ndarray:
    """A zoomed crop (``(h * zoom, w * zoom, 3) uint8``) where every pixel the filling changed (``changed``:
    ``(h, w) bool``) shows its new object's colour (``labels``: ``(h, w)``, DAVIS palette) at full opacity
    with a dot of :data:`CHANGED_DOT` in its middle."""
    out = cell.copy()
    zoomed = _zoomed(changed, zoom)
    out[zoomed] = _zoomed(davis_palette()[labels], zoom)[zoomed]
    side = max(1, zoom // 3)
    dot = np.zeros((zoom, zoom), np.uint8)
    dot[(zoom - side) // 2:(zoom - side) // 2 + side, (zoom - side) // 2:(zoom - side) // 2 + side] = 1
    out[np.kron(changed, dot).astype(bool)] = CHANGED_DOT
    return out


def meeting_crops_figure(rgb: np.ndarray, pred_maps: Sequence[np.ndarray], labels: Sequence[str], *,
                         title: str, truth: np.ndarray | None = None, union: bool = False,
                         truth_label: str = "ground truth", n_crops: int = 3, size: int = 40, zoom: int = 6):
    """The Figure-2-style panel: crops where gap filling changed the maps where adjacent objects meet, one
    column per map, each pixel a filling changed drawn in its new object's colour with a dark dot, and a
    key of the object colours.

    Args:
        rgb: ``(H, W, 3) uint8`` frame. pred_maps: ``(H, W)`` label maps, first without filling, last with the
            largest kernel (the crops are where these two differ). labels: their column titles.
        truth: optional ``(H, W)`` ground truth, shown as the first column, titled ``truth_label``; the crops
            are chosen where it has two objects within reach (:func:`fvos_utils.method.postprocess.meeting_pixels`).
            ``union``: it annotates the objects' union (DAVIS 2016's 255 on every frame after the first of
            the real clip); it is drawn in the void colour, keyed as ``truth_label``, and the crops are chosen
            inside it, where two predicted objects meet.
    Returns:
        ``(figure, [(y, x) corner of each crop])``, or ``(None, [])`` when no gap was filled.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    crops = postprocess.meeting_crops(pred_maps[0], pred_maps[-1], truth=truth, union=union, size=size,
                                      max_crops=n_crops)
    if not crops:
        return None, []
    rows = zoomed_crops(rgb, pred_maps, crops, zoom=zoom)
    for row, (r, c) in zip(rows, crops):
        for k in range(1, len(pred_maps)):
            row[k] = mark_changed(row[k], pred_maps[k][r, c] != pred_maps[0][r, c], pred_maps[k][r, c], zoom)
    labels = list(labels)
    if truth is not None:
        # a union annotation does not tell the objects apart: drawn in the void colour, as one region
        if union:
            drawn = overlay(rgb, np.where(truth != 0, VOID_LABEL, 0), alpha=0.55, objects=[VOID_LABEL])
        else:
            drawn = overlay(rgb, truth, alpha=0.55)
        rows = [[_zoomed(drawn[r, c], zoom), *row] for row, (r, c) in zip(rows, crops)]
        labels = [truth_label, *labels]
    cell = (PRINT_WIDTH - 0.4) / len(labels)  # the row labels take the rest
    titles = [textwrap.fill(label, width=max(6, int(cell * 72 / 5.5))) for label in labels]
    fig = frame_grid(rows, col_labels=titles, cell_width=cell, row_labels=[f"crop {i + 1}" for i in range(len(crops))])
    renderer = fig.canvas.get_renderer()
    top = max(ax.title.get_window_extent(renderer).y1 for ax in fig.axes) / fig.bbox.height
    fig.text(0.5, top + 0.01, title, ha="center", va="bottom", fontsize="large")
    shown = sorted({int(v) for m in pred_maps for r, c in crops for v in np.unique(m[r, c]) if v != 0})
    if truth is not None and not union:
        shown = sorted(set(shown) | {int(v) for r, c in crops for v in np.unique(truth[r, c]) if v not in (0, VOID_LABEL)})
    palette = davis_palette()
    key = [Patch(color=palette[v] / 255, label=f"object {v}") for v in shown]
    if truth is not None and union:
        key.append(Patch(color=palette[VOID_LABEL] / 255, label=truth_label))
    changed = (Patch(color="0.75"), Line2D([], [], marker="s", markersize=2.5, linestyle="none",
                                          color=np.array(CHANGED_DOT) / 255))
    fig.legend(handles=[*key, changed], labels=[h.get_label() for h in key] + ["pixel changed by the filling"],
               loc="upper center", ncol=min(len(key) + 1, 4), frameon=False, bbox_to_anchor=(0.5, 0.0))
    return fig, [(int(r.start), int(c.start)) for r, c in crops]


@dataclasses.dataclass
class CropPanel:
    """A Figure-2-style panel drawn for a run (:func:`meeting_crops_panel`).

    ``figure``: the matplotlib figure; ``caption``: what it shows, in words from the run; ``video``,
    ``frame``: where it was drawn; ``meeting_pixels``: the pixels the largest kernel changed there where
    objects meet; ``corners``: the ``(y, x)`` corner of each crop."""
    figure: object
    caption: str
    video: str
    frame: str
    meeting_pixels: int
    corners: list[tuple[int, int]]

    def record(self) -> dict:
        """The panel's facts for ``metrics.json``."""
        return {"video": self.video, "frame": self.frame, "meeting_pixels": self.meeting_pixels,
                "corners": [list(c) for c in self.corners]}


def meeting_crops_panel(image_dir: str | os.PathLike, folders: Mapping[GapFilling, str | os.PathLike],
                        truth_dir: str | os.PathLike, *, union: bool = False, videos: Sequence[str] | None = None,
                        n_crops: int = 3, size: int = 40) -> CropPanel | None:
    """The Figure-2-style panel of a run: the frame where the largest kernel changed the most pixels where
    adjacent objects meet (:func:`meeting_frame`), its crops drawn by :func:`meeting_crops_figure`.

    Args:
        image_dir: frames ``<dir>/<video>/<frame>.jpg``. folders: the prediction folder of each variant
            shown, in column order, the first without filling (titled "no filling"), the others "k <size>".
        truth_dir: the ground truth, ``<dir>/<video>/<frame>.png``; ``union``: it annotates the objects'
            union (the real clip after frame 0), so the crops lie inside it where two predicted objects meet.
        n_crops, size: at most this many crops, each ``size`` pixels square.
    Returns:
        The panel, or None when no kernel changed a pixel where objects meet.
    """
    variants = list(folders)
    found = meeting_frame(folders[variants[0]], folders[variants[-1]], truth_dir=truth_dir, union=union,
                          videos=videos)
    if found is None:
        return None
    video, frame, meeting = found
    truth = read_mask(resolve(truth_dir) / video / f"{frame}.png")
    maps = [read_mask(resolve(folders[v]) / video / f"{frame}.png") for v in variants]
    labels = ["no filling"] + [f"k {v.kernel}" for v in variants[1:]]
    truth_label = "ground truth (union)" if union else "ground truth"
    fig, corners = meeting_crops_figure(read_frame(resolve(image_dir) / video / f"{frame}.jpg"), maps, labels,
                                        title=f"{video}, frame {frame}", truth=truth, union=union,
                                        truth_label=truth_label, n_crops=n_crops, size=size)
    largest = variants[-1]
    where = ("inside the annotated union of the objects, next to two predicted objects (after the first frame "
             "the annotation is the union only, so it cannot say which object a pixel belongs to)" if union
             else "next to two ground-truth objects")
    crops = "the crop" if len(corners) == 1 else f"the {len(corners)} crops"
    caption = (f"{video}, frame {frame}, the frame where the largest kernel ({largest.shape} k {largest.kernel}, "
               f"{largest.method} rule) changed the most pixels {where}: {meeting} such pixels. Shown are {crops} "
               f"holding the most of them, {size} px square and enlarged: the {truth_label}, the prediction without "
               f"filling, then after each kernel; a pixel a kernel changed is drawn in its new object's colour "
               f"with a dark dot.")
    return CropPanel(fig, caption, video, frame, meeting, corners)


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


def union_table(results: Mapping[GapFilling, dict], *, baseline: GapFilling = GapFilling()) -> pd.DataFrame:
    """:func:`union_scores`' results as a table indexed by ``(shape, kernel)``: J&F, J, F and the change
    of J&F from ``baseline`` with its 95% interval (``dJ&F``, ``CI low``, ``CI high``)."""
    if baseline not in results:
        raise ValueError(f"the baseline {baseline.name} is not among the results")
    table = pd.DataFrame([{"shape": v.shape, "kernel": v.kernel, **summary(r),
                           **paired_difference(results[baseline], r).row()} for v, r in results.items()])
    return table.set_index(["shape", "kernel"])


def kernel_pick(results: Mapping[GapFilling, dict]) -> KernelPick:
    """Chapter 05's choice for the recipe: the best of no filling and every setting of the paper's rule (on
    valid); no filling wins a tie (a kernel must beat doing nothing), then the first in ``results``' order
    (the smaller kernel). The record also holds the pick's change from no filling (95% interval) and
    claim 5's baseline, the best candidate other than the paper's kernel (:func:`kernel_rival`).
    Shown in chapter 05."""
    candidates = _candidates(results)
    best = max(candidates, key=lambda v: (results[v]["global"]["J&F"], -candidates.index(v)))
    gain = paired_difference(results[candidates[0]], results[best]) if best.fills else None
    rival = kernel_rival(results)
    return KernelPick(best.method, best.shape, best.kernel, float(results[best]["global"]["J&F"]),
                      *gain_fields(gain),
                      rival=rival.name if rival else "")


def _candidates(results: Mapping[GapFilling, dict]) -> list[GapFilling]:
    """No filling, then every filling setting of the paper's rule, in ``results``' order."""
    paper = [v for v in results if v.method == "paper"]
    nothing = [v for v in paper if not v.fills]
    if not nothing:
        raise ValueError("no filling (the paper's rule with k 0) must be among the results")
    return nothing[:1] + [v for v in paper if v.fills]


def kernel_rival(results: Mapping[GapFilling, dict]) -> GapFilling | None:
    """Claim 5's baseline: the best candidate of :func:`kernel_pick` other than :data:`PAPER_FILLING`, no filling
    included (on a tie no filling, then the smaller kernel); None where there is no other."""
    others = [v for v in _candidates(results) if v != PAPER_FILLING]
    return max(others, key=lambda v: (results[v]["global"]["J&F"], -others.index(v))) if others else None


def least_harmful_words(results: Mapping[GapFilling, dict]) -> str:
    """Claim 5's note where no filling beats the paper's kernel (so no kernel is the best setting): whether
    kernel 2 is at least the least harmful filling, against the best other kernel; "" where some kernel
    beats no filling."""
    rival = kernel_rival(results)
    if rival is None or rival.fills or PAPER_FILLING not in results:
        return ""
    kernels = [v for v in _candidates(results) if v.fills and v != PAPER_FILLING]
    if not kernels:
        return ""
    runner = max(kernels, key=lambda v: (results[v]["global"]["J&F"], -kernels.index(v)))
    change = paired_difference(results[runner], results[PAPER_FILLING]).describe()
    if results[PAPER_FILLING]["global"]["J&F"] > results[runner]["global"]["J&F"]:
        return (f"No filling scores above every kernel here: kernel {PAPER_FILLING.kernel} is the least harmful filling, not the best "
                f"(against the best other kernel, {runner.words}: {change}).")
    return (f"No filling scores above every kernel here, and {PAPER_FILLING.words} is not the least harmful filling "
            f"either: {runner.words} scores {percent(results[runner]['global']['J&F'])} against "
            f"{percent(results[PAPER_FILLING]['global']['J&F'])} ({PAPER_FILLING.words} against it: {change}).")


def loss_source_words(results: Mapping[GapFilling, dict], baseline: GapFilling) -> str:
    """Where the paper's kernel 2 loses J&F beyond noise, whether the loss comes from filled gaps or from
    boundaries moved between objects: the ``background`` rule fills the same pixels only where the map is
    background, so when it loses nothing beyond noise the loss is the pixels taken from other objects.
    "" where the paper's kernel 2 does not lose beyond noise or the background rule was not run."""
    background = dataclasses.replace(PAPER_FILLING, method="background")
    if PAPER_FILLING not in results or background not in results:
        return ""
    paper = paired_difference(results[baseline], results[PAPER_FILLING])
    if paper.ci_high >= 0:
        return ""
    filled_only = paired_difference(results[baseline], results[background])
    if filled_only.within_noise or filled_only.ci_low > 0:
        return (f"The loss comes from moving boundaries between objects, not from filling gaps: the background rule, "
                f"which fills the same pixels only where the map is background, changes J&F by "
                f"{filled_only.describe()}, against {paper.describe()} for the paper's rule.")
    return (f"Filling gaps costs J&F too: the background rule, which fills only background, changes J&F by "
            f"{filled_only.describe()}, against {paper.describe()} for the paper's rule.")


def kernel_comparisons(results: Mapping[GapFilling, dict], baseline: GapFilling, pick: KernelPick) -> list:
    """Chapter 05's comparisons (:class:`fvos_utils.studies.claims.Comparison`) on its valid videos: the paper's
    square kernel 2 against no filling (claim 4, with where a loss comes from: :func:`loss_source_words`) and
    against the best other candidate, no filling included (claim 5, picked on these videos:
    :func:`kernel_rival`, noting where kernel 2 is only the least harmful filling), and the pick against no
    filling where the pick is neither. Shown in chapter 05."""
    out = []
    if PAPER_FILLING in results:
        out.append(claims.compare("fill", PAPER_FILLING.words, results[PAPER_FILLING], NO_FILLING.words,
                                  results[baseline], split="valid", note=loss_source_words(results, baseline)))
        rival = kernel_rival(results)
        if rival is not None:
            out.append(claims.compare("kernel2", PAPER_FILLING.words, results[PAPER_FILLING],
                                      f"{rival.words}, the best other candidate", results[rival],
                                      split="valid", chosen_here=True, note=least_harmful_words(results)))
    if pick.filling.fills and pick.filling != PAPER_FILLING:
        out.append(claims.compare("", f"the pick, {pick.shape} kernel {pick.kernel}", results[pick.filling],
                                  "no filling", results[baseline], split="valid", chosen_here=True))
    return out

"""One figure style for the whole kit, saving every figure as PNG (300 dpi) and PDF together (tables:
:mod:`fvos_utils.run.tables`).

PDFs embed TrueType fonts (``pdf.fonttype: 42``) and carry no creation date, so re-running a notebook
gives byte-identical figure files.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.transforms import Bbox

from fvos_utils.base.io import VOID_LABEL, atomic_path, davis_palette
from fvos_utils.metrics.percent import percent

STYLE = {
    "figure.dpi": 100,             # on screen
    "savefig.dpi": 300,            # PNG files
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,            # embed TrueType, editable text in the PDF
    "ps.fonttype": 42,
    # every text at least 9 pt at print size (MIN_PRINT_PT): tick labels, legends and labels at the base size
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",  # masks are labels: never blur them
    "svg.hashsalt": "fvos",        # reproducible SVG ids, should anyone save SVG
}


#: a figure is printed at its own width up to PRINT_WIDTH inches (the text width of a two-column conference page,
#: where it spans both columns), wider ones scaled down to it ...
PRINT_WIDTH = 7.0
#: ... and every text in it is then at least MIN_PRINT_PT points: the size of a conference caption (CVPR and
#: ICCV set captions in 9-point type), so no label reads smaller than the caption under it
MIN_PRINT_PT = 9.0


def use_style() -> None:
    """Apply the kit's matplotlib style (call once at the top of a notebook)."""
    matplotlib.rcParams.update(STYLE)


#: the suffix of a figure's caption file, beside its PNG (:func:`save_figure`, :func:`read_caption`)
CAPTION_SUFFIX = ".caption.txt"


def save_figure(fig, path: str | os.PathLike, *, caption: str | None = None) -> list[Path]:
    """Save ``fig`` as ``<path>.png`` and ``<path>.pdf`` (any suffix on ``path`` is dropped), atomically, and
    ``caption`` (what this run's figure shows, made from its numbers) as ``<path>.caption.txt``, which the
    report shows under the figure."""
    stem = Path(path).with_suffix("")
    written = []
    for ext, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext[1:], metadata=metadata)
        written.append(target)
    if caption is not None:
        target = stem.parent / f"{stem.name}{CAPTION_SUFFIX}"
        with atomic_path(target) as tmp:
            tmp.write_text(caption.strip() + "\n")
        written.append(target)
    return written


def read_caption(png: str | os.PathLike) -> str | None:
    """The caption :func:`save_figure` wrote beside ``png``, or None."""
    png = Path(png)
    found = png.parent / f"{png.stem}{CAPTION_SUFFIX}"
    return found.read_text().strip() if found.is_file() else None


def overlay(frame, labels, *, alpha: float = 0.5, objects=None, contour: bool = True):
    """Colour the objects of a label map over a frame.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        labels: ``(H, W)`` integer ids (0 background, 255 void is not drawn).
        alpha: opacity of the object colours in [0, 1].
        objects: ids to draw (default: every id present).
        contour: draw each object's outline at full opacity (keeps thin gaps between objects visible).
    Returns:
        ``(H, W, 3) uint8`` RGB; the inputs are not modified.
    """
    frame = np.asarray(frame)
    labels = np.asarray(labels)
    if frame.shape[:2] != labels.shape or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame (H, W, 3) and labels (H, W) must match, got {frame.shape} and {labels.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    ids = [i for i in np.unique(labels) if i not in (0, VOID_LABEL)] if objects is None else list(objects)
    palette = davis_palette().astype(np.float32)
    out = frame.astype(np.float32)
    for obj in ids:
        mask = labels == obj
        out[mask] = (1.0 - alpha) * out[mask] + alpha * palette[obj]
        if contour:
            edge = mask & ~_eroded(mask)
            out[edge] = palette[obj]
    return np.rint(out).astype(np.uint8)


def _eroded(mask):
    """4-neighbour erosion of a bool mask; pixels outside the image count as inside (no frame edge)."""
    padded = np.pad(mask, 1, mode="edge")
    return (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])


def frame_grid(rows, *, row_labels=None, col_labels=None, cell_width: float = 2.2):
    """A grid of images without axes: ``rows`` is a list of rows, each a list of ``(H, W, 3) uint8``.

    Returns the matplotlib figure. Row labels go on the left, column labels on top.
    """
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    h, w = rows[0][0].shape[:2]
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(cell_width * n_cols, cell_width * n_cols * h / w * n_rows / n_cols + 0.3))
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row):
                ax.imshow(row[c])
            if col_labels and r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c])
            if row_labels and c == 0:
                ax.set_ylabel(row_labels[r])
    fig.tight_layout(pad=0.3)
    return fig


def colour_key(fig, labels: dict[int, str], **legend) -> None:
    """A legend of object colours (DAVIS palette) below ``fig``: ``labels`` maps an id to its name."""
    from matplotlib.patches import Patch

    palette = davis_palette()
    handles = [Patch(color=palette[i] / 255, label=name) for i, name in labels.items()]
    # hung from the figure's bottom edge: below the pictures whatever the figure's height
    fig.legend(handles=handles, loc="upper center", ncol=max(len(handles), 1), frameon=False,
               bbox_to_anchor=(0.5, 0.0), **legend)


def tracking_figure(rgb, predicted, truth, frames, *, union: bool = False):
    """A tracked clip at a few frames: the ground truth above the prediction, each column titled with its frame
    number and the prediction's J there (in percent), and a key of the object colours.

    Args:
        rgb: ``(H, W, 3) uint8`` frames. predicted: their ``(H, W)`` predicted label maps.
        truth: their ``(H, W)`` ground-truth maps, or None (the prediction alone, no scores).
        frames: the frame numbers. union: the truth is one mask of all objects together (DAVIS 2016's
            annotation of a multi-object clip): J is then of the predicted objects' union against it.
    Returns:
        the matplotlib figure.
    """
    def jaccard(pred, gt):
        ids = [1] if union else [int(i) for i in np.unique(gt) if i not in (0, VOID_LABEL)]
        pred = (pred > 0).astype(int) if union else pred
        gt = (gt > 0).astype(int) if union else gt
        scores = [((pred == i) & (gt == i)).sum() / max(((pred == i) | (gt == i)).sum(), 1) for i in ids]
        return float(np.mean(scores)) if scores else float("nan")

    rows = [[overlay(image, labels) for image, labels in zip(rgb, predicted)]]
    names = ["prediction"]
    titles = [f"frame {t}" for t in frames]
    if truth is not None:
        rows.insert(0, [overlay(image, (gt > 0).astype(np.uint8) if union else gt) for image, gt in zip(rgb, truth)])
        names.insert(0, "ground truth")
        titles = [f"frame {t}, J {percent(jaccard(p, g))}" for t, p, g in zip(frames, predicted, truth)]
    fig = frame_grid(rows, row_labels=names, col_labels=titles, cell_width=(PRINT_WIDTH - 0.4) / len(titles))
    ids = sorted({int(i) for labels in predicted for i in np.unique(labels) if i not in (0, VOID_LABEL)})
    colour_key(fig, {i: f"object {i}" for i in ids}, title="ground truth: all objects as one mask, in object 1's colour"
               if union and truth is not None else None)
    return fig


def boundary_figure(gt_mask, pred_mask, *, radius: int | None = None, crop: bool = True):
    """Explain the boundary F-measure on one object: boundaries, tolerance band, matched pixels.

    Args:
        gt_mask, pred_mask: ``(H, W) bool``.
        radius: matching tolerance in pixels (default: the DAVIS radius for this frame size).
        crop: show only the neighbourhood of the object (scores are always over the whole frame).
    Returns:
        the figure; its title holds J, the precision, recall and F computed by ``fvos_utils.metrics.evaluate``.
    """
    import cv2
    import matplotlib.pyplot as plt

    from fvos_utils.metrics import evaluate

    gt_mask, pred_mask = np.asarray(gt_mask, bool), np.asarray(pred_mask, bool)
    radius = evaluate.boundary_radius(*gt_mask.shape) if radius is None else radius
    kernel = evaluate.disk_kernel(radius)
    b_gt, b_pred = evaluate.boundary_map(gt_mask), evaluate.boundary_map(pred_mask)
    band_gt = cv2.dilate(b_gt.astype(np.uint8), kernel).astype(bool)
    band_pred = cv2.dilate(b_pred.astype(np.uint8), kernel).astype(bool)
    j, f = evaluate.jaccard(gt_mask, pred_mask), evaluate.f_measure(gt_mask, pred_mask, radius)
    precision = (b_pred & band_gt).sum() / max(b_pred.sum(), 1)
    recall = (b_gt & band_pred).sum() / max(b_gt.sum(), 1)
    if crop:  # the scores above use the whole frame; the pictures zoom on the object
        ys, xs = np.nonzero(gt_mask | pred_mask)
        if len(ys):
            margin = 3 * radius
            window = (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
                      slice(max(xs.min() - margin, 0), xs.max() + margin + 1))
            gt_mask, pred_mask, b_gt, b_pred, band_gt, band_pred = (
                a[window] for a in (gt_mask, pred_mask, b_gt, b_pred, band_gt, band_pred))

    region = np.full(gt_mask.shape + (3,), 255, np.uint8)
    region[gt_mask & ~pred_mask] = (230, 120, 120)   # missed: false negative
    region[pred_mask & ~gt_mask] = (120, 120, 230)   # extra: false positive
    region[gt_mask & pred_mask] = (150, 200, 150)    # intersection
    band = np.full(gt_mask.shape + (3,), 255, np.uint8)
    band[band_gt] = (215, 215, 215)                  # tolerance band around the GT boundary
    band[b_gt] = (40, 40, 40)                        # GT boundary a predicted one reaches: found
    band[b_gt & ~band_pred] = (240, 150, 0)          # GT boundary no predicted one reaches: missed (recall)
    band[b_pred & band_gt] = (30, 150, 30)           # predicted boundary within tolerance: matched
    band[b_pred & ~band_gt] = (220, 30, 30)          # predicted boundary too far: unmatched (precision)
    fig, axes = plt.subplots(1, 2, figsize=(PRINT_WIDTH, 3.6))
    for ax, img, title in zip(axes, (region, band), (
            f"J = |G∩P| / |G∪P| = {percent(j, 1)}%\n"
            "green: G∩P, red: missed,\nblue: extra",
            f"F = {percent(f, 1)}%: precision {percent(precision, 1)}%,\nrecall {percent(recall, 1)}%; "
            f"GT boundary black if\nfound, orange if missed, its {radius}-px band\n"
            "grey; predicted boundary green\nif matched, red if not")):
        ax.imshow(img)
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


#: where :func:`label_points` tries a label, nearest first: directions (x, y) from its point ...
LABEL_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
#: ... and distances in points (no leader lines, so a label never strays far from its point)
LABEL_DISTANCES = (5, 10, 16)


def label_points(ax, points, *, fontsize: float = MIN_PRINT_PT, marker_size: float = 6,
                 avoid=(), avoid_width: float = 4) -> list[str]:
    """Label data points of ``ax`` so that no label overlaps another label, a point, what ``avoid`` names or
    the axes' edge.

    Args:
        points: ``[(x, y, label)]`` in data coordinates; points at the same place share one label
            (their labels joined by ", ").
        marker_size: the markers' size in points (each point keeps a square of that side free).
        avoid: ``[(x0, y0, x1, y1)]`` in data coordinates, drawn things a label must not cover (an error bar
            is ``(x, low, x, high)``), each widened to at least ``avoid_width`` points (an error bar's caps).
    Returns:
        the labels that found no free place among :data:`LABEL_DIRECTIONS` x :data:`LABEL_DISTANCES`
        and were left out (shared labels as joined).

    Places are measured in display space, so call it once the layout is final (after ``tight_layout``,
    with the axis limits set); ``savefig(bbox_inches="tight")`` and another dpi keep them apart.
    """
    fig = ax.figure
    fig.canvas.draw()  # final view limits and layout, and a renderer to measure text
    renderer = fig.canvas.get_renderer()
    shared: dict[tuple[float, float], list[str]] = {}
    for x, y, label in points:
        names = shared.setdefault((float(x), float(y)), [])
        if label not in names:
            names.append(label)
    def kept_free(x0, y0, x1, y1, width):  # a data-space box in display space, at least width points across
        corners = np.sort(ax.transData.transform([(x0, y0), (x1, y1)]), axis=0)  # lower left, upper right
        return Bbox(corners).padded(width * fig.dpi / 72 / 2)

    taken = [kept_free(x, y, x, y, marker_size) for x, y in shared]
    taken += [kept_free(*box, avoid_width) for box in avoid]
    frame = ax.get_window_extent(renderer)
    left_out = []
    for (x, y), names in shared.items():
        text = ", ".join(names)
        box = _place_label(ax, (x, y), text, fontsize, taken, frame, renderer)
        if box is None:
            left_out.append(text)
        else:
            taken.append(box)
    return left_out


def _place_label(ax, point, text, fontsize, taken, frame, renderer):
    """Annotate ``point`` with ``text`` at the first place inside ``frame`` clear of the ``taken``
    boxes; returns the label's box, or None (and nothing drawn) when no place is free."""
    air = ax.figure.dpi / 72  # a point of air around each label
    for distance in LABEL_DISTANCES:
        for dx, dy in LABEL_DIRECTIONS:
            label = ax.annotate(text, point, xytext=(dx * distance, dy * distance), textcoords="offset points",
                                fontsize=fontsize, ha={1: "left", -1: "right", 0: "center"}[dx],
                                va={1: "bottom", -1: "top", 0: "center"}[dy])
            box = label.get_window_extent(renderer).padded(air)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                return box
            label.remove()
    return None

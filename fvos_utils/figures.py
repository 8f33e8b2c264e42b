"""One figure style for the whole kit, and saving every figure as PNG (300 dpi) and PDF together.

PDFs embed TrueType fonts (``pdf.fonttype: 42``) and carry no creation date, so re-running a notebook
gives byte-identical figure files.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np

from .io import VOID_LABEL, atomic_path, davis_palette

STYLE = {
    "figure.dpi": 100,             # on screen
    "savefig.dpi": 300,            # PNG files
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,            # embed TrueType, editable text in the PDF
    "ps.fonttype": 42,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",  # masks are labels: never blur them
    "svg.hashsalt": "fvos",        # reproducible SVG ids, should anyone save SVG
}


def use_style() -> None:
    """Apply the kit's matplotlib style (call once at the top of a notebook)."""
    matplotlib.rcParams.update(STYLE)


def save_figure(fig, path: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as ``<path>.png`` and ``<path>.pdf`` (any suffix on ``path`` is dropped), atomically."""
    stem = Path(path).with_suffix("")
    written = []
    for ext, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext[1:], metadata=metadata)
        written.append(target)
    return written


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


def boundary_figure(gt_mask, pred_mask, *, radius: int | None = None, crop: bool = True):
    """Explain the boundary F-measure on one object: boundaries, tolerance band, matched pixels.

    Args:
        gt_mask, pred_mask: ``(H, W) bool``.
        radius: matching tolerance in pixels (default: the DAVIS radius for this frame size).
        crop: show only the neighbourhood of the object (scores are always over the whole frame).
    Returns:
        the figure; its title holds J, the precision, recall and F computed by ``fvos_utils.evaluate``.
    """
    import cv2
    import matplotlib.pyplot as plt

    from . import evaluate

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
    band[b_gt] = (40, 40, 40)
    band[b_pred & band_gt] = (30, 150, 30)           # predicted boundary within tolerance: matched
    band[b_pred & ~band_gt] = (220, 30, 30)          # predicted boundary too far: unmatched
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2))
    for ax, img, title in zip(axes, (region, band), (
            f"J = |G∩P| / |G∪P| = {j:.3f}\n"
            "green: G∩P, red: missed, blue: extra",
            f"F = {f:.3f} (precision {precision:.3f}, "
            f"recall {recall:.3f})\nGT boundary black, its {radius}-px band grey; "
            "predicted boundary green if matched, red if not")):
        ax.imshow(img)
        ax.set_title(title, fontsize=7)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def save_table(table, path: str | os.PathLike, *, float_format: str = "{:.4f}") -> list[Path]:
    """Save a pandas DataFrame as ``<path>.csv``, ``<path>.md`` and ``<path>.tex``, atomically."""
    stem = Path(path).with_suffix("")
    formatted = table.map(lambda v: float_format.format(v) if isinstance(v, float) else v)
    outputs = {".csv": table.to_csv(), ".md": formatted.to_markdown() + "\n",
               ".tex": formatted.to_latex(escape=True)}
    written = []
    for ext, text in outputs.items():
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        written.append(target)
    return written

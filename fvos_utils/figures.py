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

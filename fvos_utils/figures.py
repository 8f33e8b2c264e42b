"""One figure style for the whole kit, and saving every figure as PNG (300 dpi) and PDF together.

PDFs embed TrueType fonts (``pdf.fonttype: 42``) and carry no creation date, so re-running a notebook
gives byte-identical figure files.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

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
    from .io import atomic_path

    stem = Path(path).with_suffix("")
    written = []
    for ext, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext[1:], metadata=metadata)
        written.append(target)
    return written

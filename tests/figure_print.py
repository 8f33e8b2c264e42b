"""Figures as a page sets them: the size of every text of a saved PDF once the figure is printed.

Read from the PDF itself (its page width, and the size of each ``Tf`` text operator in its content streams),
not from the code that drew it. A figure is printed at its own width up to ``figures.PRINT_WIDTH`` inches
(the text width of a two-column page) and scaled down to that width beyond it; every text must then be at
least ``figures.MIN_PRINT_PT`` points, the size of the caption under it.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

from fvos_utils.run.figures import MIN_PRINT_PT, PRINT_WIDTH

_MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")
_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)
_FONT_SIZE = re.compile(rb"/F\d+\s+([\d.]+)\s+Tf")


def text_sizes(pdf: Path) -> tuple[float, list[float]]:
    """``(page width in points, [size in points of every text run])`` of a one-page PDF."""
    data = Path(pdf).read_bytes()
    box = _MEDIA_BOX.search(data)
    if box is None:
        raise ValueError(f"{pdf}: no page size (MediaBox) found")
    width = float(box.group(3)) - float(box.group(1))
    sizes = []
    for stream in _STREAM.finditer(data):
        content = stream.group(1)
        try:
            content = zlib.decompress(content)
        except zlib.error:  # an uncompressed stream, or a font program
            pass
        sizes += [float(size) for size in _FONT_SIZE.findall(content)]
    return width, sizes


def smallest_printed(pdf: Path) -> tuple[float, float]:
    """``(printed width in inches, smallest text in points at that width)``; the text is inf without text."""
    width, sizes = text_sizes(pdf)
    scale = min(1.0, PRINT_WIDTH * 72 / width)
    return width * scale / 72, min(sizes, default=float("inf")) * scale


def too_small(pdfs) -> list[str]:
    """A line for every figure whose smallest text prints below the caption's size."""
    lines = []
    for pdf in pdfs:
        width, smallest = smallest_printed(pdf)
        if smallest < MIN_PRINT_PT - 0.01:
            natural = text_sizes(pdf)[0] / 72
            lines.append(f"{pdf.name}: smallest text {smallest:.1f} pt when printed {width:.2f} in wide "
                         f"(drawn {natural:.2f} in wide), below {MIN_PRINT_PT:g} pt")
    return lines

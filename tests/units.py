"""Checks that a text a person reads gives J, F and J&F in percent (the field's unit), never as fractions."""
import re

from fvos_utils.metrics.percent import is_score_header

#: a fraction written as one: 0.659, -0.0045 (a score in percent is 65.99, a change -0.45)
FRACTION = re.compile(r"(?<![\d.])[-+]?0\.\d{3,4}(?!\d)")


def score_cells_not_in_percent(markdown: str) -> list[str]:
    """``"<header>: <cell>"`` for each cell of the Markdown tables in ``markdown`` whose column names a score
    (J, F, J&F, dJ&F, CI low, ...) and whose value is not a number with two decimals (a fraction such as
    0.6599 has four)."""
    wrong, header = [], None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            wrong += [f"{name}: {cell}" for name, cell in zip(header, cells)
                      if is_score_header(name) and cell and not re.fullmatch(r"-?\d+\.\d\d", cell)]
    return wrong


def fractions_in_words(markdown: str) -> list[str]:
    """The lines outside tables that write a number as a fraction with three or four decimals."""
    return [line for line in markdown.splitlines() if not line.startswith("|") and FRACTION.search(line)]

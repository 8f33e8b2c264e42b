r"""Every table of the kit saved three ways (:func:`save_table`): CSV for machines, Markdown and booktabs
LaTeX for readers, with J, F and J&F in percent for readers (:mod:`fvos_utils.metrics.percent`).

The LaTeX is laid out for a paper. Each table fits the text width of a one-column article
(:data:`ONE_COLUMN_WIDTH`) and, on a two-column conference page (:data:`TWO_COLUMN_PAGE`), either one
column (a ``table``) or the page's width (a ``table*``, which a one-column document sets as a ``table``).
Widths are estimated from Computer Modern's character widths at ``\small``; long text wraps in ``tabularx``
X columns, long headers break into lines, and a table that fits no width is split into parts, each
repeating the table's leading columns. A document that inputs the tables loads :data:`LATEX_PACKAGES`.

:func:`latex_values` writes named numbers for a write-up to quote (``\fvos{claim1.test.JF}``).
"""
from __future__ import annotations

import numbers
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fvos_utils.base.io import atomic_path
from fvos_utils.metrics.percent import is_score_header, without_zero_sign
from fvos_utils.metrics.percent import percent as as_percent

#: what a LaTeX document needs to input the tables (``\usepackage{booktabs,tabularx}``)
LATEX_PACKAGES = ("booktabs", "tabularx")
#: pt: the text width of LaTeX's one-column ``article`` at 10 pt
ONE_COLUMN_WIDTH = 345.0
#: pt: a two-column conference page: 7 in of text, 0.25 in between the columns (IEEE's and ACM's are
#: within a few points of it)
TWO_COLUMN_PAGE = {"textwidth": 505.89, "columnsep": 18.07}
#: pt: one column of that page
COLUMN_WIDTH = (TWO_COLUMN_PAGE["textwidth"] - TWO_COLUMN_PAGE["columnsep"]) / 2
#: pt: the space on each side of a column (LaTeX's default is 6 pt: 4 keeps more columns on a page)
TABCOLSEP = 4.0
#: pt: the tables' font, ``\small`` in a 10 pt document (cmr9 is about 3% wider per point than cmr10)
FONT_SIZE = 9.0 * 1.03
#: the share of a width a table's estimate may fill (the estimate leaves out kerning and rules)
SLACK = 0.96
#: pt: a text column whose longest cell is wider than this wraps (an X column) ...
WRAP_ABOVE = 100.0
#: pt: ... and gets at least this much (or its longest word)
WRAP_MIN = 70.0
#: pt: a header breaks into lines no wider than this or than its column's cells
HEADER_LINE = 45.0

# Computer Modern Roman's character widths, in em (cmr10's metrics); anything else counts as 0.6 em
_EM = {**dict.fromkeys("0123456789", 0.5), " ": 0.333, ".": 0.278, ",": 0.278, ":": 0.278, ";": 0.278,
       "(": 0.389, ")": 0.389, "[": 0.278, "]": 0.278, "-": 0.333, "/": 0.5, "&": 0.778, "%": 0.833,
       "'": 0.278, "|": 0.278, "_": 0.5, "#": 0.833, "$": 0.5, "+": 0.778, "=": 0.778, "*": 0.5, "!": 0.278,
       "?": 0.472, "<": 0.778, ">": 0.778, "~": 0.5, "^": 0.5, "{": 0.5, "}": 0.5, "\\": 0.5, '"': 0.5,
       **dict(zip("abcdefghijklmnopqrstuvwxyz", (0.5, 0.556, 0.444, 0.556, 0.444, 0.306, 0.5, 0.556, 0.278,
                                                 0.306, 0.528, 0.278, 0.833, 0.556, 0.5, 0.556, 0.528, 0.392,
                                                 0.394, 0.389, 0.556, 0.528, 0.722, 0.528, 0.528, 0.444))),
       **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (0.75, 0.708, 0.722, 0.764, 0.681, 0.653, 0.785, 0.75, 0.361,
                                                 0.514, 0.778, 0.625, 0.917, 0.75, 0.778, 0.681, 0.778, 0.736,
                                                 0.556, 0.722, 0.75, 0.75, 1.028, 0.75, 0.75, 0.611)))}


def text_width(text: str) -> float:
    """The width in pt of ``text`` set in the tables' font (an estimate from the characters' widths)."""
    return FONT_SIZE * sum(_EM.get(ch, 0.6) for ch in str(text))


# ------------------------------------------------------------------------------------------ saving
def save_table(table, path: str | os.PathLike, *, float_format: str = "{:.4f}", caption: str | None = None,
               percent: bool | Iterable[str] = ()) -> list[Path]:
    r"""Save a pandas DataFrame as ``<path>.csv``, ``<path>.md`` and ``<path>.tex`` (each atomically).

    Columns, the same in all three files: each level of a named index (or MultiIndex) becomes an
    ordinary leading column; an unnamed ``RangeIndex`` (row numbers) is dropped; any other unnamed
    index leads with an empty header (pandas' own convention: ``pd.read_csv(..., index_col=0)``). The
    labels of a column MultiIndex are joined with ``" / "`` in the CSV and Markdown headers; LaTeX
    shows one header row per level.

    - CSV: for machines: every value at full precision, missing values (NaN, None) empty.
    - Markdown and LaTeX: for readers: scores in percent with two decimals (the columns whose header names
      J, F or J&F, :func:`fvos_utils.metrics.percent.is_score_header`, those ``percent`` names by their
      header, or every numeric column when ``percent`` is True); other floats with ``float_format``
      (default 4 decimals), integers as integers (counts stored as floats too: a column of whole numbers
      beyond 1), missing values empty; numeric columns right-aligned, the others left. Index values are
      labels: their floats are written as in the CSV (``1.125``), not with ``float_format``.
    - LaTeX: booktabs, laid out to fit a paper (the module's docstring), with ``\caption{caption}``
      (default: the file stem in words) and ``\label{tab:<file stem>}`` (a split table's later parts:
      ``tab:<file stem>-2``, ...); LaTeX's special characters in cells, headers and the caption are
      escaped (plain text only).

    Returns the three paths. Errors name the path: TypeError for anything but a DataFrame, ValueError
    for a stem unfit for a LaTeX label, a table without columns, a ``percent`` header the table lacks or
    a ``float_format`` that cannot format a float.
    """
    stem = Path(path).with_suffix("")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{stem}: save_table needs a pandas DataFrame, got {type(table).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", stem.name):
        raise ValueError(f"{stem}: the file name is the LaTeX label tab:{stem.name}; "
                         "use only letters, digits and _ . : -")
    columns = _columns_shown(table, float_format, percent, stem)
    if caption is None:
        words = stem.name.replace("_", " ")
        caption = words[:1].upper() + words[1:]
    outputs = {".csv": pd.DataFrame({i: c.values for i, c in enumerate(columns)})
                       .set_axis([c.flat_header for c in columns], axis=1).to_csv(index=False),
               ".md": _markdown(columns) + "\n",
               ".tex": _latex(columns, table.columns.names, caption, f"tab:{stem.name}")}
    written = []
    for ext, text in outputs.items():
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        written.append(target)
    return written


def shown_cells(table: pd.DataFrame, *, float_format: str = "{:.4f}", percent: bool | Iterable[str] = ()
                ) -> dict[str, list[str]]:
    """``{header: cells}``: each column's cells as :func:`save_table` shows them to readers ("" where missing)."""
    return {c.flat_header: list(c.cells) for c in _columns_shown(table, float_format, percent, "table")}


def markdown_table(table: pd.DataFrame, *, float_format: str = "{:.4f}", percent: bool | Iterable[str] = (),
                   compact: bool = False) -> str:
    """``table`` as :func:`save_table` writes its Markdown (scores in percent), for a page or a notebook.
    ``compact``: without the padding that aligns the columns in plain text, each row only as long as its
    own cells (a README's lines stay short; the rendered table is the same)."""
    columns = _columns_shown(table, float_format, percent, "table")
    if not compact:
        return _markdown(columns)
    rows = [[c.flat_header for c in columns], ["---:" if c.numeric else "---" for c in columns]]
    rows += [list(row) for row in zip(*(c.cells for c in columns))]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)


# ------------------------------------------------------------------------------------------ columns
@dataclass(frozen=True)
class _TableColumn:
    """One column as :func:`save_table` writes it: its header labels (one per column level; a leading
    column's name sits on the last), its values (a Series indexed 0..n-1), whether it came from the index,
    and its cells as readers see them."""

    labels: tuple[str, ...]
    values: pd.Series
    from_index: bool
    cells: tuple[str, ...] = ()

    @property
    def flat_header(self) -> str:
        return " / ".join(label for label in self.labels if label)

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                   for v in self.values if not _missing(v))

    @property
    def counts(self) -> bool:
        """Whether the column holds counts stored as floats (a transposed table or a column with missing
        values turns integers into floats): every value whole and one beyond 1, which no fraction is."""
        present = [v for v in self.values if not _missing(v)]
        return (self.numeric and bool(present) and all(float(v).is_integer() for v in present)
                and max(abs(float(v)) for v in present) > 1)


def _columns_shown(table, float_format: str, percent, stem) -> list[_TableColumn]:
    """The table's columns (:func:`_table_columns`) with their cells as readers see them."""
    try:
        float_format.format(0.5)
    except (ValueError, IndexError, KeyError) as error:
        raise ValueError(f"{stem}: float_format {float_format!r} cannot format a float ({error})") from None
    columns = _table_columns(table)
    if not columns:
        raise ValueError(f"{stem}: the table has no columns")
    named = set() if isinstance(percent, bool) else {str(header) for header in percent}
    unknown = named - {c.flat_header for c in columns}
    if unknown:
        raise ValueError(f"{stem}: percent= names {sorted(unknown)}, which the table has no column for "
                         f"(its headers: {[c.flat_header for c in columns]})")
    shown = []
    for column in columns:
        in_percent = (column.numeric and not column.from_index and not column.counts
                      and (percent is True or column.flat_header in named or is_score_header(column.labels[-1])))
        if column.counts:
            cells = ["" if _missing(v) else str(int(v)) for v in column.values]
        else:
            cells = [_cell(v, float_format, column.from_index, in_percent) for v in column.values]
        shown.append(_TableColumn(column.labels, column.values, column.from_index, tuple(cells)))
    return shown


def _table_columns(table: pd.DataFrame) -> list[_TableColumn]:
    """The index levels worth keeping (see :func:`save_table`), then the table's own columns."""
    depth = table.columns.nlevels
    columns = []
    if not (isinstance(table.index, pd.RangeIndex) and table.index.name is None):
        columns += [_TableColumn(("",) * (depth - 1) + ("" if name is None else str(name),),
                                 pd.Series(table.index.get_level_values(level)), True)
                    for level, name in enumerate(table.index.names)]
    for position, label in enumerate(table.columns):
        labels = label if depth > 1 else (label,)
        columns.append(_TableColumn(tuple(str(part) for part in labels), table.iloc[:, position].reset_index(drop=True), False))
    return columns


def _missing(value) -> bool:
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _cell(value, float_format: str, label: bool, in_percent: bool) -> str:
    """A value as readers see it: empty if missing, integers as integers, scores in percent, other floats
    with ``float_format`` (an index label's float as Python writes it), never a negative zero ("-0.0000")."""
    if _missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Real) and in_percent:
        return as_percent(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if label:
            return str(float(value))
        return without_zero_sign(float_format.format(value))
    return str(value)


def _markdown(columns: list[_TableColumn]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", r"\|")  # a bare pipe would end the cell

    rows = list(zip(*(c.cells for c in columns)))
    shown = pd.DataFrame([[escape(cell) for cell in row] for row in rows],
                         columns=[escape(c.flat_header) for c in columns])
    return shown.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if c.numeric else "left" for c in columns])


# ------------------------------------------------------------------------------------------ LaTeX
#: LaTeX's special characters in text (< > | print other glyphs in LaTeX's default OT1 encoding)
LATEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                               "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                               "|": r"\textbar{}"})


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``J&F`` -> ``J\\&F``), for use as plain text."""
    return str(text).translate(LATEX_ESCAPES)


@dataclass(frozen=True)
class _Layout:
    """How one column is set in LaTeX: ``spec`` ``r``, ``l`` or ``X`` (wraps), the least ``width`` (pt)
    its cells and header need, and its header's lines."""

    spec: str
    width: float
    header_lines: tuple[str, ...]


def _layout(column: _TableColumn) -> _Layout:
    natural = max((text_width(cell) for cell in column.cells), default=0.0)
    if column.numeric or natural <= WRAP_ABOVE:
        spec, width = ("r" if column.numeric else "l"), natural
    else:
        words = [word for cell in column.cells for word in cell.split()]
        spec, width = "X", max([WRAP_MIN] + [text_width(word) for word in words])
    lines: list[str] = []
    limit = max(width, HEADER_LINE)
    for word in column.labels[-1].split():
        if lines and text_width(f"{lines[-1]} {word}") <= limit:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    width = max([width] + [text_width(line) for line in lines])
    return _Layout(spec, width, tuple(lines))


def _estimate(layouts: list[_Layout]) -> float:
    return sum(layout.width + 2 * TABCOLSEP for layout in layouts)


def _parts(columns: list[_TableColumn], layouts: list[_Layout]) -> list[list[int]]:
    """The column positions of each part: one part when the table fits a one-column page, else parts
    that each repeat the leading columns (the index's, or the first) and fit it."""
    if _estimate(layouts) <= ONE_COLUMN_WIDTH * SLACK:
        return [list(range(len(columns)))]
    n_keys = sum(c.from_index for c in columns) or 1
    keys = list(range(n_keys))
    parts = [keys.copy()]
    for position in range(n_keys, len(columns)):
        candidate = parts[-1] + [position]
        if len(parts[-1]) > n_keys and _estimate([layouts[i] for i in candidate]) > ONE_COLUMN_WIDTH * SLACK:
            parts.append(keys + [position])
        else:
            parts[-1] = candidate
    return parts


def _latex(columns: list[_TableColumn], column_names, caption: str, label: str) -> str:
    """The booktabs table(s) of :func:`save_table`; ``column_names``: the names of the column levels."""
    layouts = [_layout(column) for column in columns]
    parts = _parts(columns, layouts)
    blocks = []
    for number, positions in enumerate(parts, 1):
        shown = [columns[i] for i in positions]
        shown_layouts = [layouts[i] for i in positions]
        wide = _estimate(shown_layouts) > COLUMN_WIDTH * SLACK
        part_caption = caption if len(parts) == 1 else f"{caption} (part {number} of {len(parts)})"
        part_label = label if number == 1 else f"{label}-{number}"
        blocks.append(_latex_float(shown, shown_layouts, column_names, part_caption, part_label, wide))
    return "\n".join(blocks)


def _latex_float(columns: list[_TableColumn], layouts: list[_Layout], column_names, caption: str, label: str,
                 wide: bool) -> str:
    n_leading = sum(c.from_index for c in columns)
    depth = len(columns[0].labels)
    # pandas' layout: a column level's name heads the leading columns of its header row, and the index
    # names then need a row of their own
    level_names = [latex_escape(name) if name is not None else "" for name in column_names]
    names_row = n_leading > 0 and any(level_names)
    last_level = [_header_cell(layout) for layout in layouts]
    header = []
    for level in range(depth):
        cells = [""] * n_leading
        if names_row:
            cells[-1] = level_names[level]
        elif level == depth - 1:
            cells = last_level[:n_leading]
        rules = []
        start = n_leading
        while start < len(columns):  # a run of columns under the same labels down to this level spans them
            end = start + 1
            while (level < depth - 1 and end < len(columns)
                   and columns[end].labels[:level + 1] == columns[start].labels[:level + 1]):
                end += 1
            text = last_level[start] if level == depth - 1 else latex_escape(columns[start].labels[level])
            cells.append(text if end - start == 1 else rf"\multicolumn{{{end - start}}}{{c}}{{{text}}}")
            if end - start > 1 and text:
                rules.append(rf"\cmidrule(lr){{{start + 1}-{end}}}")
            start = end
        header.append(" & ".join(cells) + r" \\")
        if rules:
            header.append(" ".join(rules))
    if names_row:
        header.append(" & ".join(last_level[:n_leading] + [""] * (len(columns) - n_leading)) + r" \\")
    body = [" & ".join(_latex_cell(cell, column.numeric) for cell, column in zip(row, columns)) + r" \\"
            for row in zip(*(c.cells for c in columns))]
    spec = "".join(r">{\raggedright\arraybackslash}X" if layout.spec == "X" else layout.spec for layout in layouts)
    environment = "table*" if wide else "table"
    tabular = (rf"\begin{{tabularx}}{{\linewidth}}{{{spec}}}", r"\end{tabularx}") if "X" in spec else (
        rf"\begin{{tabular}}{{{spec}}}", r"\end{tabular}")
    return "\n".join([rf"\begin{{{environment}}}[htbp]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
                      rf"\label{{{label}}}", r"\small", rf"\setlength{{\tabcolsep}}{{{TABCOLSEP:g}pt}}",
                      tabular[0], r"\toprule", *header, r"\midrule", *body, r"\bottomrule", tabular[1],
                      rf"\end{{{environment}}}", ""])


def _header_cell(layout: _Layout) -> str:
    """A header: its lines stacked (a column's lines align as its cells do); an X column wraps its own."""
    lines = [latex_escape(line) for line in layout.header_lines]
    if layout.spec == "X" or len(lines) <= 1:
        return " ".join(lines)
    return rf"\begin{{tabular}}[b]{{@{{}}{layout.spec}@{{}}}}" + r"\\".join(lines) + r"\end{tabular}"


def _latex_cell(cell: str, numeric: bool) -> str:
    text = latex_escape(cell)
    return f"$-${text[1:]}" if numeric and text.startswith("-") else text  # a minus sign, not a hyphen


# ------------------------------------------------------------------------------------------ values
#: a name :func:`latex_values` accepts: what ``\fvos{...}`` is called with
VALUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


def latex_values(values: Mapping[str, str], *, heading: str) -> str:
    r"""A LaTeX file defining ``\fvos{<name>}`` for each of ``values`` (``{name: text}``): a write-up inputs it
    and quotes a run's numbers by name (``\fvos{claim1.test.dJF}``), never by copy. An unknown name is a
    LaTeX error naming it. ``heading``: the comment at the top (which run, which command wrote it)."""
    bad = [name for name in values if not VALUE_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"value names {bad}: use letters, digits, . and - (starting with a letter or digit)")
    lines = [f"% {line}" for line in heading.splitlines()]
    lines += [r"\makeatletter",
              (r"\DeclareRobustCommand{\fvos}[1]{\@ifundefined{fvos@#1}{\PackageError{fvos}{no value named `#1'"
              r" in the results file}{}}{\@nameuse{fvos@#1}}}")]
    lines += [rf"\@namedef{{fvos@{name}}}{{{_latex_cell(text, True)}}}" for name, text in values.items()]
    return "\n".join(lines + [r"\makeatother", ""])

"""One figure style for the whole kit, saving every figure as PNG (300 dpi) and PDF together, and
every table as CSV, Markdown and booktabs LaTeX (:func:`save_table`).

PDFs embed TrueType fonts (``pdf.fonttype: 42``) and carry no creation date, so re-running a notebook
gives byte-identical figure files.
"""
from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.transforms import Bbox

from fvos_utils.base.io import VOID_LABEL, atomic_path, davis_palette

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


def colour_key(fig, labels: dict[int, str], **legend) -> None:
    """A legend of object colours (DAVIS palette) below ``fig``: ``labels`` maps an id to its name."""
    from matplotlib.patches import Patch

    palette = davis_palette()
    handles = [Patch(color=palette[i] / 255, label=name) for i, name in labels.items()]
    fig.legend(handles=handles, loc="lower center", ncol=max(len(handles), 1), frameon=False, fontsize="small",
               bbox_to_anchor=(0.5, -0.14 if legend.get("title") else -0.06), **legend)


def tracking_figure(rgb, predicted, truth, frames, *, union: bool = False):
    """A tracked clip at a few frames: the ground truth above the prediction, each column titled with its frame
    number and the prediction's J there, and a key of the object colours.

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
        titles = [f"frame {t}, J {jaccard(p, g):.2f}" for t, p, g in zip(frames, predicted, truth)]
    fig = frame_grid(rows, row_labels=names, col_labels=titles)
    ids = sorted({int(i) for labels in predicted for i in np.unique(labels) if i not in (0, VOID_LABEL)})
    colour_key(fig, {i: f"object {i}" for i in ids}, title="ground truth: all objects as one mask, in object 1's colour"
               if union and truth is not None else None, title_fontsize="small")
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


#: where :func:`label_points` tries a label, nearest first: directions (x, y) from its point ...
LABEL_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
#: ... and distances in points (no leader lines, so a label never strays far from its point)
LABEL_DISTANCES = (5, 10, 16)


def label_points(ax, points, *, fontsize: float = 6, marker_size: float = 6) -> list[str]:
    """Label data points of ``ax`` so that no label overlaps another label, a point or the axes' edge.

    Args:
        points: ``[(x, y, label)]`` in data coordinates; points at the same place share one label
            (their labels joined by ", ").
        marker_size: the markers' size in points (each point keeps a square of that side free).
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
    half = marker_size * fig.dpi / 72 / 2
    taken = [Bbox.from_extents(px - half, py - half, px + half, py + half)
             for px, py in ax.transData.transform(list(shared))]
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


def save_table(table, path: str | os.PathLike, *, float_format: str = "{:.4f}",
               caption: str | None = None) -> list[Path]:
    r"""Save a pandas DataFrame as ``<path>.csv``, ``<path>.md`` and ``<path>.tex`` (each atomically).

    Columns, the same in all three files: each level of a named index (or MultiIndex) becomes an
    ordinary leading column; an unnamed ``RangeIndex`` (row numbers) is dropped; any other unnamed
    index leads with an empty header (pandas' own convention: ``pd.read_csv(..., index_col=0)``). The
    labels of a column MultiIndex are joined with ``" / "`` in the CSV and Markdown headers; LaTeX
    shows one header row per level.

    - CSV: for machines: every value at full precision, missing values (NaN, None) empty.
    - Markdown and LaTeX: for readers: floats with ``float_format`` (default 4 decimals), integers as
      integers (counts stored as floats too: a column of whole numbers beyond 1), missing values empty; numeric columns right-aligned, the others left. Index values are
      labels: their floats are written as in the CSV (``1.125``), not with ``float_format``.
    - LaTeX: a booktabs ``tabular`` (``\usepackage{booktabs}``) in a ``table`` environment with
      ``\caption{caption}`` (default: the file stem in words) and ``\label{tab:<file stem>}``; LaTeX's
      special characters in cells, headers and the caption are escaped (plain text only).

    Returns the three paths. Errors name the path: TypeError for anything but a DataFrame, ValueError
    for a stem unfit for a LaTeX label, a table without columns, or a ``float_format`` that cannot
    format a float.
    """
    stem = Path(path).with_suffix("")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{stem}: save_table needs a pandas DataFrame, got {type(table).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", stem.name):
        raise ValueError(f"{stem}: the file name is the LaTeX label tab:{stem.name}; "
                         "use only letters, digits and _ . : -")
    try:
        float_format.format(0.5)
    except (ValueError, IndexError, KeyError) as error:
        raise ValueError(f"{stem}: float_format {float_format!r} cannot format a float ({error})") from None
    columns = _table_columns(table)
    if not columns:
        raise ValueError(f"{stem}: the table has no columns")
    if caption is None:
        words = stem.name.replace("_", " ")
        caption = words[:1].upper() + words[1:]
    outputs = {".csv": pd.DataFrame({i: c.values for i, c in enumerate(columns)})
                       .set_axis([c.flat_header for c in columns], axis=1).to_csv(index=False),
               ".md": _markdown(columns, float_format) + "\n",
               ".tex": _latex(columns, table.columns.names, float_format, caption, f"tab:{stem.name}")}
    written = []
    for ext, text in outputs.items():
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        written.append(target)
    return written


@dataclass(frozen=True)
class _TableColumn:
    """One column as :func:`save_table` writes it: its header labels (one per column level; a leading
    column's name sits on the last), its values (a Series indexed 0..n-1) and whether it came from the index."""

    labels: tuple[str, ...]
    values: pd.Series
    from_index: bool

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

    def cells(self, float_format: str) -> list[str]:
        if self.counts:
            return ["" if _missing(v) else str(int(v)) for v in self.values]
        return [_cell(v, float_format, self.from_index) for v in self.values]


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


def _cell(value, float_format: str, label: bool) -> str:
    """A value as readers see it: empty if missing, integers as integers, floats with ``float_format``
    (an index label's float as Python writes it), never a negative zero ("-0.0000")."""
    if _missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if label:
            return str(float(value))
        text = float_format.format(value)
        # a tiny negative value rounds to "-0.0000": the sign would claim a direction the digits do not show
        return text[1:] if text.startswith("-") and not any(ch in "123456789" for ch in text) else text
    return str(value)


def _markdown(columns: list[_TableColumn], float_format: str) -> str:
    def escape(text: str) -> str:
        return text.replace("|", r"\|")  # a bare pipe would end the cell

    rows = list(zip(*(c.cells(float_format) for c in columns)))
    shown = pd.DataFrame([[escape(cell) for cell in row] for row in rows],
                         columns=[escape(c.flat_header) for c in columns])
    return shown.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if c.numeric else "left" for c in columns])


#: LaTeX's special characters in text
LATEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                               "^": r"\textasciicircum{}"})


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``J&F`` -> ``J\\&F``), for use as plain text."""
    return str(text).translate(LATEX_ESCAPES)


def _latex(columns: list[_TableColumn], column_names, float_format: str, caption: str, label: str) -> str:
    """The booktabs table of :func:`save_table`; ``column_names``: the names of the column levels."""
    n_leading = sum(c.from_index for c in columns)
    depth = len(columns[0].labels)
    # pandas' layout: a column level's name heads the leading columns of its header row, and the index
    # names then need a row of their own
    level_names = [latex_escape(name) if name is not None else "" for name in column_names]
    names_row = n_leading > 0 and any(level_names)
    header = []
    for level in range(depth):
        cells = [""] * n_leading
        if names_row:
            cells[-1] = level_names[level]
        elif level == depth - 1:
            cells = [latex_escape(c.labels[-1]) for c in columns[:n_leading]]
        rules = []
        start = n_leading
        while start < len(columns):  # a run of columns under the same labels down to this level spans them
            end = start + 1
            while (level < depth - 1 and end < len(columns)
                   and columns[end].labels[:level + 1] == columns[start].labels[:level + 1]):
                end += 1
            text = latex_escape(columns[start].labels[level])
            cells.append(text if end - start == 1 else rf"\multicolumn{{{end - start}}}{{c}}{{{text}}}")
            if end - start > 1 and text:
                rules.append(rf"\cmidrule(lr){{{start + 1}-{end}}}")
            start = end
        header.append(" & ".join(cells) + r" \\")
        if rules:
            header.append(" ".join(rules))
    if names_row:
        header.append(" & ".join([latex_escape(c.labels[-1]) for c in columns[:n_leading]]
                                 + [""] * (len(columns) - n_leading)) + r" \\")
    body = [" & ".join(latex_escape(cell) for cell in row) + r" \\"
            for row in zip(*(c.cells(float_format) for c in columns))]
    spec = "".join("r" if c.numeric else "l" for c in columns)
    return "\n".join([r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
                      rf"\label{{{label}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *header, r"\midrule",
                      *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])

"""Figure style, the overlay drawing used by notebooks and the viewer, and the tables saved for papers."""
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fvos_utils.base.io import davis_palette
from fvos_utils.run import figures


def test_overlay_blends_object_pixels_and_outlines_them():
    frame = np.full((8, 8, 3), 100, np.uint8)
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 2
    out = figures.overlay(frame, labels, alpha=0.25)
    green = davis_palette()[2].astype(float)
    assert out[4, 4].tolist() == np.rint(0.75 * 100 + 0.25 * green).astype(int).tolist()  # interior
    assert out[2, 2].tolist() == green.tolist() and out[5, 3].tolist() == green.tolist()  # outline
    assert (out[labels == 0] == 100).all()                                                # background
    assert (frame == 100).all()                                                           # input kept


def test_overlay_object_selection_alpha_zero_and_image_edges():
    frame = np.zeros((4, 6, 3), np.uint8)
    labels = np.array([[1, 1, 0, 0, 3, 3]] * 4, np.uint8)
    only3 = figures.overlay(frame, labels, objects=[3], alpha=0.0, contour=False)
    assert (only3 == 0).all()
    outlined = figures.overlay(frame, labels, objects=[1], alpha=0.0)
    # the object's edge at the image border is not an outline; its inner edge (column 1) is
    assert (outlined[:, 0] == 0).all() and (outlined[:, 1] == davis_palette()[1]).all()


def test_overlay_checks_shapes_and_alpha():
    with pytest.raises(ValueError, match="must match"):
        figures.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        figures.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), alpha=2)


def test_saved_figures_are_png_and_pdf_with_reproducible_bytes(tmp_path):
    figures.use_style()
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    first = figures.save_figure(fig, tmp_path / "a" / "curve.png")
    a = [p.read_bytes() for p in first]
    second = figures.save_figure(fig, tmp_path / "a" / "curve")
    plt.close(fig)
    assert [p.suffix for p in first] == [".png", ".pdf"]
    assert a == [p.read_bytes() for p in second]
    assert b"/FontFile2" in a[1] and b"/Type3" not in a[1]  # TrueType (fonttype 42) embedded, not Type 3
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["curve.pdf", "curve.png"]


def test_point_labels_never_overlap_and_crowded_ones_are_reported():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 10], [0, 10], linestyle="none")
    try:
        fig.tight_layout()
        spread = [(x, x % 3, f"p{x}") for x in range(10)] + [(4, 1, "twin")]  # (4, 1) twice: one label
        crowd = [(5 + 0.01 * i, 5, f"crowd{i}") for i in range(40)]
        left_out = figures.label_points(ax, spread + [(4, 1, "p4")] + crowd)
        fig.canvas.draw()
        shown = [t.get_text() for t in ax.texts]
        boxes = [t.get_window_extent() for t in ax.texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert all(t.get_window_extent().x0 >= ax.get_window_extent().x0 for t in ax.texts)  # inside the axes
        assert "p4, twin" in shown and left_out and all(name.startswith("crowd") for name in left_out)
        assert sorted(shown + left_out) == sorted(["p4, twin"] + [f"p{x}" for x in range(10) if x != 4]
                                                  + [f"crowd{i}" for i in range(40)])
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------ tables
def _ablation_table():
    """A small chapter-05-style table: a (method, kernel) MultiIndex, an integer column, floats with a NaN."""
    index = pd.MultiIndex.from_tuples([("paper", 2), ("expand_labels", 3)], names=["method", "kernel"])
    return pd.DataFrame({"objects better": [3, 12], "J&F": [0.54, np.nan], "changed %": [0.123456789, 0.5]},
                        index=index)


def test_latex_table_is_booktabs_with_caption_label_and_fixed_decimals(tmp_path):
    csv, md, tex = figures.save_table(_ablation_table(), tmp_path / "kernel_ablation.tex",
                                      caption="Gap filling: J&F per kernel")
    assert [p.name for p in (csv, md, tex)] == ["kernel_ablation.csv", "kernel_ablation.md", "kernel_ablation.tex"]
    assert tex.read_text() == "\n".join([
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{Gap filling: J\&F per kernel}",
        r"\label{tab:kernel_ablation}",
        r"\begin{tabular}{lrrrr}",
        r"\toprule",
        r"method & kernel & objects better & J\&F & changed \% \\",
        r"\midrule",
        r"paper & 2 & 3 & 0.5400 & 0.1235 \\",
        r"expand\_labels & 3 & 12 &  & 0.5000 \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        ""])


def test_markdown_is_formatted_like_the_latex_and_the_csv_keeps_full_precision(tmp_path):
    csv, md, _ = figures.save_table(_ablation_table(), tmp_path / "kernel_ablation", float_format="{:.2f}")
    assert md.read_text() == "\n".join([
        "| method        |   kernel |   objects better |   J&F |   changed % |",
        "|:--------------|---------:|-----------------:|------:|------------:|",
        "| paper         |        2 |                3 |  0.54 |        0.12 |",
        "| expand_labels |        3 |               12 |       |        0.50 |",
        ""])
    assert csv.read_text() == ("method,kernel,objects better,J&F,changed %\n"
                               "paper,2,3,0.54,0.123456789\n"
                               "expand_labels,3,12,,0.5\n")
    back = pd.read_csv(csv)  # as report.ablation_tables reads it
    assert list(back.columns) == ["method", "kernel", "objects better", "J&F", "changed %"]
    pd.testing.assert_frame_equal(back.set_index(["method", "kernel"]), _ablation_table())


def _latex_rows(tex: str) -> tuple[str, list[str], list[str]]:
    """(column spec, header rows, body rows) of a save_table LaTeX file."""
    lines = tex.splitlines()
    spec = next(re.fullmatch(r"\\begin\{tabular\}\{([lr]+)\}", line)[1] for line in lines
                if line.startswith(r"\begin{tabular}"))
    top, mid, bottom = (lines.index(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    header = [line for line in lines[top + 1:mid] if not line.startswith(r"\cmidrule")]
    return spec, header, lines[mid + 1:bottom]


def _row_width(row: str) -> int:
    """The number of columns a LaTeX table row fills: its cells (split at unescaped &), multicolumns counted."""
    assert row.endswith(r" \\"), row
    cells = re.split(r"(?<!\\)&", row[:-3])
    return sum(int(m[1]) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", cell)) else 1 for cell in cells)


#: tables shaped like the chapters' (00: groupby and unnamed text index, 01: tuples, 04: named column
#: index, 06: column MultiIndex from a pivot, 07: a RangeIndex and None)
CHAPTER_TABLES = {
    "dataset_summary": (pd.DataFrame({"videos": [4, 2], "frames": [40, 20], "touching": [True, False]},
                                     index=pd.Index(["train", "valid"], name="split")),
                        ["split", "videos", "frames", "touching"], "lrrl"),
    "zero_motion_per_tag": (pd.DataFrame({"J&F": [0.2, 0.3], "objects": [5.0, 7.0]}, index=["occlusion", "all"]),
                            ["", "J&F", "objects"], "lrr"),
    "scale_finding": (pd.DataFrame({"frame size (H, W)": [(48, 64), (96, 128)], "SAM 2 input (px)": [256, 256]},
                                   index=["(a) original", "(b) frames resized"]),
                      ["", "frame size (H, W)", "SAM 2 input (px)"], "llr"),
    "sigmoid_grid": (pd.DataFrame([[0.5, 0.6], [0.55, np.nan]], index=pd.Index([20.0, 30.0], name="scale"),
                                  columns=pd.Index([-15.0, -10.0], name="bias")),
                     ["scale", "-15.0", "-10.0"], "rrr"),
    "fill_order": (pd.DataFrame([[0.43, 0.44, 0.47], [0.41, 0.40, np.nan]], index=pd.Index(["fvos7", "low3"], name="scales"),
                                columns=pd.MultiIndex.from_tuples([("hard", "after"), ("hard", "before"), ("soft", "after")],
                                                                  names=["fusion", "filling"])),
                   ["scales", "hard / after", "hard / before", "soft / after"], "lrrr"),
    "fvos_steps": (pd.DataFrame({"step": ["zero-motion baseline", "+ 7-scale voting"], "J": [0.2, None],
                                 "detail": ["first-frame mask_copied", None]}),
                   ["step", "J", "detail"], "lrl"),
}


@pytest.mark.parametrize("stem", CHAPTER_TABLES)
def test_every_chapter_table_shape_gives_consistent_files(tmp_path, stem):
    table, header, spec = CHAPTER_TABLES[stem]
    csv, md, tex = figures.save_table(table, tmp_path / stem)
    assert list(pd.read_csv(csv, keep_default_na=False).columns) == [h or "Unnamed: 0" for h in header]
    markdown = md.read_text().splitlines()
    assert [cell.strip() for cell in markdown[0].split("|")[1:-1]] == header and len(markdown) == 2 + len(table)
    text = tex.read_text()
    found_spec, header_rows, body = _latex_rows(text)
    assert found_spec == spec
    assert len(body) == len(table)
    assert all(_row_width(row) == len(spec) for row in header_rows + body)
    for shown in (text, md.read_text()):
        assert "nan" not in shown.lower() and "None" not in shown and "Unnamed" not in shown
    assert rf"\label{{tab:{stem}}}" in text


def test_default_caption_is_the_file_stem_in_words(tmp_path):
    tex = figures.save_table(_ablation_table(), tmp_path / "jf_per_epoch")[2].read_text()
    assert r"\caption{Jf per epoch}" in tex and r"\label{tab:jf_per_epoch}" in tex


def test_latex_special_characters_are_escaped_in_cells_and_headers(tmp_path):
    table = pd.DataFrame({"a_b & #": ["50% of $x$ {y} ~z^2 \\"]})
    tex = figures.save_table(table, tmp_path / "special")[2].read_text()
    assert r"a\_b \& \# \\" in tex
    assert (r"50\% of \$x\$ \{y\} \textasciitilde{}z\textasciicircum{}2 \textbackslash{} \\") in tex


def test_two_header_rows_for_a_column_multiindex(tmp_path):
    tex = figures.save_table(CHAPTER_TABLES["fill_order"][0], tmp_path / "fill_order")[2].read_text()
    assert "\n".join([r"\toprule",
                      r"fusion & \multicolumn{2}{c}{hard} & soft \\",
                      r"\cmidrule(lr){2-3}",
                      r"filling & after & before & after \\",
                      r"scales &  &  &  \\",
                      r"\midrule",
                      r"fvos7 & 0.4300 & 0.4400 & 0.4700 \\",
                      r"low3 & 0.4100 & 0.4000 &  \\"]) in tex


def test_bad_tables_and_names_are_errors_naming_the_file(tmp_path):
    with pytest.raises(TypeError, match="bad_input.*DataFrame"):
        figures.save_table(pd.Series([1.0]), tmp_path / "bad_input")
    with pytest.raises(ValueError, match="my table.*LaTeX label"):
        figures.save_table(_ablation_table(), tmp_path / "my table")
    with pytest.raises(ValueError, match="empty.*no columns"):
        figures.save_table(pd.DataFrame(), tmp_path / "empty")
    with pytest.raises(ValueError, match="decimals.*float_format"):
        figures.save_table(_ablation_table(), tmp_path / "decimals", float_format="{:.4d}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex on this machine")
def test_latex_table_compiles(tmp_path):
    for stem, (table, _, _) in CHAPTER_TABLES.items():
        figures.save_table(table, tmp_path / stem)
    figures.save_table(_ablation_table(), tmp_path / "kernel_ablation")
    inputs = "\n".join(rf"\input{{{p.name}}}" for p in sorted(tmp_path.glob("*.tex")))
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                                        f"\\begin{{document}}\n{inputs}\n\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 0


def test_a_value_that_rounds_to_zero_is_written_without_a_sign(tmp_path):
    table = pd.DataFrame({"dJ&F": [-0.00004, -0.00006, 0.00004, -0.0]})
    _, md, tex = figures.save_table(table, tmp_path / "signs")
    assert [line.strip("| ") for line in md.read_text().splitlines()[2:]] == ["0.0000", "-0.0001", "0.0000", "0.0000"]
    assert r"-0.0000" not in tex.read_text() and "-0.0001" in tex.read_text()


def test_counts_stored_as_floats_are_written_as_integers(tmp_path):
    # a transposed per-tag table: the object counts became floats beside the scores
    table = pd.DataFrame({"crowd": {"J&F": 0.2197, "objects": 67}, "all": {"J&F": 0.25, "objects": 104}}).T
    table["changed"] = [0.0, 1.0]  # whole numbers, but fractions (none beyond 1): stay fractions
    _, md, tex = figures.save_table(table, tmp_path / "per_tag")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in md.read_text().splitlines()[2:]]
    assert rows == [["crowd", "0.2197", "67", "0.0000"], ["all", "0.2500", "104", "1.0000"]]
    assert r"crowd & 0.2197 & 67 & 0.0000 \\" in tex.read_text()


def test_the_tracking_figure_scores_each_shown_frame_and_keys_the_colours():
    import matplotlib.pyplot as plt

    rgb = [np.zeros((10, 10, 3), np.uint8)] * 2
    truth = [np.zeros((10, 10), np.uint8) for _ in range(2)]
    truth[0][:5, :5], truth[1][:5, :5], truth[1][5:, 5:] = 1, 1, 2
    predicted = [t.copy() for t in truth]
    predicted[1][5:, 5:] = 0  # object 2 lost in the second frame
    fig = figures.tracking_figure(rgb, predicted, truth, [0, 9])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["frame 0, J 1.00", "frame 9, J 0.50"]
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["ground truth", "prediction"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["object 1"]
    plt.close(fig)
    union = [(t > 0).astype(np.uint8) for t in truth]  # DAVIS 2016: all objects as one mask
    fig = figures.tracking_figure(rgb, predicted, union, [0, 9], union=True)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["frame 0, J 1.00", "frame 9, J 0.50"]
    assert "all objects as one mask" in fig.legends[0].get_title().get_text()
    plt.close(fig)
    fig = figures.tracking_figure(rgb, predicted, None, [0, 9])  # no truth: the prediction alone
    assert [ax.get_title() for ax in fig.axes] == ["frame 0", "frame 9"]
    plt.close(fig)

"""Tables for machines and readers: CSV at full precision; Markdown and LaTeX with scores in percent, the
LaTeX laid out to fit a one-column article and a two-column page (compiled by TeX Live in test_latex.py)."""
import re

import numpy as np
import pandas as pd
import pytest

from fvos_utils.metrics import percent
from fvos_utils.run import tables


def _ablation_table():
    """A small chapter-05-style table: a (method, kernel) MultiIndex, an integer column, floats with a NaN."""
    index = pd.MultiIndex.from_tuples([("paper", 2), ("expand_labels", 3)], names=["method", "kernel"])
    return pd.DataFrame({"objects better": [3, 12], "J&F": [0.54, np.nan], "changed %": [0.123456789, 0.5]},
                        index=index)


def test_latex_table_is_booktabs_with_caption_label_and_fixed_decimals(tmp_path):
    csv, md, tex = tables.save_table(_ablation_table(), tmp_path / "kernel_ablation.tex",
                                      caption="Gap filling: J&F per kernel")
    assert [p.name for p in (csv, md, tex)] == ["kernel_ablation.csv", "kernel_ablation.md", "kernel_ablation.tex"]
    assert tex.read_text() == "\n".join([
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{Gap filling: J\&F per kernel}",
        r"\label{tab:kernel_ablation}",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        r"\begin{tabular}{lrrrr}",
        r"\toprule",
        r"method & kernel & \begin{tabular}[b]{@{}r@{}}objects\\better\end{tabular} & J\&F & changed \% \\",
        r"\midrule",
        r"paper & 2 & 3 & 54.00 & 0.1235 \\",  # J&F in percent; other fractions with float_format
        r"expand\_labels & 3 & 12 &  & 0.5000 \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        ""])


def test_markdown_is_formatted_like_the_latex_and_the_csv_keeps_full_precision(tmp_path):
    csv, md, _ = tables.save_table(_ablation_table(), tmp_path / "kernel_ablation", float_format="{:.2f}")
    assert md.read_text() == "\n".join([
        "| method        |   kernel |   objects better |   J&F |   changed % |",
        "|:--------------|---------:|-----------------:|------:|------------:|",
        "| paper         |        2 |                3 | 54.00 |        0.12 |",
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
    spec = next(re.fullmatch(r"\\begin\{tabularx?\}(?:\{\\linewidth\})?\{(.+)\}", line)[1] for line in lines
                if line.startswith(r"\begin{tabular"))
    spec = spec.replace(r">{\raggedright\arraybackslash}X", "X")
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
    csv, md, tex = tables.save_table(table, tmp_path / stem)
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
    tex = tables.save_table(_ablation_table(), tmp_path / "jf_per_epoch")[2].read_text()
    assert r"\caption{Jf per epoch}" in tex and r"\label{tab:jf_per_epoch}" in tex


def test_latex_special_characters_are_escaped_in_cells_and_headers(tmp_path):
    table = pd.DataFrame({"a_b & #": ["50% of $x$ {y} ~z^2 \\"]})
    tex = tables.save_table(table, tmp_path / "special")[2].read_text()
    assert r"a\_b \& \# \\" in tex
    assert (r"50\% of \$x\$ \{y\} \textasciitilde{}z\textasciicircum{}2 \textbackslash{} \\") in tex


def test_two_header_rows_for_a_column_multiindex(tmp_path):
    tex = tables.save_table(CHAPTER_TABLES["fill_order"][0], tmp_path / "fill_order", percent=True)[2].read_text()
    assert "\n".join([r"\toprule",
                      r"fusion & \multicolumn{2}{c}{hard} & soft \\",
                      r"\cmidrule(lr){2-3}",
                      r"filling & after & before & after \\",
                      r"scales &  &  &  \\",
                      r"\midrule",
                      r"fvos7 & 43.00 & 44.00 & 47.00 \\",
                      r"low3 & 41.00 & 40.00 &  \\"]) in tex


def test_bad_tables_and_names_are_errors_naming_the_file(tmp_path):
    with pytest.raises(TypeError, match="bad_input.*DataFrame"):
        tables.save_table(pd.Series([1.0]), tmp_path / "bad_input")
    with pytest.raises(ValueError, match="my table.*LaTeX label"):
        tables.save_table(_ablation_table(), tmp_path / "my table")
    with pytest.raises(ValueError, match="empty.*no columns"):
        tables.save_table(pd.DataFrame(), tmp_path / "empty")
    with pytest.raises(ValueError, match="decimals.*float_format"):
        tables.save_table(_ablation_table(), tmp_path / "decimals", float_format="{:.4d}")
    assert list(tmp_path.iterdir()) == []


def test_a_value_that_rounds_to_zero_is_written_without_a_sign(tmp_path):
    table = pd.DataFrame({"dJ&F": [-0.00004, -0.00006, 0.00004, -0.0], "s per frame": [-0.00004, -0.00006, 0.0, 0.0]})
    _, md, tex = tables.save_table(table, tmp_path / "signs")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in md.read_text().splitlines()[2:]]
    assert rows == [["0.00", "0.0000"], ["-0.01", "-0.0001"], ["0.00", "0.0000"], ["0.00", "0.0000"]]
    assert r"-0.0000" not in tex.read_text() and r"$-$0.01 & $-$0.0001" in tex.read_text()  # a minus sign


def test_counts_stored_as_floats_are_written_as_integers(tmp_path):
    # a transposed per-tag table: the object counts became floats beside the scores
    table = pd.DataFrame({"crowd": {"J&F": 0.2197, "objects": 67}, "all": {"J&F": 0.25, "objects": 104}}).T
    table["changed"] = [0.0, 1.0]  # whole numbers, but fractions (none beyond 1): stay fractions
    _, md, tex = tables.save_table(table, tmp_path / "per_tag")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in md.read_text().splitlines()[2:]]
    assert rows == [["crowd", "21.97", "67", "0.0000"], ["all", "25.00", "104", "1.0000"]]
    assert r"crowd & 21.97 & 67 & 0.0000 \\" in tex.read_text()


# ------------------------------------------------------------------------------------------ percent
def _md_row(md, row: int) -> list[str]:
    """The cells of a Markdown table's body row, stripped."""
    return [cell.strip() for cell in md.read_text().splitlines()[2 + row].split("|")[1:-1]]


def test_scores_are_percent_for_readers_and_fractions_for_machines(tmp_path):
    table = pd.DataFrame({"claim": ["(1) a"], "J&F": [0.659912], "baseline J&F": [0.6472], "dJ&F": [-0.0045],
                          "CI low": [-0.0112], "CI high": [0.00296], "resolvable": [0.0171], "J&F touching": [0.5],
                          "mean dJ": [0.001], "s per frame": [0.0466], "videos": [24]})
    csv, md, tex = tables.save_table(table, tmp_path / "scores")
    assert _md_row(md, 0) == ["(1) a", "65.99", "64.72", "-0.45", "-1.12", "0.30", "1.71", "50.00", "0.10", "0.0466", "24"]
    body = [line for line in tex.read_text().splitlines() if line.startswith("(1) a & ")]  # the table is split
    assert " & ".join(cell for line in body for cell in line[:-3].split(" & ")[1:]) == (
        "65.99 & 64.72 & $-$0.45 & $-$1.12 & 0.30 & 1.71 & 50.00 & 0.10 & 0.0466 & 24")
    assert pd.read_csv(csv).iloc[0].to_dict() == table.iloc[0].to_dict()  # the fractions, as recorded


def test_the_headers_that_name_a_score():
    named = ["J", "F", "J&F", "dJ&F", "dJ", "dF", "J&F touching", "J&F hard", "baseline J&F", "mean dJ", "mean dF",
             "CI low", "CI high", "resolvable"]
    others = ["frames", "videos", "s per frame", "Fusion", "FPS", "objects", "contact as gap", "changed px", "gap 1 px",
              "J&Fx", "scale"]
    assert [h for h in named if not percent.is_score_header(h)] == []
    assert [h for h in others if percent.is_score_header(h)] == []
    assert [percent.percent(v) for v in (0.76812, 0.7681499, -0.00004, 1.0)] == ["76.81", "76.81", "0.00", "100.00"]


def test_other_columns_in_percent_when_named_and_a_wrong_name_refused(tmp_path):
    table = pd.DataFrame({"changed px": [0.0123], "gap": [-0.18], "s per frame": [0.5], "videos": [3.0]})
    _, md, _ = tables.save_table(table, tmp_path / "named", percent=["changed px", "gap"])
    assert _md_row(md, 0) == ["1.23", "-18.00", "0.5000", "3"]
    _, md, _ = tables.save_table(table, tmp_path / "every", percent=True)  # counts stay counts
    assert _md_row(md, 0) == ["1.23", "-18.00", "50.00", "3"]
    with pytest.raises(ValueError, match=r"wrong_name: percent= names \['change px'\]"):
        tables.save_table(table, tmp_path / "wrong_name", percent=["change px"])
    assert not list(tmp_path.glob("wrong_name*"))


def test_markdown_for_a_page_is_the_saved_markdown_and_compact_drops_the_padding(tmp_path):
    table = pd.DataFrame({"claim": ["a long claim | with a bar", "b"], "dJ&F": [0.01234, None],
                          "videos": pd.array([24, None], dtype="Int64")})  # a claim not run has no videos
    _, md, _ = tables.save_table(table, tmp_path / "claims")
    assert tables.markdown_table(table) + "\n" == md.read_text()
    assert tables.markdown_table(table, compact=True).splitlines() == [
        "| claim | dJ&F | videos |", "| --- | ---: | ---: |", "| a long claim \\| with a bar | 1.23 | 24 |", "| b |  |  |"]


# ------------------------------------------------------------------------------------------ layout
def _wide_tables() -> dict[str, pd.DataFrame]:
    """Tables as wide as the run's widest: the scorecard (13 columns, long claim text), chapter 05's
    kernel ablation (16 columns under a 3-level index) and the step-by-step ablation (long settings)."""
    rng = np.random.default_rng(0)
    claims = ["(1) Two-stage fine-tuning beats the starting model", "(6b) Voting over the 7 scales beats scale 1 (shown beside claim 6)"]
    scorecard = pd.DataFrame({
        "claim": claims, "paper section": ["2.1", "2.2, Figure 2"],
        "treatment": ["the best fine-tuned epoch (stage 1, epoch 2)", "the full recipe (the starting weights, sigmoid 30 / -15, no filling, scale 1.75)"],
        "baseline": ["the starting model", "the best single scale on valid, 1.75"],
        "J&F": [0.6599, 0.7424], "baseline J&F": [0.6472, 0.6472], "dJ&F": [0.0127, -0.0953],
        "CI low": [-0.0045, -0.1235], "CI high": [0.0296, 0.0674], "split": ["test", "valid (chosen here)"],
        "videos": [24, 24], "verdict": ["not resolved", "contradicted"], "resolvable": [0.0171, 0.028]})
    index = pd.MultiIndex.from_tuples([("paper", "square", 0), ("expand_labels", "circle", 7)], names=["method", "shape", "kernel"])
    columns = ["J&F", "J", "F", "J&F touching", "dJ&F", "CI low", "CI high", "mean dJ", "mean dF", "objects better",
               "objects worse", "contact as gap", "changed px"]
    kernels = pd.DataFrame(-rng.random((2, len(columns))), index=index, columns=columns)
    kernels[["objects better", "objects worse"]] = [[0, 112], [31, 2]]
    steps = pd.DataFrame({"recipe": ["as published"] * 2, "reading": ["leave-one-out", "ladder"], "step": ["weights", "vote"],
                          "value": ["the weights: stage 1, epoch 2", "the vote over 7 scales"],
                          "setting scored": ["the starting weights, sigmoid 30 / -15, square kernel 2, 7 scales (1, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75) hard-voted"] * 2,
                          "J&F": [0.7365, 0.7316], "dJ&F": [-0.0049, 0.0004], "CI low": [-0.0223, -0.0142],
                          "CI high": [0.0147, 0.0143], "interval": ["within noise", "within noise"], "videos": [24, 24]})
    return {"claims_scorecard": scorecard, "kernel_ablation": kernels, "ablation": steps}


def test_a_narrow_table_takes_a_column_and_a_wider_one_the_page():
    small = pd.DataFrame({"J&F": [0.5], "J": [0.4], "F": [0.6]}, index=pd.Index(["all"], name="tag"))
    wide = pd.DataFrame({f"J&F {k}": [0.5] for k in ("one", "two", "three", "four", "five", "six", "seven")})
    assert tables._latex(tables._columns_shown(small, "{:.4f}", (), "t"), [None], "c", "tab:t").startswith(r"\begin{table}")
    assert tables._latex(tables._columns_shown(wide, "{:.4f}", (), "t"), [None], "c", "tab:t").startswith(r"\begin{table*}")


@pytest.mark.parametrize("stem", ["claims_scorecard", "kernel_ablation"])
def test_a_table_wider_than_a_page_is_split_into_parts_that_repeat_its_leading_columns(tmp_path, stem):
    table = _wide_tables()[stem]
    csv, md, tex = tables.save_table(table, tmp_path / stem, caption="Wide")
    text = tex.read_text()
    parts = re.split(r"\\end\{table\*?\}", text)[:-1]
    assert len(parts) >= 2 and text.count(r"\begin{table") == len(parts)
    labels = re.findall(r"\\label\{([^}]+)\}", text)
    assert labels == [f"tab:{stem}"] + [f"tab:{stem}-{n}" for n in range(2, len(parts) + 1)]
    assert re.findall(r"\\caption\{([^}]+)\}", text) == [f"Wide (part {n} of {len(parts)})" for n in range(1, len(parts) + 1)]
    keys = 3 if stem == "kernel_ablation" else 1  # the index's levels, else the first column
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in md.read_text().splitlines()[2:]]
    header = [cell.strip() for cell in md.read_text().splitlines()[0].split("|")[1:-1]]
    seen = []
    for part in parts:
        spec, header_rows, body = _latex_rows(part)
        assert len(body) == len(table) and all(_row_width(row) == len(spec) for row in header_rows + body)
        cells = [row[:-3].split(" & ") for row in body]
        assert [row[:keys] for row in cells] == [[tables.latex_escape(c) for c in row[:keys]] for row in rows]
        seen += [[row[i] for row in cells] for i in range(keys, len(spec))]
    # every other column in exactly one part, in order
    expected = [[tables._latex_cell(row[i], True) for row in rows] for i in range(keys, len(header))]
    assert seen == expected

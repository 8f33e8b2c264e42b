"""The kit's LaTeX compiled by a real TeX Live (:mod:`texlive`: Debian's packages, installed by the tests as
root in CI): every table shape of the chapters and the run's widest tables fit a one-column article and a
two-column page without an overfull line, and results.tex gives every value it names."""
import pandas as pd
import texlive  # tests/
from test_tables import CHAPTER_TABLES, _wide_tables  # tests/

from fvos_utils.run import tables
from fvos_utils.studies import report


def test_tables_fit_a_one_column_article_and_a_two_column_page_in_real_latex(tmp_path):
    """Every chapter's table shape and the run's widest tables, compiled by pdflatex on both pages: no error,
    no overfull line. Before the layout (one tabular each, default font) the scorecard alone ran 919 pt over."""
    texlive.pdflatex_or_skip()
    written = []
    for stem, (table, _, _) in CHAPTER_TABLES.items():
        written.append(tables.save_table(table, tmp_path / "tables" / stem)[2])
    for stem, table in _wide_tables().items():
        written.append(tables.save_table(table, tmp_path / "tables" / stem, caption=f"The {stem} table")[2])
    special = pd.DataFrame({"a<b|c>": ["x_y & 50% #1 ~ ^ {} $ \\"]})  # every character LaTeX treats apart
    written.append(tables.save_table(special, tmp_path / "tables" / "special")[2])
    texlive.check_tables(written, tmp_path / "latex")


def test_results_tex_names_every_number_of_the_scorecard_and_the_ablation_and_latex_prints_them(tmp_path):
    texlive.pdflatex_or_skip()
    wide = _wide_tables()
    path = report.write_results_tex("r", wide["claims_scorecard"], wide["ablation"], tmp_path / "results.tex")
    values = report.results_values(wide["claims_scorecard"], wide["ablation"])
    printed = texlive.check_tables([], tmp_path / "latex", values=path)
    assert printed == {name: tables._latex_cell(text, True) for name, text in values.items()}
    assert printed["claim1.test.dJF"] == "1.27" and printed["claim6b.valid.CIlow"] == "$-$12.35"
    assert printed["ablation.as-published.leave-one-out.weights.dJF"] == "$-$0.49"

"""The report reads every number from chapter files; tables, leaderboards and the README block."""
import json

import pandas as pd
import pytest

from fvos_utils.base import io
from fvos_utils.run import figures
from fvos_utils.studies import claims, report


def _scores(jf, j=None, f=None):
    return {"J&F": jf, "J": j if j is not None else jf - 0.01, "F": f if f is not None else jf + 0.01}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FVOS_ROOT", str(tmp_path))
    run = tmp_path / "outputs" / "r"
    chapters = {
        "00_data_and_metrics": {"zero_motion": {"global": _scores(0.2)}},
        "03_epoch_selection": {"best": {**_scores(0.7), "stage": 2, "epoch": 3}},
        "05_morphology_ablation": {"videos": ["a", "b"], "parameters": {"kernel_sizes": [0, 2, 5]},
                                   "best_paper": {"method": "paper", "shape": "square", "kernel": 5},
                                   "variants": {"paper-square-k0": _scores(0.5), "paper-square-k2": _scores(0.51),
                                                "paper-square-k5": _scores(0.55)}},
    }
    for chapter, metrics in chapters.items():
        io.write_json(run / chapter / "metrics.json", metrics)
    return run


def test_leaderboards_are_the_papers_rows_only_and_the_run_stands_apart():
    paper = json.loads(report.PAPER_RESULTS.read_text())
    val = report.leaderboard_table("mose_val")
    assert val["method"].tolist() == sorted(paper["mose_val"], key=lambda m: -paper["mose_val"][m]["J&F"])
    assert val["J&F"].is_monotonic_decreasing
    assert val.loc[0, "method"] == "Ours (FVOS)" and val.loc[0, "J&F"] == pytest.approx(0.7681)
    test = report.leaderboard_table("mose_test")
    assert test.loc[2, "method"] == "Ours (FVOS)" and test.loc[2, "J&F"] == pytest.approx(0.8392)
    for split in ("mose_val", "mose_test"):  # the paper's J&F is the mean of its J and F
        for name, s in paper[split].items():
            assert s["J&F"] == pytest.approx((s["J"] + s["F"]) / 2, abs=6e-5), name
    beside = report.run_beside_table({"J": 0.70, "F": 0.79, "J&F": 0.745}, label="us", measured_on="synthetic valid")
    assert beside.to_dict("records") == [{"method": "us", "measured on": "synthetic valid", "J": 0.70, "F": 0.79,
                                          "J&F": 0.745}]


def test_markdown_formats_fractions_and_blanks(tmp_path):
    md = report.to_markdown(pd.DataFrame([{"a": 1, "b": 0.123456, "c": float("nan"), "d": "x"}]))
    assert md.splitlines()[2].split("|")[1:-1] == [" 1   ", " 0.1235 ", "     ", " x   "]


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold\n{report.README_END}\nafter\n")
    report.update_readme("new block\n", readme=readme)
    text = readme.read_text()
    assert text == f"intro\n{report.README_BEGIN}\nnew block\n{report.README_END}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(io.DataError, match="no results block"):
        report.update_readme("x", readme=readme)


def test_readme_results_are_the_run_s_scorecard_with_the_commit_it_ran_at(run_dir, capsys):
    readme = run_dir.parents[1] / "README.md"  # the project root is $FVOS_ROOT
    readme.write_text(f"intro\n{report.README_BEGIN}\nold\n{report.README_END}\n")
    for metrics_file in run_dir.glob("*/metrics.json"):
        io.write_json(metrics_file, {**io.read_json(metrics_file), "environment": {"git_commit": "abc123"}})
    objects = [{"video": v, "object": 1, "J": j, "F": j} for v, j in (("a", 0.5), ("b", 0.6))]
    better = [{**o, "J": o["J"] + 0.1, "F": o["F"] + 0.1} for o in objects]
    fill = claims.compare("fill", "square kernel 2", {"J&F": 0.65, "objects": better}, "no filling",
                          {"J&F": 0.55, "objects": objects}, split="valid")
    claims.record("r", "05_morphology_ablation", [fill])
    recipe = claims.compare("recipe", "the full recipe", {"J&F": 0.65, "objects": better}, "the starting model",
                            {"J&F": 0.55, "objects": objects}, split="test")
    claims.record("r", "06_multiscale_fusion", [recipe])
    assert report.main(["--run", "r"]) == 0  # prints the block, writes nothing
    assert "Gap filling with a square kernel of 2" in capsys.readouterr().out and "old" in readme.read_text()
    (run_dir / "07_report").mkdir()
    (run_dir / "07_report" / "claims_scorecard.png").write_bytes(b"png bytes")
    assert report.main(["--run", "r", "--update-readme"]) == 0
    assert (readme.parent / report.README_FIGURE).read_bytes() == b"png bytes"  # the figure the README shows
    block = readme.read_text().split(report.README_BEGIN)[1].split(report.README_END)[0]
    assert f"]({report.README_FIGURE.as_posix()})" in block
    assert claims.in_words("r", claims.read_run("r")) in " ".join(block.split())  # the verdict in words, wrapped
    assert max(len(line) for line in block.splitlines() if not line.startswith("|")) <= 110
    assert " ".join(block.split()).startswith("Generated by `fvos report --run r --update-readme` "
                                              "(`make readme-results` for the demo) from run `r`, whose chapters "
                                              "ran at git abc123.")
    header = next(line for line in block.splitlines() if line.startswith("| claim"))
    assert [cell.strip() for cell in header.split("|")[1:-1]] == report.README_COLUMNS
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in block.splitlines()
            if line.startswith("| (")}
    assert rows["(4) Gap filling with a square kernel of 2 beats no filling"][-1] == claims.SUPPORTED
    assert rows["(1) Two-stage fine-tuning beats the starting model"][-1] == claims.NOT_RUN
    assert "Final numbers, held-out test split" in block and "the full recipe" in block and "old" not in block
    assert report.main(["--run", "never-ran", "--update-readme"]) == 1
    assert capsys.readouterr().err == (f"error: {run_dir.parent / 'never-ran'}: no chapter of this run has written "
                                       "a metrics.json (run the pipeline first, e.g. make demo)\n")


def test_figure_index_captions(run_dir):
    (run_dir / "00_data_and_metrics" / "hard_cases.png").write_bytes(b"png")
    (run_dir / "05_morphology_ablation" / "something_new.png").write_bytes(b"png")
    index = report.figure_index("r")
    assert [p.name for p, _ in index] == ["hard_cases.png", "something_new.png"]
    assert index[0][1].startswith("00_data_and_metrics: Synthetic mini-MOSE")
    assert index[1][1] == "05_morphology_ablation: something new"


def test_ablation_tables_read_back_what_save_table_wrote(run_dir):
    """Index levels come back as ordinary columns, a column MultiIndex (chapter 06's fill order) as one
    header row, missing values as NaN."""
    columns = pd.MultiIndex.from_tuples([("hard", "after"), ("hard", "before"), ("soft", "after")],
                                        names=["fusion", "filling"])
    order = pd.DataFrame([[0.43, 0.44, 0.47], [0.41, 0.40, float("nan")]], columns=columns,
                         index=pd.Index(["fvos7", "low3"], name="scales"))
    epochs = pd.DataFrame({"J&F": [0.5, 0.6]}, index=pd.MultiIndex.from_tuples([(1, 1), (2, 1)], names=["stage", "epoch"]))
    figures.save_table(order, run_dir / "06_multiscale_fusion" / "fill_order")
    figures.save_table(epochs, run_dir / "03_epoch_selection" / "jf_per_epoch")
    (epoch_title, epoch_table), (order_title, order_table) = report.ablation_tables("r")
    assert epoch_title.startswith("Epoch selection") and order_title.startswith("Fusion: gap filling before")
    assert epoch_table.to_dict(orient="list") == {"stage": [1, 2], "epoch": [1, 1], "J&F": [0.5, 0.6]}
    assert list(order_table.columns) == ["scales", "hard / after", "hard / before", "soft / after"]
    assert order_table["scales"].tolist() == ["fvos7", "low3"] and order_table["soft / after"].isna().tolist() == [False, True]
    assert report.to_markdown(order_table).splitlines()[3] == "| low3     | 0.4100         | 0.4000          |                |"


def test_compact_markdown_is_the_same_table_without_padding():
    table = pd.DataFrame({"claim": ["a long claim | with a bar", "b"], "dJ&F": [0.01234, None],
                          "videos": pd.array([24, None], dtype="Int64")})  # a claim not run has no videos
    assert report.to_compact_markdown(table).splitlines() == [
        "| claim | dJ&F | videos |", "| --- | --- | --- |", "| a long claim \\| with a bar | 0.0123 | 24 |", "| b |  |  |"]

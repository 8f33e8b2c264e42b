"""The report reads every number from chapter files; tables, leaderboards and the README block."""
import json

import pandas as pd
import pytest

from fvos_utils import figures, io, report


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


def test_steps_table_reads_each_chapter_and_skips_missing_ones(run_dir):
    metrics = report.load_metrics("r")
    assert list(metrics) == ["00_data_and_metrics", "03_epoch_selection", "05_morphology_ablation"]
    steps = report.steps_table(metrics)
    assert steps["J&F"].tolist() == [0.2, 0.7, 0.5, 0.51, 0.55]
    assert steps["chapter"].tolist() == ["00", "03", "05", "05", "05"]
    assert steps.loc[1, "detail"] == "stage 2, epoch 3" and steps.loc[4, "scored on"] == "2 valid videos"
    assert "kernel 5" in steps.loc[4, "step"]


def test_steps_carry_the_chapters_intervals_and_say_within_noise(run_dir):
    metrics = report.load_metrics("r")
    variants = metrics["05_morphology_ablation"]["variants"]
    variants["paper-square-k0"].update({"dJ&F": 0.0, "CI low": 0.0, "CI high": 0.0})
    variants["paper-square-k2"].update({"dJ&F": 0.01, "CI low": -0.004, "CI high": 0.02})
    variants["paper-square-k5"].update({"dJ&F": 0.05, "CI low": 0.03, "CI high": 0.07})
    steps = report.steps_table(metrics)
    assert steps[["dJ&F", "CI low", "CI high"]].iloc[3:].values.tolist() == [[0.01, -0.004, 0.02], [0.05, 0.03, 0.07]]
    assert steps["compared with"].iloc[2:].tolist() == [report.REFERENCE, "no filling (within noise)", "no filling"]
    assert steps[["dJ&F", "compared with"]].iloc[:2].isna().all().all()  # no paired comparison recorded there
    assert list(steps.reindex(columns=report.README_COLUMNS).columns) == report.README_COLUMNS


def test_fine_tuning_and_sigmoid_rows_carry_their_changes_and_the_test_split_comes_last(run_dir):
    metrics = report.load_metrics("r")
    metrics["02_finetune"] = {"start": _scores(0.6), "starting_weights": "/x/fvos_tiny.pt"}
    metrics["03_epoch_selection"].update({
        "best_change": {"dJ&F": 0.1, "CI low": 0.05, "CI high": 0.15},
        "test": {"videos": ["t1", "t2", "t3"], "starting model": _scores(0.55), "best epoch": _scores(0.56),
                 "dJ&F": 0.01, "CI low": -0.01, "CI high": 0.03}})
    metrics["04_sigmoid_search"] = {"best": {**_scores(0.72), "scale": 30.0, "bias": -10.0},
                                    "best_change": {"dJ&F": 0.02, "CI low": 0.001, "CI high": 0.04}}
    steps = report.steps_table(metrics).set_index("step")
    assert steps.loc["pretrained model (before fine-tuning)", "compared with"] == report.REFERENCE
    assert steps.loc["best fine-tuned epoch", ["dJ&F", "compared with"]].tolist() == [0.1, "the pretrained model"]
    assert steps.loc["+ memory-sigmoid search", "compared with"] == "the default 20 / -10"
    test_rows = steps.iloc[-2:]
    assert test_rows.index.tolist() == ["pretrained model, held-out test split", "best fine-tuned epoch, held-out test split"]
    assert test_rows["J&F"].tolist() == [0.55, 0.56] and set(test_rows["scored on"]) == {"3 held-out test videos"}
    assert test_rows["compared with"].tolist() == [report.REFERENCE, "the pretrained model (within noise)"]
    assert test_rows["detail"].iloc[1] == "stage 2, epoch 3 (picked on valid)"


def test_best_kernel_equal_to_the_papers_is_listed_once(run_dir):
    metrics = report.load_metrics("r")
    metrics["05_morphology_ablation"]["best_paper"] = {"method": "paper", "shape": "square", "kernel": 2}
    steps = report.steps_table(metrics)
    assert steps["J&F"].tolist() == [0.2, 0.7, 0.5, 0.51]
    assert steps["step"].iloc[-1] == ("+ gap filling, square kernel 2 (the paper's choice), also the best here: "
                                      "square kernel 2")
    metrics["05_morphology_ablation"]["best_paper"] = {"method": "paper", "shape": "square", "kernel": 0}
    steps = report.steps_table(metrics)
    assert steps["J&F"].tolist() == [0.2, 0.7, 0.5, 0.51]
    assert steps["step"].iloc[2].endswith("also the best here: square kernel 0")
    assert steps["compared with"].iloc[2] == report.REFERENCE


def test_a_result_the_chapter_should_have_is_an_error_naming_it(run_dir):
    metrics = report.load_metrics("r")
    del metrics["05_morphology_ablation"]["variants"]["paper-square-k2"]
    with pytest.raises(KeyError, match="05_morphology_ablation/metrics.json has no result 'paper-square-k2'"):
        report.steps_table(metrics)
    metrics["05_morphology_ablation"]["parameters"]["kernel_sizes"] = [0, 5]  # k 2 was not asked for: no row
    assert report.steps_table(metrics)["J&F"].tolist() == [0.2, 0.7, 0.5, 0.55]


def test_fusion_rows_are_built_from_the_variant_names(run_dir):
    from fvos_utils.fusion_ablation import FusionVariant

    metrics = report.load_metrics("r")
    fused = {FusionVariant("single", "identity", "hard").name: _scores(0.4),
             **{FusionVariant("fvos7", "identity", "hard", f).name: _scores(j) for f, j in
                (("none", 0.41), ("before", 0.42), ("after", 0.43))},
             FusionVariant("low3", "hflip", "soft").name: _scores(0.45)}
    metrics["06_multiscale_fusion"] = {"videos": ["a"], "fused": fused,
                                       "parameters": {"scales": [1.0 + 0.125 * k for k in range(7)],
                                                      "transforms": ["identity", "hflip"]},
                                       "best_fused": {"variant": "low3-hflip-soft-fill_none", "J&F": 0.45}}
    rows = report.steps_table(metrics).iloc[5:]
    assert rows["J&F"].tolist() == [0.4, 0.43, 0.42, 0.41, 0.45]
    assert rows["detail"].tolist() == ["scale 1.0", "gap filling: after", "gap filling: before", "gap filling: none",
                                       "low3-hflip-soft"]
    del metrics["06_multiscale_fusion"]["fused"]["fvos7-identity-hard-fill_before"]
    with pytest.raises(KeyError, match="fvos7-identity-hard-fill_before"):
        report.steps_table(metrics)


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
    report.update_readme(pd.DataFrame([{"step": "s", "J&F": 0.5}]), readme=readme, note="note")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "old" not in text
    assert "| s      | 0.5000 |" in text and "note" in text
    readme.write_text("no markers")
    with pytest.raises(io.DataError, match="no results block"):
        report.update_readme(pd.DataFrame([{"a": 1}]), readme=readme)


def test_readme_results_are_a_finished_run_s_steps_with_the_commit_it_ran_at(run_dir, capsys):
    readme = run_dir.parents[1] / "README.md"  # the project root is $FVOS_ROOT
    readme.write_text(f"intro\n{report.README_BEGIN}\nold\n{report.README_END}\n")
    for metrics_file in run_dir.glob("*/metrics.json"):
        io.write_json(metrics_file, {**io.read_json(metrics_file), "environment": {"git_commit": "abc123"}})
    assert report.main(["--run", "r"]) == 0  # prints the table, writes nothing
    assert "stage 2, epoch 3" in capsys.readouterr().out and "old" in readme.read_text()
    assert report.main(["--run", "r", "--update-readme"]) == 0
    block = readme.read_text().split(report.README_BEGIN)[1].split(report.README_END)[0]
    assert block.startswith("\nGenerated by `fvos_utils.report` from run `r` (its chapters ran at git abc123).\n")
    header = next(line for line in block.splitlines() if line.startswith("| step"))
    assert [cell.strip() for cell in header.split("|")[1:-1]] == report.README_COLUMNS
    assert "| zero-motion baseline" in block and "old" not in block
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

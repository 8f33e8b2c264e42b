"""The paper's claims: verdicts from intervals, the scorecard and closing words read back from the run's
records, and picks where doing nothing wins, carried through to the recipe."""
import numpy as np
import pytest

from fvos_utils.base import paths
from fvos_utils.data.testing import write_mose_layout
from fvos_utils.method import choices, fusion, models, recipe
from fvos_utils.method.postprocess import GapFilling
from fvos_utils.metrics import evaluate
from fvos_utils.studies import claims


def _points(change: float) -> str:
    """A change of J&F in points of percent, as a reader sees it: signed, no sign where it rounds to 0."""
    text = f"{100 * change:+.2f}"
    return text[1:] if float(text) == 0 else text


def _objects(values):
    """A scores_of-style record: one object per video with J = F = value."""
    objects = [{"video": f"v{i:02d}", "object": 1, "J": v, "F": v} for i, v in enumerate(values)]
    return {"J&F": float(np.mean(values)), "J": float(np.mean(values)), "F": float(np.mean(values)), "objects": objects}


BASE = [0.5, 0.55, 0.6, 0.45, 0.52, 0.58]
ABOVE = [v + 0.05 for v in BASE]                                 # every video gains 0.05
BELOW = [v - 0.05 for v in BASE]                                 # every video loses 0.05
ACROSS = [v + d for v, d in zip(BASE, (0.05, -0.05, 0.04, -0.04, 0.03, -0.03))]  # gains and losses cancel


@pytest.mark.parametrize("values, expects, found", [
    (ABOVE, claims.GAIN, claims.SUPPORTED), (BELOW, claims.GAIN, claims.CONTRADICTED),
    (ACROSS, claims.GAIN, claims.NOT_RESOLVED), (BELOW, claims.NO_GAIN, claims.SUPPORTED),
    (ABOVE, claims.NO_GAIN, claims.CONTRADICTED), (ACROSS, claims.NO_GAIN, claims.NOT_RESOLVED)])
def test_the_verdict_follows_the_interval_of_the_paired_difference(values, expects, found):
    c = claims.compare("", "t", _objects(values), "b", _objects(BASE), split="valid")
    change = evaluate.paired_difference(_objects(BASE), _objects(values))
    assert (c.delta, c.ci_low, c.ci_high, c.videos) == (change.delta, change.ci_low, change.ci_high, 6)
    assert c.verdict(expects) == found
    assert c.resolvable == pytest.approx((change.ci_high - change.ci_low) / 2)


def test_the_verdict_rule_at_its_edges():
    assert claims.verdict(0.0, 0.1) == claims.NOT_RESOLVED  # an interval touching 0 covers it
    assert claims.verdict(1e-9, 0.1) == claims.SUPPORTED
    assert claims.verdict(-0.1, -1e-9) == claims.CONTRADICTED
    with pytest.raises(ValueError, match="expects"):
        claims.verdict(0.1, 0.2, expects="better")
    with pytest.raises(ValueError, match="lies above"):
        claims.verdict(0.2, 0.1)
    with pytest.raises(ValueError, match="unknown claim"):
        claims.compare("faster", "t", _objects(BASE), "b", _objects(BASE), split="valid")


@pytest.mark.parametrize("values, words", [
    (ABOVE, ["supported.**", "the gain is beyond noise"]),
    (BELOW, ["contradicted.**", "here it is worse, beyond noise"]),
    (ACROSS, ["not resolved.**", "covers 0", "within noise", "larger than about"])])
def test_the_closing_words_say_what_the_interval_says(kit_root, values, words):
    c = claims.compare("fill", "square kernel 2", _objects(values), "no filling", _objects(BASE), split="valid")
    claims.record("r", "05_morphology_ablation", [c])
    text = claims.conclusion("r", "05_morphology_ablation")
    assert text.startswith("## What this run shows")
    assert "**Claim 4 (gap filling with a square kernel of 2 beats no filling): " in text
    assert f"On 6 valid videos, square kernel 2 scores {100 * np.mean(values):.2f} J&F against {100 * np.mean(BASE):.2f} for no filling" in text
    assert f"dJ&F {_points(c.delta)} (95% CI {_points(c.ci_low)} to {_points(c.ci_high)})" in text
    for expected in words:
        assert expected in text
    others = {"supported.**", "contradicted.**", "not resolved.**"} - set(words)
    assert not [w for w in others if w in text]


def test_the_scorecard_reads_the_records_back_and_marks_untested_claims(kit_root):
    fusion_claim = claims.compare("fusion", "fvos7 hard vote", _objects(ACROSS), "the best single scale, 1.75",
                                  _objects(BASE), split="valid", chosen_here=True, cost=6.9)
    claims.record("r", "06_multiscale_fusion", [fusion_claim])
    claims.record("r", "03_epoch_selection", [claims.compare("finetune", "stage 1, epoch 2", _objects(BELOW),
                                                             "the starting model", _objects(BASE), split="test")])
    card = claims.scorecard(claims.read_run("r")).set_index("claim")
    assert len(card) == len(claims.CLAIMS)
    row = card.loc["(6) Voting over the 7 scales beats the best single scale"]
    assert (row["baseline"], row["split"], row["videos"], row["verdict"]) == (
        "the best single scale, 1.75", "valid (chosen here)", 6, claims.NOT_RESOLVED)
    assert row["dJ&F"] == fusion_claim.delta and row["resolvable"] == fusion_claim.resolvable
    assert card.loc["(1) Two-stage fine-tuning beats the starting model", "verdict"] == claims.CONTRADICTED
    # chapter 06 ran and recorded no recipe on test: claim 8 is not tested; chapter 04 did not run
    assert card.loc["(8) The whole recipe beats the starting model", "verdict"] == claims.NOT_TESTED
    assert card.loc["(3) The searched memory-encoder sigmoid beats SAM 2's 20 / -10", "verdict"] == claims.NOT_RUN
    assert "It costs 6.9x the compute" in claims.conclusion("r", "06_multiscale_fusion")
    assert claims.final_table(claims.read_run("r")).empty  # no recipe on test recorded
    every = claims.comparison_table(claims.read_run("r"))
    assert every[["scored on", "claim", "baseline", "interval"]].values.tolist() == [
        ["6 held-out test videos", "1", "the starting model", "below 0"],
        ["6 valid videos", "6", "the best single scale, 1.75", "within noise"]]


def test_final_numbers_are_the_recipe_s_held_out_comparisons_and_their_caption_names_them(kit_root):
    claims.record("r", "06_multiscale_fusion", [
        claims.compare("fusion", "fvos7 hard vote", _objects(ACROSS), "scale 1.75", _objects(BASE), split="valid"),
        claims.compare("fusion", "fvos7 hard vote", _objects(ACROSS), "scale 1.75", _objects(BASE), split="test"),
        claims.compare("recipe", "the full recipe", _objects(ABOVE), "the starting model", _objects(BASE), split="test"),
        claims.compare("", "the full recipe", _objects(ABOVE), "the picked weights alone (stage 2, epoch 1)",
                       _objects(ACROSS), split="test")])
    final = claims.final_table(claims.read_run("r"))
    assert final["baseline"].tolist() == ["the starting model", "the picked weights alone (stage 2, epoch 1)"]
    assert final["interval"].tolist() == ["above 0", "above 0"]
    assert claims.final_caption(final) == ("The run's final numbers on the held-out test split: the full recipe "
                                           "against the starting model and the full recipe against the picked "
                                           "weights alone (stage 2, epoch 1)")
    assert claims.final_caption(final.iloc[:1]).endswith("split: the full recipe against the starting model")


def test_the_run_in_words_names_each_verdict_the_picks_the_final_number_and_what_carries_it(kit_root):
    claims.record("r", "05_morphology_ablation", [
        claims.compare("fill", "square kernel 2", _objects(BELOW), "no filling", _objects(BASE), split="valid"),
        claims.compare("kernel2", "square kernel 2", _objects(ABOVE), "square kernel 3", _objects(BASE), split="valid")])
    claims.record("r", "03_epoch_selection", [claims.compare("finetune", "stage 1, epoch 2", _objects(ACROSS),
                                                             "the starting model", _objects(BASE), split="test")])
    final = claims.compare("recipe", "the full recipe", _objects(ABOVE), "the starting model", _objects(BASE),
                           split="test")
    claims.record("r", "06_multiscale_fusion", [final])
    choices.EpochPick(choices.STARTING_STAGE, 0, "w.pt", 0.5, 0.5, 0.5).record("r")
    choices.KernelPick("paper", "square", 0, 0.5).record("r")
    choices.ScaleSetPick("scale1.75", (1.75,), 0.6).record("r")
    text = claims.in_words("r", claims.read_run("r"), credit="The gain comes from scale 1.75 (+0.090).")
    # a claim whose chapter ran without recording it is not tested (2: no stage 2; 6, 6b, 7: no vote, no
    # transforms), one whose chapter did not run is not run (3)
    assert "this run supports 5 and 8; contradicts 4; cannot resolve 1; does not test 2, 6, 6b and 7; 3 did not run." in text
    assert "The recipe picked on valid: the starting weights, no gap filling, one pass at scale 1.75." in text
    c = final
    assert (f"On 6 held-out test videos, which no choice saw, it scores {100 * c.j_and_f:.2f} J&F against "
            f"{100 * c.baseline_j_and_f:.2f} for the starting model (dJ&F {_points(c.delta)}, 95% CI {_points(c.ci_low)} to "
            f"{_points(c.ci_high)}: above 0).") in text
    assert text.endswith("Step by step on the same videos (the ablation): the gain comes from scale 1.75 (+0.090).")
    # the picks that do something are named as such
    choices.EpochPick(2, 1, "w.pt", 0.6, 0.6, 0.6).record("r")
    choices.SigmoidPick(30.0, -15.0, 0.6, 0.59, "w.pt").record("r")
    choices.KernelPick("paper", "square", 2, 0.6).record("r")
    choices.ScaleSetPick("low3", (1.0, 1.125, 1.25), 0.6).record("r")
    assert ("The recipe picked on valid: the weights of stage 2, epoch 1, the sigmoid scale 30, bias -15, gap filling "
            "with the paper rule, square kernel 2, low3 (1, 1.125, 1.25) with a hard vote.") in claims.in_words(
        "r", claims.read_run("r"))


def test_a_claim_chosen_on_valid_shows_both_rows_and_is_judged_on_test(kit_root):
    claims.record("r", "05_morphology_ablation", [
        claims.compare("kernel2", "square kernel 2", _objects(ABOVE), "no filling", _objects(BASE), split="valid",
                       chosen_here=True),
        claims.compare("kernel2", "square kernel 2", _objects(ACROSS), "no filling", _objects(BASE), split="test")])
    card = claims.scorecard(claims.read_run("r"))
    rows = card[card["claim"].str.startswith("(5)")]
    assert rows[["split", "verdict"]].values.tolist() == [["valid (chosen here)", claims.SUPPORTED],
                                                          ["test", claims.NOT_RESOLVED]]
    assert claims.claim_verdicts(claims.read_run("r"))["kernel2"][0] == claims.NOT_RESOLVED
    text = claims.in_words("r", claims.read_run("r"))
    assert "cannot resolve 5" in text and "supports" not in text
    assert "A claim chosen on valid and scored again on held-out test is judged by its test row." in text


def test_a_claim_the_run_s_settings_cannot_test_is_not_tested_whatever_its_interval(kit_root):
    paper = {1: 10, 2: 40}
    assert claims.epochs_untested("stage2", {1: 10, 2: 20}, paper) == ""  # half the paper's epochs: tested
    why = claims.epochs_untested("stage2", {1: 2, 2: 1}, paper)
    assert why == ("stage 1 trained 2 of the paper's 10 epochs and stage 2 trained 1 of the paper's 40 epochs, "
                   "under the 50% the kit requires to test a claim about stage 2")
    c = claims.compare("stage2", "stage 2, epoch 1", _objects(BELOW), "stage 1, epoch 2", _objects(BASE),
                       split="test", untested=why)
    assert c.verdict() == claims.NOT_TESTED  # below 0, yet not contradicted: the run cannot test it
    claims.record("r", "03_epoch_selection", [c])
    text = claims.conclusion("r", "03_epoch_selection")
    assert f"**Claim 2 (stage 2 beats the best epoch of stage 1): not tested.** The run cannot test it: {why}." in text
    assert "here it is worse, beyond noise" in text  # the numbers are still shown as measured
    words = claims.in_words("r", claims.read_run("r"))
    assert "does not test 1 and 2" in words and f"Not tested (1: the run has no" not in words
    assert f"2: {why}" in words
    card = claims.scorecard(claims.read_run("r"))
    assert card.loc[card["claim"].str.startswith("(2)"), "verdict"].item() == claims.NOT_TESTED


def test_each_pick_says_its_change_from_doing_nothing_and_within_noise_when_it_is(kit_root):
    choices.SigmoidPick(30.0, -15.0, 0.61, 0.6, "w.pt", 0.005, 0.001, 0.009).record("r")
    assert "dJ&F +0.50 against the default pair, 95% CI +0.10 to +0.90);" in claims.pick_sentence("r", "04_sigmoid_search")
    choices.SigmoidPick(30.0, -15.0, 0.61, 0.6, "w.pt", 0.005, -0.002, 0.012).record("r")
    assert "95% CI -0.20 to +1.20: within noise);" in claims.pick_sentence("r", "04_sigmoid_search")
    choices.EpochPick(2, 1, "w.pt", 0.6, 0.6, 0.6, 0.01, -0.004, 0.02).record("r")
    assert "against the starting weights, 95% CI -0.40 to +2.00: within noise" in claims.pick_sentence(
        "r", "03_epoch_selection")
    choices.KernelPick("paper", "square", 3, 0.6, 0.02, 0.01, 0.03).record("r")
    assert "dJ&F +2.00 against no filling, 95% CI +1.00 to +3.00)" in claims.pick_sentence("r", "05_morphology_ablation")


@pytest.mark.parametrize("soft, words", [(0.688, "scored 68.80, above the pick"), (0.6, "scored 60.00, not above the pick")])
def test_the_scale_pick_says_it_considered_hard_votes_only_and_where_a_soft_vote_stands(kit_root, soft, words):
    choices.ScaleSetPick("scale1.75", (1.75,), 0.68, 0.07, 0.04, 0.1, best_single=1.75, largest_tried=1.75,
                         soft_name="fvos7 soft vote", soft_j_and_f=soft).record("r")
    text = claims.pick_sentence("r", "06_multiscale_fusion")
    assert "every single scale and every scale set hard-voted in the recipe's order" in text
    assert "Soft voting is not a candidate (the recipe votes hard, as the paper does): its best, fvos7 soft vote, " + words in text
    assert "The best single scale, 1.75, is the largest tried: J&F may rise further beyond the grid." in text
    choices.ScaleSetPick("fvos7", fusion.FVOS_SCALES, 0.7, best_single=1.5, largest_tried=1.75).record("r")
    text = claims.pick_sentence("r", "06_multiscale_fusion")
    assert text.startswith("**The pick: fvos7** (7 scales, hard vote") and "largest tried" not in text
    assert "Soft voting" not in text


def test_a_bad_comparisons_file_is_an_error_naming_it(kit_root):
    path = claims.record("r", "04_sigmoid_search", [])
    path.write_text('[{"claim": "sigmoid"}]')
    with pytest.raises(Exception, match="comparisons.json.*missing 'treatment'"):
        claims.read("r", "04_sigmoid_search")


@pytest.mark.slow
def test_when_doing_nothing_wins_every_choice_the_recipe_does_nothing(kit_root, tmp_path):
    """A run whose four picks are the do-nothing candidates (the starting weights, SAM 2's sigmoid, no
    filling, one scale): the recipe uses those weights and pair, fills nothing and votes nothing: its
    output is the single pass itself. The same run with a kernel and two scales fills and votes."""
    data = write_mose_layout(tmp_path / "mose", n_train=1, n_valid=2, n_frames=3)
    start = str(models.resolve_checkpoint(models.get_spec("fvos_tiny"), models.REGISTRY))
    choices.EpochPick(choices.STARTING_STAGE, 0, choices.weights_reference("r", start), 0.6, 0.55, 0.65).record("r")
    choices.SigmoidPick(20.0, -10.0, 0.6, 0.6, choices.weights_reference("r", start)).record("r")
    choices.KernelPick("paper", "square", 0, 0.6).record("r")
    choices.ScaleSetPick("scale1.25", (1.25,), 0.6).record("r")
    settings = recipe.settings_for_run("r")
    assert settings.choice.checkpoint == start and "the starting weights" in settings.sources["model"]
    assert (settings.choice.sigmoid_scale, settings.choice.sigmoid_bias) == (20.0, -10.0)
    assert not settings.filling.fills and settings.scales == (1.25,)
    work = tmp_path / "work"
    labels = recipe.apply_recipe(settings, data, work, split="valid", progress=False)
    assert labels == work / "passes" / "scale1.25-identity"
    assert sorted(p.name for p in work.iterdir()) == ["passes"]  # nothing filled, nothing fused
    assert sorted(p.name for p in (work / "passes").iterdir()) == ["scale1.25-identity"]
    # the same run where filling and voting won: both steps run
    choices.KernelPick("paper", "square", 3, 0.7).record("r")
    choices.ScaleSetPick("wide3", fusion.SCALE_SETS["wide3"], 0.7).record("r")
    labels = recipe.apply_recipe(recipe.settings_for_run("r"), data, tmp_path / "work2", split="valid", progress=False)
    assert labels == tmp_path / "work2" / "fused"
    assert sorted(p.name for p in (tmp_path / "work2" / "filled").iterdir()) == [
        "scale1-identity", "scale1.375-identity", "scale1.75-identity"]


def test_the_scorecard_figure_draws_each_tested_claim_in_its_verdict_colour(kit_root):
    import matplotlib.pyplot as plt

    claims.record("r", "05_morphology_ablation", [
        claims.compare("fill", "square kernel 2", _objects(BELOW), "no filling", _objects(BASE), split="valid"),
        claims.compare("kernel2", "square kernel 2", _objects(ACROSS), "square kernel 3", _objects(BASE), split="valid")])
    card = claims.scorecard(claims.read_run("r"))
    fig = claims.scorecard_figure(card)
    ax = fig.axes[0]
    points = {bars.lines[0].get_ydata()[0]: bars.lines[0].get_color() for bars in ax.containers}
    rows = card["claim"].tolist()
    assert points == {rows.index("(4) Gap filling with a square kernel of 2 beats no filling"): claims.VERDICT_COLOURS[claims.CONTRADICTED],
                      rows.index("(5) A kernel of 2 is the best kernel size"): claims.VERDICT_COLOURS[claims.NOT_RESOLVED]}
    assert sum(t.get_text() == "not run" for t in ax.texts) == len(rows) - 2  # chapter 05 tests 4 and 5 only
    fill = card[card["claim"].str.startswith("(4)")].iloc[0]
    drawn = next(bars for bars in ax.containers if bars.lines[0].get_color() == claims.VERDICT_COLOURS[claims.CONTRADICTED])
    assert drawn.lines[0].get_xdata()[0] == pytest.approx(100 * fill["dJ&F"])  # in points, as the tables
    assert "points" in ax.get_xlabel()
    plt.close(fig)


def test_a_comparison_describes_itself_in_one_line():
    c = claims.compare("", "scale 1.75", _objects(ACROSS), "scale 1", _objects(BASE), split="valid")
    assert c.describe() == (f"scale 1.75 {100 * np.mean(ACROSS):.2f} against scale 1 {100 * np.mean(BASE):.2f}: "
                            + evaluate.PairedDifference.describe_row({"dJ&F": c.delta, "CI low": c.ci_low,
                                                                      "CI high": c.ci_high}))
    assert c.describe().endswith("within noise)")


def test_a_comparison_two_chapters_recorded_alike_is_listed_once(kit_root):
    same = claims.compare("", "the best fine-tuned epoch (stage 1, epoch 2)", _objects(ACROSS), "the starting model",
                          _objects(BASE), split="valid", chosen_here=True)
    claims.record("r", "02_finetune", [same])
    claims.record("r", "03_epoch_selection", [same, claims.compare("finetune", "stage 1, epoch 2", _objects(ABOVE),
                                                                   "the starting model", _objects(BASE), split="test")])
    every = claims.comparison_table(claims.read_run("r"))
    assert every["treatment"].tolist() == ["stage 1, epoch 2", "the best fine-tuned epoch (stage 1, epoch 2)"]

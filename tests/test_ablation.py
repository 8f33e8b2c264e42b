"""The recipe ablated step by step (fvos_utils.studies.ablation): the ladder and leave-one-out settings of a recipe,
rows whose numbers are the paired differences of the settings' scores, words that name what carries the gain,
and every setting scored exactly as the recipe itself would run it."""
import re

import numpy as np
import pytest

from fvos_utils.data.testing import write_mose_layout
from fvos_utils.method import choices, models, recipe
from fvos_utils.method.postprocess import NO_FILLING, PAPER_FILLING
from fvos_utils.metrics import evaluate
from fvos_utils.studies import ablation, claims

START = ablation.Setting("w0.pt", choices.STARTING_LABEL, (20.0, -10.0), NO_FILLING, (1.0,))
TUNED = ("w2.pt", "stage 2, epoch 3")
PUBLISHED = ablation.Setting(*TUNED, (30.0, -15.0), PAPER_FILLING, (1.0, 1.375, 1.75))


def _scores(values):
    """A scores_of record: one object per video with J = F = value."""
    objects = [{"video": f"v{i:02d}", "object": 1, "J": v, "F": v} for i, v in enumerate(values)]
    return {"J&F": float(np.mean(values)), "J": float(np.mean(values)), "F": float(np.mean(values)), "objects": objects}


BASE = np.array([0.5, 0.55, 0.6, 0.45, 0.52, 0.58, 0.61, 0.47])
WOBBLE = np.array([0.01, -0.012, 0.009, -0.011, 0.013, -0.008, 0.01, -0.01])  # mean about 0, both signs


def test_the_ladder_adds_one_step_at_a_time_and_leave_one_out_removes_each():
    recipe_ = ablation.Recipe(ablation.PUBLISHED, PUBLISHED, START, 1.75)
    ladder = recipe_.ladder()
    assert [step for step, _ in ladder] == ["", *ablation.STEPS]
    assert ladder[0][1] == START and ladder[-1][1] == PUBLISHED
    assert ladder[1][1].scales == (1.75,) and ladder[1][1].weights == "w0.pt"  # the scale first, alone
    assert (ladder[2][1].weights, ladder[2][1].sigmoid) == ("w2.pt", (20.0, -10.0))
    assert (ladder[3][1].sigmoid, ladder[3][1].filling) == ((30.0, -15.0), NO_FILLING)
    assert (ladder[4][1].filling, ladder[4][1].scales) == (PAPER_FILLING, (1.75,))
    assert recipe_.without("weights").weights == "w0.pt" and recipe_.without("weights").scales == PUBLISHED.scales
    assert recipe_.without("sigmoid").sigmoid == (20.0, -10.0)
    assert recipe_.without("filling").filling == NO_FILLING
    assert recipe_.without("vote").scales == (1.75,)
    assert all(recipe_.uses(step) for step in ablation.STEPS)
    # a recipe that picked the starting weights, SAM 2's pair and no filling at one scale uses the scale only
    picked = ablation.Recipe(ablation.PICKED, ablation.Setting(START.weights, START.weights_label, START.sigmoid,
                                                               NO_FILLING, (1.75,)), START, 1.75)
    assert [step for step in ablation.STEPS if picked.uses(step)] == ["scale"]
    assert picked.without("scale") == START
    assert len(picked.settings()) == 2  # the start and the recipe: every other rung is one of them


def _results(recipe_, changes):
    """Scores for every setting of ``recipe_``: the start's BASE plus, per step of ``changes`` the setting shares
    with the full recipe, that step's change on every video (WOBBLE, about 0 in both directions, for a 0)."""
    results = {}
    for setting in recipe_.settings():
        value = BASE.copy()
        for step, change in changes.items():
            if _has(setting, recipe_, step):
                value = value + (change if change else WOBBLE)
        results[setting] = _scores(value)
    return results


def _has(setting, recipe_, step):
    full = recipe_.full
    return {"scale": setting.scales != (1.0,), "weights": setting.weights == full.weights,
            "sigmoid": setting.sigmoid == full.sigmoid, "filling": setting.filling == full.filling,
            "vote": setting.scales == full.scales}[step]


def test_rows_are_the_paired_differences_of_the_settings_and_the_words_name_what_carries_the_gain():
    recipe_ = ablation.Recipe(ablation.PUBLISHED, PUBLISHED, START, 1.75)
    results = _results(recipe_, {"scale": 0.09, "weights": 0.0, "sigmoid": 0.005, "filling": -0.02, "vote": 0.0})
    rows = ablation.ablation_rows(recipe_, results)
    assert [(r.kind, r.step) for r in rows] == [(ablation.LADDER, "")] + [
        (ablation.LADDER, s) for s in ablation.STEPS] + [(ablation.LEAVE_ONE_OUT, s) for s in ablation.STEPS]
    ladder = recipe_.ladder()
    for row, (below, (_, rung)) in zip(rows[1:6], zip([s for _, s in ladder], ladder[1:])):
        reference = evaluate.paired_difference(results[below], results[rung])
        assert (row.change.delta, row.change.ci_low, row.change.ci_high) == (
            reference.delta, reference.ci_low, reference.ci_high)
        assert row.change.split == "test" and row.change.videos == len(BASE)
    for row in rows[6:]:
        reference = evaluate.paired_difference(results[recipe_.without(row.step)], results[PUBLISHED])
        assert row.change.delta == reference.delta
    words = ablation.credit_words(rows, ablation.PUBLISHED)
    assert words.startswith("The gain comes from scale 1.75 (+9.00, 95% CI +9.00 to +9.00) and the sigmoid pair "
                            "30 / -15 (+0.50")
    assert re.search(r"; the weights: stage 2, epoch 3 \(\+0\.01, 95% CI -0\.\d\d to \+0\.\d\d\)", words)
    assert re.search(r"and the vote over 3 scales \(\+0\.01, 95% CI -0\.\d\d to \+0\.\d\d\)", words)
    assert ") add nothing these videos can tell from noise; " in words
    assert "gap filling: square kernel 2 (-2.00, 95% CI -2.00 to -2.00) costs J&F beyond noise" in words
    assert "uses no" not in words  # every step is used
    table = ablation.ablation_table(rows)
    assert table["interval"].tolist()[:6] == ["", "above 0", "within noise", "above 0", "below 0", "within noise"]
    assert "ablated on 8 held-out test videos" in ablation.table_caption(table, 8)


def test_the_words_name_the_steps_a_recipe_does_not_use_and_say_when_nothing_gains():
    picked = ablation.Recipe(ablation.PICKED, ablation.Setting(START.weights, START.weights_label, (30.0, -15.0),
                                                               NO_FILLING, (1.75,)), START, 1.75)
    results = _results(picked, {"scale": 0.0, "sigmoid": 0.0})
    rows = ablation.ablation_rows(picked, results)
    unused = [r.step for r in rows if r.kind == ablation.LADDER and r.step and r.change is None]
    assert unused == ["weights", "filling", "vote"]
    assert ablation.ablation_table(rows)["interval"].tolist()[1:6] == [
        "within noise", "not used", "within noise", "not used", "not used"]
    words = ablation.credit_words(rows)
    assert words.startswith("No step adds a gain beyond noise; scale 1.75 (")
    assert words.endswith("the recipe as picked uses no fine-tuning, gap filling or voting.")
    assert ablation.credit_words(rows, ablation.PUBLISHED) is None  # not ablated


def test_the_plan_follows_the_run_s_picks_and_keeps_the_paper_s_recipe_beside_them(kit_root):
    start = str(models.resolve_checkpoint(models.get_spec("fvos_tiny"), models.REGISTRY))
    tuned = kit_root / "outputs" / "r" / "train" / "stage1" / "weights" / "epoch_002.pt"
    tuned.parent.mkdir(parents=True)
    tuned.write_bytes(b"weights")
    ref = lambda path: choices.weights_reference("r", path)  # noqa: E731
    choices.EpochPick(choices.STARTING_STAGE, 0, ref(start), 0.6, 0.6, 0.6, starting_weights=ref(start),
                      fine_tuned_weights=ref(tuned), fine_tuned_label="stage 1, epoch 2").record("r")
    choices.SigmoidPick(30.0, -15.0, 0.61, 0.6, ref(start), 0.01, 0.001, 0.02, searched=(30.0, -15.0)).record("r")
    choices.KernelPick("paper", "square", 0, 0.6, rival="paper-square-k0").record("r")
    choices.ScaleSetPick("scale1.75", (1.75,), 0.7, best_single=1.75, largest_tried=1.75).record("r")
    plan = ablation.plan_for_run("r", model="fvos_tiny", ckpt=models.REGISTRY, scales=ablation.FVOS_SCALES,
                                 fill_kernel=2, fill_shape="square")
    picked, published = plan.recipes
    assert picked.full == ablation.Setting(start, choices.STARTING_LABEL, (30.0, -15.0), NO_FILLING, (1.75,))
    assert picked.start == ablation.Setting(start, choices.STARTING_LABEL, (20.0, -10.0), NO_FILLING, (1.0,))
    assert published.full == ablation.Setting(str(tuned), "stage 1, epoch 2", (30.0, -15.0), PAPER_FILLING,
                                              tuple(ablation.FVOS_SCALES))
    assert published.single_scale == 1.75
    assert [claim for claim, *_ in plan.claim_tests] == ["sigmoid", "fill", "kernel2", "fusion"]
    tests = {claim: (treated, base) for claim, _, treated, _, base in plan.claim_tests}
    assert tests["sigmoid"][0].sigmoid == (30.0, -15.0) and tests["sigmoid"][1].sigmoid == (20.0, -10.0)
    assert tests["kernel2"][1].filling == NO_FILLING and tests["fill"][0].filling == PAPER_FILLING
    assert tests["fusion"][0].scales == tuple(ablation.FVOS_SCALES) and tests["fusion"][1].scales == (1.75,)
    # passes: the start at 1 and 1.75, and 7 scales for each of three weights-and-pair models
    passes = {(s.weights, s.sigmoid, scale) for s in plan.settings() for scale in s.scales}
    assert len(passes) == 2 + 3 * 7
    # a grid without the paper's scales: no published recipe and no claim 6 on test
    small = ablation.plan_for_run("r", model="fvos_tiny", ckpt=models.REGISTRY, scales=(1.0, 1.75), fill_kernel=2,
                                  fill_shape="square")
    assert [r.name for r in small.recipes] == [ablation.PICKED]
    assert "fusion" not in [claim for claim, *_ in small.claim_tests]


@pytest.mark.slow
def test_each_setting_scores_what_the_recipe_itself_gives(kit_root, tmp_path):
    """score_settings shares passes between settings; each setting must still score exactly what the recipe
    (recipe.apply_recipe, its own passes) gives with the same weights, pair, filling and scales."""
    from fvos_utils.data import datasets

    data = write_mose_layout(tmp_path / "mose", n_train=3, n_valid=1, n_frames=4)  # train: every mask given
    split = datasets.ValidationSplit(data, data / "train" / "Annotations", data / "meta.json",
                                     ["train00", "train01", "train02"], "train")
    settings = [ablation.Setting(models.RANDOM, "random", (20.0, -10.0), NO_FILLING, (1.0,)),
                ablation.Setting(models.RANDOM, "random", (30.0, -15.0), PAPER_FILLING, (1.0, 1.25)),
                ablation.Setting(models.RANDOM, "random", (30.0, -15.0), NO_FILLING, (1.25,))]
    results = ablation.score_settings(settings, split, tmp_path / "work", model="fvos_tiny")
    passes = sorted(p.name for p in (tmp_path / "work" / "passes").iterdir())
    assert len(passes) == 3  # (20/-10, 1), (30/-15, 1), (30/-15, 1.25): the last shared by two settings
    for i, setting in enumerate(settings):
        alone = recipe.RecipeSettings(setting.choice("fvos_tiny"), setting.filling, setting.scales, {})
        labels = recipe.apply_recipe(alone, data, tmp_path / f"recipe{i}", split="train", videos=split.videos,
                                     progress=False)
        reference = evaluate.evaluate(split.gt_dir, labels, videos=split.videos, progress=False)
        assert results[setting]["J&F"] == reference["global"]["J&F"]
        assert results[setting]["objects"] == [{k: o[k] for k in ("video", "object", "J", "F")}
                                               for o in reference["objects"]]
    known = {settings[0]: results[settings[0]]}
    again = ablation.score_settings(settings[:1], split, tmp_path / "work2", model="fvos_tiny", known=known)
    assert again[settings[0]] is known[settings[0]] and not (tmp_path / "work2").exists()  # nothing run


def test_test_comparisons_pair_the_claims_and_give_the_final_numbers():
    picked = ablation.Recipe(ablation.PICKED, ablation.Setting(*TUNED, (30.0, -15.0), NO_FILLING, (1.75,)), START, 1.75)
    alone = ablation.weights_alone(picked)
    treated = ablation.Setting(*TUNED, (30.0, -15.0), NO_FILLING, (1.0,))
    base = ablation.Setting(*TUNED, (20.0, -10.0), NO_FILLING, (1.0,))
    plan = ablation.Plan((picked,), (("sigmoid", "sigmoid 30 / -15", treated, "SAM 2's 20 / -10", base),))
    results = {START: _scores(BASE), picked.full: _scores(BASE + 0.1), alone: _scores(BASE + 0.02),
               treated: _scores(BASE + WOBBLE), base: _scores(BASE)}
    rows = ablation.ablation_rows(picked, {**results, **_results(picked, {"scale": 0.1, "sigmoid": 0.0})})
    out = ablation.test_comparisons(plan, results, rows)
    assert [(c.claim, c.split) for c in out] == [("sigmoid", "test"), ("recipe", "test"), ("", "test")]
    assert out[1].note == ablation.credit_words(rows) and out[1].note.startswith("The gain comes from scale 1.75")
    assert out[0].verdict() == claims.NOT_RESOLVED and out[1].verdict() == claims.SUPPORTED
    assert out[2].baseline == "the picked weights alone (stage 2, epoch 3)"
    assert ablation.final_scores(plan, results)["J&F"] == pytest.approx(float(np.mean(BASE + 0.1)))

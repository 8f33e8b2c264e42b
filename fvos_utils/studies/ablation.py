"""The recipe ablated step by step on the held-out test split: what each step adds (chapter 06's last study).

A method paper credits each step with what it adds, on data no choice saw. Two recipes are ablated on the
test split (:func:`plan_for_run`):

- **as picked**: what this run's chapters chose on valid (:mod:`fvos_utils.method.choices`), which may leave
  steps out (the starting weights, SAM 2's sigmoid pair, no filling, one scale);
- **as published**: the paper's, whatever the picks said: the best fine-tuned epoch on valid, the best
  searched sigmoid pair other than SAM 2's, the square kernel of 2, the 7 scales hard-voted.

Each is read two ways (:func:`ablation_comparisons`):

- a **ladder**: the starting model at scale 1 (SAM 2 as it comes), then one step added at a time in the
  order of :data:`STEPS` (the best single scale, the weights, the sigmoid pair, gap filling, the vote),
  each rung against the rung below it;
- **leave-one-out**: the full recipe against itself without each step it uses (``dJ&F`` is what that step
  adds given all the others).

Every row is a paired comparison on the same test videos with its 95% interval
(:func:`fvos_utils.studies.claims.compare`). A step a recipe does not use gets a row without numbers, so the table
shows what the recipe leaves out. The same passes score the claims whose choice was made on valid
(3, 4, 5, 6) once more on test (:func:`test_comparisons`) and the run's final numbers (claim 8).

Every model pass (weights x sigmoid pair x scale) runs once, whatever number of settings use it
(:func:`score_settings`); a pass chapter 03 already scored on test (the starting model at scale 1) is taken
from its record instead of being run again.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from fvos_utils.base.io import DataError, read_json, write_json
from fvos_utils.data import datasets
from fvos_utils.method import choices, infer, models, postprocess
from fvos_utils.method.fusion import FVOS_SCALES
from fvos_utils.method.postprocess import NO_FILLING, PAPER_FILLING, GapFilling
from fvos_utils.method.recipe import voted
from fvos_utils.metrics import evaluate, scoring
from fvos_utils.metrics.percent import signed
from fvos_utils.studies import claims

#: the recipe's steps in the order the ladder adds them
STEPS = ("scale", "weights", "sigmoid", "filling", "vote")
#: the two recipes ablated
PICKED, PUBLISHED = "as picked", "as published"
#: the two readings of each
LADDER, LEAVE_ONE_OUT = "ladder", "leave-one-out"


@dataclass(frozen=True)
class Setting:
    """One way to run the recipe: weights, memory-encoder sigmoid pair, gap filling of each pass, scales (one
    scale: one pass, no vote; several: each pass filled, then hard-voted, the paper's order)."""

    weights: str                  # a loadable weights file, or "random"
    weights_label: str            # in words: "the starting weights", "stage 2, epoch 1"
    sigmoid: tuple[float, float]  # (scale, bias)
    filling: GapFilling
    scales: tuple[float, ...]

    def choice(self, model: str) -> choices.ModelChoice:
        """The weights and sigmoid as a :class:`fvos_utils.method.choices.ModelChoice` of ``model``."""
        return choices.ModelChoice(model, self.weights, self.sigmoid[0], self.sigmoid[1], self.describe())

    def describe(self) -> str:
        """In words: ``"the starting weights, sigmoid 20 / -10, no filling, scale 1"``."""
        fill = self.filling.words
        if self.filling.fills and self.filling.method != "paper":
            fill += f" ({self.filling.method} rule)"
        scales = (f"scale {self.scales[0]:g}" if len(self.scales) == 1 else
                  f"{len(self.scales)} scales ({', '.join(f'{s:g}' for s in self.scales)}) hard-voted")
        return f"{self.weights_label}, sigmoid {self.sigmoid[0]:g} / {self.sigmoid[1]:g}, {fill}, {scales}"


@dataclass(frozen=True)
class Recipe:
    """A recipe to ablate: its full setting, the starting model (scale 1, SAM 2's pair, no filling) and the
    single scale its ladder adds first (the recipe's own scale, or the best single scale on valid when it
    votes)."""

    name: str          # PICKED or PUBLISHED
    full: Setting
    start: Setting
    single_scale: float

    def ladder(self) -> list[tuple[str, Setting]]:
        """``[(step, setting)]``: the start (step ``""``), then each of :data:`STEPS` added."""
        rungs = [("", self.start)]
        values = {"scale": {"scales": (self.single_scale,)},
                  "weights": {"weights": self.full.weights, "weights_label": self.full.weights_label},
                  "sigmoid": {"sigmoid": self.full.sigmoid}, "filling": {"filling": self.full.filling},
                  "vote": {"scales": self.full.scales}}
        for step in STEPS:
            rungs.append((step, replace(rungs[-1][1], **values[step])))
        return rungs

    def without(self, step: str) -> Setting:
        """The full recipe without ``step`` (the start's value in its place; without the scale or the vote,
        one pass at scale 1 or at the single scale)."""
        if step == "scale":
            return replace(self.full, scales=(1.0,))
        if step == "vote":
            return replace(self.full, scales=(self.single_scale,))
        if step == "weights":
            return replace(self.full, weights=self.start.weights, weights_label=self.start.weights_label)
        if step == "sigmoid":
            return replace(self.full, sigmoid=self.start.sigmoid)
        if step == "filling":
            return replace(self.full, filling=self.start.filling)
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")

    def uses(self, step: str) -> bool:
        """Whether the full recipe differs from itself without ``step``."""
        return self.without(step) != self.full

    def settings(self) -> list[Setting]:
        """Every setting the ladder and leave-one-out score, each once."""
        return list(dict.fromkeys([s for _, s in self.ladder()] + [self.full]
                                  + [self.without(step) for step in STEPS if self.uses(step)]))


def step_words(step: str, setting: Setting) -> str:
    """A step as the table names it, with the value ``setting`` gives it."""
    if step == "scale":
        return f"scale {setting.scales[0]:g}" if len(setting.scales) == 1 else "the scales"
    if step == "weights":
        return f"the weights: {setting.weights_label}"
    if step == "sigmoid":
        return f"the sigmoid pair {setting.sigmoid[0]:g} / {setting.sigmoid[1]:g}"
    if step == "filling":
        return "gap filling: " + (setting.filling.words if setting.filling.fills else "none")
    if step == "vote":
        return f"the vote over {len(setting.scales)} scales" if len(setting.scales) > 1 else "no vote"
    raise ValueError(f"unknown step {step!r}")


# ------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Plan:
    """What chapter 06 scores on test: both recipes and the settings of the claims chosen on valid."""

    recipes: tuple[Recipe, ...]
    claim_tests: tuple[tuple[str, str, Setting, str, Setting], ...]  # (claim, treatment, its setting, baseline, its)

    def settings(self) -> list[Setting]:
        """Every setting to score, each once: both recipes' ablations, the claims' and the picked weights alone."""
        out = [s for recipe in self.recipes for s in recipe.settings()]
        out += [s for _, _, treated, _, base in self.claim_tests for s in (treated, base)]
        out += [weights_alone(r) for r in self.recipes if r.name == PICKED]
        return list(dict.fromkeys(out))


def weights_alone(recipe: Recipe) -> Setting:
    """The starting model with the recipe's weights (scale 1, SAM 2's pair, no filling)."""
    return replace(recipe.start, weights=recipe.full.weights, weights_label=recipe.full.weights_label)


def plan_for_run(run: str, *, model: str, ckpt: str, scales: Sequence[float], fill_kernel: int,
                 fill_shape: str) -> Plan:
    """Both recipes of ``run`` and its claims to confirm on test, from the picks its chapters recorded (the
    fallback rule of :mod:`fvos_utils.method.choices` where a chapter has not run). Shown in chapter 06."""
    default = models.DEFAULT_SIGMOID
    epoch = choices.EpochPick.read(run)
    chosen = choices.chosen_model(run, model=model, ckpt=ckpt)
    if epoch is not None and epoch.starting_weights:
        start_weights = choices.weights_path(run, epoch.starting_weights)
    else:  # no epoch pick: ckpt names the starting weights (the fallback rule)
        start_weights = models.RANDOM if str(ckpt) == models.RANDOM else \
            str(models.resolve_checkpoint(models.get_spec(model), ckpt))
    start = Setting(start_weights, choices.STARTING_LABEL, default, NO_FILLING, (1.0,))
    picked_sigmoid = ((chosen.sigmoid_scale, chosen.sigmoid_bias) if chosen.sigmoid_scale is not None else default)
    picked_label = epoch.label if epoch is not None else choices.STARTING_LABEL
    filling, _ = choices.chosen_filling(run, fill_kernel=fill_kernel, fill_shape=fill_shape)
    picked_scales, _ = choices.chosen_scales(run, scales=scales)
    scale_pick = choices.ScaleSetPick.read(run)
    best_single = (scale_pick.best_single if scale_pick is not None and scale_pick.best_single is not None
                   else picked_scales[0])
    picked = Setting(chosen.checkpoint, picked_label, picked_sigmoid, filling, tuple(picked_scales))
    recipes = [Recipe(PICKED, picked, start, picked_scales[0] if len(picked_scales) == 1 else best_single)]

    sigmoid_pick = choices.SigmoidPick.read(run)
    searched = tuple(sigmoid_pick.searched) if sigmoid_pick is not None and sigmoid_pick.searched else default
    if epoch is not None and epoch.fine_tuned_weights:
        tuned, tuned_label = choices.weights_path(run, epoch.fine_tuned_weights), epoch.fine_tuned_label
    else:
        tuned, tuned_label = start.weights, start.weights_label
    published = Setting(tuned, tuned_label, searched, PAPER_FILLING, tuple(float(s) for s in FVOS_SCALES))
    if set(published.scales) <= set(float(s) for s in scales):
        recipes.append(Recipe(PUBLISHED, published, start, best_single))

    at_one = replace(picked, filling=NO_FILLING, scales=(1.0,))  # what chapters 04 and 05 scored on valid
    tests = []
    if sigmoid_pick is not None and sigmoid_pick.searched:
        tests.append(("sigmoid", f"sigmoid {searched[0]:g} / {searched[1]:g}", replace(at_one, sigmoid=searched),
                      "SAM 2's 20 / -10", replace(at_one, sigmoid=default)))
    kernel_pick = choices.KernelPick.read(run)
    if kernel_pick is not None:
        tests.append(("fill", PAPER_FILLING.words, replace(at_one, filling=PAPER_FILLING), NO_FILLING.words, at_one))
        if kernel_pick.rival:
            rival = GapFilling.from_name(kernel_pick.rival)
            tests.append(("kernel2", PAPER_FILLING.words, replace(at_one, filling=PAPER_FILLING),
                          f"{rival.words}, the best other on valid", replace(at_one, filling=rival)))
    if scale_pick is not None and scale_pick.best_single is not None:
        voted = replace(picked, scales=tuple(float(s) for s in FVOS_SCALES))
        if set(voted.scales) <= set(float(s) for s in scales):
            how = f", each pass filled ({filling.name})" if filling.fills else ""
            tests.append(("fusion", f"fvos7 hard vote{how}", voted,
                          f"the best single scale on valid, {best_single:g}{how}", replace(picked, scales=(best_single,))))
    return Plan(tuple(recipes), tuple(tests))


# ----------------------------------------------------------------------------------------- scoring
def pass_name(model: str, weights: str, sigmoid: tuple[float, float], scale: float) -> str:
    """The folder of one model pass: the weights by content (:func:`fvos_utils.method.models.weights_identity`),
    the sigmoid pair and the scale, e.g. ``"w3f2a19c04e-sig20_-10-scale1.25"``."""
    identity = models.weights_identity(model, models.weights_label(weights))
    tag = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"w{tag}-sig{sigmoid[0]:g}_{sigmoid[1]:g}-scale{scale:g}"


def score_settings(settings: Sequence[Setting], split: datasets.ValidationSplit, work_dir: str | os.PathLike, *,
                   model: str, seed: int = 0, known: Mapping[Setting, dict] | None = None,
                   device: str | None = None, workers: int | None = None) -> dict[Setting, dict]:
    """Each setting on ``split`` (with ground truth), scored: ``{setting: scores_of record}``. Shown in
    chapter 06.

    Every distinct pass (weights x sigmoid pair x scale) runs once into ``work_dir/passes/<pass_name>/``
    (probabilities kept, afresh on each call: the data or weights may have changed since), the passes side
    by side on a CPU (:func:`fvos_utils.method.infer.run_passes_side_by_side`, ``workers``); every filling a
    pass needs is made from its probabilities in one read (``work_dir/filled/<pass_name>/``); each setting
    then votes its passes as the recipe does (:func:`fvos_utils.method.recipe.voted`, ``work_dir/voted/``).
    ``known``: settings already scored on these videos (chapter 03's starting model), taken as they are.
    """
    work_dir = Path(work_dir)
    known = dict(known or {})
    todo = [s for s in dict.fromkeys(settings) if s not in known]
    fillings: dict[tuple, set] = {}
    for setting in todo:
        for scale in setting.scales:
            needed = fillings.setdefault((setting.weights, setting.sigmoid, scale), set())
            if setting.filling.fills:
                needed.add(setting.filling)
    folders: dict[tuple, Path] = {key: work_dir / "passes" / pass_name(model, *key) for key in fillings}
    jobs = [(models.PredictorSpec(model, weights, scale=scale, seed=seed, sigmoid_scale=sigmoid[0],
                                  sigmoid_bias=sigmoid[1]), folders[(weights, sigmoid, scale)], {})
            for weights, sigmoid, scale in fillings]
    infer.run_passes_side_by_side(jobs, split.root, device=device, workers=workers, split=split.name,
                                  videos=split.videos, save_probs=True, overwrite=True, progress=False)
    for key, needed in fillings.items():
        if needed:
            filled = postprocess.fill_variants(folders[key], work_dir / "filled" / folders[key].name,
                                               sorted(needed, key=lambda f: f.name), from_probs=True,
                                               videos=split.videos, overwrite=True, progress=False)
            folders.update({key + (f,): path for f, path in filled.items()})
    results = dict(known)
    for setting in todo:
        maps = [folders[(setting.weights, setting.sigmoid, scale) + ((setting.filling,) if setting.filling.fills else ())]
                for scale in setting.scales]
        key = hashlib.sha256(repr(setting).encode()).hexdigest()[:12]
        labels = voted(maps, work_dir / "voted" / key)
        results[setting] = scoring.scores_of(evaluate.evaluate(split.gt_dir, labels, videos=split.videos,
                                                                 progress=False))
    return results


def known_scores(plan: Plan, held_out: "claims.HeldOutScores | None",
                 split: datasets.ValidationSplit) -> dict[Setting, dict]:
    """Chapter 03's test scores (``held_out``) as :func:`score_settings`' ``known``: the starting model at scale 1
    and the picked weights alone, where they were scored on every video of ``split``; {} otherwise. Shown in
    chapter 06."""
    if held_out is None or held_out.videos != len(split.videos):
        return {}
    picked = next(r for r in plan.recipes if r.name == PICKED)
    return {picked.start: held_out.starting, weights_alone(picked): held_out.picked}


# ------------------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class AblationRow(choices.Record):
    """One row of the ablation table: a step of a recipe, read as a ladder rung (against the rung below) or
    left out (the full recipe against itself without it). ``comparison`` is None where the recipe does not
    use the step. Kept in a list (:func:`record`), not a file of its own."""

    recipe: str          # PICKED or PUBLISHED
    kind: str            # LADDER or LEAVE_ONE_OUT
    step: str            # one of STEPS, or "" for the ladder's first rung (the starting model)
    setting: str         # the setting scored (the rung, or the recipe without the step), in words
    value: str           # the step's value in the recipe, in words (step_words)
    j_and_f: float | None    # the J&F of the setting scored (None where the step is not used)
    comparison: dict | None  # claims.Comparison.as_dict(), None where the step is not used

    @property
    def change(self) -> claims.Comparison | None:
        return None if self.comparison is None else claims.Comparison.from_dict(self.comparison, source="ablation")


#: the file of the ablation rows: ``outputs/<run>/06_multiscale_fusion/ablation.json``
ABLATION_FILE = "ablation.json"
ABLATION_CHAPTER = "06_multiscale_fusion"


def ablation_rows(recipe: Recipe, results: Mapping[Setting, dict]) -> list[AblationRow]:
    """The ladder and leave-one-out rows of ``recipe`` from :func:`score_settings`' results. Shown in chapter 06."""
    rows = []
    ladder = recipe.ladder()
    start = ladder[0][1]
    rows.append(AblationRow(recipe.name, LADDER, "", start.describe(), "SAM 2 as it comes",
                            float(results[start]["J&F"]), None))
    for (_, below), (step, rung) in zip(ladder, ladder[1:]):
        value = step_words(step, recipe.full if step != "scale" else rung)
        used = rung != below
        change = claims.compare("", rung.describe(), results[rung], below.describe(), results[below],
                                split="test").as_dict() if used else None
        rows.append(AblationRow(recipe.name, LADDER, step, rung.describe(), value,
                                float(results[rung]["J&F"]) if used else None, change))
    for step in STEPS:
        without = recipe.without(step)
        value = ("the scales above 1" if step == "scale" and len(recipe.full.scales) > 1
                 else step_words(step, recipe.full))
        used = without != recipe.full
        change = claims.compare("", recipe.full.describe(), results[recipe.full], f"without {value}",
                                results[without], split="test").as_dict() if used else None
        rows.append(AblationRow(recipe.name, LEAVE_ONE_OUT, step, without.describe(), value,
                                float(results[without]["J&F"]) if used else None, change))
    return rows


def test_comparisons(plan: Plan, results: Mapping[Setting, dict],
                     rows: Sequence[AblationRow] = ()) -> list[claims.Comparison]:
    """The claims chosen on valid, scored once more on test (the same claim keys, split ``test``), and the
    run's final numbers: the recipe as picked against the starting model (claim 8, its words saying what
    carries the gain: :func:`credit_words` of ``rows``) and against the picked weights alone where they are
    fine-tuned. Shown in chapter 06."""
    out = [claims.compare(claim, treated_words, results[treated], base_words, results[base], split="test")
           for claim, treated_words, treated, base_words, base in plan.claim_tests]
    picked = next(r for r in plan.recipes if r.name == PICKED)
    out.append(claims.compare("recipe", f"the full recipe ({picked.full.describe()})", results[picked.full],
                              "the starting model", results[picked.start], split="test",
                              note=credit_words(rows, PICKED) or ""))
    alone = weights_alone(picked)
    if alone != picked.start:
        out.append(claims.compare("", "the full recipe", results[picked.full],
                                  f"the picked weights alone ({picked.full.weights_label})", results[alone],
                                  split="test"))
    return out


def final_scores(plan: Plan, results: Mapping[Setting, dict]) -> dict[str, float]:
    """J&F, J and F of the recipe as picked on the held-out split (for the report's table beside the
    leaderboards). Shown in chapter 06."""
    picked = next(r for r in plan.recipes if r.name == PICKED)
    return {key: float(results[picked.full][key]) for key in ("J&F", "J", "F")}


def record(run: str, rows: Sequence[AblationRow]) -> Path:
    """Write ``run``'s ablation rows (replacing what was recorded before). Shown in chapter 06."""
    path = choices.run_dir(run) / ABLATION_CHAPTER / ABLATION_FILE
    write_json(path, [row.as_dict() for row in rows])
    return path


def read(run: str) -> list[AblationRow]:
    """The ablation rows of ``run`` ([] where chapter 06 recorded none)."""
    path = choices.run_dir(run) / ABLATION_CHAPTER / ABLATION_FILE
    if not path.is_file():
        return []
    values = read_json(path)
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise DataError(path, "expected a JSON list of ablation rows")
    return [AblationRow.from_dict(v, source=path) for v in values]


def ablation_table(rows: Sequence[AblationRow]) -> pd.DataFrame:
    """The ablation as a table: recipe, reading, step, its value in the recipe, the setting scored and its
    J&F, then dJ&F with its 95% interval and what the interval says ("not used" where the recipe leaves the
    step out): for a ladder rung its change from the rung above, for leave-one-out what the step adds to the
    recipe (the full recipe minus the setting scored). Shown in chapters 06, 07."""
    out = []
    for row in rows:
        c = row.change
        out.append({"recipe": row.recipe, "reading": row.kind, "step": row.step or "start",
                    "value": row.value, "setting scored": row.setting, "J&F": row.j_and_f,
                    "dJ&F": c.delta if c else None, "CI low": c.ci_low if c else None,
                    "CI high": c.ci_high if c else None,
                    "interval": claims.interval_words(c) if c else ("" if not row.step else "not used"),
                    "videos": c.videos if c else None})
    table = pd.DataFrame(out, columns=["recipe", "reading", "step", "value", "setting scored", "J&F", "dJ&F",
                                       "CI low", "CI high", "interval", "videos"])
    return table.astype({"videos": "Int64"})


def table_caption(table: pd.DataFrame, videos: int) -> str:
    """The caption of :func:`ablation_table`, naming the recipes it ablates. Shown in chapter 06."""
    recipes = claims.listed([f"the recipe {name}" for name in dict.fromkeys(table["recipe"])])
    return (f"{recipes[0].upper()}{recipes[1:]}, ablated on {videos} held-out test videos: each step added to the "
            "starting model in turn (ladder) and left out of the full recipe (leave-one-out), dJ&F with its 95% CI")


def credit_words(rows: Sequence[AblationRow], recipe: str = PICKED) -> str | None:
    """What ``recipe``'s gain over the starting model comes from, in words made from its ladder: the steps
    whose rung lies above 0 carry it, those within noise add nothing these videos can resolve, those below
    cost; the steps it does not use are named. None where the recipe was not ablated."""
    ladder = [r for r in rows if r.recipe == recipe and r.kind == LADDER and r.step]
    if not ladder:
        return None
    above, noise, below, unused = [], [], [], []
    for row in ladder:
        c = row.change
        if c is None:
            unused.append(_STEP_NOUNS[row.step])
            continue
        words = f"{row.value} ({signed(c.delta)}, 95% CI {signed(c.ci_low)} to {signed(c.ci_high)})"
        (above if c.ci_low > 0 else below if c.ci_high < 0 else noise).append(words)
    parts = []
    if above:
        parts.append(f"the gain comes from {claims.listed(above)}")
    else:
        parts.append("no step adds a gain beyond noise")
    if noise:
        parts.append(f"{claims.listed(noise)} add{'s' if len(noise) == 1 else ''} nothing these videos can tell "
                     "from noise")
    if below:
        parts.append(f"{claims.listed(below)} cost{'s' if len(below) == 1 else ''} J&F beyond noise")
    words = "; ".join(parts)
    if unused:
        words += f"; the recipe {recipe} uses no {claims.listed(unused, 'or')}"
    return words[0].upper() + words[1:] + "."


_STEP_NOUNS = {"scale": "larger scale", "weights": "fine-tuning", "sigmoid": "searched sigmoid pair",
               "filling": "gap filling", "vote": "voting"}

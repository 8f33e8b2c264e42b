"""The paper's claims, each tested by a comparison the run recorded, with a verdict read from its interval.

FVOS makes eight claims that a run can test (:data:`CLAIMS`). Each is tested by one comparison: a
treatment against the baseline the claim names, scored on the same videos, with the paired 95%
interval of ``dJ&F`` (:func:`fvos_utils.metrics.evaluate.paired_difference`). The verdict follows from the
interval alone (:func:`verdict`):

- *supported*: the interval lies on the side the claim predicts (above 0 for a gain);
- *contradicted*: it lies on the other side;
- *not resolved*: it covers 0. Half the interval's width is the smallest effect these videos could
  have told from 0 (:attr:`Comparison.resolvable`), said beside every verdict;
- *not tested*: the run's settings cannot test the claim, whatever the interval: a fine-tuning stage
  trained for less than :data:`MIN_EPOCH_SHARE` of the paper's epochs (:data:`fvos_utils.method.train.PAPER_EPOCHS`)
  tests no claim about that stage, and a claim whose chapter ran without the step (test-time transforms
  not run) is not tested (:attr:`Comparison.untested` says why; the numbers are still shown).

A claim whose choice was made on valid (3, 5, 6) is scored once more on the held-out test split (chapter
06, :mod:`fvos_utils.studies.ablation`); the scorecard shows both rows and the run's words follow the held-out one.

Chapters record their comparisons (:func:`compare`, :func:`record`) in
``outputs/<run>/<chapter>/comparisons.json``; this module reads them back (:func:`read_run`) and never
recomputes a number: the scorecard (:func:`scorecard`), the final numbers on the held-out test split
(:func:`final_table`) and each chapter's closing words (:func:`conclusion`) are made from the records.
A comparison with an empty ``claim`` is reported in its chapter but tests no claim of the paper.

What the picks chose (:mod:`fvos_utils.method.choices`) is said in the chapter's closing words too, in plain
terms when doing nothing won (:func:`pick_sentence`).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import pandas as pd

from fvos_utils.base.io import DataError, read_json, write_json
from fvos_utils.method import choices
from fvos_utils.method.models import DEFAULT_SIGMOID
from fvos_utils.method.postprocess import NO_FILLING, PAPER_FILLING
from fvos_utils.metrics.evaluate import PairedDifference, paired_difference
from fvos_utils.metrics.percent import percent, signed
from fvos_utils.run.figures import PRINT_WIDTH

#: verdict words, in the order of the scorecard's legend
SUPPORTED, CONTRADICTED, NOT_RESOLVED, NOT_TESTED, NOT_RUN = (
    "supported", "contradicted", "not resolved", "not tested", "not run")
#: a fine-tuning stage trained for less than this share of the paper's epochs cannot test a claim about it
#: (the paper: 10 epochs of stage 1, 40 of stage 2; the demo's 2 and 1 test the machinery, not the claims)
MIN_EPOCH_SHARE = 0.5
#: what a claim predicts: a gain (the treatment scores higher) or no gain (it does not help)
GAIN, NO_GAIN = "gain", "no gain"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how a run tests it (the treatment and baseline in general words; each
    recorded :class:`Comparison` names the run's own)."""

    key: str
    label: str       # its number in the scorecard: "1" ... "8", "6b" for the row shown beside claim 6
    text: str        # the claim, as the paper makes it
    section: str     # where the paper makes it
    chapter: str     # the chapter that records its comparison
    treatment: str
    baseline: str
    split: str       # where it is judged: "test" (held out) or "valid" (where its choice was made)
    expects: str = GAIN


#: SAM 2's sigmoid pair as the claims name it
_PAIR = f"{DEFAULT_SIGMOID[0]:g} / {DEFAULT_SIGMOID[1]:g}"
_SAM2_PAIR = f"SAM 2's {_PAIR}"

CLAIMS: tuple[Claim, ...] = (
    Claim("finetune", "1", "Two-stage fine-tuning beats the starting model", "2.1", "03_epoch_selection",
          "the best fine-tuned epoch (picked on valid)", "the starting model", "test"),
    Claim("stage2", "2", "Stage 2 beats the best epoch of stage 1", "2.1", "03_epoch_selection",
          "the best stage-2 epoch (picked on valid)", "the best stage-1 epoch (picked on valid)", "test"),
    Claim("sigmoid", "3", f"The searched memory-encoder sigmoid beats {_SAM2_PAIR}", "3.4, Table 1",
          "04_sigmoid_search", f"the best searched pair other than {_PAIR}", _SAM2_PAIR, "valid"),
    Claim("fill", "4", f"Gap filling with a {PAPER_FILLING.shape} kernel of {PAPER_FILLING.kernel} beats no filling", "2.2", "05_morphology_ablation",
          f"the paper's rule, {PAPER_FILLING.words}", NO_FILLING.words, "valid"),
    Claim("kernel2", "5", f"A kernel of {PAPER_FILLING.kernel} is the best kernel size", "2.2, Figure 2", "05_morphology_ablation",
          f"the paper's rule, {PAPER_FILLING.words}", f"the best other {PAPER_FILLING.shape} kernel (picked on valid)", "valid"),
    Claim("fusion", "6", "Voting over the 7 scales beats the best single scale", "2.3", "06_multiscale_fusion",
          "7 scales, hard vote", "the best single scale (picked on valid)", "valid"),
    Claim("fusion_scale1", "6b", "Voting over the 7 scales beats scale 1 (shown beside claim 6)", "2.3",
          "06_multiscale_fusion", "7 scales, hard vote", "scale 1", "valid"),
    Claim("transforms", "7", "Flips and rotations do not help", "2.3", "06_multiscale_fusion",
          "7 scales with test-time transforms", "7 scales without", "valid", expects=NO_GAIN),
    Claim("recipe", "8", "The whole recipe beats the starting model", "2.1-2.3", "06_multiscale_fusion",
          "the full recipe as picked on valid", "the starting model", "test"),
)
CLAIMS_BY_KEY = {claim.key: claim for claim in CLAIMS}
#: the file of each chapter's comparisons: ``outputs/<run>/<chapter>/comparisons.json``
COMPARISONS_FILE = "comparisons.json"


@dataclass(frozen=True)
class Comparison(choices.Record):
    """A treatment against a baseline on the same videos (J&F as fractions): the change and its paired 95%
    interval. Kept in a list per chapter (:func:`record`), not as a file of its own."""

    claim: str               # a CLAIMS key, or "" (reported in its chapter, testing no claim)
    treatment: str           # the run's own, in words ("stage 2, epoch 1")
    baseline: str
    split: str               # "valid" or "test"
    videos: int              # the videos scored (the bootstrap resamples them)
    j_and_f: float           # the treatment's
    baseline_j_and_f: float
    delta: float             # dJ&F = j_and_f - baseline_j_and_f
    ci_low: float
    ci_high: float
    chosen_here: bool        # something in it was picked on these same videos: its score is optimistic
    cost: float | None       # the treatment's compute over the baseline's, where they differ (fusion)
    untested: str = ""       # why the run's settings cannot test its claim ("" where they can)
    note: str = ""           # a sentence more, made from numbers beside it (e.g. kernel 2 the least harmful)

    @property
    def resolvable(self) -> float:
        """Half the interval's width: about the smallest effect these videos could tell from 0."""
        return (self.ci_high - self.ci_low) / 2

    def verdict(self, expects: str = GAIN) -> str:
        return NOT_TESTED if self.untested else verdict(self.ci_low, self.ci_high, expects=expects)

    def describe(self) -> str:
        """One line: ``"<treatment> 65.99 against <baseline> 64.72: +1.27 (95% CI -0.45 to +2.96, within noise)"``
        (J&F in percent, the change in points)."""
        change = PairedDifference.describe_row({"dJ&F": self.delta, "CI low": self.ci_low, "CI high": self.ci_high})
        return f"{self.treatment} {percent(self.j_and_f)} against {self.baseline} {percent(self.baseline_j_and_f)}: {change}"


@dataclass(frozen=True)
class HeldOutScores(choices.Record):
    """Chapter 03's scores on the held-out test split, which chapter 06 pairs with the full recipe's for the
    run's final numbers: :func:`fvos_utils.metrics.scoring.scores_of` records (per-object scores included).
    Shown in chapters 03, 06."""

    chapter: ClassVar[str] = "03_epoch_selection"
    file_name: ClassVar[str] = "test_scores.json"

    videos: int
    starting: dict           # the starting model
    picked: dict             # chapter 03's pick (the starting model's scores again when it won)
    picked_label: str        # choices.EpochPick.label


def verdict(ci_low: float, ci_high: float, *, expects: str = GAIN) -> str:
    """The verdict on a claim that predicts ``expects`` (:data:`GAIN` or :data:`NO_GAIN`) from the 95%
    interval of its ``dJ&F``: above 0 supports a gain, below 0 contradicts it; for a claim of no gain
    (a change that does not help) below 0 supports it and above 0 contradicts it; an interval covering 0
    resolves neither."""
    if expects not in (GAIN, NO_GAIN):
        raise ValueError(f"expects must be {GAIN!r} or {NO_GAIN!r}, got {expects!r}")
    if ci_low > ci_high:
        raise ValueError(f"the interval's low end {ci_low} lies above its high end {ci_high}")
    if ci_low <= 0.0 <= ci_high:
        return NOT_RESOLVED
    above = ci_low > 0.0
    return SUPPORTED if above == (expects == GAIN) else CONTRADICTED


def _j_and_f(scores: Mapping) -> float:
    """The J&F of a :func:`fvos_utils.metrics.scoring.scores_of` record or an evaluator result."""
    return float(scores["J&F"] if "J&F" in scores else scores["global"]["J&F"])


def compare(claim: str, treatment: str, treatment_scores: Mapping, baseline: str, baseline_scores: Mapping, *,
            split: str, chosen_here: bool = False, cost: float | None = None, untested: str = "",
            note: str = "") -> Comparison:
    """The comparison of two results scored on the same objects (:func:`fvos_utils.metrics.scoring.scores_of`
    records or evaluator results), with the paired bootstrap interval over videos. Shown in chapters 02, 03, 04, 05, 06."""
    if claim and claim not in CLAIMS_BY_KEY:
        raise ValueError(f"unknown claim {claim!r} (claims: {', '.join(CLAIMS_BY_KEY)})")
    change = paired_difference(baseline_scores, treatment_scores)
    return Comparison(claim, treatment, baseline, split, change.videos, _j_and_f(treatment_scores),
                      _j_and_f(baseline_scores), change.delta, change.ci_low, change.ci_high, bool(chosen_here),
                      None if cost is None else float(cost), untested, note)


def record(run: str, chapter: str, comparisons: Sequence[Comparison]):
    """Write ``chapter``'s comparisons of ``run`` (replacing what it recorded before). Shown in chapters 02, 03, 04, 05, 06."""
    path = choices.run_dir(run) / chapter / COMPARISONS_FILE
    write_json(path, [c.as_dict() for c in comparisons])
    return path


def read(run: str, chapter: str) -> list[Comparison]:
    """The comparisons ``chapter`` of ``run`` recorded ([] where it recorded none)."""
    path = choices.run_dir(run) / chapter / COMPARISONS_FILE
    if not path.is_file():
        return []
    values = read_json(path)
    if not isinstance(values, list):
        raise DataError(path, "expected a JSON list of comparisons")
    if not all(isinstance(v, dict) for v in values):
        raise DataError(path, "every comparison must be a JSON object")
    return [Comparison.from_dict(v, source=path) for v in values]


def read_run(run: str) -> dict[str, list[Comparison]]:
    """``{chapter: comparisons}`` for every chapter of ``run`` that recorded some, in chapter order.
    Shown in chapter 07."""
    from fvos_utils.run.pipeline import CHAPTERS

    return {chapter: found for chapter in CHAPTERS if (found := read(run, chapter))}


# ------------------------------------------------------------------------------------ the scorecard
#: why a claim whose chapter ran recorded no comparison: its chapter ran without the step it is about
_NOT_IN_RUN = {"transforms": "the run's fusion used no test-time transform",
               "recipe": "the run has no held-out split with ground truth to score the recipe on"}


def _by_claim(comparisons: Mapping[str, Sequence[Comparison]]) -> dict[str, list[Comparison]]:
    """``{claim key: its comparisons}``, valid before test."""
    found: dict[str, list[Comparison]] = {}
    for chapter in comparisons.values():
        for c in chapter:
            if c.claim:
                found.setdefault(c.claim, []).append(c)
    return {k: sorted(v, key=lambda c: c.split != "valid") for k, v in found.items()}


def claim_verdicts(comparisons: Mapping[str, Sequence[Comparison]]) -> dict[str, tuple[str, Comparison | None]]:
    """``{claim key: (verdict, the comparison it rests on)}`` for every claim of :data:`CLAIMS`: the held-out
    test split's comparison where the claim has one, else its only one; :data:`NOT_TESTED` (no comparison)
    where the claim's chapter ran without the step, :data:`NOT_RUN` where it did not run."""
    found = _by_claim(comparisons)
    out = {}
    for claim in CLAIMS:
        rows = found.get(claim.key, [])
        if rows:
            c = next((r for r in rows if r.split == "test"), rows[0])
            out[claim.key] = (c.verdict(claim.expects), c)
        else:
            out[claim.key] = (NOT_TESTED if claim.chapter in comparisons else NOT_RUN, None)
    return out


def scorecard(comparisons: Mapping[str, Sequence[Comparison]]) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS` and split it was scored on (a claim chosen on valid and confirmed
    on test has both rows, valid first): claim, paper section, treatment, baseline, J&F of both, dJ&F, CI low,
    CI high, split, videos, verdict, and the smallest effect the videos could resolve. A claim with no
    comparison says :data:`NOT_RUN` (its chapter did not run) or :data:`NOT_TESTED` (it ran without the
    step). ``comparisons``: :func:`read_run`. Shown in chapter 07."""
    found = _by_claim(comparisons)
    rows = []
    for claim in CLAIMS:
        head = {"claim": f"({claim.label}) {claim.text}", "paper section": claim.section}
        if claim.key not in found:
            rows.append({**head, "treatment": claim.treatment, "baseline": claim.baseline, "J&F": None,
                         "baseline J&F": None, "dJ&F": None, "CI low": None, "CI high": None, "split": claim.split,
                         "videos": None, "verdict": NOT_TESTED if claim.chapter in comparisons else NOT_RUN,
                         "resolvable": None})
        for c in found.get(claim.key, []):
            rows.append({**head, "treatment": c.treatment, "baseline": c.baseline, "J&F": c.j_and_f,
                         "baseline J&F": c.baseline_j_and_f, "dJ&F": c.delta, "CI low": c.ci_low, "CI high": c.ci_high,
                         "split": c.split + (" (chosen here)" if c.chosen_here else ""), "videos": c.videos,
                         "verdict": c.verdict(claim.expects), "resolvable": c.resolvable})
    table = pd.DataFrame(rows)
    table["videos"] = table["videos"].astype("Int64")
    return table


#: the chapter that records the run's final numbers (the recipe, the picked weights and the starting model
#: on the held-out test split)
FINAL_CHAPTER = "06_multiscale_fusion"


def final_comparisons(comparisons: Mapping[str, Sequence[Comparison]]) -> list[Comparison]:
    """The run's final numbers: chapter 06's comparisons on the held-out test split of the recipe itself
    (claim 8, and the recipe against the picked weights alone where they are fine-tuned)."""
    return [c for c in comparisons.get(FINAL_CHAPTER, []) if c.split == "test" and c.claim in ("recipe", "")]


def final_table(comparisons: Mapping[str, Sequence[Comparison]]) -> pd.DataFrame:
    """:func:`final_comparisons` as a table; empty where none was recorded. Shown in chapter 07."""
    rows = [{"treatment": c.treatment, "baseline": c.baseline, "J&F": c.j_and_f, "baseline J&F": c.baseline_j_and_f,
             "dJ&F": c.delta, "CI low": c.ci_low, "CI high": c.ci_high, "videos": c.videos,
             "interval": interval_words(c)} for c in final_comparisons(comparisons)]
    return pd.DataFrame(rows, columns=["treatment", "baseline", "J&F", "baseline J&F", "dJ&F", "CI low", "CI high",
                                       "videos", "interval"]).astype({"videos": "Int64"})


def final_caption(table: pd.DataFrame) -> str:
    """The caption of :func:`final_table`, naming the rows it has. Shown in chapter 07."""
    pairs = [f"{t} against {b}" for t, b in zip(table["treatment"], table["baseline"])]
    return f"The run's final numbers on the held-out test split: {listed(pairs)}" if pairs else \
        "The run's final numbers on the held-out test split: none recorded"


def comparison_table(comparisons: Mapping[str, Sequence[Comparison]]) -> pd.DataFrame:
    """Every distinct comparison of the run, one row each in chapter order, grouped by the videos it was scored on
    (split, count): the claim it tests, treatment, baseline (each row names its own), J&F of both, dJ&F,
    its interval and what the interval says. Shown in chapter 07."""
    rows = [{"scored on": f"{c.videos} {_SPLIT_WORDS.get(c.split, c.split)} videos",
             "claim": CLAIMS_BY_KEY[c.claim].label if c.claim else "", "treatment": c.treatment, "baseline": c.baseline,
             "J&F": c.j_and_f, "baseline J&F": c.baseline_j_and_f, "dJ&F": c.delta, "CI low": c.ci_low,
             "CI high": c.ci_high, "interval": interval_words(c)}
            for found in comparisons.values() for c in found]
    table = pd.DataFrame(rows, columns=["scored on", "claim", "treatment", "baseline", "J&F", "baseline J&F",
                                        "dJ&F", "CI low", "CI high", "interval"])
    # a comparison two chapters recorded alike (chapter 03 repeats chapter 02's when stage 2 adds no better
    # epoch) is one row
    table = table.drop_duplicates(ignore_index=True)
    return table.sort_values("scored on", kind="stable").reset_index(drop=True)


def interval_words(c) -> str:
    """What a comparison's interval says: "within noise" (it covers 0), "above 0" or "below 0"."""
    return "within noise" if c.ci_low <= 0.0 <= c.ci_high else "above 0" if c.ci_low > 0 else "below 0"


def epochs_untested(claim: str, trained: Mapping[int, int], paper: Mapping[int, int]) -> str:
    """Why ``claim`` (``"finetune"`` or ``"stage2"``) cannot be tested with ``trained`` epochs per stage against
    the paper's ``paper`` ({stage: epochs}), or "" where every stage it is about trained at least
    :data:`MIN_EPOCH_SHARE` of the paper's epochs. Shown in chapter 03."""
    short = [f"stage {k} trained {trained.get(k, 0)} of the paper's {paper[k]} epochs" for k in sorted(paper)
             if trained.get(k, 0) < MIN_EPOCH_SHARE * paper[k]]
    if not short:
        return ""
    return (f"{listed(short)}, under the {MIN_EPOCH_SHARE:.0%} the kit requires to test a claim about "
            f"{'the two stages' if claim == 'finetune' else 'stage 2'}")


# ------------------------------------------------------------------------------------ closing words
_SPLIT_WORDS = {"valid": "valid", "test": "held-out test"}


def sentence(c: Comparison) -> str:
    """One comparison in plain words: the claim it tests (if any) with its verdict, the two scores, the
    change with its interval, and what the interval says."""
    claim = CLAIMS_BY_KEY.get(c.claim)
    expects = claim.expects if claim else GAIN
    found = c.verdict(expects)
    interval = f"dJ&F {signed(c.delta)} (95% CI {signed(c.ci_low)} to {signed(c.ci_high)})"
    head = f"**Claim {claim.label} ({claim.text[0].lower()}{claim.text[1:]}): {found}.** " if claim else ""
    if found == NOT_TESTED:
        head += f"The run cannot test it: {c.untested}. "
    words = (f"{head}On {c.videos} {_SPLIT_WORDS.get(c.split, c.split)} videos, {c.treatment} scores "
             f"{percent(c.j_and_f)} J&F against {percent(c.baseline_j_and_f)} for {c.baseline}: {interval}. ")
    if c.ci_low <= 0.0 <= c.ci_high:
        words += (f"The interval covers 0: these videos cannot tell the two apart (within noise); they could "
                  f"resolve only effects larger than about {percent(c.resolvable)} J&F points.")
    elif (c.ci_low > 0) == (expects == GAIN):
        words += ("The interval lies above 0: the gain is beyond noise on these videos." if expects == GAIN else
                  "The interval lies below 0: here the change hurts, beyond noise.")
    else:
        words += ("The interval lies below 0: here it is worse, beyond noise." if expects == GAIN else
                  "The interval lies above 0: here the change helps, beyond noise.")
    if c.cost is not None:
        words += f" It costs {c.cost:.1f}x the compute of {c.baseline}."
    if c.chosen_here:
        words += " One side was picked on these same videos, so its score is optimistic."
    if c.note:
        words += f" {c.note}"
    return words


def gain_words(pick, nothing: str) -> str:
    """A pick's change from doing nothing on valid (its ``gain`` fields), in words: ``"dJ&F +0.48 against
    SAM 2's pair, 95% CI +0.11 to +0.88"`` (points of J&F in percent), with "within noise" where the interval covers 0; "" where the
    record has no interval."""
    if pick.gain is None or pick.gain_low is None or pick.gain_high is None:
        return ""
    noise = ": within noise" if pick.gain_low <= 0.0 <= pick.gain_high else ""
    return (f"; dJ&F {signed(pick.gain)} against {nothing}, 95% CI {signed(pick.gain_low)} to "
            f"{signed(pick.gain_high)}{noise}")


def pick_sentence(run: str, chapter: str) -> str | None:
    """What ``chapter``'s pick (:mod:`fvos_utils.method.choices`) chose for the recipe, in words, with its change
    from doing nothing on valid ("within noise" where its interval covers 0); None where the chapter makes no
    pick or has not recorded one."""
    if chapter == choices.EpochPick.chapter and (pick := choices.EpochPick.read(run)):
        if not pick.fine_tuned:
            return ("**The pick: the starting weights.** No fine-tuned epoch scored above them on valid, so the "
                    f"recipe does not use fine-tuning (J&F {percent(pick.j_and_f)}).")
        return (f"**The pick: {pick.label}** (J&F {percent(pick.j_and_f)} on valid"
                f"{gain_words(pick, 'the starting weights')}); the later chapters and the recipe use it.")
    if chapter == choices.SigmoidPick.chapter and (pick := choices.SigmoidPick.read(run)):
        if (pick.scale, pick.bias) == DEFAULT_SIGMOID:
            return (f"**The pick: SAM 2's default pair {_PAIR}.** No searched pair scored above it on valid, so the "
                    "recipe keeps the default.")
        return (f"**The pick: scale {pick.scale:g}, bias {pick.bias:g}** (J&F {percent(pick.j_and_f)} on valid"
                f"{gain_words(pick, 'the default pair')}); the later chapters and the recipe use it on these weights.")
    if chapter == choices.KernelPick.chapter and (pick := choices.KernelPick.read(run)):
        if not pick.filling.fills:
            return ("**The pick: no gap filling.** No kernel scored above leaving the predictions as they are on "
                    "valid, so the recipe skips the step.")
        return (f"**The pick: the {pick.method} rule, {pick.shape} kernel {pick.kernel}** (J&F {percent(pick.j_and_f)} "
                f"on valid{gain_words(pick, 'no filling')}); the recipe fills every pass with it.")
    if chapter == choices.ScaleSetPick.chapter and (pick := choices.ScaleSetPick.read(run)):
        return _scale_set_sentence(pick)
    return None


def _scale_set_sentence(pick: choices.ScaleSetPick) -> str:
    if len(pick.scales) == 1:
        words = (f"**The pick: one pass at scale {pick.scales[0]:g}, no voting.** Among the candidates, every single "
                 f"scale and every scale set hard-voted in the recipe's order, none scored above this scale on "
                 f"valid (J&F {percent(pick.j_and_f)}{gain_words(pick, 'scale 1')}).")
    else:
        words = (f"**The pick: {pick.name}** ({len(pick.scales)} scales, hard vote; J&F {percent(pick.j_and_f)} on valid"
                 f"{gain_words(pick, 'scale 1')}); the recipe fuses these scales. The candidates were every single "
                 "scale and every scale set hard-voted in the recipe's order.")
    if pick.soft_name and pick.soft_j_and_f is not None:
        relation = "above" if pick.soft_j_and_f > pick.j_and_f else "not above"
        words += (f" Soft voting is not a candidate (the recipe votes hard, as the paper does): its best, "
                  f"{pick.soft_name}, scored {percent(pick.soft_j_and_f)}, {relation} the pick.")
    if pick.best_single is not None and pick.largest_tried is not None and pick.best_single >= pick.largest_tried:
        words += (f" The best single scale, {pick.best_single:g}, is the largest tried: J&F may rise further "
                  "beyond the grid.")
    return words


def conclusion(run: str, chapter: str) -> str:
    """A chapter's closing cell, "What this run shows", in Markdown: its pick and every comparison it recorded
    (:func:`sentence`). Shown in chapters 02, 03, 04, 05, 06."""
    lines = ["## What this run shows", ""]
    pick = pick_sentence(run, chapter)
    if pick:
        lines += [pick, ""]
    found = read(run, chapter)
    lines += [f"- {sentence(c)}" for c in found]
    if not found and not pick:
        lines.append("This chapter recorded no comparison in this run.")
    return "\n".join(lines)


def recipe_words(run: str) -> str | None:
    """The recipe ``run`` picked on valid, in words ("the starting weights, SAM 2's sigmoid 20 / -10, no gap
    filling, one pass at scale 1.75"); None where no chapter recorded a pick. A step whose chapter did not
    run is left out."""
    parts = []
    if pick := choices.EpochPick.read(run):
        parts.append(pick.label if not pick.fine_tuned else f"the weights of {pick.label}")
    if pick := choices.SigmoidPick.read(run):
        parts.append(f"SAM 2's sigmoid {_PAIR}" if (pick.scale, pick.bias) == DEFAULT_SIGMOID
                     else f"the sigmoid scale {pick.scale:g}, bias {pick.bias:g}")
    if pick := choices.KernelPick.read(run):
        parts.append(f"gap filling with the {pick.method} rule, {pick.shape} kernel {pick.kernel}"
                     if pick.filling.fills else "no gap filling")
    if pick := choices.ScaleSetPick.read(run):
        parts.append(f"one pass at scale {pick.scales[0]:g}" if len(pick.scales) == 1 else
                     f"{pick.name} ({', '.join(f'{s:g}' for s in pick.scales)}) with a hard vote")
    return ", ".join(parts) if parts else None


def listed(items: Sequence[str], conjunction: str = "and") -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"`` (or another ``conjunction``)."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def in_words(run: str, comparisons: Mapping[str, Sequence[Comparison]], *, credit: str | None = None) -> str:
    """The run's verdict in a few plain sentences (Markdown): which of the paper's claims it supports,
    contradicts, cannot resolve or cannot test (a claim confirmed on test by its held-out row), the recipe
    it picked on valid (:func:`recipe_words`), that recipe on the held-out test split against the starting
    model, and what its gain comes from (``credit``: :func:`fvos_utils.studies.ablation.credit_words` of the run's
    ablation). The README's results open with it. ``comparisons``: :func:`read_run`. Shown in chapter 07."""
    verdicts = claim_verdicts(comparisons)
    numbers = {found: [claim.label for claim in CLAIMS if verdicts[claim.key][0] == found]
               for found in (SUPPORTED, CONTRADICTED, NOT_RESOLVED, NOT_TESTED, NOT_RUN)}
    verbs = {SUPPORTED: "supports", CONTRADICTED: "contradicts", NOT_RESOLVED: "cannot resolve",
             NOT_TESTED: "does not test"}
    found = [f"{verbs[v]} {listed(numbers[v])}" for v in verbs if numbers[v]]
    main = sum(1 for claim in CLAIMS if claim.label.isdigit())
    if not found:
        said = "this run tested none of them."
    else:
        untested = f"; {listed(numbers[NOT_RUN])} did not run" if numbers[NOT_RUN] else ""
        said = f"this run {'; '.join(found)}{untested}."
    words = [f"**In words.** Of the paper's {main} claims (6b, the same vote against scale 1, shown beside 6), {said}"]
    if any(c is not None and c.split == "test" and len(_by_claim(comparisons)[key]) > 1
           for key, (_, c) in verdicts.items()):
        words.append("A claim chosen on valid and scored again on held-out test is judged by its test row.")
    if numbers[NOT_RESOLVED]:
        words.append("A claim it cannot resolve is one whose videos could not tell the change from none, in either "
                     "direction.")
    reasons = [f"{CLAIMS_BY_KEY[key].label}: {c.untested if c is not None else _NOT_IN_RUN.get(key, 'its step did not run')}"
               for key, (v, c) in verdicts.items() if v == NOT_TESTED]
    if reasons:
        words.append(f"Not tested ({'; '.join(reasons)}).")
    if recipe := recipe_words(run):
        words.append(f"The recipe picked on valid: {recipe}.")
    final = next((c for c in comparisons.get(FINAL_CHAPTER, []) if c.claim == "recipe"), None)
    if final is not None:
        words.append(f"On {final.videos} held-out test videos, which no choice saw, it scores {percent(final.j_and_f)} J&F "
                     f"against {percent(final.baseline_j_and_f)} for {final.baseline} (dJ&F {signed(final.delta)}, 95% CI "
                     f"{signed(final.ci_low)} to {signed(final.ci_high)}: {interval_words(final)}).")
    if credit:
        words.append(f"Step by step on the same videos (the ablation): {credit[0].lower()}{credit[1:]}")
    return " ".join(words)


#: marker colours of the verdicts in :func:`scorecard_figure`
VERDICT_COLOURS = {SUPPORTED: "#1b7837", CONTRADICTED: "#b2182b", NOT_RESOLVED: "0.45", NOT_TESTED: "#c7a252"}


def scorecard_figure(card: pd.DataFrame, *, title: str = "The paper's claims on this run"):
    """The scorecard as a forest plot: one row per claim, its dJ&F with the 95% interval against a line at 0,
    coloured by verdict; a claim not run says so in place of a point. ``card``: :func:`scorecard`.
    Shown in chapter 07."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(PRINT_WIDTH, 0.72 * len(card) + 1.4))  # up to four lines a claim
    ax.axvline(0, color="0.6", linewidth=0.8)
    rows = card.to_dict(orient="records")
    scored = [r for r in rows if not pd.isna(r["dJ&F"])]
    reach = 100 * max([abs(r[end]) for r in scored for end in ("CI low", "CI high")] + [0.01]) * 1.15
    for y, row in enumerate(rows):
        if pd.isna(row["dJ&F"]):  # no comparison: the verdict (not run, not tested) in place of a point
            ax.text(0, y, row["verdict"], ha="center", va="center", color="0.45",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
            continue
        change, low, high = (100 * row[column] for column in ("dJ&F", "CI low", "CI high"))  # in points
        ax.errorbar(change, y, xerr=[[change - low], [high - change]], fmt="o",
                    color=VERDICT_COLOURS[row["verdict"]], capsize=3)
    labels = [f"{r['claim']}\nvs {r['baseline']}; {r['split']}, {r['videos']} videos" if not pd.isna(r["dJ&F"])
              else r["claim"] for r in rows]
    # wrapped so that the claims take under half of the page's width and the intervals keep the rest
    ax.set_yticks(range(len(rows)), ["\n".join(textwrap.fill(part, 46) for part in label.split("\n")) for label in labels])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first claim on top
    ax.set_xlim(-reach, reach)
    ax.set_xlabel("dJ&F, the change of J&F from the claim's baseline\n(points, 95% CI)")
    ax.set_title(title)
    key = [Line2D([], [], marker="o", linestyle="none", color=colour, label=verdict)
           for verdict, colour in VERDICT_COLOURS.items()]
    fig.legend(handles=key, loc="lower center", ncol=len(key), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig

"""Chapter 06's study: multi-scale and test-time fusion (FVOS section 2.3).

The passes themselves (one per scale and transform) come from :func:`fvos_utils.method.recipe.run_passes`;
voting from :mod:`fvos_utils.method.fusion`. This module decides which fused results the chapter compares:

- :class:`FusionVariant`: a scale set x a transform set, hard or soft voting, gap filling none, before
  (each pass filled, then hard voting: the paper's order) or after fusion; :func:`fusion_variants`
  lists the chapter's, :func:`score_variants` fuses, fills and scores them.
- :func:`fusion_table`, :func:`cost_table`: the tables; :func:`fusion_figure`: the figure of both;
  :func:`best_variant` and :func:`scale_set_pick` (the chapter's choice for the recipe,
  :class:`fvos_utils.method.choices.ScaleSetPick`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from fvos_utils.base.paths import resolve
from fvos_utils.base.progress import progress_bar
from fvos_utils.method import fusion, postprocess
from fvos_utils.method.choices import ScaleSetPick, gain_fields
from fvos_utils.method.postprocess import PAPER_FILLING, GapFilling
from fvos_utils.method.recipe import Pass, fuse_folders
from fvos_utils.metrics.evaluate import paired_difference
from fvos_utils.metrics.scoring import score_folder, summary
from fvos_utils.run.figures import PRINT_WIDTH, label_points
from fvos_utils.studies import claims

#: how a variant's gap filling relates to its fusion
FILLINGS = ("none", "before", "after")
FUSIONS = ("hard", "soft")


@dataclass(frozen=True)
class FusionVariant:
    """A fused result: scale set x transform set (names), ``fusion`` hard or soft, and gap filling
    ``none``, ``before`` (each pass filled, then hard voting: the paper's order) or ``after`` fusion."""

    scales: str
    transforms: str
    fusion: str = "hard"
    filling: str = "none"

    def __post_init__(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be 'hard' or 'soft', got {self.fusion!r}")
        if self.filling not in FILLINGS:
            raise ValueError(f"filling must be 'none', 'before' or 'after', got {self.filling!r}")
        if self.fusion == "soft" and self.filling == "before":
            raise ValueError("soft voting fuses probabilities: gap filling can only come after it")

    @property
    def name(self) -> str:
        """The variant's folder and result key, e.g. ``"fvos7-identity-hard-fill_before"``."""
        return f"{self.scales}-{self.transforms}-{self.fusion}-fill_{self.filling}"

    @classmethod
    def from_name(cls, name: str) -> "FusionVariant":
        """The variant whose :attr:`name` is ``name`` (ValueError otherwise)."""
        found = re.fullmatch(r"(?P<scales>[a-z0-9]+)-(?P<transforms>[a-z0-9]+)-(?P<fusion>hard|soft)"
                             r"-fill_(?P<filling>none|before|after)", name)
        if not found:
            raise ValueError(f"not a fusion variant name (scales-transforms-hard|soft-fill_none|before|after): "
                             f"{name!r}")
        return cls(found["scales"], found["transforms"], found["fusion"], found["filling"])


def available_sets(sets: Mapping[str, Sequence], have: Sequence) -> dict[str, tuple]:
    """The named sets (e.g. :data:`fvos_utils.method.fusion.SCALE_SETS`) made only of values in ``have``."""
    return {name: tuple(values) for name, values in sets.items() if set(values) <= set(have)}


def fusion_variants(scale_sets: Sequence[str], transform_sets: Sequence[str], *,
                    fillings_for: Sequence[str] = ()) -> list[FusionVariant]:
    """Hard and soft voting without filling for every scale set x transform set, and, for the
    transform sets in ``fillings_for``, hard voting with filling before and after, soft with after."""
    out = []
    for t in transform_sets:
        for s in scale_sets:
            out += [FusionVariant(s, t, "hard"), FusionVariant(s, t, "soft")]
            if t in fillings_for:
                out += [FusionVariant(s, t, "hard", "before"), FusionVariant(s, t, "hard", "after"),
                        FusionVariant(s, t, "soft", "after")]
    return out


def score_variants(pass_dirs: Mapping[Pass, str | os.PathLike], gt_dir: str | os.PathLike,
                    work_dir: str | os.PathLike, variants: Sequence[FusionVariant], *,
                    scale_sets: Mapping[str, Sequence[float]] = fusion.SCALE_SETS,
                    transform_sets: Mapping[str, Sequence[str]] = fusion.TRANSFORM_SETS,
                    filling: GapFilling = PAPER_FILLING, videos: Sequence[str] | None = None,
                    tags: str | os.PathLike | Mapping | None = None, progress: bool = True) -> dict[FusionVariant, dict]:
    """Fuse, fill and score every variant; returns ``{variant: evaluator result}``. Shown in chapter 06.

    Args:
        pass_dirs: each available pass -> its folder (labels ``<video>/<frame>.png`` and probabilities
            ``<video>.npz``, as :func:`run_passes` writes; every folder holds the same videos). A variant
            fuses the passes of its scale set x transform set in ``pass_dirs`` order, so the first one
            (normally scale 1 without transform) breaks hard-voting ties.
        filling: the gap filling of ``before`` / ``after`` variants. ``before`` fills each pass's
            per-object masks (from its probabilities), as the paper fills single-model results;
            ``after`` fills the fused label maps.
        videos: the videos scored (default: every video of ``gt_dir``).

    Folders: ``work_dir/<variant.name>/`` (each with its ``scores.json``), the passes filled once under
    ``work_dir/filled/<pass.name>/``. Variant and filled-pass folders an earlier call left that this
    one does not write are removed at the end (:func:`fvos_utils.method.postprocess.remove_other_variants`).
    """
    work_dir = resolve(work_dir)
    pass_dirs = {p: resolve(d) for p, d in pass_dirs.items()}
    filled: dict[Pass, Path] = {}
    fused: set[FusionVariant] = set()
    results = {}
    for variant in progress_bar(variants, desc="fusion variants", show=progress):
        members = _members(variant, pass_dirs, scale_sets, transform_sets)
        out = work_dir / variant.name
        if variant.filling == "after":
            plain = replace(variant, filling="none")
            if plain not in fused:
                fuse_folders([pass_dirs[p] for p in members], work_dir / plain.name, plain.fusion)
                fused.add(plain)
            postprocess.fill_gaps_folder(work_dir / plain.name, out, filling.kernel, shape=filling.shape,
                                         method=filling.method, overwrite=True)
        else:
            if variant.filling == "before":
                for p in members:
                    if p not in filled:
                        filled[p] = postprocess.fill_variants(pass_dirs[p], work_dir / "filled" / p.name, [filling],
                                                              from_probs=True, overwrite=True, progress=False)[filling]
            fuse_folders([(filled if variant.filling == "before" else pass_dirs)[p] for p in members], out, variant.fusion)
            fused.add(variant)
        results[variant] = score_folder(gt_dir, out, videos=videos, tags=tags)
    postprocess.remove_other_variants(work_dir, {v.name for v in fused | set(variants)}, FusionVariant.from_name)
    postprocess.remove_other_variants(work_dir / "filled", {p.name for p in filled}, Pass.from_name)
    return results


def _members(variant: FusionVariant, pass_dirs: Mapping[Pass, Path], scale_sets: Mapping[str, Sequence[float]],
             transform_sets: Mapping[str, Sequence[str]]) -> list[Pass]:
    """The passes a variant fuses, in ``pass_dirs`` order; ValueError when one is missing."""
    scales, transforms = scale_sets[variant.scales], transform_sets[variant.transforms]
    members = [p for p in pass_dirs if p.scale in scales and p.transform in transforms]
    missing = sorted({(float(s), t) for s in scales for t in transforms} - {(p.scale, p.transform) for p in members})
    if missing:
        raise ValueError(f"{variant.name}: no pass for (scale, transform) {missing}")
    return members


def fusion_table(results: Mapping[FusionVariant, dict], *, scale_sets: Mapping[str, Sequence[float]] = fusion.SCALE_SETS,
                 transform_sets: Mapping[str, Sequence[str]] = fusion.TRANSFORM_SETS,
                 singles: Mapping[Pass, dict] | None = None, tag: str | None = "touching") -> pd.DataFrame:
    """One row per single pass (``singles``: ``{pass: evaluator result}``) and per fused variant:
    scales, transforms, fusion (``single`` / ``hard`` / ``soft``), gap filling, model passes, J&F, J, F
    (and J&F on the videos with ``tag``), and, where ``singles`` holds the pass at scale 1 without a
    transform, each row's change from it with its video-bootstrap 95% interval (``dJ&F``, ``CI low``,
    ``CI high``: :func:`fvos_utils.metrics.evaluate.paired_difference`). Indexed by the first four columns."""
    rows = [{"scales": f"{one.scale:g}", "transforms": one.transform, "fusion": "single", "filling": "none",
             "passes": 1, **summary(result, tag=tag), **change_from_scale_1(singles or {}, result)} for one, result in (singles or {}).items()]
    rows += [{"scales": v.scales, "transforms": v.transforms, "fusion": v.fusion, "filling": v.filling,
              "passes": len(scale_sets[v.scales]) * len(transform_sets[v.transforms]), **summary(result, tag=tag),
              **change_from_scale_1(singles or {}, result)} for v, result in results.items()]
    return pd.DataFrame(rows).set_index(["scales", "transforms", "fusion", "filling"])


def change_from_scale_1(singles: Mapping[Pass, dict], result: dict) -> dict[str, float]:
    """``result``'s J&F change from the single pass at scale 1 without a transform (``singles``:
    ``{pass: evaluator result}``) with its 95% interval, as the columns of
    :meth:`fvos_utils.metrics.evaluate.PairedDifference.row`; empty when that pass was not run. Shown in chapter 06."""
    reference = singles.get(Pass(1.0, "identity"))
    return {} if reference is None else paired_difference(reference, result).row()


def largest_set(scale_sets: Mapping[str, Sequence[float]]) -> str:
    """The name of the set with the most scales (the first on a tie). Shown in chapter 06."""
    return max(scale_sets, key=lambda name: len(scale_sets[name]))


def figure_caption(transform_sets: Mapping[str, Sequence[str]]) -> str:
    """The caption of :func:`fusion_figure` for the run it shows: the test-time transforms it used, or none.
    Shown in chapter 06."""
    used = [name for name, transforms in transform_sets.items() if list(transforms) != ["identity"]]
    transforms = (f"with and without the test-time transform sets {', '.join(used)}" if used else
                  "without test-time transforms (the run used none)")
    return ("Above: J&F (%) of each single scale, with the largest scale set fused by hard and by soft voting as "
            "lines. Below: each fused scale set's change of J&F from scale 1 (points) with its 95% interval, against "
            f"its model passes per frame (points labelled with their scale set), hard against soft voting, {transforms}.")


def fusion_figure(pass_table: pd.DataFrame, table: pd.DataFrame, results: Mapping[FusionVariant, dict],
                  scale_sets: Mapping[str, Sequence[float]]):
    """Chapter 06's fusion figure, two panels of J&F, each on its own labelled axis. Shown in chapter 06.

    Top: the J&F of every single pass against its scale, one line per transform (each its own marker
    and line style, so equal scores stay visible), and as horizontal lines the :func:`largest_set`
    fused without transforms, by hard and by soft voting (where ``results`` has them). Below: the change of
    J&F from scale 1 (``dJ&F``, in points) of every fused variant without gap filling, with its 95% interval,
    against its model passes per frame; colour: voting (hard
    left of the tick, soft right), marker: transform set; each hard point labelled with its scale set (points at the same place share a label;
    labels never overlap each other, a point or an interval, see :func:`fvos_utils.run.figures.label_points`).

    Args:
        pass_table: one row per pass indexed by ``(scale, transform)``, with ``J&F`` (chapter 06's
            ``single_passes`` table).
        table: :func:`fusion_table`, with ``dJ&F``, ``CI low`` and ``CI high`` (its ``single`` rows are not
            drawn on the right).
        results: ``{variant: evaluator result}`` (:func:`score_variants`).
        scale_sets: name -> scales.
    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    for name, frame, needed in (("pass_table", pass_table, ("scale", "transform")),
                                ("table", table, ("scales", "transforms", "fusion", "filling"))):
        columns = ("J&F",) if name == "pass_table" else ("J&F", "dJ&F", "CI low", "CI high")
        if list(frame.index.names) != list(needed) or not set(columns) <= set(frame.columns):
            raise ValueError(f"{name} must be indexed by {needed} and have the columns {list(columns)}, "
                             f"got index {list(frame.index.names)} and columns {list(frame.columns)}")
    # one above the other, each the page's width: room for the labels; own y ranges
    fig, (by_scale, by_cost) = plt.subplots(2, 1, figsize=(PRINT_WIDTH, 7.6))
    transforms = list(dict.fromkeys(pass_table.index.get_level_values("transform")))
    markers, lines = "osD^v<>", ("-", "--", ":", "-.")
    for i, transform in enumerate(transforms):
        rows = pass_table.xs(transform, level="transform")
        by_scale.plot(rows.index, 100 * rows["J&F"], marker=markers[i % len(markers)], linestyle=lines[i % len(lines)],
                      markerfacecolor="none" if i else None, label=f"single pass, {transform}")
    largest = largest_set(scale_sets)
    for fusion_method, style in (("hard", "-"), ("soft", ":")):
        variant = FusionVariant(largest, "identity", fusion_method)
        if variant in results:
            by_scale.axhline(100 * results[variant]["global"]["J&F"], linestyle=style, color="k", linewidth=1,
                             label=f"{largest} fused, {fusion_method} voting")
    by_scale.set_xlabel("scale (x base image size)")
    by_scale.set_title("single passes")

    plain = table.xs("none", level="filling")
    plain = plain[plain.index.get_level_values("fusion") != "single"]
    labels, bars = [], []
    voting_colours = {"hard": "C0", "soft": "C3"}
    for i, transform_set in enumerate(dict.fromkeys(plain.index.get_level_values("transforms"))):
        for fusion_method, colour in voting_colours.items():
            rows = plain[(plain.index.get_level_values("transforms") == transform_set)
                         & (plain.index.get_level_values("fusion") == fusion_method)]
            if rows.empty:
                continue
            shift = -0.12 if fusion_method == "hard" else 0.12  # hard and soft of one set side by side
            change = 100 * rows["dJ&F"]  # the change from scale 1, in points, with its own interval around it
            by_cost.errorbar(rows["passes"] + shift, change, yerr=[change - 100 * rows["CI low"],
                                                                  100 * rows["CI high"] - change],
                             marker="osD^v"[i % 5], linestyle="none", color=colour, ecolor=colour, elinewidth=0.8,
                             capsize=2, markerfacecolor="none" if i else colour, markersize=6,
                             label=f"{fusion_method} voting, transforms {transform_set}")
            bars += [(x, 100 * low, x, 100 * high)  # the labels keep clear of every interval
                     for x, low, high in zip(rows["passes"] + shift, rows["CI low"], rows["CI high"])]
            if fusion_method == "hard":  # one label per scale set: its soft point stands beside it
                labels += [(row["passes"] + shift, 100 * row["dJ&F"], scales) for (scales, _, _), row in rows.iterrows()]
    by_cost.axhline(0, color="0.5", linewidth=0.8, linestyle="--", label="scale 1 (no change)")
    by_cost.set_xlabel("model passes per frame")
    by_cost.set_title("fused, no gap filling (labels: scale sets, hard left, soft right;\n"
                      "bars: 95% CI of the change from scale 1)")
    by_cost.margins(x=0.12, y=0.15)  # room for the labels of the outermost points
    by_scale.set_ylabel("J&F (%)")
    by_cost.set_ylabel("dJ&F against scale 1 (points)")
    for ax in (by_scale, by_cost):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    left_out = label_points(by_cost, labels, avoid=bars)
    if left_out:
        by_cost.set_title(f"fused, no gap filling; not labelled for lack of room:\n{'; '.join(left_out)}")
    return fig


#: the filled variants :func:`fill_order_figure` draws, each against the same vote without filling
FILL_ORDERS = (("hard", "before"), ("hard", "after"), ("soft", "after"))


def fill_order_table(table: pd.DataFrame, scale_sets: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """J&F of every vote without transforms, one row per scale set (in ``scale_sets`` order), one column per
    (fusion, filling): what gap filling before, after or not at all gives each vote. ``table``:
    :func:`fusion_table`. Shown in chapter 06."""
    plain = table.xs("identity", level="transforms").reset_index()
    order = plain[plain["fusion"] != "single"].pivot(index="scales", columns=["fusion", "filling"], values="J&F")
    return order.reindex([name for name in scale_sets if name in order.index])


def fill_order_figure(results: Mapping[FusionVariant, dict], scale_sets: Sequence[str], filling: GapFilling):
    """Chapter 06's gap-filling order figure: for each scale set (no transform), the change of J&F that gap
    filling makes before and after hard voting and after soft voting, each against the same vote without
    filling, with its 95% interval (:func:`fvos_utils.metrics.evaluate.paired_difference`) around a line at 0.
    Shown in chapter 06.

    Returns the matplotlib figure, or None where ``results`` holds no filled variant with its unfilled one.
    """
    import matplotlib.pyplot as plt

    points = []
    for x, name in enumerate(scale_sets):
        for k, (method, order) in enumerate(FILL_ORDERS):
            filled, plain = (FusionVariant(name, "identity", method, f) for f in (order, "none"))
            if filled in results and plain in results:
                change = paired_difference(results[plain], results[filled])
                points.append((x + (k - 1) * 0.2, k, change))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(min(max(4.0, 1.2 * len(scale_sets) + 2.0), PRINT_WIDTH), 4.0))
    ax.axhline(0, color="0.5", linewidth=0.8)
    for k, (method, order) in enumerate(FILL_ORDERS):
        mine = [(x, c) for x, kk, c in points if kk == k]
        if mine:
            ax.errorbar([x for x, _ in mine], [100 * c.delta for _, c in mine],  # in points
                        yerr=[[100 * (c.delta - c.ci_low) for _, c in mine], [100 * (c.ci_high - c.delta) for _, c in mine]],
                        fmt="os^"[k], color=f"C{k}", capsize=3, label=f"{method} voting, filled {order}")
    ax.set_xticks(range(len(scale_sets)), list(scale_sets))
    ax.set_xlabel("scale set")
    ax.set_ylabel("dJ&F against no filling (points)")
    ax.set_title(f"Gap filling ({filling.name}) before or after voting,\n95% CI")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)  # below: the axes keep the width
    fig.tight_layout()
    return fig


def seconds_per_scale(pass_runs: Mapping[Pass, dict]) -> dict[float, float]:
    """Measured model seconds per frame at each scale: the mean over that scale's passes (a flip or a
    quarter turn keeps the pixel count and SAM 2 resizes to a square, so transforms cost the same)."""
    by_scale: dict[float, list[float]] = {}
    for one, run in pass_runs.items():
        by_scale.setdefault(one.scale, []).append(run["seconds_per_frame"])
    return {scale: float(np.mean(values)) for scale, values in by_scale.items()}


def cost_table(results: Mapping[FusionVariant, dict], pass_runs: Mapping[Pass, dict], *,
               scale_sets: Mapping[str, Sequence[float]], transform_sets: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """:func:`fvos_utils.method.fusion.cost_report` with the measured seconds of ``pass_runs``
    (:func:`fvos_utils.method.recipe.run_passes`), and the J&F of hard and soft voting without gap filling
    where ``results`` scored it (an empty cell where not); headers in words (:data:`COST_HEADERS`)."""
    report = fusion.cost_report(scale_sets, transform_sets, seconds_per_pass=seconds_per_scale(pass_runs))
    for row in report:
        for method in FUSIONS:
            scored = results.get(FusionVariant(row["scales"], row["transforms"], method))
            row[f"J&F {method}"] = scored["global"]["J&F"] if scored is not None else None
    return pd.DataFrame(report).set_index(["scales", "transforms"]).rename(columns=COST_HEADERS)


#: the cost table's headers in words (:func:`fvos_utils.method.fusion.cost_report` keys them for code)
COST_HEADERS = {"n_scales": "number of scales", "n_transforms": "number of transforms", "model_passes": "model passes",
                "seconds_per_frame": "s per frame"}


def best_variant(results: Mapping[FusionVariant, dict], *, filling: str = "none") -> FusionVariant:
    """The variant of the best J&F among those with gap filling ``filling`` (first in order on a tie)."""
    candidates = [v for v in results if v.filling == filling]
    if not candidates:
        raise ValueError(f"no fused variant with gap filling {filling!r} among the results")
    return max(candidates, key=lambda v: (results[v]["global"]["J&F"], -candidates.index(v)))


def recipe_filling(filling: GapFilling) -> str:
    """The :attr:`FusionVariant.filling` of the recipe's order for ``filling``: ``"before"`` (each pass filled,
    then voted) where it fills anything, ``"none"`` where it does not (the recipe then skips the step)."""
    return "before" if filling.fills else "none"


def score_single_scales(pass_dirs: Mapping[Pass, str | os.PathLike], singles: Mapping[Pass, dict],
                        gt_dir: str | os.PathLike, work_dir: str | os.PathLike, filling: GapFilling, *,
                        videos: Sequence[str] | None = None, tags=None) -> dict[Pass, dict]:
    """Each pass without a transform as the recipe would run it alone: gap filled with ``filling`` (from its
    probabilities, into ``work_dir/<pass>/``) and scored, or, where ``filling`` fills nothing, its own
    result in ``singles``. Returns ``{pass: evaluator result}``. Shown in chapter 06."""
    plain = [p for p in pass_dirs if p.transform == "identity"]
    if not filling.fills:
        return {p: singles[p] for p in plain}
    work_dir = resolve(work_dir)
    out = {}
    for one in plain:
        folder = postprocess.fill_variants(resolve(pass_dirs[one]), work_dir / one.name, [filling], from_probs=True,
                                           overwrite=True, progress=False)[filling]
        out[one] = score_folder(gt_dir, folder, videos=videos, tags=tags)
    return out


def best_single_scale(singles: Mapping[Pass, dict]) -> Pass:
    """The pass of the best J&F among ``singles`` (``{pass: evaluator result}``), the smaller scale on a tie."""
    return max(singles, key=lambda p: (singles[p]["global"]["J&F"], -p.scale))


def scale_set_pick(results: Mapping[FusionVariant, dict], scale_sets: Mapping[str, Sequence[float]],
                   single_scales: Mapping[Pass, dict], filling: GapFilling) -> ScaleSetPick:
    """Chapter 06's choice for the recipe: the best of every single scale (``single_scales``:
    :func:`score_single_scales`) and every scale set voted in the recipe's order (:func:`recipe_filling`,
    hard voting, no transform), on valid; on a tie the fewer passes (a single scale first: voting must
    beat doing without it), then the first. The record also holds the pick's change from scale 1 (95%
    interval), the best single scale, the largest scale tried and the best soft vote (not a candidate:
    the recipe votes hard, as the paper does). Shown in chapter 06."""
    order = recipe_filling(filling)
    candidates = [(f"scale{p.scale:g}", (p.scale,), single_scales[p]) for p in single_scales]
    candidates += [(v.scales, tuple(float(s) for s in scale_sets[v.scales]), r) for v, r in results.items()
                   if (v.transforms, v.fusion, v.filling) == ("identity", "hard", order) and len(scale_sets[v.scales]) > 1]
    if not candidates:
        raise ValueError(f"no single scale and no hard-voted variant with gap filling {order!r} among the results")
    name, scales, best = max(candidates, key=lambda c: (c[2]["global"]["J&F"], -len(c[1]), -candidates.index(c)))
    one = single_scales.get(Pass(1.0, "identity"))
    gain = paired_difference(one, best) if one is not None and scales != (1.0,) else None
    best_single = best_single_scale(single_scales) if single_scales else None
    soft = [v for v in results if v.fusion == "soft" and v.transforms == "identity" and len(scale_sets[v.scales]) > 1]
    top_soft = max(soft, key=lambda v: (results[v]["global"]["J&F"], -soft.index(v))) if soft else None
    return ScaleSetPick(name, scales, float(best["global"]["J&F"]),
                        *gain_fields(gain),
                        best_single=best_single.scale if best_single else None,
                        largest_tried=max(p.scale for p in single_scales) if single_scales else None,
                        soft_name=(f"{top_soft.scales} soft vote" + (", filled after" if top_soft.filling == "after" else ""))
                        if top_soft else "",
                        soft_j_and_f=float(results[top_soft]["global"]["J&F"]) if top_soft else None)


def _seconds(scales: Sequence[float], transforms: Sequence[str], per_scale: Mapping[float, float]) -> float:
    return sum(per_scale[float(s)] for s in scales) * len(transforms)


def fusion_comparisons(results: Mapping[FusionVariant, dict], single_scales: Mapping[Pass, dict],
                       singles: Mapping[Pass, dict], pass_runs: Mapping[Pass, dict], *,
                       scale_sets: Mapping[str, Sequence[float]], transform_sets: Mapping[str, Sequence[str]],
                       filling: GapFilling) -> list:
    """Chapter 06's comparisons (:class:`fvos_utils.studies.claims.Comparison`) on its valid videos, each with what it
    costs (measured seconds per frame of ``pass_runs``, over the baseline's):

    - claim 6: the :func:`largest_set` hard-voted in the recipe's order against the best single scale in the
      same order (picked on these videos); claim 6b: against scale 1;
    - soft voting of that set (no filling) against the best single scale without filling;
    - claim 7: that set hard-voted with the largest other transform set against it without transforms.

    Shown in chapter 06.
    """
    largest = largest_set(scale_sets)
    if len(scale_sets[largest]) < 2 or not single_scales:
        return []
    per_scale = seconds_per_scale(pass_runs)
    order = recipe_filling(filling)
    how = f", each pass filled ({filling.name})" if filling.fills else ""
    fused = results[FusionVariant(largest, "identity", "hard", order)]
    cost = _seconds(scale_sets[largest], ("identity",), per_scale)
    best = best_single_scale(single_scales)
    out = [claims.compare("fusion", f"{largest} hard vote{how}", fused, f"the best single scale, {best.scale:g}{how}",
                          single_scales[best], split="valid", chosen_here=True, cost=cost / per_scale[best.scale])]
    one = Pass(1.0, "identity")
    if one in single_scales:
        out.append(claims.compare("fusion_scale1", f"{largest} hard vote{how}", fused, f"scale 1{how}",
                                  single_scales[one], split="valid", cost=cost / per_scale[1.0]))
    soft = FusionVariant(largest, "identity", "soft")
    if soft in results:
        plain = {p: r for p, r in singles.items() if p.transform == "identity"}
        raw = best_single_scale(plain)
        out.append(claims.compare("", f"{largest} soft vote", results[soft], f"the best single scale, {raw.scale:g}",
                                  plain[raw], split="valid", chosen_here=True, cost=cost / per_scale[raw.scale]))
    others = [t for t in transform_sets if t != "identity"]
    if others:
        widest = max(others, key=lambda t: len(transform_sets[t]))
        out.append(claims.compare("transforms", f"{largest} with transforms {widest}",
                                  results[FusionVariant(largest, widest, "hard")], f"{largest} without transforms",
                                  results[FusionVariant(largest, "identity", "hard")], split="valid",
                                  cost=len(transform_sets[widest])))
    return out

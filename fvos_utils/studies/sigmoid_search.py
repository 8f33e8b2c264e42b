"""The memory-encoder sigmoid search (paper section 2.2, chapter 04): SAM 2's memory encoder reads
``sigmoid(logits) * scale + bias``; :func:`sigmoid_search` scores a grid of ``(scale, bias)`` pairs on one
loaded predictor (the two are read on every memory encoding, so no rebuild is needed), SAM 2's own pair
(:data:`fvos_utils.method.models.DEFAULT_SIGMOID`) always among the candidates, and :func:`sigmoid_comparisons`
states claim 3.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fvos_utils.base import paths
from fvos_utils.base.progress import progress_bar
from fvos_utils.method import choices, infer, models
from fvos_utils.method.models import DEFAULT_SIGMOID
from fvos_utils.metrics import evaluate as evaluation
from fvos_utils.metrics.percent import percent, signed
from fvos_utils.run.chapter import read_metrics
from fvos_utils.studies import claims, epoch_selection


def sigmoid_search(spec: models.PredictorSpec, *, scales: Sequence[float], biases: Sequence[float],
                   data_root: str | os.PathLike, split: str = "valid", gt_dir: str | os.PathLike,
                   out_dir: str | os.PathLike, videos: Sequence[str] | None = None, processes: int | None = None,
                   device: str | None = None, known: dict[tuple[float, float], dict] | None = None,
                   progress: bool = True) -> dict[tuple[float, float], dict]:
    """Scores of the model ``spec`` describes for every ``(scale, bias)`` of the memory-encoder sigmoid.
    Shown in chapter 04.

    With one process (``processes``; default: every visible GPU), one predictor is built and each pair is
    set on it (the two are read on every memory encoding, so no rebuild is needed); with several, each
    pair's videos are sharded over them. ``known``: pairs already scored with this model on these videos
    (:func:`pick_default_scores`), taken as they are instead of being run again.

    Returns ``{(scale, bias): scores}`` (:func:`scores_of` records) in row-major order of the grid
    (:func:`sigmoid_grid` arranges it).
    """
    processes = infer.inference_processes(device) if processes is None else processes
    predictor = spec.build(device) if processes == 1 else None
    results = {}
    for scale, bias in progress_bar([(s, b) for s in scales for b in biases], desc="sigmoid grid", show=progress):
        if (scale, bias) in (known or {}):
            results[(scale, bias)] = known[(scale, bias)]
            continue
        if predictor is not None:
            models.set_memory_sigmoid(predictor, scale=scale, bias=bias)
        results[(scale, bias)] = epoch_selection.score_model(dataclasses.replace(spec, sigmoid_scale=scale, sigmoid_bias=bias),
                                             data_root=data_root, split=split, gt_dir=gt_dir,
                                             out_dir=Path(out_dir) / f"scale{scale:g}_bias{bias:g}", videos=videos,
                                             predictor=predictor, processes=processes, device=device)
    return results


def pick_default_scores(run: str, *, data_root: str | os.PathLike, seed: int, videos: Sequence[str]) -> dict | None:
    """The valid scores (a :func:`scores_of` record) of chapter 03's pick with SAM 2's default sigmoid, as
    chapters 02 and 03 measured them, where they were measured on ``videos`` of the same ``data_root`` and
    ``seed``; None otherwise (chapter 03 has not run, or scored other videos). What the sigmoid search
    need not run again for the default pair. Shown in chapter 04."""

    pick = choices.EpochPick.read(run)
    if pick is None:
        return None
    finetune = read_metrics(run, "02_finetune")
    same_data = (paths.resolve(finetune["parameters"]["data_root"]) == paths.resolve(data_root)
                 and finetune["parameters"]["seed"] == seed)
    if pick.fine_tuned:
        entries = read_metrics(run, "03_epoch_selection")["scores"][str(pick.stage)]
        scores = next(e for e in entries if e["epoch"] == pick.epoch)
    else:
        scores = finetune["start"]
    scored = sorted({o["video"] for o in scores["objects"]})
    return scores if same_data and scored == sorted(videos) else None


def sigmoid_grid(results: dict[tuple[float, float], dict], scales: Sequence[float],
                 biases: Sequence[float]) -> np.ndarray:
    """:func:`sigmoid_search`'s J&F as ``(len(scales), len(biases)) float64`` (NaN where a pair is missing).
    Shown in chapter 04."""
    return np.array([[results[(s, b)]["J&F"] if (s, b) in results else np.nan for b in biases] for s in scales],
                    dtype=np.float64)


def sigmoid_table(results: dict[tuple[float, float], dict], *,
                  default: tuple[float, float] = DEFAULT_SIGMOID) -> pd.DataFrame:
    """Every pair of :func:`sigmoid_search`: index ``(scale, bias)``, columns J&F, J, F and, where the
    config's pair ``default`` is on the grid, the change from it with its 95% interval
    (:attr:`fvos_utils.metrics.evaluate.PairedDifference.COLUMNS`). Shown in chapter 04."""
    reference = results.get(tuple(default))
    rows = [{"scale": scale, "bias": bias, **{key: r[key] for key in ("J&F", "J", "F")},
             **(evaluation.paired_difference(reference, r).row() if reference is not None else {})}
            for (scale, bias), r in results.items()]
    return pd.DataFrame(rows).set_index(["scale", "bias"])


def with_default_pair(scales: Sequence[float], biases: Sequence[float], *,
                      default: tuple[float, float] = DEFAULT_SIGMOID) -> tuple[list[float], list[float]]:
    """The grid's scales and biases with the config's pair ``default`` added where missing (sorted), so that
    keeping SAM 2's pair is always a candidate of the search. Shown in chapter 04."""
    return (sorted({float(s) for s in scales} | {float(default[0])}),
            sorted({float(b) for b in biases} | {float(default[1])}))


def pick_sigmoid(run: str, grid: np.ndarray, scales: Sequence[float], biases: Sequence[float], *,
                 tuned_on: str, default: tuple[float, float] = DEFAULT_SIGMOID,
                 results: dict[tuple[float, float], dict] | None = None) -> choices.SigmoidPick:
    """Chapter 04's pick: the grid's maximum, where the config's pair ``default`` (which must be on the
    grid: :func:`with_default_pair`) wins a tie, then the first in row-major order; ``tuned_on``: the
    weights searched with. With :func:`sigmoid_search`'s ``results`` (the scores behind ``grid``), the
    record also holds the pick's change from ``default`` with its 95% interval and the best pair other than
    ``default`` (:func:`best_other_pair`). Shown in chapter 04."""
    if default[0] not in scales or default[1] not in biases:
        raise ValueError(f"the default pair {default} is not on the grid: search with_default_pair(...)")
    d = (list(scales).index(default[0]), list(biases).index(default[1]))
    best = np.unravel_index(int(np.nanargmax(grid)), grid.shape)
    i, j = d if grid[d] >= grid[best] else best
    pair = (float(scales[i]), float(biases[j]))
    gain, other = None, None
    if results is not None:
        gain = evaluation.paired_difference(results[tuple(default)], results[pair]) if (i, j) != d else None
        other = best_other_pair(results, default=default)
    return choices.SigmoidPick(pair[0], pair[1], float(grid[i, j]), float(grid[d]),
                               choices.weights_reference(run, tuned_on),
                               *choices.gain_fields(gain),
                               searched=tuple(float(v) for v in other) if other else ())


def sigmoid_comparisons(results: dict[tuple[float, float], dict], *,
                        default: tuple[float, float] = DEFAULT_SIGMOID) -> list:
    """Chapter 04's comparison (:class:`fvos_utils.studies.claims.Comparison`) on its valid videos: the best searched
    pair other than ``default`` against it (claim 3, picked on these videos); none where the search tried no
    other pair. Shown in chapter 04."""

    other = best_other_pair(results, default=default)
    if other is None:
        return []
    return [claims.compare("sigmoid", f"scale {other[0]:g}, bias {other[1]:g}", results[other],
                           f"SAM 2's {default[0]:g} / {default[1]:g}", results[tuple(default)], split="valid",
                           chosen_here=True)]


def best_other_pair(results: dict[tuple[float, float], dict], *,
                    default: tuple[float, float] = DEFAULT_SIGMOID) -> tuple[float, float] | None:
    """The searched pair of the best J&F other than ``default`` (the first on a tie), None where the search
    tried no other. Shown in chapter 04."""
    others = [pair for pair in results if tuple(pair) != tuple(default)]
    return max(others, key=lambda p: (results[p]["J&F"], -others.index(p))) if others else None


#: the smallest half-range of the heatmap's colour scale (J&F): a grid whose cells differ by less keeps pale
#: colours, so that differences within noise do not look like contrast
SIGMOID_COLOUR_SPAN = 0.05


def mapping_figure(scales: Sequence[float], biases: Sequence[float], *, default: tuple[float, float] = DEFAULT_SIGMOID):
    """What the memory encoder sees: ``sigmoid(logit) * scale + bias`` over mask logits -8..8 for every pair of
    the grid, the ``default`` pair solid and thick, the others dashed. Shown in chapter 04."""
    import matplotlib.pyplot as plt

    logits = np.linspace(-8, 8, 200)
    fig, ax = plt.subplots(figsize=(4, 3))
    for scale in scales:
        for bias in biases:
            chosen = (scale, bias) == tuple(default)
            ax.plot(logits, 1 / (1 + np.exp(-logits)) * scale + bias, linewidth=2 if chosen else 0.8,
                    linestyle="-" if chosen else "--",
                    label=f"scale {scale:g}, bias {bias:g}" + (" (default)" if chosen else ""))
    ax.set_xlabel("mask logit")
    ax.set_ylabel("memory encoder input")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # beside the curves: one line a pair
    return fig


def plot_sigmoid_grid(ax, grid: np.ndarray, scales: Sequence[float], biases: Sequence[float],
                      table: pd.DataFrame | None = None, *, default: tuple[float, float] = DEFAULT_SIGMOID):
    """Heatmap over (scale rows, bias columns): colour is each pair's change of J&F from ``default`` (the
    config's 20 / -10, boxed with a dashed line and labelled) in points, on a diverging scale centred on 0 that
    spans at least :data:`SIGMOID_COLOUR_SPAN` either way; every cell gives its J&F (%) and, with ``table``
    (:func:`sigmoid_table`), the change and its 95% interval; the best pair is boxed in red. Returns the
    image (for a colour bar). Shown in chapter 04."""
    from matplotlib.patches import Rectangle

    scales, biases = list(scales), list(biases)
    if default[0] not in scales or default[1] not in biases:
        raise ValueError(f"the default pair {default} is not on the grid: search with_default_pair(...)")
    d = (scales.index(default[0]), biases.index(default[1]))
    change = 100 * (grid - grid[d])  # in points, as the labels
    span = max(100 * SIGMOID_COLOUR_SPAN, float(np.nanmax(np.abs(change))))
    image = ax.imshow(change, cmap="RdBu", vmin=-span, vmax=span, origin="lower", aspect="auto")
    ax.set_xticks(range(len(biases)), [f"{b:g}" for b in biases])
    ax.set_yticks(range(len(scales)), [f"{s:g}" for s in scales])
    ax.set_xlabel("memory sigmoid bias")
    ax.set_ylabel("memory sigmoid scale")
    for (i, j), value in np.ndenumerate(grid):
        label = percent(value) + (" (default)" if (i, j) == d else "")
        if table is not None and "dJ&F" in table and (scales[i], biases[j]) in table.index and (i, j) != d:
            row = table.loc[(scales[i], biases[j])]
            label += f"\n{signed(row['dJ&F'])}\n[{signed(row['CI low'])}, {signed(row['CI high'])}]"
        ax.text(j, i, label, ha="center", va="center",
                color="w" if abs(change[i, j]) > 0.6 * span else "k")
    ax.add_patch(Rectangle((d[1] - 0.5, d[0] - 0.5), 1, 1, fill=False, edgecolor="k", linestyle="--", linewidth=1.5))
    i, j = np.unravel_index(int(np.nanargmax(grid)), grid.shape)
    ax.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor="r", linewidth=2))
    return image

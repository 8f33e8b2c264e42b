"""Choosing what to submit: the best training epoch, the memory-encoder sigmoid, and the MOSE zip.

- :func:`score_epochs` propagates every epoch's weights of a training stage over a validation split
  that has full ground truth (the synthetic valid set, or a hold-out of MOSE train), scores J&F, and
  :func:`select_best` / :func:`record_best` pick the argmax and write it where stage 2
  (``init: best``) and later notebooks read it (``outputs/<run>/train/stage<k>/best_epoch.json``).
- :func:`sigmoid_search` scores a grid of the memory encoder's ``sigmoid(logits) * scale + bias``
  on one loaded predictor (the two are read on every memory encoding, so no rebuild is needed).
- :func:`check_submission` / :func:`write_submission`: a MOSE server zip
  (``Annotations/<video>/<frame>.png``), checked against the val folder (every frame, its size, the
  DAVIS palette) before anything is written.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from . import evaluate as evaluation
from . import choices, datasets, infer, io, models, paths, train
from .progress import progress_bar

#: the memory-encoder sigmoid ``(scale, bias)`` of every released SAM 2 config
DEFAULT_SIGMOID = (20.0, -10.0)


def scores_of(result: dict) -> dict:
    """What a chapter keeps of an :func:`fvos_utils.evaluate.evaluate` result: the global ``"J&F"``, ``"J"``,
    ``"F"`` and, per object, ``{"video", "object", "J", "F"}`` under ``"objects"``, enough for
    :func:`fvos_utils.evaluate.paired_difference` against another such record."""
    return {**{key: float(result["global"][key]) for key in ("J&F", "J", "F")},
            "objects": [{key: obj[key] for key in ("video", "object", "J", "F")} for obj in result["objects"]]}


def score_model(spec: models.PredictorSpec, *, data_root: str | os.PathLike, split: str, gt_dir: str | os.PathLike,
                out_dir: str | os.PathLike, videos: Sequence[str] | None = None, eval_workers: int = 1,
                predictor=None, processes: int | None = None, device: str | None = None) -> dict:
    """Propagate the model ``spec`` describes over ``split`` into ``out_dir`` (:func:`fvos_utils.infer.run_split`:
    sharded over ``processes``, default every visible GPU; ``predictor``: one already built from ``spec``,
    reused when one process runs) and score it against ``gt_dir`` with ``eval_workers`` evaluator
    processes. Returns :func:`scores_of` the evaluation (``"J&F"``, ``"J"``, ``"F"``, ``"objects"``).
    Shown in chapter 02."""
    infer.run_split(spec, data_root, out_dir, predictor=predictor, processes=processes, device=device, split=split,
                    videos=videos, overwrite=True, progress=False)
    return scores_of(evaluation.evaluate(paths.resolve(gt_dir), out_dir, videos=videos, workers=eval_workers,
                                         progress=False))


def score_weights(model: str, weights: str | os.PathLike, split: datasets.ValidationSplit, out_dir: str | os.PathLike,
                  *, device: str | None = None, processes: int | None = None) -> dict:
    """:func:`score_model` for a weights file (or ``"random"``) on a held-out split (valid or test).
    Shown in chapters 02, 03."""
    return score_model(models.PredictorSpec(model, str(weights)), data_root=split.root, split=split.name,
                       gt_dir=split.gt_dir, out_dir=out_dir, videos=split.videos, processes=processes, device=device)


def _epochs_to_run(model: str, weights: dict[int, Path], processes: int, device: str | None):
    """``(epoch, spec, predictor)`` for each of ``weights`` (``{epoch: file}``): with one process, one predictor
    built once and each epoch's weights loaded into it; with several, None (each process builds its own)."""
    predictor = None
    for epoch, path in weights.items():
        if processes == 1:
            if predictor is None:
                predictor = models.build_predictor(model, path, device=device)
            models.load_weights(predictor, path)
        yield epoch, models.PredictorSpec(model, str(path)), predictor


def score_epochs(stage_folder: str | os.PathLike, *, data_root: str | os.PathLike, split: str = "valid",
                 gt_dir: str | os.PathLike, out_dir: str | os.PathLike, model: str = "fvos_tiny",
                 epochs: Sequence[int] | None = None, videos: Sequence[str] | None = None,
                 device: str | None = None, processes: int | None = None, eval_workers: int = 1,
                 progress: bool = True) -> list[dict]:
    """J&F of each epoch's model-only weights of a stage (``weights/epoch_NNN.pt``). Shown in chapters 02, 03.

    Each epoch's videos are sharded over ``processes`` (default: every visible GPU; with one, a single
    predictor is built and each epoch's weights are loaded into it). Predictions go to
    ``out_dir/epoch_NNN/``. Returns ``[{"epoch", "weights", "J&F", "J", "F", "objects"}]`` in epoch order
    (``objects``: :func:`scores_of`'s, for paired differences).
    """
    available = train.epoch_weights(stage_folder)
    if not available:
        raise io.DataError(Path(stage_folder) / "weights", "no per-epoch weights (has this stage trained?)")
    wanted = sorted(available) if epochs is None else list(epochs)
    missing = [e for e in wanted if e not in available]
    if missing:
        raise io.DataError(Path(stage_folder) / "weights", f"no weights for epoch(s) {missing} "
                                                           f"(present: {sorted(available)})")
    processes = infer.inference_processes(device) if processes is None else processes
    scores = []
    runs = _epochs_to_run(model, {e: available[e] for e in wanted}, processes, device)
    for epoch, spec, predictor in progress_bar(runs, total=len(wanted), desc="epochs", unit="epoch", show=progress):
        result = score_model(spec, data_root=data_root, split=split, gt_dir=gt_dir,
                             out_dir=Path(out_dir) / f"epoch_{epoch:03d}", videos=videos, eval_workers=eval_workers,
                             predictor=predictor, processes=processes, device=device)
        scores.append({"epoch": epoch, "weights": spec.checkpoint, **result})
    return scores


def epoch_table(scores_by_stage: dict[int, Sequence[dict]], start: dict) -> pd.DataFrame:
    """Every epoch of both stages against the starting model: index ``(stage, epoch)``, columns J&F, J, F
    and :attr:`fvos_utils.evaluate.PairedDifference.COLUMNS` (the change from ``start``, a
    :func:`scores_of` record, with its video-bootstrap 95% interval). Shown in chapter 03."""
    rows = [{"stage": stage, "epoch": s["epoch"], **{key: s[key] for key in ("J&F", "J", "F")},
             **evaluation.paired_difference(start, s).row()}
            for stage, scores in sorted(scores_by_stage.items()) for s in scores]
    return pd.DataFrame(rows).set_index(["stage", "epoch"])


#: the key of a bundled model's record (``fvos_utils/assets/<model>.json``) holding its scores on the held-out
#: videos of the world it was pretrained in (written by benchmarks/bundled_model.py --record)
PRETRAIN_WORLD = "synthetic pretrain valid (held out, seed 0)"


def domain_gap_table(here: dict, pretrain_world: dict) -> pd.DataFrame:
    """J&F of the starting model on its pretraining world's held-out videos (``pretrain_world``: the record's
    ``{"J&F", "per_tag": {tag: J&F}}``) beside this run's (``here``: an evaluate result scored with tags),
    overall and per hard-case tag; ``gap`` is here minus there. Shown in chapter 02."""
    rows = {"all videos": (pretrain_world["J&F"], here["global"]["J&F"])}
    for tag, scores in here.get("per_tag", {}).items():
        rows[f"tag: {tag}"] = (pretrain_world.get("per_tag", {}).get(tag, float("nan")), scores["J&F"])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["pretrain world (held out)", "this dataset"])
    table["gap"] = table["this dataset"] - table["pretrain world (held out)"]
    return table



def domain_gap(model: str, start_weights: str | os.PathLike, here: dict) -> pd.DataFrame | None:
    """:func:`domain_gap_table` of ``here`` (an evaluate result of ``start_weights``, scored with tags) against
    the record of the bundled model, or None when ``start_weights`` are not its bundled file (no record of
    the world they were pretrained in). Shown in chapter 02."""
    record = models.bundled_record(model, start_weights)
    return domain_gap_table(here, record["scores"][PRETRAIN_WORLD]) if record else None

def select_best(scores: Sequence[dict], *, key: str = "J&F") -> dict:
    """The entry with the highest ``key``; on a tie the earliest epoch (fewer epochs, same score)."""
    if not scores:
        raise ValueError("no epoch scores to choose from")
    return max(scores, key=lambda s: (s[key], -s["epoch"]))


def record_best(run: str, stage: int, scores: Sequence[dict]) -> dict:
    """Write the best epoch of ``scores`` (and all of them) to :func:`train.best_epoch_file`; returns it.
    Shown in chapters 02, 03."""
    best = select_best(scores)
    io.write_json(train.best_epoch_file(run, stage), {**best, "scores": list(scores)})
    return best


def read_best(run: str, stage: int) -> dict:
    """The recorded best epoch of a stage (DataError if epoch selection has not run). Shown in chapter 03."""
    return io.read_json(train.best_epoch_file(run, stage))


def best_epoch(scores_by_stage: dict[int, Sequence[dict]], *, stages: Sequence[int] | None = None) -> tuple[int, dict]:
    """``(stage, entry)`` of the best fine-tuned epoch on :func:`score_epochs` results (of ``stages``, default
    all); on a tie the earlier stage, then the earlier epoch. Shown in chapter 03."""
    entries = [(stage, s) for stage, scores in scores_by_stage.items() if stages is None or stage in stages
               for s in scores]
    if not entries:
        raise ValueError("no epoch scores to choose from")
    return max(entries, key=lambda e: (e[1]["J&F"], -e[0], -e[1]["epoch"]))


def pick_epoch(run: str, scores_by_stage: dict[int, Sequence[dict]], *, start_weights: str,
               start: dict) -> choices.EpochPick:
    """Chapter 03's pick: the best of the starting weights (``start_weights``, scored ``start``) and every
    epoch of every stage (:func:`score_epochs` results); the starting weights win a tie (doing nothing must
    be beaten), then the earlier stage and epoch. Shown in chapter 03."""
    tuned_stage, tuned = best_epoch(scores_by_stage)
    stage, best = tuned_stage, tuned
    if best["J&F"] <= start["J&F"]:
        stage, best = choices.STARTING_STAGE, {"epoch": 0, "weights": start_weights, **start}
    gain = evaluation.paired_difference(start, best) if stage != choices.STARTING_STAGE else None
    return choices.EpochPick(stage, int(best["epoch"]), choices.weights_reference(run, best["weights"]),
                             float(best["J&F"]), float(best["J"]), float(best["F"]),
                             *choices.gain_fields(gain),
                             starting_weights=choices.weights_reference(run, start_weights),
                             fine_tuned_weights=choices.weights_reference(run, tuned["weights"]),
                             fine_tuned_label=epoch_label(tuned_stage, tuned))


def valid_predictions_dir(run: str, stage: int, epoch: int | None = None) -> Path:
    """Where a run keeps the valid predictions that scored the starting weights (``stage``
    :data:`fvos_utils.choices.STARTING_STAGE`) or a stage's epochs (``epoch``: that epoch's folder): chapter 02
    scores the start and stage 1, chapter 03 stage 2. Shown in chapters 02, 03."""
    if stage == choices.STARTING_STAGE:
        return paths.outputs_dir(f"{run}/02_finetune") / "predictions" / "start"
    chapter = "02_finetune" if stage == 1 else "03_epoch_selection"
    folder = paths.outputs_dir(f"{run}/{chapter}") / "predictions" / f"stage{stage}"
    return folder if epoch is None else folder / f"epoch_{epoch:03d}"


def epoch_label(stage: int, entry: dict) -> str:
    """``"stage 2, epoch 1"`` for a :func:`score_epochs` entry of ``stage``. Shown in chapter 03."""
    return f"stage {stage}, epoch {entry['epoch']}"


def best_epochs_on_test(model: str, scores_by_stage: dict[int, Sequence[dict]], start_weights: str,
                        test: datasets.ValidationSplit, out_dir: str | os.PathLike) -> dict:
    """The starting weights (key ``"start"``) and each stage's best epoch on valid (key: the stage) scored on
    the held-out ``test`` split (:func:`score_weights`, predictions under ``out_dir``). Shown in chapter 03."""
    out_dir = Path(out_dir)
    on_test = {"start": score_weights(model, start_weights, test, out_dir / "start")}
    for stage, scores in sorted(scores_by_stage.items()):
        if scores:
            _, entry = best_epoch(scores_by_stage, stages=[stage])
            on_test[stage] = score_weights(model, entry["weights"], test, out_dir / f"stage{stage}_epoch_{entry['epoch']:03d}")
    return on_test


def epoch_comparisons(scores_by_stage: dict[int, Sequence[dict]], start: dict, on_test: dict | None) -> list:
    """Chapter 03's comparisons (:class:`fvos_utils.claims.Comparison`): the best fine-tuned epoch against
    the starting model (``start``: its valid scores) on valid, where it was picked; and, with ``on_test``
    (:func:`best_epochs_on_test`), on the held-out test split (claim 1), and the best stage-2 epoch against
    the best stage-1 epoch there (claim 2). A claim about stages trained for far fewer epochs than the
    paper's is marked not tested (:func:`fvos_utils.claims.epochs_untested`; the epochs trained are those
    scored). Shown in chapters 02, 03."""
    from . import claims

    trained = {k: len(v) for k, v in scores_by_stage.items()}
    stage, entry = best_epoch(scores_by_stage)
    out = [claims.compare("", f"the best fine-tuned epoch ({epoch_label(stage, entry)})", entry, "the starting model",
                          start, split="valid", chosen_here=True)]
    if on_test:
        out.append(claims.compare("finetune", f"the best fine-tuned epoch ({epoch_label(stage, entry)})",
                                  on_test[stage], "the starting model", on_test["start"], split="test",
                                  untested=claims.epochs_untested("finetune", trained, train.PAPER_EPOCHS)))
        if 1 in on_test and 2 in on_test:
            first, second = (best_epoch(scores_by_stage, stages=[k])[1] for k in (1, 2))
            out.append(claims.compare("stage2", f"the best stage-2 epoch ({epoch_label(2, second)})", on_test[2],
                                      f"the best stage-1 epoch ({epoch_label(1, first)})", on_test[1], split="test",
                                      untested=claims.epochs_untested("stage2", trained, train.PAPER_EPOCHS)))
    return out


def held_out_scores(pick: choices.EpochPick, on_test: dict, videos: int):
    """:class:`fvos_utils.claims.HeldOutScores` of :func:`best_epochs_on_test`: the starting model's test scores
    and the pick's (the starting model's again when it won). Shown in chapter 03."""
    from .claims import HeldOutScores

    return HeldOutScores(videos, on_test["start"], on_test[pick.stage] if pick.fine_tuned else on_test["start"],
                         pick.label)


def server_zips(run: str, *, model: str, server_root: str | os.PathLike, split: str,
                out_dir: str | os.PathLike, stages: Sequence[int] = train.STAGES, processes: int | None = None,
                device: str | None = None, progress: bool = True) -> list[Path]:
    """One MOSE server zip per epoch of each stage of ``run`` (the paper submitted every epoch to the
    server to choose). Predictions go to ``out_dir/server_<split>/stage<k>_epoch_NNN/``, each zip beside
    its folder; each epoch's videos are sharded over ``processes`` (default: every visible GPU).
    Shown in chapter 03."""
    processes = infer.inference_processes(device) if processes is None else processes
    zips = []
    for stage in stages:
        weights = train.epoch_weights(train.stage_dir(run, stage))
        runs = _epochs_to_run(model, weights, processes, device)
        for epoch, spec, predictor in progress_bar(runs, total=len(weights), desc=f"stage {stage} epochs",
                                           show=progress):
            pred_dir = paths.resolve(out_dir) / f"server_{split}" / f"stage{stage}_epoch_{epoch:03d}"
            infer.run_split(spec, server_root, pred_dir, predictor=predictor, processes=processes, device=device,
                            split=split, progress=False)
            zips.append(write_submission(pred_dir, server_root, pred_dir.with_suffix(".zip"), split=split))
    return zips


def plot_epoch_scores(ax, scores_by_stage: dict[int, Sequence[dict]], *, baseline: float | None = None,
                      reference: float | None = None, intervals: pd.DataFrame | None = None) -> None:
    """J&F per epoch, stages one after the other on the x axis; best epoch of each stage marked. Shown in chapter 03.

    ``baseline``: a horizontal line (e.g. zero motion); ``reference``: another (e.g. the start model);
    ``intervals``: :func:`epoch_table`, whose 95% interval of each epoch's change from the starting model is
    drawn as an error bar around the epoch's J&F (a bar clear of the dashed line: a change beyond noise).
    The legend sits below the axes, one entry per series.
    """
    from matplotlib.ticker import MaxNLocator

    offset = 0
    for stage, scores in sorted(scores_by_stage.items()):
        if not scores:
            continue
        x = [offset + s["epoch"] for s in scores]
        y = [s["J&F"] for s in scores]
        if intervals is not None:
            rows = intervals.loc[[(stage, s["epoch"]) for s in scores]]
            error = [rows["dJ&F"] - rows["CI low"], rows["CI high"] - rows["dJ&F"]]
            ax.errorbar(x, y, yerr=np.asarray(error, dtype=float), marker="o", capsize=3, label=f"stage {stage}")
        else:
            ax.plot(x, y, marker="o", label=f"stage {stage}")
        best = select_best(scores)
        ax.scatter([offset + best["epoch"]], [best["J&F"]], s=160, facecolors="none", edgecolors="k", zorder=3,
                   label="best epoch of its stage" if offset == 0 else None)
        offset = x[-1]
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle="--", label=f"starting model ({reference:.3f})")
    if baseline is not None:
        ax.axhline(baseline, color="0.6", linestyle=":", label=f"zero-motion baseline ({baseline:.3f})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (stage 2 continues after stage 1)")
    ax.set_ylabel("J&F on valid")
    if intervals is not None:
        ax.set_title("bars: 95% CI of each epoch's change from the starting model", fontsize="small")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)


# ------------------------------------------------------------------------------- memory sigmoid
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
        results[(scale, bias)] = score_model(dataclasses.replace(spec, sigmoid_scale=scale, sigmoid_bias=bias),
                                             data_root=data_root, split=split, gt_dir=gt_dir,
                                             out_dir=Path(out_dir) / f"scale{scale:g}_bias{bias:g}", videos=videos,
                                             predictor=predictor, processes=processes, device=device)
    return results


def pick_default_scores(run: str, *, data_root: str | os.PathLike, seed: int, videos: Sequence[str]) -> dict | None:
    """The valid scores (a :func:`scores_of` record) of chapter 03's pick with SAM 2's default sigmoid, as
    chapters 02 and 03 measured them, where they were measured on ``videos`` of the same ``data_root`` and
    ``seed``; None otherwise (chapter 03 has not run, or scored other videos). What the sigmoid search
    need not run again for the default pair. Shown in chapter 04."""
    from .chapter import read_metrics

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
    (:attr:`fvos_utils.evaluate.PairedDifference.COLUMNS`). Shown in chapter 04."""
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
    """Chapter 04's comparison (:class:`fvos_utils.claims.Comparison`) on its valid videos: the best searched
    pair other than ``default`` against it (claim 3, picked on these videos); none where the search tried no
    other pair. Shown in chapter 04."""
    from . import claims

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


def plot_sigmoid_grid(ax, grid: np.ndarray, scales: Sequence[float], biases: Sequence[float],
                      table: pd.DataFrame | None = None, *, default: tuple[float, float] = DEFAULT_SIGMOID):
    """Heatmap over (scale rows, bias columns): colour is each pair's change of J&F from ``default`` (the
    config's 20 / -10, boxed with a dashed line and labelled), on a diverging scale centred on 0 that spans at
    least :data:`SIGMOID_COLOUR_SPAN` either way; every cell gives its J&F and, with ``table``
    (:func:`sigmoid_table`), the change and its 95% interval; the best pair is boxed in red. Returns the
    image (for a colour bar). Shown in chapter 04."""
    from matplotlib.patches import Rectangle

    scales, biases = list(scales), list(biases)
    if default[0] not in scales or default[1] not in biases:
        raise ValueError(f"the default pair {default} is not on the grid: search with_default_pair(...)")
    d = (scales.index(default[0]), biases.index(default[1]))
    change = grid - grid[d]
    span = max(SIGMOID_COLOUR_SPAN, float(np.nanmax(np.abs(change))))
    image = ax.imshow(change, cmap="RdBu", vmin=-span, vmax=span, origin="lower", aspect="auto")
    ax.set_xticks(range(len(biases)), [f"{b:g}" for b in biases])
    ax.set_yticks(range(len(scales)), [f"{s:g}" for s in scales])
    ax.set_xlabel("memory sigmoid bias")
    ax.set_ylabel("memory sigmoid scale")
    for (i, j), value in np.ndenumerate(grid):
        label = f"{value:.3f}" + (" (default)" if (i, j) == d else "")
        if table is not None and "dJ&F" in table and (scales[i], biases[j]) in table.index and (i, j) != d:
            row = table.loc[(scales[i], biases[j])]
            label += f"\n{row['dJ&F']:+.3f}\n[{row['CI low']:+.3f}, {row['CI high']:+.3f}]"
        ax.text(j, i, label, ha="center", va="center", fontsize="small",
                color="w" if abs(change[i, j]) > 0.6 * span else "k")
    ax.add_patch(Rectangle((d[1] - 0.5, d[0] - 0.5), 1, 1, fill=False, edgecolor="k", linestyle="--", linewidth=1.5))
    i, j = np.unravel_index(int(np.nanargmax(grid)), grid.shape)
    ax.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor="r", linewidth=2))
    return image


# ------------------------------------------------------------------------------- MOSE submission
def check_submission(pred_dir: str | os.PathLike, val_root: str | os.PathLike, *, split: str | None = "valid") -> list[str]:
    """Check predictions against the val folder before zipping; returns the video names.

    Every video of ``val_root``'s ``JPEGImages`` must have a folder in ``pred_dir`` with one PNG per
    frame, named like the frame, of the frame's size, a palette (``P``) image with the DAVIS palette;
    no other videos or frames. Hidden entries (names starting with ``.``: the temporaries a killed run
    leaves) are neither, and are ignored. The first problem raises a DataError naming the file.
    """
    pred_dir = paths.resolve(pred_dir)
    dataset = io.VOSDataset(paths.resolve(val_root), split)
    names = dataset.video_names()
    if not pred_dir.is_dir():
        raise io.DataError(pred_dir, "prediction folder not found")
    extra = sorted(name for name in io.video_folders(pred_dir) if name not in set(names))
    if extra:
        raise io.DataError(pred_dir / extra[0], f"video not in the val folder {dataset.image_dir} "
                                                f"({len(extra)} such folder(s))")
    palette = io.davis_palette().reshape(-1).tolist()
    for name in names:
        video = dataset.video(name)
        folder = pred_dir / name
        if not folder.is_dir():
            raise io.DataError(folder, "prediction folder missing for this val video")
        have = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        want = {f"{stem}.png" for stem in video.frame_names}
        if have != want:
            odd = sorted(have - want)
            if odd:
                raise io.DataError(folder / odd[0], "file does not match a frame of the val video "
                                                    f"(expected names like {sorted(want)[0]})")
            raise io.DataError(folder / sorted(want - have)[0], "prediction missing for this frame")
        for frame in video.frames:
            path = folder / f"{frame.stem}.png"
            expected = io.mask_size(frame)
            with Image.open(path) as img:
                size, mode = (img.size[1], img.size[0]), img.mode
                used = img.getpalette() or []
            if size != expected:
                raise io.DataError(path, f"size {size[1]}x{size[0]} (WxH) differs from the frame "
                                         f"{frame.name} {expected[1]}x{expected[0]}")
            if mode != "P":
                raise io.DataError(path, f"image mode {mode!r}; the server expects palette ('P') PNGs")
            if used[:len(palette)] != palette[:len(used)]:
                raise io.DataError(path, "palette differs from the DAVIS palette")
    return names


def write_submission(pred_dir: str | os.PathLike, val_root: str | os.PathLike, zip_path: str | os.PathLike, *,
                     split: str | None = "valid") -> Path:
    """Check (:func:`check_submission`), then write ``zip_path`` with ``Annotations/<video>/<frame>.png``
    (atomically: the zip appears complete or not at all). Returns the zip's path. Shown in chapter 03."""
    pred_dir = paths.resolve(pred_dir)
    names = check_submission(pred_dir, val_root, split=split)
    zip_path = paths.resolve(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            for png in io.frame_files(pred_dir / name):  # the checked frames; hidden temporaries left out
                archive.write(png, f"Annotations/{name}/{png.name}")
    return zip_path

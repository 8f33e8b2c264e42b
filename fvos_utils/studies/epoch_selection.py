"""Epoch selection (paper section 2.1): every epoch of a training stage scored on a split with ground truth,
the best one picked by J&F and recorded for stage 2 and the later chapters (chapters 02 and 03).

- :func:`score_epochs` propagates every epoch's weights of a training stage over a validation split
  that has full ground truth (the synthetic valid set, or a hold-out of MOSE train), scores J&F, and
  :func:`select_best` / :func:`record_best` pick the argmax and write it where stage 2
  (``init: best``) and later notebooks read it (``outputs/<run>/train/stage<k>/best_epoch.json``).
- :func:`pick_epoch` chooses between the best epoch and the starting weights (doing nothing is a candidate);
  :func:`epoch_comparisons` states claims 1 and 2 on valid and, where one exists, on test.
- :func:`server_zips`: one MOSE server zip per epoch, where the ground truth is hidden.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fvos_utils.base import io, paths
from fvos_utils.base.progress import progress_bar
from fvos_utils.data import datasets, submissions
from fvos_utils.method import choices, infer, models, train
from fvos_utils.metrics import evaluate as evaluation
from fvos_utils.metrics import scoring
from fvos_utils.metrics.percent import percent
from fvos_utils.studies import claims
from fvos_utils.studies.claims import HeldOutScores


def score_model(spec: models.PredictorSpec, *, data_root: str | os.PathLike, split: str, gt_dir: str | os.PathLike,
                out_dir: str | os.PathLike, videos: Sequence[str] | None = None, eval_workers: int = 1,
                predictor=None, processes: int | None = None, device: str | None = None) -> dict:
    """Propagate the model ``spec`` describes over ``split`` into ``out_dir`` (:func:`fvos_utils.method.infer.run_split`:
    sharded over ``processes``, default every visible GPU; ``predictor``: one already built from ``spec``,
    reused when one process runs) and score it against ``gt_dir`` with ``eval_workers`` evaluator
    processes. Returns :func:`scores_of` the evaluation (``"J&F"``, ``"J"``, ``"F"``, ``"objects"``).
    Shown in chapter 02."""
    infer.run_split(spec, data_root, out_dir, predictor=predictor, processes=processes, device=device, split=split,
                    videos=videos, overwrite=True, progress=False)
    return scoring.scores_of(evaluation.evaluate(paths.resolve(gt_dir), out_dir, videos=videos, workers=eval_workers,
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
    and :attr:`fvos_utils.metrics.evaluate.PairedDifference.COLUMNS` (the change from ``start``, a
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
    :data:`fvos_utils.method.choices.STARTING_STAGE`) or a stage's epochs (``epoch``: that epoch's folder): chapter 02
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
    """Chapter 03's comparisons (:class:`fvos_utils.studies.claims.Comparison`): the best fine-tuned epoch against
    the starting model (``start``: its valid scores) on valid, where it was picked; and, with ``on_test``
    (:func:`best_epochs_on_test`), on the held-out test split (claim 1), and the best stage-2 epoch against
    the best stage-1 epoch there (claim 2). A claim about stages trained for far fewer epochs than the
    paper's is marked not tested (:func:`fvos_utils.studies.claims.epochs_untested`; the epochs trained are those
    scored). Shown in chapters 02, 03."""

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
    """:class:`fvos_utils.studies.claims.HeldOutScores` of :func:`best_epochs_on_test`: the starting model's test scores
    and the pick's (the starting model's again when it won). Shown in chapter 03."""

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
            zips.append(submissions.write_submission(pred_dir, server_root, pred_dir.with_suffix(".zip"), split=split))
    return zips


def plot_epoch_scores(ax, scores_by_stage: dict[int, Sequence[dict]], *, baseline: float | None = None,
                      reference: float | None = None, intervals: pd.DataFrame | None = None,
                      pick: choices.EpochPick | None = None) -> None:
    """J&F per epoch in percent, stages one after the other on the x axis; the best epoch of each stage
    circled and ``pick`` (chapter 03's) starred, or named on the starting model's line where the starting
    weights won. Shown in chapter 03.

    ``baseline``: a horizontal line (e.g. zero motion); ``reference``: another (e.g. the start model);
    ``intervals``: :func:`epoch_table`, whose 95% interval of each epoch's change from the starting model is
    drawn as an error bar around the epoch's J&F (a bar clear of the dashed line: a change beyond noise).
    The y axis spans the epochs and the starting model: a baseline far below is named in the legend, not
    drawn (it would flatten the epochs into a line). The legend sits below the axes, one entry per series.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    offset, shown = 0, [] if reference is None else [100 * reference]
    for stage, scores in sorted(scores_by_stage.items()):
        if not scores:
            continue
        x = [offset + s["epoch"] for s in scores]
        y = np.asarray([100 * s["J&F"] for s in scores])
        if intervals is not None:
            rows = intervals.loc[[(stage, s["epoch"]) for s in scores]]
            error = 100 * np.asarray([rows["dJ&F"] - rows["CI low"], rows["CI high"] - rows["dJ&F"]], dtype=float)
            ax.errorbar(x, y, yerr=error, marker="o", capsize=3, label=f"stage {stage}")
            shown += list(y - error[0]) + list(y + error[1])
        else:
            ax.plot(x, y, marker="o", label=f"stage {stage}")
        shown += list(y)
        best = select_best(scores)
        ax.scatter([offset + best["epoch"]], [100 * best["J&F"]], s=160, facecolors="none", edgecolors="k", zorder=3,
                   label="best epoch of its stage" if offset == 0 else None)
        if pick is not None and pick.stage == stage:
            ax.scatter([offset + pick.epoch], [100 * pick.j_and_f], marker="*", s=220, color="C3", zorder=4,
                       label=f"the pick: {pick.label}")
        offset = x[-1]
    low, high = min(shown), max(shown)
    margin = max(0.5, 0.15 * (high - low))
    ax.set_ylim(low - margin, high + margin)
    if reference is not None:
        starting_is_pick = pick is not None and not pick.fine_tuned
        ax.axhline(100 * reference, color="C3" if starting_is_pick else "0.4", linestyle="--",
                   label=f"starting model ({percent(reference)})" + ("; the pick" if starting_is_pick else ""))
    if baseline is not None:
        if low - margin <= 100 * baseline <= high + margin:
            ax.axhline(100 * baseline, color="0.6", linestyle=":", label=f"zero-motion baseline ({percent(baseline)})")
        else:  # named, not drawn: far below, it would flatten the epochs
            ax.add_line(Line2D([], [], color="0.6", linestyle=":",
                               label=f"zero-motion baseline ({percent(baseline)}, off the axis)"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (stage 2 continues after stage 1)")
    ax.set_ylabel("J&F on valid (%)")
    if intervals is not None:
        ax.set_title("bars: 95% CI of each epoch's change from the starting model")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)


def epoch_figure_caption(pick: choices.EpochPick, scores_by_stage: dict[int, Sequence[dict]]) -> str:
    """The caption of chapter 03's figure, for the run it shows: the epochs drawn and what was picked.
    Shown in chapter 03."""
    counts = " + ".join(str(len(scores)) for _, scores in sorted(scores_by_stage.items()) if scores)
    picked = (f"the pick, {pick.label} (J&F {percent(pick.j_and_f)}), is starred" if pick.fine_tuned else
              f"the pick is the starting weights (J&F {percent(pick.j_and_f)}), as no epoch scored above them")
    return (f"Valid J&F (%) of every epoch of both fine-tuning stages ({counts} epochs), each with the 95% interval "
            f"of its change from the starting model (dashed line); the best epoch of each stage is circled and "
            f"{picked}.")

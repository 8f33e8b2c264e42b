"""The report: every number read back from a run's chapter files, laid out as the paper's tables.

Chapters write ``outputs/<run>/<chapter>/metrics.json`` (and their own tables); this module reads them
and builds:

- :func:`steps_table`: the FVOS recipe step by step on this run (baseline, pretrained, best fine-tuned
  epoch, memory sigmoid, gap filling, fusion), each with the videos it was scored on;
- :func:`leaderboard_table`: the paper's Tables 2 and 3 (MOSE val / test leaderboards, from
  ``assets/paper_results.json``), the paper's rows only; :func:`run_beside_table` puts this run's
  numbers beside them in a table of their own, labelled with the data they were measured on (a
  synthetic run is never a leaderboard row);
- :func:`figure_index`: the run's figures with captions.

Nothing here types a result in: a chapter that has not run is simply absent from the tables.

From the command line, the FVOS steps table of a finished run (``--update-readme`` also writes it into
README.md's results block; ``make readme-results`` does that for the demo run)::

    python -m fvos_utils.report --run demo [--update-readme]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pandas as pd

from . import io, paths
from .evaluate import PairedDifference
from .fusion import SCALE_SETS
from .fusion_ablation import FusionVariant, available_sets
from .postprocess import GapFilling

PAPER_RESULTS = Path(__file__).resolve().parent / "assets" / "paper_results.json"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
#: the columns of the README's results table, taken from :func:`steps_table`
README_COLUMNS = ["step", "detail", "J&F", "J", "F", *PairedDifference.COLUMNS, "compared with", "scored on"]

#: figure file stem -> caption (chapters are looked up in order; unknown figures get their file name)
FIGURE_CAPTIONS = {
    "hard_cases": "Synthetic mini-MOSE: one validation video per hard case, ground truth drawn over first, middle and last frames.",
    "j_and_f_explained": "What J and F measure: region overlap, and boundary pixels matched within the distance tolerance.",
    "zero_motion_decay": "Zero-motion baseline: mean J per frame; it decays as objects move.",
    "real_clip": "A real clip with the zero-motion baseline.",
    "loss_curves": "Training loss per iteration for both fine-tuning stages (from the trainer's own logs).",
    "jf_per_epoch": "Validation J&F of every epoch of both stages; the chosen epoch is marked.",
    "sigmoid_heatmap": "J&F over the memory-encoder sigmoid scale and bias grid; the best pair is marked.",
    "sigmoid_mapping": "What the sigmoid scale and bias do to the mask probability fed to the memory encoder.",
    "kernel_ablation": "J&F and the contact line left as a gap against the gap-filling kernel size, for each method and kernel shape (series shifted slightly along k so that equal values stay visible), and the per-object changes of square kernels.",
    "kernel2_anchor": "Why a 2x2 kernel barely fills gaps under OpenCV's default anchor.",
    "meeting_crops": "Where adjacent objects meet: crops before and after gap filling with each kernel (cf. the paper's Figure 2).",
    "clip_meeting_crops": "The same crops on the real two-object clip bmx-trees.",
    "fusion_ablation": "Single scales against fused scale sets (points labelled with their scale set), hard against soft voting, with and without test-time transforms.",
    "fill_order": "Gap filling before against after fusion.",
}


def load_metrics(run: str) -> dict[str, dict]:
    """``{chapter: metrics}`` for every chapter of ``run`` that wrote a ``metrics.json``."""
    from .pipeline import CHAPTERS

    run_dir = paths.outputs_dir() / run
    return {chapter: io.read_json(run_dir / chapter / "metrics.json") for chapter in CHAPTERS
            if (run_dir / chapter / "metrics.json").is_file()}


def _result(results: dict, key: str, chapter: str) -> dict:
    """``results[key]``; a missing key is an error naming it and the chapter (never a silently absent row)."""
    if key not in results:
        raise KeyError(f"{chapter}/metrics.json has no result {key!r} (results: {', '.join(sorted(results)) or 'none'})")
    return results[key]


#: ``compared with`` of the row the next rows are compared with
REFERENCE = "(the reference)"


def _row(step: str, chapter: str, scores: dict, videos: str, detail: str = "", compared_with: str = "",
         reference: bool = False) -> dict:
    """One step; where ``scores`` holds a chapter's paired difference (``dJ&F``, ``CI low``, ``CI high``)
    the row carries it, and ``compared with`` names the reference, "(within noise)" when the interval
    covers 0. A ``reference`` row (what later rows are compared with) says :data:`REFERENCE` there."""
    row = {"step": step, "J&F": scores["J&F"], "J": scores.get("J"), "F": scores.get("F"),
           "scored on": videos, "detail": detail, "chapter": chapter}
    compared = all(column in scores for column in PairedDifference.COLUMNS)
    if compared:
        row.update({column: scores[column] for column in PairedDifference.COLUMNS})
    if reference:
        row["compared with"] = REFERENCE
    elif compared:
        noise = PairedDifference.covers_zero(scores["CI low"], scores["CI high"])
        row["compared with"] = compared_with + (" (within noise)" if noise else "")
    return row


def steps_table(metrics: dict[str, dict]) -> pd.DataFrame:
    """The FVOS recipe on this run, one row per step whose chapter ran (J, F, J&F as fractions)."""
    rows = []
    if "00_data_and_metrics" in metrics:
        m = metrics["00_data_and_metrics"]
        rows.append(_row("zero-motion baseline", "00", m["zero_motion"]["global"], "all valid videos",
                         "first-frame mask copied to every frame"))
    selection = metrics.get("03_epoch_selection", {})
    if "02_finetune" in metrics:
        m = metrics["02_finetune"]
        rows.append(_row("pretrained model (before fine-tuning)", "02", m["start"], "all valid videos",
                         Path(str(m.get("starting_weights", ""))).name,
                         reference=bool(selection.get("best_change"))))
    if selection:
        best = selection["best"]
        rows.append(_row("best fine-tuned epoch", "03", {**best, **(selection.get("best_change") or {})},
                         "all valid videos", f"stage {best['stage']}, epoch {best['epoch']}",
                         compared_with="the pretrained model"))
    if "04_sigmoid_search" in metrics:
        m = metrics["04_sigmoid_search"]
        best = m["best"]
        rows.append(_row("+ memory-sigmoid search", "04", {**best, **(m.get("best_change") or {})}, "all valid videos",
                         f"scale {best['scale']:g}, bias {best['bias']:g}", compared_with="the default 20 / -10"))
    if "05_morphology_ablation" in metrics:
        m = metrics["05_morphology_ablation"]
        where, best = f"{len(m['videos'])} valid videos", m["best_paper"]
        none, paper = GapFilling("paper", "square", 0), GapFilling("paper", "square", 2)
        picked = GapFilling(best["method"], best["shape"], best["kernel"])
        steps = {none: "single model, no gap filling (chapter 05 subset)"}
        if paper.kernel in m["parameters"]["kernel_sizes"]:
            steps[paper] = "+ gap filling, square kernel 2 (the paper's choice)"
        best_here = f"best here: {picked.shape} kernel {picked.kernel}"
        # a best kernel of 2 (or 0) is listed once, its row saying that it is also the best here
        steps[picked] = f"{steps[picked]}, also the {best_here}" if picked in steps else f"+ gap filling, {best_here}"
        for variant, step in steps.items():
            rows.append(_row(step, "05", _result(m["variants"], variant.name, "05_morphology_ablation"), where,
                             compared_with="" if variant == none else "no filling", reference=variant == none))
    if "06_multiscale_fusion" in metrics:
        m = metrics["06_multiscale_fusion"]
        n = len(m["videos"])
        scale_sets = available_sets(SCALE_SETS, m["parameters"]["scales"])
        if "single" in scale_sets and "identity" in m["parameters"]["transforms"]:
            single = FusionVariant("single", "identity", "hard")
            rows.append(_row("single scale (chapter 06 subset)", "06",
                             _result(m["fused"], single.name, "06_multiscale_fusion"), f"{n} valid videos", "scale 1.0",
                             reference=True))
        if "fvos7" in scale_sets and "identity" in m["parameters"]["transforms"]:
            for filling in ("after", "before", "none"):
                variant = FusionVariant("fvos7", "identity", "hard", filling)
                rows.append(_row("+ 7-scale voting (the paper's fusion)", "06",
                                 _result(m["fused"], variant.name, "06_multiscale_fusion"), f"{n} valid videos",
                                 f"gap filling: {filling}", compared_with="scale 1"))
        best = FusionVariant.from_name(m["best_fused"]["variant"])
        rows.append(_row("best fused variant", "06", _result(m["fused"], best.name, "06_multiscale_fusion"),
                         f"{n} valid videos", f"{best.scales}-{best.transforms}-{best.fusion}", compared_with="scale 1"))
    test = selection.get("test")
    if test:  # the final numbers: the split no chapter chose anything on
        where = f"{len(test['videos'])} held-out test videos"
        rows.append(_row("pretrained model, held-out test split", "03", test["starting model"], where,
                         reference=True))
        rows.append(_row("best fine-tuned epoch, held-out test split", "03", {**test["best epoch"], **test}, where,
                         f"stage {selection['best']['stage']}, epoch {selection['best']['epoch']} (picked on valid)",
                         compared_with="the pretrained model"))
    return pd.DataFrame(rows)


def paper_results() -> dict:
    return io.read_json(PAPER_RESULTS)


def leaderboard_table(split: str) -> pd.DataFrame:
    """The paper's leaderboard for ``split`` (``mose_val`` or ``mose_test``) as printed, best first."""
    board = paper_results()[split]
    table = pd.DataFrame([{"method": name, **scores} for name, scores in board.items()])
    return table.sort_values("J&F", ascending=False).reset_index(drop=True)


def run_beside_table(scores: dict, *, label: str, measured_on: str) -> pd.DataFrame:
    """This run's ``{"J", "F", "J&F"}`` as a one-row table of its own, to show beside a leaderboard:
    ``method``, ``measured on`` (the data: e.g. "synthetic mini-MOSE valid"), J, F, J&F. Numbers measured
    on other data than the leaderboard's are not ranked among its rows."""
    return pd.DataFrame([{"method": label, "measured on": measured_on, "J": scores["J"], "F": scores["F"],
                          "J&F": scores["J&F"]}])


def figure_index(run: str) -> list[tuple[Path, str]]:
    """``[(png path, caption)]`` for every figure of ``run``, in chapter order."""
    from .pipeline import CHAPTERS

    run_dir = paths.outputs_dir() / run
    figures = []
    for chapter in CHAPTERS:
        for png in sorted((run_dir / chapter).glob("*.png")):
            caption = FIGURE_CAPTIONS.get(png.stem, png.stem.replace("_", " "))
            figures.append((png, f"{chapter}: {caption}"))
    return figures


def markdown_report(run: str, sections: list[tuple[str, pd.DataFrame]], figures: list[tuple[Path, str]],
                    path: str | os.PathLike) -> Path:
    """Write a Markdown report: one table per section, then the figures (linked relative to ``path``)."""
    path = Path(path)
    lines = [f"# FVOS kit report: run `{run}`", ""]
    for title, table in sections:
        lines += [f"## {title}", "", to_markdown(table), ""]
    lines += ["## Figures", ""]
    for png, caption in figures:
        lines += [f"![{caption}]({os.path.relpath(png, path.parent)})", "", f"*{caption}*", ""]
    with io.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table with fractions shown to 4 decimals, missing values blank, no index."""
    shown = table.astype(object).map(lambda v: "" if v is None or (isinstance(v, float) and v != v)
                                     else f"{v:.4f}" if isinstance(v, float) else v)
    return shown.to_markdown(index=False, disable_numparse=True)


def update_readme(table: pd.DataFrame, *, readme: str | os.PathLike | None = None, note: str = "") -> Path:
    """Replace the README's results block (between the results markers) with ``table``."""
    readme = Path(readme) if readme else paths.project_root() / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise io.DataError(readme, f"no results block ({README_BEGIN} ... {README_END}) to update")
    block = f"{README_BEGIN}\n{note}\n\n{to_markdown(table)}\n{README_END}"
    new = re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), lambda _: block, text, flags=re.S)
    with io.atomic_path(readme) as tmp:
        tmp.write_text(new)
    return readme


def finished_metrics(run: str) -> dict[str, dict]:
    """:func:`load_metrics`, where a run with no chapter metrics is an error naming its folder."""
    metrics = load_metrics(run)
    if not metrics:
        raise io.DataError(paths.outputs_dir() / run, "no chapter of this run has written a metrics.json "
                                                      "(run the pipeline first, e.g. make demo)")
    return metrics


def update_readme_results(run: str, *, readme: str | os.PathLike | None = None) -> Path:
    """Write ``run``'s FVOS steps table into the README's results block, noting the run and the git
    commit(s) its chapters ran at (from their metrics files, not the checkout's commit now).

    README.md is tracked, so the demo does not write it (every later metrics file would record a dirty
    checkout): ``make readme-results`` calls this for the demo run."""
    metrics = finished_metrics(run)
    commits = sorted({m.get("environment", {}).get("git_commit") or "unknown" for m in metrics.values()})
    note = f"Generated by `fvos_utils.report` from run `{run}` (its chapters ran at git {', '.join(commits)})."
    return update_readme(steps_table(metrics).reindex(columns=README_COLUMNS), readme=readme, note=note)


#: the ablation tables the chapters save, in report order: (title, chapter, table file stem)
ABLATION_TABLES = (
    ("Epoch selection: J&F per epoch (both stages)", "03_epoch_selection", "jf_per_epoch"),
    ("Memory-encoder sigmoid: J&F over scale x bias", "04_sigmoid_search", "sigmoid_grid"),
    ("Gap filling: kernel size and shape", "05_morphology_ablation", "kernel_ablation"),
    ("Gap filling: share of gaps bridged by width", "05_morphology_ablation", "bridged_gaps"),
    ("Fusion: scale sets, transforms, hard against soft voting", "06_multiscale_fusion", "fusion_ablation"),
    ("Fusion: gap filling before against after fusion", "06_multiscale_fusion", "fill_order"),
    ("Fusion: cost per frame", "06_multiscale_fusion", "cost"),
)


def ablation_tables(run: str) -> list[tuple[str, pd.DataFrame]]:
    """``[(title, table)]`` for each of :data:`ABLATION_TABLES` that the run's chapters wrote (CSV)."""
    run_dir = paths.outputs_dir() / run
    return [(title, pd.read_csv(run_dir / chapter / f"{stem}.csv"))
            for title, chapter, stem in ABLATION_TABLES if (run_dir / chapter / f"{stem}.csv").is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fvos_utils.report",
                                     description="The FVOS steps table of a run, read from its chapters' metrics files.")
    parser.add_argument("--run", required=True, help="the run whose chapters are read (outputs/<run>/)")
    parser.add_argument("--update-readme", action="store_true",
                        help="also write the table into README.md's results block (a tracked file)")
    args = parser.parse_args(argv)
    try:
        print(to_markdown(steps_table(finished_metrics(args.run))))
        if args.update_readme:
            print(f"wrote {update_readme_results(args.run)}")
    except (io.DataError, KeyError) as err:  # KeyError: a chapter's metrics file lacks a result (see _result)
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

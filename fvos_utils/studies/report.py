"""The report: every number read back from a run's chapter files, laid out as the paper's tables.

Chapters write ``outputs/<run>/<chapter>/metrics.json``, their comparisons (:mod:`fvos_utils.studies.claims`)
and their own tables; this module reads them and builds:

- :func:`readme_results`: the claims scorecard (:func:`fvos_utils.studies.claims.scorecard`), the run's final
  numbers on the held-out test split and the recipe's ablation there (:mod:`fvos_utils.studies.ablation`), for the
  README;
- :func:`leaderboard_table`: the paper's Tables 2 and 3 (MOSE val / test leaderboards, from
  ``assets/paper_results.json``), the paper's rows only; :func:`run_beside_table` puts this run's
  numbers beside them in a table of their own, labelled with the data they were measured on (a
  synthetic run is never a leaderboard row);
- :func:`figure_index`: the run's figures with captions;
- :func:`write_results_tex`: every number of the scorecard and the ablation, named for a LaTeX write-up.

Scores are fractions in the records and percent wherever a person reads them (:mod:`fvos_utils.metrics.percent`).

Nothing here types a result in: a chapter that has not run is simply absent from the tables.

From the command line, the scorecard and final numbers of a finished run (``--update-readme`` also writes
them into README.md's results block; ``make readme-results`` does that for the demo run)::

    fvos report --run demo [--update-readme]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from pathlib import Path

import pandas as pd

from fvos_utils.base import io, paths
from fvos_utils.run import figures, tables
from fvos_utils.studies import ablation, claims

PAPER_RESULTS = paths.PACKAGE_DIR / "assets" / "paper_results.json"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
#: the columns of the README's scorecard, taken from :func:`fvos_utils.studies.claims.scorecard`
README_COLUMNS = ["claim", "paper section", "baseline", "dJ&F", "CI low", "CI high", "split", "videos", "verdict"]
#: the columns of the README's ablation table, taken from :func:`fvos_utils.studies.ablation.ablation_table`
README_ABLATION_COLUMNS = ["recipe", "reading", "step", "value", "J&F", "dJ&F", "CI low", "CI high", "interval"]

#: figure file stem -> caption (chapters are looked up in order; unknown figures get their file name)
FIGURE_CAPTIONS = {
    "hard_cases": "Synthetic mini-MOSE: one validation video per hard case, ground truth drawn over first, middle and last frames.",
    "j_and_f_explained": "What J and F measure: region overlap, and boundary pixels matched within the distance tolerance (ground-truth boundary that no predicted boundary reaches in orange: the missed part, which lowers recall).",
    "zero_motion_decay": "Zero-motion baseline: mean J per frame; it decays as objects move.",
    "loss_curves": "Training loss per iteration for both fine-tuning stages (from the trainer's own logs).",
    "sigmoid_heatmap": "J&F over the memory-encoder sigmoid scale and bias grid; the best pair is marked.",
    "sigmoid_mapping": "What the sigmoid scale and bias do to the mask probability fed to the memory encoder.",
    "kernel_ablation": "The change of J&F from no filling (points, with its 95% interval) and the contact line left as a gap (%) against the gap-filling kernel size, for each method and kernel shape (series shifted slightly along k so that equal values stay visible); below, each object's change with the paper's square kernels.",
    "kernel2_anchor": "Why a 2x2 kernel barely fills gaps under OpenCV's default anchor.",
    "meeting_crops": "Where two ground-truth objects meet: crops before and after gap filling with each kernel (cf. the paper's Figure 2).",
    "clip_meeting_crops": "The real two-object clip bmx-trees: crops inside the annotated union of the objects where the two predicted objects meet, before and after gap filling with each kernel.",
    "fill_order": "Gap filling before or after voting: each filled vote's change from the same vote unfilled, with its 95% interval.",
    "claims_scorecard": "The paper's claims tested on this run: each claim's dJ&F against its baseline with the 95% interval, coloured by verdict.",
}


def load_metrics(run: str) -> dict[str, dict]:
    """``{chapter: metrics}`` for every chapter of ``run`` that wrote a ``metrics.json``."""
    from fvos_utils.run.pipeline import CHAPTERS

    run_dir = paths.run_dir(run)
    return {chapter: io.read_json(run_dir / chapter / "metrics.json") for chapter in CHAPTERS
            if (run_dir / chapter / "metrics.json").is_file()}


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
    """``[(png path, caption)]`` for every figure of ``run``, in chapter order: the caption the chapter wrote
    for its run (:func:`fvos_utils.run.figures.save_figure`), else the figure's in :data:`FIGURE_CAPTIONS`."""
    from fvos_utils.run.pipeline import CHAPTERS

    run_dir = paths.run_dir(run)
    found = []
    for chapter in CHAPTERS:
        for png in sorted((run_dir / chapter).glob("*.png")):
            caption = figures.read_caption(png) or FIGURE_CAPTIONS.get(png.stem, png.stem.replace("_", " "))
            found.append((png, f"{chapter}: {caption}"))
    return found


def markdown_report(run: str, sections: list[tuple[str, pd.DataFrame | str]], figures: list[tuple[Path, str]],
                    path: str | os.PathLike, *, summary: str | None = None) -> Path:
    """Write a Markdown report: the ``summary`` paragraph (the run's verdict in words:
    :func:`fvos_utils.studies.claims.in_words`), one table per section (a DataFrame, or a table already in
    Markdown), then the figures (linked relative to ``path``)."""
    path = Path(path)
    lines = [f"# FVOS kit report: run `{run}`", ""] + ([summary, ""] if summary else [])
    for title, table in sections:
        lines += [f"## {title}", "", table if isinstance(table, str) else tables.markdown_table(table), ""]
    lines += ["## Figures", ""]
    for png, caption in figures:
        lines += [f"![{caption}]({os.path.relpath(png, path.parent)})", "", f"*{caption}*", ""]
    with io.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


#: the columns of the scorecard and of the ablation table whose cells :func:`results_values` names (the
#: scores in percent, the rest as written), and the short name each value takes
RESULTS_COLUMNS = {"J&F": "JF", "baseline J&F": "baselineJF", "dJ&F": "dJF", "CI low": "CIlow",
                   "CI high": "CIhigh", "resolvable": "resolvable", "videos": "videos", "verdict": "verdict",
                   "interval": "interval"}


def _name_part(text) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-")


def results_values(scorecard: pd.DataFrame, steps: pd.DataFrame | None = None) -> dict[str, str]:
    """Every number of the scorecard and of the ablation table, named for a write-up (``results.tex``):
    ``claim<id>.<split>.<column>`` (``claim1.test.dJF``, ``claim6b.valid.JF``) and
    ``ablation.<recipe>.<reading>.<step>.<column>`` (``ablation.as-published.ladder.sigmoid.dJF``), the columns
    shortened as :data:`RESULTS_COLUMNS` says. Each value is the cell as the saved table shows it
    (:func:`fvos_utils.run.tables.shown_cells`: scores in percent); missing cells get no name. A name given
    twice is an error (it would quote one of two numbers)."""
    values: dict[str, str] = {}

    def add(table: pd.DataFrame, prefixes: list[str]) -> None:
        cells = tables.shown_cells(table)
        for column, short in RESULTS_COLUMNS.items():
            for prefix, cell in zip(prefixes, cells.get(column, [])):
                name = f"{prefix}.{short}"
                if cell and name in values:
                    raise ValueError(f"results.tex: two cells would be named {name}")
                if cell:
                    values[name] = cell

    def claim_prefix(row: pd.Series) -> str:
        claim = re.match(r"\((\w+)\)", str(row["claim"]))
        return f"claim{claim[1] if claim else _name_part(row['claim'])}.{str(row['split']).split()[0]}"

    add(scorecard, [claim_prefix(row) for _, row in scorecard.iterrows()])
    if steps is not None and len(steps):
        add(steps, [".".join(["ablation"] + [_name_part(row[key]) for key in ("recipe", "reading", "step")])
                    for _, row in steps.iterrows()])
    return values


def write_results_tex(run: str, scorecard: pd.DataFrame, steps: pd.DataFrame | None, path: str | os.PathLike) -> Path:
    """Write :func:`results_values` as ``\\fvos{<name>}`` definitions (:func:`fvos_utils.run.tables.latex_values`)
    to ``path``: a write-up inputs it and quotes the run by name."""
    values = results_values(scorecard, steps)
    heading = (f"The numbers of run `{run}` (J, F, J&F and their differences in percent), written by chapter "
               "07_report.\nInput it, then quote a number by name: \\fvos{claim8.test.dJF}. Names: "
               "claim<id>.<split>.<column> and ablation.<recipe>.<reading>.<step>.<column>.")
    path = Path(path)
    with io.atomic_path(path) as tmp:
        tmp.write_text(tables.latex_values(values, heading=heading))
    return path


def update_readme(block: str, *, readme: str | os.PathLike | None = None) -> Path:
    """Replace the README's results block (between the results markers) with the Markdown ``block``."""
    readme = Path(readme) if readme else paths.project_root() / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise io.DataError(readme, f"no results block ({README_BEGIN} ... {README_END}) to update")
    new = re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END),
                 lambda _: f"{README_BEGIN}\n{block.strip()}\n{README_END}", text, flags=re.S)
    with io.atomic_path(readme) as tmp:
        tmp.write_text(new)
    return readme


def finished_metrics(run: str) -> dict[str, dict]:
    """:func:`load_metrics`, where a run with no chapter metrics is an error naming its folder."""
    metrics = load_metrics(run)
    if not metrics:
        raise io.DataError(paths.run_dir(run), "no chapter of this run has written a metrics.json "
                                                      "(run the pipeline first, e.g. make demo)")
    return metrics


#: where :func:`update_readme_results` copies the run's scorecard figure for the README (a tracked file)
README_FIGURE = Path("docs") / "figures" / "claims_scorecard.png"


def readme_results(run: str) -> str:
    """The README's results block for ``run``: the claims scorecard (with its figure where the run drew it:
    :data:`README_FIGURE`, and the verdict in words: :func:`fvos_utils.studies.claims.in_words`) and the final numbers on the held-out test split, noting the run and the git
    commit(s) its chapters ran at (from their metrics files)."""
    metrics = finished_metrics(run)
    commits = sorted({m.get("environment", {}).get("git_commit") or "unknown" for m in metrics.values()})
    comparisons = claims.read_run(run)
    final = claims.final_table(comparisons)
    rows = ablation.read(run)
    text = textwrap.fill(f"Generated by `fvos report --run {run} --update-readme` (`make "
                         f"readme-results` for the demo) from run `{run}`, whose chapters ran at git "
                         f"{', '.join(commits)}.", width=110, break_on_hyphens=False) + "\n\n"
    if _scorecard_png(run).is_file():
        text += f"![The paper's claims tested on the {run} run]({README_FIGURE.as_posix()})\n\n"
    words = claims.in_words(run, comparisons, credit=ablation.credit_words(rows))
    text += f"{textwrap.fill(words, width=110, break_on_hyphens=False)}\n\n"
    text += f"{tables.markdown_table(claims.scorecard(comparisons).reindex(columns=README_COLUMNS), compact=True)}\n"
    if len(final):
        text += f"\n**Final numbers, held-out test split:**\n\n{tables.markdown_table(final, compact=True)}\n"
    if rows:
        steps = ablation.ablation_table(rows)
        head = textwrap.fill(f"**The recipe ablated step by step, held-out test split** ({int(steps['videos'].max())} "
                             "videos; ladder: each step added to the rung above; leave-one-out: the full recipe "
                             "against itself without the step):", width=110, break_on_hyphens=False)
        text += f"\n{head}\n\n{tables.markdown_table(steps.reindex(columns=README_ABLATION_COLUMNS), compact=True)}\n"
    return text


def update_readme_results(run: str, *, readme: str | os.PathLike | None = None) -> Path:
    """Write :func:`readme_results` of ``run`` into the README's results block, and copy its scorecard
    figure to :data:`README_FIGURE` beside the README.

    README.md is tracked, so the demo does not write it (every later metrics file would record a dirty
    checkout): ``make readme-results`` calls this for the demo run."""
    block = readme_results(run)
    readme = Path(readme) if readme else paths.project_root() / "README.md"
    if _scorecard_png(run).is_file():
        figure = readme.parent / README_FIGURE
        figure.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(figure) as tmp:
            tmp.write_bytes(_scorecard_png(run).read_bytes())
    return update_readme(block, readme=readme)


def _scorecard_png(run: str) -> Path:
    return paths.run_dir(run) / "07_report" / "claims_scorecard.png"


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


def ablation_tables(run: str) -> list[tuple[str, str]]:
    """``[(title, Markdown)]`` for each of :data:`ABLATION_TABLES` that the run's chapters wrote: the ``.md``
    as the chapter saved it, in the units its chapter chose (scores and shares in percent)."""
    run_dir = paths.run_dir(run)
    return [(title, (run_dir / chapter / f"{stem}.md").read_text().strip())
            for title, chapter, stem in ABLATION_TABLES if (run_dir / chapter / f"{stem}.md").is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fvos report",
                                     description="The claims scorecard and final numbers of a run, read from its chapters' records.")
    parser.add_argument("--run", required=True, help="the run whose chapters are read (outputs/<run>/)")
    parser.add_argument("--update-readme", action="store_true",
                        help="also write them into README.md's results block (a tracked file)")
    args = parser.parse_args(argv)
    try:
        print(readme_results(args.run))
        if args.update_readme:
            print(f"wrote {update_readme_results(args.run)}")
    except ValueError as err:  # a DataError, or a run name that leaves outputs/
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 1
    return 0

"""``fvos <step> ...``: one command for every step of the kit (the same as ``python -m fvos_utils <step>``).

``fvos --help`` lists the steps; ``fvos <step> --help`` gives a step's own options. Each step is the
``main`` of the module that owns it, imported only when that step runs (``fvos --help`` loads no torch).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: every step: (the module that owns it, its entry point, the line ``fvos --help`` shows), in the order a
#: reader meets them
STEPS = {
    "synthetic": ("fvos_utils.data.synthetic", "main", "generate a synthetic dataset (the demo's mini-MOSE)"),
    "evaluate": ("fvos_utils.metrics.evaluate", "main", "J&F of a prediction folder against ground truth"),
    "infer": ("fvos_utils.method.infer", "console_main", "propagate SAM 2 over a split: label maps (and probabilities)"),
    "train": ("fvos_utils.method.train", "main", "fine-tune a stage on Meta's SAM 2 trainer (locally or on SLURM)"),
    "postprocess": ("fvos_utils.method.postprocess", "main", "fill the gaps between adjacent objects of a prediction folder"),
    "fusion": ("fvos_utils.method.fusion", "main", "vote several prediction folders of one split into one"),
    "recipe": ("fvos_utils.method.recipe", "main", "the whole FVOS recipe on a split, ending in the server zip"),
    "pipeline": ("fvos_utils.cli", "pipeline_main", "every chapter notebook in order from one params file"),
    "report": ("fvos_utils.studies.report", "main", "a run's report: the paper's tables beside the run's"),
    "book": ("fvos_utils.run.book", "main", "an executed run as a static HTML book"),
}


def pipeline_main(argv: Sequence[str] | None = None) -> int:
    """``fvos pipeline`` (:func:`fvos_utils.run.pipeline.main`) with every chapter's values checked before any
    chapter runs (:func:`fvos_utils.studies.chapter_values.check`: the rules live with the steps, above the
    pipeline)."""
    from fvos_utils.run import pipeline
    from fvos_utils.studies import chapter_values

    return pipeline.main(None if argv is None else list(argv), value_check=chapter_values.check)


def run_pipeline(params_file, **options) -> dict:
    """:func:`fvos_utils.run.pipeline.run_pipeline` with every chapter's values checked before any chapter
    runs (as ``fvos pipeline`` does); returns the run's manifest."""
    from fvos_utils.run import pipeline
    from fvos_utils.studies import chapter_values

    return pipeline.run_pipeline(params_file, value_check=chapter_values.check, **options)


def prog(step: str) -> str:
    """The name a step's own parser shows in its usage line."""
    return f"fvos {step}"


def build_parser() -> argparse.ArgumentParser:
    width = max(map(len, STEPS))
    listing = "\n".join(f"  {name:<{width}}  {line}" for name, (_, _, line) in STEPS.items())
    parser = argparse.ArgumentParser(
        prog="fvos", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The FVOS research kit: every step of the method and of its study.",
        epilog=f"steps:\n{listing}\n\n'fvos STEP --help' gives a step's options.")
    parser.add_argument("step", choices=list(STEPS), metavar="STEP", help="one of the steps below")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the step's own options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``fvos``: run one step with the rest of the command line; returns its exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    module, function, _ = STEPS[args.step]
    return getattr(importlib.import_module(module), function)(args.options)

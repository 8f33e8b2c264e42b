"""fvos_utils: the computing half of the FVOS research kit (notebooks narrate, this package computes).

Subpackages by role; each imports only from those listed below it (checked by the import contract in
``pyproject.toml``):

- ``studies``: experiments about the method, one module per chapter's study, and the paper's claims
- ``method``: the paper's steps (models, inference, training, gap filling, fusion, the recipe)
- ``run``: the notebook machinery (chapters, the pipeline, the book, figures, tables)
- ``data`` | ``metrics``: datasets and submissions | J&F and its scores (independent of each other)
- ``base``: paths, files, locks, progress, provenance

Where to start (each imported on first use, so ``import fvos_utils`` stays light):

- :func:`build_predictor`: a SAM 2 video predictor (``method.models``)
- :func:`run_recipe`: the whole FVOS recipe on a split, ending in the server zip (``method.recipe``)
- :func:`run_pipeline`: every chapter in order from one params file (``run.pipeline``, the chapters' values
  checked first)
- :func:`evaluate`: J&F of a prediction folder against ground truth (``metrics.evaluate``)

The command line is ``fvos <step>`` (``python -m fvos_utils <step>``); ``fvos --help`` lists the steps.
"""
import importlib

__version__ = "0.1.0"

#: the names a user starts from, and the module that owns each
_PUBLIC = {
    "build_predictor": "fvos_utils.method.models",
    "run_recipe": "fvos_utils.method.recipe",
    "run_pipeline": "fvos_utils.cli",  # the pipeline with the kit's checks of chapter values
    "evaluate": "fvos_utils.metrics.evaluate",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fvos_utils' has no attribute {name!r}")

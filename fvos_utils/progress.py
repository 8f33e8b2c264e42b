"""Progress bars: tqdm's (``tqdm.auto``: a widget in JupyterLab, text in a terminal or a log).

A bar shows unless its caller asks for none (``show=False``) or the environment silences every bar
(``TQDM_DISABLE=1``). The pipeline sets that for the chapters' kernels (:data:`fvos_utils.pipeline.KERNEL_ENVIRONMENT`):
an executed chapter is read, not watched, and its bars would only leave stale lines in the saved
notebook. tqdm reads its ``TQDM_*`` variables only for the arguments a call leaves out, so the kit never
passes ``disable=False``: :func:`progress_bar` leaves ``disable`` to the environment whenever a bar is wanted.
"""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, show: bool = True, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)``, disabled when ``show`` is false; else as ``TQDM_DISABLE`` says (shown
    where it is unset)."""
    if not show:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)

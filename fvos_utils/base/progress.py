"""Progress bars: tqdm's (``tqdm.auto``: a widget in a notebook kernel, text in a terminal or a log).

A bar shows unless its caller asks for none (``show=False``) or the environment silences every bar:
``TQDM_DISABLE`` set to anything but ``""``, ``0``, ``false``, ``no`` or ``off``. The pipeline sets it for the
chapters' kernels (:data:`fvos_utils.run.pipeline.KERNEL_ENVIRONMENT`): an executed chapter is read, not watched,
and its bars would only leave stale lines in the saved notebook. The kit reads the variable itself, when
a bar is made: tqdm's own reading of it does not reach its notebook bars (``tqdm.notebook`` always passes
``disable`` on), which are the ones a kernel makes.
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm

#: values of ``TQDM_DISABLE`` that leave the bars on
_SHOWN = ("", "0", "false", "no", "off")


def silenced() -> bool:
    """Whether the environment turns every bar off (``TQDM_DISABLE``, module docstring)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in _SHOWN


def progress_bar(iterable=None, *, show: bool = True, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)``, disabled where ``show`` is false or :func:`silenced`."""
    return tqdm(iterable, disable=not show or silenced(), **kwargs)

"""The values each chapter parameter may take, checked before any chapter runs.

The pipeline (:mod:`fvos_utils.run.pipeline`) checks a params file's keys and types against the notebooks'
parameters cells; the rules on values belong to the steps that use them (a kernel size to gap filling, a
transform to the transforms, threads to this machine), which sit above the pipeline, so ``fvos pipeline``
and :func:`fvos_utils.run_pipeline` hand :func:`check` to it (:mod:`fvos_utils.cli`). A value a chapter
could not use is then one line naming the file, chapter and key, before the first chapter runs, not an
error inside the chapter that reads it after the chapters before it.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from fvos_utils.base import paths, provenance
from fvos_utils.method import models, postprocess, transforms


def _numbers(value: Any, *, positive: bool = False) -> None:
    """A non-empty list of finite numbers (positive ones where asked)."""
    if not value:
        raise ValueError("the list is empty")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValueError(f"{item!r} is not a finite number")
        if positive and item <= 0:
            raise ValueError(f"{item!r} is not above 0")
    if len(set(value)) != len(value):
        raise ValueError(f"{value} repeats a value")


def _at_least(low: int) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
    return check


def _kernels(value: Any) -> None:
    if not value:
        raise ValueError("the list is empty")
    for kernel in value:
        postprocess.structuring_element(kernel)


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if item not in allowed:
                raise ValueError(f"unknown value {item!r}; choose from {', '.join(allowed)}")
    return check


def _transforms(value: Any) -> None:
    _one_of(transforms.TRANSFORM_NAMES)(value)
    if not value or value[0] != "identity":
        raise ValueError(f"must start with identity (the untransformed pass breaks ties), got {value}")


def _folder_or_absent(value: Any) -> None:
    if value and paths.resolve(value).exists() and not paths.resolve(value).is_dir():
        raise ValueError(f"{paths.resolve(value)} is a file, not a dataset folder")


def _model(value: Any) -> None:
    models.get_spec(value)


def _factor(value: Any) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number above 0, got {value}")


#: the rule of each parameter a chapter may declare (a key no chapter declares is already refused)
RULES: dict[str, Callable[[Any], None]] = {
    "scales": lambda value: _numbers(value, positive=True),
    "sigmoid_scales": _numbers,
    "sigmoid_biases": _numbers,
    "kernel_sizes": _kernels,
    "fill_kernel": postprocess.structuring_element,
    "fill_shape": _one_of(postprocess.SHAPES),
    "methods": _one_of(postprocess.METHODS),
    "transforms": _transforms,
    "threads": provenance.checked_threads,
    "model": _model,
    "data_root": _folder_or_absent,
    "resize_factor": _factor,
    "n_videos": _at_least(0),
    "n_show": _at_least(0),
    "n_crops": _at_least(0),
    "n_frames": _at_least(1),
    "clip_frames": _at_least(1),
    "repeats": _at_least(1),
    "eval_workers": _at_least(1),
    "stage1_epochs": _at_least(1),
    "stage2_epochs": _at_least(1),
}


def check(chapter: str, values: dict) -> list[tuple[str, str]]:
    """``[(key, what is wrong), ...]`` for the values of ``chapter`` (its parameters as it would run them)
    that its steps could not use; empty when all are fine."""
    problems = []
    for key, value in values.items():
        rule = RULES.get(key)
        if rule is None:
            continue
        try:
            rule(value)
        except (ValueError, TypeError, KeyError) as err:
            problems.append((key, err.args[0] if isinstance(err, KeyError) and err.args else str(err)))
    return problems


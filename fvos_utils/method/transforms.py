"""Test-time transforms: applied to frames before the model and inverted exactly on its outputs.

All are pixel permutations (flips and quarter turns), so ``invert(apply(x)) == x`` bit for bit.
They act on the first two axes (H, W) of an array; any trailing axes (channels) are carried along.
Arrays with leading axes (e.g. ``(N, H, W)`` masks) use :func:`apply_stack` / :func:`invert_stack`.
"""
from __future__ import annotations

import numpy as np

#: name -> (hflip first?, number of counter-clockwise quarter turns)
_TRANSFORMS = {
    "identity": (False, 0),
    "hflip": (True, 0),
    "rot90": (False, 1),
    "rot180": (False, 2),
    "rot270": (False, 3),
}
TRANSFORM_NAMES = tuple(_TRANSFORMS)


def _check(name: str) -> tuple[bool, int]:
    if name not in _TRANSFORMS:
        raise ValueError(f"unknown test-time transform {name!r}; choose from {', '.join(TRANSFORM_NAMES)}")
    return _TRANSFORMS[name]


def apply(image: np.ndarray, name: str) -> np.ndarray:
    """Transform an ``(H, W, ...)`` array; returns a contiguous copy."""
    flip, turns = _check(name)
    out = image[:, ::-1] if flip else image
    return np.ascontiguousarray(np.rot90(out, turns, axes=(0, 1)))


def invert(image: np.ndarray, name: str) -> np.ndarray:
    """Undo :func:`apply` on an ``(H', W', ...)`` array (e.g. a predicted mask in transformed space)."""
    flip, turns = _check(name)
    out = np.rot90(image, -turns, axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


def apply_stack(stack: np.ndarray, name: str) -> np.ndarray:
    """Transform the last two axes of an ``(..., H, W)`` array (e.g. ``(N, H, W)`` masks)."""
    return np.moveaxis(apply(np.moveaxis(stack, (-2, -1), (0, 1)), name), (0, 1), (-2, -1)).copy()


def invert_stack(stack: np.ndarray, name: str) -> np.ndarray:
    """Undo :func:`apply_stack`."""
    return np.moveaxis(invert(np.moveaxis(stack, (-2, -1), (0, 1)), name), (0, 1), (-2, -1)).copy()

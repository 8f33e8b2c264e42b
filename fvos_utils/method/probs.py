"""Per-object probabilities saved by inference, reused by post-processing, fusion and the sigmoid search.

One compressed file per video, ``<dir>/<video>.npz``, holding:

- ``probs``: ``(T, N, H, W) uint8``, sigmoid probability of each object quantised as round(p * 255)
  (so 0.5 is stored as 128 and read back as 128/255 = 0.502; thresholds compare stored values);
- ``object_ids``: ``(N,) int32``, the object id of each channel;
- ``frames``: ``(T,)`` frame names (str).

uint8 keeps a 5-object, 30-frame 480p video near 10 MB before compression and a few MB after.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fvos_utils.base.io import MAX_OBJECT_ID, DataError, atomic_path
from fvos_utils.base.paths import is_plain_name

SUFFIX = ".npz"


@dataclass
class VideoProbs:
    probs: np.ndarray        # (T, N, H, W) uint8, p * 255 rounded
    object_ids: np.ndarray   # (N,) int32
    frames: list[str]        # T frame names

    def as_float(self) -> np.ndarray:
        """``(T, N, H, W) float32`` probabilities in [0, 1]."""
        return self.probs.astype(np.float32) / 255.0


def quantize(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] (any shape, float) -> uint8 round(p * 255)."""
    return np.clip(np.rint(np.asarray(prob, np.float32) * 255.0), 0, 255).astype(np.uint8)


def probs_path(folder: str | os.PathLike, video: str) -> Path:
    return Path(folder) / f"{video}{SUFFIX}"


def save_probs(path: str | os.PathLike, probs: np.ndarray, object_ids: Sequence[int],
               frames: Sequence[str]) -> None:
    """Save one video's probabilities atomically.

    Args:
        probs: ``(T, N, H, W)``, float in [0, 1] (quantised here) or already uint8.
        object_ids: the N object ids, one per channel.
        frames: the T frame names.
    """
    probs = np.asarray(probs)
    if probs.ndim != 4 or probs.shape[0] != len(frames) or probs.shape[1] != len(object_ids):
        raise ValueError(f"probs must be (T={len(frames)}, N={len(object_ids)}, H, W), got {probs.shape}")
    if probs.dtype != np.uint8:
        probs = quantize(probs)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, probs=probs, object_ids=np.asarray(object_ids, np.int32),
                                frames=np.asarray(list(frames), dtype=str))


def _stored_shape(path: Path, member: str) -> tuple[int, ...]:
    """The shape an ``.npz`` member's header declares, read without unpacking its data."""
    with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(read_header(handle)[0])


def _check_unpacked_size(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse, before it is allocated, an array larger than half of this machine's memory: a few MB of
    zeros compress a thousandfold, and numpy allocates the whole declared shape on reading."""
    size = int(np.prod(shape, dtype=np.float64))
    bound = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    if size > bound:
        raise DataError(path, f"its probabilities {shape} would take {size / 2**30:.1f} GiB unpacked, more than half "
                              f"of this machine's memory ({bound / 2**30:.1f} GiB)")


def load_probs(path: str | os.PathLike) -> VideoProbs:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "probability file not found")
    try:
        with np.load(path) as data:
            ids, frames = data["object_ids"], [str(f) for f in data["frames"]]
            _check_unpacked_size(path, _stored_shape(path, "probs.npy"))
            probs = data["probs"]
    # a truncated or empty file: BadZipFile, EOFError or zlib.error, depending on where it was cut
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(path, f"not a probability file written by fvos_utils.method.probs, or truncated "
                              f"({type(err).__name__}: {err or 'empty'})") from None
    if probs.dtype != np.uint8 or probs.ndim != 4 or probs.shape[:2] != (len(frames), len(ids)):
        raise DataError(path, f"inconsistent arrays: probs {probs.shape} {probs.dtype}, "
                              f"{len(ids)} ids, {len(frames)} frames")
    if ids.ndim != 1 or len(set(ids.tolist())) != len(ids) or any(not 1 <= i <= MAX_OBJECT_ID for i in ids.tolist()):
        # id 0 is the background: fused or filled, it would silently turn an object into background
        raise DataError(path, f"object ids must be distinct and lie in 1..{MAX_OBJECT_ID}, got {ids.tolist()}")
    bad = next((f for f in frames if not is_plain_name(f)), None)
    if bad is not None:  # frame names become file names of the outputs: they must stay inside them
        raise DataError(path, f"frame name {bad!r} is not a plain file name (no slash, backslash, '.' or '..')")
    return VideoProbs(probs, ids, frames)

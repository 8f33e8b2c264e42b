"""Gap filling between adjacent objects (FVOS, section 2.2), its alternatives, and figure crops.

    fvos postprocess --in DIR --out OUT [--kernel 2] [--shape square|circle] \\
        [--method paper|background|expand_labels] [--from-probs] [--overwrite]

fills every frame of a prediction folder (``DIR/<video>/<frame>.png``) or, with ``--from-probs``, of a
folder of per-object probabilities (``DIR/<video>.npz``, ``infer --save-probs``: one pass of the recipe,
filled as the recipe fills it) into ``OUT/<video>/<frame>.png`` (:func:`fill_gaps_folder`).

SAM 2 predicts every object separately, so where two objects meet their masks often leave a thin gap.
The paper's rule, with ``K`` a k x k structuring element and ``D_i = dilate(mask_i, K)``:

1. ``K = np.ones((k, k), np.uint8)`` (``"square"``) or ``cv2.getStructuringElement(MORPH_ELLIPSE,
   (k, k))`` (``"circle"``); for k <= 1 nothing is dilated (OpenCV would read an empty kernel as 3x3);
2. ``D_i = cv2.dilate(mask_i, K)``: OpenCV's default anchor (k // 2, k // 2), one iteration, nothing
   from outside the image;
3. ``filled_i = mask_i OR union over j != i with D_i & D_j non-empty of (D_i AND D_j)``;
4. merge: paint ``filled_i`` in ascending id order onto 0, so higher ids win.

:func:`fill_gaps_reference` is that recipe, literally (its pair loop grows with N^2). :func:`fill_gaps`
gives identical output from two passes over each mask's bounding box and a few full-frame operations,
however many objects touch. Step 3's adjacency test is implied by the overlap itself, so a pixel is
filled exactly when the dilations of two *different* objects cover it, i.e. when the highest and the
lowest id among the covering dilations differ. Dilation commutes with the maximum, so the highest
covering id is ``cv2.dilate`` of the merged label map (higher ids win), and the lowest is
``cv2.erode`` (same neighbourhood) of the map merged the other way round with background set above
every id. Such a pixel ends with the highest covering id (every filled_i that holds it is an object
whose dilation covers it, and every mask lies inside its own dilation, as both kernels contain their
anchor); any other pixel keeps the plain merge.

What the rule does along one axis (square kernel, anchor a = k // 2): two objects g background pixels
apart have overlapping dilations iff g <= k - 2, and the whole gap is filled iff g <= min(a, k - 1 - a)
= (k - 1) // 2. So k = 2 fills no straight gap at all (only 1-pixel gaps at corners, where the pixel's
upper and left neighbours belong to different objects), k = 3 fills 1-pixel gaps, k = 5 two, k = 9
four. Objects at Chebyshev distance >= k (any shape, either kernel) are untouched.

Methods (``method=``):

- ``"paper"``: the rule above. A higher id may also take pixels of a lower-id object it meets
  (the paper's "edge filling").
- ``"background"``: the same filled pixels, but only background pixels change (objects keep theirs).
- ``"expand_labels"``: ``skimage.segmentation.expand_labels`` of the merged map by distance k // 2 (the
  dilation's reach): every object grows into the background toward the nearest object, including
  edges that meet no other object.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator, Mapping, Sequence

import cv2
import numpy as np
from skimage.segmentation import expand_labels

from fvos_utils.base.io import VOID_LABEL, DataError, atomic_dir, frame_files, read_mask, remove_dir, write_mask
from fvos_utils.base.outputs import add_folder_output_options, run_folder_command
from fvos_utils.base.paths import from_here, resolve
from fvos_utils.base.progress import progress_bar
from fvos_utils.method import probs

SHAPES = ("square", "circle")
METHODS = ("paper", "background", "expand_labels")
#: stored probabilities are round(255 p): p > 0.5 <=> stored >= 128 (the single-source rule of fusion)
FOREGROUND = 128
#: the largest object id the fast path handles (its working maps are uint16, 65535 marks "no object")
MAX_ID = 65534


# --------------------------------------------------------------------------------------- checks
#: the largest kernel size: a square kernel of size k reaches (k - 1) / 2 pixels each way, so this one
#: covers a 2048-pixel frame side whole (MOSE's frames are at most 1920 wide); a larger one only costs memory
MAX_KERNEL_SIZE = 4097


def structuring_element(kernel_size: int, shape: str = "square") -> np.ndarray | None:
    """The ``(k, k) uint8`` dilation kernel, or None when ``kernel_size <= 1`` (no pixel is added).
    Shown in chapter 05."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) or kernel_size < 0:
        raise ValueError(f"kernel_size must be a non-negative integer, got {kernel_size!r}")
    if kernel_size > MAX_KERNEL_SIZE:  # the element alone is k^2 bytes: 931 GiB for a million
        raise ValueError(f"kernel_size must be at most {MAX_KERNEL_SIZE} (it then covers a 2048-pixel frame "
                         f"whole), got {kernel_size}")
    if shape not in SHAPES:
        raise ValueError(f"unknown kernel shape {shape!r}; choose from {', '.join(SHAPES)}")
    k = int(kernel_size)
    if k <= 1:
        return None
    if shape == "square":
        return np.ones((k, k), np.uint8)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown gap-filling method {method!r}; choose from {', '.join(METHODS)}")


def _check_masks(masks: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(N, H, W) bool`` masks and ``(N,) int64`` ids (unique, in 1..MAX_ID)."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.dtype != bool:
        raise ValueError(f"masks must be a bool array (N, H, W), got {masks.dtype} {masks.shape}")
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != len(masks):
        raise ValueError(f"need one id per mask: {len(masks)} masks, ids of shape {ids.shape}")
    if len(ids) and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 1 or ids.max() > MAX_ID):
        raise ValueError(f"object ids must be integers in 1..{MAX_ID}, got {ids.tolist()}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"object ids must be unique, got {ids.tolist()}")
    return masks, ids.astype(np.int64)


def _working_dtype(max_id: int) -> np.dtype:
    """uint8 while ids stay below 255 (then 255 is free to mark 'no object'), else uint16."""
    return np.dtype(np.uint8) if max_id < 255 else np.dtype(np.uint16)


# ------------------------------------------------------------------------------------ reference
def merge_masks(masks: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Step 4 alone: paint ``masks: (N, H, W) bool`` onto 0 in ascending id order (higher ids win).

    Returns ``(H, W)`` labels, uint8 when every id is below 255, else uint16.
    """
    masks, ids = _check_masks(masks, ids)
    labels = np.zeros(masks.shape[1:], _working_dtype(int(ids.max(initial=0))))
    for i in np.argsort(ids):
        labels[masks[i]] = ids[i]
    return labels


def fill_gaps_reference(masks: np.ndarray, ids: Sequence[int], kernel_size: int, *,
                        shape: str = "square") -> np.ndarray:
    """The paper's gap filling, step by step as specified (slow: all pairs of objects, full frames).

    Args:
        masks: ``(N, H, W) bool``, one mask per object as predicted separately (they may overlap).
        ids: the N object ids (unique, >= 1).
        kernel_size: k; k <= 1 adds no pixel.
        shape: ``"square"`` or ``"circle"``.

    Returns:
        ``(H, W)`` labels, uint8 when every id is below 255, else uint16.
    """
    masks, ids = _check_masks(masks, ids)
    kernel = structuring_element(kernel_size, shape)
    if kernel is None:
        return merge_masks(masks, ids)
    dilated = [cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) for mask in masks]
    filled = masks.copy()
    for i in range(len(masks)):
        for j in range(len(masks)):
            if j != i:
                overlap = dilated[i] & dilated[j]
                if overlap.any():  # D_j overlaps D_i: the objects are adjacent
                    filled[i] |= overlap
    return merge_masks(filled, ids)


# ----------------------------------------------------------------------------------------- fast
def _bounding_slices(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the smallest box holding ``mask: (H, W) bool``; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _merged_pair(masks: np.ndarray, ids: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The highest and the lowest id at each pixel (``(H, W)`` each; 0 resp. the dtype's max where none)."""
    highest = np.zeros(masks.shape[1:], dtype)
    lowest = np.full(masks.shape[1:], np.iinfo(dtype).max, dtype)
    values = ids.astype(dtype)
    order = np.argsort(ids)
    boxes = {}
    for i in order:  # ascending ids: a later paint is a higher id
        boxes[i] = _bounding_slices(masks[i])
        if boxes[i] is not None:  # painted right after the box is found, while the mask is in cache
            np.copyto(highest[boxes[i]], values[i], where=masks[i][boxes[i]])
    for i in order[::-1]:
        if boxes[i] is not None:
            np.copyto(lowest[boxes[i]], values[i], where=masks[i][boxes[i]])
    return highest, lowest


def _covered_by_two(highest: np.ndarray, lowest: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the dilations of two different objects overlap, and the highest covering id.

    ``highest``/``lowest``: ``(H, W)`` merged maps from :func:`_merged_pair` (or a label map and its
    copy with 0 replaced by the dtype's max). Returns ``(meet: (H, W) bool, reach: (H, W))``.
    """
    reach = cv2.dilate(highest, kernel)
    # no covering object: reach 0, lowest-reach = max, so the comparison is False, as it is for one object
    return cv2.erode(lowest, kernel) < reach, reach


def _fill_merged(highest: np.ndarray, lowest: np.ndarray, kernel_size: int, shape: str,
                 method: str) -> np.ndarray:
    """Gap filling from the two merged maps; returns a new ``(H, W)`` map of ``highest``'s dtype."""
    kernel = structuring_element(kernel_size, shape)
    _check_method(method)
    if kernel is None:
        return highest.copy()
    if method == "expand_labels":
        return expand_labels(highest, distance=int(kernel_size) // 2).astype(highest.dtype)
    meet, reach = _covered_by_two(highest, lowest, kernel)
    if method == "background":
        meet &= highest == 0
    labels = highest.copy()
    np.copyto(labels, reach, where=meet)
    return labels


def fill_gaps(masks: np.ndarray, ids: Sequence[int], kernel_size: int, *, shape: str = "square",
              method: str = "paper") -> np.ndarray:
    """Fill the gaps between adjacent objects and merge them (identical to :func:`fill_gaps_reference`
    for ``method="paper"``). Shown in chapter 05.

    Args:
        masks: ``(N, H, W) bool``, one mask per object as predicted separately (they may overlap).
        ids: the N object ids (unique, 1..65534).
        kernel_size: k; k <= 1 only merges.
        shape: ``"square"`` or ``"circle"``.
        method: ``"paper"``, ``"background"`` or ``"expand_labels"`` (see the module docstring).

    Returns:
        ``(H, W)`` labels, uint8 when every id is below 255, else uint16.
    """
    masks, ids = _check_masks(masks, ids)
    highest, lowest = _merged_pair(masks, ids, _working_dtype(int(ids.max(initial=0))))
    return _fill_merged(highest, lowest, kernel_size, shape, method)


def fill_gaps_labels(labels: np.ndarray, kernel_size: int, *, shape: str = "square",
                     method: str = "paper") -> np.ndarray:
    """:func:`fill_gaps` on a label map: ``labels: (H, W)`` non-negative integers, 0 background,
    every other value one object. Returns a new ``(H, W)`` map of the same dtype. Shown in chapters 05, 06."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array (H, W), got {labels.dtype} {labels.shape}")
    top = int(labels.max(initial=0))
    if labels.size and (labels.min() < 0 or top > MAX_ID):
        raise ValueError(f"label values must lie in 0..{MAX_ID}, got {labels.min()}..{top}")
    dtype = _working_dtype(top)
    highest = labels.astype(dtype)
    lowest = highest.copy()
    lowest[highest == 0] = np.iinfo(dtype).max
    return _fill_merged(highest, lowest, kernel_size, shape, method).astype(labels.dtype)


# -------------------------------------------------------------------------------------- folders
def list_predictions(folder: str | os.PathLike) -> dict[str, list[str]]:
    """The frames of a prediction folder ``<folder>/<video>/<frame>.png``: ``{video: [frame, ...]}``,
    videos and frames sorted by name. An absent folder, or one without PNGs, is a :class:`DataError`.

    Frames are found as the data readers find them (:func:`fvos_utils.base.io.frame_files`: a name unlike the
    others, such as ``thumbnail.png``, is an error, not a frame), and a ``.PNG`` frame is an error too,
    not a frame silently left out: the kit reads and writes ``<frame>.png``."""
    folder = resolve(folder)
    if not folder.is_dir():
        raise DataError(folder, "prediction folder not found")
    videos = {}
    for video in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = frame_files(video)
        odd = next((p for p in files if p.suffix != ".png"), None)
        if odd is not None:
            raise DataError(odd, f"a prediction frame must end in .png (the name the kit reads and writes), "
                                 f"not {odd.suffix}: rename it")
        frames = [p.stem for p in files]
        if frames:
            videos[video.name] = frames
    if not videos:
        raise DataError(folder, "no predictions here (expected <video>/<frame>.png)")
    return videos


def fill_gaps_folder(source: str | os.PathLike, out_dir: str | os.PathLike, kernel_size: int, *,
                     shape: str = "square", method: str = "paper", from_probs: bool = False,
                     videos: Sequence[str] | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Fill the gaps in every frame of a run's output (:func:`fill_gaps`; the command line's function).

    Args:
        source: a prediction folder ``<video>/<frame>.png`` of merged label maps, or with ``from_probs`` a
            folder of ``<video>.npz`` per-object probabilities, each object's mask p > 0.5 (what the recipe
            fills: its passes' masks, predicted separately, may overlap). As in :func:`fill_variants`.
        out_dir: the filled folder, ``<video>/<frame>.png`` (DAVIS-palette PNGs); it appears only once every
            frame is written.
        videos: a subset of the videos (default: all).

    Returns:
        ``out_dir`` resolved.
    """
    setting = GapFilling(method, shape, kernel_size)  # bad arguments fail before any work
    source, out_dir = resolve(source), resolve(out_dir)
    frames = _object_frames(source, from_probs=from_probs, videos=videos, progress=progress)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        _write_filled(frames, {setting: tmp})
    return out_dir


# ------------------------------------------------------------------------------ named settings
@dataclass(frozen=True)
class GapFilling:
    """One gap-filling setting: ``method`` and ``shape`` (:data:`METHODS`, :data:`SHAPES`), kernel size k.
    Shown in chapters 05, 06.

    Its :attr:`name` (``"paper-square-k2"``) names its folders and result keys; :meth:`from_name` reads
    one back. Chapter 05 compares settings; the recipe (chapter 06) applies the chosen one to every pass.
    """

    method: str = "paper"
    shape: str = "square"
    kernel: int = 0

    def __post_init__(self):
        structuring_element(self.kernel, self.shape)  # checks shape and size
        _check_method(self.method)

    @property
    def name(self) -> str:
        return f"{self.method}-{self.shape}-k{self.kernel}"

    @property
    def fills(self) -> bool:
        """Whether the setting adds any pixel: a kernel of at most 1 (every method) adds none."""
        return self.kernel > 1

    @property
    def words(self) -> str:
        """In words, as sentences and tables name it: ``"no filling"`` or ``"square kernel 2"``."""
        return f"{self.shape} kernel {self.kernel}" if self.fills else "no filling"

    @classmethod
    def from_name(cls, name: str) -> "GapFilling":
        """The setting whose :attr:`name` is ``name`` (ValueError otherwise)."""
        found = re.fullmatch(r"(?P<method>[a-z_]+)-(?P<shape>[a-z]+)-k(?P<kernel>\d+)", name)
        if not found:
            raise ValueError(f"not a gap-filling name (method-shape-kK, e.g. paper-square-k2): {name!r}")
        return cls(found["method"], found["shape"], int(found["kernel"]))


#: the paper's gap filling (section 2.2): its rule with a square kernel of 2, the setting the recipe falls back on
PAPER_FILLING = GapFilling("paper", "square", 2)
#: doing nothing: a kernel of 0 adds no pixel (the baseline of every gap-filling comparison)
NO_FILLING = GapFilling("paper", "square", 0)


def gap_filling_variants(kernel_sizes: Sequence[int], shapes: Sequence[str] = SHAPES,
                         methods: Sequence[str] = ("paper",)) -> list[GapFilling]:
    """Every (method, shape, kernel size) combination, in that nesting order; ``expand_labels`` grows by
    a distance, so it takes no shape: it comes with the first shape only. Shown in chapter 05."""
    return [GapFilling(m, s, int(k)) for m in methods for s in (shapes[:1] if m == "expand_labels" else shapes)
            for k in kernel_sizes]


def object_masks(stored: np.ndarray) -> np.ndarray:
    """``stored: (N, H, W) uint8`` probabilities (round(255 p)) -> ``(N, H, W) bool`` masks, p > 0.5."""
    stored = np.asarray(stored)
    if stored.dtype != np.uint8 or stored.ndim != 3:
        raise ValueError(f"stored probabilities must be (N, H, W) uint8, got {stored.dtype} {stored.shape}")
    return stored >= FOREGROUND


def _split_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` label map -> ``(N, H, W) bool`` masks and their ``(N,)`` ids (0 excluded)."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    return labels[None] == ids[:, None, None], ids


def _probability_files(folder: Path, videos: Sequence[str] | None) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "probability folder not found")
    names = sorted(p.stem for p in folder.glob(f"*{probs.SUFFIX}") if not p.name.startswith("."))
    if not names:
        raise DataError(folder, f"no probability files here (expected <video>{probs.SUFFIX}; run inference "
                                "with save_probs)")
    if videos is not None:
        missing = sorted(set(videos) - set(names))
        if missing:
            raise DataError(folder / f"{missing[0]}{probs.SUFFIX}", "probability file missing for this video")
        names = list(videos)
    return [probs.probs_path(folder, name) for name in names]


def _object_frames(source: Path, *, from_probs: bool, videos: Sequence[str] | None,
                   progress: bool) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(video, frame, masks (N, H, W) bool, ids (N,))`` for every frame of a run's output.

    The folder and the videos are checked here, before the caller creates any output; frames are read
    as the result is iterated.
    """
    if from_probs:
        files = _probability_files(source, videos)

        def from_files():
            for path in progress_bar(files, desc="videos", show=progress):
                video = probs.load_probs(path)
                for frame, stored in zip(video.frames, video.probs):
                    yield path.stem, frame, object_masks(stored), video.object_ids.astype(np.int64)
        return from_files()
    listing = list_predictions(source)
    names = list(listing) if videos is None else list(videos)
    missing = [name for name in names if name not in listing]
    if missing:
        raise DataError(source / missing[0], "prediction folder missing for this video")

    def from_labels():
        for name in progress_bar(names, desc="videos", show=progress):
            for frame in listing[name]:
                masks, ids = _split_labels(read_mask(source / name / f"{frame}.png"))
                yield name, frame, masks, ids
    return from_labels()


def _write_filled(frames: Iterator[tuple[str, str, np.ndarray, np.ndarray]],
                  folders: Mapping[GapFilling, Path]) -> None:
    """Write each setting's filling of every frame of :func:`_object_frames` into its folder,
    ``<folder>/<video>/<frame>.png``."""
    for video, frame, masks, ids in frames:
        for setting, folder in folders.items():
            labels = fill_gaps(masks, ids, setting.kernel, shape=setting.shape, method=setting.method)
            write_mask(folder / video / f"{frame}.png", labels)


def fill_variants(source: str | os.PathLike, work_dir: str | os.PathLike, variants: Sequence[GapFilling], *,
                  from_probs: bool, videos: Sequence[str] | None = None, overwrite: bool = False,
                  progress: bool = True) -> dict[GapFilling, Path]:
    """Apply every gap-filling setting to a run's output in one pass over its frames (chapters 05, 06).
    Shown in chapters 05, 06.

    Args:
        source: with ``from_probs``, a folder of ``<video>.npz`` per-object probabilities
            (:mod:`fvos_utils.method.probs`): each object's mask is p > 0.5, as predicted separately (masks may
            overlap), which is what the paper fills; else a prediction folder of merged label maps
            ``<video>/<frame>.png`` (split into masks by id).
        work_dir: setting v is written to ``work_dir/<v.name>/<video>/<frame>.png``; each folder
            appears only once every setting is complete. Then the folders of settings not in
            ``variants`` (an earlier call's) are removed (:func:`remove_other_variants`).
        videos: a subset of the videos (default: all).

    Returns:
        ``{setting: its folder}``.
    """
    source, work_dir = resolve(source), resolve(work_dir)
    if len({v.name for v in variants}) != len(variants):
        raise ValueError("variants must be distinct")
    frames = _object_frames(source, from_probs=from_probs, videos=videos, progress=progress)
    with contextlib.ExitStack() as stack:
        _write_filled(frames, {v: stack.enter_context(atomic_dir(work_dir / v.name, overwrite=overwrite))
                               for v in variants})
    remove_other_variants(work_dir, {v.name for v in variants}, GapFilling.from_name)
    return {v: work_dir / v.name for v in variants}


def remove_other_variants(work_dir: Path, current: Collection[str], parse: Callable[[str], object]) -> None:
    """Delete the folders of ``work_dir`` named like a variant but not in ``current``: what a call with
    other settings left beside this call's folders, which would otherwise pass for results of this one.

    A name is a variant's when ``parse`` (e.g. :meth:`GapFilling.from_name`) accepts it; every other
    entry (files, links, hidden or other folders) is kept. Called once the current folders are written,
    so a call that fails leaves the folder as it was.
    """
    if not work_dir.is_dir():
        return
    for entry in sorted(work_dir.iterdir()):
        if entry.name in current or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            parse(entry.name)
        except ValueError:
            continue
        remove_dir(entry)


# --------------------------------------------------------------------------------- figure crops
def _placed(center: int, length: int, limit: int) -> slice:
    start = min(max(center - length // 2, 0), limit - length)
    return slice(start, start + length)


def _near_two_objects(labels: np.ndarray, reach: int) -> np.ndarray:
    """``(H, W) bool``: the ``(2 reach + 1)`` square around the pixel holds two different non-zero ids of
    ``labels``."""
    dtype = _working_dtype(int(labels.max(initial=0)))
    highest = labels.astype(dtype)
    lowest = highest.copy()
    lowest[highest == 0] = np.iinfo(dtype).max
    return _covered_by_two(highest, lowest, np.ones((2 * reach + 1,) * 2, np.uint8))[0]


def meeting_pixels(before: np.ndarray, after: np.ndarray, *, truth: np.ndarray | None = None,
                   union: bool = False, reach: int = 8) -> np.ndarray:
    """The pixels gap filling changed where adjacent objects meet.

    A pixel counts when filling changed it (``before != after``) and objects meet around it, judged on the
    ground truth where it tells the objects apart, so that what is shown is a gap between objects that
    are adjacent in the annotation and not a place where the prediction lost track:

    - ``truth`` given: the ``(2 reach + 1)`` square around the pixel holds two different annotated objects;
    - ``truth`` given with ``union=True`` (an annotation of the objects' union, as DAVIS 2016's of a
      two-object clip): the pixel lies inside the union and the square holds two different objects of
      ``before``;
    - no ``truth``: the square holds two different objects of ``before`` (prediction only).

    Args:
        before, after: ``(H, W)`` integer label maps (0 background) of the same shape.
        truth: ``(H, W)`` ground-truth labels (0 background, VOID_LABEL not an object; with ``union`` every
            non-zero pixel is inside the union).

    Returns:
        ``(H, W) bool``.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 2 or (truth is not None and np.shape(truth) != before.shape):
        shapes = ", ".join(str(np.shape(m)) for m in (before, after, truth) if m is not None)
        raise ValueError(f"before, after and truth must be (H, W) maps of one shape, got {shapes}")
    if reach < 0:
        raise ValueError(f"need reach >= 0, got {reach}")
    if truth is None:
        near = _near_two_objects(before, reach)
    else:
        truth = np.asarray(truth)
        if union:  # DAVIS 2016 writes the union as 255, elsewhere the void label
            near = _near_two_objects(before, reach) & (truth != 0)
        else:
            near = _near_two_objects(np.where(truth == VOID_LABEL, 0, truth), reach)
    return (before != after) & near


def meeting_crops(before: np.ndarray, after: np.ndarray, *, truth: np.ndarray | None = None, union: bool = False,
                  size: int = 64, max_crops: int = 4, reach: int = 8) -> list[tuple[slice, slice]]:
    """Windows showing where gap filling changed the maps where adjacent objects meet (crops for a
    Figure-2-style panel).

    The pixels of :func:`meeting_pixels` (``truth``, ``union``, ``reach`` as there) are covered greedily:
    the window holding the most of them, centred on the box around them, then the next among the pixels
    farther than half a crop from those chosen, until ``max_crops`` or none is left.

    Args:
        before, after: ``(H, W)`` integer label maps (0 background) of the same shape.
        size: crop side in pixels (clipped to the image).

    Returns:
        Up to ``max_crops`` ``(rows, cols)`` slice pairs, ``image[rows, cols]`` being a crop, best
        first; empty when nothing changed where objects meet.
    """
    if size < 1 or max_crops < 0:
        raise ValueError(f"need size >= 1, max_crops >= 0; got {size}, {max_crops}")
    interest = meeting_pixels(before, after, truth=truth, union=union, reach=reach)
    height, width = interest.shape
    crop_h, crop_w = min(size, height), min(size, width)
    crops = []
    while len(crops) < max_crops and interest.any():
        integral = np.pad(interest.cumsum(0, dtype=np.int64).cumsum(1), ((1, 0), (1, 0)))
        counts = (integral[crop_h:, crop_w:] - integral[:-crop_h, crop_w:]
                  - integral[crop_h:, :-crop_w] + integral[:-crop_h, :-crop_w])
        top, left = np.unravel_index(np.argmax(counts), counts.shape)
        box = _bounding_slices(interest[top:top + crop_h, left:left + crop_w])
        rows = _placed(top + (box[0].start + box[0].stop) // 2, crop_h, height)
        cols = _placed(left + (box[1].start + box[1].stop) // 2, crop_w, width)
        crops.append((rows, cols))
        # what lies within half a crop of this one is shown by it, or would be by a crop overlapping it by half
        interest[max(rows.start - crop_h // 2, 0):rows.stop + crop_h // 2,
                 max(cols.start - crop_w // 2, 0):cols.stop + crop_w // 2] = False
    return crops


# ------------------------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fvos postprocess", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="source", required=True, type=from_here, metavar="DIR",
                        help="a prediction folder DIR/<video>/<frame>.png, or with --from-probs a folder of "
                             "DIR/<video>.npz probabilities")
    parser.add_argument("--kernel", type=int, default=PAPER_FILLING.kernel,
                        help=f"kernel size k (default {PAPER_FILLING.kernel}, the paper's; 0 or 1 only merge)")
    parser.add_argument("--shape", choices=SHAPES, default=PAPER_FILLING.shape,
                        help=f"kernel shape (default {PAPER_FILLING.shape}, the paper's)")
    parser.add_argument("--method", choices=METHODS, default="paper",
                        help="paper (the paper's rule), background (only background pixels change) or "
                             "expand_labels (default paper)")
    parser.add_argument("--from-probs", action="store_true",
                        help="read per-object probabilities (each object p > 0.5, overlaps kept, as the recipe "
                             "fills its passes) instead of merged label maps")
    add_folder_output_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``fvos postprocess`` and ``fvos postprocess``; paths from the current folder.
    Bad input is one error line naming the file, exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_folder_command(parser, args, lambda progress: fill_gaps_folder(
        args.source, args.out, args.kernel, shape=args.shape, method=args.method, from_probs=args.from_probs,
        overwrite=True, progress=progress))

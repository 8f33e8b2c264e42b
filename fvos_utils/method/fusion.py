"""Fusion of several predictions of one video (FVOS, section 2.3): hard voting, soft voting, scale sets.

    fvos fusion --out OUT DIR [DIR ...] [--fusion hard|soft] [--overwrite]

votes prediction folders (``DIR/<video>/<frame>.png``, the recipe's filled passes; the first folder breaks
ties) or, with ``--fusion soft``, averages probability folders (``DIR/<video>.npz``, the passes themselves)
into ``OUT/<video>/<frame>.png`` (:data:`FOLDER_FUSIONS`).

FVOS runs the model at scales 1.0 to 1.75 in steps of 0.125 (7 scales) and fuses the label maps by
voting. The paper also tried test-time flips and rotations (found no gain); their names live in
:mod:`fvos_utils.method.transforms`. Every (scale, transform) pair is one model pass.

- **Hard voting** (:func:`vote`): per pixel, the label (object id or 0) most of the maps agree on.
  A tie goes to the first map's label if it is among the tied labels, otherwise to the highest tied id.
- **Soft voting** (:func:`soft_vote`): mean of the per-object probabilities over the sources, then
  label = the object with the highest mean where that mean exceeds 0.5, else 0 (background). Ties
  between objects go to the higher id, as in the paper's merge. With probabilities stored as uint8
  (:mod:`fvos_utils.method.probs`, p * 255) the test is on stored values, exactly: mean > 127.5, so a single
  source keeps a pixel iff its stored value is >= 128 (p >= 0.502), the same as thresholding it alone.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from fvos_utils.base.io import DataError, atomic_dir, read_mask, write_mask
from fvos_utils.base.outputs import add_folder_output_options, run_folder_command
from fvos_utils.base.paths import from_here, resolve
from fvos_utils.base.progress import progress_bar
from fvos_utils.method.postprocess import list_predictions
from fvos_utils.method.probs import SUFFIX, load_probs
from fvos_utils.method.transforms import TRANSFORM_NAMES

#: FVOS's scales: 1.0 to 1.75 in steps of 0.125 (exact binary fractions)
FVOS_SCALES = tuple(1.0 + 0.125 * step for step in range(7))
#: named scale sets for the ablations, each starting at the original size
SCALE_SETS = {
    "single": (1.0,),
    "low3": FVOS_SCALES[:3],                 # 1.0, 1.125, 1.25
    "wide3": FVOS_SCALES[::3],               # 1.0, 1.375, 1.75
    "alternate4": FVOS_SCALES[::2],          # 1.0, 1.25, 1.5, 1.75
    "fvos7": FVOS_SCALES,
}
#: named test-time transform sets (names from fvos_utils.method.transforms)
TRANSFORM_SETS = {
    "identity": ("identity",),
    "hflip": ("identity", "hflip"),
    "rotations": ("identity", "rot90", "rot180", "rot270"),
    "all": TRANSFORM_NAMES,
}


# ------------------------------------------------------------------------------------ hard voting
def _stack_maps(label_maps: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """``(S, H, W)`` integer maps from a stack or a sequence of ``(H, W)`` maps, sizes checked."""
    stacked = isinstance(label_maps, np.ndarray) and label_maps.ndim == 3
    maps = list(label_maps) if stacked else [np.asarray(m) for m in label_maps]
    if not maps:
        raise ValueError("vote needs at least one label map")
    for index, m in enumerate(maps):
        if m.ndim != 2 or not np.issubdtype(m.dtype, np.integer):
            raise ValueError(f"label map {index} must be an integer array (H, W), got {m.dtype} {m.shape}")
        if np.issubdtype(m.dtype, np.signedinteger) and m.size and m.min() < 0:
            raise ValueError(f"label map {index} holds negative values (ids are >= 0, 0 background)")
        if m.shape != maps[0].shape:
            raise ValueError(f"label maps differ in size: map 0 is {maps[0].shape[0]}x{maps[0].shape[1]} (HxW), "
                             f"map {index} is {m.shape[0]}x{m.shape[1]}")
    return label_maps if stacked else np.stack(maps)


def vote(label_maps: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel plurality vote. Shown in chapter 06.

    Args:
        label_maps: S maps ``(H, W)`` (or one ``(S, H, W)`` array) of object ids, 0 background.

    Returns:
        ``(H, W)`` labels, the maps' common dtype. A tie goes to the first map's label when it is
        among the tied labels, else to the highest tied id. Maps of different sizes: ValueError.
    """
    maps = _stack_maps(label_maps)
    # how many maps agree with map s, for every s: S^2 / 2 comparisons, however many labels occur
    agree = np.ones(maps.shape, np.uint8 if len(maps) < 256 else np.uint32)
    for s in range(len(maps)):
        for t in range(s + 1, len(maps)):
            same = maps[s] == maps[t]
            agree[s] += same
            agree[t] += same
    most = np.maximum.reduce(agree, axis=0)
    # the tied labels are the maps' values where their agreement is the most: keep the highest
    # (multiplying by the condition, not masking: masked writes are slow on ragged borders)
    labels = np.zeros(maps.shape[1:], maps.dtype)
    for s in range(len(maps)):
        np.maximum(labels, maps[s] * (agree[s] == most), out=labels)
    np.copyto(labels, maps[0], where=agree[0] == most)  # the first map's label wins any tie it is in
    return labels


def _check_same_frames(folders: Sequence[Path], listings: Sequence[dict[str, list[str]]]) -> None:
    for folder, listing in zip(folders[1:], listings[1:]):
        for video in sorted(set(listings[0]) | set(listing)):
            mine, first = listing.get(video, []), listings[0].get(video, [])
            if mine != first:
                missing, extra = sorted(set(first) - set(mine)), sorted(set(mine) - set(first))
                raise DataError(folder / video, f"frames differ from {folders[0] / video}: "
                                                f"missing {missing[:5] or 'none'}, extra {extra[:5] or 'none'}")


def vote_folders(pred_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 overwrite: bool = False, progress: bool = True) -> Path:
    """:func:`vote` over prediction folders (``<dir>/<video>/<frame>.png``, the first one breaks ties).
    Shown in chapter 06.

    Every folder must hold the same videos and frames (else a :class:`DataError` naming the folder).
    The fused folder appears at ``out_dir`` only once complete. Returns ``out_dir`` resolved.
    """
    folders = [resolve(d) for d in pred_dirs]
    if not folders:
        raise ValueError("vote_folders needs at least one prediction folder")
    listings = [list_predictions(d) for d in folders]
    _check_same_frames(folders, listings)
    out_dir = resolve(out_dir)
    total = sum(len(frames) for frames in listings[0].values())
    with atomic_dir(out_dir, overwrite=overwrite) as tmp, \
            progress_bar(total=total, desc=f"vote {len(folders)} maps", show=progress) as bar:
        for video, frames in listings[0].items():
            for frame in frames:
                paths = [d / video / f"{frame}.png" for d in folders]
                maps = [read_mask(p) for p in paths]
                for path, labels in zip(paths[1:], maps[1:]):
                    if labels.shape != maps[0].shape:
                        raise DataError(path, f"size {labels.shape[1]}x{labels.shape[0]} (WxH) differs from "
                                              f"{paths[0]} ({maps[0].shape[1]}x{maps[0].shape[0]})")
                write_mask(tmp / video / f"{frame}.png", vote(maps))
                bar.update()
    return out_dir


# ------------------------------------------------------------------------------------ soft voting
def _stored_sum_dtype(n_sources: int) -> np.dtype:
    """Sums of ``n_sources`` uint8 values fit uint16 up to 257 sources (257 * 255 = 65535)."""
    return np.dtype(np.uint16) if n_sources <= 257 else np.dtype(np.uint32)


def _stored_threshold(n_sources: int) -> int:
    """The integer sum s with: mean > 127.5 (a probability above 0.5) <=> s > this."""
    return 255 * n_sources // 2


def _labels_from_sums(sums: np.ndarray, threshold: float, ids: np.ndarray) -> np.ndarray:
    """Argmax with background over axis -3 of ``sums: (..., N, H, W)``, channel i being object ``ids[i]``.

    Returns ``(..., H, W)`` labels: the highest id among the channels with the largest sum where that
    sum exceeds ``threshold``, else 0; uint8 when every id is below 256.
    """
    dtype = np.min_scalar_type(int(ids.max(initial=0)))
    if not len(ids):
        return np.zeros(sums.shape[:-3] + sums.shape[-2:], dtype)
    best = np.max(sums, axis=-3)
    labels = np.zeros(best.shape, dtype)
    for channel, object_id in enumerate(ids):  # multiply, not mask: masked writes are slow on ragged borders
        np.maximum(labels, (sums[..., channel, :, :] == best) * dtype.type(object_id), out=labels)
    labels *= best > threshold
    return labels


def _sum_and_threshold(probs: np.ndarray) -> tuple[np.ndarray, float]:
    """Sum over axis 0 of ``(S, ...)`` probabilities and the sum above which the mean exceeds 0.5."""
    if probs.dtype == np.uint8:
        return probs.sum(axis=0, dtype=_stored_sum_dtype(len(probs))), _stored_threshold(len(probs))
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probabilities must be uint8 (stored p * 255) or float in [0, 1], got {probs.dtype}")
    return probs.sum(axis=0, dtype=np.float64), 0.5 * len(probs)


def soft_vote(probs: np.ndarray | Sequence[np.ndarray], object_ids: Sequence[int]) -> np.ndarray:
    """Mean of per-object probabilities over S sources, then argmax with background. Shown in chapter 06.

    Args:
        probs: ``(S, N, H, W)`` (or S arrays ``(N, H, W)``; extra leading axes such as frames allowed:
            ``(S, ..., N, H, W)``), uint8 as stored by :mod:`fvos_utils.method.probs` or float in [0, 1].
        object_ids: the N ids, one per channel (any order).

    Returns:
        ``(..., H, W)`` labels: the object with the highest mean probability where that mean exceeds
        0.5, else 0; ties go to the higher id. uint8 when every id is below 256.
    """
    probs = np.asarray(probs) if isinstance(probs, np.ndarray) else np.stack([np.asarray(p) for p in probs])
    ids = np.asarray(object_ids)
    if probs.ndim < 4 or probs.shape[-3] != len(ids):
        raise ValueError(f"probs must be (S, ..., N={len(ids)}, H, W), got {probs.shape}")
    if len(np.unique(ids)) != len(ids) or (len(ids) and ids.min() < 1):
        raise ValueError(f"object ids must be unique and >= 1, got {ids.tolist()}")
    sums, threshold = _sum_and_threshold(probs)
    return _labels_from_sums(sums, threshold, ids)


def soft_vote_files(paths: Sequence[str | os.PathLike]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """:func:`soft_vote` over probability files of one video (format of :mod:`fvos_utils.method.probs`).

    The files must share frames, object ids (in any channel order) and frame size; a file that
    differs from the first is named in a :class:`DataError`. Files are read one at a time.

    Returns:
        ``(frames, object_ids: (N,) int32 ascending, labels: (T, H, W))``.
    """
    paths = [resolve(p) for p in paths]
    if not paths:
        raise ValueError("soft_vote_files needs at least one probability file")
    first = load_probs(paths[0])
    ids = np.sort(first.object_ids)
    sums = None
    for index, path in enumerate(paths):
        video = first if index == 0 else load_probs(path)
        if video.frames != first.frames:
            raise DataError(path, f"frames differ from {paths[0]} ({len(video.frames)} vs {len(first.frames)} frames, "
                                  f"first {video.frames[:1]} vs {first.frames[:1]})")
        if sorted(video.object_ids.tolist()) != ids.tolist():
            raise DataError(path, f"object ids {sorted(video.object_ids.tolist())} differ from "
                                  f"{paths[0]} ({ids.tolist()})")
        if video.probs.shape[2:] != first.probs.shape[2:]:
            raise DataError(path, f"frame size {video.probs.shape[3]}x{video.probs.shape[2]} (WxH) differs "
                                  f"from {paths[0]} ({first.probs.shape[3]}x{first.probs.shape[2]})")
        aligned = video.probs[:, np.argsort(video.object_ids)]  # channels in ascending id order
        if sums is None:
            sums = aligned.astype(_stored_sum_dtype(len(paths)))
        else:
            sums += aligned
    return first.frames, ids, _labels_from_sums(sums, _stored_threshold(len(paths)), ids)


def soft_vote_folders(prob_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                      overwrite: bool = False, progress: bool = True) -> Path:
    """:func:`soft_vote_files` for every video (``<dir>/<video>.npz``) of the probability folders,
    written as a prediction folder ``out_dir/<video>/<frame>.png`` (appears only once complete). Shown in chapter 06.

    Every folder must hold the same videos. Returns ``out_dir`` resolved.
    """
    folders = [resolve(d) for d in prob_dirs]
    if not folders:
        raise ValueError("soft_vote_folders needs at least one probability folder")
    listings = []
    for folder in folders:
        if not folder.is_dir():
            raise DataError(folder, "probability folder not found")
        names = sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith("."))
        if not names:
            raise DataError(folder, f"no probability files here (expected <video>{SUFFIX})")
        if listings and names != listings[0]:
            raise DataError(folder, f"videos differ from {folders[0]}: "
                                    f"missing {sorted(set(listings[0]) - set(names))[:5] or 'none'}, "
                                    f"extra {sorted(set(names) - set(listings[0]))[:5] or 'none'}")
        listings.append(names)
    out_dir = resolve(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for video in progress_bar(listings[0], desc=f"soft vote {len(folders)} sources", show=progress):
            frames, _, labels = soft_vote_files([d / f"{video}{SUFFIX}" for d in folders])
            for frame, frame_labels in zip(frames, labels):
                write_mask(tmp / video / f"{frame}.png", frame_labels)
    return out_dir


#: how folders of passes are fused, by name: ``"hard"`` votes label folders, ``"soft"`` averages probability
#: folders; each ``(sources, out_dir, *, overwrite, progress) -> out_dir``
FOLDER_FUSIONS = {"hard": vote_folders, "soft": soft_vote_folders}


# ------------------------------------------------------------------------------------------- cost
def cost_report(scale_sets: Mapping[str, Sequence[float]] = SCALE_SETS,
                transform_sets: Mapping[str, Sequence[str]] = TRANSFORM_SETS, *,
                seconds_per_pass: Mapping[float, float] | None = None) -> list[dict]:
    """Model passes and seconds per frame for every (scale set, transform set) pair.

    Args:
        scale_sets: name -> scales. transform_sets: name -> transform names (checked).
        seconds_per_pass: measured seconds for one model pass on one frame at each scale (a flip or
            quarter turn keeps the pixel count, and SAM 2 resizes to a square anyway, so transforms
            cost the same as the identity). Without it, ``seconds_per_frame`` is None.

    Returns:
        One dict per pair, in the mappings' order: ``scales``, ``transforms`` (the set names),
        ``n_scales``, ``n_transforms``, ``model_passes`` (their product) and ``seconds_per_frame``.
        ``pandas.DataFrame(rows)`` makes it a table.
    """
    rows = []
    for transform_name, transforms in transform_sets.items():
        unknown = sorted(set(transforms) - set(TRANSFORM_NAMES))
        if unknown or not transforms:
            raise ValueError(f"transform set {transform_name!r}: unknown or no transforms {unknown} "
                             f"(choose from {', '.join(TRANSFORM_NAMES)})")
    for scale_name, scales in scale_sets.items():
        if not scales:
            raise ValueError(f"scale set {scale_name!r} is empty")
        seconds = None
        if seconds_per_pass is not None:
            missing = [s for s in scales if s not in seconds_per_pass]
            if missing:
                raise ValueError(f"scale set {scale_name!r}: no timing for scale(s) {missing}")
            seconds = sum(seconds_per_pass[s] for s in scales)
        for transform_name, transforms in transform_sets.items():
            rows.append({
                "scales": scale_name,
                "transforms": transform_name,
                "n_scales": len(scales),
                "n_transforms": len(transforms),
                "model_passes": len(scales) * len(transforms),
                "seconds_per_frame": None if seconds is None else seconds * len(transforms),
            })
    return rows


# ------------------------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fvos fusion", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=from_here, metavar="DIR",
                        help="the passes to fuse: prediction folders DIR/<video>/<frame>.png (hard; the first "
                             "breaks ties), or probability folders DIR/<video>.npz (soft)")
    parser.add_argument("--fusion", choices=sorted(FOLDER_FUSIONS), default="hard",
                        help="hard: per-pixel plurality vote of label maps (the paper's); soft: mean of the "
                             "per-object probabilities (default hard)")
    add_folder_output_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``fvos fusion`` and ``fvos fusion``; paths from the current folder. Bad input is
    one error line naming the file, exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_folder_command(parser, args, lambda progress: FOLDER_FUSIONS[args.fusion](
        args.sources, args.out, overwrite=True, progress=progress))

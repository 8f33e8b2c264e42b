"""MOSE server submissions: :func:`check_submission` / :func:`write_submission` make a zip
(``Annotations/<video>/<frame>.png``), checked against the val folder (every frame, its size, the DAVIS
palette) before anything is written.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from PIL import Image

from fvos_utils.base import io, paths


def check_submission(pred_dir: str | os.PathLike, val_root: str | os.PathLike, *, split: str | None = "valid") -> list[str]:
    """Check predictions against the val folder before zipping; returns the video names.

    Every video of ``val_root``'s ``JPEGImages`` must have a folder in ``pred_dir`` with one PNG per
    frame, named like the frame, of the frame's size, a palette (``P``) image with the DAVIS palette;
    no other videos or frames. Hidden entries (names starting with ``.``: the temporaries a killed run
    leaves) are neither, and are ignored. The first problem raises a DataError naming the file.
    """
    pred_dir = paths.resolve(pred_dir)
    dataset = io.VOSDataset(paths.resolve(val_root), split)
    names = dataset.video_names()
    if not pred_dir.is_dir():
        raise io.DataError(pred_dir, "prediction folder not found")
    extra = sorted(name for name in io.video_folders(pred_dir) if name not in set(names))
    if extra:
        raise io.DataError(pred_dir / extra[0], f"video not in the val folder {dataset.image_dir} "
                                                f"({len(extra)} such folder(s))")
    palette = io.davis_palette().reshape(-1).tolist()
    for name in names:
        video = dataset.video(name)
        folder = pred_dir / name
        if not folder.is_dir():
            raise io.DataError(folder, "prediction folder missing for this val video")
        have = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        want = {f"{stem}.png" for stem in video.frame_names}
        if have != want:
            odd = sorted(have - want)
            if odd:
                raise io.DataError(folder / odd[0], "file does not match a frame of the val video "
                                                    f"(expected names like {sorted(want)[0]})")
            raise io.DataError(folder / sorted(want - have)[0], "prediction missing for this frame")
        for frame in video.frames:
            path = folder / f"{frame.stem}.png"
            expected = io.mask_size(frame)
            with Image.open(path) as img:
                size, mode = (img.size[1], img.size[0]), img.mode
                used = img.getpalette() or []
            if size != expected:
                raise io.DataError(path, f"size {size[1]}x{size[0]} (WxH) differs from the frame "
                                         f"{frame.name} {expected[1]}x{expected[0]}")
            if mode != "P":
                raise io.DataError(path, f"image mode {mode!r}; the server expects palette ('P') PNGs")
            if used[:len(palette)] != palette[:len(used)]:
                raise io.DataError(path, "palette differs from the DAVIS palette")
    return names


def write_submission(pred_dir: str | os.PathLike, val_root: str | os.PathLike, zip_path: str | os.PathLike, *,
                     split: str | None = "valid") -> Path:
    """Check (:func:`check_submission`), then write ``zip_path`` with ``Annotations/<video>/<frame>.png``
    (atomically: the zip appears complete or not at all). Returns the zip's path. Shown in chapter 03."""
    pred_dir = paths.resolve(pred_dir)
    names = check_submission(pred_dir, val_root, split=split)
    zip_path = paths.resolve(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            for png in io.frame_files(pred_dir / name):  # the checked frames; hidden temporaries left out
                archive.write(png, f"Annotations/{name}/{png.name}")
    return zip_path

"""Reference predictors that need no model, to put the model's scores in context.

The zero-motion baseline copies each video's first-frame annotation to every frame: it scores what
a tracker gets for free when nothing moves, and so how much of a dataset's difficulty is motion.
"""
from __future__ import annotations

import os
from pathlib import Path

from tqdm.auto import tqdm

from .io import VOSDataset, write_mask


def zero_motion(data_root: str | os.PathLike, out_dir: str | os.PathLike, *, split: str | None = "valid",
                videos: list[str] | None = None) -> Path:
    """Write the first-frame mask of every video as the prediction for all its frames.

    Output: ``out_dir/<video>/<frame>.png`` (DAVIS palette), ready for ``fvos_utils.evaluate``.
    Videos whose every frame is already written are skipped, so a killed run resumes.
    """
    dataset = VOSDataset(data_root, split, videos=videos)
    out_dir = Path(out_dir)
    for name in tqdm(dataset.video_names(), desc="zero-motion baseline", unit="video"):
        video = dataset.video(name)
        targets = [out_dir / name / f"{frame}.png" for frame in video.frame_names]
        if all(t.is_file() for t in targets):
            continue
        _, labels = dataset.first_annotation(video)
        for target in targets:
            write_mask(target, labels)
    return out_dir

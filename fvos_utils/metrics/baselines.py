"""Reference predictors that need no model, to put the model's scores in context.

The zero-motion baseline copies each video's first-frame annotation to every frame: it scores what
a tracker gets for free when nothing moves, and so how much of a dataset's difficulty is motion.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fvos_utils.base.io import VOSDataset, write_mask
from fvos_utils.base.progress import progress_bar
from fvos_utils.metrics.percent import percent


def zero_motion(data_root: str | os.PathLike, out_dir: str | os.PathLike, *, split: str | None = "valid",
                videos: list[str] | None = None) -> Path:
    """Write the first-frame mask of every video as the prediction for all its frames.

    Output: ``out_dir/<video>/<frame>.png`` (DAVIS palette), ready for ``fvos_utils.metrics.evaluate``.
    Videos whose every frame is already written are skipped, so a killed run resumes.
    """
    dataset = VOSDataset(data_root, split, videos=videos)
    out_dir = Path(out_dir)
    for name in progress_bar(dataset.video_names(), desc="zero-motion baseline", unit="video"):
        video = dataset.video(name)
        targets = [out_dir / name / f"{frame}.png" for frame in video.frame_names]
        if all(t.is_file() for t in targets):
            continue
        _, labels = dataset.first_annotation(video)
        for target in targets:
            write_mask(target, labels)
    return out_dir


def decay_curve(objects: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean J per scored frame over an evaluator result's ``objects`` (each with ``"video"`` and its
    per-frame ``"J-frames"``), and how many objects and videos reach each frame (shorter videos stop
    earlier). Returns ``(mean_j, objects, videos)``, each ``(T,)`` over frames 1..T. Shown in chapter 00."""
    curves = [(o["video"], np.asarray(o["J-frames"], dtype=np.float64)) for o in objects]
    length = max(len(c) for _, c in curves)
    mean_j = np.array([np.mean([c[t] for _, c in curves if t < len(c)]) for t in range(length)])
    count = np.array([sum(t < len(c) for _, c in curves) for t in range(length)])
    videos = np.array([len({v for v, c in curves if t < len(c)}) for t in range(length)])
    return mean_j, count, videos


def decay_figure(objects: list[dict], *, title: str = "zero-motion baseline: J decays as objects move"):
    """The mean J per frame (:func:`decay_curve`) on whole-frame ticks, and below it how many videos reach
    each frame, so that a late frame's mean over few videos is read as such. Shown in chapter 00."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    mean_j, _, videos = decay_curve(objects)
    frames = np.arange(1, len(mean_j) + 1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 3.4), sharex=True, height_ratios=(3, 1))
    top.plot(frames, 100 * mean_j, marker=".")
    top.set_ylabel("mean J over\nobjects (%)")
    top.set_ylim(0, 100)
    top.set_title(title)
    bottom.step(frames, videos, where="mid", color="0.4")
    bottom.set_ylabel("videos")
    bottom.set_ylim(0, videos.max() * 1.15)
    bottom.set_xlabel("frame (counted from the first scored one)")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def real_clip_caption(clip: str, video: str, n_frames: int, result: dict) -> str:
    """The caption of chapter 00's real-clip figure: which clip, from where, and its zero-motion score.

    Args:
        clip: the clip's folder in ``../shared/data/samples``; video: the video shown; n_frames: its frames.
        result: :func:`fvos_utils.metrics.evaluate.evaluate`'s result for the zero-motion baseline on the clip.
    """
    scores = result["global"]
    return (f"The real clip {clip} (video {video}, {n_frames} frames, from ../shared/data/samples): its ground "
            f"truth on the first and last frame, and the zero-motion baseline on the last (over the clip: J&F "
            f"{percent(scores['J&F'])}, J {percent(scores['J'])}, F {percent(scores['F'])}).")

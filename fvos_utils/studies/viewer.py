"""An interactive browser of segmentation results: one video, up to a few runs side by side.

    from fvos_utils.studies import viewer
    results = viewer.VideoResults("data/viewer-demo", "syn_valid_0000", split="valid",
                                  runs={"ground truth": gt_dir, "zero-motion": pred_dir})
    viewer.ResultViewer(results, kernel_size=2)          # the widget (last expression of a cell)
    viewer.contact_sheet(results)                        # the same, as a static figure
    viewer.run_predictions("demo")                       # what a run's chapters 05 and 06 predicted

The widget has a play button linked (in the browser, ``jslink``) to the frame slider, a checkbox per
object, an opacity slider, and a live gap-filling control (kernel size, 0 = off; kernel shape; which
run it applies to), so one sees what :func:`fvos_utils.method.postprocess.fill_gaps_labels` does to a run
next to another. Everything drawn comes from the pure function :func:`compose`; the widget only
reads the controls, calls it and sends the PNG. Frames and masks are read on first use and cached,
so scrubbing back and forth stays fast. Widgets do not render in a saved notebook:
:func:`contact_sheet` gives the static version for the record.

A run is a folder of ``<video>/<frame>.png`` label maps (DAVIS palette), as written by the kit's
predictors; ground truth in the MOSE layout is one too (``<split root>/Annotations``). By default the
viewer notebook shows the latest pipeline run's own predictions (:func:`run_predictions`: single scale,
fused, gap filled) against the ground truth of the dataset they were made on, and the small demo set of
:func:`demo_data` only where no run has predictions yet.
"""
from __future__ import annotations

import functools
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from fvos_utils.base import paths
from fvos_utils.base.io import VOID_LABEL, DataError, VOSDataset, davis_palette, read_frame, read_json, read_mask, \
    split_root, video_folders
from fvos_utils.base.progress import progress_bar
from fvos_utils.data import datasets
from fvos_utils.method.postprocess import PAPER_FILLING, SHAPES, GapFilling, fill_gaps_labels
from fvos_utils.run.chapter import METRICS_FILE
from fvos_utils.run.figures import frame_grid, overlay

#: Columns of white between two panels of :func:`compose` (source pixels, before zooming).
PANEL_GAP = 4
#: What :class:`ResultViewer` aims at for the displayed image's width when it picks the zoom itself.
TARGET_WIDTH = 960
#: The small synthetic set the viewer notebook uses by default (``data/viewer-demo``), frames per video.
DEMO_DATASET = "viewer-demo"
DEMO_FRAMES = 12
#: Where a run's chapters leave the label maps the viewer shows by default (under ``outputs/<run>/``).
FUSION_CHAPTER, MORPHOLOGY_CHAPTER = "06_multiscale_fusion", "05_morphology_ablation"
SINGLE_SCALE_DIRS = ((FUSION_CHAPTER, Path("passes") / "scale1-identity"), (MORPHOLOGY_CHAPTER, Path("single")))
FUSED_DIR = Path(FUSION_CHAPTER) / "fused"
FILLED_DIR = Path(MORPHOLOGY_CHAPTER) / "filled"


# ------------------------------------------------------------------------------------------ drawing
def compose(frame: np.ndarray, panels: Sequence[np.ndarray | None], *, alpha: float = 0.5,
            objects: Sequence[int] | None = None, kernel_size: int = 0, shape: str = "square",
            method: str = "paper", fill: Sequence[int] | None = None, contour: bool = True,
            gap: int = PANEL_GAP, zoom: int = 1) -> np.ndarray:
    """The viewer's image: ``frame`` with each label map of ``panels`` drawn over it, side by side.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        panels: one ``(H, W)`` integer label map per panel (0 background, 255 void), or None for a
            panel without a mask (it shows the bare frame). No panels: the bare frame alone.
        alpha: opacity of the object colours, in [0, 1] (see :func:`fvos_utils.run.figures.overlay`).
        objects: ids to draw (default: every id present); an empty sequence draws none.
        kernel_size, shape, method: gap filling (:func:`fvos_utils.method.postprocess.fill_gaps_labels`)
            applied before drawing; ``kernel_size`` <= 1 leaves the masks as they are.
        fill: indices of the panels to gap-fill (default: every panel).
        contour: outline each object at full opacity.
        gap: white columns between panels (source pixels).
        zoom: integer upscaling factor (nearest neighbour, so labels stay crisp).

    Returns:
        ``(H * zoom, (n W + (n - 1) gap) * zoom, 3) uint8``, n = max(1, len(panels)).
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise ValueError(f"zoom must be a positive integer, got {zoom!r}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    panels = list(panels) or [None]
    filled = range(len(panels)) if fill is None else set(fill)
    if any(not 0 <= i < len(panels) for i in filled):
        raise ValueError(f"fill names panels {sorted(filled)}, but there are {len(panels)}")
    height, width = frame.shape[:2]
    out = np.full((height, len(panels) * width + (len(panels) - 1) * gap, 3), 255, np.uint8)
    for i, labels in enumerate(panels):
        cols = slice(i * (width + gap), i * (width + gap) + width)
        if labels is None:
            out[:, cols] = frame
            continue
        if i in filled:
            labels = fill_gaps_labels(labels, kernel_size, shape=shape, method=method)
        out[:, cols] = overlay(frame, labels, alpha=alpha, objects=objects, contour=contour)
    if zoom > 1:
        out = np.repeat(np.repeat(out, zoom, axis=0), zoom, axis=1)
    return out


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3) uint8`` RGB image (fast compression: the widget sends many)."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return data.tobytes()


# ------------------------------------------------------------------------------------------ loading
def ground_truth_dir(data_root: str | os.PathLike, split: str | None = "valid") -> Path:
    """Where a split's full ground truth lies, as a run folder (``<video>/<frame>.png``).

    ``<root>/<split>_gt/Annotations`` when present (the kit's synthetic sets keep the full validation
    ground truth there, as MOSE's ``valid`` split holds first-frame masks only), else the split's
    own ``Annotations`` folder.
    """
    root = paths.resolve(data_root)
    held_out = root / f"{split}_gt" / "Annotations"
    return held_out if split and held_out.is_dir() else split_root(root, split) / "Annotations"


class VideoResults:
    """One video's frames and the label maps of several runs, read on first use and cached.

    Args:
        data_root: the dataset (relative paths: from the kit's folder), see :class:`fvos_utils.base.io.VOSDataset`.
        video: the video's name.
        split: the split folder, when ``data_root`` holds several.
        runs: ``{name: folder}``, each folder holding ``<video>/<frame>.png``; shown in this order.
        object_ids: the ids the viewer offers (default: every id in the runs' masks of the video; finding
            them reads each mask once, into the cache, as objects may appear after the first frame).
        cache_size: frames (and, per run, masks) kept in memory.
    """

    def __init__(self, data_root: str | os.PathLike, video: str, *, split: str | None = "valid",
                 runs: Mapping[str, str | os.PathLike] | None = None, object_ids: Sequence[int] | None = None,
                 cache_size: int = 256):
        dataset = VOSDataset(paths.resolve(data_root), split)
        self.video = dataset.video(video)
        self.name = video
        self.frame_names = self.video.frame_names
        self.run_dirs = {}
        for run, folder in (runs or {}).items():
            run_dir = paths.resolve(folder) / video
            if not run_dir.is_dir():
                raise DataError(run_dir, f"run {run!r} has no masks for video {video!r} (no such folder)")
            self.run_dirs[run] = run_dir
        self.frame = functools.lru_cache(maxsize=cache_size)(self._read_frame)
        self.labels = functools.lru_cache(maxsize=cache_size * max(1, len(self.run_dirs)))(self._read_labels)
        self.object_ids = tuple(int(i) for i in object_ids) if object_ids is not None else self._present_ids()

    @property
    def runs(self) -> list[str]:
        return list(self.run_dirs)

    def __len__(self) -> int:
        return len(self.frame_names)

    def _read_frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as ``(H, W, 3) uint8`` RGB (read-only: it is shared through the cache)."""
        frame = read_frame(self.video.frames[t])
        frame.setflags(write=False)
        return frame

    def _read_labels(self, run: str, t: int) -> np.ndarray | None:
        """Run ``run``'s ``(H, W) uint8`` labels for frame ``t``; None where it has no mask for that frame."""
        path = self.run_dirs[run] / f"{self.frame_names[t]}.png"
        if not path.is_file():
            return None
        labels = read_mask(path)
        if labels.shape != self.frame(t).shape[:2]:
            raise DataError(path, f"mask size {labels.shape[1]}x{labels.shape[0]} (WxH) differs from its frame "
                                  f"{self.video.frames[t].name} {self.frame(t).shape[1]}x{self.frame(t).shape[0]}")
        labels.setflags(write=False)
        return labels

    def _present_ids(self) -> tuple[int, ...]:
        present = np.zeros(256, bool)  # masks are uint8
        jobs = [(run, t) for run in self.run_dirs for t in range(len(self))]
        for run, t in progress_bar(jobs, desc=f"{self.name}: object ids", unit="mask", leave=False):
            labels = self.labels(run, t)
            if labels is not None:
                present[np.bincount(labels.ravel(), minlength=256) > 0] = True
        present[[0, VOID_LABEL]] = False
        return tuple(np.flatnonzero(present).tolist())

    def panels(self, t: int) -> list[np.ndarray | None]:
        """Every run's labels for frame ``t``, in run order (None where a run has no mask)."""
        return [self.labels(run, t) for run in self.run_dirs]

    def frame_indices(self, count: int) -> list[int]:
        """``count`` frame indices spread evenly over the video, first and last included."""
        if count < 1:
            raise ValueError(f"need at least one frame, got {count}")
        return sorted(set(np.linspace(0, len(self) - 1, min(count, len(self))).round().astype(int).tolist()))


# ------------------------------------------------------------------------------------------- widget
def _swatch(obj: int) -> str:
    r, g, b = davis_palette()[obj]
    return f'<span style="color: rgb({r}, {g}, {b})">&#9632;</span> {obj}'


class ResultViewer:
    """The ipywidgets browser of a :class:`VideoResults` (display it, or its ``widget``).

    Controls (attributes, each an ipywidget): ``play`` and ``frame`` (linked in the browser by ``play_link``),
    ``object_boxes`` (one checkbox per object id), ``opacity``, ``kernel`` (gap-filling kernel size,
    0 = off), ``shape`` and ``fill_target`` (which run is gap-filled); the view is ``image`` (PNG of
    :meth:`render`) and ``caption``. Changing any control redraws.

    Args:
        results: what to show.
        alpha, kernel_size, shape, method: initial opacity and gap filling (see :func:`compose`).
        fill: index of the run to gap-fill, or None for every run (default: the last run).
        zoom: upscaling of the image (default: the largest integer keeping it within ``TARGET_WIDTH``).
        interval_ms: the play button's time per frame.
        max_kernel: the kernel slider's upper end.
    """

    def __init__(self, results: VideoResults, *, alpha: float = 0.5, kernel_size: int = 0,
                 shape: str = "square", method: str = "paper", fill: int | None = -1, zoom: int | None = None,
                 interval_ms: int = 200, max_kernel: int = 15):
        import ipywidgets as widgets

        self.results = results
        self.method = method
        n_runs = len(results.runs)
        width = max(1, n_runs) * (results.frame(0).shape[1] + PANEL_GAP) - PANEL_GAP
        self.zoom = zoom if zoom is not None else max(1, TARGET_WIDTH // width)
        last = len(results) - 1
        self.play = widgets.Play(value=0, min=0, max=last, step=1, interval=interval_ms, description="play")
        self.frame = widgets.IntSlider(value=0, min=0, max=last, description="frame", continuous_update=True)
        self.play.add_class("fvos-play")
        self.frame.add_class("fvos-frame-slider")
        # playback runs in the browser; the kernel hears of each frame through the slider
        self.play_link = widgets.jslink((self.play, "value"), (self.frame, "value"))
        self.object_boxes = {obj: widgets.Checkbox(value=True, description=_swatch(obj), indent=False,
                                                   description_allow_html=True,
                                                   layout=widgets.Layout(width="auto"))
                             for obj in results.object_ids}
        self.opacity = widgets.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="opacity")
        self.kernel = widgets.IntSlider(value=kernel_size, min=0, max=max(max_kernel, kernel_size),
                                        description="gap kernel")
        self.shape = widgets.Dropdown(options=SHAPES, value=shape, description="shape")
        # values are tuples of run indices (a Dropdown reads the value None as "nothing selected")
        every_run = tuple(range(n_runs))
        targets = [(name, (i,)) for i, name in enumerate(results.runs)] + [("every run", every_run)] * (n_runs > 1)
        self.fill_target = widgets.Dropdown(options=targets, description="fill in", value=(
            every_run if fill is None else (every_run[fill],)) if n_runs else None)
        # at its own size (a flex box would stretch it, blurring the labels), shrunk only where space lacks
        self.image = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        self.image.add_class("fvos-viewer-image")
        self.caption = widgets.HTML()
        self.caption.add_class("fvos-viewer-caption")
        for control in (self.frame, self.opacity, self.kernel, self.shape, self.fill_target,
                        *self.object_boxes.values()):
            control.observe(self._redraw, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.play, self.frame]),
            widgets.HBox([widgets.Label("objects"), *self.object_boxes.values()]),
            widgets.HBox([self.opacity, self.kernel]),
            widgets.HBox([self.shape, self.fill_target]),
            self.image,
            self.caption,
        ])
        self._redraw()

    def selected_objects(self) -> tuple[int, ...]:
        return tuple(obj for obj, box in self.object_boxes.items() if box.value)

    def render(self) -> np.ndarray:
        """The image for the current control values: :func:`compose` of the current frame, ``(H', W', 3) uint8``."""
        t = self.frame.value
        return compose(self.results.frame(t), self.results.panels(t), alpha=self.opacity.value,
                       objects=self.selected_objects(), kernel_size=self.kernel.value, shape=self.shape.value,
                       method=self.method, fill=self.fill_target.value or (), zoom=self.zoom)

    def _describe(self) -> str:
        t = self.frame.value
        parts = []
        filled = self.fill_target.value or ()
        for i, (run, labels) in enumerate(zip(self.results.runs, self.results.panels(t))):
            text = html.escape(run)
            if labels is None:
                text += " (no mask for this frame)"
            elif i in filled and self.kernel.value > 1:
                text += f" + gap filling ({self.shape.value} {self.kernel.value}x{self.kernel.value})"
            parts.append(text)
        where = f"frame {html.escape(self.results.frame_names[t])} ({t + 1}/{len(self.results)})"
        return f"<b>{html.escape(self.results.name)}</b>, {where}: " + " | ".join(parts or ["no runs"])

    def _redraw(self, change=None) -> None:
        self.image.value = encode_png(self.render())
        self.caption.value = self._describe()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def show(data_root: str | os.PathLike, video: str, *, split: str | None = "valid",
         runs: Mapping[str, str | os.PathLike] | None = None, **options) -> ResultViewer:
    """Build a :class:`ResultViewer` for one video, display it, and return it (``options``: its keywords)."""
    from IPython.display import display

    result_viewer = ResultViewer(VideoResults(data_root, video, split=split, runs=runs), **options)
    display(result_viewer.widget)
    return result_viewer


# ------------------------------------------------------------------------------------ a run's results
@dataclass(frozen=True)
class RunPredictions:
    """A pipeline run's own predictions, as the viewer shows them by default (:func:`run_predictions`)."""

    run: str
    data_root: Path            # the dataset the run predicted on; its ground truth: ground_truth_dir(data_root)
    folders: dict[str, Path]   # label -> folder of <video>/<frame>.png, in the order shown
    videos: list[str]          # the videos every folder holds, in name order


def _finished_metrics(run: str, chapter: str) -> dict | None:
    """The ``metrics.json`` of ``run``'s ``chapter``, or None where the chapter has not finished."""
    path = paths.run_dir(run) / chapter / METRICS_FILE
    return read_json(path) if path.is_file() else None


def run_prediction_folders(run: str) -> dict[str, Path]:
    """The label maps the finished chapters 05 and 06 of ``run`` left, by the viewer's label (those present):

    * ``single scale``: chapter 06's scale-1 pass without transform, else chapter 05's single run;
    * ``fused <variant>``: chapter 06's best fused variant (its ``metrics.json``: ``best_fused``);
    * ``filled <setting>``: chapter 05's pick of the paper's gap filling (``best_paper``), or
      :data:`fvos_utils.method.postprocess.PAPER_FILLING` where no filling scored best (a panel the same as the unfilled one says nothing).
    """
    run_dir = paths.run_dir(run)
    metrics = {chapter: _finished_metrics(run, chapter) for chapter in (FUSION_CHAPTER, MORPHOLOGY_CHAPTER)}
    found = {}
    single = [run_dir / chapter / folder for chapter, folder in SINGLE_SCALE_DIRS
              if metrics[chapter] and (run_dir / chapter / folder).is_dir()]
    if single:
        found["single scale"] = single[0]
    if metrics[FUSION_CHAPTER]:
        variant = metrics[FUSION_CHAPTER]["best_fused"]["variant"]
        found[f"fused {variant}"] = run_dir / FUSED_DIR / variant
    if metrics[MORPHOLOGY_CHAPTER]:
        pick = metrics[MORPHOLOGY_CHAPTER]["best_paper"]
        picked = GapFilling(pick["method"], pick["shape"], pick["kernel"])
        setting = (picked if picked.kernel > 1 else PAPER_FILLING).name
        found[f"filled {setting}"] = run_dir / FILLED_DIR / setting
    return {label: folder for label, folder in found.items() if folder.is_dir()}


def latest_run() -> str | None:
    """The run (``outputs/<run>/``) with the newest predictions of chapter 05 or 06; None when no run has any."""
    newest = {}
    outputs = paths.outputs_dir()
    for run_dir in sorted(outputs.iterdir()) if outputs.is_dir() else []:
        if run_dir.is_dir() and not run_dir.name.startswith("."):
            folders = run_prediction_folders(run_dir.name)
            if folders:
                newest[run_dir.name] = max(folder.stat().st_mtime for folder in folders.values())
    return max(newest, key=newest.get) if newest else None


def _predicted_on(run: str) -> Path:
    """The dataset folder chapters 06 or 05 of ``run`` predicted on: their ``data_root`` parameter (as their
    ``metrics.json`` records it), or the hold-out view the chapters made of a real dataset."""
    recorded = _finished_metrics(run, FUSION_CHAPTER) or _finished_metrics(run, MORPHOLOGY_CHAPTER)
    if recorded is None:
        raise DataError(paths.run_dir(run), f"no metrics.json of chapter {FUSION_CHAPTER} or "
                                                  f"{MORPHOLOGY_CHAPTER}: which dataset it predicted on is unknown")
    parameters = recorded["parameters"]
    data_root = parameters["data_root"]
    # a synthetic set is its own folder (not regenerated here); a real one is read through its hold-out view
    return (paths.resolve(data_root) if datasets.is_synthetic(data_root)
            else datasets.prepare(data_root, seed=parameters["seed"]))


def run_predictions(run: str = "") -> RunPredictions | None:
    """What the viewer shows of ``run`` by default: its own predictions (:func:`run_prediction_folders`)
    and the dataset they were made on. ``run`` empty: the :func:`latest_run`, or None when no run has
    predictions. A named run without any is a DataError."""
    if not run:
        run = latest_run()
        if run is None:
            return None
    folders = run_prediction_folders(run)
    if not folders:
        raise DataError(paths.run_dir(run), f"no predictions of a finished chapter {MORPHOLOGY_CHAPTER} or "
                                                  f"{FUSION_CHAPTER} (run them first)")
    videos = sorted(set.intersection(*(set(video_folders(folder)) for folder in folders.values())))
    if not videos:
        raise DataError(paths.run_dir(run), f"no video is in every one of {', '.join(map(str, folders.values()))}")
    return RunPredictions(run, _predicted_on(run), folders, videos)


# --------------------------------------------------------------------------------------- static copy
def contact_sheet(results: VideoResults, *, n_frames: int = 6, frames: Sequence[int] | None = None,
                  alpha: float = 0.5, objects: Sequence[int] | None = None, kernel_size: int = 0,
                  shape: str = "square", method: str = "paper", fill: int | None = -1, panel_width: float = 2.6):
    """The viewer as a static figure: one row per frame, each the viewer's image (:func:`compose`).

    Args:
        frames: frame indices to show (default: ``n_frames`` spread over the video).
        fill: index of the run to gap-fill with ``kernel_size``, or None for every run.
        alpha, objects, kernel_size, shape, method: as for :func:`compose`.
        panel_width: width of one run's panel (inches).
    Returns:
        the matplotlib figure (save it with :func:`fvos_utils.run.figures.save_figure`); its title names
        the runs from left to right.
    """
    frames = results.frame_indices(n_frames) if frames is None else list(frames)
    runs = results.runs
    filled = (range(len(runs)) if fill is None else [range(len(runs))[fill]]) if runs else []
    rows = [[compose(results.frame(t), results.panels(t), alpha=alpha, objects=objects, kernel_size=kernel_size,
                     shape=shape, method=method, fill=filled)] for t in frames]
    names = [run + (f" + gap filling ({shape} {kernel_size}x{kernel_size})" if i in filled and kernel_size > 1
                    else "") for i, run in enumerate(runs)]
    return frame_grid(rows, row_labels=[results.frame_names[t] for t in frames],
                      col_labels=[" | ".join(names) or "frames"], cell_width=panel_width * max(1, len(runs)))


# -------------------------------------------------------------------------------------- demo data
def demo_data(*, seed: int = 0) -> Path:
    """A small synthetic dataset for trying the viewer (``data/viewer-demo``), generated if missing.

    Three validation videos of ``DEMO_FRAMES`` frames, 192x108, 2-3 objects each with a touching pair (gaps of
    0-2 px for the gap-filling slider to close); generated on CPU in about a second.
    """
    from fvos_utils.data.synthetic import SyntheticConfig, generate

    root = paths.data_dir() / DEMO_DATASET
    if not root.is_dir():
        config = SyntheticConfig(videos_train=1, videos_valid=3, frames=(DEMO_FRAMES, DEMO_FRAMES), size=(192, 108),
                                 objects=(2, 3), p_touching=1.0)
        generate(root, seed=seed, config=config, progress=False)
    return root

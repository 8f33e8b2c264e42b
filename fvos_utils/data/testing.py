"""Generated label sequences for tests and benchmarks: moving, touching objects and noisy predictions.

Everything here is deterministic for a given seed, so a test or a benchmark can regenerate the same
ground truth and predictions anywhere. Label maps are ``(H, W) uint8`` with ids ``1..n_objects``
(0 is background); files are written as DAVIS-palette PNGs through :func:`fvos_utils.base.io.write_mask`.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from fvos_utils.base import paths
from fvos_utils.base.io import write_frame, write_json, write_mask


def moving_objects(height: int, width: int, n_frames: int, n_objects: int, *, seed: int = 0,
                   vanish: bool = True) -> Iterator[np.ndarray]:
    """Yield ``n_frames`` label maps ``(H, W) uint8`` of ``n_objects`` drifting, overlapping ellipses.

    Each object starts beside the previous one and overlaps it (higher ids are drawn on top), so
    neighbouring objects touch along a shared boundary. Objects bounce off the frame edges. With
    ``vanish=True`` (and at least 6 frames) the highest id leaves the scene for the frames
    ``[n_frames // 3, n_frames // 2)`` and comes back, exercising disappearance and reappearance.
    """
    rng = np.random.default_rng(seed)
    short = min(height, width)
    axes = rng.uniform(0.06, 0.16, size=(n_objects, 2)) * short
    angles = rng.uniform(0, 180, size=n_objects)
    velocity = rng.uniform(-0.012, 0.012, size=(n_objects, 2)) * short
    centres = np.empty((n_objects, 2))
    centres[0] = rng.uniform(0.3, 0.7, size=2) * (height, width)
    for k in range(1, n_objects):
        step = rng.normal(size=2)
        centres[k] = centres[k - 1] + step / np.linalg.norm(step) * axes[k - 1].min()
    low, high = np.zeros(2), np.array([height - 1, width - 1], float)
    hidden = range(n_frames // 3, n_frames // 2) if vanish and n_frames >= 6 else range(0)
    for t in range(n_frames):
        labels = np.zeros((height, width), np.uint8)
        for k in range(n_objects):
            if k == n_objects - 1 and t in hidden:
                continue
            (cy, cx), (ay, ax) = centres[k], axes[k]
            cv2.ellipse(labels, (int(round(cx)), int(round(cy))), (max(1, int(ax)), max(1, int(ay))),
                        float(angles[k]), 0, 360, k + 1, thickness=-1)
        yield labels
        centres += velocity
        bounced = (centres < low) | (centres > high)
        velocity[bounced] *= -1
        centres = np.clip(centres, low, high)


def noisy_prediction(labels: np.ndarray, rng: np.random.Generator, *, n_objects: int) -> np.ndarray:
    """A plausible tracker output for ``labels (H, W) uint8``: ``(H, W) uint8`` with ids in 0..n_objects.

    Per object: a small random shift, a random erosion or dilation, and now and then a missed
    object; plus a few spurious blobs carrying random ids. Values stay within ``0..n_objects``.
    """
    height, width = labels.shape
    reach = max(1, min(height, width) // 120)
    out = np.zeros_like(labels)
    kernel = np.ones((3, 3), np.uint8)
    for k in range(1, n_objects + 1):
        mask = (labels == k).view(np.uint8)
        if not mask.any() or rng.random() < 0.05:
            continue
        dy, dx = rng.integers(-2 * reach, 2 * reach + 1, size=2)
        shifted = np.zeros_like(mask)
        ys, xs = slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0))
        yd, xd = slice(max(-dy, 0), height + min(-dy, 0)), slice(max(-dx, 0), width + min(-dx, 0))
        shifted[ys, xs] = mask[yd, xd]
        grow = int(rng.integers(-reach, reach + 1))
        if grow > 0:
            shifted = cv2.dilate(shifted, kernel, iterations=grow)
        elif grow < 0:
            shifted = cv2.erode(shifted, kernel, iterations=-grow)
        out[shifted.astype(bool)] = k
    for _ in range(int(rng.integers(0, 4))):
        bh, bw = rng.integers(2, 4 * reach + 3, size=2)
        y, x = rng.integers(0, height - bh), rng.integers(0, width - bw)
        out[y:y + bh, x:x + bw] = rng.integers(0, n_objects + 1)
    return out


def write_video(gt_root: str | os.PathLike, pred_root: str | os.PathLike, video: str, *, height: int,
                width: int, n_frames: int, n_objects: int, seed: int = 0, vanish: bool = True) -> None:
    """Write one generated video: ``gt_root/<video>/<t:05d>.png`` and its noisy ``pred_root`` twin."""
    rng = np.random.default_rng(seed + 1_000_003)
    for t, labels in enumerate(moving_objects(height, width, n_frames, n_objects, seed=seed, vanish=vanish)):
        write_mask(Path(gt_root) / video / f"{t:05d}.png", labels)
        write_mask(Path(pred_root) / video / f"{t:05d}.png", noisy_prediction(labels, rng, n_objects=n_objects))


def write_dataset(root: str | os.PathLike, *, n_videos: int, height: int, width: int, n_frames: int = 30,
                  objects: tuple[int, int] = (2, 5), seed: int = 0) -> tuple[Path, Path]:
    """Write ``n_videos`` generated videos under ``root/gt`` and ``root/pred``; returns the two folders.

    Video ``i`` has between ``objects[0]`` and ``objects[1]`` objects (inclusive); every other video
    has an object that vanishes and comes back. ``root/meta.json`` tags each video
    (``{"videos": {name: {"tags": [...]}}}``): ``crowded`` (4 or more objects) and ``disappearance``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    meta = {}
    for i in range(n_videos):
        name = f"video{i:03d}"
        n_objects = int(rng.integers(objects[0], objects[1] + 1))
        vanish = i % 2 == 0
        write_video(root / "gt", root / "pred", name, height=height, width=width, n_frames=n_frames,
                    n_objects=n_objects, seed=seed * 1000 + i, vanish=vanish)
        tags = (["crowded"] if n_objects >= 4 else []) + (["disappearance"] if vanish else [])
        meta[name] = {"tags": tags}
    write_json(root / "meta.json", {"videos": meta})
    return root / "gt", root / "pred"


def write_mose_layout(root: str | os.PathLike, *, n_train: int = 5, n_valid: int = 1, n_frames: int = 4,
                      height: int = 48, width: int = 64) -> Path:
    """A MOSE-layout folder of two-object videos: ``train/`` with masks for every frame, ``valid/`` with
    first-frame masks only (its ground truth hidden, as on the server). Frames paint each object in its
    own colour over dark noise, so a model can follow them. Returns ``root``."""
    root = Path(root)
    for split, count in (("train", n_train), ("valid", n_valid)):
        for v in range(count):
            name = f"{split}{v:02d}"
            seed = v + (0 if split == "train" else 1000)
            rng = np.random.default_rng(seed)
            for t, labels in enumerate(moving_objects(height, width, n_frames, 2, seed=seed, vanish=False)):
                frame = rng.integers(0, 40, size=(height, width, 3)).astype(np.uint8)
                frame[labels == 1], frame[labels == 2] = (220, 60, 60), (60, 200, 60)
                write_frame(root / split / "JPEGImages" / name / f"{t:05d}.jpg", frame)
                if split == "train" or t == 0:
                    write_mask(root / split / "Annotations" / name / f"{t:05d}.png", labels)
    return root


# ------------------------------------------------------------------------------ a foreign generator
#: the scenarios of :func:`write_foreign_clips`, one per video in turn
FOREIGN_SCENARIOS = ("crossing", "exit-reenter", "touching", "drift")


#: the texture families of :func:`write_foreign_clips`, in the order :func:`_foreign_texture` draws them
FOREIGN_TEXTURES = ("noise", "cells", "plaid")


def _foreign_texture(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """``(H, W, 3) float32`` 0-255 and its family (:data:`FOREIGN_TEXTURES`): band-limited noise through a
    3-colour ramp, Voronoi cells or a plaid (none of them the kit's generator's patterns)."""
    kind = int(rng.integers(3))
    if kind == 0:
        fy, fx = np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")
        band = np.exp(-(np.hypot(fy, fx) / rng.uniform(0.015, 0.06)) ** 2)
        field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(height, width))) * band))
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-9)
        ramp = rng.uniform(0, 255, size=(3, 3))
        t = field[..., None]
        image = np.where(t < 0.5, ramp[0] + (ramp[1] - ramp[0]) * t * 2, ramp[1] + (ramp[2] - ramp[1]) * (t - 0.5) * 2)
    elif kind == 1:
        seeds = rng.uniform(0, 1, size=(int(rng.integers(6, 24)), 2)) * (height, width)
        yy, xx = np.mgrid[0:height, 0:width]
        nearest = ((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2).argmin(axis=-1)
        image = rng.uniform(0, 255, size=(len(seeds), 3))[nearest]
    else:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        a, b = rng.uniform(0, np.pi, size=2)
        period = rng.uniform(6, 18, size=2)
        u = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period[0]) > 0
        v = np.sin(2 * np.pi * (xx * np.cos(b) + yy * np.sin(b)) / period[1]) > 0
        colours = rng.uniform(0, 255, size=(4, 3))
        image = colours[u.astype(int) * 2 + v.astype(int)]
    return image.astype(np.float32), FOREIGN_TEXTURES[kind]


def _superellipse(rng: np.random.Generator, radius: float) -> np.ndarray:
    """``(64, 2) float64`` outline points (x, y) about the origin of a random superellipse ``radius`` wide."""
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    power, ratio = rng.uniform(1.5, 4.0), rng.uniform(0.55, 1.0)
    c, s = np.cos(theta), np.sin(theta)
    r = (np.abs(c) ** power + np.abs(s / ratio) ** power) ** (-1 / power)
    return np.stack([r * c, r * s], axis=1) * radius / r.max()


def _foreign_video(rng: np.random.Generator, scenario: str, height: int, width: int, n_frames: int):
    """``(frames (T, H, W, 3) uint8, labels (T, H, W) uint8, the background's texture family)`` of one
    :func:`write_foreign_clips` video."""
    short = min(height, width)
    n_objects = 2 if scenario in ("crossing", "touching") else int(rng.integers(2, 4))
    pan = rng.uniform(-1.5, 1.5, size=2)  # px per frame: the camera drifts over a larger background
    margin = int(np.ceil(np.abs(pan).max() * n_frames)) + 2
    background, background_family = _foreign_texture(rng, height + 2 * margin, width + 2 * margin)
    objects = []
    for k in range(n_objects):
        radius = rng.uniform(0.16, 0.28) * short * (0.7 if scenario == "touching" else 1.0)
        outline = _superellipse(rng, radius)
        side = int(np.ceil(2 * radius)) + 4
        texture = _foreign_texture(rng, side, side)[0] * 0.6 + rng.uniform(0, 255, size=3) * 0.4
        t = np.arange(n_frames)
        if scenario == "crossing":  # the pair swaps sides, the second passing in front of the first
            x = width * (0.25 + 0.5 * t / (n_frames - 1)) if k == 0 else width * (0.75 - 0.5 * t / (n_frames - 1))
            y = np.full(n_frames, height * (0.45 + 0.1 * k))
        elif scenario == "exit-reenter" and k == 0:  # out through the left edge and back
            x = width * 0.5 - (width * 0.5 + 1.2 * radius) * np.sin(np.pi * t / (n_frames - 1))
            y = np.full(n_frames, height * 0.3)
        else:
            x = width * rng.uniform(0.3, 0.7) + rng.uniform(0.05, 0.15) * width * np.sin(rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6))
            y = height * rng.uniform(0.3, 0.7) + rng.uniform(0.05, 0.15) * height * np.cos(rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6))
        spin = 0.0 if scenario == "touching" else rng.uniform(-2.0, 2.0)
        objects.append({"outline": outline, "texture": texture, "side": side, "x": x, "y": y, "spin": spin})
    if scenario == "touching":  # the second object follows the first at a 1-px gap, both on whole pixels
        first, second = objects
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction)
        centre = (width // 2, height // 2)
        a = _draw_mask(first["outline"], 0.0, centre, height, width)
        for distance in range(1, short):
            step = np.round(distance * direction)
            b = _draw_mask(second["outline"], 0.0, (centre[0] + step[0], centre[1] + step[1]), height, width)
            if not (cv2.dilate(a, np.ones((3, 3), np.uint8)) & b).any():
                break
        first["x"], first["y"] = np.round(first["x"]), np.round(first["y"])
        second["x"], second["y"] = first["x"] + step[0], first["y"] + step[1]
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    labels = np.zeros((n_frames, height, width), np.uint8)
    for t in range(n_frames):
        oy, ox = (margin + pan * t).round().astype(int)
        image = background[oy:oy + height, ox:ox + width].copy()
        for k, obj in enumerate(objects):  # later objects in front
            angle = obj["spin"] * t
            mask = _draw_mask(obj["outline"], angle, (obj["x"][t], obj["y"][t]), height, width).astype(bool)
            rotation = cv2.getRotationMatrix2D((obj["side"] / 2, obj["side"] / 2), -angle, 1.0)
            rotation[:, 2] += (obj["x"][t] - obj["side"] / 2, obj["y"][t] - obj["side"] / 2)
            painted = cv2.warpAffine(obj["texture"], rotation, (width, height), borderMode=cv2.BORDER_REFLECT)
            image[mask] = painted[mask]
            labels[t][mask] = k + 1
        noisy = image + rng.normal(0, 3.0, size=image.shape)
        frames[t] = np.clip(noisy, 0, 255).astype(np.uint8)
    return frames, labels, background_family


def _draw_mask(outline: np.ndarray, angle: float, centre, height: int, width: int) -> np.ndarray:
    """``(H, W) uint8`` 0/1: ``outline`` turned by ``angle`` degrees, filled, at ``centre`` (x, y)."""
    a = np.deg2rad(angle)
    turned = outline @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round((turned + centre) * 4).astype(np.int32)], 1, shift=2)
    return mask


def write_foreign_clips(root: str | os.PathLike, *, n_videos: int = 8, n_frames: int = 20, height: int = 240,
                        width: int = 320, seed: int = 0) -> Path:
    """Clips from a generator of this module's own design, unlike the kit's :mod:`fvos_utils.data.synthetic`:
    large superellipse objects painted with band-limited noise, Voronoi cells or plaids, on a background of
    the same families under a drifting camera, moving on smooth curves; the videos take
    :data:`FOREIGN_SCENARIOS` in turn (a crossing pair, an exit and re-entry, a pair at a 1-px gap, free
    drift). Written in the held-out layout: ``valid/JPEGImages``, ``valid/Annotations`` (first frame) and
    ``valid_gt/Annotations`` (every frame), with ``meta.json`` tagging each video with its scenario and its
    background's texture family (``"plaid background"``), as the kit's sets tag hard cases. Returns ``root``."""
    root = Path(root)
    meta = {}
    for i in range(n_videos):
        scenario = FOREIGN_SCENARIOS[i % len(FOREIGN_SCENARIOS)]
        name = f"foreign{i:02d}_{scenario}"
        frames, labels, background = _foreign_video(np.random.default_rng([seed, i]), scenario, height, width,
                                                     n_frames)
        for t in range(n_frames):
            write_frame(root / "valid" / "JPEGImages" / name / f"{t:05d}.jpg", frames[t], quality=90)
            write_mask(root / "valid_gt" / "Annotations" / name / f"{t:05d}.png", labels[t])
        write_mask(root / "valid" / "Annotations" / name / "00000.png", labels[0])
        meta[name] = {"split": "valid", "tags": [scenario, f"{background} background"]}
    write_json(root / "meta.json", {"videos": meta})
    return root


def evaluator_result(objects: dict) -> dict:
    """An evaluator-shaped result (:func:`fvos_utils.metrics.evaluate.evaluate`) from ``{(video, object): (J, F)}``:
    per-object rows and their means, no tags."""
    rows = [{"video": v, "object": o, "J": j, "F": f, "J&F": (j + f) / 2} for (v, o), (j, f) in objects.items()]
    jm, fm = np.mean([r["J"] for r in rows]), np.mean([r["F"] for r in rows])
    return {"global": {"J": jm, "F": fm, "J&F": (jm + fm) / 2}, "objects": rows, "per_tag": {}}


def scene_probs(seed: int, n_frames: int = 3, shape=(24, 30)) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, H, W) uint8`` stored probabilities (:mod:`fvos_utils.method.probs`) of three blocky objects with
    gaps and overlaps, and their ids (not in ascending channel order)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    stored = np.zeros((n_frames, 3, h, w), np.uint8)
    for t in range(n_frames):
        edges = np.sort(rng.choice(np.arange(4, w - 4), size=4, replace=False))
        for k, (a, b) in enumerate([(0, edges[0]), (edges[1], edges[2]), (edges[2] - 1, edges[3])]):
            stored[t, k, 2:h - 2, a:b] = rng.integers(128, 256, size=(h - 4, b - a))
        stored[t] |= (rng.random((3, h, w)) < 0.05) * rng.integers(100, 160, size=(3, h, w)).astype(np.uint8)
    return stored, np.array([4, 1, 2], np.int32)


def first_frames_clip(src_root: str | os.PathLike, video: str, dest: str | os.PathLike, n_frames: int) -> Path:
    """A DAVIS-style clip at ``dest`` (returned): the first ``n_frames`` frames of ``video`` in ``src_root`` and
    the annotations among them, as links (a real clip kept short enough for a CPU run, nothing copied)."""
    src_root, dest = Path(src_root), Path(dest)
    frames = sorted((src_root / "JPEGImages" / video).glob("*.jpg"))[:n_frames]
    for frame in frames:
        for folder, suffix in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
            source = src_root / folder / video / f"{frame.stem}{suffix}"
            if source.is_file():
                (dest / folder / video).mkdir(parents=True, exist_ok=True)
                (dest / folder / video / source.name).symlink_to(source)
    return dest


def tree_bytes(folder: str | os.PathLike) -> dict[str, bytes]:
    """``{path relative to folder: content}`` of every file under ``folder`` (hidden ones too): two folders
    hold byte-equal files exactly when these are equal."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def command_error(main: Callable[[list[str]], object], argv: list[str]) -> str:
    """Run a command line's ``main(argv)`` on bad input; check that it exits with status 2 after one line
    on stderr (no traceback) and nothing on stdout, and return that line."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as stop:
            status = stop.code
        else:
            status = 0
    lines = err.getvalue().splitlines()
    assert status == 2 and len(lines) == 1 and not out.getvalue(), (status, err.getvalue(), out.getvalue())
    return lines[0]


@contextlib.contextmanager
def lock_holder(output: str | os.PathLike, *, inside: bool = False) -> Iterator["subprocess.Popen"]:
    """Another process holding the lock of ``output`` (:func:`fvos_utils.base.locks.exclusive`, ``inside`` as there)
    for the block, as a first writer does while it works; yields that process (its pid is the holder's). It
    is released when the block ends (the process reads its stdin's end and exits)."""
    import subprocess
    import sys

    holder = ("import sys; from fvos_utils.base import locks\n"
              "with locks.exclusive(sys.argv[1], inside=sys.argv[2] == 'inside'):\n"
              "    print('held', flush=True); sys.stdin.read()")
    kit = str(paths.KIT_DIR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [kit, os.environ.get("PYTHONPATH")]))}
    for rank in ("RANK", "LOCAL_RANK"):
        env.pop(rank, None)
    proc = subprocess.Popen([sys.executable, "-c", holder, str(output), "inside" if inside else "beside"],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "held\n", "the lock holder did not start"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait()


def write_stub_chapter(root: str | os.PathLike, chapter: str) -> Path:
    """A chapter notebook of one cell, its ``parameters`` cell declaring ``run``, as
    ``<root>/notebooks/<chapter>.ipynb``: what the pipeline needs to find and run a chapter."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('run: str = "x"  # run name')])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(root) / "notebooks" / f"{chapter}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def execute_chapter(chapter: str, run: str, parameters: dict):
    """Run a chapter notebook through papermill into ``outputs/<run>/<chapter>.ipynb`` with ``run`` and
    ``parameters``; returns the executed notebook (nbformat)."""
    import nbformat
    import papermill

    from fvos_utils.base.paths import notebooks_dir, outputs_dir

    out = outputs_dir(run) / f"{chapter}.ipynb"
    papermill.execute_notebook(str(notebooks_dir() / f"{chapter}.ipynb"), str(out), parameters={"run": run, **parameters},
                               kernel_name="python3", cwd=str(notebooks_dir()), progress_bar=False)
    return nbformat.read(out, as_version=4)


#: executed copies (``tests/nbval/``), with the parameters they run there: fast, seeded, and pinning
#: the zero-motion baseline and the bundled model's J&F on mini-MOSE valid
NBVAL_CHAPTERS = {
    "00_data_and_metrics": {},
    "04_sigmoid_search": {"sigmoid_scales": [20.0], "sigmoid_biases": [-10.0, -5.0]},
}
#: the comment that marks a cell whose output nbval compares
NBVAL_MARK = "NBVAL_CHECK_OUTPUT"


def checked_outputs(notebook) -> list[str]:
    """The printed text of an executed notebook's ``# NBVAL_CHECK_OUTPUT`` cells, in order."""
    return [o["text"] for c in notebook.cells if NBVAL_MARK in c.source for o in c.outputs]


def write_nbval_references(out_dir: str | os.PathLike | None = None, *, kernel_name: str = "python3") -> list[Path]:
    """Execute each chapter of :data:`NBVAL_CHAPTERS` (run ``nbval``) into ``out_dir`` (default
    ``tests/nbval/``), keeping only the outputs nbval compares: those of ``# NBVAL_CHECK_OUTPUT`` cells.

    Run it (``make nbval-reference``) after a change that moves a pinned number, e.g. new bundled
    weights, and commit the result. Papermill's timestamps are dropped so that equal runs write equal bytes.
    """
    import nbformat
    import papermill

    from fvos_utils.base.io import atomic_path
    from fvos_utils.base.paths import notebooks_dir, project_root

    out_dir = Path(out_dir) if out_dir is not None else project_root() / "tests" / "nbval"
    written = []
    for chapter, parameters in NBVAL_CHAPTERS.items():
        target = out_dir / f"{chapter}.ipynb"
        with atomic_path(target) as tmp:
            papermill.execute_notebook(str(notebooks_dir() / f"{chapter}.ipynb"), str(tmp), kernel_name=kernel_name,
                                       parameters={"run": "nbval", **parameters}, cwd=str(project_root()),
                                       progress_bar=False)
            nb = nbformat.read(tmp, as_version=4)
            nb.metadata.pop("papermill", None)
            nb.metadata.pop("widgets", None)  # the state of progress-bar widgets: nothing nbval compares
            for cell in nb.cells:
                for key in ("papermill", "execution"):
                    cell.metadata.pop(key, None)
                if cell.cell_type == "code" and NBVAL_MARK not in cell.source:
                    cell.execution_count, cell.outputs = None, []  # nbval needs counts where outputs stay
            nbformat.write(nb, tmp)
        written.append(target)
    return written

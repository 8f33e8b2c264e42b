"""Generated label sequences for tests and benchmarks: moving, touching objects and noisy predictions.

Everything here is deterministic for a given seed, so a test or a benchmark can regenerate the same
ground truth and predictions anywhere. Label maps are ``(H, W) uint8`` with ids ``1..n_objects``
(0 is background); files are written as DAVIS-palette PNGs through :func:`fvos_utils.io.write_mask`.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .io import write_frame, write_json, write_mask


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


#: chapters whose ``# NBVAL_CHECK_OUTPUT`` cells ``pytest --nbval-lax`` re-checks against committed
def evaluator_result(objects: dict) -> dict:
    """An evaluator-shaped result (:func:`fvos_utils.evaluate.evaluate`) from ``{(video, object): (J, F)}``:
    per-object rows and their means, no tags."""
    rows = [{"video": v, "object": o, "J": j, "F": f, "J&F": (j + f) / 2} for (v, o), (j, f) in objects.items()]
    jm, fm = np.mean([r["J"] for r in rows]), np.mean([r["F"] for r in rows])
    return {"global": {"J": jm, "F": fm, "J&F": (jm + fm) / 2}, "objects": rows, "per_tag": {}}


def scene_probs(seed: int, n_frames: int = 3, shape=(24, 30)) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, H, W) uint8`` stored probabilities (:mod:`fvos_utils.probs`) of three blocky objects with
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


def execute_chapter(chapter: str, run: str, parameters: dict):
    """Run a chapter notebook through papermill into ``outputs/<run>/<chapter>.ipynb`` with ``run`` and
    ``parameters``; returns the executed notebook (nbformat)."""
    import nbformat
    import papermill

    from .paths import notebooks_dir, outputs_dir

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

    from .io import atomic_path
    from .paths import notebooks_dir, project_root

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
            for cell in nb.cells:
                for key in ("papermill", "execution"):
                    cell.metadata.pop(key, None)
                if cell.cell_type == "code" and NBVAL_MARK not in cell.source:
                    cell.execution_count, cell.outputs = None, []  # nbval needs counts where outputs stay
            nbformat.write(nb, tmp)
        written.append(target)
    return written

"""The prepared GPU check: what the paper's recipe costs on one GPU, measured in one run, in one JSON.

    .venv/bin/python benchmarks/gpu_check.py --out gpu_check.json           # a GPU machine: about 5-8 minutes
    .venv/bin/python benchmarks/gpu_check.py --dry-run --out /tmp/check.json  # anywhere: tiny sizes, on the CPU

1. ``inference``: SAM 2.1-L (random weights: speed does not depend on them) at each of the 7 FVOS scales
   (image size 1024 to 1792) in bf16, propagating the clip's objects jointly: frames per second and peak
   GPU memory per scale.
2. ``training``: the SAM 2.1-L MOSE recipe (``recipe: sam2.1_hiera_l``) at resolution 1024 through the kit's
   ``train.train_stage``, a few iterations on a small synthetic set: wall seconds of the stage (the trainer's
   start included), seconds per iteration from its log, peak GPU memory from its log.
3. ``demo_finetune``: the demo's fine-tuning stage 1 (``params/finetune_fvos_tiny_demo.yaml``, one epoch) on CUDA.
4. ``agreement``: the bundled ``fvos_tiny`` on the same clip on CUDA and on the CPU: the share of label pixels
   that differ (bf16 on CUDA against fp32 on the CPU).

``--dry-run`` runs the same code on the CPU with the tiny architecture (``fvos_tiny``, random weights), 3
frames, 2 scales and one short training epoch at 64 px, so that the tests keep the script working without a
GPU. Nothing here is a pass/fail goal: the numbers go to the README's GPU section.
"""
from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fvos_utils.base import io, provenance  # noqa: E402
from fvos_utils.data import synthetic
from fvos_utils.method import fusion, infer, models, train
from fvos_utils.base.paths import params_dir, shared_samples_dir  # noqa: E402
from fvos_utils.data.testing import moving_objects  # noqa: E402

#: the trainer's log line of one logged iteration: its time and its peak memory
_ITER_TIME = re.compile(r"Batch Time: ([0-9.]+)")
_ITER_MEM = re.compile(r"Mem \(GB\): ([0-9.]+)")


def clip(folder: Path, n_frames: int, size: tuple[int, int]) -> tuple[list[Path], dict]:
    """JPEG frames of the real bmx-trees clip when ``../shared/data/samples`` exists, else moving
    synthetic objects of ``size`` (H, W); returns the frame files and the first-frame prompts."""
    samples = shared_samples_dir()
    if samples is not None and (samples / "davis_bmx-trees").is_dir():
        data = io.VOSDataset(samples / "davis_bmx-trees")
        video = data.video(data.video_names()[0])
        frames = video.frames[:n_frames]
        first = data.first_annotation(video)[1]
    else:
        labels = list(moving_objects(*size, n_frames, 2, seed=0, vanish=False))
        rng = np.random.default_rng(0)
        frames = []
        for t, lab in enumerate(labels):
            rgb = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            rgb[lab == 1], rgb[lab == 2] = (220, 60, 60), (60, 200, 60)
            frames.append(folder / f"{t:05d}.jpg")
            io.write_frame(frames[-1], rgb)
        first = labels[0]
    prompts = {int(i): (0, first == i) for i in np.unique(first) if i not in (0, io.VOID_LABEL)}
    return list(frames), prompts


def _peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def inference(model: str, scales, frames, prompts, device: torch.device) -> list[dict]:
    """Frames per second and peak memory of ``model`` (random weights) at each scale."""
    rows = []
    for scale in scales:
        predictor = models.build_predictor(model, models.RANDOM, scale=scale, device=device)
        infer.predict_video(predictor, frames[:2], prompts, progress=False)  # warm-up: kernels, allocator
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        infer.predict_video(predictor, frames, prompts, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        rows.append({"scale": scale, "image_size": predictor.image_size, "frames": len(frames),
                     "fps": len(frames) / seconds, "peak_gb": _peak_gb(device)})
        print(f"  scale {scale:g} ({predictor.image_size} px): {rows[-1]['fps']:.2f} frames/s", flush=True)
        del predictor
    return rows


def _training_params(work: Path, *, model: str, recipe: str, resolution: int, device: str, videos: int,
                     init: str) -> dict:
    """An in-memory training params dict: ``videos`` small synthetic videos, one epoch of one pass over them."""
    data = synthetic.generate(work / "data", seed=0, progress=False, config=synthetic.SyntheticConfig(
        videos_train=videos, videos_valid=1, frames=(8, 8), size=(resolution, resolution), objects=(1, 2)))
    params = {"run": f"gpu-check-{recipe}", "model": model, "recipe": recipe, "device": device, "gpus": 1,
              "nodes": 1, "cluster": None, "threads": 2, "seed": 0,
              "data": {"root": str(data), "split": "train", "videos": None, "synthetic": None},
              "scratch": {"resolution": resolution, "num_frames": 8, "max_num_objects": 2},
              "stage1": {"init": init, "epochs": 1},
              "overrides": ["dataset.multiplier=1", "trainer.logging.log_freq=1",
                            "trainer.logging.log_scalar_frequency=1"]}
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params))  # read back through the kit's checks, as a user's file would be
    return train.load_training_params(path)


def training(params: dict, *, restart: bool = True) -> dict:
    """Wall seconds of one stage through ``train.train_stage`` and, from the trainer's log, seconds per
    iteration (the median of the logged ones) and its peak memory."""
    start = time.perf_counter()
    folder = train.train_stage(params, 1, restart=restart, progress=False)
    seconds = time.perf_counter() - start
    log = (folder / "train.log").read_text() if (folder / "train.log").is_file() else ""
    times = [float(t) for t in _ITER_TIME.findall(log)]
    memory = [float(m) for m in _ITER_MEM.findall(log)]
    return {"seconds": seconds, "iterations_logged": len(times),
            "seconds_per_iteration": float(np.median(times)) if times else None,
            "peak_gb": max(memory) if memory else None}


def agreement(frames, prompts) -> dict:
    """The bundled fvos_tiny on CUDA (bf16) against the CPU (fp32): share of label pixels that differ."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    labels = {}
    for device in ("cuda", "cpu"):
        predictor = models.build_predictor("fvos_tiny", models.REGISTRY, device=device)
        labels[device] = infer.predict_video(predictor, frames, prompts, progress=False).labels
    return {"frames": len(frames), "labels_differing": float((labels["cuda"] != labels["cpu"]).mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON file to write (relative to the current folder)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (tests; no GPU needed)")
    parser.add_argument("--frames", type=int, default=40, help="frames of the clip per inference pass")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    device = torch.device("cpu" if args.dry_run else "cuda")
    if not args.dry_run and not torch.cuda.is_available():
        parser.exit(2, "error: no CUDA device here; --dry-run checks the script on the CPU\n")
    big = "fvos_tiny" if args.dry_run else "sam2.1_hiera_large"
    scales = fusion.FVOS_SCALES[:2] if args.dry_run else fusion.FVOS_SCALES
    result = {"dry_run": args.dry_run, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else
              platform.processor() or "cpu", "environment": provenance.environment()}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        frames, prompts = clip(work / "clip", 3 if args.dry_run else args.frames, (480, 854))
        print(f"1. inference, {big}, {len(frames)} frames, {len(prompts)} objects", flush=True)
        result["inference"] = inference(big, scales, frames, prompts, device)
        print("2. training iterations of the recipe", flush=True)
        result["training"] = training(_training_params(
            work / "train", model=big, recipe="fvos_tiny_pretrain" if args.dry_run else "sam2.1_hiera_l",
            resolution=64 if args.dry_run else 1024, device=device.type, videos=2 if args.dry_run else 8,
            init=models.RANDOM))
        if args.dry_run:
            result["demo_finetune"] = {"skipped": "dry run (the demo's stage takes minutes on a CPU)"}
        else:
            print("3. the demo's fine-tuning stage 1 on CUDA", flush=True)
            demo = train.load_training_params(params_dir() / "finetune_fvos_tiny_demo.yaml")
            demo = {**demo, "run": "gpu-check-demo", "device": "cuda", "stage1": {**demo["stage1"], "epochs": 1}}
            result["demo_finetune"] = training(demo)
        print("4. CUDA against CPU", flush=True)
        result["agreement"] = agreement(frames[:10], prompts)
    io.write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a training iteration's time goes, and clips trained per hour, as ratios measured in one run.

    .venv/bin/python benchmarks/bench_train.py [--videos 64] [--iterations 12] [--rank-steps 8] [--parts 1 2 3 4]

Keep the machine otherwise idle: two busy processes on 2 cores slow torch training 10-20x.

1. Phases of one iteration of the small model's pretraining recipe (``fvos_tiny_pretrain``, 8 frames,
   batch 1), at 1 and 2 torch threads and at each of the small model's FVOS sizes (256..448): reading
   the clip (frames, masks, sampling), augmentation (the recipe's transforms), forward, loss, backward,
   optimizer step. Components are built from the composed recipe, as the trainer builds them.
2. Clips trained per hour through the kit's real path (``fvos train``, Meta's trainer
   and launcher; per-iteration times from its log, first iterations skipped), at the sizes the pretraining
   draws (256..448, one per batch): the reference is how the bundled weights were trained (one process,
   2 threads, one clip per iteration); against it, two data-parallel processes of one thread each
   (``gpus: 2, threads: 1``, gloo), first with one clip per process and iteration, then with two
   (``scratch.train_batch_size: 2``). The model, data, augmentation and loss are the recipe's in every
   run, and so are the sizes (the same draws, each shared by 4 consecutive clips); the clips per
   optimizer step are 1, 2 and 4. Goal: at least 2x the reference's clips per hour.
3. Why the kit draws one size per step for all ranks (:class:`fvos_utils.method.train.RankAlignedRandomResize`):
   the recipe's model under DDP on 2 gloo processes, the same clips and, per rank, the same sizes, drawn
   per rank (Meta's resize) or shared by both ranks at each step. Ranks step together, so a step lasts
   as long as its larger size.
4. Less time per clip without changing the recipe: one iteration (forward, loss, backward, step) at 256 and
   448 px on 1 thread, with the kernels and precision as the recipe runs on a CPU (fp32, the reference)
   against bf16 autocast (the precision Meta's recipe trains in on GPUs), channels-last memory and the math
   attention kernel instead of the fused one. Every variant trains the same clips with the same random draws,
   in turn, clip by clip (slow drift of the machine hits all of them alike).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the phase timings set torch's threads themselves

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT))
from fvos_utils.base import paths  # noqa: E402
from fvos_utils.data import synthetic
from fvos_utils.method import train

RECIPE = "fvos_tiny_pretrain"
SIZES = (256, 320, 384, 448)  # the small model's FVOS scales 1..1.75, every other one
GOAL = 2.0
_BATCH_TIME = re.compile(r"Train Epoch: \[\d+\]\[\s*(\d+)/\d+\] \| Batch Time: ([\d.]+)")


def make_data(root: Path, videos: int) -> Path:
    """A pretraining-preset set of ``videos`` train videos (clips of 10-16 frames, as the pretraining uses)."""
    config = replace(synthetic.PRESETS["pretrain"], videos_train=videos, videos_valid=1, frames=(10, 16))
    return synthetic.generate(root, seed=0, config=config, progress=False)


# ------------------------------------------------------------------------------------ 1. phases
def components(data: Path, size: int):
    """The recipe's dataset (with and without its transforms), model, loss and optimizer."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = train.compose_recipe(RECIPE, [f"dataset.img_folder={data / 'train' / 'JPEGImages'}",
                                        f"dataset.gt_folder={data / 'train' / 'Annotations'}",
                                        "trainer.accelerator=cpu", f"scratch.resolution={size}"])
    OmegaConf.resolve(cfg)
    dataset = instantiate(cfg.trainer.data.train.datasets[0].dataset.datasets[0], _convert_="all")
    model = instantiate(cfg.trainer.model, _convert_="all")
    loss = instantiate(cfg.trainer.loss, _convert_="all")["all"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    return dataset, model, loss, optimizer


def phase_times(data: Path, size: int, threads: int, iterations: int) -> dict[str, float]:
    """Mean seconds per iteration of each phase (after 2 warm-up iterations)."""
    from training.utils.data_utils import collate_fn

    torch.set_num_threads(threads)
    dataset, model, loss_fn, optimizer = components(data, size)
    transforms, dataset._transforms = dataset._transforms, []
    totals = dict.fromkeys(("read", "augment", "forward", "loss", "backward", "step"), 0.0)
    for i in range(iterations + 2):
        marks = [time.perf_counter()]
        datapoint = dataset._get_datapoint(i % len(dataset))
        marks.append(time.perf_counter())
        for transform in transforms:
            datapoint = transform(datapoint, epoch=0)
        batch = collate_fn([datapoint], dict_key="all")
        marks.append(time.perf_counter())
        outputs = model(batch)
        marks.append(time.perf_counter())
        loss = loss_fn(outputs, batch.masks)["core_loss"]
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        marks.append(time.perf_counter())
        if i >= 2:
            for key, start, end in zip(totals, marks, marks[1:]):
                totals[key] += (end - start) / iterations
    return totals


def report_phases(data: Path, iterations: int) -> None:
    print("1. seconds per iteration, by phase (batch of one 8-frame clip)")
    header = f"{'size':>5} {'threads':>7} " + " ".join(f"{k:>9}" for k in
                                                       ("read", "augment", "forward", "loss", "backward", "step",
                                                        "total"))
    print(header)
    for size, threads in [(256, 2), (256, 1)] + [(s, 1) for s in SIZES[1:]]:
        times = phase_times(data, size, threads, iterations)
        print(f"{size:>5} {threads:>7} " + " ".join(f"{v:9.3f}" for v in times.values())
              + f" {sum(times.values()):9.3f}", flush=True)


# ---------------------------------------------------------------------------------- 2. throughput
#: clips that share one size draw in every throughput run (the largest step below: 2 processes x 2 clips),
#: so all runs train the same draws in the same order (a run over other draws would measure its draws)
CLIPS_PER_DRAW = 4
#: the resize step's place in the recipe's train transforms (flip, affine, resize, ...)
_RESIZE = "vos.train_transforms.0.transforms.2"


def trainer_clips_per_hour(data: Path, folder: Path, *, gpus: int, threads: int, batch: int = 1,
                           skip_draws: int = 2) -> float:
    """Clips per hour of one epoch of Meta's trainer through the kit's launcher (per-iteration log times):
    ``gpus`` processes of ``threads`` threads, each taking ``batch`` clips per iteration, at the
    pretraining's sizes; every :data:`CLIPS_PER_DRAW` clips (across processes) share one size draw, the
    same draws in every run. The first ``skip_draws`` draws' iterations (warm-up) are not timed."""
    params = {"run": f"bench_{gpus}x{threads}x{batch}", "model": "fvos_tiny", "recipe": RECIPE, "device": "cpu",
              "gpus": gpus, "nodes": 1, "cluster": None, "threads": threads, "seed": 0,
              "data": {"root": str(data), "split": "train", "videos": None},
              "scratch": {"resolution": SIZES[0], "resolutions": list(SIZES), "num_frames": 8, "max_num_objects": 3,
                          "train_batch_size": batch},
              "stage1": {"init": "random", "epochs": 1},
              "overrides": ["trainer.logging.log_freq=1", "dataset.multiplier=1",
                            f"{_RESIZE}.clips_per_draw={CLIPS_PER_DRAW // gpus}"]}
    params_file = folder / f"params_{gpus}x{threads}x{batch}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    env = {**os.environ, paths.ROOT_ENV: str(folder)}
    run = subprocess.run([sys.executable, "-m", "fvos_utils", "train", "--params", str(params_file), "--stage", "1"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=KIT)
    if run.returncode:  # its progress bar is not wanted here, its error is
        raise RuntimeError(f"training run {params['run']} failed:\n{run.stderr[-3000:]}")
    log = (folder / "outputs" / params["run"] / "train" / "stage1" / "train.log").read_text()
    skip = skip_draws * CLIPS_PER_DRAW // (gpus * batch)
    times = [float(t) for step, t in _BATCH_TIME.findall(log) if int(step) >= skip]
    if not times:
        raise RuntimeError(f"no iteration times past the first {skip} in {folder}")
    return gpus * batch * 3600.0 / (sum(times) / len(times))  # the log is rank 0's: every rank steps together


def report_throughput(data: Path, folder: Path) -> None:
    print(f"\n2. clips trained per hour, Meta's trainer through the kit's launcher (one epoch each, sizes "
          f"{'/'.join(map(str, SIZES))} as the pretraining draws them, the same draws in every run)")
    reference = trainer_clips_per_hour(data, folder, gpus=1, threads=2)
    print(f"   reference: 1 process x 2 threads, 1 clip per iteration    {reference:7.0f} clips/h "
          f"({3600 / reference:.3f} s/clip)", flush=True)
    for batch in (1, 2):
        kit = trainer_clips_per_hour(data, folder, gpus=2, threads=1, batch=batch)
        ratio = kit / reference
        print(f"   2 processes x 1 thread, {batch} clip(s) per process         {kit:7.0f} clips/h "
              f"({3600 / kit:.3f} s/clip): {ratio:.2f}x (goal >= {GOAL:.1f}x: {'met' if ratio >= GOAL else 'NOT met'})",
              flush=True)


# ------------------------------------------------------------------------- 3. sizes drawn per rank
def _sized(batch, size: int):
    """``batch`` (Meta's ``BatchedVideoDatapoint``) resampled to ``size`` px."""
    frames = batch.img_batch.flatten(0, 1)
    batch.img_batch = torch.nn.functional.interpolate(frames, size=(size, size), mode="bilinear",
                                                      antialias=True).unflatten(0, batch.img_batch.shape[:2])
    batch.masks = torch.nn.functional.interpolate(batch.masks.float(), size=(size, size)) > 0.5
    return batch


def _rank_steps(rank: int, data: Path, port: int, schedules: list, result) -> None:
    """One gloo rank of the recipe's model under DDP (as the trainer wraps it), 2 clips per step at the
    sizes ``schedules[rank]``; puts the mean seconds of the steps after the first two into ``result``."""
    import torch.distributed as dist

    from fvos_utils.method import train as kit_train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    warnings.filterwarnings("ignore", message="Grad strides do not match")  # one 1x1 conv's gradient layout
    torch.set_num_threads(1)
    torch.manual_seed(rank)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    dataset, model, loss_fn, optimizer = components(data, SIZES[0])
    model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)  # the recipe's
    times = []
    for step, size in enumerate(schedules[rank]):
        clips = [dataset[(4 * step + 2 * rank + k) % len(dataset)] for k in range(2)]
        batch = _sized(kit_train.collate_one_size(clips, "all"), size)
        start = time.perf_counter()
        loss = loss_fn(model(batch), batch.masks)["core_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    dist.destroy_process_group()
    if rank == 0:
        result.put(sum(times[2:]) / len(times[2:]))


def report_rank_draws(data: Path, steps: int) -> None:
    """Two draws ``a``, ``b`` of ``steps`` sizes: per rank, rank 0 trains ``a`` then ``b`` and rank 1 ``b``
    then ``a``; shared, both train ``a`` then ``b``. Each rank trains the same sizes in both runs."""
    import torch.multiprocessing as mp

    a, b = ([random.Random(seed).choice(SIZES) for _ in range(steps)] for seed in (0, 1))
    print(f"\n3. one DDP step of 2 gloo processes x 1 thread x 2 clips at sizes drawn per rank (Meta's resize) vs "
          f"one size per step on both ranks (the kit's), the same sizes per rank in both ({2 * steps} steps each)")
    seconds = {}
    for name, schedules in (("per rank", [a + b, b + a]), ("shared", [a + b, a + b])):
        result = mp.get_context("spawn").SimpleQueue()
        mp.start_processes(_rank_steps, args=(data, 29500 + len(seconds), schedules, result), nprocs=2,
                           start_method="spawn")
        seconds[name] = result.get()
        print(f"   sizes {name:9s} {seconds[name]:.3f} s per step", flush=True)
    print(f"   one size per step: {seconds['per rank'] / seconds['shared']:.2f}x the steps per hour", flush=True)


# ------------------------------------------------------------------------ 4. kernels and precision
def _variants() -> dict:
    """``{name: (prepare the model in place, context of each iteration)}``; the first is the reference."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def as_is(model):
        return model

    def channels_last(model):
        return model.to(memory_format=torch.channels_last)

    return {"fp32 (the recipe on CPU)": (as_is, contextlib.nullcontext),
            "bf16 autocast": (as_is, lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
            "channels-last memory": (channels_last, contextlib.nullcontext),
            "math attention kernel": (as_is, lambda: sdpa_kernel(SDPBackend.MATH))}


def variant_times(data: Path, size: int, iterations: int) -> dict[str, float]:
    """Mean seconds per iteration of each :func:`_variants` entry on the same clips and random draws (the
    model's click sampling, the transforms), after 2 warm-up iterations; 1 thread."""
    from training.utils.data_utils import collate_fn

    torch.set_num_threads(1)
    runs = {}
    for name, (prepare, context) in _variants().items():
        torch.manual_seed(0)  # the same initial weights in every variant
        dataset, model, loss_fn, optimizer = components(data, size)
        runs[name] = (prepare(model), loss_fn, optimizer, context)
    totals = dict.fromkeys(runs, 0.0)
    for i in range(iterations + 2):
        random.seed(i), np.random.seed(i), torch.manual_seed(i)
        clip = collate_fn([dataset[i % len(dataset)]], dict_key="all")  # read and transformed once per step
        for name, (model, loss_fn, optimizer, context) in runs.items():
            batch = copy.deepcopy(clip)  # a fresh copy per variant: nothing one variant does reaches another
            random.seed(i), np.random.seed(i), torch.manual_seed(i)  # the same click draws in every variant
            start = time.perf_counter()
            with context():
                loss = loss_fn(model(batch), batch.masks)["core_loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if i >= 2:
                totals[name] += (time.perf_counter() - start) / iterations
    return totals


def report_variants(data: Path, iterations: int) -> None:
    print(f"\n4. seconds per iteration (forward, loss, backward, step; 1 thread) and speed-up over the recipe's "
          f"fp32, the same {iterations} clips per variant")
    for size in (SIZES[0], SIZES[-1]):
        times = variant_times(data, size, iterations)
        reference = next(iter(times.values()))
        for name, seconds in times.items():
            print(f"   {size} px  {name:26s} {seconds:7.3f} s  {reference / seconds:5.2f}x", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=64, help="train videos (2 processes take half each)")
    parser.add_argument("--iterations", type=int, default=12, help="timed iterations per phase measurement")
    parser.add_argument("--rank-steps", type=int, default=8, help="steps per draw in part 3")
    parser.add_argument("--parts", type=int, nargs="+", choices=(1, 2, 3, 4), default=[1, 2, 3, 4],
                        help="the parts to run (all by default)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "data", args.videos)
        if 1 in args.parts:
            report_phases(data, args.iterations)
        if 2 in args.parts:
            report_throughput(data, Path(tmp))
        if 3 in args.parts:
            report_rank_draws(data, args.rank_steps)
        if 4 in args.parts:
            report_variants(data, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())

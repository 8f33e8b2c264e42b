"""Several model passes on a CPU: side by side, one thread each, against one after another, as a ratio
measured in the same run, with the masks compared byte for byte.

    .venv/bin/python benchmarks/bench_passes.py [--videos 6] [--threads 2] [--repeats 1]

The workload is chapter 06's and the ablation's: the bundled ``fvos_tiny`` at the paper's 7 scales over the
first ``--videos`` videos of the synthetic mini-MOSE test split (``make demo`` or chapter 00 makes it), each
pass writing its label maps and probabilities. Three ways, each timed as a whole (wall time, the best of
``--repeats``; the machine should be otherwise idle):

1. **before**: the passes one after another in this process on ``--threads`` torch threads, as the kit ran
   them until now (``infer.run_split`` per pass; the demo's ``threads: 2``);
2. **side by side**: ``infer.run_passes_side_by_side`` with ``--threads`` worker processes of one thread each;
3. **one thread**: the passes one after another on one thread, the reference for the masks of 2.

Printed: each time, the ratio before / side by side (the goal: above 1), and whether the masks and
probabilities of 2 equal those of 3 byte for byte (a pass gives the same files whatever the scheduling)
and how many label pixels differ between 1 and 2 (torch's oneDNN convolutions round differently with
one thread than with two, so the thread count, not the scheduling, moves a few pixels).
"""
from __future__ import annotations

import os
import sys

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(THREADS)  # pinned before numpy / torch are imported; workers set their own one
os.environ["TQDM_DISABLE"] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fvos_utils.base import io  # noqa: E402
from fvos_utils.data import datasets
from fvos_utils.method import infer, models
from fvos_utils.method.fusion import FVOS_SCALES  # noqa: E402


def jobs_for(root: Path, weights: str) -> list:
    return [(models.PredictorSpec("fvos_tiny", weights, scale=scale), root / f"scale{scale:g}", {})
            for scale in FVOS_SCALES]


def one_after_another(jobs, split, threads: int) -> None:
    torch.set_num_threads(threads)
    for spec, out_dir, own in jobs:
        infer.run_split(spec, split.root, out_dir, processes=1, device="cpu", split=split.name, videos=split.videos,
                        save_probs=True, overwrite=True, progress=False, **own)


def side_by_side(jobs, split, threads: int) -> None:
    infer.run_passes_side_by_side(jobs, split.root, workers=threads, device="cpu", split=split.name,
                                  videos=split.videos, save_probs=True, overwrite=True, progress=False)


def digest(folder: Path) -> str:
    """Every label map and probability array under ``folder``, by content."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    for path in sorted(folder.rglob("*.npz")):
        with np.load(path) as stored:
            for key in sorted(stored.files):
                h.update(key.encode() + stored[key].tobytes())
    return h.hexdigest()


def differing_pixels(a: Path, b: Path) -> tuple[int, int]:
    differing = total = 0
    for path in sorted(a.rglob("*.png")):
        x, y = io.read_mask(path), io.read_mask(b / path.relative_to(a))
        differing += int((x != y).sum())
        total += x.size
    return differing, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=6, help="first test videos (default 6)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads: of 'before', and workers side by side")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    split = datasets.test_split(Path(__file__).resolve().parent.parent / "data" / "synthetic-mini-mose", seed=0)
    if split is None:
        sys.exit("no synthetic test split under data/synthetic-mini-mose: run make demo (or chapter 00) first")
    split = datasets.ValidationSplit(split.root, split.gt_dir, split.tags, split.videos[:args.videos], split.name)
    weights = str(models.resolve_checkpoint(models.get_spec("fvos_tiny"), models.REGISTRY))
    frames = sum(len(io.VOSDataset(split.root, split.name).video(v)) for v in split.videos)
    print(f"{len(FVOS_SCALES)} passes (scales {', '.join(f'{s:g}' for s in FVOS_SCALES)}) over {len(split.videos)} "
          f"test videos ({frames} frames), bundled fvos_tiny, {args.threads} CPU threads, best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ways = {"before": lambda jobs: one_after_another(jobs, split, args.threads),
                "side by side": lambda jobs: side_by_side(jobs, split, args.threads),
                "one thread": lambda jobs: one_after_another(jobs, split, 1)}
        seconds = {}
        for _ in range(args.repeats):
            for name, run in ways.items():
                root = tmp / name.replace(" ", "_")
                shutil.rmtree(root, ignore_errors=True)
                start = time.perf_counter()
                run(jobs_for(root, weights))
                seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
        for name, value in seconds.items():
            print(f"  {name:13s} {value:7.1f} s")
        print(f"side by side is {seconds['before'] / seconds['side by side']:.2f}x as fast as before "
              f"(one thread one after another: {seconds['one thread'] / seconds['side by side']:.2f}x)")
        same = digest(tmp / "side_by_side") == digest(tmp / "one_thread")
        print(f"masks and probabilities side by side {'identical to' if same else 'DIFFERENT from'} the one-thread "
              "passes, byte for byte")
        differing, total = differing_pixels(tmp / "before", tmp / "side_by_side")
        print(f"label pixels differing from before ({args.threads} threads): {differing} of {total} "
              f"({differing / total:.1e})")


if __name__ == "__main__":
    main()

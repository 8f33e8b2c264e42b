"""Fine-tuning SAM 2 with Meta's own trainer (the ``training`` package that ships with ``sam2``).

The paper (section 2.1) fine-tunes SAM2-Large on MOSE in two stages: stage 1 = N1 epochs from the
released checkpoint, stage 2 = N2 epochs from a chosen stage-1 epoch. Here a ``params/*.yaml`` file
describes both stages; for each stage the kit

1. checks the inputs (checkpoint, dataset folders, annotations, the video list) and fails before
   training with an error naming the file;
2. composes the hydra recipe ``fvos_utils/configs/training/<recipe>.yaml`` with the params' values into
   one self-contained trainer config, ``<stage dir>/trainer_config.yaml``;
3. runs Meta's trainer on it in its own subprocess (``fvos train --launch DIR``), with a
   progress bar fed by the trainer's log. The trainer's launcher spawns one process per GPU, or
   submits to SLURM through submitit (``cluster:`` in the params).

Layout of a stage, ``outputs/<run>/train/stage<k>/``::

    trainer_config.yaml   what ran (resume refuses a different one)
    videos.txt            the training videos, checked
    train.log             the trainer's output
    job.json              with ``cluster:``: the submitted job (its id, executor and log), while it is current
    submitit_logs/        with ``cluster:``: submitit's files, the job's log among them
    logs/                 the trainer's own logs: log.txt, train_stats.json (one line per epoch)
    tensorboard/          per-step losses (loss curves: :func:`loss_curve`)
    resumes.json          where the stage was resumed (after which epoch, when), if it was
    checkpoints/checkpoint.pt   full state (model, optimizer, epoch, random state) of the latest epoch only
    weights/epoch_NNN.pt        model-only ``{"model": state_dict}`` after every epoch

Full state is kept for the latest epoch only, so 50 SAM2-L epochs need 50 x 0.9 GB, not 50 x 2.7 GB.
Running the same command again resumes from ``checkpoint.pt``: a killed run loses at most the epoch
in progress, and on a CPU the resumed run is bit-identical to an uninterrupted one (the random state is
saved with the full state and restored). Per-epoch weights are written before the full state, so a finished epoch always has both.

On a CPU the trainer needs three things (``../shared/reference/sam2-notes.md``): the gloo backend,
amp off, and ``torch.cuda.reset_peak_memory_stats`` (called by the memory meter every step) made a
no-op; :class:`KitTrainer` does the last when CUDA is absent.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from training.dataset.transforms import RandomResizeAPI, resize
from training.model.sam2 import SAM2Train
from training.trainer import Trainer
from training.utils.train_utils import register_omegaconf_resolvers

from fvos_utils.base import io, jobs, locks, paths
from fvos_utils.base.progress import progress_bar
from fvos_utils.method.models import CONFIG_DIR, RANDOM, DownloadError, get_spec, resolve_checkpoint, save_checkpoint

#: The kit's trainer recipes (hydra configs composing sam2's or the kit's model configs).
RECIPE_DIR = CONFIG_DIR / "training"
STAGES = (1, 2)
#: epochs of each stage in the paper (section 2.1): 10 on MOSE, then 40 more from the best of them
PAPER_EPOCHS = {1: 10, 2: 40}
_CONFIG_NAME = "trainer_config"
_EPOCH_LINE = re.compile(r"Train Epoch: \[(\d+)\]\[\s*(\d+)/(\d+)\]")
_JOB_LINE = re.compile(r"Submitit Job ID: (\S+)")  # printed by Meta's launcher once it has submitted
#: what every training size must be a multiple of: the stride of the image encoder's features
_ENCODER_STRIDE = 16
#: the file of a stage folder that records where the stage was resumed: ``[{"after_epoch", "at"}, ...]``
RESUMES_FILE = "resumes.json"
#: the file of a stage folder that names its submitted cluster job
JOB_FILE = "job.json"
#: environment variable naming the file the launch subprocess writes to when it submits a job (the job's
#: controller outlives it and must not hold the parent's pipe open)
_SUBMIT_LOG_ENV = "FVOS_SUBMIT_LOG"
#: environment variable telling the trainer which job ended before this one (and how): for resumes.json
_PREVIOUS_JOB_ENV = "FVOS_PREVIOUS_JOB"


class StageRunning(RuntimeError):
    """A stage trains as a cluster job (submitted now, or earlier and still pending or running): nothing to
    score yet. The message names the job, its state and how to follow it."""


class JobFailed(RuntimeError):
    """The stage's last cluster job failed inside (its own error, not a cancel, time limit or requeue): the
    message shows the end of its log. Nothing is submitted again until the run is retried
    (``fvos train ... --retry``), once the cause is fixed."""


#: SLURM states of a job ended by its own error: resubmitting the same job would fail the same way
_FAILED_STATES = ("FAILED", "OUT_OF_MEMORY")
#: what each way a job can end from outside means, in the words a rerun prints
_ENDED_WORDS = {"ENDED": "ended", "CANCELLED": "was cancelled", "TIMEOUT": "timed out (it reached its time limit)",
                "PREEMPTED": "was preempted", "NODE_FAIL": "ended with its node failing",
                "BOOT_FAIL": "did not start (its node failed to boot)", "DEADLINE": "missed its deadline"}


# ------------------------------------------------------------------------------------- the trainer
class KitTrainer(Trainer):
    """Meta's ``Trainer`` plus model-only weights per epoch (``<log dir>/weights/epoch_NNN.pt``).

    Without CUDA, ``torch.cuda.reset_peak_memory_stats`` (the memory meter's one CUDA-only call, made
    every step) becomes a no-op in this process: the trainer runs in its own subprocess, so nothing
    else sees the change.
    """

    def __init__(self, **kwargs):
        if not torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats = lambda *args, **kw: None
        super().__init__(**kwargs)

    def save_checkpoint(self, epoch, checkpoint_names=None):
        if checkpoint_names is None and self.distributed_rank == 0:
            model = getattr(self.model, "module", self.model)  # unwrap DDP
            save_checkpoint(model, weights_path(Path(self.checkpoint_conf.save_dir).parent, int(epoch)))
        super().save_checkpoint(epoch, checkpoint_names)

    def _save_checkpoint(self, checkpoint, checkpoint_path):
        """Meta's full state plus this process's random state (python, numpy, torch, CUDA): without it a
        resumed run drew other random numbers from the next epoch on than an uninterrupted one (the
        trainer seeds once, at its start), so its later epochs differed (by up to 1.25e-3 in a weight)."""
        model = getattr(self.model, "module", self.model)  # unwrap DDP
        super()._save_checkpoint({**checkpoint, _RANDOM_STATE_KEY: _random_state(model)}, checkpoint_path)

    def _load_resuming_checkpoint(self, ckpt_path: str):
        super()._load_resuming_checkpoint(ckpt_path)
        # memory-mapped: only the small random state is read from the file Meta's loader has just read
        state = torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=True).get(_RANDOM_STATE_KEY)
        # only rank 0 saves: its state is its own (other ranks keep their seeding; one process is then exact)
        if state is not None and self.distributed_rank == 0:
            _restore_random_state(state, getattr(self.model, "module", self.model))
        if self.distributed_rank == 0:  # here, not in the launching process: a requeued job resumes by itself
            _record_resume(Path(self.checkpoint_conf.save_dir).parent, after_epoch=int(self.epoch))


def _record_resume(stage_folder: Path, *, after_epoch: int) -> None:
    """One entry of ``resumes.json``: after which epoch, when, and in which SLURM job (its restart count
    above 0 when SLURM requeued it; the job that ended before, when the kit resubmitted after it)."""
    entry: dict[str, Any] = {"after_epoch": after_epoch, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if os.environ.get("SLURM_JOB_ID"):
        entry["job"] = {"job_id": os.environ["SLURM_JOB_ID"],
                        "restart_count": int(os.environ.get("SLURM_RESTART_COUNT", 0))}
    if os.environ.get(_PREVIOUS_JOB_ENV) and not entry.get("job", {}).get("restart_count"):
        entry["previous_job"] = json.loads(os.environ[_PREVIOUS_JOB_ENV])
    path = stage_folder / RESUMES_FILE
    io.write_json(path, [*(io.read_json(path) if path.is_file() else []), entry])


#: the key of :class:`KitTrainer`'s full checkpoint that holds the random state
_RANDOM_STATE_KEY = "kit_random_state"


def _random_state(model) -> dict:
    """Every random generator the training process draws from, as it stands, in types Meta's loader reads
    (``torch.load`` with ``weights_only``: tensors and plain Python values, numpy's key as a list): the
    global ones and ``model.rng``, the generator ``SAM2Train`` draws its prompts from (seeded once, when
    the model is built)."""
    import numpy as np

    name, key, position, has_gauss, cached_gaussian = np.random.get_state()
    return {"python": random.getstate(), "numpy": [name, key.tolist(), position, has_gauss, cached_gaussian],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "model": model.rng.bit_generator.state if hasattr(model, "rng") else None}


def _restore_random_state(state: dict, model) -> None:
    """Set the generators (``model``'s too) to what :func:`_random_state` returned."""
    import numpy as np

    random.setstate(state["python"])
    name, key, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(key, np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state["model"] is not None and hasattr(model, "rng"):
        model.rng.bit_generator.state = state["model"]


class MultiResolutionSAM2Train(SAM2Train):
    """Meta's ``SAM2Train`` that takes each batch at its own (square) image size.

    SAM 2 fixes its input size when built (``image_size``, and from it the prompt encoder's embedding and
    mask-input sizes); the backbone, the memory attention's RoPE and the position encodings already
    follow the features they are given. Before each forward this sets the size-derived attributes from
    the batch, so a recipe whose resize step draws one of several sizes per clip
    (``scratch.resolutions``) trains one model over all of them: the FVOS scales then mean more pixels,
    not unseen input sizes. With one size it is Meta's ``SAM2Train`` exactly.
    """

    def forward(self, input):
        """``input``: Meta's ``BatchedVideoDatapoint``; ``input.flat_img_batch`` is ``(T * B, 3, S, S)``."""
        self.set_image_size(int(input.flat_img_batch.shape[-1]))
        return super().forward(input)

    def set_image_size(self, size: int) -> None:
        """Make ``size`` (a multiple of the backbone stride) the model's input size."""
        if size % self.backbone_stride:
            raise ValueError(f"image size {size} is not a multiple of the backbone stride {self.backbone_stride}")
        embedding = size // self.backbone_stride
        self.image_size, self.sam_image_embedding_size = size, embedding
        prompt = self.sam_prompt_encoder
        prompt.input_image_size, prompt.image_embedding_size = (size, size), (embedding, embedding)
        prompt.mask_input_size = (4 * embedding, 4 * embedding)


class RankAlignedRandomResize(RandomResizeAPI):
    """Meta's ``RandomResizeAPI`` (square, one size per clip drawn from ``sizes``) drawing one size per batch,
    the same on every data-parallel rank.

    Data-parallel ranks step together, so a step lasts as long as its slowest rank. Meta's draw
    (``random.choice``, seeded per rank) gives each rank its own size: two CPU processes drawing from
    256..448 px wait for the larger one (up to 3x the pixels) at every step. Here the ``n``-th clip a loader
    process transforms takes draw ``n // clips_per_draw`` of a generator seeded by ``seed`` and the loader
    worker's id, not by the rank. Every rank transforms the same number of clips per step in the same order
    (``drop_last``; a loader worker builds whole batches, worker ``k`` the same positions on every rank), so
    with ``clips_per_draw`` = the per-rank batch size each step has one size on all ranks and the collate
    (:func:`collate_one_size`) resizes nothing. Sizes stay uniform over ``sizes``. Loader workers start
    each epoch from the main process's copy, so with workers every epoch gives its batch positions the same
    sizes (the clips at those positions are reshuffled); a resumed run starts the sequence again. With one
    size it is Meta's class exactly (same call, same random state consumed).
    """

    def __init__(self, sizes, consistent_transform: bool, seed: int, clips_per_draw: int = 1, max_size=None,
                 square: bool = False, v2: bool = False):
        if not consistent_transform:
            raise ValueError("RankAlignedRandomResize draws one size per clip: consistent_transform must be true")
        super().__init__(sizes, consistent_transform, max_size=max_size, square=square, v2=v2)
        self.seed, self.clips_per_draw = int(seed), int(clips_per_draw)
        self._clips: dict[int, int] = {}  # loader worker id (-1: the main process) -> clips transformed

    def __call__(self, datapoint, **kwargs):
        if len(self.sizes) == 1:
            return super().__call__(datapoint, **kwargs)
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else -1
        clip = self._clips.get(worker, 0)
        self._clips[worker] = clip + 1
        draw = random.Random(f"{self.seed}/{worker}/{clip // self.clips_per_draw}")  # str seeds hash the same in every process
        size = draw.choice(self.sizes)
        for i in range(len(datapoint.frames)):
            datapoint = resize(datapoint, i, size, self.max_size, square=self.square, v2=self.v2)
        return datapoint


def collate_one_size(batch: list, dict_key: str):
    """Meta's ``collate_fn`` for clips that may differ in size: a batch is one tensor, so every clip after
    the first is resized to the first clip's (square) size before Meta's collate stacks them.

    The recipe's resize step draws one size per clip (``scratch.resolutions``); with ``train_batch_size``
    above 1 the first clip's draw becomes the batch's size, so sizes stay uniformly drawn per batch. The
    other clips are resampled a second time (frames bilinear with antialiasing, masks nearest), which
    blurs a clip drawn smaller than its batch a little. With one size (or one clip) it is Meta's collate.

    Args:
        batch: Meta's ``VideoDatapoint`` list; each frame's ``data`` is ``(3, S_i, S_i)`` and each object's
            ``segment`` ``(S_i, S_i)`` after the recipe's transforms.
    Returns:
        Meta's ``BatchedVideoDatapoint``, ``img_batch`` ``(T, B, 3, S_0, S_0)``.
    """
    from training.utils.data_utils import collate_fn

    size = tuple(batch[0].frames[0].data.shape[-2:])
    for video in batch[1:]:
        for frame in video.frames:
            if tuple(frame.data.shape[-2:]) == size:
                continue
            frame.data = torch.nn.functional.interpolate(frame.data[None], size=size, mode="bilinear",
                                                         align_corners=False, antialias=True)[0]
            for obj in frame.objects:
                resized = torch.nn.functional.interpolate(obj.segment[None, None].float(), size=size, mode="nearest")
                obj.segment = resized[0, 0].to(obj.segment.dtype)
    return collate_fn(batch, dict_key)


# ------------------------------------------------------------------------------------------ layout
def stage_dir(run: str, stage: int) -> Path:
    """``outputs/<run>/train/stage<stage>/`` (created). Shown in chapter 03."""
    _check_stage(stage)
    return paths.outputs_dir(f"{run}/train/stage{stage}")


def weights_path(stage_folder: Path, epoch: int) -> Path:
    """The model-only weights of ``epoch`` (1-based: the state after that many epochs)."""
    return Path(stage_folder) / "weights" / f"epoch_{epoch:03d}.pt"


def epoch_weights(stage_folder: str | os.PathLike) -> dict[int, Path]:
    """``{epoch: weights file}`` of a stage folder, in epoch order. Shown in chapter 02."""
    found = {int(match.group(1)): path for path in (Path(stage_folder) / "weights").glob("epoch_*.pt")
             if (match := re.fullmatch(r"epoch_(\d+)\.pt", path.name))}
    return dict(sorted(found.items()))


def best_epoch_file(run: str, stage: int) -> Path:
    """Where epoch selection records a stage's best epoch (read by stage 2 with ``init: best``)."""
    return stage_dir(run, stage) / "best_epoch.json"


def completed_epochs(stage_folder: str | os.PathLike) -> int:
    """Epochs the latest full checkpoint holds (0 when there is none)."""
    ckpt = Path(stage_folder) / "checkpoints" / "checkpoint.pt"
    if not ckpt.is_file():
        return 0
    # memory-mapped: only the small "epoch" entry is read, not gigabytes of SAM2-L optimizer state
    return int(torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["epoch"])


def _check_stage(stage: int) -> None:
    if stage not in STAGES:
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")


# ------------------------------------------------------------------------------------------- params
@dataclasses.dataclass
class StagePlan:
    """One stage, ready to launch: its folder, its composed config, what it starts from."""

    run: str
    stage: int
    folder: Path
    config: Any          # omegaconf DictConfig, unresolved (the trainer resolves it)
    init: Path | None    # weights the stage starts from (None: random init)
    videos: list[str]
    epochs: int
    device: str


#: every key a training params file may hold (``params/pretrain_fvos_tiny.yaml`` comments each), with its
#: types; ``scratch`` values are the recipe's own (checked when the recipe is composed)
PARAMS_SCHEMA = {"run": (str,), "model": (str,), "recipe": (str,), "device": (str,),
                 "gpus": (int,), "nodes": (int,), "cluster": (dict, type(None)), "threads": (int,), "seed": (int,),
                 "data": (dict,), "scratch": (dict,), "stage1": (dict,), "stage2": (dict,), "overrides": (list,)}
DATA_SCHEMA = {"root": (str, type(None)), "split": (str,), "videos": (str, type(None)), "synthetic": (dict, type(None))}
STAGE_SCHEMA = {"init": (str, int, type(None)), "epochs": (int,), "scratch": (dict,), "overrides": (list,),
                "export": (str, type(None))}
REQUIRED_KEYS = ("run", "model", "recipe", "data", "stage1")
#: the scratch values the trainer needs in a range (it fails late, with a long traceback, on others):
#: ``(what they must be, the check)``
SCRATCH_CHECKS = {
    **{key: ("a whole number of at least 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1)
       for key in ("num_frames", "max_num_objects", "train_batch_size")},
    "resolution": ("a whole number of at least 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    **{key: ("a positive number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0)
       for key in ("base_lr", "vision_lr")},
}


def _check_section(path: Path, where: str, values: dict, schema: dict) -> None:
    """Unknown keys (with the closest known one) and mistyped values of one mapping: a DataError naming
    ``path`` and the key."""
    for key, value in values.items():
        name = f"{where}{key}"
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f" (did you mean {where}{close[0]!r}?)" if close else ""
            raise io.DataError(path, f"unknown key {name!r}{hint}; known: {', '.join(where + k for k in schema)}")
        types = schema[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise io.DataError(path, f"{name} must be {expected}, got {value!r}")


def _check_scratch(path: Path, where: str, scratch: dict) -> None:
    """The values of :data:`SCRATCH_CHECKS` in one ``scratch`` mapping: a DataError naming ``path`` and the key."""
    for key, (words, fits) in SCRATCH_CHECKS.items():
        if key in scratch and not fits(scratch[key]):
            raise io.DataError(path, f"{where}{key} must be {words}, got {scratch[key]!r}")


def _apply_overrides(path: Path, params: dict, overrides: Sequence[str]) -> None:
    """Set each ``KEY[.SUB...]=VALUE`` of ``overrides`` (the command line's ``--set``; VALUE in YAML) in the
    params file's mapping, before it is checked, creating the sections it names."""
    from fvos_utils.run.pipeline import parse_override  # the pipeline's --set syntax, one parser for both

    for item in overrides:
        names, value = parse_override(item)
        section = params
        for name in names[:-1]:
            section = section.setdefault(name, {})
            if not isinstance(section, dict):
                raise io.DataError(path, f"--set {item}: {name} is not a mapping here")
        section[names[-1]] = value


def load_training_params(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """A training params file (see ``params/pretrain_fvos_tiny.yaml`` for every key), checked: unknown keys
    are refused with the closest known one (``gpu: 8`` names ``gpus``), types are checked, and ``gpus`` /
    ``nodes`` / ``cluster`` must fit ``device``. Every problem is a DataError naming the file and the key.
    ``overrides``: ``KEY.SUB=VALUE`` (``data.root=/scratch/MOSE``, ``stage1.epochs=2``), applied to the
    file's values before they are checked (the command line's ``--set``)."""
    path = paths.resolve(path)
    if not path.is_file():
        raise io.DataError(path, "params file not found")
    params = io.read_yaml(path)
    if not isinstance(params, dict):
        raise io.DataError(path, "params file must hold a mapping")
    _apply_overrides(path, params, overrides)
    for key in REQUIRED_KEYS:
        if key not in params:
            raise io.DataError(path, f"missing key {key!r}")
    _check_section(path, "", params, PARAMS_SCHEMA)
    _check_section(path, "data.", params["data"], DATA_SCHEMA)
    _check_scratch(path, "scratch.", params.get("scratch", {}))
    for stage in STAGES:
        _check_section(path, f"stage{stage}.", params.get(f"stage{stage}", {}), STAGE_SCHEMA)
        _check_scratch(path, f"stage{stage}.scratch.", params.get(f"stage{stage}", {}).get("scratch", {}))
        if params.get(f"stage{stage}", {}).get("epochs", 1) < 1:  # 0 printed "stage 1 done" with no weights
            raise io.DataError(path, f"stage{stage}.epochs must be at least 1, got {params[f'stage{stage}']['epochs']}")
    if not paths.is_plain_name(params["run"]):  # a stage's folder is outputs/<run>/train/stage<k>, never elsewhere
        raise io.DataError(path, f"run must be a plain folder name under outputs/ (not '.' or '..', no slash or "
                                 f"backslash), got {params['run']!r}")
    if params.get("device", "auto") not in ("auto", "cpu", "cuda"):
        raise io.DataError(path, f"device must be auto, cpu or cuda, got {params['device']!r}")
    for key in ("gpus", "nodes"):
        if params.get(key, 1) < 1:
            raise io.DataError(path, f"{key} must be at least 1, got {params[key]}")
    if params.get("nodes", 1) > 1 and not params.get("cluster"):
        raise io.DataError(path, f"nodes: {params['nodes']} needs a cluster (submitit/SLURM settings): one machine "
                                 "is one node")
    params["_path"] = str(path)
    return params


def write_chapter_params(train_params: str | os.PathLike, out: str | os.PathLike, *, run: str,
                         data_root: str | os.PathLike, stage_epochs: tuple[int, int], threads: int) -> dict:
    """Chapter 02's training params: ``train_params`` with the chapter's run, dataset folder (its train
    split, already prepared), epochs of stages 1 and 2 and threads on top, written to ``out`` (so the
    command line can redo the run: ``fvos train --params OUT``) and read back. Shown in chapter 02."""
    params = load_training_params(train_params)
    params["run"] = run
    params["data"] = {key: value for key, value in params["data"].items() if key != "synthetic"}
    params["data"].update(root=str(paths.resolve(data_root)), split="train")
    for stage, epochs in zip(STAGES, stage_epochs):
        params[f"stage{stage}"] = {**params.get(f"stage{stage}", {}), "epochs": int(epochs)}
    params["threads"] = int(threads)
    with io.atomic_path(paths.resolve(out)) as tmp:
        tmp.write_text(yaml.safe_dump({k: v for k, v in params.items() if not k.startswith("_")}, sort_keys=False))
    return load_training_params(out)


def _device(params: dict) -> str:
    device = params.get("device", "auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available() and not params.get("cluster"):
        raise ValueError("device cuda requested but CUDA is not available here")
    return device


def _dataset(params: dict) -> tuple[io.VOSDataset, list[str]]:
    """The training split's folder and its checked video list (generating a synthetic set if asked)."""
    data = params["data"]
    if not data.get("root"):
        raise io.DataError(Path(params["_path"]), "data.root is not set: fill in the dataset folder")
    root = paths.resolve(data["root"])
    synthetic_spec = data.get("synthetic")
    if synthetic_spec:
        from fvos_utils.data import synthetic

        changes = dict(synthetic_spec)
        preset, seed = changes.pop("preset", "mini-mose"), changes.pop("seed", 0)
        if preset not in synthetic.PRESETS:
            raise io.DataError(Path(params["_path"]), f"data.synthetic.preset {preset!r} is not one of "
                                                      f"{', '.join(synthetic.PRESETS)}")
        synthetic.ensure(root, seed=seed, config=dataclasses.replace(synthetic.PRESETS[preset], **changes))
    dataset = io.VOSDataset(root, data.get("split", "train"),
                            videos=io.read_list_file(paths.resolve(data["videos"])) if data.get("videos") else None)
    return dataset, dataset.video_names()


def check_training_videos(dataset: io.VOSDataset, names: Sequence[str], *, num_frames: int) -> None:
    """Every video has frames and at least ``num_frames`` annotated ones (the trainer samples that
    many consecutive annotated frames per clip); else a DataError naming the first bad folder."""
    if not names:
        raise io.DataError(dataset.image_dir, "no training videos")
    if not dataset.annotation_dir.is_dir():
        raise io.DataError(dataset.annotation_dir, "annotation folder not found (training needs ground truth)")
    for name in names:
        video = dataset.video(name)
        if not video.annotations:
            raise io.DataError(dataset.annotation_dir / name, "no annotations for this video (training needs "
                                                              "ground truth on every frame it samples)")
        if len(video.annotations) < num_frames:
            raise io.DataError(dataset.annotation_dir / name,
                               f"{len(video.annotations)} annotated frames, fewer than num_frames={num_frames} "
                               "(drop the video from the list, or lower num_frames)")


def _stage_init(params: dict, stage: int) -> Path | None:
    """The weights a stage starts from: stage 1 ``init`` (``random``, a path, or ``registry`` (or null): the model's
    registry checkpoint); stage 2 ``init`` (``best``: the recorded best stage-1 epoch, an epoch number
    of stage 1, or a path)."""
    spec = get_spec(params["model"])
    init = params.get(f"stage{stage}", {}).get("init", RANDOM if stage == 1 else "best")
    if stage == 1:
        return _loadable(resolve_checkpoint(spec, init))
    if init == "best":
        record = best_epoch_file(params["run"], 1)
        if not record.is_file():
            raise io.DataError(record, "no best stage-1 epoch recorded yet: run epoch selection on stage 1 "
                                       "(notebook 03 / fvos_utils.studies.epoch_selection), or set stage2.init to an epoch number")
        init = int(io.read_json(record)["epoch"])
    if isinstance(init, int) and not isinstance(init, bool):
        path = weights_path(stage_dir(params["run"], 1), init)
        if not path.is_file():
            have = sorted(epoch_weights(stage_dir(params["run"], 1)))
            raise io.DataError(path, f"stage-1 epoch {init} has no weights (epochs present: {have or 'none'})")
        return path
    return _loadable(resolve_checkpoint(spec, init))


def _loadable(checkpoint: Path | None) -> Path | None:
    """A stage's starting checkpoint, refused here when it is no PyTorch file (every ``torch.save`` since 1.6
    writes a zip): Meta's trainer would fail on it only after the stage's folder is made."""
    if checkpoint is not None and not zipfile.is_zipfile(checkpoint):
        raise io.DataError(checkpoint, "not a readable PyTorch checkpoint (torch.save's zip format)")
    return checkpoint


def _overrides(params: dict, stage: int, *, folder: Path, init: Path | None, image_dir: Path, gt_dir: Path,
               list_file: Path, device: str) -> list[str]:
    """Hydra overrides: the params' values, then the per-run paths and device settings."""
    stage_params = params.get(f"stage{stage}", {})
    if "epochs" not in stage_params:
        raise io.DataError(Path(params["_path"]), f"stage{stage}.epochs is missing")
    scratch = {**params.get("scratch", {}), **stage_params.get("scratch", {}), "num_epochs": stage_params["epochs"]}
    out = [f"scratch.{key}={_hydra_value(value)}" for key, value in scratch.items()]
    cluster = params.get("cluster")
    on_cuda = device == "cuda"
    out += [
        f"dataset.img_folder={_hydra_value(str(image_dir))}",
        f"dataset.gt_folder={_hydra_value(str(gt_dir))}",
        f"dataset.file_list_txt={_hydra_value(str(list_file))}",
        f"launcher.experiment_log_dir={_hydra_value(str(folder))}",
        f"launcher.gpus_per_node={int(params.get('gpus', 1))}",
        f"launcher.num_nodes={int(params.get('nodes', 1))}",
        f"trainer.accelerator={device}",
        f"trainer.distributed.backend={'nccl' if on_cuda else 'gloo'}",
        f"trainer.optim.amp.enabled={str(on_cuda).lower()}",  # bf16 on CUDA; CPU autocast is not what Meta ran
        f"trainer.data.train.pin_memory={str(on_cuda).lower()}",
        f"trainer.seed_value={int(params.get('seed', 123))}",
        f"submitit.use_cluster={str(bool(cluster)).lower()}",
    ]
    for key, value in (cluster or {}).items():
        out.append(f"++submitit.{key}={_hydra_value(value)}")
    if init is None:
        out.append("trainer.checkpoint.model_weight_initializer=null")
    else:
        out.append("trainer.checkpoint.model_weight_initializer.state_dict.checkpoint_path="
                   f"{_hydra_value(str(init))}")
    return out + list(params.get("overrides", [])) + list(stage_params.get("overrides", []))


def _hydra_value(value) -> str:
    """A value as a hydra override literal (strings quoted, so paths with odd characters survive)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return repr(value)


def compose_recipe(recipe: str, overrides: Sequence[str] = ()):
    """The recipe ``fvos_utils/configs/training/<recipe>.yaml`` composed with ``overrides`` (unresolved).

    Searches the kit's configs and sam2's package (for the released models' configs) without touching
    the global hydra state that ``import sam2`` set up.
    """
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    if not (RECIPE_DIR / f"{recipe}.yaml").is_file():
        known = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
        raise io.DataError(RECIPE_DIR / f"{recipe}.yaml", f"no such training recipe (known: {', '.join(known)})")
    try:
        register_omegaconf_resolvers()
    except ValueError:  # already registered in this process
        pass
    had_sam2 = GlobalHydra.instance().is_initialized()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            cfg = compose(f"training/{recipe}", overrides=["hydra.searchpath=[pkg://sam2]", *overrides])
    finally:
        GlobalHydra.instance().clear()
        if had_sam2:
            initialize_config_module("sam2", version_base="1.2")
    OmegaConf.set_struct(cfg, False)
    cfg.pop("hydra", None)
    return cfg


def plan_stage(params: dict, stage: int) -> StagePlan:
    """Check everything a stage needs and compose its config (nothing is launched or written). Shown in chapter 02."""
    _check_stage(stage)
    if f"stage{stage}" not in params:
        raise io.DataError(Path(params["_path"]), f"no stage{stage} section")
    device = _device(params)
    init = _stage_init(params, stage)
    dataset, names = _dataset(params)
    num_frames = int({**params.get("scratch", {}), **params[f"stage{stage}"].get("scratch", {})}
                     .get("num_frames", 8))
    check_training_videos(dataset, names, num_frames=num_frames)
    folder = stage_dir(params["run"], stage)
    overrides = _overrides(params, stage, folder=folder, init=init, image_dir=dataset.image_dir,
                           gt_dir=dataset.annotation_dir, list_file=folder / "videos.txt", device=device)
    config = compose_recipe(params["recipe"], overrides)
    _check_sizes(Path(params["_path"]), config)
    return StagePlan(params["run"], stage, folder, config, init, names, int(params[f"stage{stage}"]["epochs"]),
                     device)


def _check_sizes(path: Path, config) -> None:
    """The training sizes must be multiples of the image encoder's stride 16 (its features' grid,
    ``scratch.feat_size``): else the trainer starts and fails in a traceback. Checked before it starts."""
    sizes = [config.scratch.resolution, *config.scratch.get("resolutions", [])]
    odd = next((size for size in sizes if int(size) % _ENCODER_STRIDE), None)
    if odd is not None:
        raise io.DataError(path, f"training size {odd} (scratch.resolution / resolutions) is not a multiple of the "
                                 f"image encoder's stride {_ENCODER_STRIDE}")


def resolved(config) -> dict:
    """A composed config as plain values, interpolations resolved (to show what a stage will run).
    Shown in chapter 02."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


def _write_plan(plan: StagePlan) -> None:
    """Write the stage's config and video list; a stage with a checkpoint must match what it ran."""
    from omegaconf import OmegaConf

    text = OmegaConf.to_yaml(plan.config)
    config_path = plan.folder / f"{_CONFIG_NAME}.yaml"
    if completed_epochs(plan.folder) and config_path.is_file() and config_path.read_text() != text:
        raise io.DataError(config_path, "this stage already trained with a different configuration; resuming "
                                        "would mix the two. Use a new run name, or train it again from the "
                                        "start (train --restart; the pipeline's --force)")
    with io.atomic_path(config_path) as tmp:
        tmp.write_text(text)
    io.write_list_file(plan.folder / "videos.txt", plan.videos)


# ------------------------------------------------------------------------------------------- launch
def train_stage(params: dict | str | os.PathLike, stage: int, *, threads: int | None = None,
                restart: bool = False, retry: bool = False, progress: bool = True) -> Path:
    """Run (or resume, or find finished) one stage; returns its folder. Shown in chapter 02.

    Args:
        params: a params dict (:func:`load_training_params`) or its file.
        threads: torch threads of the training process on CPU (default: the params' ``threads``, else 2).
        restart: delete what this stage (and, for stage 1, stage 2, which starts from it) trained before,
            then train from the start: for a stage that finished, or trained with another configuration.
        retry: submit again after the stage's cluster job failed inside (:class:`JobFailed`), once the
            cause is fixed; without it a failed job is shown, not resubmitted.

    A stage with ``export: PATH`` also writes its last epoch's weights there in fp16 (:func:`export_weights`).
    With ``cluster:`` set, this raises :class:`StageRunning` once the SLURM job is submitted; running it
    again while the job is pending or running says so and submits nothing; once the job has ended it finds
    the stage finished, or says how the job ended (cancelled, timed out, preempted) and submits a job that
    resumes from the last finished epoch, or shows a failed job's error (:class:`JobFailed`). A job that
    SLURM requeues (preemption, ``scontrol requeue``, submitit's own requeue before a time limit) resumes
    by itself from the last finished epoch; every resume is recorded in ``resumes.json``. One process
    trains a stage at a time: a second one (or a restart from another shell) is refused, naming the first
    (:mod:`fvos_utils.base.locks`).
    """
    params = load_training_params(params) if not isinstance(params, dict) else params
    if not (retry or restart):  # before the input checks: the job's own error says more than theirs
        _refuse_after_failed_job(paths.run_dir(params["run"]) / "train" / f"stage{stage}", params, stage)
    plan = plan_stage(params, stage)
    # one writer per stage (:mod:`fvos_utils.base.locks`); a restart also deletes the later stages: those too
    with contextlib.ExitStack() as held:
        for written in STAGES[STAGES.index(stage):] if restart else (stage,):
            held.enter_context(locks.exclusive(stage_dir(params["run"], written)))
        return _train_locked_stage(params, plan, threads=threads, restart=restart, retry=retry, progress=progress)


def _train_locked_stage(params: dict, plan: StagePlan, *, threads: int | None, restart: bool, retry: bool,
                        progress: bool) -> Path:
    """:func:`train_stage` once it holds the stage's lock."""
    stage = plan.stage
    if restart:
        for later in STAGES[STAGES.index(stage):]:
            io.remove_dir(stage_dir(params["run"], later))
        plan.folder.mkdir(parents=True)
    _write_plan(plan)  # refuses a configuration other than the one this stage already trained with
    done = completed_epochs(plan.folder)
    previous = _last_job(plan.folder)
    if previous is not None and previous["state"] in jobs.ALIVE_STATES:
        raise StageRunning(f"stage {stage} of run {plan.run!r} is {previous['state'].lower()} as "
                           f"{jobs.describe(previous)}; nothing was submitted again. Run this again once it has "
                           "ended")
    if previous is not None and done < plan.epochs:
        print(f"stage {stage} of run {plan.run!r}: {previous['executor']} job {previous['job_id']} "
              f"{_ENDED_WORDS.get(previous['state'], 'ended ' + previous['state'])} after epoch {done} of "
              f"{plan.epochs}; submitting a job that goes on from there")
    if done < plan.epochs:
        job = _run_trainer(plan, threads=int(threads or params.get("threads", 2)), done=done, progress=progress,
                           previous=previous)
        if job is not None:
            raise StageRunning(f"stage {stage} of run {plan.run!r} was submitted as {jobs.describe(job)}. Run this "
                               "again once it has ended: it goes on from the epochs the job completed")
    export = params[f"stage{stage}"].get("export")
    if export and completed_epochs(plan.folder) >= plan.epochs:  # a SLURM job may still be running
        export_weights(weights_path(plan.folder, plan.epochs), paths.resolve(export))
    return plan.folder


def _refuse_after_failed_job(folder: Path, params: dict, stage: int) -> None:
    """:class:`JobFailed` when the stage's last cluster job failed inside and left the stage unfinished."""
    job = _last_job(folder)
    if job is None or job["state"] not in _FAILED_STATES:
        return
    epochs = params.get(f"stage{stage}", {}).get("epochs")
    done = completed_epochs(folder)  # read only for a failed job: most calls have no job at all
    if epochs is not None and done >= epochs:
        return
    raise JobFailed(f"stage {stage} of run {params['run']!r}: {job['executor']} job {job['job_id']} "
                    f"{job['state']} after epoch {done} of {epochs}; nothing was submitted again. The end of its "
                    f"log ({_error_log(job)}):\n{_log_tail(_error_log(job))}\n"
                    "Fix the cause, then run again with --retry (train_stage(..., retry=True))")


def running_job(stage_folder: str | os.PathLike) -> dict | None:
    """The stage's submitted job (:data:`JOB_FILE`: ``{"job_id", "executor", "folder", "log"}`` and its
    ``state``) while it is pending or running; None when none was submitted or it has ended."""
    job = _last_job(Path(stage_folder))
    return job if job is not None and job["state"] in jobs.ALIVE_STATES else None


def _last_job(stage_folder: Path) -> dict | None:
    """The stage's last submitted job with its ``state`` now (:func:`fvos_utils.base.jobs.state`: PENDING,
    RUNNING, COMPLETED, CANCELLED, TIMEOUT, FAILED ...; a local job RUNNING or ENDED). None when no job was
    submitted."""
    path = stage_folder / JOB_FILE
    if not path.is_file():
        return None
    job = io.read_json(path)
    return {**job, "state": jobs.state(job)}


def _error_log(job: dict) -> str:
    """The job's error output (submitit's ``<id>_0_log.err`` beside its log), where a failure's traceback is;
    its log when there is none."""
    err = re.sub(r"\.out$", ".err", job["log"])
    return err if os.path.isfile(err) and os.path.getsize(err) else job["log"]


def _log_tail(log: str, lines: int = 15) -> str:
    """The last lines of a job's log, or why there are none."""
    try:
        with open(log, errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except OSError as err:
        return f"(no log to show: {err.strerror})"


def _run_trainer(plan: StagePlan, *, threads: int, done: int, progress: bool,
                 previous: dict | None = None) -> dict | None:
    """Meta's trainer in a subprocess, its output into ``train.log`` and a progress bar. Returns the job
    (also written to :data:`JOB_FILE`) when the launcher submitted one (``cluster:``), else None."""
    import submitit
    
    package_parent = str(paths.KIT_DIR)  # the subprocess imports this very kit
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    if previous is not None:  # for the resume record the trainer writes (a job inherits this environment)
        env[_PREVIOUS_JOB_ENV] = json.dumps({"job_id": previous["job_id"], "state": previous["state"]})
    submits = bool(plan.config.submitit.use_cluster)
    submit_log = plan.folder / "submit.log"
    if submits:
        env[_SUBMIT_LOG_ENV] = str(submit_log)
        submit_log.unlink(missing_ok=True)
        (plan.folder / JOB_FILE).unlink(missing_ok=True)
    command = [sys.executable, "-m", "fvos_utils", "train", "--launch", str(plan.folder)]
    tail: deque[str] = deque(maxlen=40)
    with open(plan.folder / "train.log", "a") as log, \
            progress_bar(total=plan.epochs, initial=done, desc=f"{plan.run} stage {plan.stage}", unit="epoch",
                 bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}{postfix}]",
                 show=progress) as bar:
        log.write(f"# {' '.join(command)}\n")
        # the trainer shares the stage's lock: should this process die first, the stage stays locked until the
        # trainer has ended too (start_child_group ends it), so a rerun never meets a trainer still writing
        lock = locks.held_descriptor(plan.folder)
        proc = start_child_group(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                 pass_fds=() if lock is None else (lock,))
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail.append(line)
                match = _EPOCH_LINE.search(line)
                if match:
                    epoch, step, iterations = (int(g) for g in match.groups())
                    bar.n = epoch + step / iterations
                    bar.set_postfix_str(f"iteration {step}/{iterations}", refresh=False)
                    bar.refresh()
        except BaseException:  # an interrupt or error here: the trainer must not go on writing the stage unlocked
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        code = proc.wait()
        bar.n = completed_epochs(plan.folder)
        bar.refresh()
    if submits and submit_log.is_file():
        text = submit_log.read_text()
        with open(plan.folder / "train.log", "a") as log:
            log.write(text)
        tail.extend(text.splitlines(keepends=True))
    if code != 0:
        raise RuntimeError(f"training stage {plan.stage} of {plan.run} failed (exit code {code}); the end of "
                           f"{plan.folder / 'train.log'}:\n{''.join(tail)}")
    found = _JOB_LINE.findall(submit_log.read_text()) if submits and submit_log.is_file() else []
    if not found:
        return None
    folder = plan.folder / "submitit_logs"
    job = {"job_id": found[-1], "executor": submitit.AutoExecutor.which(), "folder": str(folder),
           "log": str(folder / f"{found[-1]}_0_log.out")}
    io.write_json(plan.folder / JOB_FILE, job)
    return job


def start_child_group(command: Sequence[str], **popen_options) -> subprocess.Popen:
    """``subprocess.Popen(command)`` as the leader of its own process group, which ends with this process.

    The trainer writes the stage folder this process holds the lock of; once this process is gone (even
    by ``kill -9``, which runs no handler) the lock is free, so the trainer must end too: on Linux the kernel
    sends it SIGTERM when this process dies (``prctl(PR_SET_PDEATHSIG)``), and :func:`_launch` passes that
    on to the whole group (data loaders, per-GPU processes). Its own group also keeps a terminal's Ctrl-C
    to this process, which then ends the group itself (:func:`_run_trainer`).
    """
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        if sys.platform.startswith("linux"):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)

    return subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent, **popen_options)


def _end_group_on_sigterm() -> None:
    """In the trainer's process (its group's leader): SIGTERM ends every process of the group."""
    def end_group(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.killpg(0, signal.SIGTERM)  # this process too, by the default action restored above

    signal.signal(signal.SIGTERM, end_group)


def export_weights(weights: str | os.PathLike, out: str | os.PathLike, *, dtype: torch.dtype = torch.float16) -> Path:
    """Model-only weights ``{"model": state_dict}`` with floating tensors cast to ``dtype`` (fp16 halves
    the file; loading casts back to the model's fp32). Written atomically; returns ``out``."""
    weights, out = Path(weights), Path(out)
    state = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out) as tmp, open(tmp, "wb") as fh:  # through a file: no random name in the zip
        torch.save({"model": {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}}, fh)
    return out


def _launch(folder: Path) -> None:
    """Inside the training subprocess: Meta's ``training.train.main`` on the stage's config."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from training.train import main

    submit_log = os.environ.get(_SUBMIT_LOG_ENV)
    if submit_log:  # the job's controller inherits stdout and outlives this process: not the parent's pipe
        handle = open(submit_log, "a")
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    if os.getpgrp() == os.getpid():  # started by start_child_group: the group ends with its parent
        _end_group_on_sigterm()
    register_omegaconf_resolvers()
    GlobalHydra.instance().clear()
    on_cpu = yaml.safe_load((folder / f"{_CONFIG_NAME}.yaml").read_text())["trainer"]["accelerator"] == "cpu"
    with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.2"), \
            _jobs_without_gpus() if on_cpu else contextlib.nullcontext():
        main(argparse.Namespace(config=_CONFIG_NAME, use_cluster=None, partition=None, account=None, qos=None,
                                num_gpus=None, num_nodes=None))


@contextlib.contextmanager
def _jobs_without_gpus():
    """Meta's launcher asks SLURM for one GPU per process (``gpus_per_node`` = ``tasks_per_node``); a CPU
    stage (``device: cpu``) keeps its processes and asks for no GPU, which a CPU partition would refuse
    ("Invalid generic resource (gres) specification")."""
    import submitit

    update = submitit.AutoExecutor.update_parameters

    def without_gpus(self, **kwargs):
        kwargs.pop("gpus_per_node", None)
        return update(self, **kwargs)

    submitit.AutoExecutor.update_parameters = without_gpus
    try:
        yield
    finally:
        submitit.AutoExecutor.update_parameters = update


# ---------------------------------------------------------------------------------------- results
def loss_curve(stage_folder: str | os.PathLike, *,
               tag: str = "Step_Losses/Losses/train_all_loss") -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of a stage from the trainer's tensorboard log (every ``log_scalar_frequency``
    steps; a resumed run's later file wins for a step logged twice). Shown in chapter 02."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    folder = Path(stage_folder) / "tensorboard"
    if not folder.is_dir():
        raise io.DataError(folder, "no tensorboard log (has this stage run?)")
    values: dict[int, float] = {}
    for events in sorted(folder.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"tensors": 0})
        acc.Reload()
        if tag in acc.Tags()["tensors"]:  # current tensorboard stores scalars as tensors
            values.update({event.step: float(make_ndarray(event.tensor_proto)) for event in acc.Tensors(tag)})
    steps = sorted(values)
    return steps, [values[s] for s in steps]


def epoch_losses(stage_folder: str | os.PathLike, *, key: str = "Losses/train_all_loss") -> list[float]:
    """The mean training loss of each finished epoch of a stage, in order, from the trainer's
    ``logs/train_stats.json`` (one JSON object per epoch). Chapter 02 plots it over :func:`loss_curve`.
    Shown in chapter 02."""
    stats = Path(stage_folder) / "logs" / "train_stats.json"
    if not stats.is_file():
        raise io.DataError(stats, "no per-epoch training statistics (has this stage run?)")
    losses = []
    for number, line in enumerate(stats.read_text().splitlines(), 1):
        try:
            losses.append(float(json.loads(line)[key]))
        except (ValueError, KeyError, TypeError):
            raise io.DataError(stats, f"line {number} is not a JSON object with {key!r}") from None
    return losses


def loss_figure(curves: dict[int, tuple[Sequence[int], Sequence[float], Sequence[float]]], iters_per_epoch: int):
    """Chapter 02's loss curves: the stages one after the other along one iteration axis, each with the loss of
    its logged iterations (faint) and each epoch's mean (dots at the epoch's middle), and a dotted line where
    each later stage starts. Shown in chapter 02.

    Args:
        curves: ``{stage: (steps, losses, epoch means)}`` in stage order, from :func:`loss_curve` and
            :func:`epoch_losses`.
        iters_per_epoch: iterations in one epoch (where an epoch's mean is drawn, where a stage ends).
    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    offset = 0
    for number, (stage, (steps, losses, means)) in enumerate(curves.items()):
        if number:
            ax.axvline(offset, color="0.5", linewidth=0.8, linestyle=":")
            ax.annotate(f"stage {stage} starts", (offset, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", va="top", color="0.4")
        colour = f"C{number}"
        every = steps[1] - steps[0] if len(steps) > 1 else 1
        ax.plot([offset + step for step in steps], losses, color=colour, alpha=0.35, linewidth=0.8,
                label=f"stage {stage}, " + ("every iteration" if every == 1 else f"one iteration in {every}"))
        ax.plot([offset + (epoch + 0.5) * iters_per_epoch for epoch in range(len(means))], means, color=colour,
                marker="o", label=f"stage {stage}, epoch mean")
        offset += len(means) * iters_per_epoch
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    # below the axes: clear of the curves and of the stage labels
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def loss_caption(curves: dict[int, tuple[Sequence[int], Sequence[float], Sequence[float]]], *,
                 stage2_start: int | None = None) -> str:
    """The caption of :func:`loss_figure` for this run: each stage's epochs, and where stage 2 started.
    Shown in chapter 02."""
    parts = []
    for stage, (_, _, means) in curves.items():
        started = f", from stage-1 epoch {stage2_start}" if stage == 2 and stage2_start is not None else ""
        parts.append(f"stage {stage} ({len(means)} epoch{'s' if len(means) != 1 else ''}{started})")
    return (f"Training loss of {' then '.join(parts)}, from the trainer's own logs: each logged iteration (faint) "
            f"and each epoch's mean (dots); the loss is the mask focal loss x20 + dice + IoU + object score.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fvos train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", help="training params file (e.g. params/pretrain_fvos_tiny.yaml)")
    parser.add_argument("--stage", type=int, choices=STAGES, default=1,
                        help="1: fine-tune from stage1.init; 2: from the best stage-1 epoch (stage2.init)")
    parser.add_argument("--threads", type=int, help="torch threads on CPU (default: the params' threads, else 2)")
    parser.add_argument("--restart", action="store_true",
                        help="delete what this stage (and stage 2, for stage 1) trained before and start over")
    parser.add_argument("--retry", action="store_true",
                        help="submit again after the stage's cluster job failed inside, once the cause is fixed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.SUB=VALUE",
                        help="override one value of the params file (data.root=/scratch/MOSE, stage1.epochs=2; "
                             "VALUE in YAML, checked as the file's; repeatable)")
    parser.add_argument("--show", action="store_true", help="print the checked params (YAML) and train nothing")
    parser.add_argument("--launch", help=argparse.SUPPRESS)  # internal: the training subprocess
    args = parser.parse_args(argv)
    if args.launch:
        _launch(Path(args.launch))
        return 0
    if not args.params:
        parser.error("--params is required")
    # a command-line path is taken from the current folder (the library takes them from the kit's)
    params = Path(args.params).expanduser().resolve()
    try:
        params = load_training_params(params, args.overrides)
        if args.show:
            print(yaml.safe_dump({k: v for k, v in params.items() if k != "_path"}, sort_keys=False), end="")
            return 0
        folder = train_stage(params, args.stage, threads=args.threads, restart=args.restart, retry=args.retry)
    except (io.DataError, ValueError, DownloadError) as err:  # bad input: one line, no traceback
        parser.exit(2, f"error: {err}\n")
    except JobFailed as failed:  # the job's own error, shown; nothing submitted
        parser.exit(1, f"error: {failed}\n")
    except StageRunning as submitted:  # a cluster job: submitted, or still running
        print(submitted)
        return 0
    print(f"stage {args.stage} done: {folder}")
    return 0

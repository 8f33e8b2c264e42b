"""Training with Meta's trainer: real iterations on CPU, resume, the recipes, and errors before training.

The recipes are checked against Meta's own MOSE fine-tuning file (composed from the installed sam2
package): everything equal except the values each recipe documents as changed.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from fvos_utils.base import io, locks, paths
from fvos_utils.data import synthetic
from fvos_utils.data.testing import command_error, lock_holder
from fvos_utils.method import models, train

TINY_DATA = synthetic.SyntheticConfig(videos_train=2, videos_valid=1, frames=(4, 5), size=(96, 64), objects=(1, 2))


@pytest.fixture
def kit_root(tmp_path, monkeypatch) -> Path:
    """An empty kit folder: outputs/ and relative data paths land in tmp_path."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


#: the overrides of :func:`write_params`: losses logged every step, one pass over the videos per epoch
LOG_EVERY_STEP = ("trainer.logging.log_scalar_frequency=1", "trainer.logging.log_freq=1", "dataset.multiplier=1")


def write_params(folder: Path, **changes) -> Path:
    """A 2-video, 2-iterations-per-epoch params file for the small model (losses logged every step)."""
    params = {"run": "t", "model": "fvos_tiny", "recipe": "fvos_tiny_pretrain", "device": "cpu", "threads": 1,
              "data": {"root": "data/tiny", "split": "train", "videos": None,
                       "synthetic": {"preset": "mini-mose", "seed": 3, "videos_train": 2, "videos_valid": 1,
                                     "frames": [4, 5], "size": [96, 64], "objects": [1, 2]}},
              "scratch": {"resolution": 64, "num_frames": 3, "max_num_objects": 2},
              "stage1": {"init": "random", "epochs": 2, "export": "assets/tiny.pt"},
              "overrides": list(LOG_EVERY_STEP)}
    for key, value in changes.items():
        params[key] = value
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


# ------------------------------------------------------------------------------ real training on CPU
def _kill_during_epoch_2(params: Path, folder: Path) -> None:
    """``fvos train`` killed (``kill -9``, the parent alone: a hard interruption) once epoch 1
    is saved; returns once its trainer has ended too (the stage's lock is free)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fvos_utils", "train", "--params", str(params), "--stage", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (folder / "checkpoints" / "checkpoint.pt").is_file():  # appears complete (written, then renamed)
        assert proc.poll() is None, "training ended before its first epoch was saved"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.2)
    proc.kill()  # its trainer ends with it (its own process group, signalled when the parent dies)
    proc.wait()
    while True:  # the trainer shares the stage's lock: free once it has ended
        try:
            with locks.exclusive(folder):
                return
        except locks.OutputInUse:
            assert time.time() < deadline, "the trainer outlived its parent"
            time.sleep(0.2)


def test_iterations_checkpoints_resume_and_loss_curve(kit_root):
    """Two epochs of two iterations, killed after the first epoch and resumed (~15 s in all)."""
    params = write_params(kit_root)
    folder = kit_root / "outputs" / "t" / "train" / "stage1"
    _kill_during_epoch_2(params, folder)
    assert train.completed_epochs(folder) == 1  # killed inside epoch 2 (polled every 0.2 s; an epoch takes > 1 s)
    assert sorted(train.epoch_weights(folder)) == [1]
    first_epoch = (folder / "weights" / "epoch_001.pt").read_bytes()
    train.train_stage(params, 1, progress=False)
    assert "Resuming training from" in (folder / "train.log").read_text()
    assert (folder / "weights" / "epoch_001.pt").read_bytes() == first_epoch  # epoch 1 was not redone
    assert train.completed_epochs(folder) == 2
    assert sorted(train.epoch_weights(folder)) == [1, 2]
    # one line per epoch in the trainer's own stats: epochs 0 and 1, none repeated after the resume
    stats = [json.loads(line) for line in (folder / "logs" / "train_stats.json").read_text().splitlines()]
    assert [s["Trainer/epoch"] for s in stats] == [0, 1]
    # model-only weights load into the inference engine's predictor and carry the trained values
    predictor = models.build_predictor("fvos_tiny", folder / "weights" / "epoch_002.pt", device="cpu")
    full = torch.load(folder / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert full["epoch"] == 2 and "optimizer" in full
    for name, value in predictor.state_dict().items():
        assert torch.equal(value, full["model"][name]), name
    random_init = models.build_predictor("fvos_tiny", "random", device="cpu", seed=0)
    assert not torch.equal(random_init.state_dict()["obj_ptr_proj.layers.0.weight"],
                           predictor.state_dict()["obj_ptr_proj.layers.0.weight"])
    # the last epoch exported in fp16: half the size, the same values to fp16 precision, loadable
    exported = torch.load(kit_root / "assets" / "tiny.pt", weights_only=True)["model"]
    assert exported.keys() == full["model"].keys()
    for name, value in full["model"].items():
        if value.is_floating_point():
            assert exported[name].dtype == torch.float16
            torch.testing.assert_close(exported[name].float(), value, rtol=1e-3, atol=1e-4)
    models.build_predictor("fvos_tiny", kit_root / "assets" / "tiny.pt", device="cpu")
    # the loss curve (tensorboard, every step) averages to the trainer's per-epoch loss
    steps, losses = train.loss_curve(folder)
    assert steps == [0, 1, 2, 3]
    for epoch, stat in enumerate(stats):
        mean = sum(losses[2 * epoch: 2 * epoch + 2]) / 2
        assert mean == pytest.approx(stat["Losses/train_all_loss"], rel=1e-5)
    # a finished stage is found finished; a changed recipe is refused rather than mixed in
    assert train.train_stage(params, 1, progress=False) == folder
    changed = write_params(kit_root, stage1={"init": "random", "epochs": 2, "scratch": {"base_lr": 1.0e-3}})
    with pytest.raises(io.DataError, match="different configuration"):
        train.train_stage(changed, 1, progress=False)
    # restarting trains the changed recipe from the start, and drops stage 2 (it started from stage 1)
    stage2 = train.stage_dir("t", 2)
    (stage2 / "weights").mkdir()
    assert train.train_stage(changed, 1, restart=True, progress=False) == folder
    assert not stage2.exists()
    assert "Resuming" not in (folder / "train.log").read_text()
    assert train.completed_epochs(folder) == 2 and sorted(train.epoch_weights(folder)) == [1, 2]
    assert (folder / "weights" / "epoch_001.pt").read_bytes() != first_epoch  # trained again, at the new rate
    assert train.train_stage(changed, 1, progress=False) == folder  # the stored config is now the changed one
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # nothing left aside


def test_a_resumed_stage_equals_an_uninterrupted_one_bit_for_bit(kit_root, monkeypatch):
    """Killed during epoch 2 and resumed, epochs 2-3 differed from an uninterrupted run (by up to 1.25e-3 in a
    weight) while two uninterrupted runs were bit-identical: the trainer's random state was not saved."""
    params = write_params(kit_root, stage1={"init": "random", "epochs": 3})
    folder = kit_root / "outputs" / "t" / "train" / "stage1"
    _kill_during_epoch_2(params, folder)
    train.train_stage(params, 1, progress=False)
    resumes = json.loads((folder / train.RESUMES_FILE).read_text())
    assert [r["after_epoch"] for r in resumes] == [1]  # the record says where the stage was resumed
    other = kit_root / "uninterrupted"
    other.mkdir()
    monkeypatch.setenv(paths.ROOT_ENV, str(other))
    whole = train.train_stage(write_params(other, stage1={"init": "random", "epochs": 3}), 1, progress=False)
    assert not (whole / train.RESUMES_FILE).exists()
    for epoch in (1, 2, 3):
        resumed = torch.load(train.weights_path(folder, epoch), weights_only=True)["model"]
        uninterrupted = torch.load(train.weights_path(whole, epoch), weights_only=True)["model"]
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), f"epoch {epoch} differs"


def test_batches_of_two_clips_at_several_sizes_train(kit_root):
    """Two clips per iteration, each with its own draw of three sizes (the resize's ``clips_per_draw: 1``;
    the recipe draws once per batch): every batch is brought to one size (Meta's collate alone fails on a
    batch of two sizes, as the trainer's seed draws here)."""
    scratch = {"resolution": 64, "resolutions": [64, 96, 128], "num_frames": 3, "max_num_objects": 2,
               "train_batch_size": 2}
    overrides = [*LOG_EVERY_STEP, f"{RESIZE_PATHS[0]}.2.clips_per_draw=1"]
    params = write_params(kit_root, scratch=scratch, stage1={"init": "random", "epochs": 3}, overrides=overrides)
    folder = train.train_stage(params, 1, progress=False)
    log = (folder / "train.log").read_text()
    assert re.findall(r"Train Epoch: \[(\d)\]\[\s*0/(\d+)\]", log) == [("0", "1"), ("1", "1"), ("2", "1")]
    assert sorted(train.epoch_weights(folder)) == [1, 2, 3]


def _path_without(program: str, folder: Path) -> str:
    """$PATH with ``program`` gone: each folder holding it replaced by one of links to everything else."""
    entries = []
    for number, entry in enumerate(os.environ["PATH"].split(os.pathsep)):
        if entry and os.path.exists(os.path.join(entry, program)):
            shadow = folder / str(number)
            shadow.mkdir(parents=True)
            for name in os.listdir(entry):
                if name != program:
                    (shadow / name).symlink_to(os.path.join(entry, name))
            entry = str(shadow)
        entries.append(entry)
    return os.pathsep.join(entries)


@pytest.mark.slow
def test_a_cluster_stage_is_a_real_submitit_job_submitted_once_then_scored(kit_root, monkeypatch):
    """cluster: set, on a machine without SLURM (or with srun hidden): submitit's local executor runs the same
    job (~30 s). The job is recorded, a second call while it runs submits nothing, and once it has ended the
    stage is finished and its weights score as chapter 02 scores them."""
    import submitit

    from fvos_utils.studies import epoch_selection

    monkeypatch.setenv("PATH", _path_without("srun", kit_root / "path"))  # as on a machine without SLURM
    assert submitit.AutoExecutor.which() == "local"  # no srun: the job runs as a local process
    params = write_params(kit_root, cluster={"timeout_hour": 1})
    folder = train.stage_dir("t", 1)
    with pytest.raises(train.StageRunning, match=r"was submitted as local job (\d+) \(follow it: tail -f "):
        train.train_stage(params, 1, progress=False)
    job = io.read_json(folder / train.JOB_FILE)
    assert job["executor"] == "local" and job["log"] == str(folder / "submitit_logs" / f"{job['job_id']}_0_log.out")
    with pytest.raises(train.StageRunning, match=rf"is running as local job {job['job_id']} .*nothing was "
                                                 "submitted again"):
        train.train_stage(params, 1, progress=False)
    assert len(list((folder / "submitit_logs").glob("*_submitted.pkl"))) == 1
    deadline = time.time() + 300
    while train.running_job(folder) is not None:
        assert time.time() < deadline, "the local job did not end within 300 s"
        time.sleep(0.5)
    assert train.completed_epochs(folder) == 2 and "Train Epoch: [1]" in Path(job["log"]).read_text()
    assert train.train_stage(params, 1, progress=False) == folder  # finished: nothing submitted, on to scoring
    assert len(list((folder / "submitit_logs").glob("*_submitted.pkl"))) == 1
    data = kit_root / "data" / "tiny"
    scores = epoch_selection.score_epochs(folder, data_root=data, gt_dir=data / "valid_gt" / "Annotations",
                                    out_dir=kit_root / "scored", progress=False)
    assert [s["epoch"] for s in scores] == [1, 2] and all(0.0 <= s["J&F"] <= 1.0 for s in scores)


@pytest.mark.slow
def test_the_sam21_tiny_recipe_trains_on_two_gloo_processes_as_on_one(kit_root, tmp_path):
    """Meta's MOSE recipe on the released SAM 2.1-T architecture, the paper's stage-1 settings (8 frames,
    3 objects, its learning rates) at 128 px, one epoch of a one-object 8-frame clip through the trainer's
    launcher: once with one process, once with two (gloo, as the paper trained on 2 GPUs). Rank 0 of the
    two seeds, samples and augments as the single process does, and Meta's loss divides by the object
    count averaged over the ranks (1 on both), so their first loss is the same number; the step averages
    both ranks' gradients (rank 1 augments differently), so the weights differ from the single process's.
    The epoch's weights then run through ``infer``'s command line (~40 s in all)."""
    from fvos_utils.method import infer

    one_clip = {"preset": "mini-mose", "seed": 5, "videos_train": 1, "videos_valid": 1, "frames": [8, 8],
                "size": [128, 96], "objects": [1, 1], "videos_test": 0}
    stage1 = {"init": "random", "epochs": 1, "scratch": {"base_lr": 5.0e-6, "vision_lr": 3.0e-6}}
    runs = {}
    for gpus in (1, 2):
        params = write_params(kit_root, run=f"t{gpus}", model="sam2.1_hiera_tiny", recipe="sam2.1_hiera_t",
                              gpus=gpus, data={"root": "data/one", "split": "train", "videos": None,
                                               "synthetic": one_clip},
                              scratch={"resolution": 128, "num_frames": 8, "max_num_objects": 3,
                                       "num_train_workers": 0},
                              stage1=stage1)
        runs[gpus] = train.train_stage(params, 1, threads=1, progress=False)
        assert train.completed_epochs(runs[gpus]) == 1
    log = (runs[2] / "train.log").read_text()
    assert re.search(r"^WORLD_SIZE=2$", log, re.M) and "MACHINE SEED: 123\n" in log  # rank 0's: (123 + 0) x 1 epoch
    steps = {gpus: train.loss_curve(folder) for gpus, folder in runs.items()}
    assert steps[1][0] == steps[2][0] == [0]
    assert steps[2][1][0] == pytest.approx(steps[1][1][0], rel=1e-5)
    single, double = (torch.load(train.weights_path(folder, 1), weights_only=True)["model"] for folder in runs.values())
    assert single.keys() == double.keys()
    assert any(not torch.equal(single[k], double[k]) for k in single)  # rank 1's gradient was averaged in
    out = tmp_path / "pred"
    summary = infer.main(["--data-root", str(kit_root / "data" / "one"), "--model", "sam2.1_hiera_tiny",
                          "--ckpt", str(train.weights_path(runs[2], 1)), "--scale", "0.25", "--out", str(out),
                          "--threads", "2", "--no-progress"])
    assert summary["total"]["done"] == 1
    video = next(p for p in out.iterdir() if p.is_dir())
    assert len(list(video.glob("*.png"))) == len(list((kit_root / "data" / "one" / "valid" / "JPEGImages" / video.name).iterdir()))


# ----------------------------------------------------------------------------------------- recipes
def _meta_mose_recipe():
    """Meta's sam2.1_hiera_b+_MOSE_finetune.yaml, composed from the installed sam2 package."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("sam2", version_base="1.2"):
            return compose("configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune")
    finally:
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")


def _plain(cfg) -> dict:
    OmegaConf.set_struct(cfg, False)
    cfg.launcher.experiment_log_dir = "/log"
    return OmegaConf.to_container(cfg, resolve=True)


def _paths_of(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths_of(value, prefix + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _paths_of(value, prefix + (i,))
    else:
        yield prefix, tree


def _differences(mine: dict, meta: dict) -> dict:
    a, b = dict(_paths_of(mine)), dict(_paths_of(meta))
    return {".".join(map(str, k)): (a.get(k, "<absent>"), b.get(k, "<absent>"))
            for k in sorted(set(a) | set(b), key=str) if a.get(k, "<absent>") != b.get(k, "<absent>")}


#: where the recipe's train transforms appear in a composed config (the dataset's copy interpolates vos.*)
RESIZE_PATHS = ("vos.train_transforms.0.transforms", "trainer.data.train.datasets.0.dataset.datasets.0.transforms.0.transforms")


def test_base_plus_recipe_is_metas_mose_recipe_except_documented_changes():
    mine = _plain(train.compose_recipe("sam2.1_hiera_b+"))
    meta = _plain(_meta_mose_recipe())
    assert _differences(mine, meta) == {
        "trainer._target_": ("fvos_utils.method.train.KitTrainer", "training.trainer.Trainer"),
        "dataset.file_list_txt": (None, "training/assets/MOSE_sample_train_list.txt"),
        "trainer.data.train.datasets.0.dataset.datasets.0.video_dataset.file_list_txt":
            (None, "training/assets/MOSE_sample_train_list.txt"),
        "trainer.checkpoint.model_weight_initializer.state_dict.checkpoint_path":
            (None, "./checkpoints/sam2.1_hiera_base_plus.pt"),
        "trainer.logging.log_scalar_frequency": (10, "<absent>"),
        "scratch.feat_size": (64, "<absent>"),
        "scratch.affine_degrees": (25, "<absent>"),  # Meta's values, as keys a recipe can turn down
        "scratch.affine_shear": (20, "<absent>"),
        "trainer.model.compile_image_encoder": (False, "<absent>"),  # in sam2's inference config, False
        # each batch at its own size: the resize step draws from a list (Meta's: the one resolution)
        "trainer.model._target_": ("fvos_utils.method.train.MultiResolutionSAM2Train", "training.model.sam2.SAM2Train"),
        "scratch.resolutions.0": (1024, "<absent>"),
        # a batch of clips drawn at several sizes is brought to one size first (Meta's collate otherwise)
        "trainer.data.train.collate_fn._target_": ("fvos_utils.method.train.collate_one_size",
                                                   "training.utils.data_utils.collate_fn"),
        **{f"{transforms}.2.sizes": ("<absent>", 1024) for transforms in RESIZE_PATHS},
        **{f"{transforms}.2.sizes.0": (1024, "<absent>") for transforms in RESIZE_PATHS},
        # the resize draws one size per batch, the same on every rank (Meta's class with one size)
        **{f"{transforms}.2._target_": ("fvos_utils.method.train.RankAlignedRandomResize",
                                        "training.dataset.transforms.RandomResizeAPI") for transforms in RESIZE_PATHS},
        **{f"{transforms}.2.seed": (123, "<absent>") for transforms in RESIZE_PATHS},
        **{f"{transforms}.2.clips_per_draw": (1, "<absent>") for transforms in RESIZE_PATHS},
    }


@pytest.mark.parametrize("recipe, trunk_width, stages", [
    ("sam2.1_hiera_l", 144, [2, 6, 36, 4]),
    ("sam2.1_hiera_s", 96, [1, 2, 11, 2]),
    ("sam2.1_hiera_t", 96, [1, 2, 7, 2]),
])
def test_other_sam21_recipes_differ_from_base_plus_only_in_the_model(recipe, trunk_width, stages):
    """Each model's recipe = the base+ recipe with that model's inference config (sam2's own file)."""
    mine = _plain(train.compose_recipe(recipe))
    base = _plain(train.compose_recipe("sam2.1_hiera_b+"))
    outside_model = {k for k in _differences(mine, base) if not k.startswith("trainer.model.")}
    assert outside_model == set()
    trunk = mine["trainer"]["model"]["image_encoder"]["trunk"]
    assert (trunk["embed_dim"], trunk["stages"]) == (trunk_width, stages)
    import sam2

    released = yaml.safe_load((Path(sam2.__file__).parent / "configs" / "sam2.1" / f"{recipe}.yaml").read_text())
    assert mine["trainer"]["model"]["memory_attention"]["num_layers"] == released["model"]["memory_attention"]["num_layers"]
    assert mine["trainer"]["model"]["image_encoder"]["neck"]["backbone_channel_list"] == \
        released["model"]["image_encoder"]["neck"]["backbone_channel_list"]


def test_small_model_recipe_composes_the_kits_model_config():
    cfg = _plain(train.compose_recipe("fvos_tiny_pretrain"))
    kit_model = OmegaConf.to_container(OmegaConf.load(models.CONFIG_DIR / "fvos_tiny.yaml"))["model"]
    trained = cfg["trainer"]["model"]
    for key in ("memory_encoder", "num_maskmem", "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc"):
        assert trained[key] == kit_model[key]
    assert trained["image_encoder"]["trunk"]["embed_dim"] == kit_model["image_encoder"]["trunk"]["embed_dim"]
    assert trained["_target_"] == "fvos_utils.method.train.MultiResolutionSAM2Train"
    assert trained["prob_to_use_pt_input_for_train"] == 0.0
    assert cfg["scratch"]["resolution"] == 256 and cfg["scratch"]["feat_size"] == 16


def _seeded_forward(model, batch, seed: int = 0):
    """SAM2Train's forward draws its conditioning frames at random (its own generator, ``model.rng``):
    the same draws for every model."""
    import numpy as np

    model.rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    return model(batch)


def test_multi_resolution_model_equals_the_model_built_at_each_size(tmp_path):
    """One model over several sizes: resized per batch, it gives what SAM 2 built at that size gives."""
    from hydra.utils import instantiate
    from training.utils.data_utils import BatchedVideoDatapoint

    def built(size: int):
        cfg = train.compose_recipe("fvos_tiny_pretrain", [f"scratch.resolution={size}"])
        OmegaConf.resolve(cfg)
        return instantiate(cfg.trainer.model, _convert_="all")

    multi = built(64)
    assert isinstance(multi, train.MultiResolutionSAM2Train)
    generator = torch.Generator().manual_seed(0)
    for size in (96, 64, 128):  # back to the built size on the way: the attributes follow every batch
        reference = built(size)
        reference.load_state_dict(multi.state_dict())
        frames, objects = 3, 2
        masks = torch.zeros(frames, objects, size, size, dtype=torch.bool)
        masks[:, 0, size // 4: size // 2, size // 4: size // 2] = True
        masks[:, 1, size // 2:, size // 2:] = True
        batch = BatchedVideoDatapoint(
            img_batch=torch.randn(frames, 1, 3, size, size, generator=generator),
            obj_to_frame_idx=torch.tensor([[[t, 0] for t in range(objects)] for _ in range(frames)], dtype=torch.int),
            masks=masks, metadata=None, dict_key="all", batch_size=[frames])
        ours = _seeded_forward(multi, batch)
        theirs = _seeded_forward(reference, batch)
        assert multi.image_size == size and multi.sam_prompt_encoder.mask_input_size == (size // 4, size // 4)
        for a, b in zip(ours, theirs):
            for x, y in zip(a["multistep_pred_multimasks_high_res"], b["multistep_pred_multimasks_high_res"]):
                assert x.shape[-1] == size
                torch.testing.assert_close(x, y)
    with pytest.raises(ValueError, match="multiple of the backbone stride"):
        multi.set_image_size(100)


def _clip(video_id: int, size: int, seed: int, *, flat: bool = False):
    """A 2-frame ``VideoDatapoint`` of ``size`` px with two objects (random masks); its frames are random, or
    with ``flat`` one random colour each. Also returns the labels ``(2, size, size)`` the masks come from."""
    from training.utils.data_utils import Frame, Object, VideoDatapoint

    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (2, size, size), generator=generator)
    frames = []
    for t in range(2):
        image = (torch.randn(3, 1, 1, generator=generator).expand(3, size, size).clone() if flat
                 else torch.randn(3, size, size, generator=generator))
        frames.append(Frame(data=image, objects=[Object(object_id=k, frame_index=t, segment=labels[t] == k)
                                                 for k in (1, 2)]))
    return VideoDatapoint(frames=frames, video_id=video_id, size=(48, 64)), labels


def test_one_size_collate_is_metas_for_one_size_and_brings_later_clips_to_the_first_size():
    from training.utils.data_utils import collate_fn

    ours = train.collate_one_size([_clip(0, 64, seed=0)[0], _clip(1, 64, seed=1)[0]], "all")
    metas = collate_fn([_clip(0, 64, seed=0)[0], _clip(1, 64, seed=1)[0]], "all")
    for field in ("img_batch", "obj_to_frame_idx", "masks"):
        assert torch.equal(getattr(ours, field), getattr(metas, field))
    # the second clip at half the first's size: each mask pixel becomes a 2 x 2 square, a flat frame stays flat
    first, _ = _clip(0, 64, seed=2)
    second, labels = _clip(1, 32, seed=3, flat=True)
    colours = [frame.data[:, 0, 0].clone() for frame in second.frames]
    batch = train.collate_one_size([first, second], "all")
    assert batch.img_batch.shape == (2, 2, 3, 64, 64) and batch.masks.shape == (2, 4, 64, 64)
    assert batch.masks.dtype == torch.bool
    doubled = labels.repeat_interleave(2, -1).repeat_interleave(2, -2)
    for t in range(2):
        torch.testing.assert_close(batch.img_batch[t, 1], colours[t][:, None, None].expand(3, 64, 64))
        assert torch.equal(batch.masks[t, 2], doubled[t] == 1) and torch.equal(batch.masks[t, 3], doubled[t] == 2)
        assert torch.equal(batch.img_batch[t, 0], first.frames[t].data)  # the first clip is left as it was


def _sizes_drawn(resize, clips: int) -> list[int]:
    return [resize(_clip(0, 32, seed=n)[0]).frames[0].data.shape[-1] for n in range(clips)]


def test_rank_aligned_resize_draws_one_size_per_batch_the_same_on_every_rank(monkeypatch):
    """Two ranks seed Python's ``random`` differently (Meta's ``set_seeds``: seed + rank), as two processes
    of the trainer do: Meta's resize then gives the ranks different sizes at the same step, the kit's the
    same sizes, one per batch of ``clips_per_draw`` clips, uniform over the sizes, and its own sequence
    per loader worker. With one size it is Meta's class, random state included."""
    import random

    from training.dataset.transforms import RandomResizeAPI

    sizes = [32, 48, 64, 80]
    ranks = {}
    for rank in (0, 1):
        random.seed((123 + rank) * 10)
        metas = _sizes_drawn(RandomResizeAPI(sizes, consistent_transform=True, square=True), 40)
        ours = _sizes_drawn(train.RankAlignedRandomResize(sizes, True, seed=123, clips_per_draw=2, square=True), 400)
        ranks[rank] = metas, ours
    assert ranks[0][0] != ranks[1][0]  # Meta's: each rank its own size at a step
    assert ranks[0][1] == ranks[1][1]
    ours = ranks[0][1]
    assert ours[0::2] == ours[1::2]  # one size per batch of two clips
    counts = [ours[0::2].count(s) for s in sizes]
    assert min(counts) >= 30 and sum(counts) == 200  # 200 draws, 50 expected per size
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("Info", (), {"id": 1})())
    worker_1 = _sizes_drawn(train.RankAlignedRandomResize(sizes, True, seed=123, clips_per_draw=2, square=True), 40)
    assert worker_1 != ours[:40]
    monkeypatch.undo()
    # one size: Meta's call, and the random state after it is the one Meta's leaves
    random.seed(7)
    metas = RandomResizeAPI([48], consistent_transform=True, square=True)(_clip(0, 32, seed=1)[0])
    after_metas = random.getstate()
    random.seed(7)
    ours = train.RankAlignedRandomResize([48], True, seed=123, square=True)(_clip(0, 32, seed=1)[0])
    assert random.getstate() == after_metas
    for a, b in zip(metas.frames, ours.frames):
        assert torch.equal(a.data, b.data) and all(torch.equal(x.segment, y.segment) for x, y in zip(a.objects, b.objects))
    with pytest.raises(ValueError, match="consistent_transform"):
        train.RankAlignedRandomResize(sizes, False, seed=1)


def test_pretrain_schedule_warms_up_then_decays_to_a_twentieth():
    from hydra.utils import instantiate

    cfg = train.compose_recipe("fvos_tiny_pretrain", ["scratch.base_lr=0.4"])
    scheduler = instantiate(cfg.trainer.optim.options.lr[0].scheduler)
    assert scheduler(0.0) == pytest.approx(0.004)
    assert scheduler(0.04) == pytest.approx(0.4)
    assert scheduler(0.52) == pytest.approx((0.4 + 0.02) / 2)  # cosine midpoint
    assert scheduler(0.999999) == pytest.approx(0.02, rel=1e-3)


# ------------------------------------------------------------------------------ errors before training
def test_plan_writes_nothing_and_quotes_odd_paths(kit_root):
    odd = kit_root / "my data's set"
    synthetic.generate(odd, seed=3, config=TINY_DATA, progress=False)
    params = train.load_training_params(write_params(kit_root, data={"root": str(odd), "split": "train"}))
    plan = train.plan_stage(params, 1)
    resolved = _plain(plan.config)
    assert resolved["dataset"]["img_folder"] == str(odd / "train" / "JPEGImages")
    assert resolved["trainer"]["accelerator"] == "cpu" and resolved["trainer"]["distributed"]["backend"] == "gloo"
    assert resolved["trainer"]["optim"]["amp"]["enabled"] is False
    assert resolved["trainer"]["checkpoint"]["model_weight_initializer"] is None  # random init
    assert plan.videos == ["syn_train_0000", "syn_train_0001"]
    assert not (plan.folder / "trainer_config.yaml").exists()


@pytest.mark.parametrize("restart", [False, True])
def test_a_second_train_of_a_running_stage_is_refused_and_deletes_nothing(kit_root, restart):
    """Two ``train --stage 1`` of one run (or a ``--restart`` from a second shell) while the first trains:
    the second is one line naming the stage and the first, and the stage's files stay as they are."""
    synthetic.generate(kit_root / "data" / "tiny", seed=3, config=TINY_DATA, progress=False)
    params = write_params(kit_root)
    folder = train.stage_dir("t", 1)
    (folder / "train.log").write_text("the first run's\n")
    with lock_holder(folder) as holder:
        error = command_error(train.main, ["--params", str(params), "--stage", "1"] + ["--restart"] * restart)
    assert error.startswith(f"error: {folder}: in use by another writer: pid {holder.pid} ")
    assert sorted(p.name for p in folder.iterdir()) == ["train.log"]
    assert (folder / "train.log").read_text() == "the first run's\n"


@pytest.mark.parametrize("scratch", [{"resolution": 100, "num_frames": 3}, {"resolution": 64, "num_frames": 3,
                                                                           "resolutions": [64, 72]}])
def test_a_training_size_off_the_encoder_stride_is_refused_before_training(kit_root, scratch):
    """``resolution: 100`` started the trainer, which failed in a traceback."""
    params = write_params(kit_root, scratch=scratch)
    odd = 100 if scratch["resolution"] == 100 else 72
    with pytest.raises(io.DataError, match=f"^{params}: training size {odd} .* not a multiple of the image "
                                           "encoder's stride 16$"):
        train.train_stage(params, 1, progress=False)
    assert not (kit_root / "outputs" / "t" / "train" / "stage1" / "train.log").exists()


def test_missing_checkpoint_is_an_error_naming_it(kit_root):
    params = write_params(kit_root, stage1={"init": "nowhere/model.pt", "epochs": 1})
    with pytest.raises(io.DataError, match=r"nowhere/model\.pt.*checkpoint file not found"):
        train.train_stage(params, 1, progress=False)


def test_command_line_params_path_is_taken_from_the_current_folder(kit_root, monkeypatch, capsys):
    """``--params params.yaml`` in another folder than the kit's: that folder's file is read (it stops
    at its missing checkpoint, before training, in one line)."""
    here = kit_root / "elsewhere"
    here.mkdir()
    write_params(here, stage1={"init": "nowhere/model.pt", "epochs": 1})
    monkeypatch.chdir(here)
    with pytest.raises(SystemExit) as stop:
        train.main(["--params", "params.yaml"])
    assert stop.value.code == 2
    assert re.fullmatch(r"error: .*nowhere/model\.pt: checkpoint file not found\n", capsys.readouterr().err)


def test_dataset_without_annotations_is_an_error(kit_root):
    root = synthetic.generate(kit_root / "data" / "tiny", seed=3, config=TINY_DATA, progress=False)
    for png in (root / "train" / "Annotations" / "syn_train_0001").iterdir():
        png.unlink()
    params = write_params(kit_root, data={"root": "data/tiny", "split": "train"})
    with pytest.raises(io.DataError, match="syn_train_0001.*no annotations"):
        train.train_stage(params, 1, progress=False)
    (root / "train" / "Annotations").rename(root / "train" / "gone")
    with pytest.raises(io.DataError, match="annotation folder not found"):
        train.train_stage(params, 1, progress=False)


def test_too_few_annotated_frames_is_an_error(kit_root):
    params = write_params(kit_root, scratch={"resolution": 64, "num_frames": 9})
    with pytest.raises(io.DataError, match="fewer than num_frames=9"):
        train.train_stage(params, 1, progress=False)


def test_list_naming_absent_videos_is_an_error(kit_root):
    synthetic.generate(kit_root / "data" / "tiny", seed=3, config=TINY_DATA, progress=False)
    io.write_list_file(kit_root / "list.txt", ["syn_train_0000", "not_a_video"])
    params = write_params(kit_root, data={"root": "data/tiny", "split": "train", "videos": "list.txt"})
    with pytest.raises(io.DataError, match="not_a_video"):
        train.train_stage(params, 1, progress=False)


def test_unset_dataset_and_unknown_recipe_are_errors(kit_root):
    with pytest.raises(io.DataError, match="data.root is not set"):
        train.train_stage(write_params(kit_root, data={"root": None}), 1, progress=False)
    with pytest.raises(io.DataError, match="no such training recipe"):
        train.train_stage(write_params(kit_root, recipe="sam3"), 1, progress=False)


def test_stage_two_starts_from_the_chosen_stage_one_epoch(kit_root):
    params = train.load_training_params(write_params(kit_root, stage2={"init": "best", "epochs": 1}))
    with pytest.raises(io.DataError, match="no best stage-1 epoch recorded"):
        train.plan_stage(params, 2)
    stage1 = train.stage_dir("t", 1)
    for epoch in (1, 2):
        models.save_checkpoint(torch.nn.Linear(1, 1), train.weights_path(stage1, epoch))
    io.write_json(train.best_epoch_file("t", 1), {"epoch": 2})
    plan = train.plan_stage(params, 2)
    assert plan.init == train.weights_path(stage1, 2)
    assert _plain(plan.config)["trainer"]["checkpoint"]["model_weight_initializer"]["state_dict"][
        "checkpoint_path"] == str(train.weights_path(stage1, 2))
    params["stage2"]["init"] = 1
    assert train.plan_stage(params, 2).init == train.weights_path(stage1, 1)
    params["stage2"]["init"] = 5
    with pytest.raises(io.DataError, match=r"epoch 5 has no weights \(epochs present: \[1, 2\]\)"):
        train.plan_stage(params, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_one_cuda_epoch_uses_nccl_and_bf16(kit_root):
    params = write_params(kit_root, device="cuda", stage1={"init": "random", "epochs": 1})
    folder = train.train_stage(params, 1, progress=False)
    resolved = train.resolved(train.plan_stage(train.load_training_params(params), 1).config)
    assert resolved["trainer"]["distributed"]["backend"] == "nccl"
    assert resolved["trainer"]["optim"]["amp"] == {"enabled": True, "amp_dtype": "bfloat16"}
    models.build_predictor("fvos_tiny", train.weights_path(folder, 1), device="cuda")


# ------------------------------------------------------------------------------ checked params files
@pytest.mark.parametrize("changes, message", [
    ({"gpu": 8}, r"params\.yaml: unknown key 'gpu' \(did you mean 'gpus'\?\)"),
    ({"gpus": "8"}, r"params\.yaml: gpus must be int, got '8'"),
    ({"gpus": True}, r"gpus must be int, got True"),
    ({"gpus": 0}, r"gpus must be at least 1, got 0"),
    ({"nodes": 2}, r"nodes: 2 needs a cluster"),
    ({"cluster": "slurm"}, r"cluster must be dict or null, got 'slurm'"),
    ({"device": "gpu"}, r"device must be auto, cpu or cuda, got 'gpu'"),
    ({"data": {"rot": "data/tiny"}}, r"unknown key 'data\.rot' \(did you mean data\.'root'\?\)"),
    ({"stage1": {"init": "random", "epoch": 2}}, r"unknown key 'stage1\.epoch' \(did you mean stage1\.'epochs'\?\)"),
    ({"stage1": {"init": "random", "epochs": 2.5}}, r"stage1\.epochs must be int, got 2\.5"),
    ({"overrides": "trainer.x=1"}, r"overrides must be list, got 'trainer\.x=1'"),
    ({"stage1": {"init": "random", "epochs": 0}}, r"stage1\.epochs must be at least 1, got 0"),
])
def test_a_bad_training_params_file_is_one_error_naming_it_and_the_key(kit_root, changes, message):
    with pytest.raises(io.DataError, match=message):
        train.load_training_params(write_params(kit_root, **changes))


def test_the_kit_s_training_params_files_pass_the_checks(kit_root):
    for name in ("pretrain_fvos_tiny.yaml", "pretrain_fvos_tiny_stage3.yaml", "finetune_fvos_tiny_demo.yaml",
                 "finetune_sam2.1_large_mose.yaml"):
        params = train.load_training_params(Path(__file__).parents[1] / "params" / name)
        assert params["gpus"] >= 1 and params["stage1"]["epochs"] >= 1
    assert train.load_training_params(write_params(kit_root, device="cpu", gpus=2))["gpus"] == 2  # 2 processes, gloo


def test_the_command_line_names_a_bad_params_file_in_one_line(kit_root, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["--params", str(write_params(kit_root, gpu=8))])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {kit_root / 'params.yaml'}: unknown key 'gpu' (did you mean 'gpus'?); known: "
        + ", ".join(train.PARAMS_SCHEMA)]


def test_the_loss_figure_puts_the_stages_one_after_the_other():
    """Stage 2 continues the iteration axis where stage 1's epochs end; each epoch's mean sits at its middle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {1: ([0, 10, 20, 30], [4.0, 3.0, 2.5, 2.0], [3.5, 2.25]),
              2: ([0, 10], [1.9, 1.8], [1.85])}
    fig = train.loss_figure(curves, iters_per_epoch=20)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert sorted(lines) == ["stage 1, epoch mean", "stage 1, one iteration in 10", "stage 2, epoch mean",
                             "stage 2, one iteration in 10"]
    assert list(lines["stage 2, one iteration in 10"].get_xdata()) == [40, 50]  # after stage 1's 2 epochs of 20
    assert list(lines["stage 1, epoch mean"].get_xdata()) == [10, 30] and list(lines["stage 2, epoch mean"].get_xdata()) == [50]
    assert [t.get_text() for t in ax.texts] == ["stage 2 starts"]
    plt.close(fig)
    assert train.loss_caption(curves, stage2_start=2).startswith(
        "Training loss of stage 1 (2 epochs) then stage 2 (1 epoch, from stage-1 epoch 2), from the trainer's own logs")
    assert train.loss_caption({1: curves[1]}).startswith("Training loss of stage 1 (2 epochs), from the trainer's")
    fig = train.loss_figure({1: ([0, 1, 2], [1.0, 0.9, 0.8], [0.9])}, iters_per_epoch=3)
    assert "stage 1, every iteration" in [line.get_label() for line in fig.axes[0].get_lines()] and not fig.axes[0].texts
    plt.close(fig)

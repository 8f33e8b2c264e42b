"""The FVOS inference recipe (paper sections 2.1-2.3), read top to bottom; chapter 06 ends with it.

    fvos recipe --params params/paper_mose_val.yaml [--data-root DIR] [--split valid] [--out ZIP]

1. **The chosen model** (section 2.1): the run's picked epoch and memory sigmoid
   (:func:`fvos_utils.method.choices.chosen_model`, the fallback rule in :mod:`fvos_utils.method.choices`).
2. **Every scale** (section 2.3): one pass of SAM 2 per scale, the model's image size = scale x its base
   size, each pass keeping its per-object probabilities (:func:`run_passes`; a killed run resumes).
3. **Gap filling per pass** (section 2.2): each pass's per-object masks filled with the chosen kernel,
   as the paper fills single-model results (:func:`fvos_utils.method.postprocess.fill_variants`); skipped when
   chapter 05 picked no filling.
4. **Vote** (section 2.3): hard voting over the filled passes (:func:`fvos_utils.method.fusion.vote_folders`);
   skipped when chapter 06 picked a single scale.
5. **Checked zip**: :func:`fvos_utils.data.submissions.write_submission` checks every frame against the split
   (names, sizes, palette) before writing the server's zip.

:func:`apply_recipe` does steps 2-4 for given settings and :func:`run_recipe` adds step 5 (a split with
ground truth is scored step by step by :mod:`fvos_utils.studies.ablation` instead); :func:`settings_for_run` gathers
the settings a run chose (chapters 03-06) with the same fallbacks as the chapters; the command line does both.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from fvos_utils.base import io, jobs, locks, provenance
from fvos_utils.base.io import DataError, file_in_the_way
from fvos_utils.base.paths import resolve
from fvos_utils.data import submissions
from fvos_utils.method import choices, fusion, infer, models, postprocess
from fvos_utils.method.choices import ModelChoice
from fvos_utils.method.postprocess import PAPER_FILLING, GapFilling


@dataclass(frozen=True)
class Pass:
    """One model pass: SAM 2 at ``scale`` x its base image size on frames under ``transform``.

    Its :attr:`name` (``"scale1.125-identity"``) names its folder and result key; :meth:`from_name`
    reads one back.
    """

    scale: float
    transform: str = "identity"

    @property
    def name(self) -> str:
        return f"scale{self.scale:g}-{self.transform}"

    @classmethod
    def from_name(cls, name: str) -> "Pass":
        found = re.fullmatch(r"scale(?P<scale>[0-9.]+)-(?P<transform>[a-z0-9]+)", name)
        if not found:
            raise ValueError(f"not a pass name (scale<S>-<transform>, e.g. scale1.25-identity): {name!r}")
        return cls(float(found["scale"]), found["transform"])


def passes_for(scales: Sequence[float], transforms: Sequence[str] = ("identity",)) -> list[Pass]:
    """Every (scale, transform) pair, scales outermost; the first pass breaks hard-voting ties.
    Shown in chapter 06."""
    return [Pass(float(s), t) for s in scales for t in transforms]


def run_passes(choice: ModelChoice, data_root: str | os.PathLike, work_dir: str | os.PathLike,
               passes: Sequence[Pass], *, split: str | None = "valid", videos: Sequence[str] | None = None,
               seed: int = 0, device: str | None = None, processes: int | None = None, resume: bool = False,
               progress: bool = True, workers: int | None = None) -> dict[Pass, dict]:
    """Step 2: run every pass (joint propagation, probabilities saved) into ``work_dir/<pass.name>/``.
    Shown in chapter 06.

    On a CPU the passes run side by side, one thread each (``workers``,
    :func:`fvos_utils.method.infer.run_passes_side_by_side`); on GPUs one after another, each pass's videos sharded
    over ``processes`` (:func:`fvos_utils.method.infer.run_split`; default: every visible GPU). Folders are
    recomputed each call (timings must be fresh), unless ``resume``: then videos already done are kept (a
    killed run loses only the videos in progress).

    Returns:
        ``{pass: run_dataset summary + "folder" + "seconds_per_frame"}`` (propagation time only, summed over
        the processes; on a CPU with several workers, each pass's time on its one thread).
    """
    work_dir = resolve(work_dir)
    jobs = [(choice.spec(scale=one.scale, seed=seed), work_dir / one.name, {"transform": one.transform})
            for one in passes]
    summaries = infer.run_passes_side_by_side(jobs, data_root, workers=workers, device=device, processes=processes,
                                              split=split, videos=videos, save_probs=True, overwrite=not resume,
                                              progress=progress)
    out = {}
    for one, (_, folder, _), done in zip(passes, jobs, summaries):
        total = done["total"]
        out[one] = {**done, "folder": folder, "seconds_per_frame": total["seconds"] / max(total["frames"], 1)}
    return out


def fuse_folders(sources: Sequence[str | os.PathLike], out: str | os.PathLike, fusion_method: str, *,
                 progress: bool = True) -> Path:
    """Step 4: ``"hard"`` voting over label folders or ``"soft"`` voting over probability folders
    (:data:`fvos_utils.method.fusion.FOLDER_FUSIONS`, also ``fvos fusion``). Shown in chapter 06."""
    if fusion_method not in fusion.FOLDER_FUSIONS:
        raise ValueError(f"fusion must be 'hard' or 'soft', got {fusion_method!r}")
    return fusion.FOLDER_FUSIONS[fusion_method](sources, out, overwrite=True, progress=progress)


@dataclass(frozen=True)
class RecipeSettings:
    """What the recipe runs with, and where each setting came from (in words)."""

    choice: ModelChoice
    filling: GapFilling
    scales: tuple[float, ...]
    sources: dict  # {"model", "filling", "scales"}: where each came from

    def as_dict(self) -> dict:
        return {"model": self.choice.as_dict(), "filling": self.filling.name, "scales": list(self.scales),
                "sources": dict(self.sources)}


def settings_for_run(run: str, *, model: str = "fvos_tiny", ckpt: str = models.REGISTRY,
                     scales: Sequence[float] = fusion.FVOS_SCALES, fill_kernel: int = PAPER_FILLING.kernel,
                     fill_shape: str = PAPER_FILLING.shape) -> RecipeSettings:
    """The recipe's settings for ``run``: its recorded picks, else these values (the fallback rule of
    :mod:`fvos_utils.method.choices`; defaults: the registry's weights, the paper's square k = 2 and 7 scales).
    Shown in chapter 06."""
    choice = choices.chosen_model(run, model=model, ckpt=ckpt)
    filling, filling_source = choices.chosen_filling(run, fill_kernel=fill_kernel, fill_shape=fill_shape)
    chosen, scales_source = choices.chosen_scales(run, scales=scales)
    return RecipeSettings(choice, filling, chosen, {"model": choice.source, "filling": filling_source,
                                                    "scales": scales_source})


def apply_recipe(settings: RecipeSettings, data_root: str | os.PathLike, work_dir: str | os.PathLike, *,
                 split: str | None = "valid", videos: Sequence[str] | None = None, seed: int = 0,
                 device: str | None = None, processes: int | None = None, overwrite: bool = False,
                 progress: bool = True) -> Path:
    """Steps 2-4 on ``split`` of ``data_root``: returns the folder of the recipe's label maps. Steps the
    run's picks chose to skip are skipped: a filling of kernel <= 1 fills nothing (the passes' own maps
    are used) and a single scale is one pass, not a vote (its folder is returned as it is).

    Passes go to ``work_dir/passes/<pass>/`` and resume after an interruption (``overwrite``: redo them from
    the start instead; their videos recorded from other data, such as edited annotations, are refused
    otherwise); the filled passes (``work_dir/filled/``) and the fused masks (``work_dir/fused/``) are
    rebuilt from them. One recipe per work folder: a second is refused, naming the first.
    """
    work_dir = resolve(work_dir)
    passes = passes_for(settings.scales)
    with locks.exclusive(work_dir):
        runs = run_passes(settings.choice, data_root, work_dir / "passes", passes, split=split, videos=videos,
                          seed=seed, device=device, processes=processes, resume=not overwrite, progress=progress)
        if settings.filling.fills:
            maps = [postprocess.fill_variants(runs[p]["folder"], work_dir / "filled" / p.name, [settings.filling],
                                              from_probs=True, overwrite=True, progress=False)[settings.filling]
                    for p in passes]
        else:
            maps = [runs[p]["folder"] for p in passes]
        return voted(maps, work_dir / "fused", progress=progress)


def voted(label_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *, progress: bool = True) -> Path:
    """Step 4 on the (filled) passes' label folders: one folder is used as it is (one scale, no vote),
    several are hard-voted into ``out`` (the first breaks ties). Returns the recipe's label folder."""
    return resolve(label_dirs[0]) if len(label_dirs) == 1 else fuse_folders(label_dirs, out, "hard", progress=progress)


def run_recipe(settings: RecipeSettings, server_root: str | os.PathLike, work_dir: str | os.PathLike,
               zip_path: str | os.PathLike, *, split: str | None = "valid", seed: int = 0,
               device: str | None = None, processes: int | None = None, overwrite: bool = False,
               progress: bool = True) -> Path:
    """Steps 2-5 on a split with hidden ground truth (MOSE valid or test): the zip for the server
    (:func:`apply_recipe`, then the checked zip, under the work folder's lock). A zip path that cannot be
    written is refused before any pass. Shown in chapter 06. Returns ``zip_path``."""
    _check_zip_path(resolve(zip_path), inputs=(resolve(server_root),))
    with locks.exclusive(resolve(work_dir)):
        labels = apply_recipe(settings, server_root, work_dir, split=split, seed=seed, device=device,
                              processes=processes, overwrite=overwrite, progress=progress)
        return submissions.write_submission(labels, server_root, zip_path, split=split)


def _check_zip_path(zip_path: Path, *, inputs: Sequence[Path] = ()) -> None:
    """Refuse, before hours of passes, a zip path the zip cannot be written to (a folder, or a path under a
    file) or must not be: inside one of ``inputs`` (the dataset, whose annotations it would replace) or one
    of them itself (the params file)."""
    for given in inputs:
        given = given.resolve()
        if zip_path.resolve() == given or zip_path.resolve().is_relative_to(given):
            raise DataError(zip_path, f"{'is' if zip_path.resolve() == given else 'inside'} {given}, an input of "
                                      "the recipe: write the zip elsewhere")
    if zip_path.is_dir():
        raise DataError(zip_path, "a folder, not a file: name the zip to write (e.g. "
                                  f"{zip_path / 'fvos_valid.zip'})")
    blocking = file_in_the_way(zip_path)
    if blocking is not None:
        raise DataError(blocking, f"a file, not a folder: {zip_path} cannot be written")
    nearest = next(p for p in zip_path.parents if p.exists())
    try:  # a file made and removed where the zip will go: a read-only folder or /proc fails here, not after the passes
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as err:
        raise DataError(zip_path, f"cannot be written ({err.strerror or err} in {nearest})") from None


# ------------------------------------------------------------------------------- as cluster jobs
#: the record of the last submission, in the work folder's ``jobs/`` (submitit's logs are there too):
#: ``{"passes": {pass name: job id}, "final": job id, "log": folder}``
SUBMISSION_FILE = "jobs.json"


class SubmissionRunning(RuntimeError):
    """The recipe's last submission still runs: nothing was submitted again (the message names the jobs)."""


@dataclass(frozen=True)
class ClusterSettings:
    """What each job asks SLURM for."""

    partition: str | None = None
    cpus_per_task: int = 1    # the job's torch threads
    gpus_per_task: int = 0    # 1 on a GPU partition: each pass on its own GPU
    timeout_min: int = 60     # each job's time limit
    account: str | None = None

    def executor_parameters(self) -> dict:
        extra = {"account": self.account} if self.account else {}
        return {"slurm_partition": self.partition, "cpus_per_task": self.cpus_per_task,
                "timeout_min": self.timeout_min, "slurm_additional_parameters": extra,
                **({"gpus_per_node": self.gpus_per_task} if self.gpus_per_task else {})}


def job_threads() -> int:
    """Torch threads of a job: the CPUs SLURM gave its task (``SLURM_CPUS_PER_TASK``), else 1."""
    return provenance.checked_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", 1)))


def run_pass_job(settings: RecipeSettings, data_root: str, work_dir: str, pass_name: str, split: str | None,
                 seed: int, device: str | None) -> dict:
    """Inside an array task: one pass (resumed video by video), then its record (threads, job, seconds)."""
    threads = job_threads()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    run_passes(settings.choice, data_root, Path(work_dir) / "passes", [Pass.from_name(pass_name)], split=split,
               seed=seed, device=device, resume=True, progress=False, workers=1)
    record = {"pass": pass_name, "job_id": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
              "array_task": os.environ.get("SLURM_ARRAY_TASK_ID"), "torch_threads": torch.get_num_threads(),
              "slurm_cpus_per_task": os.environ.get("SLURM_CPUS_PER_TASK"),
              "seconds": round(time.perf_counter() - start, 2), "environment": provenance.environment()}
    io.write_json(_pass_record(Path(work_dir), pass_name), record)
    return record


def run_final_job(settings: RecipeSettings, data_root: str, work_dir: str, zip_path: str, split: str | None,
                  seed: int, device: str | None) -> str:
    """Inside the last job: gap filling, the vote and the checked zip, from the passes the array wrote."""
    torch.set_num_threads(job_threads())
    return str(run_recipe(settings, data_root, work_dir, zip_path, split=split, seed=seed, device=device,
                          progress=False))


def _pass_record(work_dir: Path, pass_name: str) -> Path:
    return work_dir / "jobs" / f"{pass_name}.json"


def _alive(job_id: str | None) -> bool:
    return job_id is not None and jobs.slurm_state(job_id) in jobs.ALIVE_STATES


def submit_recipe(settings: RecipeSettings, data_root: str | os.PathLike, work_dir: str | os.PathLike,
                  zip_path: str | os.PathLike, cluster: ClusterSettings, *, split: str | None = "valid",
                  seed: int = 0, device: str | None = None) -> dict:
    """Steps 2-5 as SLURM jobs: one per pass without a record (an array), then the final job after them.
    Returns the submission (:data:`SUBMISSION_FILE`). Raises :class:`SubmissionRunning` while a pass job of
    the last submission is pending or running, or its final job waits on passes that can still succeed;
    a final job waiting on a pass that was cancelled or failed (it would never start) is cancelled."""
    import submitit

    work_dir, data_root, zip_path = resolve(work_dir), resolve(data_root), resolve(zip_path)
    log = work_dir / "jobs"
    log.mkdir(parents=True, exist_ok=True)
    record = log / SUBMISSION_FILE
    if record.is_file():
        last = io.read_json(record)
        running = [job for job in last["passes"].values() if _alive(job)]
        if running or (_alive(last["final"]) and all(_pass_record(work_dir, name).is_file() for name in last["passes"])):
            raise SubmissionRunning(f"the recipe's last submission is still running (pass jobs {', '.join(running) or 'done'}, "
                               f"final job {last['final']}; logs in {log}): nothing was submitted again")
        if _alive(last["final"]):  # waiting on a pass that was cancelled or failed: it would never start
            jobs.cancel(last["final"])
    missing = [one.name for one in passes_for(settings.scales) if not _pass_record(work_dir, one.name).is_file()]
    executor = submitit.AutoExecutor(folder=log)
    executor.update_parameters(name="fvos-pass", **cluster.executor_parameters())
    count = len(missing)
    array = executor.map_array(run_pass_job, [settings] * count, [str(data_root)] * count, [str(work_dir)] * count,
                               missing, [split] * count, [seed] * count, [device] * count) if missing else []
    final_parameters = cluster.executor_parameters()
    if array:
        final_parameters["slurm_additional_parameters"] = {
            **final_parameters["slurm_additional_parameters"],
            "dependency": "afterok:" + ":".join(job.job_id for job in array)}
    executor.update_parameters(name="fvos-vote", **final_parameters)
    final = executor.submit(run_final_job, settings, str(data_root), str(work_dir), str(zip_path), split, seed,
                            device)
    submitted = {"passes": {name: job.job_id for name, job in zip(missing, array)}, "final": final.job_id,
                 "log": str(log)}
    io.write_json(record, submitted)
    return submitted


# ------------------------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fvos recipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", required=True,
                        help="a pipeline params file (e.g. params/paper_mose_val.yaml): its run's picks and "
                             "chapter 06's model, ckpt, scales, fill_kernel, fill_shape, server_root, server_split")
    parser.add_argument("--data-root", help="the folder whose split is predicted (default: server_root there)")
    parser.add_argument("--split", help="its split folder, valid or test (default: server_split there)")
    parser.add_argument("--out", help="the zip to write (default: outputs/<run>/06_multiscale_fusion/fvos_<split>.zip)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the first available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo the passes from the start (default: resume them; a pass whose videos were "
                             "predicted from other data, such as edited annotations, is refused)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (batch logs)")
    cluster = parser.add_argument_group("as SLURM jobs (one per scale, then fill, vote and zip after them)")
    cluster.add_argument("--submit", action="store_true",
                         help="submit the steps as jobs through submitit instead of running them here")
    cluster.add_argument("--partition", help="the jobs' partition (default: the cluster's default)")
    cluster.add_argument("--account", help="the jobs' account")
    cluster.add_argument("--cpus-per-task", type=int, default=ClusterSettings.cpus_per_task,
                         help="CPUs of each job, its torch threads (default: %(default)s)")
    cluster.add_argument("--gpus-per-task", type=int, default=ClusterSettings.gpus_per_task,
                         help="GPUs of each job (default: %(default)s)")
    cluster.add_argument("--time-min", type=int, default=ClusterSettings.timeout_min,
                         help="each job's time limit in minutes (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fvos_utils.run import pipeline  # the params file is read as the pipeline reads it

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        torch.set_num_threads(provenance.checked_threads(args.threads))  # the job's CPUs, not the machine's
        params = pipeline.load_run_params(Path(args.params).resolve())  # command-line paths: from the current folder
        values = pipeline.parameter_values(params, "06_multiscale_fusion")
        data_root = Path(args.data_root).resolve() if args.data_root else values["server_root"]
        if not data_root:
            raise DataError(resolve(args.params), "no server_root for chapter 06 here: pass --data-root")
        split = args.split or values["server_split"]
        run = params["run"]
        settings = settings_for_run(run, model=values["model"], ckpt=values["ckpt"], scales=values["scales"],
                                    fill_kernel=values["fill_kernel"], fill_shape=values["fill_shape"])
        for what, source in settings.sources.items():
            print(f"{what}: {source}")
        chapter_dir = choices.run_dir(run) / "06_multiscale_fusion"
        zip_path = Path(args.out).resolve() if args.out else chapter_dir / f"fvos_{split}.zip"
        _check_zip_path(zip_path, inputs=(Path(args.params).resolve(), Path(data_root).resolve()))
        # the work folder is tied to the data it resumes on: another root (a subset, a copy on scratch) gets its own
        data_key = hashlib.sha256(str(resolve(data_root).resolve()).encode()).hexdigest()[:10]
        work_dir = chapter_dir / f"server_{split}-{data_key}"
        if args.submit:
            if shutil.which("sbatch") is None:
                raise ValueError("--submit: no SLURM here (sbatch is not on the PATH); run it on the cluster's "
                                 "login node, or drop --submit to run the steps on this machine")
            cluster = ClusterSettings(partition=args.partition, cpus_per_task=args.cpus_per_task,
                                      gpus_per_task=args.gpus_per_task, timeout_min=args.time_min,
                                      account=args.account)
            submitted = submit_recipe(settings, data_root, work_dir, zip_path, cluster, split=split,
                                      seed=values["seed"], device=args.device)
            passes = ", ".join(submitted["passes"]) or "none (all done)"
            print(f"submitted: the passes {passes} as slurm jobs {', '.join(submitted['passes'].values()) or '-'}; "
                  f"gap filling, the vote and {zip_path} as slurm job {submitted['final']} after them. Follow: "
                  f"squeue -u $USER; logs in {submitted['log']}")
            return 0
        written = run_recipe(settings, data_root, work_dir, zip_path, split=split,
                             seed=values["seed"], device=args.device, overwrite=args.overwrite,
                             progress=not args.no_progress)
    except (ValueError, OSError, pipeline.PipelineError, models.DownloadError) as err:  # OSError: unwritable, disk full
        parser.exit(2, f"error: {err}\n")
    except SubmissionRunning as running:
        parser.exit(1, f"error: {running}\n")
    print(f"wrote {written}")
    return 0

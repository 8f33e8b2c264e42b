"""Training stages as jobs of a real SLURM scheduler (:mod:`slurm_cluster`: Debian's SLURM with accounting).

Each case trains the same small stage as a job of the test cluster (one CPU, one thread) and compares its
weights with the same stage trained on this machine without a cluster, bit for bit: a pending job, a
cancel, a time limit, a requeue (what preemption does), a job failing inside, and two processes in one
job. Skipped, with the way to enable them, unless the tests run as root with ``CI`` or
``FVOS_TEST_SLURM`` set.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import slurm_cluster
from fvos_utils.base import io, paths
from fvos_utils.method import train

pytestmark = pytest.mark.slow

#: iterations per epoch: 2 videos x 24 (about 0.1 s each): an epoch lasts long enough to act between two
MULTIPLIER = 24
EPOCHS = 3


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The test cluster, for the whole session; afterwards every daemon it started is gone (by pid)."""
    reason = slurm_cluster.skip_reason()
    if reason:
        pytest.skip(reason)
    started = slurm_cluster.start_cluster(tmp_path_factory.mktemp("slurm"))
    yield started
    started.stop()
    alive = [pid for pid in started.pids() if Path(f"/proc/{pid}").exists()]
    assert not alive, f"daemons of the test cluster still running: {alive}"


@pytest.fixture
def slurm(cluster, monkeypatch):
    """The cluster, with this process (and the kit's subprocesses and jobs) pointed at it."""
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    return cluster


def write_params(root: Path, *, cluster: dict | None, epochs: int = EPOCHS, gpus: int = 1,
                 multiplier: int = MULTIPLIER) -> Path:
    """A small stage (2 videos at 64 px, ``epochs`` epochs of 2 x MULTIPLIER iterations), as a job of the
    test cluster's partition on one CPU per process when ``cluster`` is given."""
    params = {"run": "t", "model": "fvos_tiny", "recipe": "fvos_tiny_pretrain", "device": "cpu", "threads": 1,
              "gpus": gpus, "seed": 5,
              "data": {"root": "data/tiny", "split": "train", "videos": None,
                       "synthetic": {"preset": "mini-mose", "seed": 3, "videos_train": 2, "videos_valid": 1,
                                     "frames": [4, 5], "size": [96, 64], "objects": [1, 2]}},
              "scratch": {"resolution": 64, "num_frames": 3, "max_num_objects": 2},
              "stage1": {"init": "random", "epochs": epochs},
              "overrides": [f"dataset.multiplier={multiplier}"], "cluster": cluster}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


#: the range Meta's launcher draws each job's rendezvous port from, kept below the ephemeral ports (32768 up):
#: its default, 10000-65000, once drew a port that a client connection held (EADDRINUSE in a two-process job)
PORT_RANGE = [10000, 32000]


def job_params(root: Path, partition: str, **kw) -> Path:
    return write_params(root, cluster={"partition": partition, "cpus_per_task": 1, "timeout_hour": 1,
                                       "port_range": PORT_RANGE}, **kw)


def weights(folder: Path, epochs: int = EPOCHS) -> list[dict]:
    return [torch.load(train.weights_path(folder, e), weights_only=True)["model"] for e in range(1, epochs + 1)]


def assert_same_weights(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for epoch, (x, y) in enumerate(zip(a, b), 1):
        assert x.keys() == y.keys()
        differing = [k for k in x if not torch.equal(x[k], y[k])]
        assert not differing, f"epoch {epoch}: {len(differing)} tensors differ, e.g. {differing[0]}"


def _train_here(root: Path, monkeypatch, **kw) -> list[dict]:
    root.mkdir()
    monkeypatch.setenv(paths.ROOT_ENV, str(root))
    folder = train.train_stage(write_params(root, cluster=None, **kw), 1, progress=False)
    return weights(folder, kw.get("epochs", EPOCHS))


@pytest.fixture(scope="module")
def trained_here(tmp_path_factory):
    """The stage trained on this machine, no cluster: the weights every job must reproduce."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _train_here(tmp_path_factory.mktemp("here") / "kit", monkeypatch)


def submit(params: Path) -> str:
    """Run the stage, which submits its job; the job's id."""
    with pytest.raises(train.StageRunning, match=r"was submitted as slurm job (\d+) \(follow it: tail -f "):
        train.train_stage(params, 1, progress=False)
    return io.read_json(train.stage_dir("t", 1) / train.JOB_FILE)["job_id"]


def submissions(folder: Path) -> int:
    return len(list((folder / "submitit_logs").glob("*_submitted.pkl")))


def start_requeued(cluster, job: str, time_limit: str | None = None) -> None:
    """Once the job is back in the queue: start it now (SLURM holds a requeued job back for two minutes),
    with ``time_limit`` when given."""
    slurm_cluster._wait_for(f"job {job} requeued", lambda: "Restarts=1" in cluster.run("scontrol", "show", "job", job)
                            and cluster.state(job) == "PENDING", 120)
    cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now",
                *([f"TimeLimit={time_limit}"] if time_limit else []))


def wait_for_epoch(folder: Path, epoch: int, timeout: float = 300.0) -> None:
    slurm_cluster._wait_for(f"epoch {epoch}", lambda: train.completed_epochs(folder) >= epoch, timeout)


def wait_until_ended(folder: Path, timeout: float = 300.0) -> None:
    slurm_cluster._wait_for("the job's end", lambda: train.running_job(folder) is None, timeout)


def finish(params: Path, folder: Path, capsys) -> str:
    """Rerun after the job has ended: a job that goes on from the last epoch is submitted; wait for it and
    rerun once more, which finds the stage finished. Returns what the first rerun printed."""
    capsys.readouterr()
    submit(params)
    said = capsys.readouterr().out
    wait_until_ended(folder)
    assert train.train_stage(params, 1, progress=False) == folder
    return said


def test_a_pending_job_is_said_pending_and_its_stage_equals_one_trained_here(slurm, kit_root, trained_here):
    params = job_params(kit_root, slurm.partition)
    folder = train.stage_dir("t", 1)
    slurm.run("scontrol", "update", f"PartitionName={slurm.partition}", "State=DOWN")  # nothing starts
    try:
        job = submit(params)
        slurm.run("scontrol", "hold", job)
        with pytest.raises(train.StageRunning, match=rf"is pending as slurm job {job} .*nothing was submitted again"):
            train.train_stage(params, 1, progress=False)
        assert submissions(folder) == 1 and slurm.state(job) == "PENDING"
    finally:
        slurm.run("scontrol", "update", f"PartitionName={slurm.partition}", "State=UP")
    slurm.run("scontrol", "release", job)
    slurm.wait_state(job, ("RUNNING", "COMPLETED"))
    with pytest.raises(train.StageRunning, match=rf"is (running|completing) as slurm job {job} "):
        train.train_stage(params, 1, progress=False)
    wait_until_ended(folder)
    assert slurm.state(job) == "COMPLETED"
    assert train.train_stage(params, 1, progress=False) == folder  # finished: nothing submitted
    assert submissions(folder) == 1 and not (folder / train.RESUMES_FILE).exists()
    assert_same_weights(weights(folder), trained_here)


def test_a_cancelled_job_is_resumed_by_the_next_job_from_its_last_epoch(slurm, kit_root, trained_here, capsys):
    params = job_params(kit_root, slurm.partition)
    folder = train.stage_dir("t", 1)
    job = submit(params)
    wait_for_epoch(folder, 1)
    slurm.run("scancel", job)
    wait_until_ended(folder)
    done = train.completed_epochs(folder)
    assert slurm.state(job) == "CANCELLED" and 1 <= done < EPOCHS
    said = finish(params, folder, capsys)
    assert f"slurm job {job} was cancelled after epoch {done} of {EPOCHS}; submitting a job that goes on" in said
    resumes = io.read_json(folder / train.RESUMES_FILE)
    assert [(r["after_epoch"], r["previous_job"]) for r in resumes] == [(done, {"job_id": job, "state": "CANCELLED"})]
    assert_same_weights(weights(folder), trained_here)


#: the time-limit case: a stage lasting well over the scheduler's 30 s between two time-limit checks
LONG = {"epochs": 12, "multiplier": MULTIPLIER}


def test_a_job_at_its_time_limit_is_requeued_and_goes_on_from_its_last_epoch(slurm, kit_root, tmp_path_factory,
                                                                             monkeypatch):
    """After its first epoch the job's end is moved to 80 s from now: within the 90 s before a time limit in
    which the scheduler warns a job (SIGUSR2). Submitit, reading the early signal as preemption, requeues
    the job (the trainer's launcher submits a checkpointable runner) before the limit ends it, and the job
    resumes from its last finished epoch. (An end moved to now sends the warning and the end together: the
    requeue then races the job's end and can lose.)"""
    here = _train_here(tmp_path_factory.mktemp("long") / "kit", monkeypatch, **LONG)
    monkeypatch.setenv(paths.ROOT_ENV, str(kit_root))
    params = job_params(kit_root, slurm.partition, **LONG)
    folder = train.stage_dir("t", 1)
    job = submit(params)
    wait_for_epoch(folder, 1)
    slurm.run("scontrol", "update", f"JobId={job}", "EndTime=now+80")  # which makes its time limit 2 minutes
    start_requeued(slurm, job, time_limit="60")
    slurm_cluster._wait_for("the requeued job's end", lambda: slurm.state(job) == "COMPLETED", 300)
    resumes = io.read_json(folder / train.RESUMES_FILE)
    assert len(resumes) == 1 and 1 <= resumes[0]["after_epoch"] < LONG["epochs"]
    assert resumes[0]["job"] == {"job_id": job, "restart_count": 1}
    assert "Requeued job" in (folder / "submitit_logs" / f"{job}_0_log.out").read_text()
    assert train.train_stage(params, 1, progress=False) == folder and submissions(folder) == 1
    assert_same_weights(weights(folder, LONG["epochs"]), here)


def test_a_requeued_job_resumes_by_itself_from_its_last_epoch(slurm, kit_root, trained_here):
    params = job_params(kit_root, slurm.partition)
    folder = train.stage_dir("t", 1)
    job = submit(params)
    wait_for_epoch(folder, 1)
    slurm.run("scontrol", "requeue", job)  # what preemption with PreemptMode=REQUEUE does
    start_requeued(slurm, job)
    slurm_cluster._wait_for("the requeued job's end", lambda: slurm.state(job) == "COMPLETED", 300)
    resumes = io.read_json(folder / train.RESUMES_FILE)
    assert len(resumes) == 1 and 1 <= resumes[0]["after_epoch"] < EPOCHS
    assert resumes[0]["job"] == {"job_id": job, "restart_count": 1}
    assert train.train_stage(params, 1, progress=False) == folder and submissions(folder) == 1
    assert_same_weights(weights(folder), trained_here)


def test_a_job_failing_inside_is_shown_and_not_resubmitted_until_retried(slurm, kit_root, trained_here):
    """The data are there when the job is submitted and gone when it runs (a folder the node cannot read)."""
    params = job_params(kit_root, slurm.partition)
    folder = train.stage_dir("t", 1)
    data = kit_root / "data" / "tiny"
    slurm.run("scontrol", "update", f"PartitionName={slurm.partition}", "State=DOWN")
    try:
        job = submit(params)
        data.rename(kit_root / "moved")
    finally:
        slurm.run("scontrol", "update", f"PartitionName={slurm.partition}", "State=UP")
    wait_until_ended(folder)
    assert slurm.state(job) == "FAILED"
    for _ in range(2):  # the same answer each time: nothing submitted
        with pytest.raises(train.JobFailed, match=rf"slurm job {job} FAILED after epoch 0 of {EPOCHS}; nothing was "
                                                  r"submitted again\. The end of its log") as failed:
            train.train_stage(params, 1, progress=False)
        errors = (folder / "submitit_logs" / f"{job}_0_log.err").read_text().splitlines()
        assert "\n".join(errors[-10:]) in str(failed.value)  # the job's own error, as the job wrote it
        assert "Error" in "\n".join(errors[-10:])
        assert submissions(folder) == 1
    (kit_root / "moved").rename(data)
    with pytest.raises(train.StageRunning, match="was submitted as slurm job"):
        train.train_stage(params, 1, retry=True, progress=False)
    wait_until_ended(folder)
    assert train.train_stage(params, 1, progress=False) == folder
    assert_same_weights(weights(folder), trained_here)


def test_two_processes_in_one_job_train_as_two_processes_here(slurm, kit_root, tmp_path_factory, monkeypatch):
    """gpus: 2 on CPU: two gloo processes, their ranks from SLURM's environment (SLURM_PROCID), as a
    two-GPU job would run; the same two processes started here give the same weights."""
    params = job_params(kit_root, slurm.partition, gpus=2)
    folder = train.stage_dir("t", 1)
    job = submit(params)
    wait_until_ended(folder)
    assert slurm.state(job) == "COMPLETED"
    log = Path(io.read_json(folder / train.JOB_FILE)["folder"])
    assert sorted(p.name for p in log.glob(f"{job}_*_log.out")) == [f"{job}_0_log.out", f"{job}_1_log.out"]
    assert train.train_stage(params, 1, progress=False) == folder
    in_job = weights(folder)
    here = _train_here(tmp_path_factory.mktemp("two") / "kit", monkeypatch, gpus=2)
    assert_same_weights(in_job, here)


# ------------------------------------------------------------------------------------------ the pipeline
def test_the_pipeline_stops_at_chapter_02s_job_and_with_wait_goes_on_to_the_end(slurm, kit_root):
    """Chapter 02 with ``cluster:`` in the demo's training params, on a small synthetic set: without
    ``--wait`` the pipeline stops at the submitted job with one line on how to go on; with ``--wait`` it
    waits for each stage's job and runs the chapter to its end."""
    from fvos_utils.data import synthetic

    (kit_root / "notebooks").symlink_to(paths.KIT_DIR / "notebooks")
    synthetic.generate(kit_root / "data" / "small", seed=0, progress=False, config=synthetic.SyntheticConfig(
        videos_train=2, videos_valid=2, videos_test=0, frames=(4, 5), size=(96, 64), objects=(1, 2)))
    demo = yaml.safe_load((paths.KIT_DIR / "params" / "finetune_fvos_tiny_demo.yaml").read_text())
    demo.update(cluster={"partition": slurm.partition, "cpus_per_task": 1, "timeout_hour": 1, "port_range": PORT_RANGE},
                scratch={**demo["scratch"], "resolution": 64, "num_frames": 3, "max_num_objects": 2})
    (kit_root / "params").mkdir()
    (kit_root / "params" / "train.yaml").write_text(yaml.safe_dump(demo))
    (kit_root / "params" / "run.yaml").write_text(yaml.safe_dump({
        "run": "p", "common": {"seed": 0, "threads": 1},
        "chapters": {"02_finetune": {"data_root": "data/small", "train_params": "params/train.yaml",
                                     "stage1_epochs": 1, "stage2_epochs": 1}}}))
    command = [sys.executable, "-m", "fvos_utils", "pipeline", "params/run.yaml"]
    env = {**os.environ, "FVOS_ROOT": str(kit_root)}
    stopped = subprocess.run(command, cwd=kit_root, env=env, capture_output=True, text=True)
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    stage1 = io.read_json(kit_root / "outputs" / "p" / "train" / "stage1" / train.JOB_FILE)
    lines = stopped.stdout.strip().splitlines()
    assert lines[0].startswith(f"chapter 02_finetune waits for a cluster job: stage 1 of run 'p' was submitted as "
                               f"slurm job {stage1['job_id']} (follow it: tail -f ")
    assert lines[1] == "  go on: run this command again once the job has ended, or add --wait to wait for it"
    manifest = io.read_json(kit_root / "outputs" / "p" / "manifest.json")
    assert manifest["chapters"]["02_finetune"]["status"] == "waiting"
    waited = subprocess.run(command + ["--wait", "--poll", "2"], cwd=kit_root, env=env, capture_output=True,
                            text=True)
    assert waited.returncode == 0, waited.stdout[-2000:] + waited.stderr[-2000:]
    stage2 = io.read_json(kit_root / "outputs" / "p" / "train" / "stage2" / train.JOB_FILE)
    assert f"slurm job {stage2['job_id']} (follow it" in waited.stdout and "waiting for it" in waited.stdout
    assert [slurm.state(j["job_id"]) for j in (stage1, stage2)] == ["COMPLETED", "COMPLETED"]
    manifest = io.read_json(kit_root / "outputs" / "p" / "manifest.json")
    assert manifest["chapters"]["02_finetune"]["status"] == "done"
    assert (kit_root / "outputs" / "p" / "02_finetune.ipynb").is_file()
    assert not (kit_root / "outputs" / "p" / "02_finetune.failed.ipynb").exists()


# ------------------------------------------------------------------------------------ the recipe as jobs
def _recipe_project(kit_root: Path) -> None:
    """A small valid split and one pipeline params file per run (the recipe reads chapter 06's values)."""
    from fvos_utils.data import synthetic

    (kit_root / "notebooks").symlink_to(paths.KIT_DIR / "notebooks")
    synthetic.generate(kit_root / "data" / "small", seed=0, progress=False, config=synthetic.SyntheticConfig(
        videos_train=1, videos_valid=2, videos_test=0, frames=(4, 5), size=(96, 64), objects=(1, 2)))
    (kit_root / "params").mkdir()
    for run in ("here", "jobs", "cancelled"):
        (kit_root / "params" / f"{run}.yaml").write_text(yaml.safe_dump({
            "run": run, "common": {"seed": 0}, "chapters": {"06_multiscale_fusion": {"model": "fvos_tiny"}}}))


def recipe(kit_root: Path, run: str, *options: str, status: int = 0) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fvos_utils", "recipe", "--params", f"params/{run}.yaml", "--data-root",
               "data/small", "--split", "valid", "--out", f"{run}.zip", "--no-progress", *options]
    done = subprocess.run(command, cwd=kit_root, env={**os.environ, "FVOS_ROOT": str(kit_root)},
                          capture_output=True, text=True)
    assert done.returncode == status, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def zip_members(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def work_folder(kit_root: Path, run: str) -> Path:
    return next((kit_root / "outputs" / run / "06_multiscale_fusion").glob("server_valid-*"))


def test_the_recipe_as_jobs_writes_the_zip_it_writes_here(slurm, kit_root):
    """One array task per scale, then the fill-vote-zip job after them: the zip's masks are the bytes the
    recipe writes on this machine, and each task ran on the threads SLURM gave it."""
    _recipe_project(kit_root)
    recipe(kit_root, "here", "--threads", "1")
    said = recipe(kit_root, "jobs", "--submit", "--partition", slurm.partition, "--cpus-per-task", "1").stdout
    work = work_folder(kit_root, "jobs")
    submitted = io.read_json(work / "jobs" / "jobs.json")
    assert len(submitted["passes"]) == 7 and f"as slurm job {submitted['final']} after them" in said
    again = recipe(kit_root, "jobs", "--submit", "--partition", slurm.partition, status=1)  # a second writer
    assert "still running" in again.stderr and "nothing was submitted again" in again.stderr
    assert io.read_json(work / "jobs" / "jobs.json") == submitted
    slurm.wait_state(submitted["final"], ("COMPLETED", "FAILED", "CANCELLED"), timeout=600)
    assert slurm.state(submitted["final"]) == "COMPLETED"
    assert {slurm.state(job) for job in submitted["passes"].values()} == {"COMPLETED"}
    here, in_jobs = zip_members(kit_root / "here.zip"), zip_members(kit_root / "jobs.zip")
    assert sorted(in_jobs) == sorted(here) and len(here) > 2
    assert all(in_jobs[name] == here[name] for name in here)
    for name in submitted["passes"]:
        record = io.read_json(work / "jobs" / f"{name}.json")
        assert record["torch_threads"] == int(record["slurm_cpus_per_task"]) == 1


def test_a_rerun_after_a_cancelled_array_submits_only_the_missing_scales(slurm, kit_root):
    _recipe_project(kit_root)
    recipe(kit_root, "cancelled", "--submit", "--partition", slurm.partition)
    work = work_folder(kit_root, "cancelled")
    first = io.read_json(work / "jobs" / "jobs.json")
    records = lambda: sorted(p.stem for p in (work / "jobs").glob("scale*.json"))  # noqa: E731
    slurm_cluster._wait_for("a finished pass", lambda: records(), 300)
    array = next(iter(first["passes"].values())).split("_")[0]
    slurm.run("scancel", array)
    slurm_cluster._wait_for("the array's end", lambda: not slurm.run("squeue", "-h", "-j", array, check=False).strip(),
                            120)
    done = records()
    assert 1 <= len(done) < 7
    recipe(kit_root, "cancelled", "--submit", "--partition", slurm.partition, "--cpus-per-task", "2")
    second = io.read_json(work / "jobs" / "jobs.json")
    assert sorted(second["passes"]) == sorted(set(first["passes"]) - set(done))  # only the missing scales
    assert slurm.state(first["final"]) == "CANCELLED"  # it waited on cancelled passes: it would never start
    slurm.wait_state(second["final"], ("COMPLETED", "FAILED", "CANCELLED"), timeout=600)
    assert slurm.state(second["final"]) == "COMPLETED" and (kit_root / "cancelled.zip").is_file()
    for name in second["passes"]:
        record = io.read_json(work / "jobs" / f"{name}.json")
        assert record["torch_threads"] == int(record["slurm_cpus_per_task"]) == 2

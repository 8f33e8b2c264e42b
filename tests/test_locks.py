"""One writer per output: a second writer of a folder is refused, naming it and its holder, while a
killed holder leaves nothing stuck; each command line that writes an output takes its lock. Every
test starts a second real process holding the lock, as a first writer does while it works."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fvos_utils.base import io, locks
from fvos_utils.data.testing import command_error, lock_holder, write_mose_layout
from fvos_utils.method import fusion, infer, postprocess, train


def test_a_second_writer_is_refused_naming_the_folder_and_the_holder(tmp_path):
    out = tmp_path / "pred"
    with lock_holder(out) as holder:
        with pytest.raises(locks.OutputInUse) as refused:
            with locks.exclusive(out):
                pass
    message = str(refused.value)
    assert message.startswith(f"{out}: in use by another writer: pid {holder.pid} on ")
    assert "\n" not in message
    with locks.exclusive(out):  # released with its holder
        pass


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path):
    out = tmp_path / "pred"
    with lock_holder(out) as holder:
        holder.kill()  # kill -9: no handler of the holder runs
        holder.wait()
        with locks.exclusive(out):
            assert locks.lock_path(out).is_file()
    assert not locks.lock_path(out).exists()  # removed on release: no lock files pile up beside outputs


def test_torchrun_ranks_above_0_share_their_rank_0s_lock(tmp_path, monkeypatch):
    out = tmp_path / "pred"
    with lock_holder(out):
        for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}.items():
            monkeypatch.setenv(name, value)  # what torchrun sets for its second process
        with locks.exclusive(out):
            pass


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with locks.exclusive(tmp_path / "pred"), locks.exclusive(tmp_path / "pred"):
        pass
    with lock_holder(tmp_path / "pred"):  # and released once the outer block ends
        pass


def test_an_output_under_a_file_is_a_data_error_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(io.DataError, match=f"{tmp_path / 'notes.txt'}: a file, not a folder"):
        with locks.exclusive(tmp_path / "notes.txt" / "pred"):
            pass


# ---------------------------------------------------------------------------------- command lines
def _label_folder(folder):
    for t in range(2):
        labels = np.zeros((8, 10), np.uint8)
        labels[2:5, 2 + t:5 + t] = 1
        io.write_mask(folder / "v" / f"{t:05d}.png", labels)
    return folder


@pytest.mark.parametrize("command", ["postprocess", "fusion"])
def test_a_second_postprocess_or_fusion_into_one_folder_is_refused(tmp_path, command):
    """Two runs into one new --out (k = 41, then k = 2): the second must not report `wrote` for the
    first's folder, nor write over it."""
    source = _label_folder(tmp_path / "in")
    out = tmp_path / "out"
    argv = (["--in", str(source), "--kernel", "2"] if command == "postprocess"
            else ["--fusion", "hard", str(source), str(source)]) + ["--out", str(out), "--no-progress"]
    main = postprocess.main if command == "postprocess" else fusion.main
    with lock_holder(out) as holder:
        error = command_error(main, argv)
    assert error == f"error: {out}: in use by another writer: pid {holder.pid}" + error.split(str(holder.pid))[1]
    assert not out.exists()


def test_a_second_infer_into_one_folder_is_refused_and_leaves_the_firsts_temporaries(tmp_path):
    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    out = tmp_path / "pred"
    out.mkdir()
    working = out / ".valid00.k3j_a8x1.tmp"  # the first writer's video in progress
    working.mkdir()
    with lock_holder(out, inside=True) as holder:
        error = command_error(infer.main, ["--data-root", str(data), "--split", "valid", "--ckpt", "random",
                                           "--out", str(out), "--threads", "1", "--no-progress"])
        assert error.startswith(f"error: {out}: in use by another writer: pid {holder.pid} ")
        assert sorted(p.name for p in out.iterdir()) == sorted([working.name, locks.INSIDE_NAME])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder: no folder is read-only to it")
def test_infer_into_a_folder_whose_parent_is_not_writable(tmp_path):
    """``infer --out $SCRATCH``: the user's folder is writable, the one above it is not; the lock is inside."""
    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    parent = tmp_path / "scratch"
    out = parent / "me"
    out.mkdir(parents=True)
    parent.chmod(0o555)
    try:
        assert infer.main(["--data-root", str(data), "--split", "valid", "--ckpt", "random", "--out", str(out),
                           "--threads", "1", "--no-progress"])["done"] == 1
    finally:
        parent.chmod(0o755)
    assert sorted(p.name for p in out.iterdir()) == [".fvos_infer.valid00.json", "valid00"]


def test_a_second_pipeline_of_one_run_is_refused(tmp_path, monkeypatch, capsys):
    from fvos_utils.base import paths
    from fvos_utils.data.testing import write_stub_chapter
    from fvos_utils.run import pipeline

    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    write_stub_chapter(tmp_path, "00_data_and_metrics")
    (tmp_path / "params.yaml").write_text("run: locked\nchapters:\n  00_data_and_metrics: {}\n")
    with lock_holder(tmp_path / "outputs" / "locked") as holder:
        assert pipeline.main([str(tmp_path / "params.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'outputs' / 'locked'}: in use by another writer: pid {holder.pid} ")
    assert not (tmp_path / "outputs" / "locked" / "manifest.json").exists()


def test_a_second_recipe_into_one_work_folder_is_refused_before_any_pass(tmp_path):
    from fvos_utils.method import choices, recipe

    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    settings = recipe.RecipeSettings(choices.ModelChoice("fvos_tiny", "random", None, None, "test"),
                                     postprocess.GapFilling("paper", "square", 2), (1.0,), {})
    work = tmp_path / "work"
    with lock_holder(work) as holder:
        with pytest.raises(locks.OutputInUse, match=f"^{work}: in use by another writer: pid {holder.pid} "):
            recipe.run_recipe(settings, data, work, tmp_path / "sub.zip", split="valid", progress=False)
    assert not work.exists() and not (tmp_path / "sub.zip").exists()


# ----------------------------------------------------------------------------- the trainer's group
def test_killing_the_parent_of_a_trainer_ends_the_trainer(tmp_path):
    """``kill -9`` of ``train`` left its trainer running (ppid 1), writing a stage no lock guarded."""
    parent = ("import sys, time; from fvos_utils.method import train\n"
              "child = train.start_child_group([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
              "print(child.pid, flush=True); time.sleep(600)")
    env = {**os.environ, "PYTHONPATH": str(train.__file__).rsplit("/fvos_utils/", 1)[0]}
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env)
    child = int(proc.stdout.readline())
    assert os.getpgid(child) == child  # its own group: the trainer's helpers go with it
    proc.kill()
    proc.wait()
    for _ in range(600):  # the kernel signals it at once; this waits up to a minute for it to be gone
        try:
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"the trainer {child} outlived its parent")

"""Hostile inputs (a malicious params or data file, a careless batch user): nothing written or deleted
outside the folder a user named. Each test is one reproduced case of the hostile-input pass, by its number."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fvos_utils.base import io, paths
from fvos_utils.method import probs, train
from fvos_utils.run import book


def _escaping_probs(folder, video="v1", frames=("00000", "../../ESCAPED1")):
    """A probability file that is well formed but for a frame name leaving its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = np.zeros((len(frames), 1, 6, 8), np.uint8)
    scores[:, 0, 1:4, 2:6] = 255
    with open(folder / f"{video}{probs.SUFFIX}", "wb") as fh:
        np.savez_compressed(fh, probs=scores, object_ids=np.array([1], np.int32), frames=np.asarray(frames, dtype=str))
    return folder / f"{video}{probs.SUFFIX}"


def _fvos(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fvos_utils", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.parametrize("frame", ["../../ESCAPED1", "/tmp/ESCAPED1", "..", "a\\b"])
def test_case01_a_frame_name_from_a_probability_file_never_becomes_a_path(tmp_path, frame):
    source = _escaping_probs(tmp_path / "deep" / "er" / "in", frames=("00000", frame))
    with pytest.raises(io.DataError, match="frame name .* is not a plain file name") as refused:
        probs.load_probs(source)
    assert str(source) in str(refused.value)


@pytest.mark.parametrize("command", [["postprocess", "--from-probs", "--in", "deep/er/in"],
                                     ["fusion", "--fusion", "soft", "deep/er/in", "deep/er/in"]])
def test_case01_postprocess_and_soft_fusion_refuse_it_and_write_nothing_outside(tmp_path, command):
    source = _escaping_probs(tmp_path / "deep" / "er" / "in")
    done = _fvos(*command, "--out", "deep/er/out", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and str(source) in done.stderr
    assert not list(tmp_path.rglob("ESCAPED1*")) and not (tmp_path / "deep" / "er" / "out").exists()


def test_a_video_list_naming_a_folder_outside_is_refused_when_read(tmp_path):
    listed = tmp_path / "videos.txt"
    listed.write_text("v1\n../../elsewhere\n")
    with pytest.raises(io.DataError, match=r"video name '\.\./\.\./elsewhere' is not a plain folder name"):
        io.read_list_file(listed)


def _victim(root):
    """What a run escaping ``outputs/`` as ``../../elsewhere`` would write into or delete."""
    victim = root.parent / "elsewhere"
    for stage in (1, 2):
        (victim / "train" / f"stage{stage}").mkdir(parents=True)
        (victim / "train" / f"stage{stage}" / "kept.txt").write_text("mine")
    (victim / "book").mkdir()
    (victim / "book" / "notes.txt").write_text("mine")
    return victim


def test_case05_a_training_run_name_leaving_outputs_is_refused_before_anything(kit_root):
    victim = _victim(kit_root / "kit")
    params = kit_root / "params.yaml"
    params.write_text(yaml.safe_dump({"run": "t", "model": "fvos_tiny", "recipe": "fvos_tiny_pretrain",
                                      "device": "cpu", "data": {"root": "data/tiny", "split": "train"},
                                      "scratch": {"resolution": 64}, "stage1": {"init": "random", "epochs": 1}}))
    with pytest.raises(SystemExit) as done:
        train.main(["--params", str(params), "--stage", "1", "--restart", "--set", "run=../../elsewhere"])
    assert done.value.code == 2
    assert sorted(p.relative_to(victim).as_posix() for p in victim.rglob("*.txt")) == \
        ["book/notes.txt", "train/stage1/kept.txt", "train/stage2/kept.txt"]
    assert not (kit_root / "outputs").exists()
    with pytest.raises(io.DataError, match="run must be a plain folder name"):
        train.load_training_params(params, ["run=.."])


def test_case05_a_book_of_a_run_outside_outputs_is_refused_and_deletes_nothing(kit_root, capsys):
    victim = _victim(kit_root / "kit")
    assert book.main(["--run", "../../elsewhere"]) == 2
    assert "must be a plain folder name under outputs/" in capsys.readouterr().err
    assert (victim / "book" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("run", ["..", "../x", "a/b", "", "a\\b", "/etc"])
def test_no_run_name_but_a_plain_one_names_a_run(kit_root, run):
    with pytest.raises(ValueError, match="plain folder name"):
        paths.run_dir(run)


@pytest.mark.parametrize("inside", ["../x/train", "demo/../../x", "/abs/x", "demo/..", "demo//x"])
def test_no_folder_made_for_a_run_lies_outside_outputs(kit_root, inside):
    with pytest.raises(ValueError):
        paths.outputs_dir(inside)
    assert not (kit_root / "outputs").exists() or not any((kit_root / "outputs").iterdir())


@pytest.mark.parametrize("inside", [False, True])
def test_case02_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, inside):
    from fvos_utils.base import locks

    victim = tmp_path / "VICTIM"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    locks.lock_path(out, inside=inside).symlink_to(victim)
    with pytest.raises(io.DataError, match="symbolic link stands where"):
        with locks.exclusive(out, inside=inside):
            pass
    assert victim.read_text() == "precious\n"


def test_case02_a_lock_file_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    import os

    from fvos_utils.base import locks

    out = tmp_path / "out"
    os.mkfifo(locks.lock_path(out))
    with pytest.raises(io.DataError, match="not a regular file"):
        with locks.exclusive(out):
            pass


@pytest.mark.parametrize("out", ["D/valid_gt/Annotations", "D/valid_gt", "D", "D/valid", "D/valid/pred", "."])
def test_case03_the_dataset_and_its_ground_truth_are_never_an_output(tmp_path, monkeypatch, out):
    import shutil

    from fvos_utils.data import testing
    from fvos_utils.method import infer

    root = testing.write_mose_layout(tmp_path / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    truth = root / "valid_gt" / "Annotations"
    shutil.copytree(root / "valid" / "Annotations", truth)
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    monkeypatch.chdir(tmp_path / "D" if out == "." else tmp_path)
    with pytest.raises(SystemExit) as done:
        infer.console_main(["--data-root", str(root), "--split", "valid", "--ckpt", "random", "--out", out,
                            "--no-progress", "--threads", "1"])
    assert done.value.code == 2
    after = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert after == before


def _with_the_kit_s_notebooks(root):
    """A kit folder of its own (``kit_root``) that reads params files against the kit's chapters."""
    (root / "notebooks").symlink_to(paths.KIT_DIR / "notebooks")


@pytest.mark.parametrize("target", ["annotation", "params", "data root"])
def test_case04_the_recipe_s_zip_never_replaces_an_input(kit_root, target, capsys):
    from fvos_utils.data import testing
    from fvos_utils.method import recipe

    _with_the_kit_s_notebooks(kit_root)

    root = testing.write_mose_layout(kit_root / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    params = kit_root / "p.yaml"
    params.write_text(yaml.safe_dump({"run": "r", "chapters": {"06_multiscale_fusion": {"model": "fvos_tiny"}}}))
    annotation = next((root / "valid" / "Annotations").rglob("*.png"))
    out = {"annotation": annotation, "params": params, "data root": root / "fvos_valid.zip"}[target]
    before = {p: p.read_bytes() for p in sorted(kit_root.rglob("*")) if p.is_file()}
    with pytest.raises(SystemExit) as done:
        recipe.main(["--params", str(params), "--data-root", str(root), "--out", str(out), "--no-progress"])
    assert done.value.code == 2
    assert "an input of the recipe: write the zip elsewhere" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in sorted(kit_root.rglob("*")) if p.is_file()} == before


@pytest.mark.parametrize("environment", [{"RANK": "1"}, {"LOCAL_RANK": "1"}, {"RANK": "1", "WORLD_SIZE": "2"},
                                         {"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}])
def test_case07_a_stray_rank_neither_skips_the_lock_nor_a_share_of_the_videos(tmp_path, monkeypatch, environment):
    from fvos_utils.base import locks
    from fvos_utils.data.testing import lock_holder

    out = tmp_path / "rk1"
    with lock_holder(out):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match="no distributed launch|outside the launch"):
            with locks.exclusive(out):
                pass


def test_case24_a_rank_that_is_not_a_number_is_one_clear_line(monkeypatch):
    from fvos_utils.base import locks

    monkeypatch.setenv("RANK", "abc")
    with pytest.raises(ValueError, match=r"RANK='abc' is not a number"):
        locks.distributed_launch()


def test_case22_the_same_weights_saved_twice_are_the_same_bytes(tmp_path):
    import torch

    from fvos_utils.method import models

    model = torch.nn.Linear(3, 2)
    models.save_checkpoint(model, tmp_path / "epoch_001.pt")
    models.save_checkpoint(model, tmp_path / "again" / "epoch_001.pt")
    models.save_checkpoint(model, tmp_path / "epoch_002.pt")
    first = (tmp_path / "epoch_001.pt").read_bytes()
    assert (tmp_path / "again" / "epoch_001.pt").read_bytes() == first == (tmp_path / "epoch_002.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "epoch_002.pt", weights_only=True)["model"]["weight"], model.weight)


def test_case08_a_yaml_alias_is_refused_in_one_line_before_it_expands(tmp_path):
    from fvos_utils.run import pipeline

    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]"
                                                        for i in range(1, 10)]
    params = tmp_path / "bomb.yaml"
    params.write_text("run: r\n" + "\n".join(bomb) + "\nchapters:\n  00_data_and_metrics:\n    n_show: *a9\n")
    with pytest.raises(pipeline.PipelineError, match=r"bomb\.yaml: not valid YAML .*an alias \(\*a0\)"):
        pipeline.load_run_params(params)
    with pytest.raises(io.DataError, match=r"an alias \(\*a0\)"):
        train.load_training_params(params)


def test_case24_a_key_given_twice_and_a_file_that_is_not_utf8_name_the_file(tmp_path):
    from fvos_utils.run import pipeline

    twice = tmp_path / "twice.yaml"
    twice.write_text("run: a\nrun: b\n")
    with pytest.raises(pipeline.PipelineError, match=r"twice\.yaml: not valid YAML .*the key 'run' is given twice"):
        pipeline.load_run_params(twice)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("run: caf\xe9\n".encode("latin-1"))
    with pytest.raises(io.DataError, match=r"latin\.yaml: not UTF-8 text"):
        train.load_training_params(latin)


def test_case15_a_second_generator_into_the_same_folder_is_refused(tmp_path):
    from fvos_utils.data import synthetic
    from fvos_utils.data.testing import lock_holder

    out = tmp_path / "S"
    with lock_holder(out):  # the first generator, still writing
        with pytest.raises(io.DataError, match="in use by another writer"):
            synthetic.generate(out, seed=4, config=synthetic.PRESETS["mini-mose"], progress=False)
    assert not out.exists()


def test_case17_a_second_book_of_the_same_run_is_refused(kit_root, capsys):
    import nbformat

    from fvos_utils.data.testing import lock_holder

    paths.outputs_dir("demo")
    nbformat.write(nbformat.v4.new_notebook(), paths.run_dir("demo") / "00_data_and_metrics.ipynb")
    with lock_holder(paths.run_dir("demo") / "book"):
        assert book.main(["--run", "demo"]) == 2
    assert "in use by another writer" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, words", [("--scale", "64", "above the largest the kit runs"),
                                                   ("--scale", "1e6", "above the largest the kit runs"),
                                                   ("--threads", "-1", "threads must be 1 to"),
                                                   ("--threads", "1000", "threads must be 1 to")])
def test_case18_19_21_scale_and_threads_beyond_the_machine_are_refused_before_any_work(tmp_path, capsys, option,
                                                                                       value, words):
    from fvos_utils.data import testing
    from fvos_utils.method import infer

    root = testing.write_mose_layout(tmp_path / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    with pytest.raises(SystemExit) as done:
        infer.console_main(["--data-root", str(root), "--split", "valid", "--ckpt", "random", "--out",
                            str(tmp_path / "out"), "--no-progress", option, value])
    assert done.value.code == 2
    error = capsys.readouterr().err.strip()
    assert words in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_case20_an_empty_split_is_refused_not_reported_done(tmp_path, capsys):
    from fvos_utils.method import infer

    (tmp_path / "D" / "valid" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "D" / "valid" / "Annotations").mkdir(parents=True)
    with pytest.raises(SystemExit) as done:
        infer.console_main(["--data-root", str(tmp_path / "D"), "--split", "valid", "--ckpt", "random", "--out",
                            str(tmp_path / "out"), "--no-progress", "--threads", "1"])
    assert done.value.code == 2 and "no videos here to predict" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_case09_a_frame_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, kind):
    import os

    from fvos_utils.data import testing

    root = testing.write_mose_layout(tmp_path / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    video = root / "valid" / "JPEGImages" / "valid00"
    frame = video / "00001.jpg"
    frame.unlink()
    if kind == "device":
        frame.symlink_to("/dev/zero")
    else:
        os.mkfifo(frame)
    with pytest.raises(io.DataError, match="not a regular file") as refused:
        io.VOSDataset(root, "valid").video("valid00")  # what inference, evaluation and the viewer read frames through
    assert str(frame) in str(refused.value)


def test_case14_a_zip_path_that_cannot_be_written_is_refused_before_any_pass(kit_root, capsys):
    from fvos_utils.data import testing
    from fvos_utils.method import recipe

    _with_the_kit_s_notebooks(kit_root)

    root = testing.write_mose_layout(kit_root / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    params = kit_root / "p.yaml"
    params.write_text(yaml.safe_dump({"run": "r", "chapters": {"06_multiscale_fusion": {"model": "fvos_tiny"}}}))
    with pytest.raises(SystemExit) as done:
        recipe.main(["--params", str(params), "--data-root", str(root), "--out", "/proc/fvos.zip", "--no-progress"])
    assert done.value.code == 2 and "/proc/fvos.zip: cannot be written" in capsys.readouterr().err
    assert not (kit_root / "outputs" / "r" / "06_multiscale_fusion").exists()


def test_case06_a_probabilities_folder_belongs_to_one_prediction_folder(tmp_path, capsys):
    from fvos_utils.data import testing
    from fvos_utils.method import infer

    root = testing.write_mose_layout(tmp_path / "D", n_train=1, n_valid=2, n_frames=3, height=32, width=32)

    def run(out, *more):
        return infer.console_main(["--data-root", str(root), "--split", "valid", "--ckpt", "random", "--out",
                                   str(tmp_path / out), "--probs-dir", str(tmp_path / "S"), "--save-probs",
                                   "--no-progress", "--threads", "1", *more])

    assert run("pdA") == 0
    kept = {p.name: p.read_bytes() for p in (tmp_path / "S").glob("*.npz")}
    with pytest.raises(SystemExit) as done:
        run("pdB", "--scale", "1.5")
    assert done.value.code == 2
    assert f"holds the probabilities of {tmp_path / 'pdA'}" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "S").glob("*.npz")} == kept and len(kept) == 2
    assert not (tmp_path / "pdB").exists() or not any((tmp_path / "pdB").iterdir())
    capsys.readouterr()
    assert run("pdA") == 0  # its own rerun: everything done already
    assert '"skipped": 2' in capsys.readouterr().out


def _train_params(folder):
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump({"run": "t", "model": "fvos_tiny", "recipe": "fvos_tiny_pretrain", "device": "cpu",
                                      "data": {"root": "data/tiny", "split": "train"},
                                      "scratch": {"resolution": 64}, "stage1": {"init": "random", "epochs": 1}}))
    return params


@pytest.mark.parametrize("override, words", [("scratch.resolution=0", "scratch.resolution must be a whole number of at"),
                                             ("scratch.resolution=-16", "scratch.resolution must be a whole number"),
                                             ("scratch.num_frames=0", "scratch.num_frames must be a whole number"),
                                             ("scratch.max_num_objects=-1", "scratch.max_num_objects must be a whole"),
                                             ("stage1.scratch.base_lr=abc", "stage1.scratch.base_lr must be a positive")])
def test_case13_training_values_the_trainer_cannot_use_are_refused_with_the_file(kit_root, override, words):
    params = _train_params(kit_root)
    with pytest.raises(io.DataError, match=f"{params}: {words}"):
        train.load_training_params(params, [override])


def test_case13_a_starting_checkpoint_that_is_no_checkpoint_is_refused_before_the_stage_is_made(kit_root, capsys):
    params = _train_params(kit_root)
    with pytest.raises(SystemExit) as done:
        train.main(["--params", str(params), "--stage", "1", "--set", "stage1.init=/etc/passwd"])
    assert done.value.code == 2
    assert "/etc/passwd: not a readable PyTorch checkpoint" in capsys.readouterr().err
    assert not (kit_root / "outputs" / "t" / "train").exists()


def test_case10_a_compressed_bomb_is_refused_from_its_header_before_it_is_unpacked(tmp_path):
    """The header of ``probs.npy`` declares a shape far beyond this machine's memory; its data is a few bytes."""
    import os
    import zipfile

    declared = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # all of the memory, in uint8 pixels
    side = int(declared ** 0.5) + 1
    header = {"descr": "|u1", "fortran_order": False, "shape": (1, 1, side, side)}
    bomb = tmp_path / "v.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("probs.npy", "w") as handle:
            np.lib.format.write_array_header_1_0(handle, header)
            handle.write(b"\0" * 1024)
        for name, array in (("object_ids", np.array([1], np.int32)), ("frames", np.array(["00000"]))):
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, array)
    assert bomb.stat().st_size < 10_000
    with pytest.raises(io.DataError, match=r"GiB unpacked, more than half of this machine's memory"):
        probs.load_probs(bomb)


def test_case16_what_another_user_s_killed_run_left_in_a_shared_folder_does_not_block_the_next(tmp_path):
    """A shared (sticky, world-writable) folder of another user holding that user's leftovers of an output: its
    lock file (0644) and a temporary folder. This user then writes that output. As root, "this user" is root
    without the capabilities that let it write or delete others' files (``setpriv``, util-linux)."""
    import os
    import pwd
    import shutil

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to act as a user who cannot touch another's files")
    other = pwd.getpwnam("nobody").pw_uid
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / ".out.lock").write_text("{}")
    (shared / ".out.lock").chmod(0o644)
    (shared / ".out.abcd1234.tmp").mkdir()
    for left in (shared, shared / ".out.lock", shared / ".out.abcd1234.tmp"):
        os.chown(left, other, -1)
    script = ("import sys; from pathlib import Path; from fvos_utils.base import io, locks\n"
              "out = Path(sys.argv[1])\n"
              "with locks.exclusive(out):\n"
              "    io.remove_leftovers(out)\n"
              "    with io.atomic_dir(out) as tmp:\n"
              "        (tmp / 'done.txt').write_text('ok')\n")
    caps = "-dac_override,-fowner,-dac_read_search"
    done = subprocess.run([setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--", sys.executable, "-c",
                           script, str(shared / "out")], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(paths.KIT_DIR)})
    assert done.returncode == 0, done.stderr
    assert (shared / "out" / "done.txt").read_text() == "ok"


@pytest.mark.slow
def test_case11_chapter_00_alone_uses_an_existing_set_of_its_seed(kit_root):
    """A set made with ``fvos synthetic`` (its own counts and sizes) of the seed the run asks for: chapter 00
    alone reads it as the documents say, instead of refusing it (~40 s)."""
    from dataclasses import replace

    from fvos_utils.data import synthetic
    from fvos_utils.run import pipeline

    config = replace(synthetic.PRESETS["mini-mose"], videos_train=2, videos_valid=6, videos_test=2, frames=(4, 5),
                     size=(96, 64))
    _with_the_kit_s_notebooks(kit_root)
    synthetic.generate(kit_root / "data" / "s1", seed=1, config=config, progress=False)
    params = kit_root / "c11.yaml"
    params.write_text(yaml.safe_dump({"run": "c11", "common": {"seed": 1, "data_root": "data/s1"},
                                      "chapters": {"00_data_and_metrics": {"n_show": 1}}}))
    manifest = pipeline.run_pipeline(params, only=["00_data_and_metrics"])
    assert manifest["chapters"]["00_data_and_metrics"]["status"] == "done"


def test_case19_a_folder_where_the_lock_file_goes_is_one_clear_line(tmp_path, capsys):
    from fvos_utils.data import testing
    from fvos_utils.method import infer

    root = testing.write_mose_layout(tmp_path / "D", n_train=1, n_valid=1, n_frames=3, height=32, width=32)
    (tmp_path / "out" / ".fvos.lock").mkdir(parents=True)
    with pytest.raises(SystemExit) as done:
        infer.console_main(["--data-root", str(root), "--split", "valid", "--ckpt", "random", "--out",
                            str(tmp_path / "out"), "--no-progress", "--threads", "1"])
    assert done.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and ".fvos.lock: " in error


@pytest.mark.parametrize("override, words", [
    ("06_multiscale_fusion.scales=[a, b]", "chapters.06_multiscale_fusion.scales: 'a' is not a finite number"),
    ("06_multiscale_fusion.scales=[]", "chapters.06_multiscale_fusion.scales: the list is empty"),
    ("06_multiscale_fusion.scales=[.nan]", "chapters.06_multiscale_fusion.scales: nan is not a finite number"),
    ("06_multiscale_fusion.scales=[1.0, -1.0]", "-1.0 is not above 0"),
    ("06_multiscale_fusion.fill_kernel=100000000", "fill_kernel: kernel_size must be at most 4097"),
    ("06_multiscale_fusion.fill_shape=hexagon", "fill_shape: unknown value 'hexagon'; choose from square, circle"),
    ("06_multiscale_fusion.transforms=[explode]", "transforms: unknown value 'explode'"),
    ("06_multiscale_fusion.transforms=[hflip, identity]", "transforms: must start with identity"),
    ("common.threads=-3", "common.threads (for chapter 01_sam2_inference): threads must be 1 to"),
    ("06_multiscale_fusion.n_videos=-5", "chapters.06_multiscale_fusion.n_videos: must be at least 0, got -5"),
    ("common.data_root=README.md", "README.md is a file, not a dataset folder"),
    ("04_sigmoid_search.sigmoid_biases=[.inf]", "sigmoid_biases: inf is not a finite number"),
    ("05_morphology_ablation.kernel_sizes=[2, -1]", "kernel_sizes: kernel_size must be a non-negative integer"),
    ("05_morphology_ablation.methods=[paper, magic]", "methods: unknown value 'magic'"),
    ("06_multiscale_fusion.model=nope", "model: unknown model 'nope'")])
def test_case12_pipeline_values_a_chapter_cannot_use_are_refused_before_any_chapter(override, words, capsys):
    """``--show`` and a run check every chapter's values before the first chapter: one line naming the
    origin (the file or --set), chapter and key. Before, --show accepted them and the run failed inside the
    chapter that read them, after the chapters before it."""
    from fvos_utils import cli

    assert cli.main(["pipeline", str(paths.KIT_DIR / "params" / "demo.yaml"), "--set", override, "--show"]) == 1
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err.startswith("error: --set: ") and words in shown.err
    assert len(shown.err.splitlines()) == 1


def test_case12_the_python_entry_point_checks_the_values_too(kit_root):
    from fvos_utils import run_pipeline
    from fvos_utils.run import pipeline

    params = kit_root / "run.yaml"
    params.write_text(yaml.safe_dump({"run": "r", "chapters": {"06_multiscale_fusion": {"fill_shape": "hexagon"}}}))
    (kit_root / "notebooks").symlink_to(paths.KIT_DIR / "notebooks")
    with pytest.raises(pipeline.PipelineError, match=rf"{params}: chapters.06_multiscale_fusion.fill_shape: unknown"):
        run_pipeline(params)
    assert not (kit_root / "outputs").exists()  # refused before the run's folder was made


@pytest.mark.parametrize("command", [["postprocess", "--in", "missing", "--out", "new/deeper/out"],
                                     ["fusion", "--out", "new/deeper/out", "missing", "missing"]])
def test_case24_a_refused_command_leaves_no_empty_folder_behind(tmp_path, command):
    """The folders made for the output's lock were left empty when the command was then refused."""
    refused = _fvos(*command, cwd=tmp_path)
    assert refused.returncode == 2 and "missing: prediction folder not found" in refused.stderr
    assert sorted(tmp_path.iterdir()) == []

"""Checked before the work, not after: each bad path or value a command line is given is one error line
naming the file, before any long work starts and before anything is written."""
import zipfile

import numpy as np
import pytest
from PIL import Image

from fvos_utils.base import io
from fvos_utils.data.testing import command_error, write_mose_layout
from fvos_utils.method import fusion, infer, postprocess
from fvos_utils.method.probs import save_probs


def _probs_folders(root, count=2, *, ids=(1, 2)):
    """``count`` folders ``p<k>/v.npz`` of two frames' probabilities of objects ``ids``."""
    rng = np.random.default_rng(0)
    for k in range(count):
        save_probs(root / f"p{k}" / "v.npz", rng.integers(0, 256, (2, len(ids), 6, 8)).astype(np.uint8), ids,
                   ["00000", "00001"])
    return [str(root / f"p{k}") for k in range(count)]


def _fuse(folders, out):
    return ["--fusion", "soft", *folders, "--out", str(out), "--no-progress"]


def _fill(folders, out):
    return ["--in", folders[0], "--from-probs", "--out", str(out), "--no-progress"]


@pytest.mark.parametrize("main, argv", [(fusion.main, _fuse), (postprocess.main, _fill)], ids=["fusion", "postprocess"])
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_probability_file_is_one_line_naming_it(tmp_path, main, argv, damage):
    folders = _probs_folders(tmp_path)
    npz = tmp_path / "p0" / "v.npz"
    npz.write_bytes(b"" if damage == "empty" else npz.read_bytes()[:len(npz.read_bytes()) // 2])
    error = command_error(main, argv(folders, tmp_path / "out"))
    assert error.startswith(f"error: {npz}: not a probability file written by fvos_utils.method.probs, or truncated (")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("main, argv", [(fusion.main, _fuse), (postprocess.main, _fill)], ids=["fusion", "postprocess"])
def test_a_probability_file_with_object_id_0_is_refused_naming_it(tmp_path, main, argv):
    """Soft fusion used to exit 0 with object 1 turned into background."""
    folders = _probs_folders(tmp_path, ids=(0, 1))
    error = command_error(main, argv(folders, tmp_path / "out"))
    assert error == f"error: {tmp_path / 'p0' / 'v.npz'}: object ids must be distinct and lie in 1..254, got [0, 1]"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["JPEGImages", "Annotations"])
def test_infer_into_the_datasets_own_folders_is_refused_before_creating_anything(tmp_path, inside):
    """``infer --out DATASET/valid/JPEGImages/pred`` created an empty ``pred`` "video" that broke every
    later run on the dataset, then blamed the data."""
    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    out = data / "valid" / inside / "pred"
    error = command_error(infer.main, ["--data-root", str(data), "--split", "valid", "--ckpt", "random",
                                       "--out", str(out), "--threads", "1", "--no-progress"])
    assert error == (f"error: {out}: inside the dataset's folder {data / 'valid' / inside}: an output must be outside "
                     "the data it is made from; choose another output folder")
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_a_long_legal_video_name_is_predicted_and_resumed(tmp_path):
    """A 230-character name made the record's temporary name too long: predicted, then OSError, and the
    same again on every rerun. A name too long for the record itself is refused before the work."""
    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    long_name = "v" * 230
    for folder in ("JPEGImages", "Annotations"):
        (data / "valid" / folder / "valid00").rename(data / "valid" / folder / long_name)
    argv = ["--data-root", str(data), "--split", "valid", "--ckpt", "random", "--out", str(tmp_path / "pred"),
            "--threads", "1", "--no-progress"]
    assert infer.main(argv)["done"] == 1
    assert sorted(p.name for p in (tmp_path / "pred" / long_name).iterdir()) == ["00000.png", "00001.png"]
    assert infer.main(argv)["skipped"] == 1
    longest = "w" * 250
    for folder in ("JPEGImages", "Annotations"):
        (data / "valid" / folder / long_name).rename(data / "valid" / folder / longest)
    assert command_error(infer.main, argv) == (
        f"error: {data / 'valid' / 'JPEGImages' / longest}: video name too long for its record in "
        f"{tmp_path / 'pred'} (12 bytes over a file name's 255): rename the video")


def _label_folder(folder, frames=("00000", "00001", "00002")):
    for frame in frames:
        labels = np.zeros((8, 10), np.uint8)
        labels[2:5, 2:5] = 1
        io.write_mask(folder / "v" / f"{frame}.png", labels)
    return folder


@pytest.mark.parametrize("main", [fusion.main, postprocess.main], ids=["fusion", "postprocess"])
@pytest.mark.parametrize("odd, message", [
    ("00003.PNG", "a prediction frame must end in .png (the name the kit reads and writes), not .PNG: rename it"),
    ("thumbnail.png", "frame name 'thumbnail' does not follow the pattern '#####' of the other frames"),
])
def test_postprocess_and_fusion_read_frames_as_the_data_readers_do(tmp_path, main, odd, message):
    """``00003.PNG`` was dropped silently and ``thumbnail.png`` processed as a frame (rc 0)."""
    source = _label_folder(tmp_path / "in")
    (source / "v" / "00000.png").rename(source / "v" / odd)
    argv = ["--in", str(source)] if main is postprocess.main else [str(source), str(source)]
    error = command_error(main, argv + ["--out", str(tmp_path / "out"), "--no-progress"])
    assert error.startswith(f"error: {source / 'v' / odd}: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("main", [fusion.main, postprocess.main], ids=["fusion", "postprocess"])
def test_a_rerun_removes_what_a_killed_postprocess_or_fusion_left_and_nothing_else(tmp_path, main):
    """A killed run leaves its hidden temporary folder (380 PNGs at full size) beside --out."""
    source = _label_folder(tmp_path / "in")
    left = tmp_path / ".out.k3j_a8x1.tmp"
    _label_folder(left)
    others = [tmp_path / ".outer.q1w2e3r4.tmp", tmp_path / ".out.notes"]
    for path in others:
        path.mkdir()
    argv = ["--in", str(source)] if main is postprocess.main else [str(source), str(source)]
    assert main(argv + ["--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert not left.exists() and all(path.is_dir() for path in others)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".outer.q1w2e3r4.tmp", ".out.notes", "in", "out"])


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_a_recipe_zip_path_that_cannot_be_written_is_refused_before_any_pass(tmp_path, where):
    """``recipe --out runs`` (a folder) or ``--out afile/x.zip`` ran the whole recipe, then a traceback."""
    from fvos_utils.method import choices, recipe

    data = write_mose_layout(tmp_path / "data", n_train=1, n_valid=1, n_frames=2)
    (tmp_path / "runs").mkdir()
    (tmp_path / "afile").write_text("mine")
    zip_path = tmp_path / "runs" if where == "a folder" else tmp_path / "afile" / "x.zip"
    settings = recipe.RecipeSettings(choices.ModelChoice("fvos_tiny", "random", None, None, "test"),
                                     postprocess.GapFilling("paper", "square", 2), (1.0,), {})
    message = (f"{zip_path}: a folder, not a file" if where == "a folder"
               else f"{tmp_path / 'afile'}: a file, not a folder: {zip_path} cannot be written")
    with pytest.raises(io.DataError, match=f"^{message}"):
        recipe.run_recipe(settings, data, tmp_path / "work", zip_path, split="valid", progress=False)
    assert not (tmp_path / "work").exists() and (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize("kernel", [postprocess.MAX_KERNEL_SIZE + 1, 1_000_000])
def test_a_kernel_larger_than_any_frame_needs_is_refused_before_the_work(tmp_path, kernel):
    """``--kernel 100000`` took 9.9 GB and 41 s for 15 tiny frames; ``--kernel 1000000`` a 931 GiB traceback."""
    source = _label_folder(tmp_path / "in")
    assert command_error(postprocess.main, ["--in", str(source), "--kernel", str(kernel), "--out",
                                            str(tmp_path / "out"), "--no-progress"]) == \
        f"error: kernel_size must be at most 4097 (it then covers a 2048-pixel frame whole), got {kernel}"
    assert not (tmp_path / "out").exists()


def test_evaluate_tags_that_are_no_text_file_is_one_line_naming_it(tmp_path, capsys):
    """``evaluate --tags FILE.png``: a UTF-8 decode message without the file's name."""
    from fvos_utils.data.testing import write_dataset
    from fvos_utils.metrics import evaluate

    gt, pred = write_dataset(tmp_path, n_videos=1, height=8, width=10, n_frames=3)
    png = next(gt.rglob("*.png"))
    assert evaluate.main(["--gt", str(gt), "--pred", str(pred), "--tags", str(png), "--quiet"]) == 1
    assert capsys.readouterr().err == f"error: {png}: not a JSON file (not UTF-8 text)\n"


def test_the_report_alone_on_an_empty_run_names_the_run(tmp_path, monkeypatch, capsys):
    """``pipeline --only 07_report`` on an empty run said "the table has no columns"."""
    from fvos_utils.base import paths
    from fvos_utils.data.testing import write_stub_chapter
    from fvos_utils.run import pipeline

    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    write_stub_chapter(tmp_path, "07_report")
    (tmp_path / "params.yaml").write_text("run: empty\nchapters:\n  07_report: {}\n")
    assert pipeline.main([str(tmp_path / "params.yaml"), "--only", "07_report"]) == 1
    assert capsys.readouterr().err == ("error: no chapter of run 'empty' has run: 07_report reports on the others; "
                                       "run them first (without --only)\n")
    assert not (tmp_path / "outputs" / "empty" / "07_report.ipynb").exists()


def test_the_recipe_on_a_second_data_root_does_not_resume_the_firsts_work(tmp_path, monkeypatch, capsys):
    """The work folder was keyed by run and split: a second root holding a subset of the first's videos
    failed (`video not in the val folder`), the first root's passes being resumed."""
    from fvos_utils.base.io import remove_dir
    from fvos_utils.method import choices, recipe

    run = "pytest-recipe-two-roots"
    remove_dir(choices.run_dir(run))
    full = write_mose_layout(tmp_path / "full", n_train=1, n_valid=2, n_frames=2)
    subset = write_mose_layout(tmp_path / "subset", n_train=1, n_valid=1, n_frames=2)
    params = tmp_path / "recipe.yaml"
    params.write_text(f"run: {run}\nchapters:\n  06_multiscale_fusion:\n    ckpt: random\n    scales: [1.0]\n"
                      f"    server_split: valid\n")
    argv = ["--params", str(params), "--threads", "1", "--no-progress"]
    try:
        for root, videos in ((full, ["valid00", "valid01"]), (subset, ["valid00"])):
            out = tmp_path / f"{root.name}.zip"
            assert recipe.main(argv + ["--data-root", str(root), "--out", str(out)]) == 0
            with zipfile.ZipFile(out) as archive:
                assert sorted({name.split("/")[1] for name in archive.namelist()}) == videos
        # an edited first-frame mask: its stale masks must not reach the zip (they did: the passes resumed)
        first = subset / "valid" / "Annotations" / "valid00" / "00000.png"
        edited = io.read_mask(first).copy()
        edited[edited == 2] = 0
        io.write_mask(first, edited)
        capsys.readouterr()
        with pytest.raises(SystemExit) as refused:
            recipe.main(argv + ["--data-root", str(subset), "--out", str(tmp_path / "edited.zip")])
        assert refused.value.code == 2 and "valid00: annotations_sha256: " in capsys.readouterr().err
        assert recipe.main(argv + ["--data-root", str(subset), "--out", str(tmp_path / "edited.zip"),
                                   "--overwrite"]) == 0
        with zipfile.ZipFile(tmp_path / "edited.zip") as archive:
            for name in archive.namelist():
                with archive.open(name) as png:
                    assert 2 not in np.unique(np.asarray(Image.open(png)))
    finally:
        remove_dir(choices.run_dir(run))

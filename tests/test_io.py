"""Data layer: palette, masks, frames, layouts, splits, atomic writes and the errors bad input gets."""
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fvos_utils.base import io
from fvos_utils.base.paths import shared_samples_dir


def _write_video(root: Path, name: str, n_frames: int = 3, size=(24, 32), annotate=(0,)):
    h, w = size
    for t in range(n_frames):
        io.write_frame(root / "JPEGImages" / name / f"{t:05d}.jpg", np.full((h, w, 3), 40 * t, np.uint8))
    for t in annotate:
        labels = np.zeros((h, w), np.uint8)
        labels[2:8, 3:9] = 1
        labels[10:14, 10:20] = 2
        io.write_mask(root / "Annotations" / name / f"{t:05d}.png", labels)


# ------------------------------------------------------------------------------------------ palette
def test_davis_palette_matches_published_colours():
    # colours of the DAVIS / PASCAL VOC palette as published (an independent reference)
    pal = io.davis_palette()
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                5: (128, 0, 128), 6: (0, 128, 128), 7: (128, 128, 128), 8: (64, 0, 0), 9: (192, 0, 0),
                15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    for index, rgb in expected.items():
        assert tuple(pal[index]) == rgb, index
    assert len({tuple(c) for c in pal}) == 256  # every id has its own colour


@pytest.mark.skipif(shared_samples_dir() is None, reason="../shared/data/samples not present")
def test_palette_equals_real_annotation_palettes():
    samples = shared_samples_dir()
    chair = Image.open(samples / "xmempp_chair" / "Annotations" / "chair" / "00000.png")
    assert np.array_equal(np.array(chair.getpalette(), np.uint8).reshape(-1, 3), io.davis_palette())
    # bmx-trees comes from another tool whose palette agrees only on the low ids it uses
    bmx = Image.open(samples / "davis_bmx-trees" / "Annotations" / "bmx-trees" / "00000.png")
    assert np.array_equal(np.array(bmx.getpalette(), np.uint8).reshape(-1, 3)[:9], io.davis_palette()[:9])


# -------------------------------------------------------------------------------------------- masks
def test_mask_round_trip_is_exact_and_palette(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 255, (17, 23)).astype(np.uint8)
    path = tmp_path / "a" / "m.png"
    io.write_mask(path, labels)
    assert (io.read_mask(path) == labels).all()
    img = Image.open(path)
    assert img.mode == "P"
    assert list(img.getpalette()[:6]) == [0, 0, 0, 128, 0, 0]
    assert [p.name for p in path.parent.iterdir()] == ["m.png"]  # no temporary left behind


def test_mask_writes_are_deterministic(tmp_path):
    labels = np.arange(20 * 30, dtype=np.int64).reshape(20, 30) % 7
    io.write_mask(tmp_path / "a.png", labels)
    io.write_mask(tmp_path / "b.png", labels)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_grayscale_masks_are_read_as_ids(tmp_path):
    Image.fromarray(np.array([[0, 3], [255, 1]], np.uint8), mode="L").save(tmp_path / "g.png")
    assert io.read_mask(tmp_path / "g.png").tolist() == [[0, 3], [255, 1]]


def test_rgb_annotation_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "rgb.png"
    Image.new("RGB", (4, 4), (128, 0, 0)).save(path)
    with pytest.raises(io.DataError, match=r"rgb\.png.*mode 'RGB'.*palette"):
        io.read_mask(path)


def test_truncated_png_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.png"
    io.write_mask(path, np.random.default_rng(1).integers(0, 5, (64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(io.DataError, match=r"cut\.png: unreadable or truncated"):
        io.read_mask(path)


def test_missing_mask_is_an_error(tmp_path):
    with pytest.raises(io.DataError, match="nope.png: file not found"):
        io.read_mask(tmp_path / "nope.png")


@pytest.mark.parametrize("bad", [np.full((3, 3), 255), np.full((3, 3), 300), np.full((3, 3), -1)])
def test_labels_above_254_are_refused_and_nothing_is_written(tmp_path, bad):
    path = tmp_path / "bad.png"
    with pytest.raises(io.DataError, match=r"bad\.png: label values must lie in 0\.\.254"):
        io.write_mask(path, bad)
    assert list(tmp_path.iterdir()) == []


def test_void_label_can_be_written_when_asked(tmp_path):
    io.write_mask(tmp_path / "v.png", np.full((2, 2), 255), allow_void=True)
    assert (io.read_mask(tmp_path / "v.png") == 255).all()


def test_non_integer_labels_are_refused(tmp_path):
    with pytest.raises(io.DataError, match="integer ids"):
        io.write_mask(tmp_path / "f.png", np.zeros((2, 2), np.float32))


# ------------------------------------------------------------------------------------ atomic writes
def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "keep.json"
    io.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert io.read_json(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_atomic_dir_leaves_nothing_on_failure_and_refuses_overwrite(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with io.atomic_dir(target) as tmp:
            (tmp / "x").write_text("1")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with io.atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert (target / "x").read_text() == "1"
    with pytest.raises(FileExistsError, match="ds: already exists"):
        with io.atomic_dir(target):
            pass
    with io.atomic_dir(target, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["y"]


@pytest.fixture(params=[0o022, 0o027], ids=lambda mask: f"umask{mask:03o}")
def umask(request):
    """Run the test under this umask, restoring the previous one afterwards."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_permissions_the_umask_gives(tmp_path, umask):
    """A lab mate on a shared machine reads what a plain open() / mkdir() would let them read."""
    file_mode, folder_mode = 0o666 & ~umask, 0o777 & ~umask
    with io.atomic_path(tmp_path / "notes.txt") as tmp:
        tmp.write_text("1")
    io.write_json(tmp_path / "metrics.json", {"a": 1})
    with io.atomic_dir(tmp_path / "predictions") as tmp:
        io.write_mask(tmp / "video" / "00000.png", np.zeros((4, 4), np.uint8))
        io.write_frame(tmp / "video" / "00000.jpg", np.zeros((4, 4, 3), np.uint8))
        (tmp / "plain.txt").write_text("2")
    written = tmp_path / "predictions"
    assert {name: _mode(tmp_path / name) for name in ("notes.txt", "metrics.json")} == \
        {"notes.txt": file_mode, "metrics.json": file_mode}
    assert _mode(written) == folder_mode and _mode(written / "video") == folder_mode
    assert {p.name: _mode(p) for p in [*(written / "video").iterdir(), written / "plain.txt"]} == \
        {"00000.png": file_mode, "00000.jpg": file_mode, "plain.txt": file_mode}
    assert os.umask(umask) == umask  # the umask read is put back as it was


def test_remove_dir_takes_a_folder_away_in_one_step(tmp_path, monkeypatch):
    target = tmp_path / "stage1"
    (target / "weights").mkdir(parents=True)
    (target / "weights" / "epoch_001.pt").write_text("1")
    io.remove_dir(target)
    assert list(tmp_path.iterdir()) == []
    io.remove_dir(target)  # a missing folder is fine
    (target / "weights").mkdir(parents=True)

    def killed(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        io.remove_dir(target)
    assert not target.exists()  # killed while deleting: gone from its place, not half there


def test_bad_json_names_the_file(tmp_path):
    (tmp_path / "m.json").write_text("{oops")
    with pytest.raises(io.DataError, match=r"m\.json: not valid JSON"):
        io.read_json(tmp_path / "m.json")


# ------------------------------------------------------------------------------------------- layout
def test_davis_and_mose_layouts(tmp_path):
    _write_video(tmp_path / "davis", "v1")
    _write_video(tmp_path / "mose" / "train", "a")
    _write_video(tmp_path / "mose" / "valid", "b")
    assert io.split_root(tmp_path / "davis") == tmp_path / "davis"
    assert io.split_root(tmp_path / "mose", "valid") == tmp_path / "mose" / "valid"
    assert io.VOSDataset(tmp_path / "mose", "train").video_names() == ["a"]
    with pytest.raises(io.DataError, match=r"no 'test/JPEGImages/' folder.*\['train', 'valid'\]"):
        io.split_root(tmp_path / "mose", "test")


def test_video_frames_and_first_annotation(tmp_path):
    _write_video(tmp_path, "v", n_frames=4, annotate=(0, 2))
    ds = io.VOSDataset(tmp_path)
    video = ds.video("v")
    assert video.frame_names == ["00000", "00001", "00002", "00003"]
    assert sorted(video.annotations) == ["00000", "00002"]
    first, labels = ds.first_annotation(video)
    assert first == "00000" and labels.shape == (24, 32) and set(np.unique(labels)) == {0, 1, 2}
    assert ds.check() == ["v"]


def test_video_without_frames_is_an_error(tmp_path):
    _write_video(tmp_path, "v")
    (tmp_path / "JPEGImages" / "empty").mkdir()
    with pytest.raises(io.DataError, match=r"JPEGImages/empty: video has no frames"):
        io.VOSDataset(tmp_path).check()


def test_missing_first_frame_annotation_is_an_error(tmp_path):
    _write_video(tmp_path, "v", annotate=(1,))
    ds = io.VOSDataset(tmp_path)
    with pytest.raises(io.DataError, match=r"Annotations/v/00000\.png: first-frame annotation missing"):
        ds.first_annotation(ds.video("v"))


def test_mask_of_wrong_size_is_an_error(tmp_path):
    _write_video(tmp_path, "v")
    io.write_mask(tmp_path / "Annotations" / "v" / "00000.png", np.zeros((10, 10), np.uint8))
    ds = io.VOSDataset(tmp_path)
    with pytest.raises(io.DataError, match=r"00000\.png: mask size 10x10 \(WxH\) differs from its frame 00000\.jpg 32x24"):
        ds.first_annotation(ds.video("v"))


def test_stray_file_among_the_frames_is_an_error_naming_it(tmp_path):
    """A thumbnail.png sorts after 00002.png: taken as a frame it would shift which frame is last."""
    _write_video(tmp_path, "v", annotate=(0, 1, 2))
    io.write_frame(tmp_path / "JPEGImages" / "v" / "thumbnail.jpg", np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(io.DataError, match=r"JPEGImages/v/thumbnail\.jpg: frame name 'thumbnail' does not follow "
                                           r"the pattern '#####' of the other frames \(# a digit; as in 00000\.jpg\)"):
        io.VOSDataset(tmp_path).video("v")
    (tmp_path / "JPEGImages" / "v" / "thumbnail.jpg").unlink()
    io.write_mask(tmp_path / "Annotations" / "v" / "thumbnail.png", np.zeros((24, 32), np.uint8))
    with pytest.raises(io.DataError, match=r"Annotations/v/thumbnail\.png: frame name 'thumbnail'"):
        io.VOSDataset(tmp_path).video("v")


def test_two_files_for_one_frame_are_an_error_naming_both(tmp_path):
    _write_video(tmp_path, "v", n_frames=4)
    io.write_frame(tmp_path / "JPEGImages" / "v" / "00002.png", np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(io.DataError, match=r"JPEGImages/v/00002\.png: two files for frame 00002 "
                                           r"\(00002\.jpg and 00002\.png\)"):
        io.VOSDataset(tmp_path).video("v")


def test_video_link_to_a_missing_folder_is_an_error_naming_it(tmp_path):
    """A hold-out view links into the MOSE folder: if that moves, its videos must not silently vanish."""
    _write_video(tmp_path, "v")
    (tmp_path / "JPEGImages" / "moved").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(io.DataError, match=r"JPEGImages/moved: symbolic link to a missing folder \(.*elsewhere\)"):
        io.VOSDataset(tmp_path).video_names()


def test_listed_videos_must_exist(tmp_path):
    _write_video(tmp_path, "v")
    with pytest.raises(io.DataError, match=r"JPEGImages: 1 listed video\(s\) not found: ghost"):
        io.VOSDataset(tmp_path, videos=["v", "ghost"]).video_names()


def test_unreadable_frame_is_an_error(tmp_path):
    (tmp_path / "f.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(io.DataError, match=r"f\.jpg: unreadable"):
        io.read_frame(tmp_path / "f.jpg")


def test_frame_round_trip_is_close_and_deterministic(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    io.write_frame(tmp_path / "a.jpg", rgb)
    io.write_frame(tmp_path / "b.jpg", rgb)
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()
    io.write_frame(tmp_path / "c.png", rgb)
    assert (io.read_frame(tmp_path / "c.png") == rgb).all()  # PNG frames are lossless


# ------------------------------------------------------------------------------------------- splits
def test_holdout_split_is_deterministic_disjoint_and_complete():
    names = [f"vid{i:04d}" for i in range(1507)]
    train, held = io.holdout_split(names, 200, seed=0)
    assert len(held) == 200 and len(train) == 1307
    assert not set(train) & set(held) and set(train) | set(held) == set(names)
    assert io.holdout_split(list(reversed(names)), 200, seed=0) == (train, held)  # input order irrelevant
    assert io.holdout_split(names, 200, seed=1)[1] != held


def test_holdout_split_size_is_checked():
    with pytest.raises(ValueError, match="n_holdout must lie in 1..2"):
        io.holdout_split(["a", "b", "c"], 3)


def test_list_files(tmp_path):
    io.write_list_file(tmp_path / "l.txt", ["b", "a"])
    (tmp_path / "l.txt").write_text((tmp_path / "l.txt").read_text() + "\n# comment\nc  # trailing\n")
    assert io.read_list_file(tmp_path / "l.txt") == ["b", "a", "c"]
    (tmp_path / "e.txt").write_text("\n# nothing\n")
    with pytest.raises(io.DataError, match=r"e\.txt: list file names no videos"):
        io.read_list_file(tmp_path / "e.txt")


def test_data_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(io.DataError("a/b.png", "broken")))
    assert isinstance(err, io.DataError) and err.path.name == "b.png" and str(err) == "a/b.png: broken"

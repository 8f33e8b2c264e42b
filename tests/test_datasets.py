"""datasets: which folder a chapter reads, and the MOSE hold-out view (links, first-frame masks, reuse)."""
import numpy as np
import pytest

from fvos_utils.base import io, paths
from fvos_utils.data import datasets, synthetic
from fvos_utils.data.testing import write_mose_layout


def _write_mose(root):
    return write_mose_layout(root, n_train=5, n_valid=0, height=24, width=32)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path / "kit"))
    return tmp_path / "kit"


def test_holdout_view_layout(tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    view = datasets.holdout_view(mose, tmp_path / "view", n_holdout=2, seed=3)
    train_names, held = io.holdout_split([f"train{v:02d}" for v in range(5)], 2, seed=3)
    assert io.VOSDataset(view, "train").video_names() == train_names
    assert io.VOSDataset(view, "valid").video_names() == held
    for name in held:
        valid = io.VOSDataset(view, "valid")
        video = valid.video(name)
        assert len(video) == 4 and sorted(video.annotations) == ["00000"]  # first-frame mask only
        first = (view / "valid" / "Annotations" / name / "00000.png")
        assert not first.is_symlink()  # a copy: nothing written through it reaches MOSE
        gt = sorted(p.name for p in (view / "valid_gt" / "Annotations" / name).iterdir())
        assert gt == [f"{t:05d}.png" for t in range(4)]
        np.testing.assert_array_equal(io.read_mask(view / "valid_gt" / "Annotations" / name / "00002.png"),
                                      io.read_mask(mose / "train" / "Annotations" / name / "00002.png"))
    assert not (view / "train" / "Annotations" / held[0]).exists()
    meta = io.read_json(view / "meta.json")
    assert {n: v["split"] for n, v in meta["videos"].items()} == {**{n: "train" for n in train_names},
                                                                   **{n: "valid" for n in held}}
    assert sorted((mose / "train").iterdir()) == [mose / "train" / "Annotations", mose / "train" / "JPEGImages"]


def test_holdout_view_is_reused_and_rebuilt_on_other_settings(tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    view = datasets.holdout_view(mose, tmp_path / "view", n_holdout=2, seed=0)
    stamp = (view / "meta.json").stat().st_mtime_ns
    assert datasets.holdout_view(mose, tmp_path / "view", n_holdout=2, seed=0) == view
    assert (view / "meta.json").stat().st_mtime_ns == stamp
    datasets.holdout_view(mose, tmp_path / "view", n_holdout=1, seed=0)
    assert len(io.VOSDataset(view, "valid").video_names()) == 1


def test_holdout_view_names_the_missing_first_mask(tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    (mose / "train" / "Annotations" / "train03" / "00000.png").unlink()
    with pytest.raises(io.DataError, match=r"train03/00000\.png.*first-frame annotation missing"):
        datasets.holdout_view(mose, tmp_path / "view", n_holdout=2)
    assert not (tmp_path / "view").exists()  # nothing half-built is left


def test_holdout_view_needs_train_masks(tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    for mask_dir in (mose / "train" / "Annotations").iterdir():
        for png in mask_dir.iterdir():
            png.unlink()
        mask_dir.rmdir()
    (mose / "train" / "Annotations").rmdir()
    with pytest.raises(io.DataError, match="Annotations.*annotation folder not found"):
        datasets.holdout_view(mose, tmp_path / "view", n_holdout=2)


def test_prepare_picks_synthetic_or_holdout(project, tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    view = datasets.prepare(mose, n_holdout=2, seed=1)
    assert view == project / "data" / "MOSE-holdout2-seed1"
    assert len(io.VOSDataset(view, "valid").video_names()) == 2
    assert datasets.prepare(mose) == project / "data" / "MOSE-holdout1-seed0"  # 5 videos: 200 is too many
    assert datasets.is_synthetic(project / "data" / "not-there-yet")
    assert not datasets.is_synthetic(mose)
    with pytest.raises(io.DataError, match="no 'train/JPEGImages/' folder"):
        datasets.prepare(tmp_path)  # exists, but neither synthetic nor MOSE


def test_prepare_refuses_another_seed_for_the_shared_synthetic_folder(project, monkeypatch):
    """``papermill 00_data_and_metrics.ipynb out.ipynb -p seed 3`` must not rewrite the seed-0 set other runs read."""
    monkeypatch.setitem(synthetic.PRESETS, "mini-mose", synthetic.SyntheticConfig(
        videos_train=1, videos_valid=1, frames=(2, 2), size=(32, 32), objects=(1, 1)))
    root = datasets.prepare("data/synthetic-mini-mose", seed=0)
    assert datasets.prepare("data/synthetic-mini-mose", seed=0) == root == project / "data" / "synthetic-mini-mose"
    with pytest.raises(io.DataError, match=r"data/synthetic-mini-mose: holds the synthetic set of seed 0, preset "
                                           r"mini-mose; asked for seed 3, preset mini-mose\. .*another data_root"):
        datasets.validation_split("data/synthetic-mini-mose", seed=3)
    assert io.read_json(root / "meta.json")["seed"] == 0


def test_the_held_out_splits_of_a_synthetic_set(project, monkeypatch):
    monkeypatch.setitem(synthetic.PRESETS, "mini-mose", synthetic.SyntheticConfig(
        videos_train=1, videos_valid=2, videos_test=3, frames=(2, 2), size=(32, 32), objects=(1, 1)))
    valid = datasets.validation_split("data/synthetic-mini-mose", n_videos=1)
    test = datasets.validation_split("data/synthetic-mini-mose", split="test")
    assert (valid.name, len(valid.videos), valid.gt_dir) == ("valid", 1, valid.root / "valid_gt" / "Annotations")
    assert (test.name, test.gt_dir) == ("test", test.root / "test_gt" / "Annotations")
    assert test.videos == io.VOSDataset(test.root, "test").video_names() and len(test.videos) == 3
    assert not set(test.videos) & set(io.VOSDataset(valid.root, "valid").video_names())
    assert datasets.test_split("data/synthetic-mini-mose") == test
    with pytest.raises(ValueError, match="split must be one of valid, test"):
        datasets.validation_split("data/synthetic-mini-mose", split="train")


def test_a_holdout_view_has_no_test_split(project, tmp_path):
    mose = _write_mose(tmp_path / "MOSE")
    assert datasets.test_split(mose) is None
    with pytest.raises(io.DataError, match=r"test_gt/Annotations: no test split with ground truth here"):
        datasets.validation_split(mose, split="test")


def test_chapters_use_an_existing_synthetic_set_as_it_is_and_record_it(tmp_path):
    """A quick check on a tiny set (``--videos-*``, ``--frames``, ``--size``) was refused by every chapter as
    "another config": a chapter uses the set at its data_root as it is; only another seed is refused."""
    from fvos_utils.run.chapter import Chapter

    tiny = synthetic.SyntheticConfig(videos_train=1, videos_valid=1, frames=(3, 3), size=(64, 48), objects=(1, 2))
    root = synthetic.generate(tmp_path / "tiny", seed=0, config=tiny, progress=False)
    before = (root / "meta.json").read_bytes()
    assert datasets.prepare(root, seed=0, preset="mini-mose") == root
    assert (root / "meta.json").read_bytes() == before  # used, not regenerated
    with pytest.raises(io.DataError, match="holds the synthetic set of seed 0, .*; asked for seed 1, preset mini-mose"):
        datasets.prepare(root, seed=1, preset="mini-mose")
    chapter = Chapter("00_data_and_metrics", "r", tmp_path / "out", {"data_root": str(root), "seed": 0})
    (tmp_path / "out").mkdir()
    recorded = io.read_json(chapter.write_metrics(score=1.0))
    assert recorded["synthetic_data"] == {"seed": 0, "config": io.read_json(root / "meta.json")["config"]}

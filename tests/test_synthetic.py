"""The synthetic mini-MOSE generator: layout, determinism, and hard-case tags checked on the written files.

Tags are recomputed here from the PNGs (and frame 0's JPEG for the crowd's colours) with literal
reference code (loops, scipy's chessboard distance transform), not with the generator's functions.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fvos_utils.base import io, paths
from fvos_utils.data import synthetic
from fvos_utils.data.synthetic import PRESETS, TAGS, SyntheticConfig, compute_tags, generate

# small and quick, with every hard case likely
#: the look knobs at 0 and no test split: procedural textures, rigid objects, a camera that only pans (the
#: tests of each knob switch it on by itself)
PLAIN = dict(videos_test=0, p_photo=0.0, max_stretch=0.0, max_zoom=0.0, occlusion_hold=(0, 0))
SMALL = SyntheticConfig(videos_train=3, videos_valid=2, frames=(6, 9), size=(128, 96), objects=(2, 5),
                        p_crowd=0.5, p_occlusion=0.7, p_exit_reenter=0.6, p_small=0.5, p_touching=0.6,
                        p_distractor=0.5, **PLAIN)
SMALL_SEED = 7


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("small") / "data", seed=SMALL_SEED, config=SMALL, progress=False)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory) -> Path:
    """The default mini-MOSE set (seed 0), ~6 s."""
    return generate(tmp_path_factory.mktemp("default") / "data", seed=0, progress=False)


# ----------------------------------------------------------------------------------- reading back
def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def truth_root(root: Path, split: str) -> Path:
    return root / (f"{split}_gt" if split in synthetic.HELD_OUT_SPLITS else split)


def load_video(root: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``labels (T, H, W) uint8``, ``amodal (T, H, W) uint16``, ``frame0 (H, W, 3) uint8`` from the files."""
    truth = truth_root(root, split)
    label_files = sorted((truth / "Annotations" / name).glob("*.png"))
    labels = np.stack([np.asarray(Image.open(p)) for p in label_files])
    amodal_images = [Image.open(p) for p in sorted((truth / "Amodal" / name).glob("*.png"))]
    assert {img.mode for img in amodal_images} == {"I;16"}
    amodal = np.stack([np.asarray(img).astype(np.uint16) for img in amodal_images])
    frame0 = np.asarray(Image.open(root / split / "JPEGImages" / name / "00000.jpg").convert("RGB"))
    return labels, amodal, frame0


def videos(root: Path):
    meta = io.read_json(root / "meta.json")
    for name, info in meta["videos"].items():
        yield name, info


# ------------------------------------------------------------------------- reference tag definitions
def chessboard_gap(a: np.ndarray, b: np.ndarray) -> int | None:
    """Pixels strictly between two ``(H, W) bool`` masks (Chebyshev distance - 1); None if one is empty."""
    if not a.any() or not b.any():
        return None
    distance = ndimage.distance_transform_cdt(~a, metric="chessboard")
    return int(distance[b].min()) - 1


def reference_tags(labels: np.ndarray, amodal: np.ndarray, frame0: np.ndarray, n: int) -> set[str]:
    n_frames, height, width = labels.shape
    tags = set()
    means = {k: frame0[labels[0] == k].astype(np.float64).mean(axis=0) for k in range(1, n + 1)}
    for group in itertools.combinations(range(1, n + 1), synthetic.CROWD_MIN_OBJECTS):
        if all(np.sqrt(((means[a] - means[b]) ** 2).sum()) <= synthetic.CROWD_MAX_COLOUR_DISTANCE
               for a, b in itertools.combinations(group, 2)):
            tags.add("crowd")
    for k in range(1, n + 1):
        for t in range(n_frames):
            whole = (amodal[t] & (1 << (k - 1))) != 0
            hidden = whole & (labels[t] != k) & (labels[t] != 0)
            if hidden.sum() > 0 and hidden.sum() >= synthetic.OCCLUSION_MIN_FRACTION * whole.sum():
                tags.add("occlusion")
    for k in range(1, n + 1):
        areas = [int((labels[t] == k).sum()) for t in range(n_frames)]
        for t1 in range(1, n_frames):
            if areas[t1] == 0 and any(areas[t2] > 0 for t2 in range(t1 + 1, n_frames)):
                tags.add("exit-reenter")
        if max(areas) <= synthetic.SMALL_MAX_FRACTION * height * width:
            tags.add("small")
    for t in range(n_frames):
        for a, b in itertools.combinations(range(1, n + 1), 2):
            gap = chessboard_gap(labels[t] == a, labels[t] == b)
            if gap is not None and gap <= synthetic.TOUCH_MAX_GAP_PX:
                tags.add("touching")
                break
        if "touching" in tags:
            break
    return tags


# ------------------------------------------------------------------------------------ determinism
def test_same_seed_same_bytes(small_set, tmp_path):
    again = generate(tmp_path / "again", seed=SMALL_SEED, config=SMALL, progress=False)
    first, second = all_files(small_set), all_files(again)
    assert list(first) == list(second)
    assert len(first) > 50
    assert [name for name in first if first[name] != second[name]] == []


def test_different_seed_differs(small_set, tmp_path):
    other = generate(tmp_path / "other", seed=SMALL_SEED + 1, config=SMALL, progress=False)
    first, second = all_files(small_set), all_files(other)
    frame = "train/JPEGImages/syn_train_0000/00000.jpg"
    assert first[frame] != second[frame]
    assert first["meta.json"] != second["meta.json"]


def test_video_count_does_not_change_other_videos(small_set, tmp_path):
    fewer = generate(tmp_path / "fewer", seed=SMALL_SEED, config=replace(SMALL, videos_train=1, videos_valid=1),
                     progress=False)
    kept = all_files(fewer)
    full = all_files(small_set)
    video_files = [name for name in kept if "/syn_" in name]
    assert any("syn_valid_0000" in name for name in video_files)
    assert all(kept[name] == full[name] for name in video_files)
    assert not any("syn_train_0001" in name for name in kept)


# ----------------------------------------------------------------------------------------- layout
def test_layout(small_set):
    meta = io.read_json(small_set / "meta.json")
    assert meta["seed"] == SMALL_SEED and meta["generator"] == "fvos_utils.synthetic"
    width, height = SMALL.size
    for split, count in (("train", SMALL.videos_train), ("valid", SMALL.videos_valid)):
        names = [f"syn_{split}_{i:04d}" for i in range(count)]
        assert io.read_list_file(small_set / f"{split}.txt") == names
        assert sorted(p.name for p in (small_set / split / "JPEGImages").iterdir()) == names
        assert io.VOSDataset(small_set, split).check() == names
        for name in names:
            info = meta["videos"][name]
            n_frames = info["frames"]
            assert SMALL.frames[0] <= n_frames <= SMALL.frames[1]
            stems = [f"{t:05d}" for t in range(n_frames)]
            jpgs = sorted((small_set / split / "JPEGImages" / name).iterdir())
            assert [p.name for p in jpgs] == [f"{s}.jpg" for s in stems]
            assert {io.read_frame(p).shape for p in jpgs} == {(height, width, 3)}
            assert info["size"] == [width, height] and info["split"] == split
            truth = truth_root(small_set, split)
            for folder in ("Annotations", "Amodal"):
                assert [p.name for p in sorted((truth / folder / name).iterdir())] == [f"{s}.png" for s in stems]
            given = sorted(p.name for p in (small_set / split / "Annotations" / name).iterdir())
            assert given == ([f"{s}.png" for s in stems] if split == "train" else ["00000.png"])
    # the validation split carries no ground truth beyond frame 0
    assert not (small_set / "valid" / "Amodal").exists()
    assert sorted(p.name for p in small_set.iterdir()) == ["meta.json", "train", "train.txt", "valid", "valid.txt",
                                                            "valid_gt"]


def test_masks_are_davis_palette_pngs(small_set):
    palette = io.davis_palette().flatten().tolist()
    pngs = sorted(small_set.glob("*/Annotations/*/*.png"))
    assert len(pngs) > 30
    for path in pngs:
        with Image.open(path) as img:
            assert img.mode == "P", path
            assert img.getpalette()[:768] == palette, path
    for name, info in videos(small_set):
        if info["split"] == "valid":
            first = small_set / "valid" / "Annotations" / name / "00000.png"
            assert first.read_bytes() == (small_set / "valid_gt" / "Annotations" / name / "00000.png").read_bytes()


@pytest.mark.parametrize("dataset", ["small_set", "default_set"])
def test_object_ids_and_first_frame(dataset, request):
    root = request.getfixturevalue(dataset)
    config = SyntheticConfig(**io.read_json(root / "meta.json")["config"])
    for name, info in videos(root):
        labels, amodal, _ = load_video(root, name, info["split"])
        n = len(info["object_ids"])
        assert info["object_ids"] == list(range(1, n + 1))
        assert config.objects[0] <= n <= config.objects[1]
        assert set(np.unique(labels)) <= set(range(n + 1)), name
        assert set(np.unique(labels[0])) == set(range(n + 1)), f"{name}: every object must be in frame 0"
        # frame 0: nothing hides any object (its whole in-frame shape is visible)
        for k in range(1, n + 1):
            assert np.array_equal(labels[0] == k, (amodal[0] >> (k - 1)) & 1 == 1), (name, k)


@pytest.mark.parametrize("dataset", ["small_set", "default_set"])
def test_amodal_masks_agree_with_labels(dataset, request):
    root = request.getfixturevalue(dataset)
    for name, info in videos(root):
        labels, amodal, _ = load_video(root, name, info["split"])
        n = len(info["object_ids"])
        assert not np.any(amodal >> n), f"{name}: bits beyond object {n}"
        assert np.array_equal(amodal != 0, labels != 0), f"{name}: a shape pixel without a label or vice versa"
        for k in range(1, n + 1):
            visible = labels == k
            assert np.all((amodal[visible] >> (k - 1)) & 1 == 1), f"{name}: object {k} visible outside its shape"


def test_read_amodal(small_set):
    truth = small_set / "train" / "Amodal" / "syn_train_0000"
    bits = synthetic.read_amodal(truth / "00000.png")
    assert bits.dtype == np.uint16 and np.array_equal(bits, np.asarray(Image.open(truth / "00000.png")))
    palette_png = small_set / "train" / "Annotations" / "syn_train_0000" / "00000.png"
    with pytest.raises(io.DataError, match="00000.png.*16-bit"):
        synthetic.read_amodal(palette_png)


# ------------------------------------------------------------------------------------------- tags
@pytest.mark.parametrize("dataset", ["small_set", "default_set"])
def test_tags_are_true_of_the_written_masks(dataset, request):
    root = request.getfixturevalue(dataset)
    for name, info in videos(root):
        labels, amodal, frame0 = load_video(root, name, info["split"])
        expected = reference_tags(labels, amodal, frame0, len(info["object_ids"]))
        assert set(info["tags"]) == expected, name
        assert info["tags"] == [tag for tag in TAGS if tag in expected]


def test_default_set_has_every_hard_case(default_set):
    meta = io.read_json(default_set / "meta.json")
    assert len(meta["videos"]) == 96 + 24 + 24
    for tag in TAGS:
        assert any(tag in v["tags"] for v in meta["videos"].values()), tag
    assert any(v["distractors"] for v in meta["videos"].values())


def test_default_set_touching_pairs_have_each_designed_gap(default_set):
    """A designed touching pair's closest approach equals its designed gap, and gaps 0, 1, 2 all occur."""
    exact = set()
    for name, info in videos(default_set):
        roles = {obj["id"]: obj["roles"] for obj in info["objects"]}
        leader = [k for k, r in roles.items() if "touching" in r]
        follower = [(k, role) for k, r in roles.items() for role in r if role.startswith("touching(gap=")]
        if not follower:
            continue
        (k_follow, role), = follower
        designed = int(role[len("touching(gap="):-1])
        labels, _, _ = load_video(default_set, name, info["split"])
        gaps = [chessboard_gap(frame == leader[0], frame == k_follow) for frame in labels]
        gaps = [g for g in gaps if g is not None]
        assert min(gaps) <= designed, name  # never further apart than designed at their closest
        if min(gaps) == designed:
            exact.add(designed)
    assert exact == {0, 1, 2}


@pytest.mark.parametrize("gap, touching", [(0, True), (1, True), (2, True), (3, False)])
@pytest.mark.parametrize("diagonal", [False, True])
def test_compute_tags_touching_boundary(gap, touching, diagonal):
    labels = np.zeros((2, 40, 40), np.uint8)
    labels[:, 5:15, 5:15] = 1
    start = 15 + gap
    if diagonal:
        labels[:, start:start + 10, start:start + 10] = 2
    else:
        labels[:, 5:15, start:start + 10] = 2
    amodal = np.where(labels > 0, 1 << (labels.astype(np.uint16) - 1), 0).astype(np.uint16)
    frame0 = np.zeros((40, 40, 3), np.uint8)
    assert chessboard_gap(labels[0] == 1, labels[0] == 2) == gap  # the reference agrees on the set-up
    assert ("touching" in compute_tags(labels, amodal, frame0, 2)) is touching


def test_compute_tags_occlusion_and_exit_reenter():
    labels = np.zeros((4, 30, 30), np.uint8)
    labels[:, 2:12, 2:12] = 1
    labels[:, 20:28, 20:28] = 2  # 64 px
    amodal = np.where(labels > 0, 1 << (labels.astype(np.uint16) - 1), 0).astype(np.uint16)
    frame0 = np.zeros((30, 30, 3), np.uint8)
    assert compute_tags(labels, amodal, frame0, 2) == []
    # object 1 reaches over object 2 on frame 2: 5 px hidden (7.8% of its shape), then 10 px (15.6%)
    for rows, occluded in ((slice(20, 21), False), (slice(20, 22), True)):
        labels[2, rows, 20:25] = 1
        amodal[2, rows, 20:25] |= 1
        assert ("occlusion" in compute_tags(labels, amodal, frame0, 2)) is occluded
    # object 2 gone on the last frame only: not a re-entry; gone on frame 1 and back on 2: a re-entry
    labels[3][labels[3] == 2] = 0
    amodal[3] &= 1
    assert "exit-reenter" not in compute_tags(labels, amodal, frame0, 2)
    labels[1][labels[1] == 2] = 0
    amodal[1] &= 1
    assert "exit-reenter" in compute_tags(labels, amodal, frame0, 2)


# ----------------------------------------------------------------------------------- appearance
def texture_stats(root: Path, *, photographs: bool = False) -> tuple[list[float], list[float]]:
    """Grey-level std inside each object (mask eroded by 2 px, >= 20 px left) and of each background; objects
    painted with a photograph crop (which may be a flat patch of sky) only where ``photographs``."""
    objects, backgrounds = [], []
    for name, info in videos(root):
        labels, _, frame0 = load_video(root, name, info["split"])
        grey = frame0.astype(np.float64).mean(axis=2)
        kinds = {obj["id"]: obj["texture"] for obj in info["objects"]}
        for k in info["object_ids"]:
            inner = ndimage.binary_erosion(labels[0] == k, iterations=2)
            if inner.sum() >= 20 and (kinds[k] == "photo") == photographs:
                objects.append(float(grey[inner].std()))
        backgrounds.append(float(grey[ndimage.binary_erosion(labels[0] == 0, iterations=2)].std()))
    return objects, backgrounds


def test_objects_and_background_are_textured(default_set, small_set, tmp_path):
    objects, backgrounds = texture_stats(default_set)  # procedural patterns: full contrast
    assert len(objects) > 100
    assert min(objects) > 6.0 and np.median(objects) > 12.0
    assert np.median(backgrounds) > 8.0  # half are photographs, which may hold flat areas
    photo_objects, _ = texture_stats(default_set, photographs=True)
    assert len(photo_objects) > 100 and np.median(photo_objects) > 12.0
    assert min(texture_stats(small_set)[1]) > 8.0  # procedural backgrounds only: every one textured
    # the measure does tell texture from flat colour: the same scenes without texture or noise
    flat = replace(SMALL, texture_strength=0.0, background_strength=0.0, noise_std=0.0)
    flat_objects, flat_backgrounds = texture_stats(generate(tmp_path / "flat", seed=1, config=flat, progress=False))
    assert max(flat_objects) < 5.0 and max(flat_backgrounds) < 5.0  # JPEG ringing only


def test_background_pans(tmp_path):
    """Phase correlation between the first and last frame finds the background's shift (procedural backgrounds,
    no zoom: a photograph's large flat areas and a zoom would blur the measure)."""
    config = replace(SyntheticConfig(), **PLAIN, videos_train=24, videos_valid=12, frames=(16, 32), pan_speed=0.01)
    root = generate(tmp_path / "pans", seed=0, config=config, progress=False)
    for name, info in videos(root):
        folder = root / info["split"] / "JPEGImages" / name
        first, last = (io.read_frame(folder / f"{t:05d}.jpg").astype(np.float32).mean(axis=2)
                       for t in (0, info["frames"] - 1))
        (dx, dy), _ = cv2.phaseCorrelate(first, last)
        assert np.hypot(dx, dy) >= 1.0, name


# ---------------------------------------------------------------------------------- config, CLI
def test_presets_and_config_round_trip(small_set):
    assert PRESETS["mini-mose"] == SyntheticConfig()
    assert PRESETS["pretrain"].size == (320, 256) and PRESETS["pretrain"].frames == (10, 16)
    assert PRESETS["mini-mose"].videos_test > 0 and PRESETS["pretrain"].videos_test == 0
    assert SyntheticConfig(**io.read_json(small_set / "meta.json")["config"]) == SMALL
    assert SyntheticConfig(**asdict(SMALL)) == SMALL


def test_pretrain_preset_generates_short_videos_without_a_test_split(tmp_path):
    config = replace(PRESETS["pretrain"], videos_train=2, videos_valid=1)
    root = generate(tmp_path / "pretrain", seed=0, config=config, progress=False)
    for name, info in videos(root):
        assert info["size"] == [320, 256] and 10 <= info["frames"] <= 16 and 1 <= len(info["object_ids"]) <= 4
        assert io.read_frame(root / info["split"] / "JPEGImages" / name / "00000.jpg").shape == (256, 320, 3)
    assert not (root / "test").exists() and not (root / "test.txt").exists()


@pytest.mark.parametrize("bad", [dict(frames=(9, 4)), dict(frames=(1, 4)), dict(objects=(1, 17)),
                                 dict(p_crowd=1.5), dict(size=(16, 64)), dict(object_radius=(0.1, 0.5)),
                                 dict(videos_valid=0), dict(jpeg_quality=0), dict(texture_strength=-1.0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="invalid SyntheticConfig"):
        SyntheticConfig(**bad)


def test_generate_refuses_existing_and_foreign_folders(tmp_path):
    tiny = replace(SMALL, videos_train=1, videos_valid=1, frames=(3, 3))
    out = generate(tmp_path / "data", seed=0, config=tiny, progress=False)
    before = all_files(out)
    with pytest.raises(FileExistsError, match="already exists"):
        generate(out, seed=1, config=tiny, progress=False)
    assert all_files(out) == before
    generate(out, seed=1, config=tiny, progress=False, overwrite=True)
    assert all_files(out) != before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a dataset written by"):
        generate(foreign, seed=0, config=tiny, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_failed_run_leaves_nothing(tmp_path, monkeypatch):
    real, calls = synthetic.render_video, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_video", failing)
    with pytest.raises(RuntimeError, match="killed"):
        generate(tmp_path / "data", seed=0, config=SMALL, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--seed", "3", "--videos-train", "1", "--videos-valid", "1", "--videos-test", "1",
            "--frames", "4", "5",
            "--size", "64", "48", "--p-touching", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    done = subprocess.run([sys.executable, "-m", "fvos_utils", "synthetic", *args], cwd=paths.project_root(), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    meta = io.read_json(out / "meta.json")
    assert meta["seed"] == 3 and meta["config"]["size"] == [64, 48] and meta["config"]["p_touching"] == 1.0
    assert list(meta["videos"]) == ["syn_train_0000", "syn_valid_0000", "syn_test_0000"]
    before = all_files(out)
    with pytest.raises(SystemExit) as refused:
        synthetic.main(args)
    assert refused.value.code != 0 and "already exists" in capsys.readouterr().err
    assert all_files(out) == before
    assert synthetic.main([*args, "--overwrite"]) == 0
    assert all_files(out) == before  # same seed and options: same bytes
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path / "bad"), "--frames", "5", "2"])
    assert "invalid SyntheticConfig" in capsys.readouterr().err and not (tmp_path / "bad").exists()


ENSURED = SyntheticConfig(videos_train=1, videos_valid=2, frames=(3, 3), size=(64, 48), objects=(2, 3))
ENSURED_TEXT = "preset mini-mose with videos_train=1, videos_valid=2, frames=[3, 3], size=[64, 48], objects=[2, 3]"


def test_ensure_reuses_a_matching_dataset(tmp_path):
    out = synthetic.ensure(tmp_path / "ds", seed=1, config=ENSURED)
    stamp = (out / "meta.json").stat().st_mtime_ns
    assert synthetic.ensure(tmp_path / "ds", seed=1, config=ENSURED) == out
    assert (out / "meta.json").stat().st_mtime_ns == stamp          # reused, not rewritten
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        synthetic.ensure(tmp_path / "x", preset="nope")


@pytest.mark.parametrize("asked, asked_text", [
    ({"seed": 2, "config": ENSURED}, f"seed 2, {ENSURED_TEXT}"),
    ({"seed": 1, "config": replace(ENSURED, p_crowd=1.0)}, f"seed 1, {ENSURED_TEXT}, p_crowd=1.0"),
    ({"seed": 1, "preset": "pretrain"}, "seed 1, preset pretrain"),
], ids=["seed", "config", "preset"])
def test_ensure_refuses_to_replace_another_configuration(tmp_path, asked, asked_text):
    """Other runs read the folder: a second seed or configuration for it must not rewrite it under them."""
    out = synthetic.ensure(tmp_path / "ds", seed=1, config=ENSURED)
    before = all_files(out)
    with pytest.raises(io.DataError) as refused:
        synthetic.ensure(out, **asked)
    assert str(refused.value) == (f"{out}: holds the synthetic set of seed 1, {ENSURED_TEXT}; asked for {asked_text}. "
                                  "A dataset folder holds one set: give this one another data_root, or delete the "
                                  "folder to regenerate it")
    assert all_files(out) == before


def test_ensure_regenerates_an_empty_folder_and_an_older_generators_set(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    synthetic.ensure(out, seed=1, config=ENSURED)
    expected = all_files(out)
    meta = io.read_json(out / "meta.json")
    io.write_json(out / "meta.json", {**meta, "format_version": synthetic.FORMAT_VERSION - 1, "seed": 4})
    synthetic.ensure(out, seed=1, config=ENSURED)
    assert all_files(out) == expected


def test_cli_out_is_relative_to_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path / "kit"))
    monkeypatch.chdir(tmp_path)
    assert synthetic.main(["--out", "here/ds", "--videos-train", "1", "--videos-valid", "1", "--frames", "2", "2",
                           "--size", "32", "32"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "here" / "ds")
    assert (tmp_path / "here" / "ds" / "meta.json").is_file() and not (tmp_path / "kit").exists()


def test_hard_case_examples_and_load_video(tmp_path):
    small = synthetic.SyntheticConfig(videos_train=1, videos_valid=4, frames=(4, 4), size=(96, 64), objects=(2, 4))
    out = synthetic.ensure(tmp_path / "ds", seed=0, config=small)
    meta = io.read_json(out / "meta.json")
    examples = synthetic.hard_case_examples(out)
    assert [t for t, _ in examples] == [t for t in synthetic.TAGS
                                        if any(t in v["tags"] for v in meta["videos"].values() if v["split"] == "valid")]
    for tag, name in examples:
        assert tag in meta["videos"][name]["tags"] and meta["videos"][name]["split"] == "valid"
    name = examples[0][1] if examples else "syn_valid_0000"
    frames = synthetic.load_video(out, name)
    assert len(frames) == 4 and frames[0][0].shape == (64, 96, 3) and frames[3][1].shape == (64, 96)
    assert (frames[3][1] == io.read_mask(out / "valid_gt" / "Annotations" / name / "00003.png")).all()


# --------------------------------------------------------------------- photo textures, stretch, zoom, test split
QUIET = SyntheticConfig(videos_train=1, videos_valid=1, frames=(6, 6), size=(128, 96), objects=(1, 1),
                        p_crowd=0.0, p_occlusion=0.0, p_exit_reenter=0.0, p_small=0.0, p_touching=0.0,
                        p_distractor=0.0, noise_std=0.0, max_rotation=0.0, max_scale_change=0.0, **PLAIN)


@pytest.mark.parametrize("name", synthetic.PHOTOS)
def test_every_photograph_loads_from_the_wheel(name):
    image = synthetic.photo(name)
    assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 150 and image.dtype == np.float32
    assert np.ptp(image) > 100  # a photograph, not a blank


def test_photo_textures_are_crops_of_the_photographs():
    video = synthetic.render_video(replace(QUIET, p_photo=1.0), seed=0, split="train", index=0)
    assert [obj["texture"] for obj in video.objects] == ["photo"]
    procedural = synthetic.render_video(QUIET, seed=0, split="train", index=0)
    assert procedural.objects[0]["texture"] in synthetic.PATTERNS
    # a photograph's background has structure at every scale: neighbouring pixels correlate strongly
    background = video.frames[0][video.labels[0] == 0].astype(float)
    assert background.std() > 5
    with pytest.raises(ValueError, match="unknown photograph"):
        synthetic.photo("lena")


def _axis_ratio(mask: np.ndarray) -> float:
    """Longer over shorter principal axis of a mask's pixel cloud."""
    ys, xs = np.nonzero(mask)
    eigen = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
    return float(np.sqrt(eigen[1] / eigen[0]))


def test_squash_and_stretch_changes_the_shape_not_the_area():
    config = replace(QUIET, frames=(12, 12), max_speed=0.0, pan_speed=0.0)
    still = synthetic.render_video(config, seed=1, split="train", index=0)
    stretched = synthetic.render_video(replace(config, max_stretch=0.5), seed=1, split="train", index=0)
    ratios = [_axis_ratio(m == 1) for m in stretched.labels]
    areas = [(m == 1).sum() for m in stretched.labels]
    assert np.ptp([_axis_ratio(m == 1) for m in still.labels]) < 0.02
    assert np.ptp(ratios) > 0.1  # the outline deforms over the video ...
    assert np.ptp(areas) / np.mean(areas) < 0.05  # ... keeping its area (x s along one axis, / s along the other)


def test_camera_zoom_keeps_the_view_centre_and_moves_the_corners():
    config = replace(QUIET, pan_speed=0.0, frames=(8, 8), object_radius=(0.05, 0.05))
    fixed = synthetic.render_video(config, seed=2, split="train", index=0)
    zoomed = synthetic.render_video(replace(config, max_zoom=0.6), seed=2, split="train", index=0)

    def background_change(video, ys, xs):
        clear = (video.labels[:, ys, xs] == 0).all(axis=0)
        first, last = video.frames[0][ys, xs].astype(float), video.frames[-1][ys, xs].astype(float)
        return np.abs(first - last)[clear].mean()

    centre = (slice(44, 52), slice(60, 68))  # the 8 x 8 pixels around the view centre of a 128 x 96 frame
    corner = (slice(0, 16), slice(0, 16))
    assert background_change(fixed, *corner) < 1.0 and background_change(fixed, *centre) < 1.0
    assert background_change(zoomed, *corner) > 4 * background_change(zoomed, *centre)


def test_paused_motion_holds_then_resumes():
    centres = np.arange(10, dtype=float)[:, None] * [1.0, 2.0]
    paused = synthetic._paused(centres, 3, 4)
    assert paused.shape == centres.shape
    assert (paused[3:8] == centres[3]).all()  # frames 3..7 at frame 3's place
    assert (paused[8:] == centres[4:6]).all()  # then on along the same path
    assert (synthetic._paused(centres, 3, 0) == centres).all()


def test_occlusion_hold_keeps_the_pair_overlapping_longer():
    config = replace(QUIET, objects=(2, 2), p_occlusion=1.0, frames=(16, 16), size=(160, 120))

    def overlapped_frames(video):
        ids = video.object_ids
        return sum(any(((labels == k).sum() < (((amodal >> (k - 1)) & 1) == 1).sum()) for k in ids)
                   for labels, amodal in zip(video.labels, video.amodal))

    plain = [overlapped_frames(synthetic.render_video(config, seed=0, split="train", index=i)) for i in range(4)]
    held = [overlapped_frames(synthetic.render_video(replace(config, occlusion_hold=(5, 5)), seed=0, split="train",
                                                     index=i)) for i in range(4)]
    assert sum(held) >= sum(plain) + 6  # 5 more frames a video, less what the end cuts off


def test_held_out_test_split_is_written_apart(tmp_path):
    root = generate(tmp_path / "withtest", seed=0, config=replace(QUIET, videos_test=2), progress=False)
    names = io.read_list_file(root / "test.txt")
    assert len(names) == 2 and not set(names) & set(io.read_list_file(root / "valid.txt"))
    for name in names:
        frames = sorted(p.stem for p in (root / "test" / "JPEGImages" / name).iterdir())
        assert [p.stem for p in (root / "test" / "Annotations" / name).iterdir()] == ["00000"]
        assert sorted(p.stem for p in (root / "test_gt" / "Annotations" / name).iterdir()) == frames
        assert len(synthetic.load_video(root, name, split="test_gt")) == len(frames)
    meta = io.read_json(root / "meta.json")
    assert {meta["videos"][n]["split"] for n in names} == {"test"}
    # a set without a test split has no test files at all
    plain = generate(tmp_path / "plain", seed=0, config=QUIET, progress=False)
    assert not any(p.name.startswith("test") for p in plain.iterdir())

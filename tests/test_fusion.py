"""Fusion (FVOS section 2.3): hard voting and soft voting against literal per-pixel references, the
folder and file versions, scale and transform sets, and the cost report."""
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fvos_utils.base.io import DataError, read_mask, write_mask
from fvos_utils.data.testing import command_error, tree_bytes
from fvos_utils.method import fusion
from fvos_utils.method.probs import save_probs
from fvos_utils.method.transforms import TRANSFORM_NAMES

PROPERTY = settings(max_examples=80, deadline=None)


# ------------------------------------------------------------------------- independent references
def literal_vote(maps) -> np.ndarray:
    """Per pixel: count the labels; the most frequent wins; a tie goes to the first map's label if
    it is tied, else to the highest tied label."""
    maps = [np.asarray(m) for m in maps]
    out = np.zeros(maps[0].shape, np.int64)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            votes = Counter(int(m[y, x]) for m in maps)
            most = max(votes.values())
            tied = [label for label, n in votes.items() if n == most]
            first = int(maps[0][y, x])
            out[y, x] = first if first in tied else max(tied)
    return out


def literal_soft_vote(probs, ids) -> np.ndarray:
    """Per pixel, exact fractions: mean probability of each object over the sources; the highest
    mean (the highest id among equal means) wins where it exceeds 1/2, else 0."""
    probs = np.asarray(probs)
    scale = 255 if probs.dtype == np.uint8 else 1
    n_sources, n_objects, h, w = probs.shape
    out = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            means = [(sum(Fraction(float(probs[s, i, y, x])) for s in range(n_sources)) / n_sources / scale, ids[i])
                     for i in range(n_objects)]
            best_mean, best_id = max(means, default=(0, 0))  # tuples: equal means go to the higher id
            out[y, x] = best_id if best_mean > Fraction(1, 2) else 0
    return out


label_values = st.sampled_from([0, 0, 1, 2, 3, 9, 250])


@st.composite
def label_stacks(draw, max_maps: int = 7, max_side: int = 8):
    s = draw(st.integers(1, max_maps))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    return draw(hnp.arrays(np.uint8, (s, h, w), elements=label_values))


@st.composite
def prob_stacks(draw, max_sources: int = 5, max_objects: int = 4, max_side: int = 6):
    s, n = draw(st.integers(1, max_sources)), draw(st.integers(0, max_objects))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    # values near the 0.5 threshold and repeated values, so ties and boundaries occur
    probs = draw(hnp.arrays(np.uint8, (s, n, h, w), elements=st.sampled_from([0, 100, 127, 128, 129, 200, 255])))
    ids = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True))
    return probs, np.array(ids, np.int64)


# ---------------------------------------------------------------------------- hard voting
@PROPERTY
@given(label_stacks())
def test_vote_equals_literal_reference(maps):
    labels = fusion.vote(list(maps))
    assert labels.dtype == maps.dtype
    assert np.array_equal(labels, literal_vote(maps))
    assert np.array_equal(fusion.vote(maps), labels)  # an (S, H, W) array works as well


@PROPERTY
@given(label_stacks())
def test_vote_returns_the_strict_plurality_where_one_exists(maps):
    labels = fusion.vote(maps)
    counts = np.stack([(maps == v).sum(axis=0) for v in range(256)])  # (256, H, W)
    top = counts.max(axis=0)
    strict = (counts == top).sum(axis=0) == 1
    assert np.array_equal(labels[strict], counts.argmax(axis=0)[strict])


@PROPERTY
@given(label_stacks(), st.randoms(use_true_random=False))
def test_vote_depends_on_the_order_only_through_the_first_map(maps, rng):
    rest = list(maps[1:])
    rng.shuffle(rest)
    assert np.array_equal(fusion.vote([maps[0], *rest]), fusion.vote(maps))


def test_vote_ties_by_hand():
    a, b, c = np.array([[1, 1, 4, 0]]), np.array([[2, 3, 5, 0]]), np.array([[3, 3, 6, 7]])
    # pixel 0: 1, 2, 3 all once -> first map's 1; pixel 1: 3 twice; pixel 2: 4, 5, 6 -> first's 4;
    # pixel 3: 0 twice beats 7
    assert fusion.vote([a, b, c]).tolist() == [[1, 3, 4, 0]]
    # first map not among the tied labels: 2 and 5 twice each, 9 once -> highest tied, 5
    maps = [np.array([[9]]), np.array([[2]]), np.array([[5]]), np.array([[2]]), np.array([[5]])]
    assert fusion.vote(maps).tolist() == [[5]]
    assert fusion.vote([np.array([[4, 0]], np.uint16)]).tolist() == [[4, 0]]


def test_vote_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in size: map 0 is 4x5 .* map 2 is 5x4"):
        fusion.vote([np.zeros((4, 5), np.uint8)] * 2 + [np.zeros((5, 4), np.uint8)])
    with pytest.raises(ValueError, match="at least one"):
        fusion.vote([])
    with pytest.raises(ValueError, match="integer array"):
        fusion.vote([np.zeros((4, 5), np.float32)])
    with pytest.raises(ValueError, match="negative"):
        fusion.vote([np.full((2, 2), -1)])


def _write_folder(root: Path, maps_by_frame: dict) -> None:
    for (video, frame), labels in maps_by_frame.items():
        write_mask(root / video / f"{frame}.png", labels)


def test_vote_folders_matches_vote_frame_by_frame(tmp_path):
    rng = np.random.default_rng(0)
    keys = [("a", "00000"), ("a", "00001"), ("b", "00000")]
    sources = [{key: rng.integers(0, 4, (6, 7)).astype(np.uint8) for key in keys} for _ in range(3)]
    for s, maps in enumerate(sources):
        _write_folder(tmp_path / f"s{s}", maps)
    out = fusion.vote_folders([tmp_path / f"s{s}" for s in range(3)], tmp_path / "fused")
    for video, frame in keys:
        expected = literal_vote([maps[video, frame] for maps in sources])
        assert np.array_equal(read_mask(out / video / f"{frame}.png"), expected)
    with pytest.raises(FileExistsError):
        fusion.vote_folders([tmp_path / "s0"], tmp_path / "fused")


def test_vote_folders_names_the_folder_or_file_that_differs(tmp_path):
    labels = np.zeros((6, 7), np.uint8)
    _write_folder(tmp_path / "s0", {("a", "00000"): labels, ("a", "00001"): labels})
    _write_folder(tmp_path / "s1", {("a", "00000"): labels})
    with pytest.raises(DataError, match=r"s1/a: frames differ .* missing \['00001'\]"):
        fusion.vote_folders([tmp_path / "s0", tmp_path / "s1"], tmp_path / "fused")
    _write_folder(tmp_path / "s1", {("a", "00001"): np.zeros((7, 6), np.uint8)})
    with pytest.raises(DataError, match=r"s1/a/00001.png: size 6x7"):
        fusion.vote_folders([tmp_path / "s0", tmp_path / "s1"], tmp_path / "fused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0", "s1"]  # nothing half-written


# ---------------------------------------------------------------------------- soft voting
def _tied_sources() -> tuple[np.ndarray, np.ndarray]:
    """Two channels whose stored sums tie exactly (555 each) where float sums of x / 255 need not."""
    probs = np.full((4, 2, 3, 4), 100, np.uint8)
    probs[0, 0, 0, 0] = probs[3, 1, 0, 0] = 255
    return probs, np.array([2, 1], np.int64)


@PROPERTY
@given(prob_stacks())
@example(_tied_sources())
def test_soft_vote_equals_literal_reference(case):
    probs, ids = case
    labels = fusion.soft_vote(probs, ids)
    assert np.array_equal(labels, literal_soft_vote(probs, ids))
    # the same probabilities as floats give the same labels, except where float rounding can decide: a tie
    # between channels or a mean at the threshold (exact in the stored integers, not in sums of x / 255)
    as_float = probs.astype(np.float64) / 255
    if not len(ids):
        assert np.array_equal(fusion.soft_vote(as_float, ids), labels)
        return
    sums = np.sort(as_float.sum(axis=0), axis=-3)
    decided = np.abs(sums[..., -1, :, :] - 0.5 * len(probs)) > 1e-9
    if len(ids) > 1:
        decided &= (sums[..., -1, :, :] - sums[..., -2, :, :]) > 1e-9
    assert np.array_equal(fusion.soft_vote(as_float, ids)[decided], labels[decided])


@PROPERTY
@given(prob_stacks(max_objects=3), st.randoms(use_true_random=False))
def test_soft_vote_ignores_channel_and_source_order(case, rng):
    probs, ids = case
    channels, sources = list(range(len(ids))), list(range(len(probs)))
    rng.shuffle(channels)
    rng.shuffle(sources)
    assert np.array_equal(fusion.soft_vote(probs[sources][:, channels], ids[channels]), fusion.soft_vote(probs, ids))


def test_soft_vote_threshold_and_ties_by_hand():
    ids = [4, 9]
    # one source: stored 128 (p = 0.502) is kept, 127 (p = 0.498) is not
    one = np.array([[[[128, 127, 0]], [[0, 0, 0]]]], np.uint8)
    assert fusion.soft_vote(one, ids).tolist() == [[4, 0, 0]]
    # two sources 127 and 128: mean exactly 0.5 is not above it; 128 and 128 is
    two = np.array([[[[127, 128]], [[0, 0]]], [[[128, 128]], [[0, 0]]]], np.uint8)
    assert fusion.soft_vote(two, ids).tolist() == [[0, 4]]
    # equal means: the higher id wins, in whatever order the channels come
    tie = np.array([[[[200]], [[200]]]], np.uint8)
    assert fusion.soft_vote(tie, [9, 4]).tolist() == fusion.soft_vote(tie, [4, 9]).tolist() == [[9]]
    # the mean, not a majority: 0.9 + 0.2 beats 0.6 + 0.6 for the other object
    mean = np.array([[[[0.9]], [[0.6]]], [[[0.2]], [[0.6]]]])
    assert fusion.soft_vote(mean, ids).tolist() == [[9]]


def test_soft_vote_keeps_leading_frame_axes_and_rejects_bad_input():
    rng = np.random.default_rng(1)
    probs = rng.integers(0, 256, (3, 4, 2, 5, 6)).astype(np.uint8)  # (S, T, N, H, W)
    labels = fusion.soft_vote(probs, [1, 2])
    assert labels.shape == (4, 5, 6)
    for t in range(4):
        assert np.array_equal(labels[t], literal_soft_vote(probs[:, t], [1, 2]))
    with pytest.raises(ValueError, match="N=3"):
        fusion.soft_vote(probs, [1, 2, 3])
    with pytest.raises(ValueError, match="unique"):
        fusion.soft_vote(probs, [2, 2])
    with pytest.raises(ValueError, match="uint8"):
        fusion.soft_vote(probs.astype(np.int32), [1, 2])


def _save_sources(folder: Path, video: str, probs: np.ndarray, ids, frames) -> list[Path]:
    paths = []
    for s, p in enumerate(probs):
        paths.append(folder / f"s{s}" / f"{video}.npz")
        save_probs(paths[-1], p, ids, frames)
    return paths


def test_soft_vote_files_equals_the_array_version(tmp_path):
    rng = np.random.default_rng(2)
    probs = rng.integers(0, 256, (3, 4, 2, 5, 6)).astype(np.uint8)  # (S, T, N, H, W)
    frames = [f"{t:05d}" for t in range(4)]
    paths = _save_sources(tmp_path, "v", probs, [3, 8], frames)
    # a fourth source stores the same objects with channels swapped
    swapped = tmp_path / "swapped.npz"
    save_probs(swapped, probs[0][:, ::-1], [8, 3], frames)
    names, ids, labels = fusion.soft_vote_files([*paths, swapped])
    assert names == frames and ids.tolist() == [3, 8]
    assert np.array_equal(labels, fusion.soft_vote(np.concatenate([probs, probs[:1]]), [3, 8]))


def test_soft_vote_files_names_the_file_that_differs(tmp_path):
    probs = np.zeros((2, 1, 4, 4), np.uint8)
    save_probs(tmp_path / "a.npz", probs, [1], ["0", "1"])
    save_probs(tmp_path / "frames.npz", probs, [1], ["0", "2"])
    save_probs(tmp_path / "ids.npz", probs, [2], ["0", "1"])
    save_probs(tmp_path / "size.npz", np.zeros((2, 1, 4, 5), np.uint8), [1], ["0", "1"])
    for name, problem in (("frames", "frames differ"), ("ids", "object ids"), ("size", "frame size 5x4")):
        with pytest.raises(DataError, match=f"{name}.npz: {problem}"):
            fusion.soft_vote_files([tmp_path / "a.npz", tmp_path / f"{name}.npz"])


def test_soft_vote_folders(tmp_path):
    rng = np.random.default_rng(3)
    frames = ["00000", "00001"]
    expected = {}
    for video in ("a", "b"):
        probs = rng.integers(0, 256, (2, 2, 3, 5, 6)).astype(np.uint8)
        _save_sources(tmp_path, video, probs, [1, 2, 5], frames)
        expected[video] = fusion.soft_vote(probs, [1, 2, 5])
    out = fusion.soft_vote_folders([tmp_path / "s0", tmp_path / "s1"], tmp_path / "fused")
    for video, labels in expected.items():
        for t, frame in enumerate(frames):
            assert np.array_equal(read_mask(out / video / f"{frame}.png"), labels[t])
    (tmp_path / "s1" / "b.npz").unlink()
    with pytest.raises(DataError, match=r"s1: videos differ .* missing \['b'\]"):
        fusion.soft_vote_folders([tmp_path / "s0", tmp_path / "s1"], tmp_path / "fused2")
    assert not (tmp_path / "fused2").exists()


# ---------------------------------------------------------------------------- command line
@pytest.fixture()
def passes(tmp_path):
    """Three passes of two videos: ``p<s>/<video>/<frame>.png`` label maps beside ``p<s>/<video>.npz``
    probabilities (as infer --save-probs writes them). Returns their folder names."""
    rng = np.random.default_rng(5)
    frames = ["00000", "00001"]
    for video in ("a", "b"):
        probs = rng.integers(0, 256, (3, 2, 3, 5, 6)).astype(np.uint8)
        _save_sources(tmp_path, video, probs, [1, 2, 5], frames)
        for s in range(3):
            _write_folder(tmp_path / f"s{s}", {(video, f): rng.integers(0, 4, (5, 6)).astype(np.uint8) for f in frames})
    return ["s0", "s1", "s2"]


@pytest.mark.parametrize("method", ["hard", "soft"])
def test_command_line_fuses_as_the_library_does(passes, tmp_path, monkeypatch, capsys, method):
    """``fvos fusion``: the bytes vote_folders / soft_vote_folders write, relative paths from
    the current folder, the folder order kept (the first breaks ties)."""
    library = fusion.FOLDER_FUSIONS[method]([tmp_path / p for p in passes[::-1]], tmp_path / "library")
    monkeypatch.chdir(tmp_path)
    assert fusion.main(["--out", "cli/fused", *passes[::-1], "--fusion", method, "--no-progress"]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'cli' / 'fused'}\n"
    assert tree_bytes(tmp_path / "cli" / "fused") == tree_bytes(library)
    assert fusion.main(["--out", "cli/fused", *passes, "--fusion", method, "--overwrite", "--no-progress"]) == 0
    assert tree_bytes(tmp_path / "cli" / "fused") == tree_bytes(fusion.FOLDER_FUSIONS[method](
        [tmp_path / p for p in passes], tmp_path / "in order"))
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["fused"]  # no temporary left


def test_command_line_bad_input_is_one_line_and_leaves_nothing(passes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s2" / "b" / "00001.png").unlink()
    assert command_error(fusion.main, ["--out", "fused", *passes, "--no-progress"]) == \
        f"error: {tmp_path / 's2' / 'b'}: frames differ from {tmp_path / 's0' / 'b'}: missing ['00001'], extra none"
    assert command_error(fusion.main, ["--out", "fused", "s0", "nowhere"]) == \
        f"error: {tmp_path / 'nowhere'}: prediction folder not found"
    (tmp_path / "s1" / "a.npz").write_bytes(b"not a probability file")
    assert command_error(fusion.main, ["--out", "fused", *passes, "--fusion", "soft", "--no-progress"]).startswith(
        f"error: {tmp_path / 's1' / 'a.npz'}: not a probability file")
    assert sorted(p.name for p in tmp_path.iterdir()) == passes  # nothing half-written
    fusion.vote_folders([tmp_path / "s0", tmp_path / "s1"], tmp_path / "fused", progress=False)
    assert command_error(fusion.main, ["--out", "fused", "s0", "s1"]) == \
        f"error: {tmp_path / 'fused'}: already exists (pass --overwrite to replace it)"
    # a pass folder (probabilities beside the labels) is no place for fused labels, even with --overwrite
    assert command_error(fusion.main, ["--out", "s0", "s0", "s1", "--overwrite"]).startswith(
        f"error: {tmp_path / 's0' / 'a.npz'}: not a prediction frame (<video>/<frame>.png)")
    assert (tmp_path / "s0" / "a.npz").is_file()


# ---------------------------------------------------------------------------- sets and cost
def test_fvos_scales_and_sets():
    assert fusion.FVOS_SCALES == (1.0, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75)
    assert fusion.SCALE_SETS["fvos7"] == fusion.FVOS_SCALES and fusion.SCALE_SETS["single"] == (1.0,)
    for name, scales in fusion.SCALE_SETS.items():
        assert scales[0] == 1.0 and set(scales) <= set(fusion.FVOS_SCALES), name
        assert list(scales) == sorted(set(scales)), name
    for name, transforms in fusion.TRANSFORM_SETS.items():
        assert transforms[0] == "identity" and set(transforms) <= set(TRANSFORM_NAMES), name
    assert fusion.TRANSFORM_SETS["all"] == TRANSFORM_NAMES


def test_cost_report_counts_passes_and_adds_measured_seconds():
    seconds = {s: 2.0 * s ** 2 for s in fusion.FVOS_SCALES}
    rows = fusion.cost_report(seconds_per_pass=seconds)
    assert len(rows) == len(fusion.SCALE_SETS) * len(fusion.TRANSFORM_SETS)
    by_key = {(r["scales"], r["transforms"]): r for r in rows}
    full = by_key["fvos7", "all"]
    assert (full["n_scales"], full["n_transforms"], full["model_passes"]) == (7, 5, 35)
    # 1 + 1.125^2 + ... + 1.75^2 = 1 + 1.265625 + 1.5625 + 1.890625 + 2.25 + 2.640625 + 3.0625 = 13.671875
    assert full["seconds_per_frame"] == pytest.approx(5 * 2 * 13.671875)
    assert by_key["single", "identity"]["model_passes"] == 1
    assert by_key["wide3", "hflip"]["seconds_per_frame"] == pytest.approx(2 * 2 * (1 + 1.375 ** 2 + 1.75 ** 2))
    assert all(r["seconds_per_frame"] is None for r in fusion.cost_report())


def test_cost_report_rejects_unknown_transforms_and_missing_timings():
    with pytest.raises(ValueError, match="'mine'.*'vflip'"):
        fusion.cost_report(transform_sets={"mine": ("identity", "vflip")})
    with pytest.raises(ValueError, match=r"'odd'.*\[1.1\]"):
        fusion.cost_report({"odd": (1.0, 1.1)}, seconds_per_pass={1.0: 1.0})

"""Gap filling (FVOS section 2.2): the reference against the spec, the fast path against the reference,
the alternatives, folders, figure crops, and the real two-object clip."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fvos_utils.base.io import VOID_LABEL, DataError, read_mask, write_mask
from fvos_utils.base.paths import shared_samples_dir
from fvos_utils.data.testing import command_error, scene_probs, tree_bytes
from fvos_utils.method import infer
from fvos_utils.method import postprocess as pp
from fvos_utils.method.probs import load_probs, save_probs

PROPERTY = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------------- independent references
def numpy_dilate(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """OpenCV's documented dilation, written out: out(y, x) = OR over kernel cells (u, v) set of
    mask(y + u - ay, x + v - ax), anchor (ay, ax) = (kh // 2, kw // 2), nothing from outside."""
    h, w = mask.shape
    kh, kw = kernel.shape
    padded = np.pad(mask, ((kh, kh), (kw, kw)))
    out = np.zeros((h, w), bool)
    for u, v in zip(*np.nonzero(kernel)):
        dy, dx = u - kh // 2, v - kw // 2
        out |= padded[kh + dy:kh + dy + h, kw + dx:kw + dx + w]
    return out


def spec_fill(masks: np.ndarray, ids, kernel_size: int, shape: str, *, background_only: bool = False) -> np.ndarray:
    """Section 2.2 pixel by pixel: a pixel joins object i if it is in mask i, or in D_i and D_j for
    an adjacent j != i; it takes the highest id it joined. ``background_only``: pixels of some mask
    keep the plain merge."""
    n, h, w = masks.shape
    if kernel_size <= 1:
        kernel = None
    elif shape == "square":
        kernel = np.ones((kernel_size, kernel_size), np.uint8)
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    dilated = masks if kernel is None else np.array([numpy_dilate(m, kernel) for m in masks]).reshape(masks.shape)
    adjacent = [[i != j and bool((dilated[i] & dilated[j]).any()) for j in range(n)] for i in range(n)]
    labels = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            joined = [ids[i] for i in range(n) if masks[i, y, x]]
            if not (background_only and joined):
                joined += [ids[i] for i in range(n) for j in range(n)
                           if adjacent[i][j] and dilated[i, y, x] and dilated[j, y, x]]
            labels[y, x] = max(joined, default=0)
    return labels


def plain_merge(masks: np.ndarray, ids) -> np.ndarray:
    """Highest id among the masks at each pixel, 0 where none (step 4 without filling)."""
    weighted = masks * np.asarray(ids, np.int64)[:, None, None]
    return weighted.max(axis=0, initial=0)


@st.composite
def objects(draw, max_objects: int = 4, max_side: int = 14, max_id: int = 254):
    n = draw(st.integers(0, max_objects))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    masks = draw(hnp.arrays(bool, (n, h, w)))
    ids = draw(st.lists(st.integers(1, max_id), min_size=n, max_size=n, unique=True))
    return masks, np.array(ids, np.int64)


kernel_sizes = st.integers(0, 9)
shapes = st.sampled_from(pp.SHAPES)


# ---------------------------------------------------------------------------- kernel, hand cases
def test_structuring_elements_are_the_specified_ones():
    assert pp.structuring_element(0) is None and pp.structuring_element(1, "circle") is None
    assert np.array_equal(pp.structuring_element(4), np.ones((4, 4), np.uint8))
    assert np.array_equal(pp.structuring_element(3, "circle"), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert np.array_equal(pp.structuring_element(7, "circle"),
                          cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))


def _bars(width: int, gap: int, ids=(1, 2), height: int = 3) -> tuple[np.ndarray, list]:
    """Two vertical bars of ``width`` columns, ``gap`` background columns apart."""
    masks = np.zeros((2, height, 2 * width + gap), bool)
    masks[0, :, :width] = True
    masks[1, :, width + gap:] = True
    return masks, list(ids)


@pytest.mark.parametrize("fill", [pp.fill_gaps_reference, pp.fill_gaps])
def test_one_pixel_gap_is_filled_by_the_higher_id_with_k3(fill):
    masks, ids = _bars(3, 1)
    assert fill(masks, ids, 3).tolist() == [[1, 1, 1, 2, 2, 2, 2]] * 3
    masks, ids = _bars(3, 1, ids=(2, 1))
    assert fill(masks, ids, 3).tolist() == [[2, 2, 2, 2, 1, 1, 1]] * 3


@pytest.mark.parametrize("fill", [pp.fill_gaps_reference, pp.fill_gaps])
def test_three_pixel_gap_with_k5_fills_only_the_middle_column(fill):
    # reach right a = 2, reach left k - 1 - a = 2: the dilations share the gap's middle column only
    masks, ids = _bars(2, 3)
    assert fill(masks, ids, 5).tolist() == [[1, 1, 0, 2, 0, 2, 2]] * 3


@pytest.mark.parametrize("fill", [pp.fill_gaps_reference, pp.fill_gaps])
def test_k2_leaves_straight_gaps_and_fills_a_corner(fill):
    masks, ids = _bars(2, 1)
    assert fill(masks, ids, 2).tolist() == plain_merge(masks, ids).tolist()
    corner = np.zeros((2, 2, 2), bool)
    corner[0, 0, 1] = True   # object 5 above the empty pixel
    corner[1, 1, 0] = True   # object 3 left of it
    assert fill(corner, [5, 3], 2).tolist() == [[0, 5], [3, 5]]


@pytest.mark.parametrize("fill", [pp.fill_gaps_reference, pp.fill_gaps])
def test_touching_objects_higher_id_takes_the_edge(fill):
    masks, ids = _bars(4, 0)  # touching: the dilations share columns 3 and 4
    assert fill(masks, ids, 3).tolist() == [[1, 1, 1, 2, 2, 2, 2, 2]] * 3


@pytest.mark.parametrize("fill", [pp.fill_gaps_reference, pp.fill_gaps])
def test_diagonal_neighbours_join_with_the_square_not_the_circle(fill):
    masks = np.zeros((2, 3, 3), bool)
    masks[0, 0, 0] = masks[1, 2, 2] = True
    assert fill(masks, [1, 2], 3).tolist() == [[1, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert fill(masks, [1, 2], 3, shape="circle").tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 2]]


def test_lone_object_and_empty_input_are_unchanged():
    lone = np.zeros((1, 6, 6), bool)
    lone[0, 2:4, 1:3] = True
    assert np.array_equal(pp.fill_gaps(lone, [7], 9), lone[0] * 7)
    assert pp.fill_gaps(np.zeros((0, 4, 5), bool), [], 3).tolist() == [[0] * 5] * 4


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(objects(), kernel_sizes, shapes)
def test_reference_follows_the_spec_pixel_by_pixel(case, k, shape):
    masks, ids = case
    assert np.array_equal(pp.fill_gaps_reference(masks, ids, k, shape=shape), spec_fill(masks, ids, k, shape))


@settings(max_examples=150, deadline=None)
@given(objects(max_objects=6, max_side=20, max_id=300), kernel_sizes, shapes)
def test_fast_equals_reference(case, k, shape):
    masks, ids = case
    fast, reference = pp.fill_gaps(masks, ids, k, shape=shape), pp.fill_gaps_reference(masks, ids, k, shape=shape)
    assert fast.dtype == reference.dtype == (np.uint8 if ids.max(initial=0) < 255 else np.uint16)
    assert np.array_equal(fast, reference)


@PROPERTY
@given(objects(), kernel_sizes, shapes)
def test_background_method_changes_only_background(case, k, shape):
    masks, ids = case
    labels = pp.fill_gaps(masks, ids, k, shape=shape, method="background")
    assert np.array_equal(labels, spec_fill(masks, ids, k, shape, background_only=True))


@PROPERTY
@given(objects(), st.integers(0, 1), shapes, st.sampled_from(pp.METHODS))
def test_small_kernels_only_merge(case, k, shape, method):
    masks, ids = case
    assert np.array_equal(pp.fill_gaps(masks, ids, k, shape=shape, method=method), plain_merge(masks, ids))


@PROPERTY
@given(objects(), kernel_sizes, shapes, st.sampled_from(pp.METHODS))
def test_no_object_pixel_becomes_background_and_ids_come_from_inputs(case, k, shape, method):
    masks, ids = case
    labels = pp.fill_gaps(masks, ids, k, shape=shape, method=method)
    assert (labels[masks.any(axis=0)] != 0).all()
    assert set(np.unique(labels).tolist()) <= set(ids.tolist()) | {0}


@PROPERTY
@given(objects(), kernel_sizes, shapes)
def test_each_pixel_takes_an_id_whose_dilation_covers_it(case, k, shape):
    masks, ids = case
    kernel = pp.structuring_element(k, shape)
    labels = pp.fill_gaps(masks, ids, k, shape=shape)
    for mask, object_id in zip(masks, ids):
        reach = mask if kernel is None else numpy_dilate(mask, kernel)
        assert not (labels == object_id)[~reach].any()


@PROPERTY
@given(st.integers(2, 9), st.integers(0, 9), st.integers(1, 5), st.integers(1, 5), st.booleans(), st.booleans())
def test_gap_narrower_than_reach_is_bridged_wider_than_kernel_untouched(k, gap, left, right, vertical, swap):
    h = 4
    masks = np.zeros((2, h, left + gap + right), bool)
    masks[0, :, :left] = True
    masks[1, :, left + gap:] = True
    if vertical:
        masks = masks.transpose(0, 2, 1).copy()
    ids = [2, 1] if swap else [1, 2]
    labels = pp.fill_gaps(masks, ids, k)
    if gap <= (k - 1) // 2:  # every gap pixel is within reach of both objects: no background left
        assert (labels != 0).all()
    if gap >= k - 1:         # the dilations do not meet
        assert np.array_equal(labels, plain_merge(masks, ids))


@PROPERTY
@given(objects(max_objects=2, max_side=12), kernel_sizes, shapes)
def test_objects_at_chebyshev_distance_k_or_more_are_untouched(case, k, shape):
    masks, ids = case
    if len(masks) == 2 and masks[0].any() and masks[1].any():
        a, b = np.argwhere(masks[0]), np.argwhere(masks[1])
        distance = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2).min()
        if distance >= max(k, 1):
            assert np.array_equal(pp.fill_gaps(masks, ids, k, shape=shape), plain_merge(masks, ids))


@PROPERTY
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 9), shapes, st.sampled_from(pp.METHODS), st.data())
def test_label_map_version_equals_split_masks(h, w, k, shape, method, data):
    labels = data.draw(hnp.arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 3, 7, 200])))
    ids = [i for i in np.unique(labels) if i]
    masks = np.stack([labels == i for i in ids]) if ids else np.zeros((0, h, w), bool)
    out = pp.fill_gaps_labels(labels, k, shape=shape, method=method)
    assert out.dtype == labels.dtype
    assert np.array_equal(out, pp.fill_gaps(masks, ids, k, shape=shape, method=method))


def test_expand_labels_grows_a_pixel_into_a_euclidean_disc_of_radius_k_half():
    labels = np.zeros((15, 15), np.uint8)
    labels[7, 7] = 4
    for k in (3, 5, 9):
        yy, xx = np.mgrid[:15, :15]
        disc = np.hypot(yy - 7, xx - 7) <= k // 2
        assert np.array_equal(pp.fill_gaps_labels(labels, k, method="expand_labels"), disc * 4)


def test_expand_labels_splits_a_gap_between_the_nearest_objects():
    masks, ids = _bars(2, 4)
    assert pp.fill_gaps(masks, ids, 5, method="expand_labels").tolist() == [[1, 1, 1, 1, 2, 2, 2, 2]] * 3


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("masks, ids, message", [
    (np.zeros((1, 4, 4), np.uint8), [1], "bool"),
    (np.zeros((4, 4), bool), [1], "bool array"),
    (np.zeros((2, 4, 4), bool), [1], "one id per mask"),
    (np.zeros((2, 4, 4), bool), [3, 3], "unique"),
    (np.zeros((1, 4, 4), bool), [0], "1..65534"),
    (np.zeros((1, 4, 4), bool), [70000], "1..65534"),
])
def test_bad_masks_or_ids_are_rejected(masks, ids, message):
    with pytest.raises(ValueError, match=message):
        pp.fill_gaps(masks, ids, 3)


def test_bad_kernel_shape_method_and_labels_are_rejected():
    masks = np.zeros((1, 4, 4), bool)
    with pytest.raises(ValueError, match="kernel_size"):
        pp.fill_gaps(masks, [1], -1)
    with pytest.raises(ValueError, match="kernel_size"):
        pp.fill_gaps(masks, [1], 2.5)
    with pytest.raises(ValueError, match="shape"):
        pp.fill_gaps(masks, [1], 3, shape="diamond")
    with pytest.raises(ValueError, match="method"):
        pp.fill_gaps(masks, [1], 3, method="close")
    with pytest.raises(ValueError, match="integer array"):
        pp.fill_gaps_labels(np.zeros((4, 4), np.float32), 3)
    with pytest.raises(ValueError, match="0..65534"):
        pp.fill_gaps_labels(np.full((4, 4), -1, np.int32), 3)


# ---------------------------------------------------------------------------- folders
def _write_predictions(root: Path, videos=("a", "b"), n_frames=3, size=(20, 24), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    written = {}
    for video in videos:
        for t in range(n_frames):
            labels = np.zeros(size, np.uint8)
            labels[2:10, 2:10] = 1
            labels[2:10, 11 + t % 2:20] = 2  # 1 or 2 px gap from object 1
            labels[rng.integers(12, 18), rng.integers(0, 20)] = 3
            write_mask(root / video / f"{t:05d}.png", labels)
            written[(video, f"{t:05d}")] = labels
    return written


def test_list_predictions(tmp_path):
    _write_predictions(tmp_path / "pred", videos=("b", "a"), n_frames=2)
    (tmp_path / "pred" / "empty").mkdir()
    assert pp.list_predictions(tmp_path / "pred") == {"a": ["00000", "00001"], "b": ["00000", "00001"]}
    with pytest.raises(DataError, match="not found"):
        pp.list_predictions(tmp_path / "missing")
    with pytest.raises(DataError, match="no predictions"):
        pp.list_predictions(tmp_path / "pred" / "empty")


@pytest.mark.parametrize("method", pp.METHODS)
def test_fill_gaps_folder_matches_frame_by_frame(tmp_path, method):
    written = _write_predictions(tmp_path / "pred")
    out = pp.fill_gaps_folder(tmp_path / "pred", tmp_path / "filled", 5, shape="circle", method=method)
    assert out == tmp_path / "filled"
    for (video, frame), labels in written.items():
        expected = pp.fill_gaps_labels(labels, 5, shape="circle", method=method)
        assert np.array_equal(read_mask(out / video / f"{frame}.png"), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filled", "pred"]


def test_fill_gaps_folder_refuses_to_overwrite_unless_asked(tmp_path):
    _write_predictions(tmp_path / "pred", n_frames=1)
    pp.fill_gaps_folder(tmp_path / "pred", tmp_path / "out", 3)
    with pytest.raises(FileExistsError):
        pp.fill_gaps_folder(tmp_path / "pred", tmp_path / "out", 5)
    pp.fill_gaps_folder(tmp_path / "pred", tmp_path / "out", 5, overwrite=True)
    labels = read_mask(tmp_path / "pred" / "a" / "00000.png")
    assert np.array_equal(read_mask(tmp_path / "out" / "a" / "00000.png"), pp.fill_gaps_labels(labels, 5))


def test_fill_gaps_folder_leaves_nothing_behind_on_a_bad_frame(tmp_path):
    _write_predictions(tmp_path / "pred")
    bad = tmp_path / "pred" / "b" / "00001.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="00001.png"):
        pp.fill_gaps_folder(tmp_path / "pred", tmp_path / "out", 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred"]


# ---------------------------------------------------------------------------- figure crops
def test_meeting_crops_find_each_joined_gap_and_ignore_lone_edges():
    before = np.zeros((100, 200), np.uint8)
    before[10:30, 10:40] = 1
    before[10:30, 42:70] = 2      # 2 px gap from 1, around column 40
    before[70:90, 150:170] = 3
    before[70:90, 173:190] = 4    # 3 px gap from 3, around column 171
    before[60:70, 20:40] = 5      # alone
    after = pp.fill_gaps_labels(before, 7, method="expand_labels")  # also grows object 5's edges
    crops = pp.meeting_crops(before, after, size=32, max_crops=4)
    assert len(crops) == 2
    changed_between = [(slice(10, 30), slice(40, 42)), (slice(70, 90), slice(170, 173))]
    for rows, cols in crops:
        assert rows.stop - rows.start == 32 and cols.stop - cols.start == 32
    for gap in changed_between:  # each gap lies entirely inside one of the crops
        assert any(r.start <= gap[0].start and gap[0].stop <= r.stop and c.start <= gap[1].start
                   and gap[1].stop <= c.stop for r, c in crops)
    assert pp.meeting_crops(before, after, size=32, max_crops=1) == crops[:1]


def test_meeting_crops_edge_cases():
    before = np.zeros((10, 12), np.uint8)
    before[:, :5], before[:, 6:] = 1, 2
    after = pp.fill_gaps_labels(before, 3)
    assert pp.meeting_crops(before, before) == []
    assert pp.meeting_crops(before, after, size=64) == [(slice(0, 10), slice(0, 12))]  # clipped to the image
    with pytest.raises(ValueError, match="one shape"):
        pp.meeting_crops(before, after[:5])
    with pytest.raises(ValueError, match="one shape"):
        pp.meeting_crops(before, after, truth=after[:5])


def test_meeting_pixels_judge_the_objects_on_the_ground_truth():
    """A tracking error (the prediction splits one annotated object in two) is not a meeting of objects;
    a gap between two annotated objects is, and with a union annotation only what lies inside it counts."""
    truth = np.zeros((40, 80), np.uint8)
    truth[10:30, 5:35] = 1                         # one object, predicted as two
    truth[10:30, 45:60], truth[10:30, 62:75] = 2, 3  # two objects, 2 px apart
    before = truth.copy()
    before[10:30, 20:35] = 4                       # the split: 1 | 4 with no gap, then a 1 px gap
    before[10:30, 19] = 0
    before[10:30, 60:62] = 0
    after = pp.fill_gaps_labels(before, 5)
    split_gap, true_gap = (slice(10, 30), slice(19, 20)), (slice(10, 30), slice(60, 62))
    by_prediction = pp.meeting_pixels(before, after)
    by_truth = pp.meeting_pixels(before, after, truth=truth)
    assert by_prediction[split_gap].all() and by_prediction[true_gap].all()
    assert not by_truth[split_gap].any() and by_truth[true_gap].all()
    assert by_truth.sum() < by_prediction.sum() and not (by_truth & ~by_prediction).any()
    # void in the truth is no object: a void strip beside object 2 does not make its edge a meeting
    voided = np.where(truth == 3, VOID_LABEL, truth).astype(np.uint8)
    assert not pp.meeting_pixels(before, after, truth=voided)[true_gap].any()
    # a union annotation (DAVIS 2016: 255 wherever either object is): inside it, where two predicted objects meet
    union = np.where(truth[:, :40] > 0, 255, 0).astype(np.uint8)
    union = np.pad(union, ((0, 0), (0, 40)))
    inside = pp.meeting_pixels(before, after, truth=union, union=True)
    assert inside[split_gap].all() and not inside[:, 40:].any()
    assert not (inside & (union == 0)).any()
    crops = pp.meeting_crops(before, after, truth=truth, size=16, max_crops=3)
    assert len(crops) == 1 and crops[0][1].start <= 60 and 62 <= crops[0][1].stop


# ---------------------------------------------------------------------------- the real clip
BMX = shared_samples_dir() / "davis_bmx-trees" if shared_samples_dir() else None


@pytest.mark.skipif(BMX is None or not BMX.is_dir(), reason="../shared/data/samples/davis_bmx-trees not present")
def test_real_touching_objects_shrunk_apart_are_rejoined():
    truth = read_mask(BMX / "Annotations" / "bmx-trees" / "00000.png")
    union = read_mask(BMX / "Annotations_davis2016_union" / "bmx-trees" / "00000.png") > 0
    ids = [1, 2]
    # as if predicted separately: each object 1 px smaller, so a 2 px gap opens where they touched
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    shrunk = np.stack([cv2.erode((truth == i).astype(np.uint8), cross).astype(bool) for i in ids])
    touching = cv2.dilate((truth == 1).astype(np.uint8), cross).astype(bool) & (truth == 2)
    assert touching.sum() > 50  # the clip's two objects do meet
    for k in (2, 3, 5, 9):
        for shape in pp.SHAPES:
            assert np.array_equal(pp.fill_gaps(shrunk, ids, k, shape=shape),
                                  pp.fill_gaps_reference(shrunk, ids, k, shape=shape)), (k, shape)
    rejoined = {(k, shape): (pp.fill_gaps(shrunk, ids, k, shape=shape)[touching] != 0).mean()
                for k in (0, 2, 3, 5, 7, 9) for shape in pp.SHAPES}
    # reach 1 px (k = 3 circle) or one-sided (k = 2) cannot span a 2 px gap; a 3x3 square spans it
    # diagonally only; from k = 5 (reach 2 px each way) most of the contact is covered again
    assert rejoined[0, "square"] == rejoined[2, "square"] == rejoined[2, "circle"] == rejoined[3, "circle"] == 0
    assert 0 < rejoined[3, "square"] < rejoined[5, "square"] <= rejoined[7, "square"] <= rejoined[9, "square"]
    assert rejoined[5, "square"] > 0.9 and rejoined[5, "circle"] > 0.8
    iou = [np.sum((m > 0) & union) / np.sum((m > 0) | union) for m in
           (pp.fill_gaps(shrunk, ids, 0), pp.fill_gaps(shrunk, ids, 5))]
    assert iou[1] > iou[0]


# ------------------------------------------------------------------ named settings on a run's output
@pytest.fixture()
def run_output(tmp_path):
    """A single-model run's folder: two videos of probabilities and their merged label maps."""
    folder = tmp_path / "single"
    for index, name in enumerate(("vid_a", "vid_b")):
        stored, ids = scene_probs(index)
        frames = [f"{t:05d}" for t in range(len(stored))]
        save_probs(folder / f"{name}.npz", stored, ids, frames)
        for frame, frame_probs in zip(frames, stored):
            write_mask(folder / name / f"{frame}.png", infer.merge_objects(frame_probs, ids, threshold=127.5))
    return folder


def test_object_masks_threshold_like_the_merge():
    stored = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert np.array_equal(pp.object_masks(stored), stored / 255 > 0.5)
    with pytest.raises(ValueError, match="uint8"):
        pp.object_masks(stored.astype(np.float32))


def test_fill_variants_from_probs_fill_the_separate_masks(run_output, tmp_path):
    variants = [pp.GapFilling("paper", shape, k) for shape in ("square", "circle") for k in (0, 2, 3, 5)]
    variants += [pp.GapFilling("background", "square", 3), pp.GapFilling("expand_labels", "square", 5)]
    folders = pp.fill_variants(run_output, tmp_path / "filled", variants, from_probs=True, progress=False)
    assert set(folders) == set(variants)
    for name in ("vid_a", "vid_b"):
        video = load_probs(run_output / f"{name}.npz")
        for frame, stored in zip(video.frames, video.probs):
            masks = stored > 127  # p > 0.5 as stored
            merged = infer.merge_objects(stored, video.object_ids, threshold=127.5)
            for v in variants:
                got = read_mask(folders[v] / name / f"{frame}.png")
                if v.method == "paper":
                    want = pp.fill_gaps_reference(masks, video.object_ids, v.kernel, shape=v.shape)
                elif v.method == "background":  # only the merged map's background may change
                    want = np.where(merged == 0, pp.fill_gaps_reference(masks, video.object_ids, v.kernel),
                                    merged)
                else:
                    want = pp.fill_gaps_labels(merged, v.kernel, method="expand_labels")
                assert np.array_equal(got, want), (v.name, name, frame)
        # k = 0 from the separate masks is exactly the run's own merge
        assert all(np.array_equal(read_mask(folders[variants[0]] / name / f"{f}.png"),
                                  read_mask(run_output / name / f"{f}.png")) for f in video.frames)


def test_fill_variants_from_labels_and_the_videos_subset(run_output, tmp_path):
    variants = [pp.GapFilling("paper", "square", 3), pp.GapFilling("paper", "circle", 5)]
    folders = pp.fill_variants(run_output, tmp_path / "filled", variants, from_probs=False, videos=["vid_b"],
                                     progress=False)
    for v in variants:
        assert sorted(p.name for p in folders[v].iterdir()) == ["vid_b"]
        for png in sorted((run_output / "vid_b").glob("*.png")):
            want = pp.fill_gaps_labels(read_mask(png), v.kernel, shape=v.shape)
            assert np.array_equal(read_mask(folders[v] / "vid_b" / png.name), want)


def test_fill_variants_refuse_and_leave_nothing_behind(run_output, tmp_path):
    work = tmp_path / "filled"
    square3, circle3 = pp.GapFilling("paper", "square", 3), pp.GapFilling("paper", "circle", 3)
    pp.fill_variants(run_output, work, [circle3], from_probs=True, progress=False)
    with pytest.raises(FileExistsError):  # circle3 exists: square3 must not appear either
        pp.fill_variants(run_output, work, [square3, circle3], from_probs=True, progress=False)
    assert sorted(p.name for p in work.iterdir()) == [circle3.name]
    with pytest.raises(ValueError, match="distinct"):
        pp.fill_variants(run_output, work, [square3, square3], from_probs=True, overwrite=True)
    with pytest.raises(DataError, match="vid_c.npz.*missing"):
        pp.fill_variants(run_output, work, [square3], from_probs=True, videos=["vid_c"], overwrite=True)
    with pytest.raises(DataError, match="no probability files"):
        pp.fill_variants(run_output / "vid_a", work, [square3], from_probs=True, overwrite=True)
    assert sorted(p.name for p in work.iterdir()) == [circle3.name]


def test_fill_variants_remove_the_folders_of_settings_no_longer_compared(run_output, tmp_path):
    """Chapter 05 with other kernel sizes: the old kernels' folders go, anything not named like a setting stays."""
    work = tmp_path / "filled"
    old = pp.gap_filling_variants((2, 3), shapes=("square",))
    pp.fill_variants(run_output, work, old, from_probs=True, progress=False)
    (work / "notes").mkdir()
    (work / "paper-blob-k2").mkdir()  # not a setting: no such shape
    (work / "paper-square-k9.txt").write_text("mine")
    new = pp.gap_filling_variants((3, 5), shapes=("square",))
    pp.fill_variants(run_output, work, new, from_probs=True, overwrite=True, progress=False)
    assert sorted(p.name for p in work.iterdir()) == ["notes", "paper-blob-k2", "paper-square-k3", "paper-square-k5",
                                                       "paper-square-k9.txt"]


# ---------------------------------------------------------------------------- command line
def test_command_line_fills_a_pass_as_the_recipe_does(run_output, tmp_path, monkeypatch, capsys):
    """``fvos postprocess`` on a pass's probabilities writes the bytes the recipe's
    fill_variants writes; on label maps those of fill_gaps_folder. Relative paths from the current folder."""
    setting = pp.GapFilling("paper", "circle", 3)
    library = pp.fill_variants(run_output, tmp_path / "library", [setting], from_probs=True, progress=False)[setting]
    monkeypatch.chdir(tmp_path)
    assert pp.main(["--in", "single", "--out", "cli/filled", "--kernel", "3", "--shape", "circle", "--from-probs",
                    "--no-progress"]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'cli' / 'filled'}\n"
    assert tree_bytes(tmp_path / "cli" / "filled") == tree_bytes(library)
    pp.fill_gaps_folder(run_output, tmp_path / "labels", 5, method="background", progress=False)
    # a folder it wrote may be replaced
    assert pp.main(["--in", "single", "--out", "cli/filled", "--kernel", "5", "--method", "background",
                    "--overwrite", "--no-progress"]) == 0
    assert tree_bytes(tmp_path / "cli" / "filled") == tree_bytes(tmp_path / "labels")
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["filled"]  # no temporary left


def test_command_line_bad_input_is_one_line_and_leaves_nothing(run_output, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fill = ["--kernel", "2", "--no-progress"]
    assert command_error(pp.main, ["--in", "nowhere", "--out", "out", *fill]) == \
        f"error: {tmp_path / 'nowhere'}: prediction folder not found"
    assert command_error(pp.main, ["--in", "single/vid_a", "--out", "out", "--from-probs", *fill]).startswith(
        f"error: {tmp_path / 'single' / 'vid_a'}: no probability files here")
    (run_output / "vid_b" / "00001.png").write_bytes(b"not a png")
    assert command_error(pp.main, ["--in", "single", "--out", "out", *fill]).startswith(
        f"error: {run_output / 'vid_b' / '00001.png'}: unreadable or truncated image")
    assert command_error(pp.main, ["--in", "single", "--out", "out", "--kernel", "-1"]) == \
        "error: kernel_size must be a non-negative integer, got -1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single"]  # nothing half-written
    (tmp_path / "notes.txt").write_text("mine")
    assert command_error(pp.main, ["--in", "single", "--out", "notes.txt/out", *fill]) == \
        f"error: {tmp_path / 'notes.txt'}: a file, not a folder: {tmp_path / 'notes.txt' / 'out'} cannot be an output folder"
    # an existing folder: only with --overwrite, and never one that holds more than predictions
    pp.fill_gaps_folder(tmp_path / "single", tmp_path / "done", 2, from_probs=True, progress=False)
    assert command_error(pp.main, ["--in", "single", "--out", "done", "--from-probs", *fill]) == \
        f"error: {tmp_path / 'done'}: already exists (pass --overwrite to replace it)"
    assert command_error(pp.main, ["--in", "single", "--out", "single", "--from-probs", "--overwrite", *fill]) \
        .startswith(f"error: {run_output / 'vid_a.npz'}: not a prediction frame")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "notes.txt", "single"]
    assert (run_output / "vid_a.npz").is_file()


def test_gap_filling_names_round_trip():
    for variant in pp.gap_filling_variants((0, 2, 11), methods=pp.METHODS):
        assert pp.GapFilling.from_name(variant.name) == variant
    for bad in ("paper-square-2", "paper-k2", "paper-square-k2-extra", ""):
        with pytest.raises(ValueError, match="not a gap-filling name"):
            pp.GapFilling.from_name(bad)
    with pytest.raises(ValueError, match="method"):
        pp.GapFilling.from_name("dilate-square-k2")


def test_gap_filling_variants_and_their_checks():
    variants = pp.gap_filling_variants((0, 3), methods=("paper", "expand_labels"))
    assert [v.name for v in variants] == ["paper-square-k0", "paper-square-k3", "paper-circle-k0", "paper-circle-k3",
                                          "expand_labels-square-k0", "expand_labels-square-k3"]
    with pytest.raises(ValueError, match="method"):
        pp.GapFilling("dilate", "square", 3)
    with pytest.raises(ValueError, match="shape"):
        pp.GapFilling("paper", "diamond", 3)
    with pytest.raises(ValueError, match="kernel_size"):
        pp.GapFilling("paper", "square", -1)

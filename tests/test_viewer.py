"""The result viewer: its pure drawing function, lazy loading, the widget without a browser, the
contact sheet and the viewer notebook (tests/test_viewer_browser.py drives it in a real browser)."""
import io as stdio
import os
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from fvos_utils.base import paths
from fvos_utils.base.io import DataError, davis_palette, read_frame, read_mask, write_frame, write_json, write_mask
from fvos_utils.method.postprocess import fill_gaps_labels
from fvos_utils.run import figures
from fvos_utils.studies import viewer

PALETTE = davis_palette()
GREY = 100
H, W, N_FRAMES = 12, 20, 5


def _labels(shift: int = 0) -> np.ndarray:
    """Object 1 at columns 2..7 and object 2 at 9..14 (a 1-px gap at column 8), moved right by ``shift``."""
    labels = np.zeros((H, W), np.uint8)
    labels[3:9, 2 + shift:8 + shift] = 1
    labels[3:9, 9 + shift:15 + shift] = 2
    return labels


def _frame(t: int = 0) -> np.ndarray:
    frame = np.full((H, W, 3), GREY, np.uint8)
    frame[0, :, 0] = 10 * t  # frames differ, so a different frame shows
    return frame


@pytest.fixture
def dataset(tmp_path):
    """A split root with N_FRAMES lossless frames, ground truth, and a prediction lacking its last frame."""
    for t in range(N_FRAMES):
        name = f"{t:05d}"
        write_frame(tmp_path / "data" / "JPEGImages" / "v" / f"{name}.png", _frame(t))
        write_mask(tmp_path / "data" / "Annotations" / "v" / f"{name}.png", _labels(t))
        if t < N_FRAMES - 1:
            write_mask(tmp_path / "pred" / "v" / f"{name}.png", _labels(0))
    return tmp_path


@pytest.fixture
def results(dataset):
    return viewer.VideoResults(dataset / "data", "v", split=None,
                               runs={"truth": dataset / "data" / "Annotations", "still": dataset / "pred"})


def _decode(png: bytes) -> np.ndarray:
    """An independent PNG decoder (Pillow; the viewer encodes with OpenCV)."""
    return np.asarray(Image.open(stdio.BytesIO(png)).convert("RGB"))


# ------------------------------------------------------------------------------------------ compose
def test_compose_places_panels_side_by_side_with_white_gaps():
    frame = _frame()
    a, b = _labels(), np.zeros((H, W), np.uint8)
    b[0:2, 0:2] = 2
    out = viewer.compose(frame, [a, b, None], alpha=1.0, contour=False, gap=3)
    assert out.shape == (H, 3 * W + 2 * 3, 3) and out.dtype == np.uint8
    left, right, third = out[:, :W], out[:, W + 3:2 * W + 3], out[:, 2 * (W + 3):]
    assert (out[:, W:W + 3] == 255).all() and (out[:, 2 * W + 3:2 * W + 6] == 255).all()
    # alpha 1 without outlines: object pixels take exactly their palette colour, the rest is the frame
    expected_left = frame.copy()
    expected_left[a == 1], expected_left[a == 2] = PALETTE[1], PALETTE[2]
    np.testing.assert_array_equal(left, expected_left)
    assert (right[0:2, 0:2] == PALETTE[2]).all() and (right[2:] == GREY).all()
    np.testing.assert_array_equal(third, frame)  # a panel without a mask shows the bare frame


def test_compose_panels_equal_the_overlay_of_each_run():
    frame, a, b = _frame(3), _labels(), _labels(2)
    out = viewer.compose(frame, [a, b], alpha=0.4)
    np.testing.assert_array_equal(out[:, :W], figures.overlay(frame, a, alpha=0.4))
    np.testing.assert_array_equal(out[:, W + viewer.PANEL_GAP:], figures.overlay(frame, b, alpha=0.4))


def test_compose_without_panels_is_the_frame_and_zoom_repeats_pixels():
    frame = _frame(2)
    np.testing.assert_array_equal(viewer.compose(frame, []), frame)
    plain = viewer.compose(frame, [_labels(), _labels(1)], alpha=0.3)
    zoomed = viewer.compose(frame, [_labels(), _labels(1)], alpha=0.3, zoom=3)
    assert zoomed.shape == (3 * plain.shape[0], 3 * plain.shape[1], 3)
    for dy in range(3):
        for dx in range(3):
            np.testing.assert_array_equal(zoomed[dy::3, dx::3], plain)


def test_object_toggles_hide_objects():
    frame, labels = _frame(), _labels()
    only_2 = viewer.compose(frame, [labels], alpha=0.5, objects=[2])
    assert (only_2[labels == 1] == frame[labels == 1]).all()          # object 1 not drawn, not even its outline
    assert (only_2[labels == 2] != frame[labels == 2]).any(axis=-1).all()
    np.testing.assert_array_equal(viewer.compose(frame, [labels], objects=[]), frame)


def test_opacity_zero_gives_the_frame_back_and_leaves_only_outlines():
    frame, labels = _frame(), _labels()
    np.testing.assert_array_equal(viewer.compose(frame, [labels], alpha=0.0, contour=False), frame)
    outlined = viewer.compose(frame, [labels], alpha=0.0)
    changed = (outlined != frame).any(axis=-1)
    interior = np.zeros_like(changed)
    interior[4:8, 3:7] = interior[4:8, 10:14] = True
    assert changed[3, 2:8].all() and not (changed & interior).any() and not changed[labels == 0].any()


def test_kernel_output_equals_fill_gaps_labels_on_the_chosen_panels():
    frame, labels = _frame(), _labels()
    for k, shape in ((3, "square"), (5, "circle")):
        filled = fill_gaps_labels(labels, k, shape=shape)
        assert (filled[3:9, 8] != 0).all()  # the gap column is closed: the test data has something to fill
        out = viewer.compose(frame, [labels, labels], kernel_size=k, shape=shape, fill=[1])
        np.testing.assert_array_equal(out, viewer.compose(frame, [labels, filled]))
        np.testing.assert_array_equal(viewer.compose(frame, [labels], kernel_size=k, shape=shape),
                                      viewer.compose(frame, [filled]))
    # the gap column itself: background in the unfilled panel, object 2's colour (the higher id wins) after
    out = viewer.compose(frame, [labels, labels], kernel_size=3, alpha=1.0, contour=False, gap=0, fill=[1])
    assert (out[3:9, 8] == GREY).all() and (out[3:9, W + 8] == PALETTE[2]).all()
    np.testing.assert_array_equal(viewer.compose(frame, [labels], kernel_size=0),
                                  viewer.compose(frame, [labels]))


def test_compose_rejects_bad_arguments():
    frame, labels = _frame(), _labels()
    with pytest.raises(ValueError, match="zoom"):
        viewer.compose(frame, [labels], zoom=0)
    with pytest.raises(ValueError, match="fill"):
        viewer.compose(frame, [labels], fill=[1])
    with pytest.raises(ValueError, match="frame"):
        viewer.compose(frame[..., 0], [labels])
    with pytest.raises(ValueError, match="must match"):
        viewer.compose(frame, [labels[:-1]])
    with pytest.raises(ValueError, match="kernel shape"):
        viewer.compose(frame, [labels], kernel_size=3, shape="hexagon")


def test_encode_png_round_trips_through_an_independent_decoder():
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(viewer.encode_png(image)), image)


# ------------------------------------------------------------------------------------------ loading
def test_results_read_frames_and_runs_lazily_and_cache_them(results):
    assert len(results) == N_FRAMES and results.runs == ["truth", "still"] and results.object_ids == (1, 2)
    np.testing.assert_array_equal(results.frame(2), _frame(2))
    truth, still = results.panels(2)
    np.testing.assert_array_equal(truth, _labels(2))
    np.testing.assert_array_equal(still, _labels(0))
    assert results.frame(2) is results.frame(2) and results.labels("truth", 2) is truth  # read once
    assert results.panels(N_FRAMES - 1)[1] is None  # the prediction has no mask for the last frame
    assert results.frame_indices(3) == [0, 2, 4] and results.frame_indices(50) == list(range(N_FRAMES))


def test_results_name_the_offending_file(dataset):
    with pytest.raises(DataError, match=r"pred.v.*run 'p' has no masks for video 'v'"):
        viewer.VideoResults(dataset / "data", "v", split=None, runs={"p": dataset / "pred" / "v"})
    bad = dataset / "pred" / "v" / "00001.png"
    write_mask(bad, np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError, match="00001.png: mask size 20x13"):  # finding the object ids reads every mask
        viewer.VideoResults(dataset / "data", "v", split=None, runs={"p": dataset / "pred"})
    results = viewer.VideoResults(dataset / "data", "v", split=None, runs={"p": dataset / "pred"}, object_ids=[1])
    np.testing.assert_array_equal(results.labels("p", 0), _labels(0))  # given the ids, masks are read on demand
    with pytest.raises(DataError, match="00001.png: mask size 20x13"):
        results.labels("p", 1)
    with pytest.raises(DataError, match="video has no frames"):
        viewer.VideoResults(dataset / "data", "missing", split=None)


def test_ground_truth_dir_prefers_the_held_out_annotations(tmp_path):
    write_frame(tmp_path / "valid" / "JPEGImages" / "v" / "00000.png", _frame())
    assert viewer.ground_truth_dir(tmp_path, "valid") == tmp_path / "valid" / "Annotations"
    (tmp_path / "valid_gt" / "Annotations").mkdir(parents=True)
    assert viewer.ground_truth_dir(tmp_path, "valid") == tmp_path / "valid_gt" / "Annotations"


# ------------------------------------------------------------------------------------------- widget
def test_widget_tree_has_every_control(results):
    import ipywidgets as widgets

    view = viewer.ResultViewer(results, kernel_size=3, zoom=2)
    found = {type(w) for w in _descendants(view.widget)}
    assert {widgets.Play, widgets.IntSlider, widgets.FloatSlider, widgets.Checkbox, widgets.Dropdown,
            widgets.Image} <= found
    assert view.play_link.source == (view.play, "value") and view.play_link.target == (view.frame, "value")
    assert (view.frame.max, view.play.max) == (N_FRAMES - 1, N_FRAMES - 1)
    assert list(view.object_boxes) == [1, 2] and view.fill_target.value == (1,)  # the last run by default
    assert view.kernel.value == 3 and view.shape.value == "square"


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def test_moving_the_frame_slider_redraws_that_frame(results):
    view = viewer.ResultViewer(results, alpha=0.5, zoom=2)
    first = view.image.value
    np.testing.assert_array_equal(_decode(first), viewer.compose(_frame(0), [_labels(0), _labels(0)],
                                                                  alpha=0.5, zoom=2))
    view.frame.value = 3
    assert view.image.value != first
    np.testing.assert_array_equal(_decode(view.image.value),
                                  viewer.compose(_frame(3), [_labels(3), _labels(0)], alpha=0.5, zoom=2))
    assert "00003 (4/5)" in view.caption.value
    view.frame.value = N_FRAMES - 1
    assert "still (no mask for this frame)" in view.caption.value
    np.testing.assert_array_equal(_decode(view.image.value)[:, 2 * (W + viewer.PANEL_GAP):], _frame(4).repeat(
        2, 0).repeat(2, 1))


def test_controls_redraw_with_their_values(results):
    view = viewer.ResultViewer(results, zoom=1)
    view.kernel.value = 3  # gap filling of the last run: equals fill_gaps_labels of its masks
    expected = viewer.compose(_frame(0), [_labels(0), fill_gaps_labels(_labels(0), 3)])
    np.testing.assert_array_equal(_decode(view.image.value), expected)
    assert "still + gap filling (square 3x3)" in view.caption.value
    view.fill_target.label = "every run"
    assert view.fill_target.value == (0, 1)
    np.testing.assert_array_equal(_decode(view.image.value), viewer.compose(_frame(0), [fill_gaps_labels(
        _labels(0), 3)] * 2))
    view.object_boxes[1].value = False
    shown = _decode(view.image.value)
    assert not (shown[:, :W][_labels(0) == 1] != GREY).any()  # object 1 is gone
    view.opacity.value = 0.0
    view.object_boxes[2].value = False
    np.testing.assert_array_equal(shown := _decode(view.image.value), viewer.compose(_frame(0), [None, None]))
    assert shown.shape == (H, 2 * W + viewer.PANEL_GAP, 3)


def test_viewer_of_frames_alone_and_of_every_run(dataset, results):
    bare = viewer.show(dataset / "data", "v", split=None, zoom=1)  # no runs: the frames alone
    assert bare.fill_target.options == () and list(bare.object_boxes) == []
    np.testing.assert_array_equal(_decode(bare.image.value), _frame(0))
    both = viewer.ResultViewer(results, fill=None, kernel_size=3, zoom=1)
    assert both.fill_target.value == (0, 1) and both.fill_target.label == "every run"
    np.testing.assert_array_equal(_decode(both.image.value), viewer.compose(_frame(0), [fill_gaps_labels(
        _labels(0), 3)] * 2))


def test_zoom_defaults_to_the_target_width(results):
    view = viewer.ResultViewer(results)
    assert view.zoom == viewer.TARGET_WIDTH // (2 * W + viewer.PANEL_GAP)
    assert _decode(view.image.value).shape[1] == view.zoom * (2 * W + viewer.PANEL_GAP)


def test_real_clip_with_sparse_masks_and_an_object_that_appears_late():
    samples = paths.shared_samples_dir()
    if samples is None or not (samples / "xmempp_caps").is_dir():
        pytest.skip("real sample clips absent (../shared/data/samples)")
    clip = samples / "xmempp_caps"  # 480x853 portrait; masks on 5 frames, object 2 from frame 33 on
    results = viewer.VideoResults(clip, "caps", split=None, runs={"truth": clip / "Annotations"})
    annotated = [results.frame_names[t] for t in range(len(results)) if results.labels("truth", t) is not None]
    assert annotated == ["00000", "00014", "00033", "00043", "00066"] and results.object_ids == (1, 2)
    view = viewer.ResultViewer(results, zoom=1)
    view.frame.value = 33
    frame, labels = read_frame(clip / "JPEGImages" / "caps" / "00033.jpg"), read_mask(
        clip / "Annotations" / "caps" / "00033.png")
    shown = _decode(view.image.value)
    assert shown.shape == (853, 480, 3) and (labels == 2).sum() > 100
    assert (shown[labels == 2] != frame[labels == 2]).any(axis=-1).mean() > 0.9  # object 2 is coloured
    assert (shown == PALETTE[2]).all(axis=-1).sum() > 50                         # and outlined
    view.object_boxes[2].value = False
    np.testing.assert_array_equal(_decode(view.image.value)[labels == 2], frame[labels == 2])
    view.frame.value = 1
    assert "truth (no mask for this frame)" in view.caption.value
    np.testing.assert_array_equal(_decode(view.image.value), read_frame(clip / "JPEGImages" / "caps" / "00001.jpg"))


# ------------------------------------------------------------------------------------ contact sheet
def test_contact_sheet_rows_are_the_viewer_images(results, tmp_path):
    fig = viewer.contact_sheet(results, n_frames=3, alpha=0.5, kernel_size=3)
    axes = fig.get_axes()
    assert len(axes) == 3 and [ax.get_ylabel() for ax in axes] == ["00000", "00002", "00004"]
    assert axes[0].get_title() == "truth | still + gap filling (square 3x3)"
    for ax, t in zip(axes, (0, 2, 4)):
        np.testing.assert_array_equal(ax.images[0].get_array(), viewer.compose(
            _frame(t), results.panels(t), alpha=0.5, kernel_size=3, fill=[1]))
    saved = figures.save_figure(fig, tmp_path / "sheet")
    plt.close(fig)
    assert [p.suffix for p in saved] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in saved)


# --------------------------------------------------------------------------------------- notebook
@pytest.mark.notebook
def test_viewer_notebook_runs_on_the_demo_data_and_saves_the_contact_sheet(tmp_path, monkeypatch):
    import papermill

    notebook = paths.notebooks_dir() / "08_viewer.ipynb"
    declared = papermill.inspect_notebook(str(notebook))  # papermill skips lines it cannot parse: list them all
    assert list(declared) == ["run", "results_run", "data_root", "split", "video", "pred_a", "label_a", "pred_b",
                              "label_b", "opacity", "kernel_size", "kernel_shape", "fill_panel", "sheet_frames", "seed"]
    # the paper's gap-filling kernel at first; the latest run's results unless told otherwise
    assert declared["kernel_size"]["default"] == "2" and declared["results_run"]["default"] == '""'

    assert all(p["inferred_type_name"] != "None" and p["help"] for p in declared.values()), declared
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))  # the kernel inherits it: everything goes to tmp_path
    executed = tmp_path / "08_viewer.ipynb"
    papermill.execute_notebook(str(notebook), str(executed), parameters={"run": "t", "sheet_frames": 3},
                               cwd=str(tmp_path), progress_bar=False)
    out = tmp_path / "outputs" / "t" / "08_viewer"
    sheet = np.asarray(Image.open(out / "contact_sheet_syn_valid_0000.png").convert("RGB"))
    assert (out / "contact_sheet_syn_valid_0000.pdf").is_file()
    # the ground truth's object colours are in the sheet: its outlines are drawn at full strength
    for obj in (1, 2):
        assert (sheet == PALETTE[obj]).all(axis=-1).sum() > 50, obj
    assert (tmp_path / "data" / viewer.DEMO_DATASET / "meta.json").is_file()
    assert sorted(p.name for p in (out / "zero_motion").iterdir()) == ["syn_valid_0000"]


# ------------------------------------------------------------------------------------- a run's results
FUSED_VARIANT = "fvos3-identity-hard-fill_before"


def _fake_run(run: str, *, age: float, videos, chapters=("05", "06"), metrics: bool = True, kernel: int = 3) -> None:
    """``outputs/<run>/`` as chapters 05 and 06 leave it (their metrics.json and prediction folders, the
    demo set's ground truth standing in for predictions), its folders ``age`` seconds old."""
    truth = viewer.ground_truth_dir(viewer.demo_data(), "valid")
    run_dir = paths.outputs_dir() / run
    parameters = {"data_root": f"data/{viewer.DEMO_DATASET}", "seed": 0}
    written = {  # chapter: (its folder, what its metrics.json says, its prediction folders: their videos)
        "05": (viewer.MORPHOLOGY_CHAPTER, {"best_paper": {"method": "paper", "shape": "square", "kernel": kernel}},
               {"single": videos, f"filled/paper-square-k{kernel}": videos, "filled/paper-square-k2": videos}),
        "06": (viewer.FUSION_CHAPTER, {"best_fused": {"variant": FUSED_VARIANT, "J&F": 0.5}},
               {"passes/scale1-identity": videos, f"fused/{FUSED_VARIANT}": videos[-1:]})}
    for chapter_dir, results, folders in (written[c] for c in chapters):
        if metrics:
            write_json(run_dir / chapter_dir / "metrics.json", {"parameters": parameters, **results})
        for folder, names in folders.items():
            for video in names:
                shutil.copytree(truth / video, run_dir / chapter_dir / folder / video)
            mtime = os.path.getmtime(run_dir / chapter_dir / folder) - age
            os.utime(run_dir / chapter_dir / folder, (mtime, mtime))


def test_the_viewer_shows_the_latest_runs_own_predictions(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    assert viewer.latest_run() is None and viewer.run_predictions() is None, "no run: the demo set"
    videos = ["syn_valid_0000", "syn_valid_0001"]
    _fake_run("older", age=3600, videos=videos, chapters=("05",), kernel=0)  # no filling scored best
    _fake_run("newer", age=60, videos=videos)
    _fake_run("unfinished", age=0, videos=videos, metrics=False)  # folders without metrics.json: not finished
    assert viewer.latest_run() == "newer"
    shown = viewer.run_predictions()
    run_dir = tmp_path / "outputs" / "newer"
    assert shown.run == "newer" and shown.data_root == tmp_path / "data" / viewer.DEMO_DATASET
    assert shown.folders == {"single scale": run_dir / "06_multiscale_fusion/passes/scale1-identity",
                             f"fused {FUSED_VARIANT}": run_dir / f"06_multiscale_fusion/fused/{FUSED_VARIANT}",
                             "filled paper-square-k3": run_dir / "05_morphology_ablation/filled/paper-square-k3"}
    assert shown.videos == videos[-1:], "the videos every folder holds"
    older = viewer.run_predictions("older")  # chapter 05 only: its single run stands for the single scale
    assert list(older.folders) == ["single scale", "filled paper-square-k2"] and older.videos == videos
    assert older.folders["single scale"] == tmp_path / "outputs/older/05_morphology_ablation/single"
    with pytest.raises(DataError, match=r"outputs/unfinished: no predictions of a finished chapter"):
        viewer.run_predictions("unfinished")


@pytest.mark.notebook
def test_viewer_notebook_opens_the_latest_run_against_its_ground_truth(tmp_path, monkeypatch):
    import nbformat
    import papermill

    notebook = paths.notebooks_dir() / "08_viewer.ipynb"
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))  # the kernel inherits it: everything goes to tmp_path
    _fake_run("demo", age=0, videos=["syn_valid_0001"])
    executed = tmp_path / "08_viewer.ipynb"
    papermill.execute_notebook(str(notebook), str(executed),
                               parameters={"sheet_frames": 2}, cwd=str(tmp_path), progress_bar=False)
    printed = "".join(o.get("text", "") for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"
                      for o in c.outputs)
    run_dir = tmp_path / "outputs" / "demo"
    assert f"run 'demo', predicted on {tmp_path / 'data' / viewer.DEMO_DATASET}" in printed
    for panel, (name, folder) in enumerate([
            ("ground truth", tmp_path / "data" / viewer.DEMO_DATASET / "valid_gt" / "Annotations"),
            ("single scale", run_dir / "06_multiscale_fusion/passes/scale1-identity"),
            (f"fused {FUSED_VARIANT}", run_dir / f"06_multiscale_fusion/fused/{FUSED_VARIANT}"),
            ("filled paper-square-k3", run_dir / "05_morphology_ablation/filled/paper-square-k3")], start=1):
        assert f"{panel}. {name}: {folder}\n" in printed
    sheet = tmp_path / "outputs" / "viewer-demo" / "08_viewer" / "contact_sheet_syn_valid_0001.png"
    assert sheet.is_file() and not (tmp_path / "outputs" / "viewer-demo" / "08_viewer" / "zero_motion").exists()

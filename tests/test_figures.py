"""Figure style and the overlay drawing used by notebooks and the viewer."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.transforms import Bbox

from fvos_utils.base.io import davis_palette
from fvos_utils.run import figures


def test_overlay_blends_object_pixels_and_outlines_them():
    frame = np.full((8, 8, 3), 100, np.uint8)
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 2
    out = figures.overlay(frame, labels, alpha=0.25)
    green = davis_palette()[2].astype(float)
    assert out[4, 4].tolist() == np.rint(0.75 * 100 + 0.25 * green).astype(int).tolist()  # interior
    assert out[2, 2].tolist() == green.tolist() and out[5, 3].tolist() == green.tolist()  # outline
    assert (out[labels == 0] == 100).all()                                                # background
    assert (frame == 100).all()                                                           # input kept


def test_overlay_object_selection_alpha_zero_and_image_edges():
    frame = np.zeros((4, 6, 3), np.uint8)
    labels = np.array([[1, 1, 0, 0, 3, 3]] * 4, np.uint8)
    only3 = figures.overlay(frame, labels, objects=[3], alpha=0.0, contour=False)
    assert (only3 == 0).all()
    outlined = figures.overlay(frame, labels, objects=[1], alpha=0.0)
    # the object's edge at the image border is not an outline; its inner edge (column 1) is
    assert (outlined[:, 0] == 0).all() and (outlined[:, 1] == davis_palette()[1]).all()


def test_overlay_checks_shapes_and_alpha():
    with pytest.raises(ValueError, match="must match"):
        figures.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        figures.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), alpha=2)


def test_saved_figures_are_png_and_pdf_with_reproducible_bytes(tmp_path):
    figures.use_style()
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    first = figures.save_figure(fig, tmp_path / "a" / "curve.png")
    a = [p.read_bytes() for p in first]
    second = figures.save_figure(fig, tmp_path / "a" / "curve")
    plt.close(fig)
    assert [p.suffix for p in first] == [".png", ".pdf"]
    assert a == [p.read_bytes() for p in second]
    assert b"/FontFile2" in a[1] and b"/Type3" not in a[1]  # TrueType (fonttype 42) embedded, not Type 3
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["curve.pdf", "curve.png"]


def test_point_labels_never_overlap_and_crowded_ones_are_reported():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 10], [0, 10], linestyle="none")
    try:
        fig.tight_layout()
        spread = [(x, x % 3, f"p{x}") for x in range(10)] + [(4, 1, "twin")]  # (4, 1) twice: one label
        crowd = [(5 + 0.01 * i, 5, f"crowd{i}") for i in range(40)]
        left_out = figures.label_points(ax, spread + [(4, 1, "p4")] + crowd)
        fig.canvas.draw()
        shown = [t.get_text() for t in ax.texts]
        boxes = [t.get_window_extent() for t in ax.texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert all(t.get_window_extent().x0 >= ax.get_window_extent().x0 for t in ax.texts)  # inside the axes
        assert "p4, twin" in shown and left_out and all(name.startswith("crowd") for name in left_out)
        assert sorted(shown + left_out) == sorted(["p4, twin"] + [f"p{x}" for x in range(10) if x != 4]
                                                  + [f"crowd{i}" for i in range(40)])
    finally:
        plt.close(fig)


def test_the_tracking_figure_scores_each_shown_frame_and_keys_the_colours():
    import matplotlib.pyplot as plt

    rgb = [np.zeros((10, 10, 3), np.uint8)] * 2
    truth = [np.zeros((10, 10), np.uint8) for _ in range(2)]
    truth[0][:5, :5], truth[1][:5, :5], truth[1][5:, 5:] = 1, 1, 2
    predicted = [t.copy() for t in truth]
    predicted[1][5:, 5:] = 0  # object 2 lost in the second frame
    fig = figures.tracking_figure(rgb, predicted, truth, [0, 9])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["frame 0, J 100.00", "frame 9, J 50.00"]  # in percent
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["ground truth", "prediction"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["object 1"]
    plt.close(fig)
    union = [(t > 0).astype(np.uint8) for t in truth]  # DAVIS 2016: all objects as one mask
    fig = figures.tracking_figure(rgb, predicted, union, [0, 9], union=True)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["frame 0, J 100.00", "frame 9, J 50.00"]  # in percent
    assert "all objects as one mask" in fig.legends[0].get_title().get_text()
    plt.close(fig)
    fig = figures.tracking_figure(rgb, predicted, None, [0, 9])  # no truth: the prediction alone
    assert [ax.get_title() for ax in fig.axes] == ["frame 0", "frame 9"]
    plt.close(fig)


def test_the_boundary_figure_marks_the_ground_truth_boundary_the_prediction_misses():
    from scipy.ndimage import distance_transform_edt

    from fvos_utils.metrics import evaluate

    gt = np.zeros((60, 80), bool)
    gt[10:50, 10:70] = True
    pred = np.zeros_like(gt)
    pred[10:50, 10:35] = True  # the right part of the object is lost: its boundary there is missed
    radius = 2
    fig = figures.boundary_figure(gt, pred, radius=radius, crop=False)
    band = fig.axes[1].get_images()[0].get_array()
    missed = np.all(band == (240, 150, 0), axis=-1)
    # independently: ground-truth boundary pixels farther than the radius from every predicted boundary pixel
    b_gt, b_pred = evaluate.boundary_map(gt), evaluate.boundary_map(pred)
    far = distance_transform_edt(~b_pred) > radius
    assert missed.sum() > 50 and np.array_equal(missed, b_gt & far)
    assert fig.axes[0].get_title().startswith(f"J = |G∩P| / |G∪P| = {100 * evaluate.jaccard(gt, pred):.1f}%")
    assert "orange if missed" in fig.axes[1].get_title()
    plt.close(fig)


def test_the_print_check_reads_text_sizes_and_page_width_from_the_pdf(tmp_path):
    """Figures of known size and text: one that prints at its own width, one scaled down to the page."""
    import figure_print  # tests/

    figures.use_style()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("nine points", fontsize=9)
    ax.set_xlabel("twelve points", fontsize=12)
    figures.save_figure(fig, tmp_path / "column")
    plt.close(fig)
    width, sizes = figure_print.text_sizes(tmp_path / "column.pdf")
    assert 3.0 < width / 72 <= 4.0 and min(sizes) == 9 and 12 in sizes  # tight: a little under 4 in
    assert figure_print.smallest_printed(tmp_path / "column.pdf") == (width / 72, 9)
    fig = plt.figure(figsize=(14, 2))  # twice the page's width: printed at half size
    fig.text(0.0, 0.5, "a" * 10, fontsize=12)
    fig.text(0.9, 0.5, "b", fontsize=16)
    figures.save_figure(fig, tmp_path / "wide")
    plt.close(fig)
    width, smallest = figure_print.smallest_printed(tmp_path / "wide.pdf")
    natural = figure_print.text_sizes(tmp_path / "wide.pdf")[0] / 72
    assert width == pytest.approx(figures.PRINT_WIDTH) and smallest == pytest.approx(12 * figures.PRINT_WIDTH / natural)
    assert figure_print.too_small([tmp_path / "column.pdf"]) == []
    assert figure_print.too_small([tmp_path / "wide.pdf"]) == [
        f"wide.pdf: smallest text {smallest:.1f} pt when printed 7.00 in wide (drawn {natural:.2f} in wide), below 9 pt"]


def test_point_labels_keep_clear_of_error_bars():
    """Each point's first choice (up and right) crosses a tall bar just right of it: the label goes elsewhere."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    try:
        fig.tight_layout()
        points = [(2, 5, "left"), (6, 5, "middle")]
        bars = [(2.4, 1, 2.4, 9), (6.4, 1, 6.4, 9)]
        for x0, y0, _, y1 in bars:
            ax.plot([x0, x0], [y0, y1], color="k")
        free = figures.label_points(ax, points)  # without the bars: the first choice, across them
        fig.canvas.draw()
        bar_boxes = [Bbox(ax.transData.transform([(x0, y0), (x1, y1)])) for x0, y0, x1, y1 in bars]
        assert free == [] and any(t.get_window_extent().overlaps(b) for t in ax.texts for b in bar_boxes)
        for text in list(ax.texts):
            text.remove()
        assert figures.label_points(ax, points, avoid=bars) == []
        fig.canvas.draw()
        assert len(ax.texts) == 2
        assert not any(t.get_window_extent().overlaps(b) for t in ax.texts for b in bar_boxes)
    finally:
        plt.close(fig)

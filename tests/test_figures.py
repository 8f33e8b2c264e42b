"""Figure style and the overlay drawing used by notebooks and the viewer."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from fvos_utils import figures
from fvos_utils.io import davis_palette


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

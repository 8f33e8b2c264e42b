"""Chapter 05's study (fvos_utils.studies.morphology_ablation): tables, contact gaps, crops, the real clip, and the
notebook end to end, checked against literal per-pixel references and hand-computed numbers."""
import itertools

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fvos_utils.base import paths
from fvos_utils.base.io import VOID_LABEL, DataError, davis_palette, read_json, read_mask, write_frame, write_mask
from fvos_utils.data.testing import checked_outputs, execute_chapter
from fvos_utils.data.testing import evaluator_result as result
from fvos_utils.method import choices, postprocess
from fvos_utils.metrics import scoring
from fvos_utils.studies import morphology_ablation


def literal_contact(gt) -> np.ndarray:
    """Object pixels (not 0 or 255) with a 4-neighbour holding another object."""
    h, w = gt.shape
    out = np.zeros(gt.shape, bool)
    for y, x in np.ndindex(gt.shape):
        if gt[y, x] in (0, 255):
            continue
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            v, u = y + dy, x + dx
            if 0 <= v < h and 0 <= u < w and gt[v, u] not in (0, 255, gt[y, x]):
                out[y, x] = True
    return out



def test_bridged_gap_table_follows_the_kernel_geometry():
    """A gap pixel x (1..w) is filled iff both dilations cover it. With ``cv2.dilate``'s rule
    dst(x) = max over kernel cells v of src(x + v - a), anchor a = k // 2, the left object grows right by
    a - min(v) and the right one grows left by max(v) - a (v over the kernel's nonzero columns)."""
    widths = (1, 2, 3, 4)
    table = morphology_ablation.bridged_gap_table((0, 1, 2, 3, 4, 5, 7, 9), widths=widths)
    for (shape, k), row in table.iterrows():
        if k <= 1:
            assert (row == 0).all()
            continue
        kernel = np.ones((k, k)) if shape == "square" else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        cols = np.flatnonzero(kernel.any(axis=0))
        right, left = k // 2 - cols.min(), cols.max() - k // 2
        for w in widths:
            want = np.mean([x <= right and w + 1 - x <= left for x in range(1, w + 1)])
            assert row[f"gap {w} px"] == pytest.approx(want), (shape, k, w)
    assert (table.loc[("square", 2)] == 0).all()  # the paper's size bridges no straight gap
    assert table.loc[("square", 3), "gap 1 px"] == 1 and table.loc[("square", 4), "gap 2 px"] == 0.5


def test_gap_filling_table_rows():
    base, k3 = postprocess.GapFilling(), postprocess.GapFilling("paper", "square", 3)
    results = {base: result({("a", 1): (0.5, 0.6), ("a", 2): (0.8, 0.9)}),
               k3: result({("a", 1): (0.6, 0.7), ("a", 2): (0.8, 0.9)})}
    results[k3]["per_tag"] = {"touching": {"J&F": 0.42}}
    table = morphology_ablation.gap_filling_table(results)
    row = table.loc[("paper", "square", 3)]
    assert row["dJ&F"] == pytest.approx(0.05) and row["J&F touching"] == 0.42
    assert (row["objects better"], row["objects worse"]) == (1, 0) and row["mean dJ"] == pytest.approx(0.05)
    assert table.loc[("paper", "square", 0), "dJ&F"] == 0 and pd.isna(table.loc[("paper", "square", 0), "J&F touching"])
    # one video: every resample is that video, so the interval is the change itself
    assert (row["CI low"], row["CI high"]) == (pytest.approx(0.05), pytest.approx(0.05))
    assert table.loc[("paper", "square", 0), ["CI low", "CI high"]].tolist() == [0, 0]
    with pytest.raises(ValueError, match="baseline"):
        morphology_ablation.gap_filling_table({k3: results[k3]})


def test_gap_filling_table_intervals_are_the_paired_video_bootstrap():
    from fvos_utils.metrics import evaluate

    base, k2 = postprocess.GapFilling(), postprocess.GapFilling("paper", "square", 2)
    rng = np.random.default_rng(0)
    before = {(f"v{i}", k): tuple(rng.random(2)) for i in range(8) for k in (1, 2)}
    after = {key: (j + rng.normal(0.02, 0.05), f) for key, (j, f) in before.items()}
    results = {base: result(before), k2: result(after)}
    row = morphology_ablation.gap_filling_table(results, tag=None).loc[("paper", "square", 2)]
    want = evaluate.paired_difference(results[base], results[k2])
    assert (row["dJ&F"], row["CI low"], row["CI high"]) == pytest.approx((want.delta, want.ci_low, want.ci_high))
    assert want.ci_low < want.delta < want.ci_high


def test_contact_pixels_match_the_literal_definition():
    rng = np.random.default_rng(3)
    for _ in range(5):
        gt = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), size=(13, 17), p=[0.3, 0.25, 0.2, 0.15, 0.1])
        assert np.array_equal(morphology_ablation.contact_pixels(gt), literal_contact(gt))


def test_contact_gaps_counts_the_true_contact_line(tmp_path):
    gt = np.zeros((6, 8), np.uint8)
    gt[:, :4], gt[:, 4:7] = 1, 2  # contact: columns 3 and 4, 12 pixels
    pred = gt.copy()
    pred[:, 3] = 0  # a 1-px gap on object 1's side
    pred[:2, 4] = 1  # object 1 spills onto object 2 for two rows
    write_mask(tmp_path / "gt" / "v" / "00000.png", gt)
    write_mask(tmp_path / "pred" / "v" / "00000.png", pred)
    assert morphology_ablation.contact_gaps(tmp_path / "gt", tmp_path / "pred") == {
        "contact": 12, "background": 6 / 12, "correct": 4 / 12}
    write_mask(tmp_path / "pred" / "v" / "00000.png", pred[:, :5])
    with pytest.raises(DataError, match="size"):
        morphology_ablation.contact_gaps(tmp_path / "gt", tmp_path / "pred")


# ---------------------------------------------------------------------------------- figure helpers
def test_most_changed_frame_and_zoomed_crops(tmp_path):
    maps = {"00000": np.zeros((8, 10), np.uint8), "00001": np.ones((8, 10), np.uint8)}
    changed = {"00000": maps["00000"].copy(), "00001": maps["00001"].copy()}
    changed["00000"][:2, :3] = 2  # 6 pixels
    changed["00001"][5:, 5:] = 2  # 15 pixels
    for frame in maps:
        write_mask(tmp_path / "a" / "v" / f"{frame}.png", maps[frame])
        write_mask(tmp_path / "b" / "v" / f"{frame}.png", changed[frame])
    assert morphology_ablation.most_changed_frame(tmp_path / "a", tmp_path / "b") == ("v", "00001", 15)
    assert morphology_ablation.frame_changes(tmp_path / "a", tmp_path / "b") == {("v", "00000"): (6, 80), ("v", "00001"): (15, 80)}
    assert morphology_ablation.changed_share(tmp_path / "a", tmp_path / "b") == 21 / 160
    assert morphology_ablation.most_changed_frame(tmp_path / "a", tmp_path / "a") == ("v", "00000", 0)  # ties: the first
    write_mask(tmp_path / "c" / "v" / "00000.png", maps["00000"][:4])
    with pytest.raises(DataError, match="size"):
        morphology_ablation.frame_changes(tmp_path / "a", tmp_path / "c")
    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    cells = morphology_ablation.zoomed_crops(rgb, [maps["00001"], changed["00001"]], [(slice(4, 8), slice(3, 9))], zoom=3)
    assert len(cells) == 1 and len(cells[0]) == 2 and cells[0][0].shape == (12, 18, 3)
    from fvos_utils.run.figures import overlay
    drawn = overlay(rgb, changed["00001"], alpha=0.55)[4:8, 3:9]
    assert np.array_equal(cells[0][1][::3, ::3], drawn) and np.array_equal(cells[0][1][2::3, 2::3], drawn)


def test_union_folder_makes_one_object(tmp_path):
    labels = np.array([[0, 1, 2], [255, 0, 3]], np.uint8)
    write_mask(tmp_path / "src" / "v" / "00000.png", labels, allow_void=True)
    write_mask(tmp_path / "src" / "v" / "00001.png", labels[::-1], allow_void=True)
    out = morphology_ablation.union_folder(tmp_path / "src", tmp_path / "out", video="v", frames=["00001"])
    assert sorted(p.name for p in (out / "v").iterdir()) == ["00001.png"]
    assert np.array_equal(read_mask(out / "v" / "00001.png"), (labels[::-1] != 0).astype(np.uint8))
    with pytest.raises(DataError, match="folder not found"):
        morphology_ablation.union_folder(tmp_path / "src", tmp_path / "out2", video="w")


def test_union_scores_score_each_variant_as_one_object(tmp_path):
    """Two objects splitting a 4x8 block score J = 1 against the block; object 1 alone (half) scores J = 0.5."""
    block = np.zeros((12, 16), np.uint8)
    block[4:8, 4:12] = 255  # DAVIS 2016 style: 0 / 255
    split = np.zeros_like(block)
    split[4:8, 4:8], split[4:8, 8:12] = 1, 2
    for t in range(4):  # the truth has a frame more than was predicted
        write_mask(tmp_path / "truth" / "v" / f"{t:05d}.png", block, allow_void=True)
    variants = {postprocess.GapFilling("paper", "square", k): tmp_path / f"k{k}" for k in (0, 2)}
    for t in range(3):
        write_mask(tmp_path / "k0" / "v" / f"{t:05d}.png", split)
        write_mask(tmp_path / "k2" / "v" / f"{t:05d}.png", np.where(split == 1, 1, 0).astype(np.uint8))
    scores = morphology_ablation.union_scores(variants, tmp_path / "truth", tmp_path / "work", video="v",
                                   frames=["00000", "00001", "00002"])  # frame 00001 is scored (DAVIS rule)
    assert list(scores) == list(variants)
    assert [scores[v]["global"]["J"] for v in variants] == pytest.approx([1.0, 0.5])
    assert sorted(p.name for p in (tmp_path / "work" / "union_gt" / "v").iterdir()) == ["00000.png", "00001.png", "00002.png"]


def test_meeting_crops_figure_crops_where_filling_changed_the_maps():
    before = np.zeros((60, 60), np.uint8)
    before[10:30, 10:29], before[10:30, 30:50] = 1, 2  # a 1-px gap at column 29
    after = postprocess.fill_gaps_labels(before, 3)
    rgb = np.full((60, 60, 3), 128, np.uint8)
    zoom = 6
    fig, corners = morphology_ablation.meeting_crops_figure(rgb, [before, after], ["k 0", "k 3"], title="t", truth=after,
                                                            n_crops=1, zoom=zoom)
    assert fig is not None and len(corners) == 1
    y, x = corners[0]
    assert y <= 10 + 19 and x <= 29 < x + 40  # the crop holds the filled gap
    assert [ax.get_title() for ax in fig.axes[:3]] == ["ground truth", "k 0", "k 3"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["object 1", "object 2", "pixel changed by the filling"]
    # the filled gap is marked in the k 3 column only: a dark dot in the middle of each changed pixel, which keeps
    # its new object's colour at full opacity around the dot
    cells = [ax.get_images()[0].get_array() for ax in fig.axes[:3]]
    dotted = [np.all(c == morphology_ablation.CHANGED_DOT, axis=-1) for c in cells]
    assert not dotted[0].any() and not dotted[1].any()
    changed = (after != before)[y:y + 40, x:x + 40]
    assert dotted[2].reshape(40, zoom, 40, zoom).any(axis=(1, 3)).tolist() == changed.tolist()
    assert dotted[2].sum() == changed.sum() * (zoom // 3) ** 2  # a ninth of the pixel: the colour stays readable
    palette = davis_palette()
    corner = cells[2][::zoom, ::zoom][changed]  # the top-left of each changed pixel: its new object's colour
    assert np.array_equal(corner, palette[after[y:y + 40, x:x + 40][changed]])
    plt.close(fig)
    assert morphology_ablation.meeting_crops_figure(rgb, [before, before], ["a", "b"], title="t") == (None, [])
    # a union annotation (DAVIS 2016: 255 where either object is): drawn in the void colour, keyed by its title
    union = np.where(after > 0, 255, 0).astype(np.uint8)
    fig, _ = morphology_ablation.meeting_crops_figure(rgb, [before, after], ["k 0", "k 3"], title="t", truth=union,
                                                      union=True, truth_label="union of both", n_crops=1, zoom=zoom)
    assert fig.axes[0].get_title() == "union of both"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["object 1", "object 2", "union of both",
                                                                   "pixel changed by the filling"]
    truth_cell = fig.axes[0].get_images()[0].get_array()[::zoom, ::zoom]
    assert np.array_equal(truth_cell[union[y:y + 40, x:x + 40] > 0][0], palette[VOID_LABEL])  # outline: full colour
    plt.close(fig)
    # the union lies elsewhere: nothing inside it was filled, so there is no panel
    elsewhere = np.zeros_like(union)
    elsewhere[50:, 50:] = 255
    assert morphology_ablation.meeting_crops_figure(rgb, [before, after], ["k 0", "k 3"], title="t", truth=elsewhere,
                                                    union=True) == (None, [])


def test_meeting_crops_panel_picks_the_frame_where_annotated_objects_meet(tmp_path):
    """Frame 00000 has the most changed pixels, but there the prediction split one annotated object in two
    (and lost the other); frame 00001 has a filled gap between two annotated objects: the panel shows 00001."""
    truth = np.zeros((48, 64), np.uint8)
    truth[8:40, 4:30], truth[8:24, 32:60] = 1, 2    # 2 px apart along 16 rows
    split = np.where(truth == 1, 1, 0).astype(np.uint8)
    split[8:40, 16:30] = 3
    split[8:40, 15] = 0                             # a false 1-px gap along 32 rows, 17 px from object 2
    frames = {"00000": split, "00001": truth}
    kernels = (0, 3, 5)
    folders = {postprocess.GapFilling("paper", "square", k): tmp_path / f"k{k}" for k in kernels}
    for frame, before in frames.items():
        write_frame(tmp_path / "images" / "v" / f"{frame}.jpg", np.full((48, 64, 3), 90, np.uint8))
        write_mask(tmp_path / "truth" / "v" / f"{frame}.png", truth)
        for k in kernels:
            write_mask(tmp_path / f"k{k}" / "v" / f"{frame}.png", postprocess.fill_gaps_labels(before, k))
    changes = morphology_ablation.frame_changes(tmp_path / "k0", tmp_path / "k5")
    assert changes["v", "00000"][0] > changes["v", "00001"][0] > 0
    panel = morphology_ablation.meeting_crops_panel(tmp_path / "images", folders, tmp_path / "truth", n_crops=2)
    assert (panel.video, panel.frame) == ("v", "00001")
    meeting = postprocess.meeting_pixels(truth, postprocess.fill_gaps_labels(truth, 5), truth=truth)
    assert panel.meeting_pixels == int(meeting.sum()) > 0
    assert panel.record() == {"video": "v", "frame": "00001", "meeting_pixels": panel.meeting_pixels,
                              "corners": [list(c) for c in panel.corners]}
    assert [ax.get_title() for ax in panel.figure.axes[:4]] == ["ground truth", "no filling", "k 3", "k 5"]
    crops = "the crop" if len(panel.corners) == 1 else f"the {len(panel.corners)} crops"
    assert panel.caption.startswith(f"v, frame 00001, the frame where the largest kernel (square k 5, paper rule) "
                                    f"changed the most pixels next to two ground-truth objects: {panel.meeting_pixels} "
                                    f"such pixels. Shown are {crops} holding the most of them, 40 px square")
    plt.close(panel.figure)
    # judged on a union annotation, frame 00000 (inside the union, where the two predicted objects meet) wins
    for frame in frames:
        write_mask(tmp_path / "union" / "v" / f"{frame}.png", np.where(truth > 0, 255, 0).astype(np.uint8), allow_void=True)
    panel = morphology_ablation.meeting_crops_panel(tmp_path / "images", folders, tmp_path / "union", union=True, n_crops=1)
    assert (panel.frame, len(panel.corners)) == ("00000", 1)
    assert "inside the annotated union of the objects, next to two predicted objects" in panel.caption
    assert "Shown are the crop holding" in panel.caption and panel.figure.axes[0].get_title() == "ground truth (union)"
    plt.close(panel.figure)
    # nothing filled where objects meet: no panel
    assert morphology_ablation.meeting_crops_panel(tmp_path / "images", {v: tmp_path / "k0" for v in folders},
                                                   tmp_path / "truth") is None


def test_kernel_pick_is_the_best_of_no_filling_and_the_paper_s_rule():
    scores = {("paper", "square", 0): 0.55, ("paper", "square", 2): 0.5, ("paper", "square", 3): 0.6,
              ("paper", "circle", 3): 0.6, ("background", "square", 3): 0.8}
    results = {postprocess.GapFilling(*key): result({("a", 1): (j, j)}) for key, j in scores.items()}
    pick = morphology_ablation.kernel_pick(results)  # other methods do not count; ties: the first
    assert (pick.method, pick.shape, pick.kernel, pick.j_and_f) == ("paper", "square", 3, pytest.approx(0.6))
    assert pick.filling.fills
    for no_filling in (0.6, 0.9):  # a tie with the best kernel, then a clear win: doing nothing is picked
        results[postprocess.GapFilling()] = result({("a", 1): (no_filling, no_filling)})
        pick = morphology_ablation.kernel_pick(results)
        assert (pick.kernel, pick.j_and_f) == (0, pytest.approx(no_filling)) and not pick.filling.fills
    with pytest.raises(ValueError, match="no filling"):
        morphology_ablation.kernel_pick({postprocess.GapFilling("paper", "square", 3): results[postprocess.GapFilling()]})
    table = morphology_ablation.union_table({v: r for v, r in results.items() if v.method == "paper"})
    assert table.loc[("square", 3), "dJ&F"] == pytest.approx(-0.3) and table.loc[("square", 0), "dJ&F"] == 0
    assert table.loc[("circle", 3), "J&F"] == pytest.approx(0.6)


def _kernel_inputs():
    """Chapter-05-shaped inputs where ``background`` scores exactly as ``paper`` (their series coincide) and
    every setting scores the same up to k = 1."""
    objects = [("a", 1), ("a", 2), ("b", 1)]
    results = {}
    for v in postprocess.gap_filling_variants((0, 1, 2, 3), methods=("paper", "background")):
        change = {0: 0.0, 1: 0.0, 2: -0.01, 3: 0.02 if v.shape == "square" else 0.03}[v.kernel]
        results[v] = result({o: (0.5 + change + 0.01 * i, 0.6 + change - 0.01 * i) for i, o in enumerate(objects)})
    baseline = postprocess.GapFilling("paper", "square", 0)
    table = morphology_ablation.gap_filling_table(results, baseline=baseline)
    table["contact as gap"] = [0.3 if v.kernel < 3 else 0.1 for v in results]
    return table, results, baseline


def test_kernel_figure_keeps_equal_series_visible_and_its_legend_off_the_data():
    table, results, baseline = _kernel_inputs()
    fig = morphology_ablation.kernel_figure(table, results, baseline, (0, 1, 2, 3))
    try:
        assert len(fig.axes) == 3 and all(ax.get_ylabel() for ax in fig.axes)
        for ax in fig.axes[:2]:
            series = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
            none = [line for line in series if line.get_label() == "no filling"]  # the baseline, once, across
            assert len(none) == 1 and set(none[0].get_ydata()) == ({0.0} if ax is fig.axes[0] else {30.0})
            series = [line for line in series if line not in none]
            assert len(series) == 4  # paper and background, square and circle
            equal = [(a, b) for a, b in itertools.combinations(series, 2)
                     if np.array_equal(a.get_ydata(), b.get_ydata())]
            assert equal  # background = paper: their lines would hide each other
            for a, b in equal:
                assert np.abs(np.asarray(a.get_xdata()) - np.asarray(b.get_xdata())).min() > 0.05
                assert a.get_marker() != b.get_marker()
        # the first panel: each setting's change from no filling in points, not its J&F
        paper = next(line for line in fig.axes[0].get_lines() if line.get_label() == "paper, square")
        rows = table.xs(("paper", "square"), level=("method", "shape"))
        assert np.allclose(paper.get_ydata(), 100 * (rows["J&F"] - table.loc[("paper", "square", 0), "J&F"]))
        fig.canvas.draw()
        (legend,) = fig.legends
        assert "equal values stay visible" in legend.get_title().get_text()
        assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)
        assert fig.get_size_inches()[0] <= 7.0  # a page's width: legible in a book and in a paper
    finally:
        plt.close(fig)


def test_kernel_figure_names_what_its_table_lacks():
    table, results, baseline = _kernel_inputs()
    with pytest.raises(ValueError, match="contact as gap"):
        morphology_ablation.kernel_figure(table.drop(columns="contact as gap"), results, baseline, (0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"indexed by \(method, shape, kernel\)"):
        morphology_ablation.kernel_figure(table.reset_index(), results, baseline, (0, 1, 2, 3))
    with pytest.raises(ValueError, match="baseline paper-square-k5"):
        morphology_ablation.kernel_figure(table, results, postprocess.GapFilling("paper", "square", 5), (0, 1, 2, 3))


RUN = "pytest-morphology"


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_05_records_what_the_evaluator_said():
    executed = execute_chapter("05_morphology_ablation", RUN, {"ckpt": "random", "n_videos": 1, "kernel_sizes": [0, 2, 3],
                                                               "methods": ["paper", "background"], "clip_frames": 4})
    chapter = paths.outputs_dir(RUN) / "05_morphology_ablation"
    metrics = read_json(chapter / "metrics.json")
    assert metrics["model"]["checkpoint"] == "random" and metrics["environment"]["packages"]["numpy"]
    assert metrics["parameters"]["kernel_sizes"] == [0, 2, 3] and metrics["parameters"]["run"] == RUN
    names = [postprocess.GapFilling().name] + [postprocess.GapFilling(m, s, k).name for m in ("paper", "background")
                                               for s in ("square", "circle") for k in (2, 3)]  # k 0 once
    assert sorted(metrics["variants"]) == sorted(names)
    for name in names:
        scores = read_json(chapter / "filled" / name / scoring.SCORES_FILE)["global"]
        assert metrics["variants"][name]["J&F"] == scores["J&F"]
    best = metrics["best_paper"]
    candidates = [postprocess.GapFilling()] + [postprocess.GapFilling("paper", s, k) for s in ("square", "circle")
                                               for k in (2, 3)]  # no filling is a candidate
    assert best["J&F"] == max(metrics["variants"][v.name]["J&F"] for v in candidates)
    assert best == read_json(choices.KernelPick.path(RUN))  # the record chapter 06 and the recipe read
    base = metrics["variants"][postprocess.GapFilling().name]["J&F"]
    assert checked_outputs(executed) == [f"J&F without filling {100 * base:.2f}; the pick: "
                                         f"{best['shape']} k {best['kernel']} ({100 * best['J&F']:.2f})\n"]
    recorded = {c["claim"]: c for c in read_json(chapter / "comparisons.json")}  # claims 4 and 5
    k2 = metrics["variants"][postprocess.GapFilling("paper", "square", 2).name]["J&F"]
    assert (recorded["fill"]["J&F"], recorded["fill"]["baseline_j_and_f"]) == (k2, base)
    # claim 5's baseline: the best candidate other than square 2, no filling included (the first on a tie)
    others = [v for v in candidates if v != postprocess.GapFilling("paper", "square", 2)]
    rival = max(others, key=lambda v: (metrics["variants"][v.name]["J&F"], -others.index(v)))
    words = "no filling" if rival.kernel == 0 else f"{rival.shape} kernel {rival.kernel}"
    assert (recorded["kernel2"]["baseline_j_and_f"], recorded["kernel2"]["baseline"]) == (
        metrics["variants"][rival.name]["J&F"], f"{words}, the best other candidate")
    assert read_json(choices.KernelPick.path(RUN))["rival"] == rival.name
    conclusions = [c for c in executed.cells if c.cell_type == "code"][-1]  # the exercises follow, in markdown
    assert conclusions.outputs[0]["data"]["text/markdown"].startswith("## What this run shows")
    bridged = {(row["shape"], row["kernel"]): row for row in metrics["bridged_gaps"]}
    assert [bridged[("square", 2)][f"gap {w} px"] for w in (1, 2, 3, 4)] == [0.0, 0.0, 0.0, 0.0]
    for figure in ("kernel2_anchor", "kernel_ablation"):
        assert (chapter / f"{figure}.png").stat().st_size > 10_000 and (chapter / f"{figure}.pdf").is_file()
    panels = {"meeting_crops": metrics["crops"]}
    if paths.shared_samples_dir() is not None and (paths.shared_samples_dir() / "davis_bmx-trees").is_dir():
        assert metrics["clip"]["frames"] == 4 and metrics["clip"]["objects"] == [1, 2]
        assert set(metrics["clip"]["union_scores"]) == {n for n in names if n.startswith("paper")}
        panels["clip_meeting_crops"] = metrics["clip"]["crops"]
    for figure, panel in panels.items():  # a panel, when drawn, is captioned with its own frame and count
        if panel is not None:
            caption = (chapter / f"{figure}.caption.txt").read_text()
            assert caption.startswith(f"{panel['video']}, frame {panel['frame']}, the frame where the largest kernel")
            assert f": {panel['meeting_pixels']} such pixels." in caption and (chapter / f"{figure}.pdf").is_file()



def _kernel_results(jf):
    """Evaluator results, one per setting of ``jf`` ({GapFilling: per-video J = F values}), over 8 videos."""
    return {v: result({(f"v{i}", 1): (j, j) for i, j in enumerate(values)}) for v, values in jf.items()}


_VIDEOS = np.array([0.5, 0.55, 0.6, 0.45, 0.52, 0.58, 0.61, 0.47])
_NOISE = np.array([0.01, -0.012, 0.009, -0.011, 0.013, -0.008, 0.01, -0.01])


def test_claim_5_compares_kernel_2_with_every_other_candidate_and_names_the_least_harmful():
    G = postprocess.GapFilling
    results = _kernel_results({G(): _VIDEOS, G("paper", "square", 2): _VIDEOS - 0.007,
                               G("paper", "square", 3): _VIDEOS - 0.012, G("paper", "square", 5): _VIDEOS - 0.03})
    assert morphology_ablation.kernel_rival(results) == G()  # no filling is a candidate, and the best other
    pick = morphology_ablation.kernel_pick(results)
    assert (pick.kernel, pick.gain, pick.rival) == (0, None, "paper-square-k0")
    words = morphology_ablation.least_harmful_words(results)
    assert words.startswith("No filling scores above every kernel here: kernel 2 is the least harmful filling, not "
                            "the best (against the best other kernel, square kernel 3: +0.50 (95% CI +0.50 to +0.50)")
    comparisons = morphology_ablation.kernel_comparisons(results, G(), pick)
    claim5 = next(c for c in comparisons if c.claim == "kernel2")
    assert claim5.baseline == "no filling, the best other candidate" and claim5.verdict() == "contradicted"
    assert claim5.note == words and claim5.chosen_here
    # another kernel less harmful than kernel 2: the words say kernel 2 is not even that
    worse = {**results, G("paper", "circle", 2): result({(f"v{i}", 1): (j, j) for i, j in enumerate(_VIDEOS - 0.006)})}
    assert morphology_ablation.least_harmful_words(worse).startswith(
        "No filling scores above every kernel here, and square kernel 2 is not the least harmful filling either: "
        "circle kernel 2 scores")
    # a kernel beating no filling: the rival is the best other kernel, and no "least harmful" words
    results[G("paper", "square", 3)] = result({(f"v{i}", 1): (j, j) for i, j in enumerate(_VIDEOS + 0.01)})
    assert morphology_ablation.kernel_rival(results) == G("paper", "square", 3)
    assert morphology_ablation.least_harmful_words(results) == ""
    pick = morphology_ablation.kernel_pick(results)
    assert pick.kernel == 3 and pick.gain == pytest.approx(0.01) and pick.gain_low == pytest.approx(0.01)


@pytest.mark.parametrize("background, words", [
    (_NOISE, "The loss comes from moving boundaries between objects, not from filling gaps: the background rule"),
    (-0.004 + 0 * _NOISE, "Filling gaps costs J&F too: the background rule, which fills only background")])
def test_the_words_say_whether_kernel_2_loses_by_filling_gaps_or_by_moving_boundaries(background, words):
    G = postprocess.GapFilling
    results = _kernel_results({G(): _VIDEOS, G("paper", "square", 2): _VIDEOS - 0.007,
                               G("background", "square", 2): _VIDEOS + background})
    text = morphology_ablation.loss_source_words(results, G())
    assert text.startswith(words) and "against -0.70 (95% CI -0.70 to -0.70) for the paper's rule." in text
    gaining = {**results, G("paper", "square", 2): results[G()]}  # no loss to explain
    assert morphology_ablation.loss_source_words(gaining, G()) == ""


def test_the_anchor_figure_shows_k2_dilations_missing_each_other():
    """Under OpenCV's default anchor a 2 x 2 kernel grows both masks right and down: only object 1's dilation
    reaches the gap column and nothing overlaps; a 3 x 3 kernel's dilations overlap on the gap and fill it."""
    fig = morphology_ablation.anchor_figure((2, 3))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "masks, 1-px gap"
    assert titles[1].endswith("gap column filled: False") and titles[2].endswith("gap column filled: True")
    colours = morphology_ablation.ANCHOR_COLOURS
    pictures = [ax.get_images()[0].get_array() for ax in fig.axes]
    overlap = [np.all(p == colours[5], axis=-1) for p in pictures]
    assert not overlap[0].any() and not overlap[1].any()
    assert overlap[2][:, 5].all() and overlap[2].sum() == 5  # the gap column only: the masks are drawn over
    assert np.all(pictures[1][:, 5] == colours[3]) and np.all(pictures[1][:, 10] == colours[4])  # grown right
    assert np.all(pictures[1][:, 0] == colours[0])  # ... and not left
    plt.close(fig)


def test_meeting_frame_refuses_a_ground_truth_of_another_size(tmp_path):
    labels = np.zeros((8, 10), np.uint8)
    labels[:, :4], labels[:, 5:] = 1, 2
    write_mask(tmp_path / "a" / "v" / "00000.png", labels)
    write_mask(tmp_path / "b" / "v" / "00000.png", postprocess.fill_gaps_labels(labels, 3))
    write_mask(tmp_path / "truth" / "v" / "00000.png", labels[:6])
    with pytest.raises(DataError, match=r"truth/v/00000.png.*size 10x6 differs"):
        morphology_ablation.meeting_frame(tmp_path / "a", tmp_path / "b", truth_dir=tmp_path / "truth")
    write_mask(tmp_path / "truth" / "v" / "00000.png", labels)
    assert morphology_ablation.meeting_frame(tmp_path / "a", tmp_path / "b", truth_dir=tmp_path / "truth")[:2] == ("v", "00000")

"""Chapter 06's study (fvos_utils.studies.fusion_ablation): which passes each variant fuses, fills and scores,
checked against literal per-pixel voting; its tables; the notebook end to end (synthetic and MOSE layouts)."""
import itertools
import json
import zipfile
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fvos_utils.base import paths
from fvos_utils.base.io import read_json, read_mask, remove_dir, write_mask
from fvos_utils.data.testing import checked_outputs, execute_chapter, scene_probs, write_mose_layout
from fvos_utils.data.testing import evaluator_result as result
from fvos_utils.method import fusion, infer, postprocess, recipe
from fvos_utils.method.postprocess import GapFilling
from fvos_utils.method.probs import load_probs, save_probs
from fvos_utils.metrics import evaluate, scoring
from fvos_utils.studies import fusion_ablation


# ------------------------------------------------------------------------------ literal references
def literal_vote(maps) -> np.ndarray:
    """Per pixel: the most frequent label; a tie goes to the first map's label if tied, else the highest."""
    out = np.zeros(maps[0].shape, np.int64)
    for y, x in np.ndindex(out.shape):
        votes = Counter(int(m[y, x]) for m in maps)
        tied = [label for label, n in votes.items() if n == max(votes.values())]
        out[y, x] = int(maps[0][y, x]) if int(maps[0][y, x]) in tied else max(tied)
    return out


def literal_soft_vote(stored, ids) -> np.ndarray:
    """Per pixel, from ``(S, N, H, W)`` stored uint8: the object with the largest summed value (the
    highest id among equals) where the mean exceeds 127.5, else 0."""
    sums = stored.astype(np.int64).sum(axis=0)
    out = np.zeros(sums.shape[1:], np.int64)
    for y, x in np.ndindex(out.shape):
        best = sums[:, y, x].max()
        if best * 2 > 255 * len(stored):
            out[y, x] = max(i for i, s in zip(ids, sums[:, y, x]) if s == best)
    return out



# ----------------------------------------------------------------------------------------- fusion
SCALE_SETS = {"one": (1.0,), "two": (1.0, 1.125)}
TRANSFORM_SETS = {"identity": ("identity",), "hflip": ("identity", "hflip")}


@pytest.fixture()
def pass_folders(tmp_path):
    """Four passes (2 scales x 2 transforms) of one 3-frame video: probabilities and their merged labels,
    plus ground truth. Scale 1 / identity comes first, as run_passes orders them."""
    passes = recipe.passes_for((1.0, 1.125), ("identity", "hflip"))
    folders = {}
    for index, one in enumerate(passes):
        stored, ids = scene_probs(10 + index, n_frames=3)
        folder = tmp_path / "passes" / one.name
        frames = ["00000", "00001", "00002"]
        save_probs(folder / "v.npz", stored, ids, frames)
        for frame, frame_probs in zip(frames, stored):
            write_mask(folder / "v" / f"{frame}.png", infer.merge_objects(frame_probs, ids, threshold=127.5))
        folders[one] = folder
    stored, ids = scene_probs(99, n_frames=3)
    for t in range(3):
        write_mask(tmp_path / "gt" / "v" / f"{t:05d}.png", infer.merge_objects(stored[t], ids, threshold=127.5))
    return folders


def test_passes_and_available_sets():
    assert [p.name for p in recipe.passes_for((1.0, 1.25), ("identity", "rot90"))] == [
        "scale1-identity", "scale1-rot90", "scale1.25-identity", "scale1.25-rot90"]
    assert list(fusion_ablation.available_sets(fusion.SCALE_SETS, (1.0, 1.125, 1.25))) == ["single", "low3"]
    assert list(fusion_ablation.available_sets(fusion.TRANSFORM_SETS, ("identity", "hflip"))) == ["identity", "hflip"]


def test_variant_names_round_trip_and_pick_the_best():
    variants = fusion_ablation.fusion_variants(["single", "fvos7"], ["identity", "hflip"], fillings_for=["identity"])
    assert [fusion_ablation.FusionVariant.from_name(v.name) for v in variants] == variants
    for bad in ("fvos7-identity-hard", "fvos7-identity-mean-fill_none", "fvos7-identity-hard-fill_both"):
        with pytest.raises(ValueError, match="not a fusion variant name"):
            fusion_ablation.FusionVariant.from_name(bad)
    assert recipe.Pass.from_name("scale1.125-rot90") == recipe.Pass(1.125, "rot90")
    with pytest.raises(ValueError, match="not a pass name"):
        recipe.Pass.from_name("1.125-rot90")
    F = fusion_ablation.FusionVariant
    scores = {v: 0.1 for v in variants}
    scores.update({F("fvos7", "identity", "soft"): 0.4, F("single", "hflip", "hard"): 0.4,  # a tie: the first wins
                   F("fvos7", "identity", "hard", "after"): 0.9,  # filled: not a candidate without filling
                   F("single", "identity", "hard", "before"): 0.5, F("fvos7", "identity", "hard", "before"): 0.5})
    results = {v: result({("a", 1): (j, j)}) for v, j in scores.items()}
    assert fusion_ablation.best_variant(results) == F("fvos7", "identity", "soft")
    assert fusion_ablation.best_variant(results, filling="after") == F("fvos7", "identity", "hard", "after")


def test_the_scale_set_pick_keeps_a_single_scale_unless_a_vote_beats_it():
    F, P = fusion_ablation.FusionVariant, recipe.Pass
    variants = fusion_ablation.fusion_variants(["single", "low3", "fvos7"], ["identity"], fillings_for=["identity"])
    scores = {v: 0.1 for v in variants}
    scores.update({F("fvos7", "identity", "hard", "before"): 0.5, F("low3", "identity", "hard", "before"): 0.5,
                   F("single", "identity", "hard", "before"): 0.9})  # one scale: a single-scale candidate only
    results = {v: result({("a", 1): (j, j)}) for v, j in scores.items()}
    k2, k0 = GapFilling("paper", "square", 2), GapFilling("paper", "square", 0)
    single_scales = {P(1.0): result({("a", 1): (0.45, 0.45)}), P(1.75): result({("a", 1): (0.5, 0.5)})}
    pick = fusion_ablation.scale_set_pick(results, fusion.SCALE_SETS, single_scales, k2)
    assert (pick.name, pick.scales, pick.j_and_f) == ("scale1.75", (1.75,), pytest.approx(0.5))  # a tie: no vote
    results[F("fvos7", "identity", "hard", "before")] = result({("a", 1): (0.6, 0.6)})
    pick = fusion_ablation.scale_set_pick(results, fusion.SCALE_SETS, single_scales, k2)
    assert (pick.name, len(pick.scales), pick.j_and_f) == ("fvos7", 7, pytest.approx(0.6))
    assert (pick.gain, pick.gain_low, pick.gain_high) == (pytest.approx(0.15), pytest.approx(0.15), pytest.approx(0.15))
    # no filling picked: the sets compete as voted without filling (0.1 here), so the single scale wins
    pick = fusion_ablation.scale_set_pick(results, fusion.SCALE_SETS, single_scales, k0)
    assert pick.name == "scale1.75"
    assert (pick.best_single, pick.largest_tried) == (1.75, 1.75)
    # the best soft vote is recorded beside the pick, not as a candidate, even where it scores above it
    assert (pick.soft_name, pick.soft_j_and_f) == ("low3 soft vote", pytest.approx(0.1))  # the first of the best
    results[F("fvos7", "identity", "soft")] = result({("a", 1): (0.8, 0.8)})
    pick = fusion_ablation.scale_set_pick(results, fusion.SCALE_SETS, single_scales, k0)
    assert pick.name == "scale1.75" and (pick.soft_name, pick.soft_j_and_f) == ("fvos7 soft vote", pytest.approx(0.8))
    with pytest.raises(ValueError, match="no single scale"):
        fusion_ablation.scale_set_pick({}, fusion.SCALE_SETS, {}, k2)


def test_fusion_variants_and_their_checks():
    variants = fusion_ablation.fusion_variants(["one", "two"], ["identity", "hflip"], fillings_for=["identity"])
    assert len(variants) == 2 * 5 + 2 * 2 and len({v.name for v in variants}) == len(variants)
    assert fusion_ablation.FusionVariant("two", "hflip", "soft", "after").name == "two-hflip-soft-fill_after"
    with pytest.raises(ValueError, match="after"):
        fusion_ablation.FusionVariant("one", "identity", "soft", "before")
    with pytest.raises(ValueError, match="fusion"):
        fusion_ablation.FusionVariant("one", "identity", "mean")


def test_fusion_ablation_fuses_fills_and_scores_the_right_passes(pass_folders, tmp_path):
    filling = postprocess.GapFilling("paper", "square", 3)
    variants = fusion_ablation.fusion_variants(list(SCALE_SETS), list(TRANSFORM_SETS), fillings_for=["hflip"])
    results = fusion_ablation.score_variants(pass_folders, tmp_path / "gt", tmp_path / "fused", variants,
                                       scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS, filling=filling,
                                       progress=False)
    passes = list(pass_folders)
    for v in variants:
        members = [p for p in passes if p.scale in SCALE_SETS[v.scales] and p.transform in TRANSFORM_SETS[v.transforms]]
        assert members[0] == passes[0]  # scale 1 without transform breaks the ties
        for t in range(3):
            frame = f"{t:05d}"
            videos = [load_probs(pass_folders[p] / "v.npz") for p in members]
            if v.fusion == "soft":
                want = literal_soft_vote(np.stack([vp.probs[t][np.argsort(vp.object_ids)] for vp in videos]),
                                         np.sort(videos[0].object_ids))
            elif v.filling == "before":  # the paper's order: fill each pass's separate masks, then vote
                want = literal_vote([postprocess.fill_gaps_reference(vp.probs[t] > 127, vp.object_ids, 3)
                                     for vp in videos])
            else:
                want = literal_vote([read_mask(pass_folders[p] / "v" / f"{frame}.png") for p in members])
            if v.filling == "after":
                want = postprocess.fill_gaps_reference(want[None] == np.arange(1, 5)[:, None, None],
                                                       np.arange(1, 5), 3)
            got = read_mask(tmp_path / "fused" / v.name / "v" / f"{frame}.png")
            assert np.array_equal(got, want), (v.name, frame)
        assert results[v] == evaluate.evaluate(tmp_path / "gt", tmp_path / "fused" / v.name, progress=False)
        assert json.loads((tmp_path / "fused" / v.name / scoring.SCORES_FILE).read_text())["global"] == \
            pytest.approx(results[v]["global"])
    with pytest.raises(ValueError, match=r"no pass for .*1\.125"):
        fusion_ablation.score_variants({p: d for p, d in pass_folders.items() if p.scale == 1.0}, tmp_path / "gt",
                                 tmp_path / "fused2", [fusion_ablation.FusionVariant("two", "identity")],
                                 scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS, progress=False)


def test_fusion_ablation_removes_the_folders_of_variants_no_longer_compared(pass_folders, tmp_path):
    """Chapter 06 with fewer scale sets: the dropped variants' folders and the passes only they filled go;
    anything not named like a variant or a pass stays."""
    work = tmp_path / "fused"
    run = dict(scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS, progress=False)
    fusion_ablation.score_variants(pass_folders, tmp_path / "gt", work,
                                   fusion_ablation.fusion_variants(["one", "two"], ["identity"], fillings_for=["identity"]),
                                   **run)
    (work / "notes").mkdir()
    (work / "filled" / "notes").mkdir()
    kept = fusion_ablation.fusion_variants(["one"], ["identity"], fillings_for=["identity"])
    fusion_ablation.score_variants(pass_folders, tmp_path / "gt", work, kept, **run)
    assert sorted(p.name for p in work.iterdir()) == sorted([v.name for v in kept] + ["filled", "notes"])
    assert sorted(p.name for p in (work / "filled").iterdir()) == ["notes", "scale1-identity"]


def test_fusion_and_cost_tables():
    passes = recipe.passes_for((1.0, 1.125), ("identity", "hflip"))
    runs = {p: {"seconds_per_frame": s} for p, s in zip(passes, (0.1, 0.3, 0.5, 0.7))}
    assert fusion_ablation.seconds_per_scale(runs) == pytest.approx({1.0: 0.2, 1.125: 0.6})
    variants = [fusion_ablation.FusionVariant("two", "hflip", "hard"), fusion_ablation.FusionVariant("two", "hflip", "soft"),
                fusion_ablation.FusionVariant("two", "hflip", "hard", "after")]
    results = {v: result({("a", 1): (0.1 * i, 0.2)}) for i, v in enumerate(variants, 1)}
    table = fusion_ablation.fusion_table(results, scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS,
                                  singles={passes[0]: result({("a", 1): (0.5, 0.5)})})
    assert table.loc[("1", "identity", "single", "none"), "J&F"] == 0.5
    assert table.loc[("two", "hflip", "soft", "none"), "passes"] == 4
    assert table.loc[("two", "hflip", "hard", "after"), "J&F"] == pytest.approx(0.25)
    # every row against the pass at scale 1 without a transform (one video: the interval is the change)
    assert table.loc[("two", "hflip", "hard", "after"), ["dJ&F", "CI low", "CI high"]].tolist() == \
        pytest.approx([-0.25] * 3)
    assert table.loc[("1", "identity", "single", "none"), "dJ&F"] == 0
    without_reference = fusion_ablation.fusion_table(results, scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS)
    assert "dJ&F" not in without_reference.columns
    cost = fusion_ablation.cost_table(results, runs, scale_sets=SCALE_SETS, transform_sets=TRANSFORM_SETS)
    assert cost.loc[("two", "hflip"), "s per frame"] == pytest.approx((0.2 + 0.6) * 2)
    assert cost.loc[("one", "identity"), "s per frame"] == pytest.approx(0.2)
    assert cost.loc[("two", "hflip"), "model passes"] == 4 and "seconds_per_frame" not in cost.columns
    assert cost.loc[("two", "hflip"), "J&F hard"] == pytest.approx(0.15)  # filling "none" only
    assert cost.loc[("two", "hflip"), "J&F soft"] == pytest.approx(0.2)
    assert pd.isna(cost.loc[("one", "identity"), "J&F hard"])


def _fusion_figure_inputs():
    """Chapter-06-shaped inputs whose right panel crowds: sets of equal size score the same or nearly so,
    hard and soft voting a hair apart; both transforms score the same single passes."""
    scale_sets = {"single": (1.0,), "low3": (1.0, 1.125, 1.25), "wide3": (1.0, 1.25, 1.5),
                  "spread3": (1.0, 1.125, 1.5), "all4": (1.0, 1.125, 1.25, 1.5)}
    transform_sets = {"identity": ("identity",), "hflip": ("identity", "hflip")}
    passes = recipe.passes_for((1.0, 1.125, 1.25, 1.5), ("identity", "hflip"))
    singles = {p: result({("a", 1): (0.4 + 0.01 * p.scale, 0.5)}) for p in passes}
    pass_table = pd.DataFrame([{"scale": p.scale, "transform": p.transform, **scoring.summary(r)}
                               for p, r in singles.items()]).set_index(["scale", "transform"])
    variants = fusion_ablation.fusion_variants(list(scale_sets), list(transform_sets), fillings_for=["identity"])
    fused = {v: result({("a", 1): (0.45 + 0.002 * len(scale_sets[v.scales]) + (0.0004 if v.fusion == "soft" else 0)
                                    + (0.0003 if v.scales == "spread3" else 0), 0.55)}) for v in variants}
    table = fusion_ablation.fusion_table(fused, scale_sets=scale_sets, transform_sets=transform_sets, singles=singles)
    return pass_table, table, fused, scale_sets


def test_the_fill_order_table_holds_each_vote_of_each_scale_set_without_transforms():
    _, table, fused, scale_sets = _fusion_figure_inputs()
    order = fusion_ablation.fill_order_table(table, scale_sets)
    assert list(order.index) == list(scale_sets)
    assert sorted(order.columns) == [("hard", "after"), ("hard", "before"), ("hard", "none"), ("soft", "after"),
                                     ("soft", "none")]
    for v, r in fused.items():
        if v.transforms == "identity":
            assert order.loc[v.scales, (v.fusion, v.filling)] == r["global"]["J&F"]


def test_fusion_figure_labels_every_scale_set_without_overlaps():
    pass_table, table, fused, scale_sets = _fusion_figure_inputs()
    fig = fusion_ablation.fusion_figure(pass_table, table, fused, scale_sets)
    try:
        assert len(fig.axes) == 2 and [ax.get_ylabel() for ax in fig.axes] == ["J&F (%)", "dJ&F against scale 1 (points)"]
        by_scale, by_cost = fig.axes
        fig.canvas.draw()
        assert any(label.get_visible() and label.get_text() for label in by_cost.get_yticklabels())
        labels = by_cost.texts
        boxes = [label.get_window_extent() for label in labels]
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
        shown = [label.get_text() for label in labels]
        assert "low3, wide3" in shown  # the same place: one label
        assert {name for text in shown for name in text.split(", ")} == set(scale_sets)  # none left out
        assert "lack of room" not in by_cost.get_title()
        colours = {bars.get_label(): bars.lines[0].get_color() for bars in by_cost.containers}
        assert colours["hard voting, transforms identity"] != colours["soft voting, transforms identity"]
        assert colours["hard voting, transforms identity"] == colours["hard voting, transforms hflip"]
        single = [line for line in by_scale.get_lines() if line.get_label().startswith("single pass")]
        assert len(single) == 2 and np.array_equal(single[0].get_ydata(), single[1].get_ydata())
        assert single[0].get_marker() != single[1].get_marker()
        assert single[0].get_linestyle() != single[1].get_linestyle()
        # right: each set's change from scale 1 in points, its interval drawn around that change (not around J&F)
        hard = next(bars for bars in by_cost.containers if bars.get_label() == "hard voting, transforms identity")
        rows = table.xs(("identity", "hard", "none"), level=("transforms", "fusion", "filling"))
        assert np.allclose(hard.lines[0].get_ydata(), 100 * rows["dJ&F"])
        (bar,) = hard.lines[2]
        ends = np.array([segment[:, 1] for segment in bar.get_segments()])
        assert np.allclose(ends, 100 * rows[["CI low", "CI high"]].to_numpy())
        for ax in fig.axes:
            assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())
    finally:
        plt.close(fig)


def test_fusion_figure_names_a_table_of_the_wrong_shape():
    pass_table, table, fused, scale_sets = _fusion_figure_inputs()
    with pytest.raises(ValueError, match=r"pass_table must be indexed by \('scale', 'transform'\)"):
        fusion_ablation.fusion_figure(pass_table.reset_index(), table, fused, scale_sets)
    with pytest.raises(ValueError, match="table must be indexed by .*J&F"):
        fusion_ablation.fusion_figure(pass_table, table.drop(columns="J&F"), fused, scale_sets)
    assert fusion_ablation.largest_set(scale_sets) == "all4"
    assert fusion_ablation.largest_set({"a": (1.0, 2.0), "b": (1.0, 3.0)}) == "a"  # first on a tie


RUN = "pytest-fusion"


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_06_records_what_the_evaluator_said():
    executed = execute_chapter("06_multiscale_fusion", RUN, {"ckpt": "random", "n_videos": 1, "scales": [1.0, 1.125, 1.25],
                                                             "transforms": ["identity", "hflip"]})
    chapter = paths.outputs_dir(RUN) / "06_multiscale_fusion"
    metrics = read_json(chapter / "metrics.json")
    assert sorted(metrics["passes"]) == sorted(p.name for p in recipe.passes_for((1.0, 1.125, 1.25), ("identity", "hflip")))
    for name, fused in metrics["fused"].items():
        assert fused["J&F"] == read_json(chapter / "fused" / name / scoring.SCORES_FILE)["global"]["J&F"]
    assert {(f["scales"], f["transforms"]) for f in metrics["fused"].values()} == {
        (s, t) for s in ("single", "low3") for t in ("identity", "hflip")}
    assert {row["scales"] for row in metrics["cost"]} == {"single", "low3"}
    first = metrics["passes"][recipe.Pass(1.0).name]["J&F"]
    plain = {name: f["J&F"] for name, f in metrics["fused"].items() if f["filling"] == "none"}
    assert metrics["best_fused"] == {"variant": max(plain, key=plain.get), "J&F": max(plain.values())}
    assert checked_outputs(executed) == [f"single pass (scale1-identity) J&F {100 * first:.2f}; best fused: "
                                         f"{metrics['best_fused']['variant']} J&F {100 * metrics['best_fused']['J&F']:.2f}\n"]
    # the recipe's scales: the best of every single scale (each pass filled) and of each set of several
    # (its passes filled, then hard-voted without transforms); a single scale wins a tie
    candidates = {f"scale{recipe.Pass.from_name(name).scale:g}": s["J&F"] for name, s in metrics["single_scales"].items()}
    assert sorted(candidates) == ["scale1", "scale1.125", "scale1.25"]
    candidates["low3"] = metrics["fused"][fusion_ablation.FusionVariant("low3", "identity", "hard", "before").name]["J&F"]
    best = max(candidates.values())
    assert metrics["scale_set"]["J&F"] == best
    assert metrics["scale_set"]["name"] == [name for name, jf in candidates.items() if jf == best][0]
    assert read_json(chapter / "best_scales.json") == metrics["scale_set"]
    recorded = {c["claim"]: c for c in read_json(chapter / "comparisons.json")}
    assert recorded["fusion"]["J&F"] == candidates["low3"] and recorded["fusion"]["chosen_here"]
    assert recorded["fusion"]["baseline_j_and_f"] == max(v for k, v in candidates.items() if k != "low3")
    assert recorded["transforms"]["treatment"] == "low3 with transforms hflip"  # claim 7: flips ran
    conclusions = [c for c in executed.cells if c.cell_type == "code"][-1]  # the exercises follow, in markdown
    assert conclusions.outputs[0]["data"]["text/markdown"].startswith("## What this run shows")
    for figure in ("fusion_ablation", "fill_order"):
        assert (chapter / f"{figure}.png").stat().st_size > 10_000 and (chapter / f"{figure}.pdf").is_file()


@pytest.mark.slow
@pytest.mark.notebook
def test_chapter_06_on_a_mose_layout_chooses_on_a_holdout_and_zips_the_server_split(tmp_path):
    """The real-data path: data_root is a MOSE-layout folder (hidden valid ground truth), so the chapter
    scores on videos held out of train and writes the recipe's zip of valid for the server."""
    mose = write_mose_layout(tmp_path / "fake-mose-pytest", n_train=7, n_valid=2)
    try:
        executed = execute_chapter("06_multiscale_fusion", f"{RUN}-mose",  # other videos: a run of its own
                                   {"ckpt": "random", "data_root": str(mose), "server_root": str(mose), "n_videos": 0,
                                    "scales": [1.0, 1.125], "transforms": ["identity"], "fill_kernel": 2})
    finally:  # the hold-out view (links into tmp_path) that datasets.prepare made under data/
        remove_dir(paths.data_dir() / "fake-mose-pytest-holdout1-seed0")
    chapter = paths.outputs_dir(f"{RUN}-mose") / "06_multiscale_fusion"
    metrics = read_json(chapter / "metrics.json")
    assert metrics["videos"] == ["train06"]  # 7 // 7 = 1 held-out video, scored against its full masks
    assert metrics["submission"] == str(chapter / "fvos_valid.zip")
    with zipfile.ZipFile(metrics["submission"]) as archive:
        assert sorted(archive.namelist()) == [f"Annotations/valid{v:02d}/{t:05d}.png" for v in range(2) for t in range(4)]
    assert checked_outputs(executed)


def test_full_settings_fit_the_notebooks():
    """params/ablations_full.yaml: every key is a parameter of its chapter (checked by the pipeline)."""
    from fvos_utils.run import pipeline

    params = pipeline.load_run_params(paths.params_dir() / "ablations_full.yaml")
    assert list(params["chapters"]) == ["05_morphology_ablation", "06_multiscale_fusion"]
    fused = pipeline.chapter_parameters(params, "06_multiscale_fusion")
    assert fused["n_videos"] == 0 and fused["scales"] == list(fusion.FVOS_SCALES)
    assert sorted(fused["transforms"]) == sorted(fusion.TRANSFORM_SETS["all"])




def test_the_fill_order_figure_draws_each_filled_vote_against_the_same_vote_unfilled():
    F = fusion_ablation.FusionVariant
    base = {("a", 1): (0.5, 0.5), ("b", 1): (0.6, 0.6), ("c", 1): (0.4, 0.4)}
    up = {key: (j + 0.02, f + 0.02) for key, (j, f) in base.items()}
    results = {F("fvos7", "identity", "hard"): result(base), F("fvos7", "identity", "hard", "before"): result(up),
               F("fvos7", "identity", "hard", "after"): result(base), F("fvos7", "identity", "soft"): result(up)}
    fig = fusion_ablation.fill_order_figure(results, ["fvos7"], GapFilling("paper", "square", 2))
    ax = fig.axes[0]
    drawn = {bars.get_label(): bars.lines[0].get_ydata() for bars in ax.containers}
    assert list(drawn) == ["hard voting, filled before", "hard voting, filled after"]  # soft: no filled variant
    # in points: +0.02 of J&F is 2 points
    assert drawn["hard voting, filled before"] == pytest.approx([2.0]) and drawn["hard voting, filled after"] == pytest.approx([0.0])
    assert "95% CI" in ax.get_title() and ax.get_ylabel() == "dJ&F against no filling (points)"
    assert fusion_ablation.fill_order_figure({F("low3", "identity", "hard"): result(base)}, ["low3"], GapFilling()) is None
    plt.close(fig)


def test_the_figure_caption_names_the_transforms_the_run_used_or_says_it_used_none():
    used = fusion_ablation.figure_caption({"identity": ("identity",), "hflip": ("identity", "hflip")})
    assert "with and without the test-time transform sets hflip." in used and "(the run used none)" not in used
    none = fusion_ablation.figure_caption({"identity": ("identity",)})
    assert "without test-time transforms (the run used none)." in none and "hflip" not in none

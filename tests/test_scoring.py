"""Scoring helpers shared by chapters 05 and 06, against the evaluator and hand-computed numbers."""
import numpy as np
import pytest

from fvos_utils.base.io import read_json, write_mask
from fvos_utils.data.testing import evaluator_result as result
from fvos_utils.data.testing import moving_objects
from fvos_utils.metrics import evaluate, scoring


# ---------------------------------------------------------------------------------------- scores
def test_object_deltas_and_their_summary():
    before = result({("a", 1): (0.5, 0.6), ("a", 2): (0.8, 0.9), ("b", 1): (0.2, 0.4)})
    after = result({("a", 2): (0.7, 0.95), ("a", 1): (0.6, 0.6), ("b", 1): (0.2, 0.4)})
    deltas = scoring.object_deltas(before, after)
    assert deltas.loc[("a", 1), "dJ"] == pytest.approx(0.1) and deltas.loc[("a", 1), "dF"] == 0
    assert deltas.loc[("a", 2), "dJ"] == pytest.approx(-0.1) and deltas.loc[("a", 2), "dF"] == pytest.approx(0.05)
    assert deltas.loc[("a", 2), "J after"] == 0.7
    assert scoring.delta_summary(deltas) == pytest.approx(
        {"mean dJ": 0.0, "mean dF": 0.05 / 3, "objects better": 1, "objects worse": 1, "objects": 3})
    with pytest.raises(ValueError, match="different objects"):
        scoring.object_deltas(before, result({("a", 1): (0.5, 0.6)}))


def test_score_folder_keeps_the_evaluator_result(tmp_path):
    truth = list(moving_objects(24, 32, 4, 2, seed=0))
    for t, labels in enumerate(truth):
        write_mask(tmp_path / "gt" / "v" / f"{t:05d}.png", labels)
        write_mask(tmp_path / "pred" / "v" / f"{t:05d}.png", np.roll(labels, 2, axis=1))
    got = scoring.score_folder(tmp_path / "gt", tmp_path / "pred")
    assert got == evaluate.evaluate(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert read_json(tmp_path / "pred" / scoring.SCORES_FILE)["global"] == pytest.approx(got["global"])
    assert scoring.summary(got, tag="x") == {**{k: got["global"][k] for k in ("J&F", "J", "F")}, "J&F x": None}



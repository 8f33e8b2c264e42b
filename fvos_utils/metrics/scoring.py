"""Scoring prediction folders, shared by the studies of chapters 05 and 06 and the recipe's checks.

A folder of predictions (``<folder>/<video>/<frame>.png``) is scored by :func:`fvos_utils.metrics.evaluate.evaluate`
and its result kept beside it (:data:`SCORES_FILE`); tables are built from those results: :func:`summary`
(J&F, J, F of one), :func:`object_deltas` / :func:`delta_summary` (what changed per object between two).
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import pandas as pd

from fvos_utils.base.io import write_json
from fvos_utils.base.paths import resolve
from fvos_utils.metrics import evaluate as evaluation

#: file beside each scored folder holding the evaluator's result
SCORES_FILE = "scores.json"


def score_folder(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, videos: Sequence[str] | None = None,
                 tags: str | os.PathLike | Mapping | None = None, workers: int = 1) -> dict:
    """:func:`fvos_utils.metrics.evaluate.evaluate` of one folder (``workers`` processes), its result also written
    to ``<pred_dir>/scores.json``."""
    result = evaluation.evaluate(resolve(gt_dir), resolve(pred_dir), videos=videos, tags=tags, workers=workers,
                                 progress=False)
    write_json(resolve(pred_dir) / SCORES_FILE, result)
    return result


def summary(result: dict, *, tag: str | None = None) -> dict:
    """``{"J&F", "J", "F"}`` of an evaluator result, plus ``"J&F <tag>"`` (None if no video has the tag)."""
    row = {key: result["global"][key] for key in ("J&F", "J", "F")}
    if tag is not None:
        row[f"J&F {tag}"] = result.get("per_tag", {}).get(tag, {}).get("J&F")
    return row


def object_deltas(baseline: dict, result: dict) -> pd.DataFrame:
    """Per-object change of J and F from ``baseline`` to ``result`` (two evaluator results).

    Returns a DataFrame indexed by ``(video, object)`` with ``J``, ``F`` (baseline), ``J after``,
    ``F after``, ``dJ``, ``dF``. Both results must score the same objects (else ValueError).
    """
    def table(res):
        return pd.DataFrame([{"video": o["video"], "object": o["object"], "J": o["J"], "F": o["F"]}
                             for o in res["objects"]]).set_index(["video", "object"])

    before, after = table(baseline), table(result)
    if sorted(before.index) != sorted(after.index):
        missing = sorted(set(before.index) ^ set(after.index))[:5]
        raise ValueError(f"the two results score different objects, e.g. {missing}")
    out = before.join(after.add_suffix(" after"))
    out["dJ"] = out["J after"] - out["J"]
    out["dF"] = out["F after"] - out["F"]
    return out


def delta_summary(deltas: pd.DataFrame, *, tolerance: float = 1e-9) -> dict:
    """Mean dJ and dF of :func:`object_deltas`, and how many objects got better / worse in J&F."""
    mean = (deltas["dJ"] + deltas["dF"]) / 2
    return {"mean dJ": float(deltas["dJ"].mean()), "mean dF": float(deltas["dF"].mean()),
            "objects better": int((mean > tolerance).sum()), "objects worse": int((mean < -tolerance).sum()),
            "objects": len(deltas)}


def scores_of(result: dict) -> dict:
    """What a chapter keeps of an :func:`fvos_utils.metrics.evaluate.evaluate` result: the global ``"J&F"``, ``"J"``,
    ``"F"`` and, per object, ``{"video", "object", "J", "F"}`` under ``"objects"``, enough for
    :func:`fvos_utils.metrics.evaluate.paired_difference` against another such record."""
    return {**{key: float(result["global"][key]) for key in ("J&F", "J", "F")},
            "objects": [{key: obj[key] for key in ("video", "object", "J", "F")} for obj in result["objects"]]}

"""The choices one chapter makes and later chapters use: one typed record each, owned by this module.

FVOS chooses every setting on validation J&F (MOSE val in the paper; here the run's valid split):

=====================  ==========  ================  ==============================================
record                 chosen by   paper section     used by
=====================  ==========  ================  ==============================================
:class:`EpochPick`     chapter 03  2.1 (two stages)  chapters 04-06 and the recipe: the weights
:class:`SigmoidPick`   chapter 04  2.1 / Table 1     chapters 05-06 and the recipe: the memory sigmoid
:class:`KernelPick`    chapter 05  2.2               chapter 06 and the recipe: the gap filling
:class:`ScaleSetPick`  chapter 06  2.3               the recipe: the scales fused
=====================  ==========  ================  ==============================================

Each record lives at ``outputs/<run>/<chapter>/<file>`` and is written by its :meth:`record` and read by
its :meth:`read` only (no notebook writes or parses one). Paths inside a record are stored relative to the
run folder ``outputs/<run>/`` when they lie inside it, so a moved ``outputs/`` folder keeps working;
weights outside the run (a checkpoint of the user's, the registry's file) are stored absolute.

**Doing nothing is a candidate of every pick** (the paper's rule, best on valid, stays): the starting
weights (:data:`STARTING_STAGE`), SAM 2's default sigmoid pair, no gap filling (a kernel of at most 1)
and a single scale (no voting). On a tie the do-nothing candidate wins: a change must earn its place.

**The fallback rule** (stated here once; every chapter and the recipe follow it): a step uses the choice
recorded by the chapter that owns it in the same run; where that chapter has not run, it uses its own
parameter (``ckpt``, whose default :data:`fvos_utils.method.models.REGISTRY` means the registry's weights;
``fill_kernel`` / ``fill_shape``; ``scales``). A recorded sigmoid pair applies only to the weights it was
tuned on; otherwise the model config's pair (20, -10) is used.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fvos_utils.base.io import DataError, read_json, write_json
from fvos_utils.base import paths
from fvos_utils.base.paths import resolve
from fvos_utils.method import models
from fvos_utils.method.postprocess import PAPER_FILLING, GapFilling
from fvos_utils.metrics.percent import percent

#: :attr:`EpochPick.stage` of the starting weights (the model fine-tuning started from)
STARTING_STAGE = 0
#: :attr:`EpochPick.label` of the starting weights
STARTING_LABEL = "the starting weights"
#: JSON keys of score fields (a dataclass field cannot be called "J&F")
_JSON_KEYS = {"j_and_f": "J&F", "j": "J", "f": "F", "default_j_and_f": "default J&F"}


def gain_fields(change) -> tuple[float | None, float | None, float | None]:
    """A pick's ``gain``, ``gain_low``, ``gain_high`` from its :class:`fvos_utils.metrics.evaluate.PairedDifference`
    against doing nothing (None, the pick being doing nothing itself: three Nones)."""
    return (change.delta, change.ci_low, change.ci_high) if change is not None else (None, None, None)


def run_dir(run: str) -> Path:
    """``outputs/<run>/``: the folder that record paths are relative to."""
    return paths.run_dir(run)


def weights_reference(run: str, checkpoint: str | os.PathLike) -> str:
    """How a record stores weights: :data:`fvos_utils.method.models.RANDOM` as is, a file inside the run folder
    relative to it, any other file as an absolute path."""
    if str(checkpoint) == models.RANDOM:
        return models.RANDOM
    path = resolve(checkpoint).resolve()
    base = run_dir(run).resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def weights_path(run: str, reference: str) -> str:
    """The inverse of :func:`weights_reference`: a loadable path (or ``"random"``). Shown in chapter 03."""
    if reference == models.RANDOM:
        return models.RANDOM
    path = Path(reference)
    return str(path if path.is_absolute() else run_dir(run) / path)


class Record:
    """A frozen dataclass stored as one JSON file of the run (see the subclasses; :mod:`fvos_utils.studies.claims`
    keeps its comparisons the same way)."""

    chapter: ClassVar[str]
    file_name: ClassVar[str]

    @classmethod
    def path(cls, run: str) -> Path:
        return run_dir(run) / cls.chapter / cls.file_name

    def as_dict(self) -> dict:
        """The record as JSON-ready values, scores under their usual keys (``"J&F"``, ``"J"``, ``"F"``)."""
        return {_JSON_KEYS.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)}

    def record(self, run: str) -> Path:
        """Write the record for ``run`` (atomically); returns its path."""
        path = self.path(run)
        write_json(path, self.as_dict())
        return path

    @classmethod
    def from_dict(cls, values: dict, *, source: str | os.PathLike = "record"):
        """The record from :meth:`as_dict`'s form; a missing or mistyped field is a DataError naming ``source``."""
        kwargs = {}
        for field in dataclasses.fields(cls):
            key = _JSON_KEYS.get(field.name, field.name)
            if key not in values and field.default is not dataclasses.MISSING:
                continue  # a field added later, with its default: a record written before it still reads
            if key not in values:
                raise DataError(source, f"missing {key!r} (a {cls.__name__} record)")
            kwargs[field.name] = _typed(values[key], field.type, source=source, key=key)
        return cls(**kwargs)

    @classmethod
    def read(cls, run: str):
        """The record of ``run``, or None where its chapter has not recorded one."""
        path = cls.path(run)
        if not path.is_file():
            return None
        values = read_json(path)
        if not isinstance(values, dict):
            raise DataError(path, f"expected a JSON object (a {cls.__name__} record)")
        return cls.from_dict(values, source=path)


def _typed(value, annotation: str, *, source, key: str):
    """``value`` checked against a field annotation of the records (``int``, ``float``, ``str``, ``bool``,
    ``dict``, ``float | None``, ``tuple[float, ...]``)."""
    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    if value is None and optional:
        return None
    if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "str" and isinstance(value, str):
        return value
    if (base == "bool" and isinstance(value, bool)) or (base == "dict" and isinstance(value, dict)):
        return value
    if base == "tuple[float, ...]" and isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(float(v) for v in value)
    raise DataError(source, f"{key!r} must be {annotation}, got {value!r}")


@dataclass(frozen=True)
class EpochPick(Record):
    """Chapter 03's pick: the best of the starting weights and every epoch of both fine-tuning stages on
    valid (on a tie the starting weights, then the earlier stage and epoch). ``stage`` is
    :data:`STARTING_STAGE` (and ``epoch`` 0) when the starting weights won: fine-tuning is then not used."""

    chapter: ClassVar[str] = "03_epoch_selection"
    file_name: ClassVar[str] = "best.json"

    stage: int
    epoch: int
    weights: str          # the epoch's model-only weights (weights_reference: relative to the run folder)
    j_and_f: float
    j: float
    f: float
    gain: float | None = None      # J&F change from the starting weights on valid (None: they are the pick)
    gain_low: float | None = None  # its paired 95% interval
    gain_high: float | None = None
    starting_weights: str = ""     # the weights fine-tuning started from (weights_reference)
    fine_tuned_weights: str = ""   # the best fine-tuned epoch on valid, picked or not ("" where none trained):
    fine_tuned_label: str = ""     # what the paper's recipe uses (fvos_utils.studies.ablation)

    @property
    def fine_tuned(self) -> bool:
        """Whether the pick is a fine-tuned epoch (False: the starting weights won)."""
        return self.stage != STARTING_STAGE

    @property
    def label(self) -> str:
        """In words: ``"stage 2, epoch 1"`` or ``"the starting weights"``."""
        return f"stage {self.stage}, epoch {self.epoch}" if self.fine_tuned else STARTING_LABEL


@dataclass(frozen=True)
class SigmoidPick(Record):
    """Chapter 04's pick: the memory-encoder ``sigmoid(logits) * scale + bias`` pair of the best J&F, SAM 2's
    default pair (always searched) included; on a tie the default."""

    chapter: ClassVar[str] = "04_sigmoid_search"
    file_name: ClassVar[str] = "best_sigmoid.json"

    scale: float
    bias: float
    j_and_f: float
    default_j_and_f: float | None  # the config's pair (20, -10) when it was searched
    tuned_on: str                  # the weights searched with (weights_reference)
    gain: float | None = None      # J&F change from the config's pair on valid (None: it is the pick)
    gain_low: float | None = None  # its paired 95% interval
    gain_high: float | None = None
    searched: tuple[float, ...] = ()  # (scale, bias) of the best pair other than the config's, () where none:
                                      # claim 3's treatment and the paper's recipe (fvos_utils.studies.ablation)


@dataclass(frozen=True)
class KernelPick(Record):
    """Chapter 05's pick: the best setting of the paper's gap-filling rule, no filling (k 0) included; on a
    tie no filling, then the smaller kernel. A kernel of at most 1 fills nothing: the recipe then skips
    the step."""

    chapter: ClassVar[str] = "05_morphology_ablation"
    file_name: ClassVar[str] = "best_kernel.json"

    method: str
    shape: str
    kernel: int
    j_and_f: float
    gain: float | None = None      # J&F change from no filling on valid (None: no filling is the pick)
    gain_low: float | None = None  # its paired 95% interval
    gain_high: float | None = None
    rival: str = ""                # claim 5's baseline: the best candidate other than the paper's kernel on
                                   # valid, no filling included (a GapFilling name; "" where none was scored)

    @property
    def filling(self) -> GapFilling:
        return GapFilling(self.method, self.shape, self.kernel)


@dataclass(frozen=True)
class ScaleSetPick(Record):
    """Chapter 06's pick: the best of every single scale and every scale set, each pass gap filled as
    chapter 05 picked, then hard-voted (the recipe's order); on a tie the fewer passes. One scale means
    one pass and no vote."""

    chapter: ClassVar[str] = "06_multiscale_fusion"
    file_name: ClassVar[str] = "best_scales.json"

    name: str                  # a fvos_utils.method.fusion.SCALE_SETS name, or "scale<S>" for one scale
    scales: tuple[float, ...]
    j_and_f: float
    gain: float | None = None       # J&F change from one pass at scale 1 on valid (None: that is the pick)
    gain_low: float | None = None   # its paired 95% interval
    gain_high: float | None = None
    best_single: float | None = None  # the best single scale on valid (in the recipe's order)
    largest_tried: float | None = None  # the largest single scale scored
    soft_name: str = ""             # the best soft vote (not a candidate: the recipe votes hard) ...
    soft_j_and_f: float | None = None  # ... and its J&F on valid


# ------------------------------------------------------------------------------- what a step uses
@dataclass(frozen=True)
class ModelChoice:
    """The weights and memory-encoder sigmoid a step runs with, and where they came from."""

    model: str                   # a fvos_utils.method.models.MODELS name
    checkpoint: str              # a weights file, or "random"
    sigmoid_scale: float | None  # None: the model config's value
    sigmoid_bias: float | None
    source: str                  # in words, for the notebook's printout and metrics.json

    def spec(self, *, scale: float = 1.0, seed: int = 0) -> models.PredictorSpec:
        """How to build a predictor with these weights at ``scale`` x the model's base image size (what
        :func:`fvos_utils.method.infer.run_split` builds in each of its processes)."""
        return models.PredictorSpec(self.model, self.checkpoint, scale=scale, seed=seed,
                                    sigmoid_scale=self.sigmoid_scale, sigmoid_bias=self.sigmoid_bias)

    def build(self, *, scale: float = 1.0, seed: int = 0, device: str | None = None):
        """A ``SAM2VideoPredictor`` with these weights at ``scale`` x the model's base image size."""
        return self.spec(scale=scale, seed=seed).build(device)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def chosen_model(run: str, *, model: str = "fvos_tiny", ckpt: str = models.REGISTRY,
                 tuned_sigmoid: bool = True) -> ModelChoice:
    """The model a step of ``run`` uses, by the fallback rule (module docstring). Shown in chapters 04, 05, 06.

    Weights: chapter 03's :class:`EpochPick`, else ``ckpt`` (:data:`fvos_utils.method.models.REGISTRY`,
    :data:`fvos_utils.method.models.RANDOM` or a path). Memory sigmoid (unless ``tuned_sigmoid`` is False, as for
    chapter 04, which searches it): chapter 04's :class:`SigmoidPick` when tuned on these weights, else
    the config's. A pick naming weights that do not exist is a DataError naming the record.
    """
    spec = models.get_spec(model)
    pick = EpochPick.read(run)
    if pick is not None:
        checkpoint = weights_path(run, pick.weights)
        if not Path(checkpoint).is_file():
            raise DataError(EpochPick.path(run), f"records weights {checkpoint} that do not exist")
        source = f"chapter 03's pick of run {run!r} ({pick.label})"
    elif str(ckpt) == models.RANDOM:
        checkpoint, source = models.RANDOM, "ckpt: seeded random weights (the numbers show the machinery only)"
    else:
        checkpoint = str(models.resolve_checkpoint(spec, ckpt))
        source = (f"ckpt: the registry's {model}" if str(ckpt) == models.REGISTRY else "ckpt") + \
            f" (no epoch pick in run {run!r})"
    scale = bias = None
    tuned = SigmoidPick.read(run) if tuned_sigmoid else None
    if not tuned_sigmoid:
        source += "; memory sigmoid: the config's (searched here)"
    elif tuned is None:
        source += "; memory sigmoid: the config's (no sigmoid pick)"
    elif _same_weights(weights_path(run, tuned.tuned_on), checkpoint):
        scale, bias = tuned.scale, tuned.bias
        source += f"; memory sigmoid scale {scale:g}, bias {bias:g} (chapter 04's pick)"
    else:
        source += f"; memory sigmoid: the config's (chapter 04 tuned other weights, {tuned.tuned_on})"
    return ModelChoice(model, checkpoint, scale, bias, f"{source}: {checkpoint}")


def _same_weights(a: str, b: str) -> bool:
    if models.RANDOM in (a, b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()


def chosen_filling(run: str, *, fill_kernel: int = PAPER_FILLING.kernel,
                   fill_shape: str = PAPER_FILLING.shape) -> tuple[GapFilling, str]:
    """The gap filling of the recipe: chapter 05's :class:`KernelPick`, else the paper's rule with
    ``fill_kernel`` / ``fill_shape`` (default: the paper's, :data:`fvos_utils.method.postprocess.PAPER_FILLING`). Returns ``(filling, source in words)``.
    Shown in chapter 06."""
    pick = KernelPick.read(run)
    if pick is not None:
        return pick.filling, f"chapter 05's pick ({pick.filling.name}, J&F {percent(pick.j_and_f)})"
    filling = GapFilling("paper", fill_shape, int(fill_kernel))
    return filling, f"fill_kernel / fill_shape ({filling.name}; no kernel pick in run {run!r})"


def chosen_scales(run: str, *, scales) -> tuple[tuple[float, ...], str]:
    """The scales the recipe fuses: chapter 06's :class:`ScaleSetPick`, else ``scales``.
    Returns ``(scales, source in words)``."""
    pick = ScaleSetPick.read(run)
    if pick is not None:
        return pick.scales, f"chapter 06's pick ({pick.name}, J&F {percent(pick.j_and_f)})"
    return tuple(float(s) for s in scales), f"scales (no scale-set pick in run {run!r})"

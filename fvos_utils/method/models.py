"""SAM 2 models: which ones exist, where their weights come from, and how the kit builds them.

- :data:`MODELS`: the released SAM 2 (July 2024) and SAM 2.1 (Sept. 2024) models (hydra config,
  checkpoint file, download address) and the kit's own small ``fvos_tiny`` (config shipped in
  ``fvos_utils/configs/``, loaded from there).
- :func:`build_predictor`: a ``SAM2VideoPredictor`` from a registry name and a checkpoint (a path, the
  registry's file, downloaded on demand, or ``"random"``: seeded random weights, for tests and benchmarks).
- Overrides FVOS needs: the image size as a scale of the model's base size (:func:`image_size_for`),
  the memory-encoder sigmoid scale and bias (:func:`set_memory_sigmoid`, on a loaded predictor),
  the device (cuda, then mps, then cpu) and the precision (:func:`autocast`: bf16 on CUDA, fp32 elsewhere).

Post-processing choice: the kit builds predictors the way SAM 2's own VOS evaluation does
(``tools/vos_inference.py`` passes ``apply_postprocessing=False``), so hole filling is **off on every
device**. ``build_sam2_video_predictor`` otherwise appends ``fill_hole_area=8``, whose connected-components
kernel needs the CUDA extension ``sam2._C``: on a CPU it warns and skips, so CPU and GPU runs would
disagree. Off everywhere keeps them equal and matches the protocol behind SAM 2's published numbers.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from fvos_utils.base.io import DataError, atomic_path, read_json
from fvos_utils.base.paths import PACKAGE_DIR, data_dir, resolve
from fvos_utils.base.progress import progress_bar
from fvos_utils.method.fusion import FVOS_SCALES  # the paper's seven scales live with the scale sets

#: ``ckpt`` / ``--ckpt`` value for the registry's checkpoint of the model (the kit's bundled weights for
#: ``fvos_tiny``, the released file for SAM 2 / 2.1, downloaded on first use): the default everywhere.
REGISTRY = "registry"
#: ``ckpt`` / ``--ckpt`` value for seeded random weights (tests and benchmarks only; the outputs mean nothing).
RANDOM = "random"
#: The kit's hydra configs (package data).
CONFIG_DIR = PACKAGE_DIR / "configs"
#: Weights shipped with the kit (package data).
ASSET_DIR = PACKAGE_DIR / "assets"
#: SAM 2's image size must be a multiple of this (Hiera's strides; 144 fails, 160 works).
IMAGE_SIZE_MULTIPLE = 32
#: The largest image size the kit runs: SAM 2's memory attention grows with the 4th power of it (a scale of
#: 64 on the small model asked for 22 GB before failing); 4096 px is 2.3x the paper's largest, 1792.
MAX_IMAGE_SIZE = 4096

_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/072824"
_SAM21_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched; the message says where to put the file by hand."""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    ``config`` is a hydra config name: inside the ``sam2`` package for released models, inside
    :data:`CONFIG_DIR` when ``kit_config``. ``sha256`` is the checkpoint's checksum where one is
    recorded (None: not yet recorded; the download helper prints the file's hash so it can be added).
    """

    name: str
    config: str
    base_image_size: int
    checkpoint: str | None = None
    url: str | None = None
    sha256: str | None = None
    kit_config: bool = False
    bundled: bool = False  # the checkpoint ships inside the package (ASSET_DIR), nothing to download


def _released(name: str, config: str, base_url: str) -> ModelSpec:
    return ModelSpec(name, config, 1024, f"{name}.pt", f"{base_url}/{name}.pt")


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    _released("sam2_hiera_tiny", "configs/sam2/sam2_hiera_t.yaml", _SAM2_URL),
    _released("sam2_hiera_small", "configs/sam2/sam2_hiera_s.yaml", _SAM2_URL),
    _released("sam2_hiera_base_plus", "configs/sam2/sam2_hiera_b+.yaml", _SAM2_URL),
    _released("sam2_hiera_large", "configs/sam2/sam2_hiera_l.yaml", _SAM2_URL),
    _released("sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", _SAM21_URL),
    _released("sam2.1_hiera_small", "configs/sam2.1/sam2.1_hiera_s.yaml", _SAM21_URL),
    _released("sam2.1_hiera_base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", _SAM21_URL),
    _released("sam2.1_hiera_large", "configs/sam2.1/sam2.1_hiera_l.yaml", _SAM21_URL),
    # The kit's small model, pretrained on CPU by params/pretrain_fvos_tiny.yaml, then params/pretrain_fvos_tiny_stage3.yaml
    # (record: assets/fvos_tiny.json).
    ModelSpec("fvos_tiny", "fvos_tiny", 256, "fvos_tiny.pt", kit_config=True, bundled=True,
              sha256="965370dbb77085d082fbd36926e39165cbd2877bce8f03f34f5228de87fbf9d5"),
)}


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (ValueError listing the known names otherwise)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name]


def bundled_record(model: str, weights: str | os.PathLike) -> dict | None:
    """The record shipped beside a bundled checkpoint (``assets/<model>.json``: how it was trained, its
    checksum, its scores) when ``weights`` is that very file; None for any other weights."""
    spec = get_spec(model)
    if not spec.bundled or str(weights) == RANDOM:
        return None
    if Path(weights).resolve() != default_checkpoint_path(spec).resolve():
        return None
    return read_json(ASSET_DIR / f"{spec.name}.json")


def image_size_for(spec: ModelSpec, scale: float) -> int:
    """SAM 2's ``image_size`` for ``scale`` x the model's base size; must be a multiple of 32.

    "Scale" has to mean the model's input size: SAM 2 resizes every frame to ``image_size`` itself,
    so resizing the frames beforehand changes almost nothing (see ``infer.resize_experiment``).
    """
    size = spec.base_image_size * float(scale)
    if not (math.isfinite(size) and size > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if size > MAX_IMAGE_SIZE:
        raise ValueError(f"scale {scale:g} gives image size {size:g} px for {spec.name}, above the largest the kit "
                         f"runs ({MAX_IMAGE_SIZE} px; the paper's largest is 1.75 x 1024 = 1792)")
    whole = round(size)
    # a scale near 0 rounds to size 0, a multiple of 32 that SAM 2 cannot run (and would be recorded)
    if abs(size - whole) > 1e-6 or whole % IMAGE_SIZE_MULTIPLE or whole < IMAGE_SIZE_MULTIPLE:
        valid = ", ".join(f"{s:g}" for s in FVOS_SCALES
                          if (spec.base_image_size * s) % IMAGE_SIZE_MULTIPLE == 0)
        raise ValueError(f"scale {scale:g} gives image size {size:g} for {spec.name} (base "
                         f"{spec.base_image_size}); SAM 2 needs a positive multiple of {IMAGE_SIZE_MULTIPLE} "
                         f"(valid FVOS scales here: {valid})")
    return whole


# ------------------------------------------------------------------------------ device, precision
def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (checked), else cuda, then mps, then cpu."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} requested but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps requested but MPS is not available here")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (as SAM 2's own tools run), plain fp32 on every other device."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------- checkpoints
def default_checkpoint_path(spec: ModelSpec) -> Path:
    """Where the registry's checkpoint lives locally: the package's assets for a bundled model,
    else ``data/checkpoints/<file>``."""
    if spec.checkpoint is None:
        raise ValueError(f"{spec.name} has no released checkpoint: pass a checkpoint path or 'random'")
    return (ASSET_DIR if spec.bundled else data_dir() / "checkpoints") / spec.checkpoint


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):  # 1 MB at a time: multi-GB checkpoints fit
            digest.update(block)
    return digest.hexdigest()


#: ``(path, size, mtime_ns) -> sha256`` of the checkpoints hashed in this process: a run of several passes
#: (one ``run_dataset`` call each) reads a multi-GB file once; a file rewritten in place gets a new key.
_CHECKPOINT_HASHES: dict[tuple[str, int, int], str] = {}


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a checkpoint file, read once per process while its size and mtime stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKPOINT_HASHES:
        _CHECKPOINT_HASHES[key] = _sha256_of(path)
    return _CHECKPOINT_HASHES[key]


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> str:
    """Fetch ``url`` to ``dest``, resuming a partial ``dest.part``; returns the file's sha256.

    The file appears at ``dest`` only once complete and (when ``sha256`` is given) verified; a
    checksum mismatch removes the download and raises :class:`~fvos_utils.base.io.DataError`. Network
    failures raise :class:`DownloadError` saying where to put the file by hand (the ``.part`` is kept,
    so the next call resumes).
    """
    
    dest = Path(dest)
    if dest.is_file():
        return _sha256_of(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: nothing left to send, the .part is already whole
            raise DownloadError(_by_hand(url, dest, err)) from None
        response = None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(_by_hand(url, dest, err)) from None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            if not resumed:
                have = 0  # the server ignored the range: start over
            total = response.length + have if response.length is not None else None
            try:
                with open(part, "ab" if resumed else "wb") as fh, \
                        progress_bar(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                             show=progress) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        fh.write(block)
                        bar.update(len(block))
            except OSError as err:
                raise DownloadError(_by_hand(url, dest, err)) from None
    digest = _sha256_of(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise DataError(dest, f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest} "
                              "(the download was removed; run again)")
    if not sha256:
        warnings.warn(f"{dest.name}: no recorded checksum to verify against; its sha256 is {digest}",
                      stacklevel=2)
    os.replace(part, dest)
    return digest


def _by_hand(url: str, dest: Path, err: Exception) -> str:
    return (f"could not download {url} ({err}). Without network access, fetch it on another machine "
            f"and put it at {dest} (or pass the checkpoint's path instead)")


def resolve_checkpoint(spec: ModelSpec, ckpt: str | os.PathLike | None = REGISTRY, *,
                       allow_download: bool = True) -> Path | None:
    """The checkpoint file to load: ``ckpt`` as a path, the registry's file (downloaded when missing
    and allowed) for :data:`REGISTRY` (or None), or None for :data:`RANDOM`."""
    if ckpt is not None and str(ckpt) == RANDOM:
        return None
    if ckpt is not None and str(ckpt) != REGISTRY:
        path = resolve(ckpt)
        if not path.is_file():
            raise DataError(path, "checkpoint file not found")
        return path
    path = default_checkpoint_path(spec)
    if not path.is_file():
        if spec.bundled:
            raise DataError(path, f"the kit's bundled {spec.name} weights are missing (reinstall the kit, or "
                                  f"retrain them: see {spec.name}.json beside it)")
        if not allow_download:
            raise DataError(path, f"checkpoint of {spec.name} not found (download it from {spec.url})")
        download(spec.url, path, sha256=spec.sha256)
    return path


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint ``{"model": state_dict}`` into ``model``; a misfit is a DataError naming the file."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file (pickle, zip, runtime)
        raise DataError(path, f"not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        keys = list(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise DataError(path, f"not a SAM 2 checkpoint: expected a dict with a 'model' state dict, got {keys}")
    try:
        missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    except RuntimeError as err:  # shape mismatches
        raise DataError(path, f"weights do not fit this model ({' '.join(str(err).split())[:300]})") from None
    if missing or unexpected:
        raise DataError(path, f"weights do not fit this model: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")


# ---------------------------------------------------------------------------------------- build
@contextlib.contextmanager
def _hydra_search_path(spec: ModelSpec) -> Iterator[None]:
    """Make ``spec.config`` findable: the kit's folder for its own configs, else sam2's (the default)."""
    if not spec.kit_config:
        yield
        return
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            yield
    finally:
        # back to what `import sam2` set up, so stock configs keep working for everyone else
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")


def build_predictor(model: str = "fvos_tiny", ckpt: str | os.PathLike | None = REGISTRY, *,
                    scale: float = 1.0, device: str | torch.device | None = None, seed: int = 0,
                    sigmoid_scale: float | None = None, sigmoid_bias: float | None = None,
                    allow_download: bool = True):
    """A ``SAM2VideoPredictor`` in eval mode, on ``pick_device(device)``.

    Args:
        model: a :data:`MODELS` name.
        ckpt: a checkpoint path, :data:`REGISTRY` (or None) for the registry's file, or :data:`RANDOM`
            (weights drawn with ``seed``; the same seed gives the same weights at every scale).
        scale: image size = ``scale`` x the model's base size (a multiple of 32, else ValueError).
        sigmoid_scale, sigmoid_bias: memory-encoder overrides (None: the config's, 20 and -10).
    """
    from sam2.build_sam import build_sam2_video_predictor

    spec = get_spec(model)
    size = image_size_for(spec, scale)
    path = resolve_checkpoint(spec, ckpt, allow_download=allow_download)
    device = pick_device(device)
    feat = size // 16  # RoPE grid of the stride-16 features (sam2 would also recompute it on first use)
    overrides = [f"++model.image_size={size}",
                 f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
                 f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]"]
    with _hydra_search_path(spec), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # random init is drawn here; a checkpoint overwrites all of it
        predictor = build_sam2_video_predictor(spec.config, None, device="cpu", mode="eval",
                                               hydra_overrides_extra=overrides, apply_postprocessing=False)
    predictor.fill_hole_area = 0  # no hole filling on any device (see module docstring)
    if path is not None:
        load_weights(predictor, path)
    set_memory_sigmoid(predictor, scale=sigmoid_scale, bias=sigmoid_bias)
    return predictor.to(device).eval()


@dataclass(frozen=True)
class PredictorSpec:
    """What :func:`build_predictor` is called with, as a value: each inference process of a sharded run
    (:func:`fvos_utils.method.infer.run_split`) builds its own predictor from it on its own device."""

    model: str                          # a MODELS name
    checkpoint: str                     # a weights file, REGISTRY or RANDOM
    scale: float = 1.0                  # image size = scale x the model's base size
    seed: int = 0                       # of RANDOM weights
    sigmoid_scale: float | None = None  # memory-encoder overrides (None: the config's)
    sigmoid_bias: float | None = None

    def build(self, device: str | torch.device | None = None):
        """The ``SAM2VideoPredictor`` on ``pick_device(device)``."""
        return build_predictor(self.model, self.checkpoint, scale=self.scale, device=device, seed=self.seed,
                               sigmoid_scale=self.sigmoid_scale, sigmoid_bias=self.sigmoid_bias)

    @property
    def weights(self) -> str:
        """:func:`weights_label` of the checkpoint: what prediction folders record as the weights."""
        return weights_label(self.checkpoint, seed=self.seed)


def weights_label(ckpt: str | os.PathLike | None, *, seed: int = 0) -> str:
    """How a prediction folder's settings name the weights that made it: the checkpoint's path,
    ``"registry"`` or ``"random (seed N)"``."""
    if ckpt is None or str(ckpt) == REGISTRY:
        return REGISTRY
    if str(ckpt) == RANDOM:
        return f"{RANDOM} (seed {seed})"
    return str(ckpt)


def weights_identity(model: str, label: str) -> str:
    """What a :func:`weights_label` stands for, by content: ``"sha256:<hex>"`` of the checkpoint file it
    names (the registry's file for ``"registry"``), or the label itself for random weights (their seed,
    in the label, decides them). Two runs made the same predictions only if this is the same."""
    if label == RANDOM or label.startswith(f"{RANDOM} (seed "):
        return label
    return f"sha256:{checkpoint_sha256(resolve_checkpoint(get_spec(model), label, allow_download=False))}"


#: the memory-encoder sigmoid ``(scale, bias)`` of every released SAM 2 config: the pair
#: :func:`set_memory_sigmoid` leaves in place (the kit's configs keep it too)
DEFAULT_SIGMOID = (20.0, -10.0)


def set_memory_sigmoid(predictor, *, scale: float | None = None, bias: float | None = None) -> tuple[float, float]:
    """Set the memory encoder's ``sigmoid(logits) * scale + bias`` on a loaded predictor; returns both.

    SAM 2 reads these two attributes on every memory encoding, so they take effect from the next
    ``init_state`` / propagation on: a grid search needs no rebuild. None leaves a value unchanged.
    """
    for name, value in (("sigmoid_scale_for_mem_enc", scale), ("sigmoid_bias_for_mem_enc", bias)):
        if value is not None:
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value!r}")
            setattr(predictor, name, float(value))
    return predictor.sigmoid_scale_for_mem_enc, predictor.sigmoid_bias_for_mem_enc


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write ``{"model": state_dict}`` (the layout SAM 2 loads) atomically. Saved through an open file, so
    the zip's entries carry torch's fixed name (``archive/``), not the temporary file's random one: the same
    weights give the same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save({"model": model.state_dict()}, fh)

"""Synthetic worlds: the kit's embedded default dataset (mini-MOSE, with MOSE's hard cases built in) and
the generic set its small model is pretrained on.

Each video shows textured objects (ellipses, rectangles, polygons, stars, blobs) moving smoothly
(velocity plus small random acceleration, slow rotation and scale drift) over a textured background
that pans. Knobs of :class:`SyntheticConfig` add, where set: object and background textures cropped
from the photographs that scikit-image ships in its wheel (:data:`PHOTOS`, no download; ``p_photo``),
a squash-and-stretch that the texture follows (``max_stretch``), a camera zoom (``max_zoom``), a pause
of an occlusion's crossing pair (``occlusion_hold``) and a held-out test split (``videos_test``).
A video may also hold, each with its own probability:

- a *crowd*: 3-5 objects of one shape family and texture, with a small colour jitter between them;
- an *occlusion*: two objects set on crossing paths, one passing in front of the other (the hidden
  part is missing from the occluded object's ground truth; depth order decides who is in front);
- an *exit-reenter*: an object leaves the frame and comes back;
- *small* objects;
- a *touching* pair: one object's outline follows another's at a 0, 1 or 2 px gap, the gaps that
  the FVOS paper's morphological post-processing closes (its section 2.2);
- an unannotated look-alike *distractor*, drawn behind the annotated objects.

Every annotated object is fully visible in frame 0 (semi-supervised VOS starts from frame-0 masks).
A video's ``tags`` (:data:`TAGS`) are computed from the rendered masks by :func:`compute_tags`, so a
tag is always true of the data, whatever the generator intended.

Layout written by :func:`generate` (MOSE style)::

    DIR/train/JPEGImages/<v>/00000.jpg ...     DIR/train/Annotations/<v>/00000.png ...  (all frames)
    DIR/valid/JPEGImages/<v>/00000.jpg ...     DIR/valid/Annotations/<v>/00000.png      (frame 0 only)
    DIR/valid_gt/Annotations/<v>/00000.png ... (full validation ground truth, for local scoring)
    DIR/test/JPEGImages/<v>/00000.jpg ...      DIR/test/Annotations/<v>/00000.png       (frame 0 only)
    DIR/test_gt/Annotations/<v>/00000.png ...  (the held-out test split's ground truth, kept apart)
    DIR/train/Amodal/<v>/00000.png ...         DIR/valid_gt/Amodal/<v>/00000.png ...  DIR/test_gt/Amodal/...
    DIR/train.txt  DIR/valid.txt  DIR/test.txt  DIR/meta.json

Choices (epoch, sigmoid pair, kernel, scales) are made on ``valid``; ``test`` is for the final numbers
only, as the paper chose on MOSE val and reported MOSE test.

Annotations are DAVIS-palette PNGs (value = object id, 0 background). ``Amodal`` PNGs are 16-bit
grayscale: bit ``k - 1`` is set where object ``k``'s whole shape lies, hidden or not (so at most
16 objects a video); they make occlusion checkable (:func:`read_amodal`).

Command line: ``fvos synthetic --out DIR --seed S [--preset NAME] [--frames MIN MAX]
[--size W H] ... [--overwrite]`` (every :class:`SyntheticConfig` field is an option; ``--help``).
"""
from __future__ import annotations

import argparse
import colorsys
import functools
import itertools
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fvos_utils.base import io, locks, paths
from fvos_utils.base.progress import progress_bar

#: ``generator`` value of a synthetic set's meta.json: the set's identity, kept as sets made before the package
#: had subpackages wrote it (a set is recognised as the kit's by it)
GENERATOR = "fvos_utils.synthetic"
FORMAT_VERSION = 2  # 2: meta.json's config gained the knobs of photo textures, zoom, stretch and the test split
SPLITS = ("train", "valid", "test")
HELD_OUT_SPLITS = ("valid", "test")  # first-frame masks in <split>/, the full ground truth apart in <split>_gt/
TAGS = ("crowd", "occlusion", "exit-reenter", "small", "touching")
MAX_OBJECTS = 16  # the bits of one 16-bit amodal PNG

# What each tag means, measured on the written data (see compute_tags).
CROWD_MIN_OBJECTS = 3          # a crowd: at least this many look-alike objects ...
CROWD_MAX_COLOUR_DISTANCE = 40.0  # ... whose frame-0 mean RGB colours are pairwise this close (0-255 scale)
OCCLUSION_MIN_FRACTION = 0.1   # occluded: another object covers >= this fraction of the object's in-frame shape
SMALL_MAX_FRACTION = 0.004     # small: the object's largest visible area is <= this fraction of the frame
TOUCH_MAX_GAP_PX = 2           # touching: at most this many pixels (Chebyshev) between two objects

FAMILIES = ("ellipse", "rectangle", "polygon", "star", "blob")
PATTERNS = ("noise", "stripes", "spots", "checker")
#: photographs shipped inside scikit-image's wheel (``skimage.data``; no download): natural textures
PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "stereo_motorcycle",
          "text")
_ANGLES = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)  # outline sample angles (object frame)
_TILE = 96          # texture tile side (px); it spans the object's local square [-1, 1]^2
_BOUNCE_SLACK = 0.3  # free objects may leave the frame by this fraction of their radius before bouncing
_TOUCH_SCALE = 0.75  # touching pairs are drawn smaller so that the pair fits in the frame


def _knob(default, doc: str, metavar: str | None = None):
    """A config field whose ``doc`` is both its comment and its command-line help."""
    return field(default=default, metadata={"doc": doc, "metavar": metavar})


@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the generator; the defaults are the mini-MOSE world. Fractions of the "shorter side"
    scale with the frame size. A knob at 0 (a chance, ``max_stretch``, ``max_zoom``, ``occlusion_hold``)
    draws no random numbers, so a set written before the knob existed keeps its bytes."""

    videos_train: int = _knob(96, "videos in train/ (every frame annotated)")
    videos_valid: int = _knob(24, "videos in valid/ (frame-0 masks; full ground truth in valid_gt/): choices")
    videos_test: int = _knob(24, "videos in test/ (frame-0 masks; full ground truth in test_gt/): final numbers")
    frames: tuple[int, int] = _knob((16, 24), "frames per video, inclusive range", "MIN MAX")
    size: tuple[int, int] = _knob((384, 216), "frame width and height in pixels", "W H")
    objects: tuple[int, int] = _knob((2, 6), f"annotated objects per video, inclusive (ids 1..N, N <= {MAX_OBJECTS})",
                                     "MIN MAX")
    object_radius: tuple[float, float] = _knob((0.10, 0.16), "ordinary object radius, fraction of the shorter side",
                                               "MIN MAX")
    small_radius: tuple[float, float] = _knob((0.025, 0.04), "small object radius, fraction of the shorter side",
                                              "MIN MAX")
    p_crowd: float = _knob(0.5, "chance of a crowd: 3-5 objects of one shape family and texture")
    p_occlusion: float = _knob(0.7, "chance that two objects cross, one passing in front of the other")
    p_exit_reenter: float = _knob(0.5, "chance that an object leaves the frame and comes back")
    p_small: float = _knob(0.5, "chance of 1-2 small objects")
    p_touching: float = _knob(0.5, "chance of a pair whose outlines follow each other at a 0-2 px gap")
    p_distractor: float = _knob(0.5, "chance of an unannotated look-alike object behind the annotated ones")
    p_photo: float = _knob(0.5, "chance that an object's texture (and, drawn apart, the background) is a crop of "
                                "one of scikit-image's photographs instead of a procedural pattern")
    occlusion_hold: tuple[int, int] = _knob((2, 8), "frames the crossing pair of an occlusion pauses, overlapping, "
                                                   "inclusive range", "MIN MAX")
    colour_jitter: float = _knob(6.0, "std of the per-channel colour offset of crowd members and look-alikes (0-255)")
    texture_strength: float = _knob(1.0, "contrast of object textures (0: flat colour)")
    background_strength: float = _knob(1.0, "contrast of the background texture (0: flat colour)")
    max_speed: float = _knob(0.02, "object speed limit, fraction of the shorter side per frame "
                                   "(crossing and exiting objects may go faster)")
    acceleration: float = _knob(0.1, "std of the random acceleration, fraction of max_speed per frame")
    pan_speed: float = _knob(0.015, "background panning speed limit, fraction of the shorter side per frame")
    max_scale_change: float = _knob(0.25, "largest relative size change of an object over a video")
    max_rotation: float = _knob(3.0, "rotation speed limit, degrees per frame")
    max_stretch: float = _knob(0.15, "largest squash-and-stretch of an object along its own axis (0.2: x1.2 one way, "
                                    "/1.2 the other); its texture deforms with it")
    max_zoom: float = _knob(0.2, "largest relative camera zoom over a video (the background grows or shrinks)")
    noise_std: float = _knob(2.0, "std of per-pixel sensor noise (0-255)")
    jpeg_quality: int = _knob(92, "JPEG quality of the frames (1-100)")

    def __post_init__(self):
        for f in fields(self):  # JSON / YAML give lists: store tuples, so configs compare and hash
            value = getattr(self, f.name)
            if isinstance(f.default, tuple):
                if not isinstance(value, (tuple, list)) or len(value) != 2:
                    raise ValueError(f"{f.name} must be a pair, got {value!r}")
                object.__setattr__(self, f.name, tuple(type(f.default[0])(v) for v in value))
        problems = []
        if self.videos_train < 1 or self.videos_valid < 1:
            problems.append("videos_train and videos_valid must be >= 1")
        if self.videos_test < 0:
            problems.append(f"videos_test must be >= 0, got {self.videos_test}")
        for name in ("frames", "objects", "object_radius", "small_radius", "occlusion_hold"):
            lo, hi = getattr(self, name)
            if lo > hi:
                problems.append(f"{name}: MIN {lo} > MAX {hi}")
        if self.frames[0] < 2:
            problems.append(f"frames: at least 2 per video, got {self.frames[0]}")
        if min(self.size) < 32:
            problems.append(f"size: width and height must be >= 32 px, got {self.size}")
        if not 1 <= self.objects[0] <= self.objects[1] <= MAX_OBJECTS:
            problems.append(f"objects must lie in 1..{MAX_OBJECTS}, got {self.objects}")
        for name in ("object_radius", "small_radius"):
            lo, hi = getattr(self, name)
            if not (0 < lo and hi <= 0.3):
                problems.append(f"{name} must lie in (0, 0.3], got {(lo, hi)}")
        for f in fields(self):
            if f.name.startswith("p_") and not 0.0 <= getattr(self, f.name) <= 1.0:
                problems.append(f"{f.name} must lie in [0, 1], got {getattr(self, f.name)}")
        for name in ("colour_jitter", "texture_strength", "background_strength", "max_speed", "acceleration",
                     "pan_speed", "max_scale_change", "max_rotation", "noise_std", "max_zoom"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if min(self.occlusion_hold) < 0:
            problems.append(f"occlusion_hold must be >= 0 frames, got {self.occlusion_hold}")
        if not 0.0 <= self.max_stretch <= 0.5:
            problems.append(f"max_stretch must lie in [0, 0.5], got {self.max_stretch}")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality must lie in 1..100, got {self.jpeg_quality}")
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))


PRESETS: dict[str, SyntheticConfig] = {
    # The target world, as MOSE is to SA-V: every hard case of MOSE concentrated (crowds of look-alikes, long
    # occlusions, exits and re-entries, small objects, touching pairs), a train split for fine-tuning, a valid
    # split for every choice and a held-out test split for the final numbers.
    "mini-mose": SyntheticConfig(),
    # The generic world a small SAM 2 learns to track in (as SA-V is to MOSE): object sizes from small to about
    # half the frame, 1-4 objects, the same looks (photograph crops, deforming textures, camera pan and zoom),
    # scale change, and MOSE's hard cases only rarely. Its valid split is the world's own held-out videos.
    "pretrain": SyntheticConfig(videos_train=480, videos_valid=24, videos_test=0, frames=(10, 16), size=(320, 256),
                                objects=(1, 4), object_radius=(0.06, 0.25), max_scale_change=0.5, p_crowd=0.05,
                                p_occlusion=0.15, occlusion_hold=(0, 2), p_exit_reenter=0.05, p_small=0.1,
                                p_touching=0.05, p_distractor=0.1),
}


@dataclass
class SyntheticVideo:
    """One rendered video, in memory."""

    name: str
    frames: np.ndarray   # (T, H, W, 3) uint8 RGB
    labels: np.ndarray   # (T, H, W) uint8 object ids, 0 background
    amodal: np.ndarray   # (T, H, W) uint16, bit k-1 set where object k's whole shape lies (in frame)
    objects: list[dict]  # per object id 1..N: family, texture, radius_px, depth (0 = back), roles
    scenarios: list[str]  # the hard cases the generator set up (the tags say which ones came true)
    distractors: int     # unannotated look-alikes drawn behind the annotated objects

    @property
    def object_ids(self) -> list[int]:
        return [obj["id"] for obj in self.objects]


# ------------------------------------------------------------------------------------------- looks
@dataclass
class _Look:
    family: str
    outline: np.ndarray  # (len(_ANGLES),) float64 radial extent per angle, max 1
    pattern: str         # one of PATTERNS, or "photo"
    tile: np.ndarray     # (_TILE, _TILE, 3) float32 RGB, 0-255 scale


def _value_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth noise ``(h, w) float32``, about 0..1, with features about ``cell`` px wide."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (gw * cell, gh * cell), interpolation=cv2.INTER_CUBIC)[:h, :w]


def _outline(rng: np.random.Generator, family: str) -> np.ndarray:
    """A star-shaped outline: radial extent per angle of :data:`_ANGLES`, ``float64``, max 1, min >= ~0.45."""
    a = _ANGLES
    if family == "ellipse":
        ratio = rng.uniform(0.55, 1.0)
        r = ratio / np.sqrt((ratio * np.cos(a)) ** 2 + np.sin(a) ** 2)
    elif family == "rectangle":
        ratio = rng.uniform(0.5, 1.0)
        r = np.minimum(1.0 / np.maximum(np.abs(np.cos(a)), 1e-9), ratio / np.maximum(np.abs(np.sin(a)), 1e-9))
    elif family == "polygon":
        sides = int(rng.integers(4, 8))
        sector = 2.0 * np.pi / sides
        r = np.cos(sector / 2) / np.cos((a + rng.uniform(0, sector)) % sector - sector / 2)
    elif family == "star":
        points, inner = int(rng.integers(4, 8)), rng.uniform(0.5, 0.75)
        r = inner + (1.0 - inner) * (0.5 + 0.5 * np.cos(points * a + rng.uniform(0, 2 * np.pi))) ** 2
    elif family == "blob":
        r = np.ones_like(a)
        for harmonic in (2, 3, 4):
            r += rng.uniform(0.0, 0.1) * np.cos(harmonic * a + rng.uniform(0, 2 * np.pi))
    else:
        raise ValueError(f"unknown shape family {family!r}; choose from {', '.join(FAMILIES)}")
    return r / r.max()


def _pattern(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A texture pattern on the tile, ``(_TILE, _TILE) float32`` spanning 0..1."""
    pattern = _raw_pattern(rng, kind)
    return (pattern - pattern.min()) / max(float(np.ptp(pattern)), 1e-6)  # every pattern at full contrast


def _raw_pattern(rng: np.random.Generator, kind: str) -> np.ndarray:
    v, u = np.mgrid[0:_TILE, 0:_TILE].astype(np.float32)
    if kind == "noise":  # two octaves, stretched: sums of noise crowd around their mean
        noise = _value_noise(rng, _TILE, _TILE, 12) + _value_noise(rng, _TILE, _TILE, 4)
        return np.clip((noise - noise.mean()) / (4.0 * noise.std()), -0.5, 0.5)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(8.0, 20.0)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (u * np.cos(angle) + v * np.sin(angle)) / period)
    if kind == "spots":
        spots = np.zeros((_TILE, _TILE), np.float32)
        for x, y, radius in zip(rng.integers(0, _TILE, 30), rng.integers(0, _TILE, 30), rng.integers(3, 10, 30)):
            cv2.circle(spots, (int(x), int(y)), int(radius), 1.0, thickness=-1)
        return cv2.GaussianBlur(spots, (0, 0), 1.0)
    if kind == "checker":
        cell = rng.uniform(10.0, 20.0)
        return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}; choose from {', '.join(PATTERNS)}")


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """One of :data:`PHOTOS` as ``(H, W, 3) float32`` RGB, 0-255 scale (grey photographs repeated on 3 channels)."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photograph {name!r}; choose from {', '.join(PHOTOS)}")
    import skimage.data  # imported here: ~0.3 s, and only the photo worlds need it

    image = getattr(skimage.data, name)()
    image = image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity): the left view
    image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    image = image.astype(np.float32)
    image.setflags(write=False)  # cached and shared
    return image


@functools.lru_cache(maxsize=None)
def _is_grey(name: str) -> bool:
    """Whether photograph ``name`` is grey (its three channels equal): such crops get a tint."""
    image = photo(name)
    return bool(np.ptp(image[..., 0] - image[..., 1]) == 0)


def _photo_crop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random crop of a random photograph, resized to ``(h, w, 3) float32`` (0-255): a crop side of 15-60%
    of the photograph's shorter side, mirrored half the time; grey photographs get a random pale tint."""
    name = PHOTOS[int(rng.integers(len(PHOTOS)))]
    image = photo(name)
    side = rng.uniform(0.15, 0.6) * min(image.shape[:2])
    crop_h, crop_w = (side, side * w / h) if h >= w else (side * h / w, side)
    crop_h, crop_w = int(min(crop_h, image.shape[0])), int(min(crop_w, image.shape[1]))
    y0 = int(rng.integers(0, image.shape[0] - crop_h + 1))
    x0 = int(rng.integers(0, image.shape[1] - crop_w + 1))
    crop = image[y0:y0 + crop_h, x0:x0 + crop_w]
    crop = crop[:, ::-1] if rng.random() < 0.5 else crop
    out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA if crop_w > w else cv2.INTER_LINEAR)
    if _is_grey(name):
        out = out * _hsv(rng.random(), rng.uniform(0.1, 0.4), 1.0) / 255.0
    return out.astype(np.float32)


def _hsv(hue: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, sat, val), np.float32) * 255.0


def _make_look(rng: np.random.Generator, hue: float, config: SyntheticConfig) -> _Look:
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    if config.p_photo and rng.random() < config.p_photo:  # a cut-out of a photograph (``hue`` does not apply)
        crop = _photo_crop(rng, _TILE, _TILE)
        mean = crop.mean(axis=(0, 1))
        return _Look(family, _outline(rng, family), "photo", mean + config.texture_strength * (crop - mean))
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    base = _hsv(hue, rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.9))
    # contrast mostly in brightness (the grey axis), tilted by up to 45 degrees towards a random hue
    grey = np.ones(3) / np.sqrt(3)
    hue_axis = rng.normal(size=3)
    hue_axis -= hue_axis.dot(grey) * grey
    tilt = rng.uniform(0.0, np.pi / 4)
    direction = np.cos(tilt) * grey + np.sin(tilt) * hue_axis / np.linalg.norm(hue_axis)
    contrast = (direction * rng.uniform(70.0, 130.0)).astype(np.float32)
    weight = _pattern(rng, kind) - 0.5
    grain = _value_noise(rng, _TILE, _TILE, 3) - 0.5
    tile = base + config.texture_strength * (weight[..., None] * contrast + grain[..., None] * 20.0)
    return _Look(family, _outline(rng, family), kind, tile.astype(np.float32))


def _jittered(rng: np.random.Generator, look: _Look, config: SyntheticConfig) -> _Look:
    """The same look with a small colour offset (a crowd member, a look-alike)."""
    offset = rng.normal(0.0, config.colour_jitter, 3).astype(np.float32)
    return replace(look, tile=look.tile + offset)


def _background(rng: np.random.Generator, h: int, w: int, config: SyntheticConfig) -> np.ndarray:
    """A textured canvas ``(h, w, 3) float32`` (0-255 scale) the frames pan across."""
    strength, short = config.background_strength, min(h, w)
    if config.p_photo and rng.random() < config.p_photo:
        crop = _photo_crop(rng, h, w)
        mean = crop.mean(axis=(0, 1))
        return mean + strength * (crop - mean)
    hue = rng.random()
    first = _hsv(hue, rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8))
    second = _hsv(hue + rng.uniform(0.1, 0.5), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8))
    blend = _value_noise(rng, h, w, max(4, short // 3))[..., None]
    canvas = first + strength * (second - first) * blend
    n_clutter = int(h * w / 1500)
    centres = rng.random((n_clutter, 2)) * (w, h)
    axes = rng.uniform(2.0, 0.06 * short, (n_clutter, 2))
    angles = rng.uniform(0.0, 180.0, n_clutter)
    tones = first + strength * ((second - first) * rng.random((n_clutter, 1)) + rng.normal(0, 30.0, (n_clutter, 3)))
    for centre, axis, angle, tone in zip(centres, axes, angles, tones):
        cv2.ellipse(canvas, (int(centre[0]), int(centre[1])), (int(axis[0]), int(axis[1])), float(angle), 0, 360,
                    tone.tolist(), thickness=-1)
    grain = _value_noise(rng, h, w, 3) - 0.5
    return (canvas + strength * 35.0 * grain[..., None]).astype(np.float32)


# ------------------------------------------------------------------------------------------ motion
@dataclass(eq=False)  # compared and hashed by identity
class _Object:
    look: _Look
    radius: float               # px at scale 1
    roles: list[str] = field(default_factory=list)
    # poses over the video (set by _cast and _stage): centre (T, 2) px (x, y), angle (T,) rad, scale (T,),
    # stretch (T,): factor along the object's own x axis (its inverse along y), 1 on frame 0
    centre: np.ndarray | None = None
    angle: np.ndarray | None = None
    scale: np.ndarray | None = None
    stretch: np.ndarray | None = None
    carve_by: _Object | None = None  # touching follower: its shape stays clear of this object ...
    carve_gap: int = 0               # ... by this many pixels


def _extent(outline: np.ndarray, direction: float) -> float:
    """The outline's radial extent towards ``direction`` (radians, object frame)."""
    return float(np.interp(direction % (2 * np.pi), _ANGLES, outline, period=2 * np.pi))


@dataclass
class _Body:
    """What moves as one: an object, or a touching pair (leader + follower riding on it)."""

    leader: _Object
    follower: _Object | None = None
    offset: np.ndarray | None = None  # follower centre - leader centre at frame 0 and scale 1, leader's frame, px
    wobble: np.ndarray | None = None  # (T,) factor on the offset: the pair's small relative motion

    def radius(self) -> float:
        """Bounding radius around the leader's centre, at scale 1."""
        if self.follower is None:
            return self.leader.radius
        return max(self.leader.radius, float(np.linalg.norm(self.offset)) + self.follower.radius)


def _trajectory(rng: np.random.Generator, start: np.ndarray, velocity: np.ndarray, radius: np.ndarray,
                size: tuple[int, int], *, speed_limit: float, accel: float,
                exit_plan: tuple[int, int, int, int, float] | None = None) -> np.ndarray:
    """Centres ``(T, 2) float64``: velocity + random acceleration, bouncing off the frame's edges.

    ``radius``: ``(T,)`` bounding radius per frame. ``exit_plan`` = (axis, side (-1 low edge, +1 high
    edge), exit frame, return frame, speed): the body moves out across that edge, waits outside, then
    comes back in, after which it moves freely again.
    """
    n = len(radius)
    pos, vel = np.array(start, float), np.array(velocity, float)
    out = np.empty((n, 2))
    out[0] = pos
    scripted = exit_plan is not None
    for t in range(1, n):
        vel += rng.normal(0.0, accel, 2)
        speed = np.linalg.norm(vel)
        if speed > speed_limit:
            vel *= speed_limit / speed
        step = vel.copy()
        if scripted:
            axis, side, t_exit, t_back, exit_speed = exit_plan
            step[axis] = side * exit_speed if t <= t_exit else (0.0 if t <= t_back else -side * exit_speed)
            vel[axis] = step[axis]
        pos += step
        for a in range(2):
            if scripted and a == exit_plan[0]:
                if t > exit_plan[3] and radius[t] <= pos[a] <= size[a] - radius[t]:
                    scripted = False  # back fully inside: free from now on
                continue
            slack = radius[t] * (1.0 - _BOUNCE_SLACK)
            if (pos[a] < slack and vel[a] < 0) or (pos[a] > size[a] - slack and vel[a] > 0):
                vel[a] = -vel[a]
        out[t] = pos
    return out


def _paused(centres: np.ndarray, frame: int, frames: int) -> np.ndarray:
    """``centres (T, 2)`` with the motion paused for ``frames`` frames at ``frame`` (the rest of the path
    follows later; what no longer fits in T frames is dropped)."""
    if frames == 0 or frame >= len(centres) - 1:
        return centres
    held = np.repeat(centres[frame:frame + 1], frames, axis=0)
    return np.concatenate([centres[:frame + 1], held, centres[frame + 1:]])[:len(centres)]


def _place(rng: np.random.Generator, radius: float, size: tuple[int, int], placed: list[tuple[np.ndarray, float]],
           propose) -> np.ndarray | None:
    """A centre from ``propose()`` with the body inside the frame and clear of ``placed``; None if none found."""
    for _ in range(200):
        pos = propose()
        inside = radius <= pos[0] <= size[0] - radius and radius <= pos[1] <= size[1] - radius
        if inside and all(np.linalg.norm(pos - other) >= radius + r + 1.0 for other, r in placed):
            return pos
    return None


# --------------------------------------------------------------------------------------- rendering
def _rotation(angle: float) -> np.ndarray:
    """The ``(2, 2)`` rotation by ``angle`` radians (image axes: x right, y down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _shape_mask(obj: _Object, t: int, shape: tuple[int, int]) -> np.ndarray:
    """Object ``obj``'s whole shape on frame ``t``, ``(H, W) bool``."""
    rho = obj.look.outline * obj.radius * obj.scale[t]
    local = np.stack([rho * np.cos(_ANGLES) * obj.stretch[t], rho * np.sin(_ANGLES) / obj.stretch[t]], axis=1)
    points = obj.centre[t] + local @ _rotation(obj.angle[t]).T
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _paint(image: np.ndarray, obj: _Object, t: int, mask: np.ndarray) -> None:
    """Warp the object's texture tile onto ``image`` ``(H, W, 3) float32`` inside ``mask``."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    half = _TILE / 2
    # tile pixel (u, v) -> frame (x, y) = centre + k R(angle) S (u - half, v - half), shifted to the box,
    # with k the tile's scale and S = diag(stretch, 1 / stretch): the texture deforms with the outline
    linear = (obj.radius * obj.scale[t] / half) * _rotation(obj.angle[t]) @ np.diag([obj.stretch[t], 1 / obj.stretch[t]])
    warp = np.hstack([linear, (obj.centre[t] - linear @ (half, half) - (x0, y0))[:, None]])
    texture = cv2.warpAffine(obj.look.tile, warp, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
    box = mask[y0:y1, x0:x1]
    image[y0:y1, x0:x1][box] = texture[box]


def _random_velocity(rng: np.random.Generator, speed: float) -> np.ndarray:
    heading = rng.uniform(0, 2 * np.pi)
    return rng.uniform(0.3, 1.0) * speed * np.array([np.cos(heading), np.sin(heading)])


def _stretch(rng: np.random.Generator, config: SyntheticConfig, n_frames: int) -> np.ndarray:
    """A squash-and-stretch schedule ``(T,)``: ``(1 + a sin(w t))`` with ``a <= max_stretch``, 1 on frame 0."""
    if not config.max_stretch:
        return np.ones(n_frames)
    amplitude, rate = rng.uniform(0.0, config.max_stretch), rng.uniform(0.1, 0.4)
    return 1.0 + amplitude * np.sin(rate * np.arange(n_frames))


def _cast(rng: np.random.Generator, config: SyntheticConfig, n_objects: int, n_frames: int, *, crowd: bool,
          small: bool, touching: bool) -> list[_Body]:
    """The video's objects (looks, sizes, scale and rotation schedules), grouped into bodies."""
    short = min(config.size)
    # looks: one shared by the crowd, one per other object; hues spread so that the others differ
    n_crowd = min(n_objects, int(rng.integers(CROWD_MIN_OBJECTS, 6))) if crowd else 0
    n_looks = int(crowd) + n_objects - n_crowd
    hues = rng.random() + np.arange(n_looks) / n_looks + rng.uniform(-0.04, 0.04, n_looks)
    looks = [_make_look(rng, hue, config) for hue in hues]
    crowd_radius = rng.uniform(*config.object_radius) * short
    objects = [_Object(_jittered(rng, looks[0], config), crowd_radius * rng.uniform(0.9, 1.1), roles=["crowd"])
               for _ in range(n_crowd)]
    objects += [_Object(look, rng.uniform(*config.object_radius) * short) for look in looks[int(crowd):]]
    if small:
        for i in rng.choice(n_objects, size=min(n_objects, int(rng.integers(1, 3))), replace=False):
            objects[i].radius = rng.uniform(*config.small_radius) * short
            objects[i].roles.append("small")

    frames_axis = np.arange(n_frames)
    for obj in objects:
        obj.radius = max(obj.radius, 3.0)
        rate = rng.uniform(-1.0, 1.0) * np.log1p(config.max_scale_change) / (n_frames - 1)
        obj.scale = np.exp((-abs(rate) if "small" in obj.roles else rate) * frames_axis)  # small ones stay small
        spin = np.deg2rad(rng.uniform(-1.0, 1.0) * config.max_rotation)
        obj.angle = rng.uniform(0, 2 * np.pi) + spin * frames_axis
        obj.stretch = _stretch(rng, config, n_frames)

    bodies = []
    if touching:  # a pair riding together, the follower's outline kept off the leader's by its gap
        leader, follower = (objects[int(i)] for i in rng.choice(n_objects, size=2, replace=False))
        for obj in (leader, follower):
            obj.radius = max(obj.radius * _TOUCH_SCALE, 3.0)
        follower.scale = leader.scale
        follower.carve_by, follower.carve_gap = leader, int(rng.integers(0, TOUCH_MAX_GAP_PX + 1))
        leader.roles.append("touching")
        follower.roles.append(f"touching(gap={follower.carve_gap})")
        direction = rng.uniform(0, 2 * np.pi)  # from leader to follower, frame 0
        # the follower's outline dips 40% of its radius into the leader's, so carving leaves a shared contour
        reach = (_extent(leader.look.outline, direction - leader.angle[0]) * leader.radius
                 + 0.6 * _extent(follower.look.outline, direction + np.pi - follower.angle[0]) * follower.radius)
        local = direction - leader.angle[0]  # the offset in the leader's own frame turns with the leader
        wobble = 1.0 + 0.04 * np.sin(rng.uniform(0.2, 0.6) * frames_axis + rng.uniform(0, 2 * np.pi))
        bodies.append(_Body(leader, follower, reach * np.array([np.cos(local), np.sin(local)]), wobble))
    bodies += [_Body(obj) for obj in objects if not any(obj is b.leader or obj is b.follower for b in bodies)]
    return [bodies[i] for i in rng.permutation(len(bodies))]


def _exit_and_reenter(rng: np.random.Generator, config: SyntheticConfig, body: _Body, n_frames: int,
                      placed: list) -> tuple[np.ndarray, tuple] | None:
    """A start near one edge for ``body`` and its plan to leave the frame and come back (``(axis, side,
    frame it is fully out, frame it comes back, speed out)``), or None where it finds no room."""
    size = config.size
    radius = body.radius()
    # 1.05: a follower's wobble; the stretch may reach further along the object's axis
    reach = radius * float(body.leader.scale.max()) * 1.05 * (1.0 + config.max_stretch)
    axis, side = int(rng.integers(2)), int(rng.choice([-1, 1]))

    def near_edge() -> np.ndarray:
        pos = rng.random(2) * size
        depth = reach + 1.0 + rng.uniform(0, 0.2 * reach)  # fully inside, close to the edge
        pos[axis] = depth if side < 0 else size[axis] - depth
        return pos

    start = _place(rng, reach, size, placed, near_edge)
    if start is None:
        return None
    t_exit = max(1, int(round(rng.uniform(0.25, 0.4) * (n_frames - 1))))
    t_back = min(t_exit + int(rng.integers(1, 4)), n_frames - 2)
    to_edge = start[axis] if side < 0 else size[axis] - start[axis]
    # fully out (centre beyond the edge by its reach) at t_exit, back in after t_back
    return start, (axis, side, t_exit, t_back, (to_edge + reach + 1.0) / t_exit)


def _crossing_pair(rng: np.random.Generator, config: SyntheticConfig, back: _Body, front: _Body, n_frames: int,
                   placed: list, anywhere) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int] | None:
    """Starts for two bodies that head for their midpoint, meet a third to a half of the way in and pass
    each other: ``(start of back, start of front, midpoint, meeting frame, frames paused there)``, or None
    where they find no room."""
    size, short = config.size, min(config.size)
    r_back, r_front = back.radius(), front.radius()
    p_back = _place(rng, r_back, size, placed, anywhere)

    def beside() -> np.ndarray:
        heading = rng.uniform(0, 2 * np.pi)
        distance = r_back + r_front + 2.0 + rng.uniform(0, 0.3 * short)
        return p_back + distance * np.array([np.cos(heading), np.sin(heading)])

    p_front = None if p_back is None else _place(rng, r_front, size, placed + [(p_back, r_back)], beside)
    if p_front is None:
        return None
    t_meet = max(1, int(round(rng.uniform(0.35, 0.6) * (n_frames - 1))))
    hold = int(rng.integers(config.occlusion_hold[0], config.occlusion_hold[1] + 1)) if any(config.occlusion_hold) else 0
    return p_back, p_front, (p_back + p_front) / 2, t_meet, hold


def _stage(rng: np.random.Generator, config: SyntheticConfig, bodies: list[_Body], n_frames: int, *,
           exit_reenter: bool, occlusion: bool) -> tuple[list[_Body], list[str]]:
    """Place the bodies on frame 0 and move them; returns the bodies that found room and the scenarios set up.

    On frame 0 every body is fully inside the frame and clear of the others. The first body may be
    sent out of the frame and back (exit-reenter), the next two on crossing paths (occlusion).
    """
    size, short = config.size, min(config.size)
    vmax = config.max_speed * short
    placed: list[tuple[np.ndarray, float]] = []
    starts: dict[int, np.ndarray] = {}
    velocities: dict[int, np.ndarray] = {}
    plans: dict[int, tuple] = {}
    holds: dict[int, tuple[int, int]] = {}  # body -> (meeting frame, frames paused there): the crossing pair
    scenarios = []

    def anywhere() -> np.ndarray:
        return rng.random(2) * size

    if exit_reenter:
        found = _exit_and_reenter(rng, config, bodies[0], n_frames, placed)
        if found is not None:
            start, plans[0] = found
            placed.append((start, bodies[0].radius()))
            starts[0], velocities[0] = start, _random_velocity(rng, vmax)
            bodies[0].leader.roles.append("exit-reenter")
            scenarios.append("exit-reenter")
    if occlusion and len(bodies) - len(starts) >= 2:
        back, front = len(starts), len(starts) + 1
        found = _crossing_pair(rng, config, bodies[back], bodies[front], n_frames, placed, anywhere)
        if found is not None:
            p_back, p_front, middle, t_meet, hold = found
            placed += [(p_back, bodies[back].radius()), (p_front, bodies[front].radius())]
            for b, p in ((back, p_back), (front, p_front)):
                starts[b], velocities[b] = p, (middle - p) / t_meet
                holds[b] = (t_meet, hold)
            bodies[back].leader.roles.append("occluded")
            bodies[front].leader.roles.append("occluder")
            scenarios.append("occlusion")
    for b, body in enumerate(bodies):
        if b not in starts:
            pos = _place(rng, body.radius(), size, placed, anywhere)
            if pos is not None:  # a body that finds no room is left out
                placed.append((pos, body.radius()))
                starts[b], velocities[b] = pos, _random_velocity(rng, vmax)

    kept = [body for b, body in enumerate(bodies) if b in starts]
    for b, body in enumerate(bodies):
        if b not in starts:
            continue
        body.leader.centre = _trajectory(rng, starts[b], velocities[b], body.radius() * body.leader.scale, size,
                                         speed_limit=max(vmax, float(np.linalg.norm(velocities[b]))),
                                         accel=config.acceleration * vmax, exit_plan=plans.get(b))
        if b in holds:
            body.leader.centre = _paused(body.leader.centre, *holds[b])
        if body.follower is not None:
            turn = body.leader.angle - body.leader.angle[0]
            heading = np.arctan2(body.offset[1], body.offset[0]) + body.leader.angle
            reach = np.linalg.norm(body.offset) * body.leader.scale * body.wobble
            body.follower.centre = body.leader.centre + reach[:, None] * np.stack([np.cos(heading), np.sin(heading)], 1)
            body.follower.angle = body.follower.angle[0] + turn
            scenarios.append("touching")
    return kept, scenarios


def _render(rng: np.random.Generator, config: SyntheticConfig, n_frames: int, depth_order: list[_Object],
            ids: dict[_Object, int], behind: list[_Object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the frames over a panning background: ``frames (T, H, W, 3) uint8``, ``labels (T, H, W) uint8``,
    ``amodal (T, H, W) uint16``. ``depth_order``: annotated objects, back to front; ``behind``: unannotated
    objects drawn under them."""
    width, height = config.size
    pan = config.pan_speed * min(width, height)
    # the canvas covers the longest possible pan, and the view zoomed out by 1 + max_zoom
    margin = int(np.ceil(pan * (n_frames - 1) + max(width, height) / 2 * config.max_zoom)) + 2
    canvas = _background(rng, height + 2 * margin, width + 2 * margin, config)
    offsets = _trajectory(rng, np.full(2, margin), _random_velocity(rng, pan), np.zeros(n_frames),
                          (2 * margin, 2 * margin), speed_limit=pan, accel=0.1 * pan)
    zoom_rate = rng.uniform(-1.0, 1.0) * np.log1p(config.max_zoom) / max(n_frames - 1, 1) if config.max_zoom else 0.0
    zoom = np.exp(zoom_rate * np.arange(n_frames))  # > 1: the camera zooms in

    frames = np.empty((n_frames, height, width, 3), np.uint8)
    labels = np.zeros((n_frames, height, width), np.uint8)
    amodal = np.zeros((n_frames, height, width), np.uint16)
    for t in range(n_frames):
        # frame (x, y) shows canvas point offset + view centre + ((x, y) - view centre) / zoom
        view_centre = np.array([width, height]) / 2
        frame_to_canvas = np.hstack([np.eye(2) / zoom[t], (offsets[t] + view_centre * (1 - 1 / zoom[t]))[:, None]])
        image = cv2.warpAffine(canvas, frame_to_canvas, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT_101)
        shapes = {obj: _shape_mask(obj, t, (height, width)) for obj in behind + depth_order}
        for obj in depth_order:
            if obj.carve_by is not None:
                keep_out = shapes[obj.carve_by].astype(np.uint8)
                if obj.carve_gap:
                    keep_out = cv2.dilate(keep_out, np.ones((2 * obj.carve_gap + 1,) * 2, np.uint8))
                shapes[obj] &= keep_out == 0
        for obj in behind + depth_order:
            _paint(image, obj, t, shapes[obj])
        for obj in depth_order:
            labels[t][shapes[obj]] = ids[obj]
            amodal[t] |= shapes[obj].astype(np.uint16) << (ids[obj] - 1)
        if config.noise_std:
            image += rng.standard_normal(image.shape, dtype=np.float32) * config.noise_std
        frames[t] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames, labels, amodal


def render_video(config: SyntheticConfig, *, seed: int, split: str, index: int) -> SyntheticVideo:
    """Render video ``index`` of ``split``; it depends only on ``(config, seed, split, index)``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    n_frames = int(rng.integers(config.frames[0], config.frames[1] + 1))
    n_objects = int(rng.integers(config.objects[0], config.objects[1] + 1))
    chance = dict(zip(("crowd", "occlusion", "exit-reenter", "small", "touching", "distractor"), rng.random(6)))
    crowd = chance["crowd"] < config.p_crowd and config.objects[1] >= CROWD_MIN_OBJECTS
    if crowd:
        n_objects = max(n_objects, CROWD_MIN_OBJECTS)
    bodies = _cast(rng, config, n_objects, n_frames, crowd=crowd, small=chance["small"] < config.p_small,
                   touching=chance["touching"] < config.p_touching and n_objects >= 2)
    kept, scenarios = _stage(rng, config, bodies, n_frames, occlusion=chance["occlusion"] < config.p_occlusion,
                             exit_reenter=chance["exit-reenter"] < config.p_exit_reenter and n_frames >= 6)
    annotated = [obj for body in kept for obj in (body.leader, body.follower) if obj is not None]
    if sum("crowd" in obj.roles for obj in annotated) >= CROWD_MIN_OBJECTS:
        scenarios.append("crowd")
    if any("small" in obj.roles for obj in annotated):
        scenarios.append("small")

    # ids 1..N in random order; depth random, but the occluder in front of the occluded object
    ids = {obj: i + 1 for i, obj in enumerate(annotated[j] for j in rng.permutation(len(annotated)))}
    depth_order = [annotated[j] for j in rng.permutation(len(annotated))]
    roles = [next((r for r in obj.roles if r in ("occluded", "occluder")), "") for obj in depth_order]
    if "occluder" in roles and roles.index("occluder") < roles.index("occluded"):
        i, j = roles.index("occluder"), roles.index("occluded")
        depth_order[i], depth_order[j] = depth_order[j], depth_order[i]

    behind = []  # an unannotated look-alike of one annotated object, under all of them
    if chance["distractor"] < config.p_distractor:
        model = annotated[int(rng.integers(len(annotated)))]
        twin = _Object(_jittered(rng, model.look, config), model.radius * rng.uniform(0.9, 1.1))
        twin.scale = np.ones(n_frames)
        spin = np.deg2rad(rng.uniform(-1, 1) * config.max_rotation)
        twin.angle = rng.uniform(0, 2 * np.pi) + spin * np.arange(n_frames)
        twin.stretch = _stretch(rng, config, n_frames)
        vmax = config.max_speed * min(config.size)
        twin.centre = _trajectory(rng, rng.random(2) * config.size, _random_velocity(rng, vmax),
                                  np.full(n_frames, twin.radius), config.size, speed_limit=vmax,
                                  accel=config.acceleration * vmax)
        behind.append(twin)

    frames, labels, amodal = _render(rng, config, n_frames, depth_order, ids, behind)
    depth_of = {obj: d for d, obj in enumerate(depth_order)}
    described = sorted(({"id": ids[obj], "family": obj.look.family, "texture": obj.look.pattern,
                         "radius_px": round(float(obj.radius), 1), "depth": depth_of[obj], "roles": obj.roles}
                        for obj in annotated), key=lambda d: d["id"])
    return SyntheticVideo(f"syn_{split}_{index:04d}", frames, labels, amodal, described,
                          [tag for tag in TAGS if tag in scenarios], len(behind))


# -------------------------------------------------------------------------------------------- tags
def compute_tags(labels: np.ndarray, amodal: np.ndarray, frame0: np.ndarray, n_objects: int) -> list[str]:
    """The hard cases a video really has, measured on its masks (in :data:`TAGS` order).

    Args:
        labels: ``(T, H, W) uint8`` visible object ids (the annotations).
        amodal: ``(T, H, W) uint16`` whole shapes, bit ``k - 1`` for object ``k``.
        frame0: ``(H, W, 3) uint8`` frame 0 as written (decoded JPEG), for the crowd's colours.
        n_objects: N; the ids are 1..N.

    A tag is set when: crowd, >= :data:`CROWD_MIN_OBJECTS` objects' frame-0 mean colours are pairwise
    within :data:`CROWD_MAX_COLOUR_DISTANCE`; occlusion, on some frame other objects cover >=
    :data:`OCCLUSION_MIN_FRACTION` of an object's in-frame shape; exit-reenter, an object is absent
    (area 0) on a frame after frame 0 and present again later; small, an object's largest visible
    area is <= :data:`SMALL_MAX_FRACTION` of the frame; touching, on some frame two objects are at
    most :data:`TOUCH_MAX_GAP_PX` pixels apart (Chebyshev; 0 = adjacent pixels).
    """
    n_frames, height, width = labels.shape
    ids = range(1, n_objects + 1)
    visible = [labels == k for k in ids]  # each (T, H, W) bool
    areas = np.array([v.sum(axis=(1, 2)) for v in visible])  # (N, T)
    tags = []

    means = [frame0[v[0]].astype(np.float64).mean(axis=0) if v[0].any() else np.full(3, np.nan) for v in visible]
    close = [[np.linalg.norm(a - b) <= CROWD_MAX_COLOUR_DISTANCE for b in means] for a in means]
    if any(all(close[i][j] for i, j in itertools.combinations(group, 2))
           for group in itertools.combinations(range(n_objects), CROWD_MIN_OBJECTS)):
        tags.append("crowd")

    for k in ids:
        whole = (amodal >> (k - 1)) & 1 == 1
        covered = (whole & (labels != 0) & (labels != k)).sum(axis=(1, 2))
        if np.any((covered > 0) & (covered >= OCCLUSION_MIN_FRACTION * whole.sum(axis=(1, 2)))):
            tags.append("occlusion")
            break

    for area in areas:
        gone = np.flatnonzero(area[1:] == 0) + 1
        if len(gone) and np.any(area[gone[0]:] > 0):
            tags.append("exit-reenter")
            break

    if np.any(areas.max(axis=1) <= SMALL_MAX_FRACTION * height * width):
        tags.append("small")

    kernel = np.ones((2 * TOUCH_MAX_GAP_PX + 3,) * 2, np.uint8)  # reach gap + 1 pixels each way
    near = [[cv2.dilate(v[t].astype(np.uint8), kernel).astype(bool) for t in range(n_frames)] for v in visible]
    if any(np.any(near[i][t] & visible[j][t]) for i, j in itertools.combinations(range(n_objects), 2)
           for t in range(n_frames)):
        tags.append("touching")
    return tags


# ------------------------------------------------------------------------------------------ output
def read_amodal(path: str | os.PathLike) -> np.ndarray:
    """An amodal PNG as ``(H, W) uint16`` (bit ``k - 1`` = object ``k``'s whole shape)."""
    path = Path(path)
    if not path.is_file():
        raise io.DataError(path, "file not found")
    try:
        with Image.open(path) as img:
            mode, bits = img.mode, np.asarray(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise io.DataError(path, f"unreadable or truncated image ({err})") from None
    if mode not in ("I;16", "I"):
        raise io.DataError(path, f"amodal mask has image mode {mode!r}; expected 16-bit grayscale")
    return bits.astype(np.uint16)


def _write_amodal(path: Path, bits: np.ndarray) -> None:
    with io.atomic_path(path) as tmp:
        Image.fromarray(bits.astype(np.uint16)).save(tmp, format="PNG")


def _write_video(root: Path, video: SyntheticVideo, split: str, config: SyntheticConfig) -> dict:
    """Write one video's files under the dataset folder ``root``; returns its meta.json entry."""
    images = root / split / "JPEGImages" / video.name
    truth = root / (f"{split}_gt" if split in HELD_OUT_SPLITS else split)
    for t, (frame, label, bits) in enumerate(zip(video.frames, video.labels, video.amodal)):
        name = f"{t:05d}"
        io.write_frame(images / f"{name}.jpg", frame, quality=config.jpeg_quality)
        io.write_mask(truth / "Annotations" / video.name / f"{name}.png", label)
        _write_amodal(truth / "Amodal" / video.name / f"{name}.png", bits)
    if split in HELD_OUT_SPLITS:  # MOSE's valid and test splits give the first frame's masks only
        io.write_mask(root / split / "Annotations" / video.name / "00000.png", video.labels[0])
    tags = compute_tags(video.labels, video.amodal, io.read_frame(images / "00000.jpg"), len(video.objects))
    height, width = video.labels.shape[1:]
    return {"split": split, "frames": len(video.frames), "size": [width, height], "object_ids": video.object_ids,
            "tags": tags, "scenarios": video.scenarios, "distractors": video.distractors, "objects": video.objects}


def _check_replaceable(out: Path) -> None:
    """Refuse to replace anything but an empty folder or a dataset this generator wrote."""
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; refusing to replace it")
    if not any(out.iterdir()):
        return
    try:
        ours = io.read_json(out / "meta.json").get("generator") == GENERATOR
    except (io.DataError, AttributeError):
        ours = False
    if not ours:
        raise FileExistsError(f"{out}: exists and is not a dataset written by {GENERATOR} (no meta.json of ours); "
                              "refusing to replace it")


def generate(out_dir: str | os.PathLike, *, seed: int = 0, config: SyntheticConfig | None = None,
             overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthetic MOSE-layout dataset to ``out_dir`` (relative paths: from the project root).

    The folder appears complete or not at all. The same ``(seed, config)`` gives the same bytes;
    each video is seeded from ``(seed, split, index)``, so changing a video count keeps the others.
    With ``overwrite`` an existing dataset of this generator (or an empty folder) is replaced.
    Returns the dataset folder.
    """
    config = config if config is not None else SyntheticConfig()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = paths.resolve(out_dir)
    with locks.exclusive(out):  # one writer: a second generator into the same folder is refused, not merged
        return _generate(out, seed=int(seed), config=config, overwrite=overwrite, progress=progress)


def _generate(out: Path, *, seed: int, config: SyntheticConfig, overwrite: bool, progress: bool) -> Path:
    """:func:`generate`'s work, holding the lock of ``out``."""
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
        _check_replaceable(out)
    counts = (config.videos_train, config.videos_valid, config.videos_test)
    jobs = [(split, i) for split, count in zip(SPLITS, counts) for i in range(count)]
    videos = {}
    with io.atomic_dir(out, overwrite=overwrite) as tmp:
        for split, index in progress_bar(jobs, desc="synthetic videos", unit="video", show=progress):
            video = render_video(config, seed=seed, split=split, index=index)
            videos[video.name] = _write_video(tmp, video, split, config)
        for split, count in zip(SPLITS, counts):
            if count:  # no test/ files at all for a set without a test split
                io.write_list_file(tmp / f"{split}.txt", [name for name, v in videos.items() if v["split"] == split])
        io.write_json(tmp / "meta.json", {"generator": GENERATOR, "format_version": FORMAT_VERSION,
                                          "seed": seed, "config": asdict(config), "tags": list(TAGS),
                                          "videos": videos})
    return out


def ensure(out_dir: str | os.PathLike, *, seed: int = 0, preset: str = "mini-mose",
           config: SyntheticConfig | None = None, any_config: bool = False) -> Path:
    """The dataset for ``(seed, config)`` at ``out_dir``: reused when its ``meta.json`` matches; generated
    when the folder is missing or empty, or holds a set of an older ``FORMAT_VERSION``. ``config``
    defaults to ``PRESETS[preset]``. What notebooks call instead of ``generate``.

    With ``any_config`` an existing set of ``seed`` is used as it is, whatever its configuration (a quick
    check on a tiny set made with ``--videos-*``, ``--frames`` or ``--size``): ``config`` then only says
    what to generate where there is none. The chapters pass it, and record the set's configuration.

    Raises:
        DataError: the folder holds a set of another seed, or (without ``any_config``) configuration.
            Other runs may be reading it, so it is not rewritten under them; the message says what it
            holds and what was asked.
    """
    if config is None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")
        config = PRESETS[preset]
    out = paths.resolve(out_dir)
    if (out / "meta.json").is_file():
        meta = io.read_json(out / "meta.json")
        if meta.get("generator") == GENERATOR and meta.get("format_version") == FORMAT_VERSION:
            asked = _json_config(config)
            if meta.get("seed") == seed and (any_config or meta.get("config") == asked):
                return out
            raise io.DataError(out, f"holds the synthetic set of {_describe(meta.get('seed'), meta.get('config'))}; "
                                    f"asked for {_describe(seed, asked)}. A dataset folder holds one set: give "
                                    "this one another data_root, or delete the folder to regenerate it")
    return generate(out, seed=seed, config=config, overwrite=out.exists())


def _json_config(config: SyntheticConfig) -> dict:
    """``config`` as meta.json stores it (pairs as lists)."""
    return json.loads(json.dumps(asdict(config)))


def _describe(seed, config: dict) -> str:
    """``seed 0, preset mini-mose`` or, for a changed preset, ``seed 0, preset pretrain with frames=[10, 16]``
    (the preset with the fewest changes)."""
    def changes(name: str) -> dict:
        base = _json_config(PRESETS[name])
        return {key: value for key, value in config.items() if base.get(key) != value}

    closest = min(PRESETS, key=lambda name: len(changes(name)))
    changed = ", ".join(f"{key}={value}" for key, value in changes(closest).items())
    return f"seed {seed}, preset {closest}" + (f" with {changed}" if changed else "")


def _image_split(split: str) -> str:
    """The split whose frames a ground-truth folder annotates: ``valid_gt`` -> ``valid``, ``test_gt`` -> ``test``."""
    held_out = split.removesuffix("_gt")
    return held_out if held_out in HELD_OUT_SPLITS else split


def hard_case_examples(dataset: str | os.PathLike, *, split: str = "valid_gt") -> list[tuple[str, str]]:
    """``[(tag, video)]``: for each tag in :data:`TAGS` order, the first video of ``split`` carrying it
    (``valid_gt`` means the valid videos), preferring videos not already picked for another tag."""
    meta = io.read_json(Path(dataset) / "meta.json")
    wanted = _image_split(split)
    names = [n for n, v in meta["videos"].items() if v["split"] == wanted]
    picked: list[tuple[str, str]] = []
    for tag in TAGS:
        carriers = [n for n in names if tag in meta["videos"][n]["tags"]]
        fresh = [n for n in carriers if n not in {v for _, v in picked}]
        if carriers:
            picked.append((tag, (fresh or carriers)[0]))
    return picked


def load_video(dataset: str | os.PathLike, video: str, *, split: str = "valid_gt") -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames and masks of one video: ``[(rgb (H, W, 3) uint8, labels (H, W) uint8)]`` per frame.

    ``split="valid_gt"`` pairs ``valid/JPEGImages`` with the kept-apart full ground truth (``test_gt``: ``test``).
    """
    dataset = Path(dataset)
    image_split = _image_split(split)
    frames = sorted((dataset / image_split / "JPEGImages" / video).glob("*.jpg"))
    if not frames:
        raise io.DataError(dataset / image_split / "JPEGImages" / video, "video has no frames (.jpg)")
    masks = dataset / split / "Annotations" / video
    return [(io.read_frame(f), io.read_mask(masks / f"{f.stem}.png")) for f in frames]


# --------------------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fvos synthetic",
                                     description="Write a synthetic MOSE-layout dataset with MOSE's hard cases.")
    parser.add_argument("--out", required=True, help="dataset folder to create (relative: from the current directory)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="mini-mose",
                        help="starting configuration; the options below override it (default mini-mose)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of this generator")
    for f in fields(SyntheticConfig):
        pair = isinstance(f.default, tuple)
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            type=type(f.default[0] if pair else f.default), nargs=2 if pair else None,
                            metavar=tuple(f.metadata["metavar"].split()) if pair else None,
                            help=f.metadata["doc"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(SyntheticConfig) if getattr(args, f.name) is not None}
    try:
        config = replace(PRESETS[args.preset], **overrides)
        out = generate(Path(args.out).absolute(), seed=args.seed, config=config, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        parser.error(str(err))
    print(out)
    return 0

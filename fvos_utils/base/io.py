"""Data layer: DAVIS / YouTube-VOS / MOSE folder layouts, palette masks, atomic writes, splits.

Layout of one split (what the kit calls a *split root*)::

    ROOT/JPEGImages/<video>/<frame>.jpg
    ROOT/Annotations/<video>/<frame>.png   # palette PNG, value = object id, 0 background, 255 void

MOSE keeps its splits in sub-folders (``MOSE/train/``, ``MOSE/valid/``; ``valid`` holds first-frame
annotations only); :func:`split_root` finds either form.

Every reader raises :class:`DataError` naming the offending file; every writer writes to a temporary
name in the same folder and renames it into place, so a killed process never leaves half a file.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import yaml
from PIL import Image

from fvos_utils.base.paths import is_plain_name

FRAME_EXTS = (".jpg", ".jpeg", ".png")
VOID_LABEL = 255
MAX_OBJECT_ID = 254


class DataError(ValueError):
    """Bad input data. The message starts with the offending path and says what is wrong."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # so that it crosses process boundaries (worker pools) intact
        return type(self), (self.path, self.problem)


# ----------------------------------------------------------------------------------------- palette
def davis_palette() -> np.ndarray:
    """The standard DAVIS (= PASCAL VOC) palette, ``(256, 3) uint8``: id 1 dark red, 2 green, ..."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):  # spread the index's bits over the three channels, high bits first
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


_PALETTE_BYTES = davis_palette().tobytes()


# ----------------------------------------------------------------------------------- atomic writes
def _umask() -> int:
    """The process's umask. Reading it means setting it: the most private mask stands for that instant,
    so a file another thread creates meanwhile is never more open than its user asked for."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _temporary_prefix(name: str) -> str:
    """The start of a temporary name beside ``name``: ``.<name>.``, the name cut to 128 bytes so that
    the random part and suffixes added to it keep within the file systems' 255 bytes a name (a legal
    230-character video name made its record's temporary name too long)."""
    return f".{name.encode()[:128].decode(errors='ignore')}."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions a plain ``open()`` gives under the current umask (mkstemp makes it
    private, and others on a shared machine could not read the result).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path.name), suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    With ``overwrite=False`` an existing ``path`` is an error; with True it is replaced. The folder gets
    the permissions a plain ``os.mkdir()`` gives under the current umask (mkdtemp makes it private).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        remove_dir(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file that stands where a folder above ``path`` must be (its nearest existing parent, when that
    is not a folder), or None: output paths are checked with it before long work starts."""
    nearest = next((p for p in Path(path).parents if p.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


def remove_leftovers(path: str | os.PathLike) -> None:
    """Delete what a killed writer of ``path`` left beside it: the temporaries of :func:`atomic_dir`,
    :func:`atomic_path` and :func:`remove_dir` for that name (``.<name>.<8 random>.tmp[.<ext>]``,
    ``.removing``), nothing else. Call it only while holding ``path``'s lock (:mod:`fvos_utils.base.locks`),
    when no other writer's temporaries can be there."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    leftover = re.compile(re.escape(_temporary_prefix(path.name)) + r"[a-z0-9_]{8}\.(tmp(\.[^.]+)?|removing)")
    for entry in path.parent.iterdir():
        if leftover.fullmatch(entry.name):
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except PermissionError:  # another user's, in a shared folder: not ours to delete; its name never collides
                continue


def remove_dir(path: str | os.PathLike) -> None:
    """Delete a folder as one step: it is renamed aside first, so a run killed while deleting leaves it
    whole or gone, never half there (a missing folder is fine)."""
    path = Path(path)
    if not path.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path.name), suffix=".removing", dir=path.parent))
    os.replace(path, aside)  # onto the new empty folder: an atomic rename on POSIX
    shutil.rmtree(aside)


class _ParamsLoader(yaml.SafeLoader):
    """YAML as a params file may hold it: no aliases (``*name``: a few lines of them expand to gigabytes, and a
    params file has no need of them) and no key given twice in one mapping (the last would win silently)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"an alias (*{event.anchor}): params files may not repeat "
                                              "values by reference; write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice in one mapping",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str):
    """``text`` read as YAML the way params files are (:class:`_ParamsLoader`); yaml.YAMLError otherwise."""
    return yaml.load(text, Loader=_ParamsLoader)  # noqa: S506 (a SafeLoader)


def read_yaml(path: str | os.PathLike):
    """A params file's YAML (:func:`load_yaml`); a DataError naming ``path`` when it is not UTF-8 text or not
    such YAML."""
    path = Path(path)
    try:
        return load_yaml(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text (byte {err.start}: {err.reason})") from None
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML ({' '.join(str(err).split())})") from None


def write_json(path: str | os.PathLike, obj, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically (keys in insertion order, a trailing newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent) + "\n")


def read_json(path: str | os.PathLike):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    except UnicodeDecodeError:  # a PNG given for a JSON file: the bare message named no file
        raise DataError(path, "not a JSON file (not UTF-8 text)") from None


# ------------------------------------------------------------------------------------ masks, frames
def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        img = Image.open(path)
        img.load()  # decode now, so a truncated file fails here and not later
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(path, f"unreadable or truncated image ({err})") from None
    return img


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A label mask as ``(H, W) uint8`` palette indices (object ids; 0 background, 255 void).

    Accepts palette (``P``), grayscale (``L``) and 1-bit PNGs. An RGB(A) annotation is an error:
    colours are not ids, and guessing the palette silently corrupts object ids.
    """
    path = Path(path)
    img = _open_image(path)
    if img.mode in ("P", "L"):
        return np.asarray(img, dtype=np.uint8)
    if img.mode == "1":
        return np.asarray(img, dtype=np.uint8)
    raise DataError(
        path,
        f"annotation has image mode {img.mode!r}; expected a palette ('P') or grayscale ('L') PNG "
        "whose pixel values are object ids (convert RGB masks to ids with the DAVIS palette first)",
    )


def mask_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(path, f"unreadable image ({err})") from None
    return h, w


def write_mask(path: str | os.PathLike, labels: np.ndarray, *, allow_void: bool = False) -> None:
    """Write an ``(H, W)`` integer label map as a DAVIS-palette PNG, atomically.

    Ids must lie in 0..254 (255 is the void label, written only with ``allow_void=True``).
    """
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise DataError(path, f"label map must be 2-D (H, W), got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(path, f"label map must hold integer ids, got dtype {labels.dtype}")
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        top = VOID_LABEL if allow_void else MAX_OBJECT_ID
        if lo < 0 or hi > top:
            raise DataError(path, f"label values must lie in 0..{top}, got {lo}..{hi}")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(_PALETTE_BYTES)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=False)


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """A video frame as ``(H, W, 3) uint8`` RGB."""
    img = _open_image(Path(path))
    return np.asarray(img.convert("RGB"))


def write_frame(path: str | os.PathLike, rgb: np.ndarray, *, quality: int = 92) -> None:
    """Write an ``(H, W, 3) uint8`` RGB frame (JPEG for .jpg/.jpeg, else by suffix), atomically."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DataError(path, f"frame must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    img = Image.fromarray(rgb, mode="RGB")
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
    with atomic_path(path) as tmp:
        if fmt == "JPEG":
            # fixed settings, no EXIF/time stamps: the same pixels give the same bytes
            img.save(tmp, format="JPEG", quality=quality, subsampling=0, optimize=False)
        else:
            img.save(tmp, format=path.suffix.lstrip(".").upper() or "PNG")


# ------------------------------------------------------------------------------------------ layout
def split_root(root: str | os.PathLike, split: str | None = None) -> Path:
    """The folder holding ``JPEGImages/`` for ``split`` of the dataset at ``root``.

    ``root`` may be a split root itself (DAVIS style) or hold split folders (MOSE: ``train``, ``valid``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    if split and (root / split / "JPEGImages").is_dir():
        return root / split
    if (root / "JPEGImages").is_dir():
        return root
    found = sorted(p.name for p in root.iterdir() if (p / "JPEGImages").is_dir())
    want = f"'{split}/JPEGImages/'" if split else "'JPEGImages/'"
    raise DataError(root, f"no {want} folder here (split folders found: {found or 'none'})")


def frame_files(folder: Path, exts: Sequence[str] = (".png",)) -> list[Path]:
    """The frames of one video: files of ``folder`` with one of ``exts``, sorted by name, hidden files left
    out ([] if no folder).

    Frames are told apart by name only, so two files for one name (``00002.jpg`` and ``00002.png``) and a
    name unlike the others (``thumbnail.png`` among ``00000.png ...``, which would sort last and shift the
    frames scored) are errors: names follow the pattern (digits in the same places) most of them share.
    """
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and not p.name.startswith("."))
    by_name: dict[str, Path] = {}
    for path in files:
        if not path.is_file():  # a device, FIFO or socket (or a link to one): reading it never ends, or hangs
            raise DataError(path, "not a regular file (a device, FIFO, socket or folder, or a link to one); a frame "
                                  "or mask must be an image file")
        if path.stem in by_name:
            raise DataError(path, f"two files for frame {path.stem} ({by_name[path.stem].name} and {path.name}); "
                                  "keep one")
        by_name[path.stem] = path
    patterns = Counter(_name_pattern(p.stem) for p in files)
    if len(patterns) > 1:
        common = patterns.most_common(1)[0][0]
        example = next(p for p in files if _name_pattern(p.stem) == common)
        odd = next(p for p in files if _name_pattern(p.stem) != common)
        raise DataError(odd, f"frame name {odd.stem!r} does not follow the pattern {common!r} of the other "
                             f"frames (# a digit; as in {example.name}): rename or remove the file")
    return files


def _name_pattern(stem: str) -> str:
    """``stem`` with each digit replaced by ``#``: ``00017`` -> ``#####``."""
    return re.sub(r"[0-9]", "#", stem)


def video_folders(folder: Path) -> list[str]:
    """Names of the video folders in ``folder``, sorted, hidden ones (temporaries) left out.

    A symbolic link to a missing folder (a hold-out view whose dataset moved) is an error naming it,
    not a video silently dropped.
    """
    names = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() and not path.exists():
            raise DataError(path, f"symbolic link to a missing folder ({os.readlink(path)})")
        if path.is_dir():
            names.append(path.name)
    return names


@dataclass
class Video:
    """One video of a split: its frames in name order and whichever annotations exist."""

    name: str
    frames: list[Path]
    annotations: dict[str, Path] = field(default_factory=dict)  # frame stem -> PNG path

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.frames]

    def __len__(self) -> int:
        return len(self.frames)


class VOSDataset:
    """One split in DAVIS / YouTube-VOS / MOSE layout.

    Args:
        root: the dataset folder (a split root, or one that holds split folders).
        split: the split folder name when ``root`` holds several (``train``, ``valid``).
        annotations_dir: the annotation folder's name, ``Annotations`` by default.
        videos: restrict to these videos; each must exist (checked by :meth:`video_names`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        *,
        annotations_dir: str = "Annotations",
        videos: Sequence[str] | None = None,
    ):
        self.root = split_root(root, split)
        self.image_dir = self.root / "JPEGImages"
        self.annotation_dir = self.root / annotations_dir
        self._subset = list(videos) if videos is not None else None

    def video_names(self) -> list[str]:
        present = video_folders(self.image_dir)
        if self._subset is None:
            return present
        missing = sorted(set(self._subset) - set(present))
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(self.image_dir, f"{len(missing)} listed video(s) not found: {shown}")
        return list(self._subset)

    def __len__(self) -> int:
        return len(self.video_names())

    def video(self, name: str) -> Video:
        frames = frame_files(self.image_dir / name, FRAME_EXTS)
        if not frames:
            raise DataError(self.image_dir / name, "video has no frames (.jpg/.jpeg/.png)")
        stems = {p.stem for p in frames}
        annotations = {p.stem: p for p in frame_files(self.annotation_dir / name) if p.stem in stems}
        return Video(name, frames, annotations)

    def first_annotation(self, video: Video) -> tuple[str, np.ndarray]:
        """The video's first frame's annotation ``(frame name, (H, W) uint8)``; checked against the frame."""
        first = video.frames[0].stem
        path = video.annotations.get(first, self.annotation_dir / video.name / f"{first}.png")
        if first not in video.annotations:
            raise DataError(path, "first-frame annotation missing (semi-supervised VOS needs it)")
        return first, self.read_annotation(video, first)

    def read_annotation(self, video: Video, frame: str) -> np.ndarray:
        """The annotation of ``frame``, checked: palette/L mode and the frame's size."""
        path = video.annotations.get(frame)
        if path is None:
            raise DataError(self.annotation_dir / video.name / f"{frame}.png", "annotation not found")
        labels = read_mask(path)
        frame_path = video.frames[video.frame_names.index(frame)]
        expected = mask_size(frame_path)
        if labels.shape != expected:
            raise DataError(path, f"mask size {labels.shape[1]}x{labels.shape[0]} (WxH) differs from its frame "
                                  f"{frame_path.name} {expected[1]}x{expected[0]}")
        return labels

    def check(self, *, need_first_annotation: bool = True) -> list[str]:
        """Validate every video (frames present, first annotation present and matching). Returns names."""
        names = self.video_names()
        for name in names:
            video = self.video(name)
            if need_first_annotation:
                self.first_annotation(video)
        return names


# ------------------------------------------------------------------------------------------ splits
def read_list_file(path: str | os.PathLike) -> list[str]:
    """Video names, one a line (blank lines and ``#`` comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "list file not found")
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DataError(path, "list file names no videos")
    bad = next((n for n in names if not is_plain_name(n)), None)
    if bad is not None:
        raise DataError(path, f"video name {bad!r} is not a plain folder name (no slash, backslash, '.' or '..')")
    return names


def write_list_file(path: str | os.PathLike, names: Sequence[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{n}\n" for n in names))


def holdout_split(names: Sequence[str], n_holdout: int, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic ``(train, holdout)`` split of ``names``: the same names and seed give the same split.

    Used to score epochs locally where the official validation ground truth is hidden (the official
    MOSE recipe holds out 200 of MOSE train's 1,507 videos). Both lists come back sorted.
    """
    names = sorted(set(names))
    if not 0 < n_holdout < len(names):
        raise ValueError(f"n_holdout must lie in 1..{len(names) - 1} for {len(names)} videos, got {n_holdout}")
    held = set(random.Random(seed).sample(names, n_holdout))
    return [n for n in names if n not in held], [n for n in names if n in held]

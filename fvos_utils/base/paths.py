"""Every path the kit uses is resolved here, never relative to the current directory.

papermill runs a notebook in the directory it was launched from, nbval in the notebook's own folder;
resolving through these helpers makes both (and the command line) see the same files.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that overrides the project root (e.g. for an installed, non-editable kit).
ROOT_ENV = "FVOS_ROOT"
#: ``fvos_utils/``, the package: its ``configs/`` and ``assets/`` are package data.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: the folder holding ``fvos_utils/`` (the checkout, or site-packages), what a subprocess puts on its path
KIT_DIR = PACKAGE_DIR.parent


def project_root() -> Path:
    """The kit's checkout: ``$FVOS_ROOT`` if set, else the folder holding ``fvos_utils/``."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    return KIT_DIR


def is_plain_name(name) -> bool:
    """Whether ``name`` names one entry of a folder: a non-empty string, not ``.`` or ``..``, without a slash,
    backslash or NUL. A run, video or frame name read from a params file, a list file or a data file must be
    one before it is joined to a folder, so that what is written lands inside that folder."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def check_run_name(run) -> str:
    """``run`` where it is a plain name (:func:`is_plain_name`), else a ValueError: a run's files live in
    ``outputs/<run>/`` and nowhere else."""
    if not is_plain_name(run):
        raise ValueError(f"run name {run!r}: must be a plain folder name under outputs/ (not '.' or '..', no slash "
                         f"or backslash)")
    return run


def run_dir(run: str) -> Path:
    """``outputs/<run>/`` (not created), for a checked run name (:func:`check_run_name`)."""
    return project_root() / "outputs" / check_run_name(run)


def outputs_dir(run: str | None = None) -> Path:
    """``outputs/`` (or ``outputs/<run>/<sub>...``, created) where executed notebooks, figures and metrics go.
    ``run`` may name folders below the run (``"demo/train/stage1"``); the run's own name is checked
    (:func:`check_run_name`) and every part must be plain."""
    out = project_root() / "outputs"
    if run:
        parts = run.split("/")
        check_run_name(parts[0])
        if not all(is_plain_name(part) for part in parts[1:]):
            raise ValueError(f"{run!r}: not a folder inside outputs/{parts[0]}/")
        out = out.joinpath(*parts)
        out.mkdir(parents=True, exist_ok=True)
    return out


def data_dir() -> Path:
    """``data/``: generated and downloaded datasets and checkpoints (git-ignored)."""
    return project_root() / "data"


def params_dir() -> Path:
    """``params/``: one YAML file per run."""
    return project_root() / "params"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def shared_samples_dir() -> Path | None:
    """``../shared/data/samples`` (real clips, present on developer and CI machines only), else None."""
    samples = project_root().parent / "shared" / "data" / "samples"
    return samples if samples.is_dir() else None


def from_here(path: str | os.PathLike | None) -> Path | None:
    """A command-line path, taken from the current folder (library functions take relative paths from
    the kit's folder, :func:`resolve`); None (or "") stays None."""
    return Path(path).expanduser().resolve() if path else None


def resolve(path: str | os.PathLike) -> Path:
    """A user-given path: absolute paths stay, relative ones are taken from the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p

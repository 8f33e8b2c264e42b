"""What a run records about itself: package versions, git commit, device, parameters."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from .paths import project_root

PACKAGES = ("numpy", "torch", "torchvision", "sam2", "opencv-python-headless", "pillow", "matplotlib",
            "papermill", "hydra-core")


def package_versions(packages=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The checkout's commit, with ``+dirty`` when tracked files have uncommitted changes; None outside git."""
    root = project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")


def environment() -> dict:
    """Python, platform, versions and commit: the block every ``metrics.json`` carries."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }

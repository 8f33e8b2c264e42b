"""What a run records about itself: package versions, git commit, device, parameters; and the CPUs it was
given."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

from fvos_utils.base.paths import project_root

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


def allotted_cpus() -> int:
    """How many CPU threads this process should use by default: the CPUs its job was given, not the whole
    machine (torch's default, which made two jobs on one node each take 5x longer). ``OMP_NUM_THREADS`` when
    set (the user's own choice); else the fewer of SLURM's ``SLURM_CPUS_PER_TASK`` and the CPUs this
    process may run on (its affinity, which cgroups and ``taskset`` narrow)."""
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    counts = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1]
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    return min(counts)


def checked_threads(threads: int | None) -> int:
    """``threads`` torch CPU threads where it is 1 to :func:`allotted_cpus` (more only slows every thread down:
    1000 on 2 cores ran 100x slower), :func:`allotted_cpus` where None; else a ValueError saying the range."""
    allowed = allotted_cpus()
    if threads is None:
        return allowed
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= allowed:
        raise ValueError(f"threads must be 1 to {allowed} (the CPUs this process may use), got {threads!r}")
    return threads


def environment() -> dict:
    """Python, platform, versions and commit: the block every ``metrics.json`` carries."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }

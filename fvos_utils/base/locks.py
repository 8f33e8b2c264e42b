"""One writer per output: an exclusive lock on each output a kit command writes.

Jobs sharing a cluster can point two runs at one folder (an inference folder, a training stage, a
pipeline run, a post-process or fusion output, the recipe's work folder). Without a lock the last one
silently wins, or one deletes what the other is writing. :func:`exclusive` takes an ``fcntl.flock`` lock on
a hidden file beside the output (``.<name>.lock``: beside, not inside, because several outputs are
replaced whole, and a lock file inside would go with them), or inside a folder that is never replaced
whole and whose parent may not be writable (``infer --out $SCRATCH``: ``OUT/.fvos.lock``); the kernel drops
the lock when its holder
exits, even on ``kill -9``, so no stale lock needs clearing by hand. A second writer is refused at once
with :class:`OutputInUse`, one line naming the output and the holder (pid, host, command), which the
holder writes into the lock file.

The ranks of one ``torchrun`` job share their outputs by design: rank 0 holds the lock, the other
ranks (``RANK``, else ``LOCAL_RANK``, > 0) take none. Within one process the lock is re-entrant (a
function holding it may call another that takes it again).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time
from pathlib import Path
from typing import Iterator

from fvos_utils.base.io import DataError, file_in_the_way

#: the name of a lock file inside the folder it locks (:func:`lock_path`)
INSIDE_NAME = ".fvos.lock"
#: ``{lock file: how many times this process holds it}`` (the re-entrancy above)
_HELD: dict[Path, int] = {}
#: ``{lock file: the open descriptor holding its lock}``, for the lock files this process locked itself
_DESCRIPTORS: dict[Path, int] = {}


class OutputInUse(DataError):
    """Another process is writing this output (a DataError: command lines print it as one line, exit 2)."""


def lock_path(output: str | os.PathLike, *, inside: bool = False) -> Path:
    """The lock file of ``output``: ``.<name>.lock`` in the folder above it, or with ``inside``
    ``.fvos.lock`` in the folder ``output`` itself."""
    output = Path(output).absolute()
    return output / INSIDE_NAME if inside else output.parent / f".{output.name}.lock"


def held_descriptor(output: str | os.PathLike) -> int | None:
    """The descriptor holding ``output``'s lock in this process (None when it holds none). A child process
    that inherits it (``subprocess.Popen(pass_fds=...)``) keeps the lock held until it ends too: the lock
    belongs to the open file, not to the process that opened it."""
    return _DESCRIPTORS.get(lock_path(output))


def distributed_launch() -> tuple[int, int]:
    """``(rank, world size)`` of this process in a distributed launch (torchrun, Meta's trainer, a SLURM job
    through submitit), ``(0, 1)`` outside one. A launch sets ``WORLD_SIZE`` and ``MASTER_ADDR`` beside the
    rank (``RANK``, else ``LOCAL_RANK``); a rank without them is not a launch but a stray variable, and is
    refused (ValueError) rather than trusted: a rank above 0 skips the output's lock and writes only its share
    of the videos."""
    names = [name for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE") if os.environ.get(name, "") != ""]
    if not names:
        return 0, 1
    values = {}
    for name in names:
        try:
            values[name] = int(os.environ[name])
        except ValueError:
            raise ValueError(f"{name}={os.environ[name]!r} is not a number (a distributed launch sets it)") from None
    world = values.get("WORLD_SIZE")
    rank = values.get("RANK", values.get("LOCAL_RANK", 0))
    if world is None or not os.environ.get("MASTER_ADDR"):
        set_here = " and ".join(f"{name}={os.environ[name]}" for name in names)
        raise ValueError(f"{set_here} set, but no distributed launch (WORLD_SIZE and MASTER_ADDR, which torchrun "
                         "and SLURM jobs set): unset it, or start the command with torchrun")
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside the launch's {world} processes (WORLD_SIZE={world})")
    return rank, world


def job_rank() -> int:
    """This process's rank in a distributed launch (0 outside one: :func:`distributed_launch`): ranks above 0
    share rank 0's outputs."""
    return distributed_launch()[0]


def _holder_words(path: Path) -> str:
    """Who holds the lock file ``path``, in words, from what the holder wrote into it."""
    try:
        holder = json.loads(path.read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({holder['command']})"
    except (OSError, ValueError, KeyError, TypeError):  # the holder has not written it yet
        return "another process"


def _open_lock_file(path: Path) -> int:
    """An open descriptor of the lock file ``path`` (created when missing, never through a link). Another
    user's lock file, which a run killed in a shared folder leaves behind and which this user can neither
    write nor remove, is opened for reading: ``flock`` locks it all the same, only the holder's words go
    unwritten."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        return os.open(path, os.O_RDWR | flags, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)


def _acquire(path: Path, output: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive lock; OutputInUse when another process holds it.

    The file is removed on release; a process that opened it just before may then lock a removed file,
    so the lock counts only when the locked file is still the one at ``path`` (else it tries again).
    """
    while True:
        try:  # never through a link: the holder's line would be written into whatever it points at
            fd = _open_lock_file(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise DataError(path, f"a symbolic link stands where {output}'s lock file goes; remove it (the "
                                      "kit never writes through it)") from None
            raise DataError(path, f"cannot open {output}'s lock file ({err.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise DataError(path, f"not a regular file, where {output}'s lock file goes; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputInUse(output, f"in use by another writer: {_holder_words(path)}; wait until it has "
                                      "finished or choose another output") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(current, os.fstat(fd)):
            return fd
        os.close(fd)


@contextlib.contextmanager
def exclusive(output: str | os.PathLike, *, inside: bool = False) -> Iterator[None]:
    """Hold the lock of ``output`` (a folder or file, which need not exist yet; with ``inside``, an existing
    folder holding its lock file) for the block.

    Raises OutputInUse naming ``output`` and its holder when another process writes it, and a DataError
    naming the file that stands where a folder above ``output`` must be. Ranks above 0 of a torchrun job
    take no lock (their rank 0 holds it).
    """
    output = Path(output).absolute()
    path = lock_path(output, inside=inside)
    if job_rank() > 0 or _HELD.get(path):
        _HELD[path] = _HELD.get(path, 0) + 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    blocking = file_in_the_way(path)
    if blocking is not None:
        raise DataError(blocking, f"a file, not a folder: {output} cannot be an output folder")
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, output)
    _HELD[path], _DESCRIPTORS[path] = 1, fd
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv) or sys.executable}
        if os.access(path, os.W_OK) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield
    finally:
        del _HELD[path], _DESCRIPTORS[path]
        with contextlib.suppress(PermissionError):  # another user's file in a shared (sticky) folder stays
            path.unlink(missing_ok=True)  # while still locked: a waiting opener then sees another file, and retries
        os.close(fd)
        for folder in made:  # made for the lock alone (a refused command wrote nothing): not left behind
            with contextlib.suppress(OSError):  # not empty (the output is in it), or made again meanwhile
                folder.rmdir()

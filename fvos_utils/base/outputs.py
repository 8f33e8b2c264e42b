"""The output folder of a command line that writes one prediction folder (``fvos postprocess``, ``fvos fusion``):
its options, the check before any work, and the lock held while writing."""
from __future__ import annotations

import os
from pathlib import Path

from fvos_utils.base.io import DataError, file_in_the_way, remove_leftovers
from fvos_utils.base.locks import exclusive
from fvos_utils.base.paths import from_here


def add_folder_output_options(parser) -> None:
    """``--out OUT``, ``--overwrite`` and ``--no-progress``: the options of every kit command line that writes a
    prediction folder (``fvos postprocess``, ``fvos fusion``)."""
    parser.add_argument("--out", required=True, type=from_here, metavar="OUT",
                        help="the folder OUT/<video>/<frame>.png to write (appears once complete)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it exists (only a prediction folder: <video>/<frame>.png and nothing else)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (batch logs)")


def run_folder_command(parser, args, write) -> int:
    """Check ``args.out`` (:func:`check_output_dir`), then ``write(progress)`` -> the folder written, holding the
    output's lock throughout (:func:`fvos_utils.base.locks.exclusive`: a second writer of the same folder is
    refused). Bad input (a DataError or other ValueError, an OSError) is one error line naming the file, exit
    status 2."""
    try:
        with exclusive(args.out):
            remove_leftovers(args.out)  # only this command writes beside args.out now: they are a killed run's
            check_output_dir(args.out, overwrite=args.overwrite)
            written = write(not args.no_progress)
    except (ValueError, OSError) as err:  # DataError is a ValueError
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {written}")
    return 0


def check_output_dir(path: str | os.PathLike, *, overwrite: bool) -> None:
    """Refuse, before any work, a folder a command line would write a prediction folder to (and so replace
    whole): a DataError naming a file in the way, an existing folder without ``overwrite``, and, even with
    it, a folder holding anything but ``<video>/<frame>.png`` (replacing it would delete that). An empty
    folder is fine (a job script may have created it)."""
    path = Path(path)
    blocking = path if path.exists() and not path.is_dir() else file_in_the_way(path)
    if blocking is not None:
        raise DataError(blocking, f"a file, not a folder: {path} cannot be an output folder")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not overwrite:
        raise DataError(path, "already exists (pass --overwrite to replace it)")
    for entry in sorted(path.iterdir()):
        inside = sorted(entry.iterdir()) if entry.is_dir() and not entry.is_symlink() else [entry]
        other = next((p for p in inside if p.suffix != ".png" or not p.is_file() or p.is_symlink()), None)
        if entry.name.startswith(".") or other is not None:
            raise DataError(other or entry, f"not a prediction frame (<video>/<frame>.png): {path} is not a "
                                            "prediction folder, so it is not replaced; choose another output folder")

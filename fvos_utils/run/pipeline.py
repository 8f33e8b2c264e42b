"""The whole FVOS pipeline in one command: the chapters (notebooks) in order, through papermill.

    fvos pipeline params/demo.yaml [--force] [--only 00_data_and_metrics ...]

A params file (YAML)::

    run: demo                  # outputs/<run>/ receives everything
    common:                    # given to every chapter whose parameters cell declares the key
      seed: 0
    chapters:                  # which chapters run (always in the kit's order), with their parameters
      00_data_and_metrics:
        n_show: 3

Every key and value is checked against the parameters cells of the notebooks it feeds before anything
runs: a misspelt key or a value of another type than the cell declares is an error here, naming file,
chapter and key, not papermill's silent warning or a TypeError deep in a chapter. Chapters pass results
through files under ``outputs/<run>/`` (never through hidden state).

A chapter is skipped as current while its inputs are unchanged since its last successful run (its
notebook, its parameters, the files they name by content or size and time, the folders they name, such
as ``data_root``, by their files' relative paths, sizes and modification times) and the outputs that run
recorded are still there (its executed notebook, ``metrics.json``, each entry of its folder and, for
chapter 02, the trained weights under ``outputs/<run>/train/``). Once one chapter re-runs, every later one
does too, since it may read what that one wrote. ``--force`` re-runs every chapter and is passed on as the
``force`` parameter to chapters that keep work between runs (chapter 02 then trains again instead of
finding its stages finished).

A chapter runs into ``<chapter>.running.ipynb``, which becomes ``<chapter>.ipynb`` on success and
``<chapter>.failed.ipynb`` otherwise: the last good executed notebook is never overwritten by a failed
attempt. A failure stops the chain with a message naming that notebook, the cell (its index there and its
first line) and the error; the chapter and every later one then count as not current (state and
``manifest.json``), earlier chapters' outputs stay as they are. One pipeline runs a run at a time: a second
one of the same run is refused, naming the first (:mod:`fvos_utils.base.locks`).

A chapter that submits a cluster job (chapter 02 with ``cluster:`` in its training params) stops there:
the chain ends with :class:`ChapterWaiting`, one line naming the job, and ``fvos pipeline`` exits with
:data:`WAITING_EXIT`. Run it again once the job has ended, or with ``--wait``: the pipeline then keeps the
run locked, asks the scheduler every ``--poll`` seconds, and goes on when the job has ended.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import yaml

from fvos_utils.base import io, jobs, locks, paths, provenance
from fvos_utils.run.chapter import METRICS_FILE, RUN_VALUES_ENV

#: The kit's chapters in the order they run (notebooks/<name>.ipynb).
#: Arguments of every chapter's kernel: its own log at errors only. Its one warning was "Kernel is running
#: over TCP without encryption", printed for each chapter; the kernel listens on this machine's loopback
#: ports for the one client that started it. The chapters' own output and warnings are unaffected.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)
#: the chapter that reports on the others (it reads their results only)
REPORT_CHAPTER = "07_report"
CHAPTERS = (
    "00_data_and_metrics",
    "01_sam2_inference",
    "02_finetune",
    "03_epoch_selection",
    "04_sigmoid_search",
    "05_morphology_ablation",
    "06_multiscale_fusion",
    "07_report",
)
TOP_LEVEL_KEYS = {"run", "description", "common", "chapters"}
#: Parameters the runner itself gives every chapter that declares them (a params file may not set them):
#: ``run`` (the params file's run name) and ``force`` (the ``--force`` flag: redo cached work, e.g. training).
RUNNER_KEYS = ("run", "force")
#: Files named by a parameter count in a chapter's fingerprint by content up to this size, by size and
#: modification time above it (a multi-GB checkpoint is not read on every run).
HASHED_FILE_BYTES = 64 * 2**20
STATE_FILE = "pipeline_state.json"
MANIFEST_FILE = "manifest.json"
#: Paths under ``outputs/<run>/`` a chapter writes besides its own folder and counts among its outputs
#: (chapter 02 trains into ``outputs/<run>/train/``; chapter 03 adds a file beside those weights, so the
#: weights folders are named, not ``train/`` itself).
OTHER_OUTPUTS = {"02_finetune": ("train/stage1/weights", "train/stage2/weights")}
#: The parameter types papermill infers that values are checked against (a float takes an int; a bool,
#: although a Python int, is no number here). Other annotations are not checked.
_TYPE_CHECKS = {
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "float": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "str": lambda value: isinstance(value, str),
    "bool": lambda value: isinstance(value, bool),
    "list": lambda value: isinstance(value, list),
    "dict": lambda value: isinstance(value, dict),
}


class PipelineError(RuntimeError):
    """A params file that does not fit the notebooks, or a chapter that failed."""


class ChapterWaiting(PipelineError):
    """A chapter stopped for a cluster job it submitted, or found still pending or running (``job``:
    ``{"executor", "job_id"}``). Nothing failed: the chain goes on when the job has ended."""

    def __init__(self, message: str, job: dict):
        super().__init__(message)
        self.job = job


#: the exception a chapter raises when it has submitted a cluster job (:class:`fvos_utils.method.train.StageRunning`)
WAITING_ERROR = "StageRunning"
#: ``fvos pipeline``'s exit status while a chapter waits for a cluster job (1: an error)
WAITING_EXIT = 3


# ------------------------------------------------------------------------------------------- params
def notebook_path(chapter: str) -> Path:
    return paths.notebooks_dir() / f"{chapter}.ipynb"


def notebook_parameters(chapter: str) -> dict[str, dict]:
    """The parameters a chapter's notebook declares: name -> {"default", "type", "help"}."""
    import papermill

    path = notebook_path(chapter)
    if not path.is_file():
        raise PipelineError(f"{path}: chapter notebook not found")
    return {name: {"default": p["default"], "type": p["inferred_type_name"], "help": p["help"]}
            for name, p in papermill.inspect_notebook(str(path)).items()}


def _unknown_key_error(source: str, key: str, known) -> PipelineError:
    close = difflib.get_close_matches(str(key), list(known), n=1)  # YAML keys may be numbers
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return PipelineError(f"{source}: unknown parameter {key!r}{hint}; known: {', '.join(sorted(known))}")


def _check_type(where: str, declared: str, value) -> None:
    """A PipelineError ``where: expected <declared>, got <type> <value>`` when ``value`` does not fit."""
    fits = _TYPE_CHECKS.get(declared)
    if fits is not None and not fits(value):
        raise PipelineError(f"{where}: expected {declared}, got {type(value).__name__} {value!r}")


def _mapping(path: Path, raw: dict, key: str, what: str) -> dict:
    """``raw[key]`` as a dict ({} when absent or left empty); anything else is a PipelineError."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineError(f"{path}: {key!r} must be a mapping ({what}), got a {type(value).__name__}")
    return value


def parse_override(item: str) -> tuple[list[str], object]:
    """``KEY.SUB=VALUE`` (a ``--set`` argument) -> ``(["KEY", "SUB"], VALUE)``, VALUE read as YAML (``2``
    an int, ``[1.0, 1.5]`` a list, ``data/MOSE`` a string), as the params file would hold it."""
    key, sep, text = item.partition("=")
    names = key.strip().split(".")
    if not sep or not all(names):
        raise ValueError(f"--set {item}: expected KEY.SUB=VALUE (e.g. common.data_root=/scratch/MOSE)")
    try:
        return names, io.load_yaml(text)
    except yaml.YAMLError as err:
        raise ValueError(f"--set {item}: the value is not valid YAML ({' '.join(str(err).split())})") from None


def _apply_overrides(path: Path, raw: dict, overrides: Sequence[str]) -> None:
    """Set each ``CHAPTER.KEY=VALUE`` / ``common.KEY=VALUE`` of ``overrides`` in the params file's ``raw``
    mapping, before it is checked (so a value is type-checked as if the file held it). A chapter the file
    does not run is refused: an override changes values, never which chapters run."""
    for item in overrides:
        names, value = parse_override(item)
        if len(names) != 2:
            raise PipelineError(f"--set {item}: expected CHAPTER.KEY=VALUE or common.KEY=VALUE")
        section, key = names
        if section == "common":
            raw["common"] = {**(raw.get("common") or {}), key: value}
        elif section in (raw.get("chapters") or {}):
            raw["chapters"][section] = {**(raw["chapters"][section] or {}), key: value}
        else:
            chapters = ", ".join(raw.get("chapters") or {}) or "none"
            raise PipelineError(f"--set {item}: {section!r} is not 'common' nor a chapter {path} runs ({chapters})")


#: a check of a chapter's values, ``check(chapter, {key: value}) -> [(key, what is wrong), ...]``: the rules
#: on values belong to the steps above this module (:func:`fvos_utils.studies.chapter_values.check`, which
#: ``fvos pipeline`` and :func:`fvos_utils.run_pipeline` pass in)
ValueCheck = Callable[[str, dict], list]


def load_run_params(path: str | os.PathLike, overrides: Sequence[str] = (),
                    value_check: ValueCheck | None = None) -> dict:
    """Read and check a params file; returns ``{"run", "common", "chapters": {chapter: params}, "overrides"}``.

    ``overrides``: ``CHAPTER.KEY=VALUE`` or ``common.KEY=VALUE`` (the command line's ``--set``), applied
    to the file's values before they are checked (:func:`_apply_overrides`). ``value_check``: run on the
    values the file and the overrides give each chapter; its first problem is the error."""
    path = paths.resolve(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found")
    try:
        raw = io.read_yaml(path) or {}
    except io.DataError as err:
        raise PipelineError(str(err)) from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: expected a mapping at the top level")
    _apply_overrides(path, raw, overrides)
    overridden = {tuple(parse_override(item)[0]) for item in overrides}

    def origin(section: str, key) -> str:
        """Where a value came from, for messages: the file, or the --set that replaced its value."""
        return "--set" if (section, key) in overridden else str(path)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown_key_error(str(path), key, TOP_LEVEL_KEYS)
    run = raw.get("run")
    if not paths.is_plain_name(run):
        raise PipelineError(f"{path}: 'run' must be a plain folder name under outputs/ (not '.' or '..', no "
                            f"slash or backslash), got {run!r}")
    chapters = _mapping(path, raw, "chapters", "chapter name: its parameters")
    common = _mapping(path, raw, "common", "parameter: value")
    for name, params in chapters.items():
        if name not in CHAPTERS:
            raise PipelineError(f"{path}: unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
        if params is not None and not isinstance(params, dict):
            raise PipelineError(f"{path}: chapters.{name}: expected a mapping of its parameters, got "
                                f"{type(params).__name__} {params!r}")
    declared = {name: notebook_parameters(name) for name in chapters}
    for name, params in chapters.items():
        for key, value in (params or {}).items():
            if key in RUNNER_KEYS:
                raise PipelineError(f"{path}: chapters.{name}: {key!r} is set by the runner (the top-level "
                                    f"'run' key, the --force flag), not per chapter")
            if key not in declared[name]:
                raise _unknown_key_error(f"{origin(name, key)}: chapters.{name}", key, declared[name])
            _check_type(f"{origin(name, key)}: chapters.{name}.{key}", declared[name][key]["type"], value)
    for key, value in common.items():
        if key in RUNNER_KEYS:
            raise PipelineError(f"{path}: common: {key!r} is set by the runner, not in common")
        if not any(key in d for d in declared.values()):
            known = set().union(*declared.values()) if declared else set()
            raise _unknown_key_error(f"{origin('common', key)}: common (no chapter declares it)", key, known)
        for name in chapters:
            if key in declared[name]:
                _check_type(f"{origin('common', key)}: common.{key} (for chapter {name})", declared[name][key]["type"],
                            value)
    params = {"run": run, "common": common, "chapters": {n: dict(chapters[n] or {}) for n in CHAPTERS
                                                         if n in chapters}, "declared": declared, "path": path,
              "overrides": list(overrides)}
    for name in params["chapters"] if value_check else ():
        given = {k: v for k, v in chapter_parameters(params, name).items() if k not in RUNNER_KEYS}
        for key, problem in value_check(name, given):
            where = (f"chapters.{name}.{key}" if key in params["chapters"][name] else
                     f"common.{key} (for chapter {name})")
            raise PipelineError(f"{origin(name if key in params['chapters'][name] else 'common', key)}: {where}: "
                                f"{problem}")
    return params


def chapter_parameters(params: dict, chapter: str, *, force: bool = False) -> dict:
    """What papermill injects into ``chapter``: the common keys it declares, its own, and the runner's
    (``run``, ``force``) where it declares them."""
    declared = params["declared"][chapter]
    merged = {k: v for k, v in params["common"].items() if k in declared}
    merged.update(params["chapters"][chapter])
    runner = {"run": params["run"], "force": force}
    merged.update({k: runner[k] for k in RUNNER_KEYS if k in declared})
    return merged


def parameter_values(params: dict, chapter: str) -> dict:
    """Every parameter ``chapter`` declares with the value it runs with under ``params``: its notebook's
    default, overridden by the params file's common and chapter keys (for tools that run one step of a
    chapter alone, such as ``fvos recipe``)."""
    declared = notebook_parameters(chapter)
    values = {name: ast.literal_eval(p["default"]) for name, p in declared.items()}
    values.update({k: v for k, v in params["common"].items() if k in declared})
    values.update(params["chapters"].get(chapter, {}))
    if "run" in declared:
        values["run"] = params["run"]
    return values


def _files_digest(path: Path, *, times: bool) -> str | None:
    """A cheap digest of a file or folder, contents unread: each file's relative path, size and, with
    ``times``, modification time (hidden entries left out, links followed); None when nothing is there."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = [path] if path.is_file() else []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # in place: os.walk descends in this order
        files += [Path(root, n) for n in sorted(names) if not n.startswith(".")]
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:  # a dangling link: a missing input
            size, mtime = -1, -1
        else:
            size, mtime = stat.st_size, stat.st_mtime_ns
        stamp = f"{size} {mtime}" if times else str(size)
        digest.update(f"{file.relative_to(path).as_posix()}\0{stamp}\n".encode())
    return digest.hexdigest()


def _fingerprint(chapter: str, parameters: dict, folders: dict[Path, str]) -> str:
    """What a chapter's outputs depend on: its notebook, its parameters (``force`` aside: it asks for a
    re-run, it does not change the result), the files they name (e.g. chapter 02's training params) and
    the folders they name (e.g. ``data_root``: an edited ground-truth mask changes it). ``folders`` caches
    folder digests between chapters that change nothing (the caller empties it when a chapter runs)."""
    digest = hashlib.sha256(notebook_path(chapter).read_bytes())
    kept = {k: v for k, v in parameters.items() if k != "force"}
    digest.update(json.dumps(kept, sort_keys=True).encode())
    for key, value in sorted(kept.items()):
        if not (isinstance(value, str) and value):
            continue
        path = paths.resolve(value)
        if path.is_file():
            stat = path.stat()
            named = path.read_bytes() if stat.st_size <= HASHED_FILE_BYTES else f"{stat.st_size} {stat.st_mtime_ns}".encode()
            digest.update(key.encode() + b"\0" + hashlib.sha256(named).digest())
        elif path.is_dir():
            if path not in folders:
                folders[path] = _files_digest(path, times=True)
            digest.update(key.encode() + b"\0" + folders[path].encode())
    return digest.hexdigest()


def _outputs(run_dir: Path, chapter: str) -> dict[str, str] | None:
    """A chapter's outputs as its last run left them: ``{path under run_dir: digest of its files' relative
    paths and sizes}`` for each entry of ``<chapter>/`` and each of :data:`OTHER_OUTPUTS` that exists; None
    when its executed notebook or its ``metrics.json`` is missing (no finished run to stand on)."""
    if not (run_dir / f"{chapter}.ipynb").is_file() or not (run_dir / chapter / METRICS_FILE).is_file():
        return None
    entries = [f"{chapter}/{p.name}" for p in sorted((run_dir / chapter).iterdir()) if not p.name.startswith(".")]
    entries += OTHER_OUTPUTS.get(chapter, ())
    found = {entry: _files_digest(run_dir / entry, times=False) for entry in entries}
    return {entry: digest for entry, digest in found.items() if digest is not None}


def _outputs_intact(run_dir: Path, chapter: str, recorded: dict | None) -> bool:
    """Whether every output a chapter's last run recorded is still there as it was (sizes; entries added
    since, such as the recipe's server zip in chapter 06's folder, do not matter)."""
    now = _outputs(run_dir, chapter)
    return bool(recorded) and now is not None and all(now.get(entry) == digest for entry, digest in recorded.items())


def _failed_cell(notebook: Path) -> tuple[int, int, str] | None:
    """``(index, line number, source line)`` of the line that raised in the cell papermill marked as raising,
    as the executed notebook holds it (papermill inserts its parameters and error cells, so its own index
    is off). The line is the cell's own line in the error's traceback (``Cell In[5], line 3``); the cell's
    first line, which told nothing of the failure (``import cv2``), only when the traceback names none."""
    import nbformat

    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            lines = cell.source.splitlines()
            traceback = "\n".join(line for output in cell.get("outputs", []) if output.get("output_type") == "error"
                                  for line in output.get("traceback", []))
            found = re.search(r"Cell In\[\d+\], line (\d+)", re.sub(r"\x1b\[[0-9;]*m", "", traceback))
            # IPython drops a cell's leading blank lines before it runs it, and numbers the lines after them
            blank = next((n for n, line in enumerate(lines) if line.strip()), len(lines))
            number = blank + int(found[1]) if found and 0 < blank + int(found[1]) <= len(lines) else blank + 1
            return index, number, lines[number - 1].strip() if number <= len(lines) else ""
    return None


# ---------------------------------------------------------------------------------------------- run
def _device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu (torch not installed)"
    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"


#: environment of the chapters' kernels: an executed chapter is read, not watched, so its progress bars
#: would only leave dozens of stale lines in the saved notebook (JupyterLab starts kernels of its own,
#: where they stay live)
KERNEL_ENVIRONMENT = {"TQDM_DISABLE": "1"}


@contextmanager
def kernel_environment(run_values: dict[str, str] | None = None):
    """:data:`KERNEL_ENVIRONMENT` (and ``run_values``: where the run's values came from,
    :data:`fvos_utils.run.chapter.RUN_VALUES_ENV`) set while a chapter's kernel starts (it inherits this
    process's environment), the previous values restored afterwards."""
    values = {**KERNEL_ENVIRONMENT, **(run_values or {})}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def show_parameters(params: dict) -> str:
    """Every chapter's parameters as it would run them (its notebook's defaults, then the params file's
    common and chapter values and the overrides), as YAML: what ``--show`` prints."""
    return yaml.safe_dump({"run": params["run"], "overrides": params["overrides"],
                           "chapters": {chapter: parameter_values(params, chapter) for chapter in params["chapters"]}},
                          sort_keys=False)


def run_pipeline(params_file: str | os.PathLike, *, force: bool = False, only: list[str] | None = None,
                 kernel_name: str = "python3", overrides: Sequence[str] = (), wait: bool = False,
                 poll_seconds: float = 60.0, value_check: ValueCheck | None = None) -> dict:
    """Run the chapters of ``params_file`` (with ``overrides``, :func:`load_run_params`); returns the
    manifest (also written to the run folder; it records the overrides). A chapter that submits a cluster
    job raises :class:`ChapterWaiting`; with ``wait``, the run stays locked instead, the job's state is asked
    every ``poll_seconds``, and the chain goes on (from that chapter) once the job has ended.
    ``value_check``: see :func:`load_run_params`."""
    params = load_run_params(params_file, overrides, value_check)
    chapters = list(params["chapters"])
    if only:
        for name in only:
            if name not in chapters:
                raise PipelineError(f"--only {name}: not a chapter of {params['path']} ({', '.join(chapters)})")
        chapters = [c for c in chapters if c in only]
    run_dir = paths.outputs_dir(params["run"])
    with locks.exclusive(run_dir):  # one pipeline per run: a second is refused, naming this one
        while True:
            try:
                return _run_chapters(params, chapters, run_dir, force=force, kernel_name=kernel_name)
            except ChapterWaiting as waiting:
                if not wait:
                    raise
                print(f"{waiting}\n  waiting for it (its state asked every {poll_seconds:g} s)", flush=True)
                while jobs.state(waiting.job) in jobs.ALIVE_STATES:
                    time.sleep(poll_seconds)
                force = False  # what ran before the wait is kept: a forced run is not forced twice


def _execute(chapter: str, parameters: dict, run_dir: Path, manifest: dict, *, kernel_name: str) -> tuple[Path, float]:
    """One chapter through papermill into ``run_dir/<chapter>.running.ipynb``, renamed to ``<chapter>.ipynb``
    once it has run whole; returns that path and the seconds it took. A failure keeps the attempt apart
    (``<chapter>.failed.ipynb``), records it in the manifest and raises a PipelineError naming the cell."""
    import papermill

    executed = run_dir / f"{chapter}.ipynb"
    attempt, failed = run_dir / f"{chapter}.running.ipynb", run_dir / f"{chapter}.failed.ipynb"
    manifest["chapters"][chapter] = {"skipped": False, "status": "running", "notebook": str(attempt)}
    io.write_json(run_dir / MANIFEST_FILE, manifest)
    start = time.perf_counter()
    try:
        origin = {"params_file": manifest["params_file"], "overrides": manifest["overrides"]}
        with kernel_environment({RUN_VALUES_ENV: json.dumps(origin)}):
            papermill.execute_notebook(str(notebook_path(chapter)), str(attempt), parameters=parameters,
                                       kernel_name=kernel_name, cwd=str(paths.project_root()),
                                       progress_bar=False, extra_arguments=list(KERNEL_ARGUMENTS))
    except BaseException as err:  # a failure or an interrupt: the attempt is kept apart from the last good run
        if attempt.is_file():
            os.replace(attempt, failed)
        error = f"{err.ename}: {err.evalue}" if isinstance(err, papermill.PapermillExecutionError) else repr(err)
        manifest["chapters"][chapter] = {"skipped": False, "status": "failed", "notebook": str(failed),
                                         "error": error}
        io.write_json(run_dir / MANIFEST_FILE, manifest)
        if not isinstance(err, papermill.PapermillExecutionError):
            raise
        job = jobs.named_in(err.evalue) if err.ename == WAITING_ERROR else None
        if job is not None:
            manifest["chapters"][chapter].update(status="waiting", job=job)
            io.write_json(run_dir / MANIFEST_FILE, manifest)
            raise ChapterWaiting(f"chapter {chapter} waits for a cluster job: {err.evalue}", job) from None
        cell = _failed_cell(failed)
        where = f"cell {cell[0]}, line {cell[1]} (`{cell[2]}`)" if cell else "a cell"
        kept = f"\n  its last successful notebook is unchanged at {executed}" if executed.is_file() else ""
        raise PipelineError(
            f"chapter {chapter} failed in {where} of {failed}: {error}{kept}\n"
            f"  earlier chapters' outputs in {run_dir} are intact") from None
    os.replace(attempt, executed)
    failed.unlink(missing_ok=True)
    return executed, round(time.perf_counter() - start, 2)


def _run_chapters(params: dict, chapters: list[str], run_dir: Path, *, force: bool, kernel_name: str) -> dict:
    """:func:`run_pipeline`'s work, once it holds the run's lock."""
    from tqdm.auto import tqdm

    state_path = run_dir / STATE_FILE
    state = io.read_json(state_path) if state_path.is_file() else {}
    if chapters == [REPORT_CHAPTER] and not set(state) - {REPORT_CHAPTER}:
        # the report tabulates the other chapters' results: alone on an empty run it had nothing to read
        raise PipelineError(f"no chapter of run {params['run']!r} has run: {REPORT_CHAPTER} reports on the "
                            f"others; run them first (without --only)")
    manifest = {
        "params_file": str(params["path"]),
        "run": params["run"],
        "common": params["common"],
        "overrides": params["overrides"],
        "chapters": {},
        "device": _device(),
        "environment": provenance.environment(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    folders: dict[Path, str] = {}
    rerun_from_here = force
    bar = tqdm(chapters, desc=f"pipeline {params['run']}", unit="chapter")
    for chapter in bar:
        bar.set_postfix_str(chapter)
        parameters = chapter_parameters(params, chapter, force=force)
        previous = state.get(chapter, {})
        if (not rerun_from_here and previous.get("fingerprint") == _fingerprint(chapter, parameters, folders)
                and _outputs_intact(run_dir, chapter, previous.get("outputs"))):
            manifest["chapters"][chapter] = {**previous, "skipped": True, "status": "current"}
            continue
        rerun_from_here = True
        # from here on this chapter's outputs change, and later chapters read them: none of them is current
        for later in CHAPTERS[CHAPTERS.index(chapter):]:
            state.pop(later, None)
        io.write_json(state_path, state)
        executed, seconds = _execute(chapter, parameters, run_dir, manifest, kernel_name=kernel_name)
        folders.clear()  # the chapter may have written into folders that parameters name (chapter 00: data_root)
        state[chapter] = {"fingerprint": _fingerprint(chapter, parameters, folders), "seconds": seconds,
                          "parameters": parameters, "notebook": str(executed), "outputs": _outputs(run_dir, chapter)}
        io.write_json(state_path, state)
        manifest["chapters"][chapter] = {**state[chapter], "skipped": False, "status": "done"}
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    io.write_json(run_dir / MANIFEST_FILE, manifest)
    return manifest


def main(argv: list[str] | None = None, *, value_check: ValueCheck | None = None) -> int:
    """``fvos pipeline``; ``value_check``: see :func:`load_run_params` (the ``fvos`` command passes the kit's)."""
    parser = argparse.ArgumentParser(prog="fvos pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("params", help="params YAML file (e.g. params/demo.yaml)")
    parser.add_argument("--force", action="store_true",
                        help="re-run chapters even if their outputs are current, and redo their cached work "
                             "(chapter 02 trains again from its starting weights)")
    parser.add_argument("--only", nargs="+", choices=CHAPTERS, metavar="CHAPTER",
                        help=f"run only these chapters of the params file: {', '.join(CHAPTERS)}")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one value of the params file: CHAPTER.KEY=VALUE or common.KEY=VALUE, VALUE "
                             "in YAML, type-checked as the file's (repeatable; recorded in the manifest)")
    parser.add_argument("--show", action="store_true",
                        help="print every chapter's resolved parameters (YAML) and run nothing")
    parser.add_argument("--wait", action="store_true",
                        help="when a chapter submits a cluster job, wait for it to end and go on (default: stop, "
                             f"exit status {WAITING_EXIT})")
    parser.add_argument("--poll", type=float, default=60.0, metavar="SECONDS",
                        help="with --wait: how often the job's state is asked (default: 60)")
    args = parser.parse_args(argv)
    if not args.poll > 0:
        parser.error(f"--poll must be a positive number of seconds, got {args.poll:g}")
    try:
        if args.show:
            print(show_parameters(load_run_params(args.params, args.overrides, value_check)), end="")
            return 0
        manifest = run_pipeline(args.params, force=args.force, only=args.only, kernel_name=args.kernel,
                                overrides=args.overrides, wait=args.wait, poll_seconds=args.poll,
                                value_check=value_check)
    except ChapterWaiting as waiting:
        print(f"{waiting}\n  go on: run this command again once the job has ended, or add --wait to wait for it")
        return WAITING_EXIT
    except (PipelineError, ValueError) as err:  # a ValueError: a bad --set; a DataError: the run in use (locks)
        print(f"error: {err}", file=sys.stderr)
        return 1
    run_dir = paths.outputs_dir(manifest["run"])
    for chapter, info in manifest["chapters"].items():
        status = "skipped (current)" if info["skipped"] else f"{info['seconds']:.1f} s"
        print(f"{chapter:28s} {status}")
    print(f"outputs: {run_dir}")
    return 0

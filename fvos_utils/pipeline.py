"""The whole FVOS pipeline in one command: the chapters (notebooks) in order, through papermill.

    python -m fvos_utils.pipeline params/demo.yaml [--force] [--only 00_data_and_metrics ...]

A params file (YAML)::

    run: demo                  # outputs/<run>/ receives everything
    common:                    # given to every chapter whose parameters cell declares the key
      seed: 0
    chapters:                  # which chapters run (always in the kit's order), with their parameters
      00_data_and_metrics:
        n_show: 3

Every key is checked against the parameters cells of the notebooks it feeds before anything runs: a
misspelt key is an error here, not papermill's silent warning. Chapters pass results through files
under ``outputs/<run>/`` (never through hidden state). A chapter whose notebook, parameters and the
files they name (chapter 02's training params, say) are unchanged since its last successful run is
skipped; once one chapter re-runs, every later one does too, since it may read what that one wrote.
``--force`` re-runs every chapter and is passed on as the ``force`` parameter to chapters that keep
work between runs (chapter 02 then trains again instead of finding its stages finished). A failing
chapter stops the chain with a message naming the notebook and the cell; its partial notebook is
kept, earlier chapters' outputs stay as they are.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import yaml

from . import io, paths, provenance

#: The kit's chapters in the order they run (notebooks/<name>.ipynb).
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


class PipelineError(RuntimeError):
    """A params file that does not fit the notebooks, or a chapter that failed."""


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
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return PipelineError(f"{source}: unknown parameter {key!r}{hint}; known: {', '.join(sorted(known))}")


def load_run_params(path: str | os.PathLike) -> dict:
    """Read and check a params file; returns ``{"run", "common", "chapters": {chapter: params}}``."""
    path = paths.resolve(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: expected a mapping at the top level")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown_key_error(str(path), key, TOP_LEVEL_KEYS)
    run = raw.get("run")
    if not isinstance(run, str) or not run or "/" in run:
        raise PipelineError(f"{path}: 'run' must be a plain folder name under outputs/, got {run!r}")
    chapters = raw.get("chapters") or {}
    common = raw.get("common") or {}
    for name in chapters:
        if name not in CHAPTERS:
            raise PipelineError(f"{path}: unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    declared = {name: notebook_parameters(name) for name in chapters}
    for name, params in chapters.items():
        for key in params or {}:
            if key in RUNNER_KEYS:
                raise PipelineError(f"{path}: chapters.{name}: {key!r} is set by the runner (the top-level "
                                    f"'run' key, the --force flag), not per chapter")
            if key not in declared[name]:
                raise _unknown_key_error(f"{path}: chapters.{name}", key, declared[name])
    for key in common:
        if key in RUNNER_KEYS:
            raise PipelineError(f"{path}: common: {key!r} is set by the runner, not in common")
        if not any(key in d for d in declared.values()):
            known = set().union(*declared.values()) if declared else set()
            raise _unknown_key_error(f"{path}: common (no chapter declares it)", key, known)
    return {"run": run, "common": common, "chapters": {n: dict(chapters[n] or {}) for n in CHAPTERS
                                                       if n in chapters}, "declared": declared, "path": path}


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
    chapter alone, such as ``python -m fvos_utils.recipe``)."""
    declared = notebook_parameters(chapter)
    values = {name: ast.literal_eval(p["default"]) for name, p in declared.items()}
    values.update({k: v for k, v in params["common"].items() if k in declared})
    values.update(params["chapters"].get(chapter, {}))
    if "run" in declared:
        values["run"] = params["run"]
    return values


def _fingerprint(chapter: str, parameters: dict) -> str:
    """What a chapter's outputs depend on: its notebook, its parameters (``force`` aside: it asks for a
    re-run, it does not change the result) and the files they name (e.g. chapter 02's training params)."""
    digest = hashlib.sha256(notebook_path(chapter).read_bytes())
    kept = {k: v for k, v in parameters.items() if k != "force"}
    digest.update(json.dumps(kept, sort_keys=True).encode())
    for key, value in sorted(kept.items()):
        if isinstance(value, str) and value and (path := paths.resolve(value)).is_file():
            stat = path.stat()
            named = path.read_bytes() if stat.st_size <= HASHED_FILE_BYTES else f"{stat.st_size} {stat.st_mtime_ns}".encode()
            digest.update(key.encode() + b"\0" + hashlib.sha256(named).digest())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- run
def _device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu (torch not installed)"
    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"


def run_pipeline(params_file: str | os.PathLike, *, force: bool = False, only: list[str] | None = None,
                 kernel_name: str = "python3") -> dict:
    """Run the chapters of ``params_file``; returns the manifest (also written to the run folder)."""
    import papermill
    from tqdm.auto import tqdm

    params = load_run_params(params_file)
    chapters = list(params["chapters"])
    if only:
        for name in only:
            if name not in chapters:
                raise PipelineError(f"--only {name}: not a chapter of {params['path']} ({', '.join(chapters)})")
        chapters = [c for c in chapters if c in only]
    run_dir = paths.outputs_dir(params["run"])
    state_path = run_dir / STATE_FILE
    state = io.read_json(state_path) if state_path.is_file() else {}
    manifest = {
        "params_file": str(params["path"]),
        "run": params["run"],
        "common": params["common"],
        "chapters": {},
        "device": _device(),
        "environment": provenance.environment(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    rerun_from_here = force
    bar = tqdm(chapters, desc=f"pipeline {params['run']}", unit="chapter")
    for chapter in bar:
        bar.set_postfix_str(chapter)
        parameters = chapter_parameters(params, chapter, force=force)
        fingerprint = _fingerprint(chapter, parameters)
        executed = run_dir / f"{chapter}.ipynb"
        previous = state.get(chapter, {})
        if not rerun_from_here and previous.get("fingerprint") == fingerprint and executed.is_file():
            manifest["chapters"][chapter] = {**previous, "skipped": True}
            continue
        rerun_from_here = True
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook_path(chapter)), str(executed), parameters=parameters,
                                       kernel_name=kernel_name, cwd=str(paths.project_root()),
                                       progress_bar=False)
        except papermill.PapermillExecutionError as err:
            state.pop(chapter, None)
            io.write_json(state_path, state)
            raise PipelineError(
                f"chapter {chapter} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\n  partial notebook kept at {executed}\n"
                f"  earlier chapters' outputs in {run_dir} are intact") from None
        seconds = round(time.perf_counter() - start, 2)
        state[chapter] = {"fingerprint": fingerprint, "seconds": seconds, "parameters": parameters,
                          "notebook": str(executed)}
        io.write_json(state_path, state)
        manifest["chapters"][chapter] = {**state[chapter], "skipped": False}
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    io.write_json(run_dir / MANIFEST_FILE, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fvos_utils.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("params", help="params YAML file (e.g. params/demo.yaml)")
    parser.add_argument("--force", action="store_true",
                        help="re-run chapters even if their outputs are current, and redo their cached work "
                             "(chapter 02 trains again from its starting weights)")
    parser.add_argument("--only", nargs="+", metavar="CHAPTER", help="run only these chapters")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    args = parser.parse_args(argv)
    try:
        manifest = run_pipeline(args.params, force=args.force, only=args.only, kernel_name=args.kernel)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    run_dir = paths.outputs_dir(manifest["run"])
    for chapter, info in manifest["chapters"].items():
        status = "skipped (current)" if info["skipped"] else f"{info['seconds']:.1f} s"
        print(f"{chapter:28s} {status}")
    print(f"outputs: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

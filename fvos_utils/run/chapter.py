"""What every chapter notebook does first and last, so that the notebooks only narrate and call.

- :func:`start`: the chapter's output folder ``outputs/<run>/<chapter>/``, torch threads (where the
  chapter declares ``threads``), the kit's figure style, and the values of the parameters its notebook
  declares, read from its own ``parameters`` cell (papermill's injected values included).
- :meth:`Chapter.write_metrics`: the one ``metrics.json`` writer: chapter, those parameters, package
  versions and git commit (:func:`fvos_utils.base.provenance.environment`), and the chapter's results.
- :func:`calls`: the kit functions a chapter's code calls, for the chapter map in ``docs/chapters.md``
  (:func:`map_table`; a test keeps it in step with the code).
"""
from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from fvos_utils.base import io, paths, provenance

#: chapter -> the paper section it follows (FVOS, PVUW 2025 MOSE track)
PAPER_SECTIONS = {
    "00_data_and_metrics": "3.1 Datasets, 3.2 Evaluation Metrics",
    "01_sam2_inference": "2.1 (the SAM 2 architecture, Figure 1)",
    "02_finetune": "2.1 MOSE Fine-tuning (two stages)",
    "03_epoch_selection": "2.1 (the best epoch of each stage), Table 1",
    "04_sigmoid_search": "3.4 Implementation Details, Table 1 (memory-encoder sigmoid)",
    "05_morphology_ablation": "2.2 Morphological Post-Processing, Figure 2",
    "06_multiscale_fusion": "2.3 Multi-Scale Results Fusion, Figure 3",
    "07_report": "3.5 Performance Comparison, Tables 2 and 3",
    "08_viewer": "(none: a browser for any run's predictions)",
}
METRICS_FILE = "metrics.json"
#: the kit's own chapter notebooks, beside this package: where a chapter's declared parameters and calls
#: are read (``$FVOS_ROOT`` may move outputs and data elsewhere, never the chapters' source)
KIT_NOTEBOOKS = paths.KIT_DIR / "notebooks"
#: parameters :func:`start` itself uses (a chapter that calls it need not name them again)
START_PARAMETERS = ("run", "threads")
#: modules of plumbing (folders, figures, files) left out of the chapter map
UTILITY_MODULES = ("chapter", "figures", "io", "paths", "provenance", "tables")
#: modules that implement a step of the method: each function a chapter calls from them names that
#: chapter in its docstring ("Shown in chapter NN")
METHOD_MODULES = ("choices", "claims", "epoch_selection", "fusion", "postprocess", "recipe", "sigmoid_search", "submissions",
                  "train")


@dataclass(frozen=True)
class Chapter:
    """A running chapter: its name, run, output folder and declared parameters' values."""

    name: str
    run: str
    out_dir: Path
    parameters: dict

    def write_metrics(self, **results) -> Path:
        """Write ``out_dir/metrics.json``: ``chapter``, ``parameters`` (as run), ``environment`` and
        ``results``' keys (JSON-ready values). Returns its path."""
        clash = {"chapter", "parameters", "environment"} & set(results)
        if clash:
            raise ValueError(f"result keys {sorted(clash)} are written by write_metrics itself")
        path = self.out_dir / METRICS_FILE
        io.write_json(path, {"chapter": self.name, "parameters": self.parameters, **results,
                             **self._synthetic_data(), "environment": provenance.environment()})
        return path

    def _synthetic_data(self) -> dict:
        """``{"synthetic_data": {"seed", "config"}}`` when the chapter's ``data_root`` holds a generated set
        (chapters use an existing one as it is, whatever its configuration), else {}."""
        root = self.parameters.get("data_root")
        meta = paths.resolve(root) / "meta.json" if root else None
        if meta is None or not meta.is_file():
            return {}
        recorded = io.read_json(meta)
        if not isinstance(recorded, dict) or "config" not in recorded:
            return {}
        return {"synthetic_data": {"seed": recorded.get("seed"), "config": recorded["config"]}}


def declared_parameters(chapter: str) -> list[str]:
    """The names the chapter's notebook declares in its ``parameters`` cell, in order."""
    cell = _parameters_cell(_notebook(chapter), chapter)
    return [node.target.id for node in ast.parse(cell).body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)]


#: environment variable the pipeline sets for a chapter's kernel: ``{"params_file", "overrides"}`` (JSON), where
#: the run's values came from
RUN_VALUES_ENV = "FVOS_RUN_VALUES"


def parameter_defaults(chapter: str) -> dict:
    """The values the chapter's ``parameters`` cell declares (its defaults), by name."""
    cell = _parameters_cell(_notebook(chapter), chapter)
    return {node.target.id: ast.literal_eval(node.value) for node in ast.parse(cell).body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None}


def values_used(chapter: str, parameters: Mapping) -> list[dict]:
    """The parameters whose value in this run differs from the chapter's default, in order:
    ``{"name", "value", "default", "why"}``. ``why``: the ``--set`` that gave it, else the params file and
    the comment on the value's line there (:data:`RUN_VALUES_ENV`), else "given by the caller"."""
    origin = json.loads(os.environ.get(RUN_VALUES_ENV) or "{}")
    defaults = parameter_defaults(chapter)
    rows = []
    for name, value in parameters.items():
        if name in defaults and value != defaults[name]:
            rows.append({"name": name, "value": value, "default": defaults[name],
                         "why": _why(chapter, name, origin)})
    return rows


def _why(chapter: str, name: str, origin: dict) -> str:
    for override in origin.get("overrides", []):
        if override.split("=", 1)[0].strip() in (f"{chapter}.{name}", f"common.{name}"):
            return f"`--set {override}`"
    params_file = origin.get("params_file")
    if not params_file:
        return "given by the caller"
    root = paths.project_root()
    shown = Path(params_file).relative_to(root) if Path(params_file).is_relative_to(root) else params_file
    comment = _params_comment(Path(params_file), chapter, name)
    return f"`{shown}`" + (f": {comment}" if comment else "")


def _params_comment(params_file: Path, chapter: str, name: str) -> str | None:
    """The comment on ``name``'s line in the params file: under ``chapter``'s section, else under ``common``
    (what a params file says of a value's reason)."""
    try:
        lines = params_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for section in (chapter, "common"):
        inside = None
        for line in lines:
            header = re.match(r"^(\s*)([\w.-]+):\s*(#.*)?$", line)
            if header and header[2] == section:
                inside = len(header[1])
                continue
            if inside is None or not line.strip() or line.lstrip().startswith("#"):
                continue
            if len(line) - len(line.lstrip()) <= inside:
                inside = None
                continue
            found = re.match(rf"^\s+{re.escape(name)}:[^#]*#\s*(.+)$", line)
            if found:
                return found[1].strip()
    return None


def values_note(rows: list[dict]) -> str:
    """What :func:`start` shows under the parameters: the values this run changed, and why."""
    if not rows:
        return "This run uses the defaults of the parameters cell above."
    items = "\n".join(f"- `{row['name']}` = `{row['value']!r}` instead of `{row['default']!r}`: {row['why']}"
                      for row in rows)
    return f"**The values this run used** where they differ from the defaults of the parameters cell:\n\n{items}"


def start(chapter: str, namespace: Mapping) -> Chapter:
    """Begin ``chapter`` (its notebook passes ``globals()``): its folder, threads, figure style, parameters;
    in a notebook it shows which values differ from the defaults and why (:func:`values_note`)."""
    from fvos_utils.run import figures

    names = declared_parameters(chapter)
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NameError(f"{chapter}: parameters {missing} are declared but not defined (run the parameters cell)")
    parameters = {name: namespace[name] for name in names}
    _show_markdown(values_note(values_used(chapter, parameters)))
    if "threads" in parameters:
        import torch

        torch.set_num_threads(int(parameters["threads"]))
    figures.use_style()
    run = parameters.get("run", "")
    out_dir = paths.outputs_dir(f"{run}/{chapter}") if run else paths.outputs_dir(chapter)
    return Chapter(chapter, run, out_dir, parameters)


def _show_markdown(text: str) -> None:
    """Displayed in a notebook (a kernel); nothing elsewhere (a script, a test)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Markdown(text))


def calls(chapter: str) -> list[str]:
    """``"module.function"`` for every call of a kit module's function in the chapter's code cells,
    sorted (modules imported as ``from fvos_utils.<subpackage> import ...``)."""
    notebook = _notebook(chapter)
    code = "\n".join(_cell_source(c) for c in notebook["cells"] if c["cell_type"] == "code")
    tree = ast.parse(code)
    modules = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fvos_utils.")
               and node.module.count(".") == 1 for alias in node.names}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = node.func
            while isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute):
                target = target.value  # choices.EpochPick.read -> choices.EpochPick
            if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id in modules):
                found.add(f"{target.value.id}.{target.attr}")
    return sorted(found)


def map_calls(chapter: str) -> list[str]:
    """:func:`calls` without the plumbing of :data:`UTILITY_MODULES`: what the chapter map lists."""
    return [call for call in calls(chapter) if call.split(".")[0] not in UTILITY_MODULES]


def map_table() -> str:
    """The chapter map of ``docs/chapters.md``: one row per chapter (notebook, paper section, kit functions
    it calls)."""
    rows = ["| chapter | paper section | calls |", "|---|---|---|"]
    for chapter in PAPER_SECTIONS:
        listed = ", ".join(f"`{call}`" for call in map_calls(chapter))
        rows.append(f"| `notebooks/{chapter}.ipynb` | {PAPER_SECTIONS[chapter]} | {listed} |")
    return "\n".join(rows)


def _notebook(chapter: str) -> dict:
    path = KIT_NOTEBOOKS / f"{chapter}.ipynb"
    if not path.is_file():
        raise io.DataError(path, "chapter notebook not found")
    return json.loads(path.read_text())


def _cell_source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _parameters_cell(notebook: dict, chapter: str) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return _cell_source(cell)
    raise io.DataError(KIT_NOTEBOOKS / f"{chapter}.ipynb", "no cell tagged 'parameters'")


def read_metrics(run: str, chapter: str) -> dict:
    """The ``metrics.json`` an earlier chapter of ``run`` wrote (DataError naming it when that chapter
    has not run)."""
    path = paths.run_dir(run) / chapter / METRICS_FILE
    if not path.is_file():
        raise io.DataError(path, f"not found: run chapter {chapter} of run {run!r} first")
    return io.read_json(path)

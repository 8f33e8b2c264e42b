"""An executed run as a static HTML book: ``outputs/<run>/book/index.html``.

    fvos book --run demo        (or: make book RUN=demo)

The book is read, not run: it is built from the chapters the pipeline already executed
(``outputs/<run>/<chapter>.ipynb``, in the kit's chapter order) with Sphinx, myst-nb (its execution off,
so no cell runs again) and sphinx-book-theme, all installed from the package registry; nothing is fetched
while building. The first page gives the run's verdict in words, its claims scorecard as a figure and as a
table (written by chapter 07) and links the report, which is a page of the book with its figures; each
chapter is a page with its prose, code, figures and tables. Wide tables scroll inside the page, their cells
padded (:data:`BOOK_CSS`).

The book shows copies of the notebooks, never the executed notebooks themselves, and in them:

* cells that exist for the tests (a ``# NBVAL_CHECK_OUTPUT`` mark, or the :data:`TEST_ONLY_TAG` cell tag)
  are dropped: they pin numbers for nbval and say nothing to a reader;
* the parameters cells (the notebook's defaults, papermill's injected values) show their code folded;
* a progress bar's many refreshes in a stream output are collapsed to its last state;
* widgets, which need a running kernel (or scripts from a CDN), become the text they showed last, from
  the widget state papermill saved: a tqdm bar in a notebook is a widget, and reads as tqdm's line at
  its end; a bar hidden when it closed (``leave=False``) is left out, as Jupyter hides it.

Everything is built in a temporary folder inside ``outputs/<run>/``, and the finished HTML replaces
``outputs/<run>/book/`` in one rename: a failed build leaves the previous book as it was.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fvos_utils.base import io, locks, paths
from fvos_utils.data.testing import NBVAL_MARK
from fvos_utils.run.pipeline import CHAPTERS

#: The cell tag that marks a cell as run for the tests only; the book leaves such cells out.
TEST_ONLY_TAG = "test-only"
#: Tags of the cells that set a chapter's parameters (the notebook's own, then papermill's).
PARAMETER_TAGS = ("parameters", "injected-parameters")
#: Chapter 07's claims scorecard (a Markdown table and its figure) and report, relative to ``outputs/<run>/``.
SCORECARD = Path("07_report") / "claims_scorecard.md"
SCORECARD_FIGURE = Path("07_report") / "claims_scorecard.png"
REPORT = Path("07_report") / "report.md"
#: the book's page of the report, and the folder its figures are copied to (both in the book's source)
REPORT_PAGE, REPORT_FIGURES = "report", "report_figures"
#: the book's own style: a table wider than the page scrolls inside it instead of squeezing its columns,
#: and cells keep space between them
BOOK_CSS = """\
.bd-article table { display: block; max-width: 100%; overflow-x: auto; }
.bd-article th, .bd-article td { padding: 0.25rem 0.6rem; vertical-align: top; }
.bd-article td { min-width: 10rem; }
.bd-article td.text-right { min-width: 4rem; }
.bd-article td:first-child { min-width: 14rem; }
"""
BOOK_DIR = "book"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: Characters of a progress bar drawn as text, and its full and empty cells (as tqdm draws it).
BAR_WIDTH, BAR_FULL, BAR_EMPTY = 10, "\u2588", " "
#: The end of a tqdm progress line: its timing bracket, e.g. ``[00:01<00:02, 30.00it/s]``, ``[00:00<?, ?it/s]``
#: or ``[01:02, 1.5s/it, loss=0.3]``.
_PROGRESS_END = re.compile(r"\[(?:\d+:)?\d+:\d\d(?:<[\d:?]+)?(?:, [^\]]*)?\]\s*$")
#: What names a progress bar in its line: the text before its percentage or count (``desc: 45%|``,
#: ``desc: 12it [``).
_PROGRESS_NAME = re.compile(r"(.*?)\s*(?:\d{1,3}%\||[\d.]+[kMGTP]?\w*\s\[)")

CONF_PY = '''\
# Written by fvos_utils.run.book for one build; edit fvos_utils/run/book.py instead.
project = {project!r}
html_title = {project!r}
author = "the FVOS kit"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
nb_execution_mode = "off"          # the notebooks were executed by the pipeline; never run them again
nb_render_markdown_format = "myst"  # Markdown outputs (the report's tables) rendered with tables
nb_ipywidgets_js = {{}}              # no widget scripts from a CDN (fvos_utils.run.book turns widgets into text)
html_theme_options = {{"show_toc_level": 2, "use_download_button": False}}  # the sources are not copied
html_copy_source = False
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["fvos.css"]       # fvos_utils.run.book.BOOK_CSS
'''


def run_dir(run: str) -> Path:
    """``outputs/<run>/``, not created (a book of a missing run is an error, not an empty folder)."""
    return paths.run_dir(run)


def chapter_notebooks(run: str) -> list[Path]:
    """The run's executed chapter notebooks in chapter order; a DataError when it has none."""
    folder = run_dir(run)
    found = [folder / f"{chapter}.ipynb" for chapter in CHAPTERS if (folder / f"{chapter}.ipynb").is_file()]
    if not found:
        raise io.DataError(folder, "no executed chapter; run make demo first")
    return found


def is_test_only(cell) -> bool:
    """Whether a cell exists for the tests only (an nbval mark or the :data:`TEST_ONLY_TAG` tag)."""
    return NBVAL_MARK in cell.source or TEST_ONLY_TAG in cell.metadata.get("tags", [])


def _progress_name(line: str) -> str | None:
    """The name of the progress bar that ``line`` shows ("" when unnamed), or None for any other line."""
    if not _PROGRESS_END.search(line):
        return None
    named = _PROGRESS_NAME.match(line)
    return named.group(1) if named else ""


def collapse_progress(text: str) -> str:
    """``text`` with each progress bar's consecutive refreshes reduced to the last one.

    A bar refreshes either on a new line (a log file) or after a carriage return (a terminal); both count
    as lines here. Other lines stay as they are, and so does a bar's final state.
    """
    lines = []
    for line in text.split("\n"):
        lines += [piece for piece in line.split("\r") if piece] or [""]
    kept: list[str] = []
    previous_bar = None
    for line in lines:
        bar = _progress_name(line)
        if bar is not None and bar == previous_bar:
            kept[-1] = line
        else:
            kept.append(line)
        previous_bar = bar
    return "\n".join(kept)


def _model_id(reference: str) -> str:
    return reference.removeprefix("IPY_MODEL_")


def widget_text(model_id: str, states: dict) -> str | None:
    """What a saved widget last showed, as text: its text children (HTML, labels) and progress bars in
    order, a bar drawn as tqdm draws it; None where it showed nothing (hidden, not saved, or no text)."""
    model = states.get(model_id)
    if model is None:
        return None
    layout = states.get(_model_id(model["state"].get("layout", "")), {}).get("state", {})
    if layout.get("visibility") == "hidden" or layout.get("display") == "none":
        return None
    parts = []
    for child in model["state"].get("children") or [model_id]:
        state = states.get(_model_id(child), {}).get("state", {})
        if "max" in state and "bar_style" in state:  # a progress bar
            filled = round(BAR_WIDTH * state["value"] / state["max"]) if state["max"] else 0
            parts.append("|" + BAR_FULL * filled + BAR_EMPTY * (BAR_WIDTH - filled) + "|")
        elif isinstance(state.get("value"), str):  # HTML or a label
            parts.append(html.unescape(re.sub(r"<[^>]*>", "", state["value"])).replace("\u2007", " "))
    return "".join(parts).strip() or None


def _book_outputs(outputs: list, states: dict) -> list:
    """A cell's outputs as the book shows them: widgets as text (:func:`widget_text`), consecutive
    streams of the same name as one, progress bars collapsed (:func:`collapse_progress`)."""
    from nbformat.v4 import new_output

    shown = []
    for output in outputs:
        if output.output_type == "display_data" and WIDGET_VIEW in output.data:
            text = widget_text(output.data[WIDGET_VIEW]["model_id"], states)
            if text is None:
                continue
            output = new_output("stream", name="stderr", text=text + "\n")  # where tqdm writes in a terminal
        if output.output_type == "stream" and shown and shown[-1].output_type == "stream" \
                and shown[-1].name == output.name:
            shown[-1].text += output.text
        else:
            shown.append(output)
    for output in shown:
        if output.output_type == "stream":
            output.text = collapse_progress(output.text)
    return shown


def book_copy(path: Path):
    """The notebook at ``path`` as the book shows it (see the module's docstring); the file is not changed."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except (ValueError, KeyError, AttributeError) as err:  # not JSON, or JSON that is no notebook
        raise io.DataError(path, f"not a readable notebook ({type(err).__name__}: {err})") from None
    states = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    notebook.cells = [cell for cell in notebook.cells if not is_test_only(cell)]
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if any(tag in tags for tag in PARAMETER_TAGS):
            cell.metadata["tags"] = [*tags, "hide-input"]
        if cell.cell_type == "code":
            cell.outputs = _book_outputs(cell.outputs, states)
    return notebook


def nested_headings(markdown: str, levels: int) -> str:
    """``markdown`` with each heading ``levels`` deeper (at most ``######``), code blocks left alone: a file
    placed under one of the page's sections stays inside it, whatever headings it has of its own."""
    lines, in_code = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        heading = None if in_code else re.match(r"(#{1,6})(\s)", line)
        if heading:
            line = "#" * min(6, len(heading.group(1)) + levels) + line[len(heading.group(1)):]
        lines.append(line)
    return "\n".join(lines)


def verdict_words(report: str) -> str | None:
    """The report's opening paragraph (the run's verdict in words, between its title and first section)."""
    body = report.split("\n## ", 1)[0].split("\n", 1)
    words = body[1].strip() if len(body) > 1 else ""
    return words or None


def index_page(run: str, chapters: list[str]) -> str:
    """The book's first page (MyST Markdown): the run's verdict in words, its claims scorecard (figure and
    table), the report's page, the chapters."""
    folder = run_dir(run)
    lines = [f"# FVOS run `{run}`", ""]
    if (folder / REPORT).is_file() and (words := verdict_words((folder / REPORT).read_text())):
        lines += [words, ""]
    lines += ["## Claims scorecard", ""]
    if (folder / SCORECARD_FIGURE).is_file():
        lines += [f"![The paper's claims tested on run {run}: dJ&F with its 95% interval]({SCORECARD_FIGURE.name})", ""]
    scorecard = folder / SCORECARD
    if scorecard.is_file():
        lines += [nested_headings(scorecard.read_text().strip(), 2), ""]  # under "Claims scorecard"
    else:
        lines += [f"This run has no scorecard yet (`{SCORECARD}` is missing): run chapter 07 (`07_report`).", ""]
    if (folder / REPORT).is_file():
        lines += [f"Every table and figure of the run: [the report]({REPORT_PAGE}.md) (also in the run folder as "
                  f"`{REPORT.as_posix()}`).", ""]
    missing = [chapter for chapter in CHAPTERS if chapter not in chapters]
    if missing:
        lines += [f"Chapters this run has not executed: {', '.join(f'`{c}`' for c in missing)}.", ""]
    pages = chapters + ([REPORT_PAGE] if (folder / REPORT).is_file() else [])
    lines += ["```{toctree}", ":caption: Chapters", ":maxdepth: 1", "", *pages, "```", ""]
    return "\n".join(lines)


def report_page(run: str, source: Path) -> str:
    """The report as a page of the book: its figures copied into the source (a figure the report links
    outside the run folder, or one missing, is left as its caption)."""
    folder = run_dir(run)
    report = folder / REPORT

    def figure(found: re.Match) -> str:
        caption, target = found.group(1), (report.parent / found.group(2)).resolve()
        if not target.is_file() or not target.is_relative_to(folder.resolve()):
            return f"*{caption}*"
        copy = Path(REPORT_FIGURES) / "_".join(target.relative_to(folder.resolve()).parts)
        (source / copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(target, source / copy)
        return f"![{caption}]({copy.as_posix()})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", figure, report.read_text())


def write_source(run: str, source: Path) -> None:
    """The Sphinx source folder of ``run``'s book: conf.py, index.md and the chapters' book copies."""
    import nbformat

    notebooks = chapter_notebooks(run)
    source.mkdir(parents=True, exist_ok=True)
    (source / "conf.py").write_text(CONF_PY.format(project=f"FVOS kit: run {run}"))
    (source / "_static").mkdir(exist_ok=True)
    (source / "_static" / "fvos.css").write_text(BOOK_CSS)
    folder = run_dir(run)
    if (folder / SCORECARD_FIGURE).is_file():
        shutil.copy(folder / SCORECARD_FIGURE, source / SCORECARD_FIGURE.name)
    if (folder / REPORT).is_file():
        (source / f"{REPORT_PAGE}.md").write_text(report_page(run, source))
    (source / "index.md").write_text(index_page(run, [path.stem for path in notebooks]))
    for path in notebooks:
        nbformat.write(book_copy(path), source / path.name)


def build_book(run: str) -> Path:
    """Build ``outputs/<run>/book/`` from the run's executed chapters; returns its ``index.html``.

    Sphinx builds inside a temporary folder in ``outputs/<run>/`` (myst-nb also writes its notebook
    outputs beside the HTML folder there); the finished HTML then replaces the book in one rename.
    """
    folder = run_dir(run)
    chapter_notebooks(run)  # a missing run fails here, before any folder is made
    book = folder / BOOK_DIR
    with locks.exclusive(book), tempfile.TemporaryDirectory(prefix=f".{BOOK_DIR}.", suffix=".tmp", dir=folder) as work:
        work = Path(work)
        write_source(run, work / "source")
        html = work / "html"
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-d", str(work / "doctrees"),
                   str(work / "source"), str(html)]
        done = subprocess.run(command, check=False)
        if done.returncode or not (html / "index.html").is_file():
            raise io.DataError(book, f"sphinx-build failed (exit status {done.returncode}); its messages are above")
        io.remove_dir(book)
        os.replace(html, book)
    return book / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fvos book", description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="demo", help="the run whose executed chapters make the book (outputs/<run>/)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        index = build_book(args.run)
    except (ValueError, OSError) as err:  # a DataError, a run name that leaves outputs/, a file in the way
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {index} ({time.perf_counter() - started:.1f} s)")
    return 0

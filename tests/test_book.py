"""The executed run as a book (fvos_utils.run.book): built from a tiny run of hand-made executed notebooks.

The run has two chapters, each with a title, a parameters cell, a figure (a real PNG output), a progress
bar's refreshes in a stream, an nbval-checked cell and a test-only cell, and chapter 07's scorecard. The
book is built once for the module; the browser test opens it in headless Chromium.
"""
import base64
import io as stdio
import json
import re
from pathlib import Path

import matplotlib
import nbformat
import pytest
from devtools_browser import DevTools, chromium_or_skip, start_chromium, stop, wait_for  # tests/
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from fvos_utils.base import paths
from fvos_utils.base.io import DataError
from fvos_utils.data.testing import NBVAL_MARK
from fvos_utils.run import book

matplotlib.use("Agg")

RUN = "tiny"
TITLES = {"00_data_and_metrics": "Chapter 0 — Tiny data", "07_report": "Chapter 7 — Tiny report"}
CLAIM = "fine-tuning beats zero-shot SAM 2"
# as wide as a run's: 13 columns, long text in four
SCORECARD = f"""| claim | paper section | treatment | baseline | J&F | baseline J&F | dJ&F | CI low | CI high | split | videos | verdict | resolvable |
|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|
| {CLAIM} | 3.2, Figure 2 | the best fine-tuned epoch (stage 1, epoch 2) | the best single scale on valid, 1.75 | 65.99 | 64.72 | 5.00 | 1.00 | 9.00 | valid (chosen here) | 4 | supported | 4.00 |
"""
VERDICT = "**In words.** Of the paper's 8 claims, this run supports 1; the recipe gains 5.00 points of J&F."
REPORT_TEXT = f"""# FVOS kit report: run `tiny`

{VERDICT}

## The paper's claims, tested on this run

{SCORECARD}
## Figures

![00_data_and_metrics: the figure](../00_data_and_metrics/figure.png)

*00_data_and_metrics: the figure*
"""
PINNED = "pinned J&F for nbval: 0.1234"
TEST_ONLY = "only the tests read this line"
N_REFRESHES = 40


def _figure_png(colour: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.bar([0, 1], [1, 2], color=colour)
    buffer = stdio.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _progress_bar(name: str, *, separator: str) -> str:
    """A tqdm bar's refreshes as a kernel's stderr records them: after carriage returns (a terminal-like
    stream) or one per line (TQDM_MININTERVAL in a log)."""
    refreshes = [f"{name}: {100 * i // N_REFRESHES:3d}%|{'#' * (i // 4):10s}| {i}/{N_REFRESHES} "
                 f"[00:{i:02d}<00:{N_REFRESHES - i:02d}, 1.00it/s]" for i in range(N_REFRESHES + 1)]
    return ("\r" if separator == "\r" else "") + separator.join(refreshes) + "\n"


def _progress_widget(model_id: str, name: str, done: int, total: int, *, hidden: bool) -> dict:
    """The saved state of a tqdm bar in a notebook (a box of label, bar and counts) at ``done`` of ``total``."""
    return {
        f"{model_id}-box": {"model_name": "HBoxModel", "state": {
            "layout": f"IPY_MODEL_{model_id}-layout",
            "children": [f"IPY_MODEL_{model_id}-{part}" for part in ("left", "bar", "right")]}},
        f"{model_id}-layout": {"model_name": "LayoutModel", "state": {"visibility": "hidden" if hidden else None}},
        f"{model_id}-left": {"model_name": "HTMLModel", "state": {"value": f"{name}:\u2007{100 * done // total}%"}},
        f"{model_id}-bar": {"model_name": "FloatProgressModel", "state": {
            "value": float(done), "max": float(total), "bar_style": "success"}},
        f"{model_id}-right": {"model_name": "HTMLModel", "state": {
            "value": f"\u2007{done}/{total}\u2007[00:01&lt;00:00,\u20077.00it/s]"}}}


def _widget_output(model_id: str):
    return new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": f"{model_id}-box", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": "the bar's first state, never its last"})


def _chapter(chapter: str, colour: str, separator: str):
    """An executed chapter notebook as papermill leaves it."""
    parameters = new_code_cell('run = "demo"', metadata={"tags": ["parameters"]})
    injected = new_code_cell(f'run = "{RUN}"', metadata={"tags": ["injected-parameters"]})
    work = new_code_cell("for clip in tqdm(clips):\n    score(clip)", outputs=[
        new_output("stream", name="stderr", text=_progress_bar(f"{chapter} clips", separator=separator))])
    figure = new_code_cell("plt.bar([0, 1], [1, 2])", outputs=[new_output(
        "display_data", data={"image/png": base64.b64encode(_figure_png(colour)).decode(),
                              "text/plain": "<Figure size 100x75 with 1 Axes>"})])
    pinned = new_code_cell(f"# {NBVAL_MARK}\nprint(pinned)", outputs=[
        new_output("stream", name="stdout", text=PINNED + "\n")])
    bars = new_code_cell("for video in tqdm(videos):\n    for frame in tqdm(frames, leave=False): ...", outputs=[
        _widget_output("outer"), _widget_output("inner")])
    test_only = new_code_cell("print(check)", metadata={"tags": [book.TEST_ONLY_TAG]}, outputs=[
        new_output("stream", name="stdout", text=TEST_ONLY + "\n")])
    notebook = new_notebook(cells=[
        new_markdown_cell(f"# {TITLES[chapter]}\n\nWhat this chapter does."), parameters, injected, work,
        bars, figure, pinned, test_only, new_markdown_cell(f"**Conclusion of {chapter}.** The bars rise.")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "language_info": {"name": "python"},
                  "widgets": {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
                              "state": {**_progress_widget("outer", "videos", 7, 7, hidden=False),
                                        **_progress_widget("inner", "hidden frames", 3, 3, hidden=True)}}}})
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
    return notebook


def _tiny_run(root: Path, *, scorecard: bool = True) -> Path:
    run_dir = root / "outputs" / RUN
    (run_dir / "07_report").mkdir(parents=True)
    for (chapter, colour), separator in zip((("00_data_and_metrics", "tab:blue"), ("07_report", "tab:red")),
                                            ("\r", "\n")):
        nbformat.write(_chapter(chapter, colour, separator), run_dir / f"{chapter}.ipynb")
    if scorecard:
        (run_dir / book.SCORECARD).write_text(SCORECARD)
        (run_dir / book.SCORECARD_FIGURE).write_bytes(_figure_png("tab:green"))
        (run_dir / book.REPORT).write_text(REPORT_TEXT)
        (run_dir / "00_data_and_metrics").mkdir()
        (run_dir / "00_data_and_metrics" / "figure.png").write_bytes(_figure_png("tab:orange"))
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny run's folder, once its book is built, and the executed notebooks' bytes before the build."""
    root = tmp_path_factory.mktemp("kit")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.ROOT_ENV, str(root))
        run_dir = _tiny_run(root)
        before = {path.name: path.read_bytes() for path in run_dir.glob("*.ipynb")}
        index = book.build_book(RUN)
    assert index == run_dir / "book" / "index.html"
    return run_dir, before


def _html(path: Path) -> str:
    assert path.is_file(), path
    return path.read_text()


def test_the_book_shows_the_scorecard_first_then_each_chapter_with_its_figure(built):
    run_dir, before = built
    pages = run_dir / "book"
    index = _html(pages / "index.html")
    main = index[index.index('id="main-content"'):]  # the page itself, after the navigation
    table = re.search(r"<table.*?</table>", main, re.S)
    assert table and CLAIM in table.group(0) and "supported" in table.group(0), "the scorecard table"
    assert main.index("Claims scorecard") < main.index(CLAIM)
    # the verdict in words opens the page, then the scorecard's figure; the report is a page of the book
    article = main[main.index("<article"):]  # the page's text, after its table of contents
    assert article.index("In words.") < article.index(
        "Claims scorecard") < article.index('src="_images/claims_scorecard.png"') < article.index(CLAIM)
    assert 'href="report.html"' in main and 'href="../07_report/report.md"' not in main
    report = _html(pages / "report.html")
    assert CLAIM in report and re.search(r'<img[^>]*src="_images/00_data_and_metrics_figure.png"', report)
    assert 'href="_static/fvos.css' in index and "overflow-x: auto" in (pages / "_static" / "fvos.css").read_text()
    nothing_fetched = re.compile(r'<(?:script|link|img)[^>]*(?:src|href)="(?:https?:)?//')
    assert not nothing_fetched.search(index), "the book loads nothing from the network"
    for chapter, title in TITLES.items():
        assert title in index, f"{title!r} in the first page's navigation"
        page = _html(pages / f"{chapter}.html")
        assert title in page and f"Conclusion of {chapter}." in page and not nothing_fetched.search(page)
        images = re.findall(r'<img[^>]*src="([^"]+\.png)"', page)
        assert images, f"{chapter}: a figure"
        with Image.open(pages / images[0]) as png:
            assert png.format == "PNG" and png.size[0] > 10
        assert PINNED not in page and NBVAL_MARK not in page, "nbval's checked cell is left out"
        assert TEST_ONLY not in page, "the test-only cell is left out"
        folded = re.findall(r'<details class="[^"]*above-input[^"]*">.*?</details>', page, re.S)
        assert len(folded) == 2 and "tiny" in folded[1], "both parameters cells, their code folded"
        # the progress bar shows its last state once, none of its earlier refreshes
        assert page.count(f"{N_REFRESHES}/{N_REFRESHES}") == 1
        assert f" {N_REFRESHES // 2}/{N_REFRESHES} " not in page and f" 1/{N_REFRESHES} " not in page
        # a progress widget shows as tqdm's text at its end; one hidden when it closed not at all
        assert page.count("videos: 100%|\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588| 7/7 "
                          "[00:01&lt;00:00, 7.00it/s]") == 1
        assert "hidden frames" not in page and "widget-view" not in page and "first state" not in page
    assert {path.name: path.read_bytes() for path in run_dir.glob("*.ipynb")} == before, \
        "the executed notebooks themselves are not changed"
    assert sorted(p.name for p in run_dir.iterdir()) == ["00_data_and_metrics", "00_data_and_metrics.ipynb", "07_report",
                                                         "07_report.ipynb", "book"], "no work folder left"


def test_collapse_progress_keeps_each_bars_last_refresh_and_every_other_line():
    text = "loading\n" + _progress_bar("a", separator="\r") + _progress_bar("b", separator="\n") + "done\n"
    assert book.collapse_progress(text).split("\n") == [
        "loading", f"a: 100%|##########| {N_REFRESHES}/{N_REFRESHES} [00:{N_REFRESHES}<00:00, 1.00it/s]",
        f"b: 100%|##########| {N_REFRESHES}/{N_REFRESHES} [00:{N_REFRESHES}<00:00, 1.00it/s]", "done", ""]
    assert book.collapse_progress("epoch 1\nepoch 2\n") == "epoch 1\nepoch 2\n"


def test_the_scorecards_own_headings_go_under_the_first_pages_section():
    text = "# Claims\n\n```\n# a comment in code\n```\n## Per split\n###### deepest\n#hashtag"
    assert book.nested_headings(text, 2) == (
        "### Claims\n\n```\n# a comment in code\n```\n#### Per split\n###### deepest\n#hashtag")


def test_a_run_without_a_scorecard_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    _tiny_run(tmp_path, scorecard=False)
    page = book.index_page(RUN, ["00_data_and_metrics", "07_report"])
    assert "no scorecard yet" in page and "run chapter 07" in page and "report.md" not in page
    assert "`01_sam2_inference`" in page, "the chapters the run lacks are named"


def test_a_missing_run_is_one_error_line_and_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    assert book.main(["--run", "never"]) == 2
    error = capsys.readouterr().err
    assert error == f"error: {tmp_path / 'outputs' / 'never'}: no executed chapter; run make demo first\n"
    assert not (tmp_path / "outputs").exists()


def test_a_failed_build_leaves_the_previous_book_and_no_work_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    run_dir = _tiny_run(tmp_path)
    (run_dir / "book").mkdir()
    (run_dir / "book" / "index.html").write_text("the previous book")
    (run_dir / "07_report.ipynb").write_text("{ not json")
    with pytest.raises(DataError, match=r"07_report\.ipynb: not a readable notebook"):
        book.build_book(RUN)
    assert (run_dir / "book" / "index.html").read_text() == "the previous book"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------ browser
PAGE_LOADED = "document.readyState === 'complete' && location.href"
SCORECARD_SHOWN = f"""(() => {{ const cells = [...document.querySelectorAll('#main-content table td')];
    const claim = cells.find(td => td.textContent.includes({json.dumps(CLAIM)}));
    return !!claim && claim.getBoundingClientRect().height > 0; }})()"""
NAVIGATION = "[...document.querySelectorAll('nav.bd-links a')].map(a => a.textContent.trim())"
FIGURES_SHOWN = """[...document.querySelectorAll('#main-content img')].filter(
    img => img.complete && img.naturalWidth > 0).length"""


FIRST_PARAGRAPH = "document.querySelector('#main-content p').textContent"
#: each table of the page: its box's and the article's right edges, whether its content is wider than its box
#: (then it scrolls), and its cells' left padding
TABLE_BOXES = """[...document.querySelectorAll('#main-content table')].map(t => ({
    right: t.getBoundingClientRect().right, article: t.closest('article').getBoundingClientRect().right,
    scrolls: t.scrollWidth > t.clientWidth, overflow: getComputedStyle(t).overflowX,
    padding: Math.min(...[...t.querySelectorAll('td')].map(td => parseFloat(getComputedStyle(td).paddingLeft)))}))"""


def _assert_tables_fit_the_page(devtools, page: str) -> None:
    """Every table stays inside the article (a wider one scrolls in its own box) and its cells are padded."""
    boxes = devtools.js(TABLE_BOXES)
    assert boxes, f"{page}: a table"
    for box in boxes:
        assert box["right"] <= box["article"] + 1, (page, box)
        assert box["overflow"] == "auto" and box["padding"] >= 6, (page, box)
    assert any(box["scrolls"] for box in boxes), f"{page}: the wide scorecard scrolls inside its box"


@pytest.mark.slow
def test_the_book_opens_in_a_browser_with_its_scorecard_navigation_and_figures(built, tmp_path):
    chromium = chromium_or_skip()
    pages = built[0] / "book"
    browser = devtools = None
    with open(tmp_path / "chromium.log", "w") as log:
        try:
            browser, port = start_chromium(chromium, tmp_path / "chromium-profile", log, (1200, 900))
            devtools = DevTools(port)
            devtools("Page.enable")

            def visit(page: Path) -> None:
                devtools("Page.navigate", url=page.as_uri())
                wait_for(f"{page.name} to load", lambda: devtools.js(PAGE_LOADED) == page.as_uri(), timeout=30)

            visit(pages / "index.html")
            assert devtools.js(SCORECARD_SHOWN), "the scorecard's table on the first page"
            navigation = devtools.js(NAVIGATION)
            assert all(title in navigation for title in TITLES.values()), navigation
            assert "In words." in devtools.js(FIRST_PARAGRAPH)
            assert wait_for("the scorecard's figure", lambda: devtools.js(FIGURES_SHOWN), timeout=10) == 1
            _assert_tables_fit_the_page(devtools, "index.html")
            shot = devtools.screenshot()
            (tmp_path / "landing_page.png").write_bytes(shot)  # looked at by hand when the layout changes
            with Image.open(stdio.BytesIO(shot)) as png:
                assert png.size[0] == 1200 and png.size[1] > 600
            for chapter in TITLES:
                visit(pages / f"{chapter}.html")
                assert wait_for(f"{chapter}'s figure", lambda: devtools.js(FIGURES_SHOWN), timeout=10) == 1
            visit(pages / "report.html")
            assert wait_for("the report's figure", lambda: devtools.js(FIGURES_SHOWN), timeout=10) == 1
            _assert_tables_fit_the_page(devtools, "report.html")
        finally:
            if devtools:
                devtools.close()
            if browser:
                stop(browser)

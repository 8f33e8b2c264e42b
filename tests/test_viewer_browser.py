"""The viewer notebook in a real browser, as a person uses it.

Headless Chromium opens JupyterLab (served from the kit's venv on 127.0.0.1), runs every cell of
notebooks/08_viewer.ipynb from the Run menu, presses the right arrow key on the frame slider, then
the play button, and screenshots the viewer at each step (saved to ``outputs/test_viewer_browser/``).
The pixels must be exactly the viewer's :func:`fvos_utils.studies.viewer.compose` for the frame the slider
shows, with objects 1 and 2 drawn in their DAVIS colours, and must change when the slider moves;
playback must reach the last frame (the play button drives the slider in the browser).

Chromium is found (or installed, or the test skipped) and driven as ``devtools_browser`` (beside this file)
says. Nothing is fetched from the network: Chromium's background services are off, JupyterLab's news
and update checks too.
"""
import ast
import io as stdio
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from devtools_browser import DevTools, chromium_or_skip, free_port, start_chromium, stop, wait_for  # tests/
from PIL import Image

from fvos_utils.base import paths
from fvos_utils.base.io import VOSDataset, davis_palette
from fvos_utils.studies import viewer

pytestmark = pytest.mark.slow

NOTEBOOK = "08_viewer.ipynb"
WINDOW = (1400, 1000)
ARROW_PRESSES = 3  # the frame slider goes from frame 0 to frame 3


# ------------------------------------------------------------------------------------ processes
def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_lab(project: Path, home: Path, log) -> tuple[subprocess.Popen, str]:
    """JupyterLab serving ``project`` on a free local port; returns the process and its base URL with token."""
    port, token = free_port(), secrets.token_hex(16)
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no question, no request
    env = dict(os.environ, FVOS_ROOT=str(project),  # the kernel inherits it: every path of the kit goes to project
               # the kit, importable in the kernel even where it is not pip-installed
               PYTHONPATH=os.pathsep.join(filter(None, [str(paths.project_root()), os.environ.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               IPYTHONDIR=str(home / "ipython"), TQDM_DISABLE="1")
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={project}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # containers and CI often run as root; Jupyter refuses that unless told
        command.append("--allow-root")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=project)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("JupyterLab to answer", lambda: process.poll() is not None or _http_ok(
            f"{base}/api/status?token={token}"), timeout=60)
    except TimeoutError:
        stop(process)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"jupyter lab exited with code {process.returncode}; see {log.name}")
    return process, f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}"


# page scripts (JupyterLab exposes its application as window.jupyterapp with --expose-app-in-browser)
FIND_NOTEBOOK = f"""const nb = window.jupyterapp && [...window.jupyterapp.shell.widgets('main')].find(
    w => w.title.label === '{NOTEBOOK}' && w.content && w.sessionContext);"""
NOTEBOOK_READY = f"""(() => {{ {FIND_NOTEBOOK}
    const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
    return !!(kernel && kernel.status === 'idle' && nb.content.widgets.length); }})()"""
EXECUTION_STATE = f"""(() => {{ {FIND_NOTEBOOK}
    const cells = nb.content.widgets.filter(c => c.model.type === 'code');
    const errors = cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                       .map(o => o.ename + ': ' + o.evalue + '\\n' + o.traceback.join('\\n')));
    return {{done: cells.every(c => c.model.executionCount !== null) &&
                   nb.sessionContext.session.kernel.status === 'idle', errors}}; }})()"""
VIEWER_IMAGE = "img.fvos-viewer-image"
FRAME_HANDLE = ".fvos-frame-slider .noUi-handle"
PLAY_BUTTON = ".fvos-play button"  # the first of play, pause, stop, repeat
IMAGE_STATE = f"""(() => {{ const img = document.querySelector('{VIEWER_IMAGE}');
    if (!img || !img.complete || !img.naturalWidth) return null;
    img.scrollIntoView({{block: 'center'}});
    const r = img.getBoundingClientRect();
    return {{x: r.x, y: r.y, width: r.width, height: r.height, natural: [img.naturalWidth, img.naturalHeight],
            caption: document.querySelector('.fvos-viewer-caption').textContent}}; }})()"""


def _showing(devtools: DevTools, t: int) -> dict | None:
    """The viewer image's state once it shows frame ``t`` (the kernel sends the image, then the caption)."""
    state = devtools.js(IMAGE_STATE)
    return state if state and f"({t + 1}/" in state["caption"] else None


def _menu(devtools: DevTools, menu: str, item: str) -> None:
    """Choose ``item`` from the menu bar's ``menu``, with mouse clicks."""
    for labels, text in ((".lm-MenuBar-itemLabel", menu), (".lm-Menu-itemLabel", item)):
        mark = f"""(() => {{
            document.querySelectorAll('[data-fvos-target]').forEach(e => e.removeAttribute('data-fvos-target'));
            const hit = [...document.querySelectorAll('{labels}')].find(
                e => e.textContent.trim() === {json.dumps(text)});
            if (hit) hit.setAttribute('data-fvos-target', ''); return !!hit; }})()"""
        wait_for(f"the menu entry {text!r}", lambda: devtools.js(mark), timeout=10)
        devtools.click("[data-fvos-target]")


def _finished(state: dict) -> dict | None:
    return state if state["done"] or state["errors"] else None


def _clip(state: dict) -> dict:
    return {"x": state["x"], "y": state["y"], "width": state["width"], "height": state["height"]}


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(stdio.BytesIO(png)).convert("RGB"))


# ----------------------------------------------------------------------------------------- test
def test_viewer_notebook_in_jupyterlab_shows_masks_and_follows_the_frame_slider(tmp_path, monkeypatch):
    chromium = chromium_or_skip()
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    shutil.copy(paths.notebooks_dir() / NOTEBOOK, project / "notebooks" / NOTEBOOK)
    n_frames = viewer.DEMO_FRAMES
    shots = paths.outputs_dir("test_viewer_browser")  # the kit's outputs, so a person can look at them
    lab = browser = devtools = None
    with open(tmp_path / "jupyter.log", "w") as lab_log, open(tmp_path / "chromium.log", "w") as browser_log:
        try:
            lab, url = _start_lab(project, tmp_path / "jupyter", lab_log)
            browser, devtools_port = start_chromium(chromium, tmp_path / "chromium-profile", browser_log, WINDOW)
            devtools = DevTools(devtools_port)
            devtools("Page.enable")
            devtools("Emulation.setFocusEmulationEnabled", enabled=True)  # a headless page has no focus otherwise
            devtools("Page.navigate", url=url)
            wait_for("the notebook and its kernel", lambda: devtools.js(NOTEBOOK_READY), timeout=60)
            _menu(devtools, "Run", "Run All Cells")
            state = wait_for("every cell to run", lambda: _finished(devtools.js(EXECUTION_STATE)), timeout=60)
            assert not state["errors"], "\n\n".join(state["errors"])
            before = wait_for("the viewer image", lambda: _showing(devtools, 0), timeout=30)
            shot_before = devtools.screenshot(_clip(before))
            (shots / "page_before.png").write_bytes(devtools.screenshot())

            devtools.click(FRAME_HANDLE)  # focus the slider's handle, then step with the keyboard
            for _ in range(ARROW_PRESSES):
                devtools.press("ArrowRight", 39)
            after = wait_for("the image of the new frame", lambda: _showing(devtools, ARROW_PRESSES), timeout=30)
            shot_after = devtools.screenshot(_clip(after))
            (shots / "page_after.png").write_bytes(devtools.screenshot())

            devtools.click(PLAY_BUTTON)  # plays from the slider's frame to the last (the browser links the two)
            last = wait_for("playback to reach the last frame", lambda: _showing(devtools, n_frames - 1), timeout=30)
            shot_last = devtools.screenshot(_clip(last))
        except Exception:
            if devtools:  # what the page showed when it went wrong
                (shots / "page_failure.png").write_bytes(devtools.screenshot())
            raise
        finally:
            if devtools:
                devtools.close()
            for process in (browser, lab):
                if process:
                    stop(process)
    (shots / "viewer_before.png").write_bytes(shot_before)
    (shots / "viewer_after.png").write_bytes(shot_after)
    (shots / "viewer_last.png").write_bytes(shot_last)
    pixels_before, pixels_after = _pixels(shot_before), _pixels(shot_after)

    # what the viewer should show, computed here from the files the notebook used (its defaults)
    monkeypatch.setenv(paths.ROOT_ENV, str(project))
    import papermill

    defaults = {name: ast.literal_eval(p["default"]) for name, p in papermill.inspect_notebook(
        str(project / "notebooks" / NOTEBOOK)).items()}
    root = viewer.demo_data(seed=defaults["seed"])
    video = VOSDataset(root, defaults["split"]).video_names()[0]
    results = viewer.VideoResults(root, video, split=defaults["split"], runs={
        "A": viewer.ground_truth_dir(root, defaults["split"]),
        "B": paths.outputs_dir(defaults["run"]) / "08_viewer" / "zero_motion"})
    zoom = viewer.ResultViewer(results).zoom

    def expected(t):
        return viewer.compose(results.frame(t), results.panels(t), alpha=defaults["opacity"],
                              kernel_size=defaults["kernel_size"], shape=defaults["kernel_shape"],
                              fill=[defaults["fill_panel"] - 1] if defaults["fill_panel"] else None, zoom=zoom)

    assert len(results) == n_frames
    for shown, state, t in ((pixels_before, before, 0), (pixels_after, after, ARROW_PRESSES),
                            (_pixels(shot_last), last, n_frames - 1)):
        assert state["natural"] == [state["width"], state["height"]], "the image is displayed at its own size"
        np.testing.assert_array_equal(shown, expected(t), err_msg=f"screenshot of frame {t} differs")
        for obj in (1, 2):  # objects 1 and 2 in their DAVIS colours (the outlines are drawn opaque)
            assert (shown == davis_palette()[obj]).all(axis=-1).sum() >= 20, (t, obj)
    assert (pixels_before != pixels_after).any(axis=-1).mean() > 0.01

"""Headless Chromium for the browser tests, driven over the Chrome DevTools Protocol.

``websocket-client`` (installed with Jupyter) speaks the protocol. Where ``/usr/bin/chromium`` is missing,
:func:`chromium_or_skip` installs Debian's ``chromium`` package when the tests run as root and ``CI`` or
``FVOS_INSTALL_CHROMIUM`` is set; otherwise the test is skipped with the reason. Chromium's background
services are off, so the browser itself fetches nothing from the network.
"""
import base64
import itertools
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
INSTALL_OPT_IN = "FVOS_INSTALL_CHROMIUM"


# ------------------------------------------------------------------------------------ processes
def chromium_or_skip() -> str:
    problem = f"{CHROMIUM} not found"
    if not os.path.exists(CHROMIUM) and os.geteuid() == 0 and (os.environ.get("CI") or os.environ.get(INSTALL_OPT_IN)):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
            if done.returncode:
                problem += f"; `{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-300:]}"
                break
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{problem} (install Debian's chromium package, or run as root with CI or {INSTALL_OPT_IN}=1 "
                    "set to let this test install it)")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, *, timeout: float, interval: float = 0.25):
    """Call ``check()`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

def start_chromium(chromium: str, profile: Path, log, window: tuple[int, int]) -> tuple[subprocess.Popen, int]:
    """Headless Chromium with a fresh profile and no background networking; returns it and its DevTools port."""
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
               "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
               f"--window-size={window[0]},{window[1]}", "--force-device-scale-factor=1",
               "--force-color-profile=srgb", "about:blank"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    port_file = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
    try:
        wait_for("Chromium's DevTools port", lambda: process.poll() is not None or (
            port_file.is_file() and port_file.read_text().strip()), timeout=30)
    except TimeoutError:
        stop(process)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"chromium exited with code {process.returncode}; see {log.name}")
    return process, int(port_file.read_text().split()[0])


# ------------------------------------------------------------------------------------- DevTools
class DevTools:
    """A minimal Chrome DevTools Protocol client for one page (commands answered in order)."""

    def __init__(self, port: int):
        import websocket

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        # without an Origin header Chromium accepts the connection (no --remote-allow-origins needed)
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)

    def __call__(self, method: str, **params):
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == message_id:  # events in between are not needed here
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression: str):
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        result = self("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A left click at the centre of the first element matching ``selector``, as the mouse does it."""
        x, y = self.js(f"""(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                                   return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        self("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def press(self, key: str, key_code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=key_code)

    def screenshot(self, clip: dict | None = None) -> bytes:
        params = {"format": "png"}
        if clip:
            params["clip"] = dict(clip, scale=1)
        return base64.b64decode(self("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        self.socket.close()

"""Progress bars: shown where wanted, silenced by TQDM_DISABLE (the chapters' kernels) or by the caller.

tqdm reads ``TQDM_*`` when it is imported, as a kernel started by the pipeline does: each case runs in a
fresh process with its environment."""
import os
import subprocess
import sys

import numpy as np

from fvos_utils.io import write_mask
from fvos_utils.paths import project_root


def _stderr(code: str, *, silenced: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    if silenced:
        env["TQDM_DISABLE"] = "1"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=project_root(), capture_output=True, text=True,
                          check=True).stderr


def test_a_wanted_bar_follows_tqdm_disable_and_an_unwanted_one_never_shows():
    code = ("import sys\nfrom fvos_utils.progress import progress_bar\n"
            "print(progress_bar(range(2)).disable, progress_bar(range(2), show=False).disable, file=sys.stderr)")
    assert _stderr(code, silenced=False).split()[-2:] == ["False", "True"]
    assert _stderr(code, silenced=True).split()[-2:] == ["True", "True"]


def test_the_kit_s_bars_are_silent_in_a_chapter_kernel(tmp_path):
    """A kit function asked for its bar (``progress=True``, every function's default) shows it, unless the
    environment silences bars as the pipeline does for the chapters' kernels."""
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    for folder in ("gt", "pred"):
        for frame in ("00000", "00001", "00002"):
            write_mask(tmp_path / folder / "v" / f"{frame}.png", mask)
    code = (f"from fvos_utils import evaluate\n"
            f"evaluate.evaluate({str(tmp_path / 'gt')!r}, {str(tmp_path / 'pred')!r}, progress=True)")
    assert "%|" in _stderr(code, silenced=False)
    assert "%|" not in _stderr(code, silenced=True)

"""Progress bars: shown where wanted, silenced by TQDM_DISABLE (the chapters' kernels) or by the caller."""
import numpy as np
import pytest
import tqdm.notebook

from fvos_utils.base import progress
from fvos_utils.base.io import write_mask
from fvos_utils.metrics import evaluate


@pytest.mark.parametrize("value, silenced", [(None, False), ("", False), ("0", False), ("false", False),
                                             ("1", True), ("true", True), ("yes", True)])
def test_tqdm_disable_silences_every_bar_a_caller_wants(monkeypatch, value, silenced):
    if value is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress.silenced() == silenced
    assert progress.progress_bar(range(2)).disable == silenced
    assert progress.progress_bar(range(2), show=False).disable


def test_a_notebook_kernel_s_bar_is_silenced_too(monkeypatch):
    """In a kernel ``tqdm.auto`` is tqdm's notebook bar, which passes ``disable`` on itself and so never
    reads TQDM_DISABLE: the kit's bars must."""
    monkeypatch.setattr(progress, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress.progress_bar(range(2)).disable


def test_the_kit_s_bars_are_silent_in_a_chapter_kernel(tmp_path, monkeypatch, capsys):
    """A kit function asked for its bar (``progress=True``, every function's default) shows it, unless the
    environment silences bars as the pipeline does for the chapters' kernels."""
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    for folder in ("gt", "pred"):
        for frame in ("00000", "00001", "00002"):
            write_mask(tmp_path / folder / "v" / f"{frame}.png", mask)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    evaluate.evaluate(tmp_path / "gt", tmp_path / "pred", progress=True)
    assert "%|" in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    evaluate.evaluate(tmp_path / "gt", tmp_path / "pred", progress=True)
    assert "%|" not in capsys.readouterr().err

"""Marks for the executed reference notebooks that ``--nbval-lax`` collects from ``tests/nbval/``, and
the fixtures several test files share."""
from pathlib import Path

import pytest

from fvos_utils.base import paths


@pytest.fixture
def kit_root(tmp_path, monkeypatch) -> Path:
    """A kit folder of its own (``$FVOS_ROOT``): runs write under ``<tmp>/outputs/``."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":  # each cell of a reference notebook is an item
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)

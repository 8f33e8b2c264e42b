"""Marks for the executed reference notebooks that ``--nbval-lax`` collects from ``tests/nbval/``."""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":  # each cell of a reference notebook is an item
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)

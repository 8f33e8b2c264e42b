"""benchmarks/gpu_check.py, the prepared GPU check, kept working without a GPU by its --dry-run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_the_dry_run_measures_every_part_on_the_cpu(tmp_path):
    env = {**os.environ, "FVOS_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", "check.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "check.json").read_text())  # --out is relative to the current folder
    assert result["dry_run"] is True and result["environment"]["packages"]["torch"]
    assert [row["image_size"] for row in result["inference"]] == [256, 288]  # fvos_tiny at scales 1 and 1.125
    assert all(row["fps"] > 0 and row["frames"] == 3 and row["peak_gb"] is None for row in result["inference"])
    training = result["training"]
    assert training["seconds"] > 0 and training["iterations_logged"] >= 1 and training["seconds_per_iteration"] > 0
    assert "skipped" in result["demo_finetune"]
    assert result["agreement"] == {"skipped": "no CUDA device"} or 0 <= result["agreement"]["labels_differing"] <= 1


def test_without_a_gpu_the_full_check_is_one_clear_line(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the full check would run")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", "x.json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no CUDA device here; --dry-run checks the script on the CPU"]
    assert not (tmp_path / "x.json").exists()

"""benchmarks/cue_sensitivity.py runs on a store's split and prints every perturbation's row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from _infer_helpers import save_tiny_checkpoint
from _prepare_helpers import write_store

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cue_sensitivity.py"


def test_every_perturbation_gets_a_row(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    crops = [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(n)]
    depths = [np.zeros((16, 16), np.float32)] * n
    labels = ["live", "spoof"] * (n // 2)
    store = write_store(tmp_path / "store", crops, depths, labels, ["val"] * n)
    ckpt = save_tiny_checkpoint(tmp_path / "m.pt", "binary_cnn")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(ckpt), "--store", str(store), "--split", "val"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "3 live, 3 spoof" in out
    for name in ("none", "brighter (gamma 0.6)", "sharpened", "half resolution"):
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert len(row.split()) >= 6

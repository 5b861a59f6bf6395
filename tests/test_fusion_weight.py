"""benchmarks/fusion_weight.py: rescoring at w = 0.5 is the model's own score, and the CLI prints
one row per weight."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from _infer_helpers import save_tiny_checkpoint
from _prepare_helpers import random_store_with_splits

from facepad.data.dataset import StoreDataset
from facepad.data.multistore import MultiStore
from facepad.models import model_from_checkpoint, score_outputs

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fusion_weight.py"


def tiny_run(tmp_path: Path) -> tuple[Path, Path, Path]:
    store, splits = random_store_with_splits(tmp_path, 12)
    return store, splits, save_tiny_checkpoint(tmp_path / "fusion.pt", "fusion")


def test_half_weight_rescoring_is_the_models_own_score(tmp_path):
    store, splits, ckpt = tiny_run(tmp_path)
    spec = importlib.util.spec_from_file_location("fusion_weight", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, _ = model_from_checkpoint(ckpt)
    view = MultiStore([{"path": str(store), "name": "data", "splits": str(splits)}])
    test = StoreDataset(view, "test", 64, 16)
    with torch.inference_mode():
        outputs = model(torch.stack([test[k]["image"] for k in range(6)]))
    own = score_outputs(model, outputs).numpy()
    binary = torch.sigmoid(outputs["logit"].reshape(-1)).numpy()
    rescored = module.rescore(str(store), str(splits), str(ckpt), [0.5, 1.0])
    shifted, live = rescored[0.5]
    gaps = own - shifted  # the model's score minus the rescored one: the threshold
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-6)
    assert list(live) == [True, False] * 3
    gaps = binary - rescored[1.0][0]  # w = 1: the binary head alone
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-6)


def test_cli_prints_a_row_per_weight(tmp_path):
    store, splits, ckpt = tiny_run(tmp_path)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--run", str(store), str(splits), str(ckpt),
         "--run", str(store), str(splits), str(ckpt), "--weights", "0", "1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["w"] for r in rows] == [0.0, 1.0]
    assert all(len(r["hter_per_run"]) == 2 and 0 <= r["mean_hter"] <= 100 for r in rows)

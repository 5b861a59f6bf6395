"""Fusion's score weight, rescored: w * sigmoid(logit) + (1 - w) * mean depth for w in a grid.

The fusion model scores with w = 0.5 (`facepad.models.score`). This rescoring asks how much the
weight matters for trained checkpoints, without retraining: per checkpoint the threshold is set on
its run's val split by `metrics.eer_threshold` (as training sets it, so w = 0.5 reproduces the
benchmark's figures), applied to the test split, then HTER and AUC are printed per weight. A test
split only reports here; choose a weight on validation data.

    .venv/bin/python benchmarks/fusion_weight.py \\
        --run stores/replay-dev results/bench/splits/replay.carved.csv \\
              results/bench/train/replay-carved/fusion/best.pt
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from facepad import metrics
from facepad.data.dataset import StoreDataset
from facepad.data.multistore import MultiStore
from facepad.models.checkpoint import checkpoint_preprocess, model_from_checkpoint
from facepad.models.score import liveness_score


def weighted_scores(model, dataset, weights: list[float]) -> tuple[dict, np.ndarray]:
    """({w: liveness score of every item with binary_weight w}, is_live): the scores come from
    `liveness_score`, the one place that turns outputs into a score."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    scores: dict[float, list[np.ndarray]] = {w: [] for w in weights}
    live = []
    with torch.inference_mode():
        for batch in loader:
            out = model(batch["image"])
            for w in weights:
                scores[w].append(liveness_score(out, binary_weight=w).numpy())
            live.append(batch["live"].numpy() > 0.5)
    return {w: np.concatenate(s) for w, s in scores.items()}, np.concatenate(live)


def rescore(store: str, splits: str, checkpoint: str, weights: list[float]) -> dict:
    """{w: (test scores minus the val threshold, is_live)} for one fusion checkpoint."""
    view = MultiStore([{"path": store, "name": "data", "splits": splits}])
    model, ckpt = model_from_checkpoint(checkpoint, expect_name="fusion")
    pre = checkpoint_preprocess(ckpt, checkpoint)
    size, depth_size = pre["input_size"], pre["depth_size"] or 32
    (val, val_live), (test, test_live) = (
        weighted_scores(model, StoreDataset(view, split, size, depth_size), weights)
        for split in ("val", "test")
    )
    out = {}
    for w in weights:
        threshold = metrics.eer_threshold(val[w], val_live)
        out[w] = (test[w] - threshold, test_live)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", nargs=3, action="append", required=True,
                   metavar=("STORE", "SPLIT_FILE", "CHECKPOINT"),
                   help="a fusion checkpoint with the store and split file it was trained on; "
                   "repeat for seeds or folds")  # fmt: skip
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    args = p.parse_args()
    torch.set_num_threads(1)
    runs = [rescore(*run, args.weights) for run in args.run]
    for w in args.weights:
        hters = [100 * metrics.hter(s, live, 0.0) for s, live in (r[w] for r in runs)]
        print(json.dumps({
            "w": w,
            "hter_per_run": [round(h, 2) for h in hters],
            "mean_hter": round(float(np.mean(hters)), 2),
            "auc_per_run": [round(metrics.roc_auc(s, live), 4) for s, live in (r[w] for r in runs)],
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

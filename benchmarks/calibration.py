"""Calibration to a new camera from live captures alone, measured on each leave-one-dataset-out
cell of a benchmark: the left-out dataset plays the user's camera.

For every `lodo` cell (model trained without dataset B) this takes the model's scores on all of
B (the benchmark's scores.csv), draws n live frames of B's *validation* subjects (the frames a user
would capture of themselves; n = 50, 100, 300, as many as there are when fewer), sets the
threshold that rejects `--target-bpcer` of them (`facepad.metrics.live_threshold`, what `facepad
calibrate` does), and measures BPCER and APCER on B's other subjects. Repeated over `--draws`
random draws: mean and 5-95 % range. The first row of each cell is the model as trained (its
threshold from the training datasets' validation).

    .venv/bin/python benchmarks/calibration.py --bench results/lodo \\
        --store celeba=stores/celeba-mini --store casia=stores/casia ... [--model binary_cnn]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from facepad.evaluate.report import read_scores_csv
from facepad.metrics import live_threshold

SIZES = (50, 100, 300)


def split_of(store: Path) -> dict[str, str]:
    """path -> the store's own split (train / val / test) of each sample."""
    with open(store / "index.csv", newline="") as f:
        return {row["path"]: row["split"] for row in csv.DictReader(f)}


def rates(scores: np.ndarray, live: np.ndarray, threshold: float) -> tuple[float, float]:
    """(BPCER, APCER) at `threshold` (live when score >= threshold)."""
    accepted = scores >= threshold
    return float(np.mean(~accepted[live])), float(np.mean(accepted[~live]))


def cell_rows(scores_csv: Path, store: Path, target: float, draws: int, seed: int) -> list[dict]:
    """The trained threshold's rates, then each calibration size's, on B's non-val subjects."""
    rows = read_scores_csv(scores_csv)
    split = split_of(store)
    where = np.array([split.get(r["path"], "") for r in rows])
    scores = np.array([r["score"] for r in rows])
    live = np.array([r["label"] == "live" for r in rows])
    report = json.loads((scores_csv.parent / "report.json").read_text())
    held = where != "val"  # the subjects the calibration never saw
    pool = scores[(where == "val") & live]
    bpcer, apcer = rates(scores[held], live[held], report["threshold"])
    out = [{"n": "none (as trained)", "bpcer": bpcer, "apcer": apcer, "range": ""}]
    rng = np.random.default_rng(seed)
    for n in SIZES:
        k = min(n, len(pool))
        got = np.array([
            rates(scores[held], live[held],
                  live_threshold(rng.choice(pool, k, replace=False), target))
            for _ in range(draws)
        ])  # fmt: skip
        lo, hi = np.percentile(got, [5, 95], axis=0)
        out.append({"n": k, "bpcer": got[:, 0].mean(), "apcer": got[:, 1].mean(),
                    "range": f"{100 * lo[0]:.1f}-{100 * hi[0]:.1f} / "
                             f"{100 * lo[1]:.1f}-{100 * hi[1]:.1f}"})  # fmt: skip
        if k < n:
            break  # fewer validation frames than asked: the rest would repeat this row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, required=True, help="a benchmark's --out folder")
    parser.add_argument("--store", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--model", action="append", default=None, help="benchmark label(s)")
    parser.add_argument("--target-bpcer", type=float, default=0.02)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stores = dict(item.split("=", 1) for item in args.store)
    print("| left out | model | live frames | BPCER % | APCER % | 5-95 % BPCER / APCER |")
    print("|---|---|---|---|---|---|")
    for cell in sorted((args.bench / "eval" / "lodo").iterdir()):
        left_out = cell.name.split("__")[-1]
        for model_dir in sorted(p for p in cell.iterdir() if (p / "scores.csv").is_file()):
            if args.model and model_dir.name not in args.model:
                continue
            for row in cell_rows(model_dir / "scores.csv", Path(stores[left_out]),
                                 args.target_bpcer, args.draws, args.seed):  # fmt: skip
                print(f"| {left_out} | {model_dir.name} | {row['n']} | {100 * row['bpcer']:.2f} "
                      f"| {100 * row['apcer']:.2f} | {row['range']} |")  # fmt: skip


if __name__ == "__main__":
    main()

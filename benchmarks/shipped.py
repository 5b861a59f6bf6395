"""The shipped model's figures, per dataset, on prepared stores: its own threshold, unchanged.

`facepad evaluate` takes a training checkpoint; the shipped model is an ONNX file, so this scores
a store's crops through `Predictor()` (the crops as the store holds them, resized to the model's
input as `predict` does) and prints APCER, BPCER, ACER with a subject-bootstrap 95 % interval,
ACC and AUC for each store and split asked:

    .venv/bin/python benchmarks/shipped.py --store celeba=stores/celeba-mini:val,test \\
        --store casia=stores/casia:val --store nuaa=stores/nuaa:val [--model MODEL.onnx]
"""

from __future__ import annotations

import argparse

import numpy as np

from facepad.data.crop import resize_square
from facepad.data.store import PreparedStore
from facepad.infer import Predictor
from facepad.metrics import bootstrap_ci, summary


def store_scores(predictor: Predictor, store: PreparedStore, split: str) -> np.ndarray:
    """Scores of every crop of `split`, in index order."""
    size = predictor.input_size
    crops = [resize_square(store.read_crop(i), size) for i in store.indices(split)]
    return predictor.score_crops(np.stack(crops))[0]


def row(name: str, split: str, predictor: Predictor, store: PreparedStore) -> str:
    """One markdown row of figures (percent) at the model's own threshold."""
    cols = store.columns(split)
    scores = store_scores(predictor, store, split)
    t = predictor.threshold
    s = summary(scores, cols["is_live"], t)
    ci = bootstrap_ci(scores, cols["is_live"], t, cols["subject"])
    subjects = len(set(cols["subject"]))
    lo, hi = (100 * v for v in ci["acer"])
    return (f"| {name} | {split} | {len(scores):,} | {subjects} | {100 * s['apcer']:.2f} | "
            f"{100 * s['bpcer']:.2f} | {100 * s['acer']:.2f} ({lo:.1f}-{hi:.1f}) | "
            f"{100 * s['acc']:.2f} | {s['auc']:.4f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", required=True, metavar="NAME=PATH:SPLITS")
    parser.add_argument("--model", default=None, help="an .onnx or .pt model (default: shipped)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    predictor = Predictor.from_path(args.model, threads=args.threads) if args.model else Predictor()
    print(f"threshold {predictor.threshold:.4f} (the model's own)")
    print("| dataset | split | n | subjects | APCER % | BPCER % | ACER % (95 % CI) | ACC % | AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for item in args.store:
        name, _, rest = item.partition("=")
        path, _, splits = rest.rpartition(":")
        store = PreparedStore(path)
        for split in splits.split(","):
            print(row(name, split, predictor, store), flush=True)


if __name__ == "__main__":
    main()

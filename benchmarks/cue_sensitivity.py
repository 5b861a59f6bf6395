"""Which image cues a trained model leans on: perturb a store's crops and watch the scores move.

A model that learned one camera's exposure or sharpness as "live" rejects live faces once they are
brightened or sharpened, although nothing about their liveness changed. Run it on a validation
split (never a test split) of the data the model was trained on; prints, per perturbation, the
median live and spoof scores, BPCER and APCER at the checkpoint's threshold, and the AUC:

    .venv/bin/python benchmarks/cue_sensitivity.py runs/replay/depth_unet/best.pt \
        --store stores/replay-all --split val
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import cv2
import numpy as np

from facepad.data.augment import exposure_lut
from facepad.data.crop import resize_square
from facepad.data.store import PreparedStore
from facepad.infer.torch_backend import TorchBackend
from facepad.metrics import roc_auc


def gamma(images: np.ndarray, g: float) -> np.ndarray:
    return exposure_lut(1.0, g)[images]


def desaturate(images: np.ndarray, keep: float) -> np.ndarray:
    grey = images.mean(-1, keepdims=True)
    return np.clip(grey + keep * (images - grey), 0, 255).astype(np.uint8)


def sharpen(images: np.ndarray) -> np.ndarray:
    return np.stack(
        [cv2.addWeighted(im, 2.0, cv2.GaussianBlur(im, (0, 0), 1.5), -1.0, 0) for im in images]
    )


def down_up(images: np.ndarray, factor: int) -> np.ndarray:
    n = images.shape[1]
    small = [
        cv2.resize(im, (n // factor, n // factor), interpolation=cv2.INTER_AREA) for im in images
    ]
    return np.stack([cv2.resize(im, (n, n)) for im in small])


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "brighter (gamma 0.6)": lambda x: gamma(x, 0.6),
    "darker (gamma 1.6)": lambda x: gamma(x, 1.6),
    "half saturation": lambda x: desaturate(x, 0.5),
    "sharpened": sharpen,
    "half resolution": lambda x: down_up(x, 2),
}


def scores_of(backend: TorchBackend, images: np.ndarray) -> np.ndarray:
    """Scores of uint8 (N, S, S, 3) crops, resized to the model input as evaluation does."""
    images = np.stack([resize_square(im, backend.input_size) for im in images])
    batches = [
        np.ascontiguousarray(images[i : i + 128].transpose(0, 3, 1, 2), np.float32) / 255
        for i in range(0, len(images), 128)
    ]
    return np.concatenate([backend.run(batch)[0] for batch in batches])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint")
    p.add_argument("--store", required=True, help="a prepared store of the training side's data")
    p.add_argument("--split", default="val")
    args = p.parse_args()
    backend = TorchBackend(args.checkpoint)  # the checkpoint's model, input size and threshold
    store = PreparedStore(args.store)
    idx = store.indices(args.split)
    live = np.asarray(store.columns(args.split)["label"]) == "live"
    images = np.stack([store.read_crop(i) for i in idx])
    threshold = backend.threshold
    print(
        f"{args.checkpoint} on {args.store} {args.split}: {live.sum()} live, {(~live).sum()} spoof"
    )
    header = ("perturbation", "live median", "spoof median", "BPCER", "APCER", "AUC")
    print("{:22s} {:>11s} {:>12s} {:>6s} {:>6s} {:>7s}".format(*header))
    for name, perturb in PERTURBATIONS.items():
        s = scores_of(backend, perturb(images))
        bpcer, apcer = (s[live] < threshold).mean(), (s[~live] >= threshold).mean()
        print(
            f"{name:22s} {np.median(s[live]):11.3f} {np.median(s[~live]):12.3f} "
            f"{100 * bpcer:6.1f} {100 * apcer:6.1f} {roc_auc(s, live):7.4f}"
        )


if __name__ == "__main__":
    main()

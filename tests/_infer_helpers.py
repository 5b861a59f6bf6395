"""Shared by the predictor, export and serve tests: tiny checkpoints and real face photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Tiny versions of each model, fast on CPU; untrained weights are enough to test the plumbing.
TINY_MODELS = {
    "binary_cnn": {"widths": [8, 16], "convs_per_block": 1},
    "depth_unet": {"widths": [8, 16, 16], "map_stride": 4},
    "fusion": {"widths": [8, 16, 16], "map_stride": 4},
}
INPUT_SIZE = 64
CROP_SCALE = 1.3


def save_tiny_checkpoint(
    path: Path,
    name: str = "depth_unet",
    threshold: float | None = 0.5,
    seed: int = 0,
    crop_size: int | None = None,
    extra: dict | None = None,
) -> Path:
    """A checkpoint per the contract in docs/ARCHITECTURE.md, holding an untrained tiny model."""
    import torch

    from facepad.models import create_model

    torch.manual_seed(seed)
    base = TINY_MODELS.get(name) or {}
    if (extra or {}).get("encoder", "plain") != "plain":  # a pretrained trunk: its own widths
        base = {k: v for k, v in base.items() if k == "map_stride"}
    kwargs = {**base, **(extra or {})}  # extra: e.g. {'theta': 0.7}
    model = create_model(name, **kwargs).eval()
    ckpt = {
        "format_version": 1,
        "model": {"name": name, "kwargs": dict(getattr(model, "kwargs", kwargs))},
        "state_dict": model.state_dict(),
        "config": {},
        "epoch": 0,
        "step": 0,
        "optimizer": None,
        "scheduler": None,
        "scaler": None,
        "rng": None,
        "best_metric": None,
        "threshold": threshold,
        "preprocess": {"crop_scale": CROP_SCALE, "input_size": INPUT_SIZE},
    }
    if crop_size is not None:  # the prepared store's crop size, as `facepad train` records it
        ckpt["preprocess"]["crop_size"] = crop_size
    torch.save(ckpt, path)
    return path


def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB photo with one face (skimage)."""
    from skimage import data

    return data.astronaut()


def grace_hopper_path() -> Path:
    """A JPEG with one face, shipped by matplotlib."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def tiny_onnx_model(root: Path) -> Path:
    """A tiny untrained depth U-Net exported to ONNX under `root`: a model to serve in tests."""
    from facepad.infer.export import export_onnx

    ckpt = save_tiny_checkpoint(root / "d.pt", "depth_unet")
    return Path(export_onnx(ckpt, root / "d.onnx", check=False)["out"])

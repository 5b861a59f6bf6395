"""Tiny synthetic live/spoof data for the model and trainer tests (no files, no data pipeline)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from facepad.config import Config, load_config


class SyntheticPad(Dataset):
    """Items shaped like StoreDataset's: a live face is a bright blob whose depth is the blob;
    a spoof is a flat striped print with an all-zero depth map. Deterministic per index."""

    def __init__(self, n: int = 32, input_size: int = 32, depth_size: int = 8, seed: int = 0):
        self.n, self.size, self.depth_size, self.seed = n, input_size, depth_size, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 100_003 + idx)
        live = idx % 2 == 0
        s = self.size
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        if live:
            cx, cy = (torch.rand(2, generator=g) - 0.5) * 0.4
            blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.3)  # (s, s)
            image = 0.2 + 0.6 * blob.expand(3, s, s).clone()
            depth = torch.nn.functional.adaptive_avg_pool2d(blob[None], self.depth_size)
        else:
            stripes = 0.5 + 0.3 * torch.sin(xx * 20 + float(torch.rand(1, generator=g)) * 6)
            image = stripes.expand(3, s, s).clone()
            depth = torch.zeros(1, self.depth_size, self.depth_size)
        image = (image + 0.03 * torch.randn(3, s, s, generator=g)).clamp(0, 1)
        return {
            "image": image.float(),
            "live": torch.tensor(float(live)),
            "depth": depth.float(),
            "idx": idx,
        }


def synthetic_datasets(
    n_train: int = 32, n_val: int = 16, input_size: int = 32, depth_size: int = 8
):
    preprocess = {"crop_scale": 1.3, "input_size": input_size, "depth_size": depth_size}
    return (
        SyntheticPad(n_train, input_size, depth_size, seed=0),
        SyntheticPad(n_val, input_size, depth_size, seed=1),
        preprocess,
    )


SMALL_WIDTHS = {
    "binary_cnn": "model.kwargs.widths=[8,16]",
    "depth_unet": "model.kwargs.widths=[8,16,16]",
    "fusion": "model.kwargs.widths=[8,16,16]",
}


def small_config(tmp_path, model: str = "depth_unet", *extra: str) -> Config:
    """A config for 32x32 synthetic data, small widths, CPU, written under tmp_path."""
    return load_config(
        None,
        [
            f"model.name={model}",
            SMALL_WIDTHS[model],
            "data.input_size=32",
            "data.depth_size=8",
            "data.batch_size=8",
            "train.epochs=2",
            "train.lr=0.003",
            "train.warmup_epochs=0",
            "train.threads=1",
            "train.device=cpu",
            f"out_dir={tmp_path}",
            *extra,
        ],
    )


class Killed(Exception):
    """What `DiesAt` raises: a process killed, or a rank that lost its data."""


class DiesAt(Dataset):
    """Wraps a dataset and raises `Killed` once `fetches` items have been read: a kill mid-epoch."""

    def __init__(self, base, fetches: int):
        self.base, self.left = base, fetches

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise Killed(f"died after {len(self.base)} items were asked for")
        return self.base[i]

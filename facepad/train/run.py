"""What one training run carries from epoch to epoch (`Run`), and where its folder is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from facepad.config import Config
from facepad.models.losses import PadLoss
from facepad.train import distributed as fdist
from facepad.train.ema import EMA

if TYPE_CHECKING:
    from facepad.data.device_augment import DeviceAugment


def run_dir_of(config: Config) -> Path:
    return Path(config.out_dir) / (config.run_name or config.model.name)


@dataclass
class Run:
    """What one training run carries from epoch to epoch."""

    config: Config
    info: fdist.DistInfo
    run_dir: Path
    model: nn.Module  # the plain model: validated and saved
    train_model: nn.Module  # what a training step calls: DDP-wrapped, then compiled
    loss_fn: PadLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loader: DataLoader
    val_loader: DataLoader
    preprocess: dict
    epoch: int = 0  # the last finished epoch
    step: int = 0
    best: dict = field(
        default_factory=lambda: {
            "val_acer": math.inf,
            "val_loss": math.inf,
            "epoch": 0,
            "threshold": None,
            "stale": 0,
        }  # fmt: skip
    )
    writer: Any = None  # TensorBoard, rank 0 only
    ema: EMA | None = None  # averaged weights: validated and saved in place of the model's
    warned_one_class: bool = False
    device_augment: DeviceAugment | None = None  # data.augment_device=device: batches, here

    @property
    def kept_model(self) -> nn.Module:
        """The weights validation judges and checkpoints ship: the EMA's when it is on."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.csv"

    @property
    def by_dataset_path(self) -> Path:
        return self.run_dir / "val_by_dataset.csv"

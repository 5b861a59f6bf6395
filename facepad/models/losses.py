"""Training losses: BCE on the live target, depth MSE (+ contrastive depth loss), their sum."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _contrastive_kernels() -> torch.Tensor:
    """8 kernels (8, 1, 3, 3): one neighbour minus the centre, for each of the 8 neighbours."""
    kernels = torch.zeros(8, 1, 3, 3)
    neighbours = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    for k, (i, j) in enumerate(neighbours):
        kernels[k, 0, i, j] = 1.0
        kernels[k, 0, 1, 1] = -1.0
    return kernels


class ContrastiveDepthLoss(nn.Module):
    """MSE between local depth contrasts of prediction and target (Wang et al. 2020, CDCN).

    Plain MSE rewards a blurry average face; matching neighbour-minus-centre differences asks
    for the shape's detail.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("kernels", _contrastive_kernels(), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kernels = self.kernels.to(pred.dtype)
        return F.mse_loss(
            F.conv2d(pred, kernels, padding=1), F.conv2d(target, kernels, padding=1)
        )  # (B, 8, h, w) each


class PadLoss(nn.Module):
    """One loss for every model: each term applies when the model outputs its key.

    logit -> binary_weight * BCE-with-logits(logit, live), targets smoothed towards 0.5 by
             label_smoothing (a binary head otherwise drives its logits to extremes on the
             training subjects, and its scores stop ranking new ones);
    depth -> depth_weight * (MSE(depth, target) + contrastive_weight * contrastive depth loss).
    Spoof targets are all-zero maps (the dataset gives them). Returns a dict of the terms and
    their weighted sum under "loss".
    """

    def __init__(
        self,
        binary_weight: float = 1.0,
        depth_weight: float = 1.0,
        contrastive_weight: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.binary_weight = binary_weight
        self.depth_weight = depth_weight
        self.contrastive_weight = contrastive_weight
        self.contrastive = ContrastiveDepthLoss()

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        total = None
        if "logit" in outputs:
            logit = outputs["logit"].float()  # (B,)
            target = batch["live"].float() * (1 - self.label_smoothing) + self.label_smoothing / 2
            terms["bce"] = F.binary_cross_entropy_with_logits(logit, target)
            total = self.binary_weight * terms["bce"]
        if "depth" in outputs:
            pred = outputs["depth"].float()  # (B, 1, h, w)
            target = batch["depth"].float()
            if pred.shape != target.shape:
                raise ValueError(
                    f"depth map {tuple(pred.shape[-2:])} from the model, target "
                    f"{tuple(target.shape[-2:])} from the data: make data.depth_size equal "
                    "data.input_size / model map_stride"
                )
            depth = F.mse_loss(pred, target)
            terms["depth_mse"] = depth
            if self.contrastive_weight > 0:
                terms["contrastive"] = self.contrastive(pred, target)
                depth = depth + self.contrastive_weight * terms["contrastive"]
            part = self.depth_weight * depth
            total = part if total is None else total + part
        if total is None:
            raise ValueError(f"model outputs {sorted(outputs)} hold neither 'logit' nor 'depth'")
        terms["loss"] = total
        return terms

"""The one place that turns a model's outputs into a liveness score (higher = more live)."""

from __future__ import annotations

import torch
from torch import nn


def liveness_score(outputs: dict[str, torch.Tensor], binary_weight: float = 0.5) -> torch.Tensor:
    """Liveness score in [0, 1], shape (B,), from any facepad model's output dict.

    binary arm: sigmoid of the logit; depth arm: mean of the predicted map (a spoof's target is
    all zeros, a live face's is its depth); both present (fusion): binary_weight * sigmoid +
    (1 - binary_weight) * mean depth.
    """
    parts = []
    if "logit" in outputs:
        parts.append((binary_weight, torch.sigmoid(outputs["logit"].float().reshape(-1))))
    if "depth" in outputs:
        depth = outputs["depth"].float()  # (B, 1, h, w) in [0, 1]
        parts.append((1.0 - binary_weight, depth.flatten(1).mean(dim=1).clamp(0.0, 1.0)))
    if not parts:
        raise ValueError(f"model outputs {sorted(outputs)} hold neither 'logit' nor 'depth'")
    if len(parts) == 1:
        return parts[0][1]
    return sum(w * s for w, s in parts)


def score_outputs(model: nn.Module, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """liveness_score with the model's own fusion rule (its `binary_weight`, default 0.5)."""
    return liveness_score(outputs, float(getattr(model, "binary_weight", 0.5)))


class ScoredModel(nn.Module):
    """Wraps a facepad model so forward returns (score (B,), depth (B,1,h,w) or None).

    Evaluation, ONNX export and serving all go through this, so they agree for every model.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = self.model(images)
        return score_outputs(self.model, outputs), outputs.get("depth")

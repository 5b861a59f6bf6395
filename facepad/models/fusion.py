"""Fusion arm: one shared encoder feeding the depth decoder and a binary head, trained jointly."""

from __future__ import annotations

import torch
from torch import nn

from facepad.models.depth_unet import DepthDecoder, UNetEncoder, check_input_size
from facepad.models.layers import Normalize, init_weights


class FusionNet(nn.Module):
    """The paper's future work: binary and depth supervision on one encoder.

    Outputs {"logit": (B,), "depth": (B, 1, h, w)}. Score rule (facepad.models.score):
    binary_weight * sigmoid(logit) + (1 - binary_weight) * mean(depth); binary_weight is kept as
    a model attribute (and in the checkpoint's model kwargs) so every consumer scores alike.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256, 256),
        map_stride: int = 8,
        theta: float = 0.0,
        binary_weight: float = 0.5,
        dropout: float = 0.2,
        input_norm: str = "imagenet",
    ):
        super().__init__()
        if not 0.0 <= binary_weight <= 1.0:
            raise ValueError(f"binary_weight must be in [0, 1], got {binary_weight}")
        self.kwargs = dict(
            widths=list(widths),
            map_stride=map_stride,
            theta=theta,
            binary_weight=binary_weight,
            dropout=dropout,
            input_norm=input_norm,
        )
        self.binary_weight = float(binary_weight)
        self.normalize = Normalize(input_norm)
        self.encoder = UNetEncoder(tuple(widths), theta=theta)
        self.decoder = DepthDecoder(tuple(widths), map_stride)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1], 1)
        )
        init_weights(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input_size(images, len(self.encoder.stages))
        features = self.encoder(self.normalize(images))
        return {
            "logit": self.head(features[-1]).squeeze(1),  # (B,)
            "depth": self.decoder(features),  # (B, 1, h, w)
        }

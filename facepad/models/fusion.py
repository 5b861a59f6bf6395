"""Fusion arm: one shared encoder feeding the depth decoder and a binary head, trained jointly."""

from __future__ import annotations

import torch
from torch import nn

from facepad.models.depth_unet import DepthDecoder, build_encoder, check_input_size
from facepad.models.encoders import PLAIN, start_from_imagenet
from facepad.models.layers import Normalize, init_weights


class FusionNet(nn.Module):
    """The paper's future work: binary and depth supervision on one encoder.

    Outputs {"logit": (B,), "depth": (B, 1, h, w)}. Score rule (facepad.models.score):
    binary_weight * sigmoid(logit) + (1 - binary_weight) * mean(depth); binary_weight is kept as
    a model attribute (and in the checkpoint's model kwargs) so every consumer scores alike.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | None = None,
        map_stride: int = 8,
        theta: float = 0.0,
        binary_weight: float = 0.5,
        dropout: float = 0.2,
        input_norm: str | None = None,
        encoder: str = PLAIN,
        pretrained: bool = False,
        freeze_stride: int = 0,
    ):
        super().__init__()
        if not 0.0 <= binary_weight <= 1.0:
            raise ValueError(f"binary_weight must be in [0, 1], got {binary_weight}")
        self.kwargs, self.encoder = build_encoder(
            encoder, widths, theta, freeze_stride, pretrained, input_norm, out_stride=32
        )
        self.kwargs.update(map_stride=map_stride, binary_weight=binary_weight, dropout=dropout)
        self.binary_weight = float(binary_weight)
        self.normalize = Normalize(self.kwargs["input_norm"])
        widths = tuple(self.encoder.widths)
        # the plain decoder climbs every level; Lite0's climbs its stride 16-2 features, the
        # stride-32 head (1280 channels) feeding the binary head only
        self.decoder_levels = len(widths) if encoder == PLAIN else len(widths) - 1
        self.decoder = DepthDecoder(widths[: self.decoder_levels], map_stride)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1], 1)
        )
        init_weights(self)
        start_from_imagenet(self.encoder if encoder != PLAIN else None, pretrained)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input_size(images, self.decoder_levels)
        features = self.encoder(self.normalize(images))
        return {
            "logit": self.head(features[-1]).squeeze(1),  # (B,)
            "depth": self.decoder(features[: self.decoder_levels]),  # (B, 1, h, w)
        }

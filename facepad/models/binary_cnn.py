"""Binary arm: a stack of conv blocks and a fully connected layer giving one live/spoof logit."""

from __future__ import annotations

import torch
from torch import nn

from facepad.models.layers import Normalize, conv_bn_relu, init_weights


class BinaryCNN(nn.Module):
    """Conv-BN-ReLU blocks, each closed by 2x2 max pooling, then global pooling and one FC layer.

    Output: {"logit": (B,)}; sigmoid(logit) is the liveness score. Global average pooling before
    the FC layer keeps the weights independent of the input size.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        convs_per_block: int = 1,
        dropout: float = 0.2,
        input_norm: str = "imagenet",
    ):
        super().__init__()
        if not widths:
            raise ValueError("binary_cnn needs at least one block width")
        self.kwargs = dict(
            widths=list(widths),
            convs_per_block=convs_per_block,
            dropout=dropout,
            input_norm=input_norm,
        )
        self.normalize = Normalize(input_norm)
        blocks, in_ch = [], 3
        for width in widths:
            layers = [conv_bn_relu(in_ch, width)]
            layers += [conv_bn_relu(width, width) for _ in range(convs_per_block - 1)]
            layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            in_ch = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, 1)
        init_weights(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.features(self.normalize(images))  # (B, C, H / 2^n, W / 2^n)
        x = self.pool(x).flatten(1)  # (B, C)
        return {"logit": self.fc(self.dropout(x)).squeeze(1)}  # (B,)

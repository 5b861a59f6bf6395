"""Binary arm: an encoder and a fully connected layer giving one live/spoof logit.

The paper's encoder is a stack of conv blocks trained from scratch (`encoder="plain"`); the
pretrained family puts the EfficientNet-Lite0 trunk in its place (`encoder="efficientnet_lite0"`).
"""

from __future__ import annotations

import torch
from torch import nn

from facepad.models.encoders import (
    PLAIN,
    check_encoder,
    input_norm_for,
    lite_trunk,
    start_from_imagenet,
)
from facepad.models.layers import Normalize, conv_bn_relu, init_weights


class BinaryCNN(nn.Module):
    """Encoder, global average pooling, dropout, one FC layer.

    Plain encoder: conv-BN-ReLU blocks (`widths`, `convs_per_block` each), each closed by 2x2 max
    pooling. Output: {"logit": (B,)}; sigmoid(logit) is the liveness score. Global pooling before
    the FC layer keeps the weights independent of the input size.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | None = None,
        convs_per_block: int | None = None,
        dropout: float = 0.2,
        input_norm: str | None = None,
        encoder: str = PLAIN,
        pretrained: bool = False,
        freeze_stride: int = 0,
    ):
        super().__init__()
        check_encoder(encoder, {"widths": widths, "convs_per_block": convs_per_block},
                      {"pretrained": pretrained, "freeze_stride": freeze_stride})  # fmt: skip
        input_norm = input_norm_for(encoder, input_norm)
        self.normalize = Normalize(input_norm)
        self.dropout = nn.Dropout(dropout)
        self.trunk = None  # the pretrained encoder, when there is one
        if encoder == PLAIN:
            widths = tuple(widths) if widths is not None else (32, 64, 128, 256)
            convs_per_block = 1 if convs_per_block is None else convs_per_block
            self.kwargs = dict(encoder=encoder, widths=list(widths),
                               convs_per_block=convs_per_block)  # fmt: skip
            self.features = plain_features(widths, convs_per_block)
            width = widths[-1]
        else:
            self.kwargs = dict(encoder=encoder, freeze_stride=freeze_stride)
            self.trunk = lite_trunk(encoder, 32, freeze_stride)
            width = self.trunk.widths[-1]
        self.kwargs.update(dropout=dropout, input_norm=input_norm)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 1)
        init_weights(self)
        start_from_imagenet(self.trunk, pretrained)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalize(images)
        x = self.features(x) if self.trunk is None else self.trunk(x)[-1]  # (B, C, h, w)
        x = self.pool(x).flatten(1)  # (B, C)
        return {"logit": self.fc(self.dropout(x)).squeeze(1)}  # (B,)


def plain_features(widths: tuple[int, ...], convs_per_block: int) -> nn.Sequential:
    """The paper's encoder: per width, conv-BN-ReLU block(s) then 2x2 max pooling."""
    if not widths:
        raise ValueError("binary_cnn needs at least one block width")
    blocks, in_ch = [], 3
    for width in widths:
        layers = [conv_bn_relu(in_ch, width)]
        layers += [conv_bn_relu(width, width) for _ in range(convs_per_block - 1)]
        layers.append(nn.MaxPool2d(2))
        blocks.append(nn.Sequential(*layers))
        in_ch = width
    return nn.Sequential(*blocks)

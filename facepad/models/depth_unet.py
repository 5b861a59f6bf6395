"""Depth arm: a U-Net that regresses a pseudo-depth map (a live face's depth, zeros for a spoof)."""

from __future__ import annotations

import math

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


class UNetEncoder(nn.Module):
    """Down-sampling by stride-2 convs; stage i outputs widths[i] channels at H / 2^(i+1)."""

    def __init__(self, widths: tuple[int, ...], theta: float = 0.0):
        super().__init__()
        stages, in_ch = [], 3
        for width in widths:
            stages.append(
                nn.Sequential(
                    conv_bn_relu(in_ch, width, stride=2, theta=theta),
                    conv_bn_relu(width, width, theta=theta),
                )
            )
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.widths = tuple(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features  # finest first; features[-1] is the bottleneck


class UpBlock(nn.Module):
    """Transpose-conv x2 up-sampling, concatenation with the encoder skip, one conv block."""

    def __init__(self, in_ch: int, skip_ch: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_ch, skip_ch, 2, stride=2, bias=False),
            nn.BatchNorm2d(skip_ch),
            nn.ReLU(inplace=True),
        )
        self.fuse = conv_bn_relu(2 * skip_ch, skip_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class DepthDecoder(nn.Module):
    """Climbs from the bottleneck back to H / map_stride; a sigmoid head gives the map in [0, 1]."""

    def __init__(self, widths: tuple[int, ...], map_stride: int):
        super().__init__()
        levels = int(round(math.log2(map_stride)))
        if 2**levels != map_stride:
            raise ValueError(f"map_stride must be a power of two, got {map_stride}")
        n_up = len(widths) - levels
        if n_up < 0:
            raise ValueError(
                f"map_stride {map_stride} needs at least {levels} encoder stages, "
                f"widths {list(widths)} has {len(widths)}: add widths or lower map_stride"
            )
        self.n_up = n_up
        ups, in_ch = [], widths[-1]
        for i in range(n_up):
            skip_ch = widths[-2 - i]
            ups.append(UpBlock(in_ch, skip_ch))
            in_ch = skip_ch
        self.ups = nn.ModuleList(ups)
        self.head = nn.Sequential(nn.Conv2d(in_ch, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i, up in enumerate(self.ups):
            x = up(x, features[-2 - i])
        return self.head(x)  # (B, 1, H / map_stride, W / map_stride)


def check_input_size(images: torch.Tensor, n_stages: int) -> None:
    """Sizes must divide by 2^stages so every skip connection lines up."""
    multiple = 2**n_stages
    h, w = images.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"input {h}x{w} must be a multiple of {multiple} for {n_stages} encoder stages: "
            "change data.input_size or the model's widths"
        )


class DepthUNet(nn.Module):
    """Encoder-decoder with skip connections and no FC layer; output {"depth": (B, 1, h, w)}.

    h = H / map_stride: 256x256 in with map_stride 8 gives the usual 32x32 map. Plain encoder
    (the paper's): stride-2 conv stages of `widths`; theta > 0 turns them into central
    difference convs (CDC). Pretrained encoder: the EfficientNet-Lite0 trunk up to stride 16,
    the decoder climbing its stride 16-2 features.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | None = None,
        map_stride: int = 8,
        theta: float = 0.0,
        input_norm: str | None = None,
        encoder: str = PLAIN,
        pretrained: bool = False,
        freeze_stride: int = 0,
    ):
        super().__init__()
        self.kwargs, self.encoder = build_encoder(
            encoder, widths, theta, freeze_stride, pretrained, input_norm, out_stride=16
        )
        self.kwargs["map_stride"] = map_stride
        self.normalize = Normalize(self.kwargs["input_norm"])
        self.decoder = DepthDecoder(tuple(self.encoder.widths), map_stride)
        init_weights(self)
        start_from_imagenet(self.encoder if encoder != PLAIN else None, pretrained)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input_size(images, len(self.encoder.widths))
        features = self.encoder(self.normalize(images))
        return {"depth": self.decoder(features)}  # (B, 1, h, w) in [0, 1]


def build_encoder(
    encoder: str, widths, theta: float, freeze_stride: int, pretrained: bool,
    input_norm: str | None, out_stride: int,
) -> tuple[dict, nn.Module]:  # fmt: skip
    """(kwargs to keep, encoder module) of a U-Net-shaped model: the plain stride-2 conv stages,
    or the Lite trunk cut at `out_stride` (its weights loaded later by the model). The kwargs
    hold the resolved input normalisation."""
    check_encoder(encoder, {"widths": widths, "theta": theta},
                  {"pretrained": pretrained, "freeze_stride": freeze_stride})  # fmt: skip
    if encoder == PLAIN:
        widths = tuple(widths) if widths is not None else (32, 64, 128, 256, 256)
        kwargs = dict(encoder=encoder, widths=list(widths), theta=theta)
        module = UNetEncoder(widths, theta=theta)
    else:
        kwargs = dict(encoder=encoder, freeze_stride=freeze_stride)
        module = lite_trunk(encoder, out_stride, freeze_stride)
    kwargs["input_norm"] = input_norm_for(encoder, input_norm)
    return kwargs, module

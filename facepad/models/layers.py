"""Building blocks shared by the facepad models: input normalisation, conv blocks, CDC."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


INPUT_NORMS = ("imagenet", "image", "image_gray", "efficientnet_lite")
# EfficientNet-Lite's own input scaling, (x - 127) / 128 on 0-255 pixels
LITE_MEAN, LITE_STD = 127.0 / 255.0, 128.0 / 255.0
LUMA = (0.299, 0.587, 0.114)


class Normalize(nn.Module):
    """Input normalisation kept inside the model, so export and serving need no preprocessing.

    mode "imagenet": fixed ImageNet mean and std. "efficientnet_lite": the scaling the
    EfficientNet-Lite ImageNet weights were trained with, (x - 127) / 128 on 0-255 pixels.
    "image": each image's own channel mean and std, which removes brightness, contrast and colour
    cast, the cues that differ most between cameras and lights. "image_gray": the same on luma
    (copied to 3 channels), which also drops saturation.
    """

    def __init__(self, mode: str = "imagenet"):
        super().__init__()
        if mode not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {mode!r}")
        self.mode = mode
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if mode == "efficientnet_lite":
            mean, std = (LITE_MEAN,) * 3, (LITE_STD,) * 3
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W) in [0, 1], got {tuple(x.shape)}")
        if self.mode in ("imagenet", "efficientnet_lite"):
            return (x - self.mean) / self.std
        if self.mode == "image_gray":
            x = (x * self.luma).sum(1, keepdim=True).expand(-1, 3, -1, -1)
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        return (x - mean) / (std + 1e-3)


class CDConv2d(nn.Conv2d):
    """Central difference convolution (Yu et al., CDCN 2020).

    y = conv(x) - theta * (sum of the kernel) * x_centre: it mixes plain intensity features with
    local gradients, which carry the fine texture cues of spoofs. theta = 0 is a plain conv.
    """

    def __init__(self, *args, theta: float = 0.7, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"CDC theta must be in [0, 1], got {theta}")
        kh, kw = self.kernel_size
        if kh % 2 == 0 or kw % 2 == 0 or self.padding != (kh // 2, kw // 2):
            raise ValueError("CDC needs an odd kernel with 'same' padding (kernel_size // 2)")
        self.theta = float(theta)

    def folded_weight(self) -> torch.Tensor:
        """The one kernel CDC amounts to: w - theta * (spatial sum of w) on the centre tap.

        The centre term is a 1x1 conv of the summed kernel at the same stride; with "same"
        padding it lands on the centre tap, so it folds into the kernel (one conv; a separate
        strided 1x1 conv also crashed oneDNN's channels_last backward in torch 2.13).
        """
        kh, kw = self.kernel_size
        kernel_sum = self.weight.sum(dim=(2, 3), keepdim=True)  # (out, in, 1, 1)
        centre = F.pad(kernel_sum, (kw // 2, kw // 2, kh // 2, kh // 2))  # (out, in, kh, kw)
        return self.weight - self.theta * centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.theta == 0.0:
            return super().forward(x)
        return self._conv_forward(x, self.folded_weight(), self.bias)

    def to_conv(self) -> nn.Conv2d:
        """The plain convolution this CDC equals once trained (for export and inference: the
        ONNX exporter cannot trace a kernel computed from the weights)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(self.folded_weight())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.train(self.training)


def fold_cdc(model: nn.Module) -> nn.Module:
    """Replace every CDConv2d inside `model` by its plain folded conv, in place; returns model.

    The weights keep their names, so a folded model still loads the checkpoint's state dict.
    """
    for name, child in model.named_children():
        if isinstance(child, CDConv2d):
            setattr(model, name, child.to_conv())
        else:
            fold_cdc(child)
    return model


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1, theta: float = 0.0) -> nn.Sequential:
    """3x3 conv (CDC when theta > 0), batch norm, ReLU."""
    if theta > 0.0:
        conv = CDConv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False, theta=theta)
    else:
        conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def init_weights(module: nn.Module) -> None:
    """Kaiming init for convs, zero biases, unit BN: the same start for every model."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

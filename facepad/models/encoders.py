"""Which encoder a model is built on: facepad's own convolutions from scratch (the paper's
models), or an EfficientNet-Lite trunk (Lite0, Lite1) starting from ImageNet weights.

All three model kinds take `encoder=` (and, for the pretrained one, `pretrained=` and
`freeze_stride=`), so one registry, one score rule and one checkpoint format serve both families.
`pretrained` only says where training starts: a checkpoint holds the weights, so it is not kept
in the model's kwargs and a model rebuilt from a checkpoint never reads the weights package.
"""

from __future__ import annotations

from facepad.models.efficientnet_lite import EfficientNetLite, load_imagenet_weights

PLAIN = "plain"
LITE0 = "efficientnet_lite0"
LITE1 = "efficientnet_lite1"
ENCODERS = (PLAIN, LITE0, LITE1)
# the input normalisation each encoder's weights expect, when the model is not told one
DEFAULT_NORM = {PLAIN: "imagenet", LITE0: "efficientnet_lite", LITE1: "efficientnet_lite"}


def check_encoder(encoder: str, plain_only: dict, lite_only: dict) -> str:
    """Refuse an unknown encoder, or an argument the chosen encoder does not use (given as
    anything but None / 0 / False), naming it; returns the encoder."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    unused = plain_only if encoder != PLAIN else lite_only
    given = sorted(k for k, v in unused.items() if v not in (None, 0, False))
    if given:
        raise ValueError(f"{', '.join(given)} do(es) not apply to encoder {encoder!r}; drop it")
    return encoder


def input_norm_for(encoder: str, input_norm: str | None) -> str:
    """The normalisation asked for, else the one the encoder's weights expect."""
    return input_norm or DEFAULT_NORM[encoder]


def lite_trunk(encoder: str, out_stride: int, freeze_stride: int) -> EfficientNetLite:
    """The EfficientNet-Lite trunk an encoder name stands for (random weights until
    `start_from_imagenet`)."""
    return EfficientNetLite(
        out_stride, freeze_stride, variant=encoder.removeprefix("efficientnet_")
    )


def start_from_imagenet(trunk: EfficientNetLite | None, pretrained: bool) -> None:
    """Load the ImageNet weights into a model's Lite trunk when asked. Models call it last,
    after their own `init_weights`, which would otherwise overwrite them."""
    if pretrained and trunk is not None:
        load_imagenet_weights(trunk)

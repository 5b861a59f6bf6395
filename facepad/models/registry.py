"""One registry for every facepad model: create_model(name, **kwargs), list_models().

list_models() names the models `facepad train` builds; the ensemble is registered too (so its
checkpoints rebuild like any other) but is made from trained checkpoints, not trained.
Checkpoints (and rebuilding a model from one) live in facepad.models.checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_UNTRAINED: set[str] = set()  # built from trained checkpoints (the ensemble), not by training


def register_model(name: str, trainable: bool = True) -> Callable:
    """Decorator adding a model constructor under `name`."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = fn
        if not trainable:
            _UNTRAINED.add(name)
        return fn

    return add


@register_model("binary_cnn")
def _binary_cnn(**kwargs) -> nn.Module:
    from facepad.models.binary_cnn import BinaryCNN

    return BinaryCNN(**kwargs)


@register_model("depth_unet")
def _depth_unet(**kwargs) -> nn.Module:
    from facepad.models.depth_unet import DepthUNet

    return DepthUNet(**kwargs)


@register_model("fusion")
def _fusion(**kwargs) -> nn.Module:
    from facepad.models.fusion import FusionNet

    return FusionNet(**kwargs)


@register_model("ensemble", trainable=False)
def _ensemble(**kwargs) -> nn.Module:
    from facepad.models.ensemble import Ensemble

    return Ensemble(**kwargs, build=create_model)


def list_models() -> list[str]:
    """The models `facepad train` can build."""
    return sorted(set(_MODELS) - _UNTRAINED)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; its constructor kwargs are kept in `model.kwargs`."""
    if name not in _MODELS:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}, and "
            f"{', '.join(sorted(_UNTRAINED))} (built from trained checkpoints)"
        )
    try:
        model = _MODELS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for model {name!r}: {err}") from err
    model.model_name = name
    return model

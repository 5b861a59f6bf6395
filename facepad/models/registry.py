"""One registry for every facepad model: create_model(name, **kwargs), list_models()."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

# Checkpoint format this code reads and writes (keys in docs/ARCHITECTURE.md).
CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_KEYS = ("format_version", "model", "state_dict")

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator adding a model constructor under `name`."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = fn
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


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; its constructor kwargs are kept in `model.kwargs`."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    try:
        model = _MODELS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for model {name!r}: {err}") from err
    model.model_name = name
    return model


def load_checkpoint_dict(ckpt: str | Path | dict) -> dict:
    """Read a checkpoint file (or take a dict) and check that it is a facepad checkpoint we read."""
    where = "checkpoint dict"
    if not isinstance(ckpt, dict):
        import torch

        path = Path(ckpt)
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} not found")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file
            raise ValueError(
                f"{path} is not a readable facepad checkpoint ({type(err).__name__}: {err}); "
                "pass a best.pt or last.pt written by `facepad train`"
            ) from err
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in CHECKPOINT_KEYS):
        raise ValueError(
            f"{where} is not a facepad checkpoint: it needs the keys {list(CHECKPOINT_KEYS)}; "
            "pass a best.pt or last.pt written by `facepad train`"
        )
    version = ckpt["format_version"]
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{where} has checkpoint format_version {version}, this facepad reads version "
            f"{CHECKPOINT_FORMAT_VERSION}: use the facepad release that wrote it, or retrain"
        )
    return ckpt


def checkpoint_preprocess(ckpt: dict, where: str) -> dict:
    """How inference must crop for a checkpoint: {crop_scale, crop_size, input_size}.

    crop_size is the prepared store's (crop there, then resize to input_size, as the Dataset
    did); checkpoints older than that key crop straight to input_size.
    """
    pre = ckpt.get("preprocess") or {}
    if not pre.get("input_size") or not pre.get("crop_scale"):
        raise ValueError(
            f"{where} has no preprocess {{crop_scale, input_size}}; use a checkpoint written by "
            "`facepad train`"
        )
    input_size = int(pre["input_size"])
    return {
        "crop_scale": float(pre["crop_scale"]),
        "crop_size": int(pre.get("crop_size", input_size)),
        "input_size": input_size,
    }


def model_from_checkpoint(
    ckpt: str | Path | dict, expect_name: str | None = None
) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights: (model in eval mode, ckpt).

    `expect_name` guards callers that need one kind of model (e.g. a depth map).
    """
    where = "checkpoint dict" if isinstance(ckpt, dict) else str(ckpt)
    ckpt = load_checkpoint_dict(ckpt)
    spec = ckpt["model"]
    name, kwargs = spec.get("name"), dict(spec.get("kwargs") or {})
    if expect_name is not None and name != expect_name:
        raise ValueError(f"{where} holds a {name!r} model, not the {expect_name!r} asked for")
    model = create_model(name, **kwargs)
    # Weights saved from a compiled or DDP-wrapped model carry a prefix.
    state = {
        k.removeprefix("_orig_mod.").removeprefix("module."): v
        for k, v in ckpt["state_dict"].items()
    }
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
        problem = f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
    except RuntimeError as err:  # shape mismatch
        missing, unexpected, problem = True, True, str(err).splitlines()[-1].strip()
    if missing or unexpected:
        raise ValueError(
            f"{where}: its weights do not fit a {name!r} model with kwargs {kwargs} "
            f"({problem}); was the checkpoint edited or written by another model?"
        )
    model.eval()
    return model, ckpt

"""The checkpoint format, owned here alone: build, save (atomically), load and check, read the
crop settings and the threshold, and rebuild the model.

A checkpoint is a `torch.save`d dict (keys in docs/ARCHITECTURE.md) that describes itself: the
model's registry name and kwargs, the resolved config, the training state for --resume, the
threshold calibrated on validation (None when validation could not calibrate one) and how
inference must crop faces. Training writes it; evaluation, the torch backend and export read it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facepad.models.registry import create_model

# Checkpoint format this code reads and writes.
CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_KEYS = ("format_version", "model", "state_dict")

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "UncalibratedError",
    "build_checkpoint",
    "checkpoint_preprocess",
    "checkpoint_threshold",
    "is_calibrated",
    "load_checkpoint",
    "model_from_checkpoint",
    "model_spec",
    "restore_training_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


class UncalibratedError(ValueError):
    """A checkpoint without a calibrated threshold, used where a decision needs one."""


def model_spec(model: nn.Module) -> dict:
    """{name, kwargs}: what `create_model` needs to rebuild `model`."""
    return {"name": model.model_name, "kwargs": dict(model.kwargs)}


def build_checkpoint(
    model: nn.Module,
    *,
    config: dict,
    preprocess: dict,
    threshold: float | None,
    epoch: int,
    step: int,
    best_metric: dict,
    val: dict | None = None,
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
    ema: Any = None,
    trained: nn.Module | None = None,
) -> dict:
    """The checkpoint dict of a training run at the end of `epoch`.

    `threshold` is the validation threshold on the liveness score, or None when validation could
    not calibrate one (a split with one class): the checkpoint is then marked uncalibrated.
    With a weight average (`ema`), `model` is the averaged model that was validated and ships as
    `state_dict`; the optimiser's own weights (`trained`) and the average's state are kept for
    --resume.
    """
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model": model_spec(model),
        "state_dict": model.state_dict(),
        "config": config,
        "epoch": epoch,
        "step": step,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": rng_state(),
        "best_metric": best_metric,
        "threshold": None if threshold is None else float(threshold),
        "calibrated": threshold is not None,
        "val": val,
        "preprocess": preprocess,
        "ema": None if ema is None else ema.state_dict(),
        "train_state_dict": None if trained is None or ema is None else trained.state_dict(),
    }


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """torch.save to a temporary file, fsync, then rename: a kill never leaves half a file.
    The folder is created if missing (`facepad ensemble --out new/folder/x.pt`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(ckpt, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(ckpt: str | Path | dict) -> dict:
    """Read a checkpoint file (or take a dict) and check that it is a facepad checkpoint we read."""
    where = "checkpoint dict"
    if not isinstance(ckpt, dict):
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
    """How inference must crop for a checkpoint: {crop_scale, crop_size, input_size, depth_size}.

    crop_size is the prepared store's (crop there, then resize to input_size, as the Dataset
    did); checkpoints older than that key crop straight to input_size. depth_size is None when
    the checkpoint does not say.
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
        "depth_size": int(pre["depth_size"]) if pre.get("depth_size") else None,
    }


def is_calibrated(ckpt: dict) -> bool:
    """Whether training chose a threshold on validation (older checkpoints: it holds one)."""
    return bool(ckpt.get("calibrated", True)) and ckpt.get("threshold") is not None


def checkpoint_threshold(ckpt: dict, where: str, threshold: float | None = None) -> float:
    """The decision threshold: `threshold` when given, else the checkpoint's calibrated one.

    Raises UncalibratedError naming the file and the fix when neither exists.
    """
    if threshold is not None:
        return float(threshold)
    if not is_calibrated(ckpt):
        raise UncalibratedError(
            f"{where} is uncalibrated: its validation split held one class, so training chose "
            "no threshold. Pass --threshold T (live when score >= T), or retrain with a "
            "validation split that holds both live and spoof samples"
        )
    return float(ckpt["threshold"])


def model_from_checkpoint(
    ckpt: str | Path | dict, expect_name: str | None = None
) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights: (model in eval mode, ckpt).

    `expect_name` guards callers that need one kind of model (e.g. a depth map).
    """
    where = "checkpoint dict" if isinstance(ckpt, dict) else str(ckpt)
    ckpt = load_checkpoint(ckpt)
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


def restore_training_state(
    ckpt: dict, where: str, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any
) -> None:
    """Load weights, optimiser, scheduler, scaler and RNG states for --resume."""
    if ckpt["model"] != model_spec(model):
        raise ValueError(
            f"{where} holds model {ckpt['model']}, the config builds {model_spec(model)}: "
            "resume with the run's own config.yaml"
        )
    trained = ckpt.get("train_state_dict")  # set when the shipped weights are an average
    model.load_state_dict(trained if trained is not None else ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])


def rng_state() -> dict:
    """Every random generator training uses, in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

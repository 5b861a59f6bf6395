"""Checkpoints that describe themselves (keys in docs/ARCHITECTURE.md), written atomically."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from facepad.models.registry import CHECKPOINT_FORMAT_VERSION, load_checkpoint_dict

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """torch.save to a temporary file, fsync, then rename: a kill never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(ckpt, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read and check a facepad checkpoint (format version, required keys)."""
    return load_checkpoint_dict(path)


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

"""Exponential moving average of a model's weights (what the run validates, saves and ships).

Averaging the weights of the last few hundred steps smooths out the step-to-step noise of a
small training set, so the kept epoch depends less on where the last minibatches happened to
land; it costs one copy of the weights and a fused lerp per step.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`module` holds the averaged weights; buffers (BatchNorm statistics) follow the model's."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema must be in (0, 1) (e.g. 0.999), or 0 for off; got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards `model`; early on the average forgets faster (warm-up),
        so it is not anchored to the random initial weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged = [p for p in self.module.parameters() if p.dtype.is_floating_point]
        current = [p for p in model.parameters() if p.dtype.is_floating_point]
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])

"""Several trained models as one model: their outputs averaged.

Models retrained with other seeds disagree most where they are unsure, on people they never saw;
averaging them steadies the score there. The ensemble returns the same output dict as its members
(mean logit, mean depth map), so `liveness_score`, evaluation, export and serving take it like any
other model, and one checkpoint holds it (`facepad ensemble` builds and calibrates it, loading
the members' checkpoints with `facepad.evaluate.ensemble.ensemble_of`).

Members are seeds of one kind, or the paper's two arms together (late fusion): binary CNNs give
the logit, depth U-Nets the map, and the ensemble is scored as the fusion model is, from two
networks trained apart instead of one trained jointly.

The registry builds an ensemble like any model and hands it `create_model` to build the members
with, so this module imports neither the registry nor checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

LATE_FUSION = {"binary_cnn", "depth_unet"}  # the kinds that may mix: one logit, one depth map


class Ensemble(nn.Module):
    """Members of one registered kind (e.g. depth_unet seeds), or binary_cnn and depth_unet
    members (late fusion); forward averages each output over the members that produce it."""

    def __init__(self, members: Sequence[dict], *, build: Callable[..., nn.Module]):
        """`members`: [{name, kwargs}]; `build(name, **kwargs)` makes one (the registry's)."""
        super().__init__()
        members = [{"name": m["name"], "kwargs": dict(m.get("kwargs") or {})} for m in members]
        kinds = {m["name"] for m in members}
        if len(members) < 2 or "ensemble" in kinds or not (len(kinds) == 1 or kinds == LATE_FUSION):
            raise ValueError(
                "an ensemble needs two or more members of one kind of model, or binary_cnn and "
                f"depth_unet members together (late fusion); got {sorted(kinds)} x {len(members)}"
            )
        self.members = nn.ModuleList(build(m["name"], **m["kwargs"]) for m in members)
        weights = {float(getattr(m, "binary_weight", 0.5)) for m in self.members}
        if len(weights) != 1:
            raise ValueError(f"fusion members weigh their heads differently: {sorted(weights)}")
        self.binary_weight = weights.pop()  # the members' own fusion rule, for `score_outputs`
        self.kwargs = {"members": members}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = [member(images) for member in self.members]
        keys = dict.fromkeys(key for o in outputs for key in o)  # first-seen order
        return {k: torch.stack([o[k] for o in outputs if k in o]).mean(dim=0) for k in keys}

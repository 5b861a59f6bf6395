"""Several trained models as one model: their outputs averaged.

Models retrained with other seeds disagree most where they are unsure, on people they never saw;
averaging them steadies the score there. The ensemble returns the same output dict as its members
(mean logit, mean depth map), so `liveness_score`, evaluation, export and serving take it like any
other model, and one checkpoint holds it (`facepad ensemble` builds and calibrates it).

Members are seeds of one kind, or the paper's two arms together (late fusion): binary CNNs give
the logit, depth U-Nets the map, and the ensemble is scored as the fusion model is, from two
networks trained apart instead of one trained jointly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from facepad.models.checkpoint import checkpoint_preprocess, model_from_checkpoint
from facepad.models.registry import create_model

LATE_FUSION = {"binary_cnn", "depth_unet"}  # the kinds that may mix: one logit, one depth map


class Ensemble(nn.Module):
    """Members of one registered kind (e.g. depth_unet seeds), or binary_cnn and depth_unet
    members (late fusion); forward averages each output over the members that produce it."""

    def __init__(self, members: Sequence[dict]):
        super().__init__()
        members = [{"name": m["name"], "kwargs": dict(m.get("kwargs") or {})} for m in members]
        kinds = {m["name"] for m in members}
        if len(members) < 2 or "ensemble" in kinds or not (len(kinds) == 1 or kinds == LATE_FUSION):
            raise ValueError(
                "an ensemble needs two or more members of one kind of model, or binary_cnn and "
                f"depth_unet members together (late fusion); got {sorted(kinds)} x {len(members)}"
            )
        self.members = nn.ModuleList(create_model(m["name"], **m["kwargs"]) for m in members)
        weights = {float(getattr(m, "binary_weight", 0.5)) for m in self.members}
        if len(weights) != 1:
            raise ValueError(f"fusion members weigh their heads differently: {sorted(weights)}")
        self.binary_weight = weights.pop()  # the members' own fusion rule, for `score_outputs`
        self.kwargs = {"members": members}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = [member(images) for member in self.members]
        keys = dict.fromkeys(key for o in outputs for key in o)  # first-seen order
        return {k: torch.stack([o[k] for o in outputs if k in o]).mean(dim=0) for k in keys}


def ensemble_of(checkpoints: Sequence[str | Path]) -> tuple[Ensemble, dict]:
    """(Ensemble holding the checkpoints' weights, their shared preprocess).

    Members must crop and size faces alike: one face crop feeds them all.
    """
    loaded = [model_from_checkpoint(c) for c in checkpoints]
    preprocess = [
        checkpoint_preprocess(ckpt, str(path))
        for path, (_, ckpt) in zip(checkpoints, loaded, strict=True)
    ]
    for path, pre in zip(checkpoints[1:], preprocess[1:], strict=True):
        if pre != preprocess[0]:
            raise ValueError(
                f"{path} crops faces as {pre}, {checkpoints[0]} as {preprocess[0]}: ensemble "
                "models trained on the same prepared store and input size"
            )
    ensemble = create_model("ensemble", members=[ckpt["model"] for _, ckpt in loaded])
    for slot, (model, _) in zip(ensemble.members, loaded, strict=True):
        slot.load_state_dict(model.state_dict())
    return ensemble.eval(), preprocess[0]

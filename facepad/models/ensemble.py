"""Several trained models of one kind as one model: their outputs averaged.

Models retrained with other seeds disagree most where they are unsure, on people they never saw;
averaging them steadies the score there. The ensemble returns the same output dict as its members
(mean logit, mean depth map), so `liveness_score`, evaluation, export and serving take it like any
other model, and one checkpoint holds it (`facepad ensemble` builds and calibrates it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from facepad.models.checkpoint import checkpoint_preprocess, model_from_checkpoint
from facepad.models.registry import create_model


class Ensemble(nn.Module):
    """Members of one registered kind (e.g. depth_unet seeds); forward averages their outputs."""

    def __init__(self, members: Sequence[dict]):
        super().__init__()
        members = [{"name": m["name"], "kwargs": dict(m.get("kwargs") or {})} for m in members]
        kinds = {m["name"] for m in members}
        if len(members) < 2 or len(kinds) != 1 or "ensemble" in kinds:
            raise ValueError(
                f"an ensemble needs two or more members of one kind of model, got {sorted(kinds)} "
                f"x {len(members)}"
            )
        self.members = nn.ModuleList(create_model(m["name"], **m["kwargs"]) for m in members)
        weights = {float(getattr(m, "binary_weight", 0.5)) for m in self.members}
        if len(weights) != 1:
            raise ValueError(f"fusion members weigh their heads differently: {sorted(weights)}")
        self.binary_weight = weights.pop()  # the members' own fusion rule, for `score_outputs`
        self.kwargs = {"members": members}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = [member(images) for member in self.members]
        return {key: torch.stack([o[key] for o in outputs]).mean(dim=0) for key in outputs[0]}


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

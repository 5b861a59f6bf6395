"""facepad models: one registry, every model RGB [0, 1] in, dict of `logit` and/or `depth` out."""

from facepad.models.checkpoint import model_from_checkpoint
from facepad.models.registry import create_model, list_models
from facepad.models.score import ScoredModel, liveness_score, score_outputs

__all__ = [
    "ScoredModel",
    "create_model",
    "list_models",
    "liveness_score",
    "model_from_checkpoint",
    "score_outputs",
]

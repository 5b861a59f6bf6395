"""torch backend of the Predictor: a checkpoint's model wrapped in ScoredModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facepad.infer.backend import PredictorError
from facepad.models.checkpoint import checkpoint_preprocess, is_calibrated, model_from_checkpoint
from facepad.models.layers import fold_cdc
from facepad.models.score import ScoredModel


class TorchBackend:
    """Scores face crops with a facepad checkpoint, exactly as evaluation does (ScoredModel)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        if threads:
            torch.set_num_threads(int(threads))
        try:
            model, ckpt = model_from_checkpoint(self.path)
        except Exception as exc:
            raise PredictorError(
                f"{self.path} is not a loadable facepad checkpoint ({exc}); pass a `best.pt` or "
                "`last.pt` written by `facepad train`"
            ) from exc
        try:
            preprocess = checkpoint_preprocess(ckpt, str(self.path))
        except ValueError as exc:
            raise PredictorError(str(exc)) from exc
        self.threshold = float(ckpt["threshold"]) if is_calibrated(ckpt) else None
        self.crop_scale = preprocess["crop_scale"]
        self.input_size = preprocess["input_size"]
        self.crop_size = preprocess["crop_size"]
        self.model_name = str(ckpt["model"]["name"])
        self.model_kwargs = dict(ckpt["model"].get("kwargs") or {})
        self.scored = ScoredModel(fold_cdc(model)).eval()  # CDC as one plain conv, as exported

    @torch.inference_mode()
    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """images (N, 3, S, S) float32 in [0, 1] -> scores (N,), depth (N, 1, h, w) or None."""
        score, depth = self.scored(torch.from_numpy(images))
        return score.float().numpy(), None if depth is None else depth.float().numpy()

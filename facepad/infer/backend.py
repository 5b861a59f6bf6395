"""What the Predictor needs from a model backend, and the error every part of `infer` raises.

Its own module so that the backends (torch, onnxruntime) and the Predictor that picks one both
import it, and neither imports the other. No torch here: the onnx path must run without it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PredictorError(ValueError):
    """A model file or input that cannot be used; the message names it and says how to fix it."""


class Backend(Protocol):
    """What the Predictor needs from a model: scores for a batch of face crops, and its metadata."""

    threshold: float | None
    crop_scale: float
    crop_size: int  # the prepared store's crop size: crop at it, then resize to input_size
    input_size: int
    model_name: str

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """images (N, 3, S, S) float32 RGB in [0, 1] -> scores (N,), depth (N, 1, h, w) or None."""
        ...

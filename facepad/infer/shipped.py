"""The liveness model that ships inside facepad: one ONNX file in the installed package.

`facepad predict`, `facepad serve` and `Predictor()` use it when no model is given. It is found
by its path inside the package (never downloaded); docs/MODEL_CARD.md says what it was trained on
and where it fails.
"""

from __future__ import annotations

from pathlib import Path

from facepad.infer.backend import PredictorError

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "weights" / "facepad_lite0.onnx"


def shipped_model_path() -> Path:
    """The packaged model's file; PredictorError when this installation lacks it."""
    if not SHIPPED_MODEL.is_file():
        raise PredictorError(
            f"the shipped model {SHIPPED_MODEL} is not in this installation: reinstall facepad, "
            "or pass a model (--checkpoint CKPT or --onnx MODEL)"
        )
    return SHIPPED_MODEL

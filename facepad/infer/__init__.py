"""Inference: `Predictor` (image in, one liveness verdict per face out), its torch and
onnxruntime backends, video decisions and ONNX export. `Predictor()` uses the shipped model."""

from facepad.infer.predictor import FacePrediction, Predictor, PredictorError

__all__ = ["FacePrediction", "Predictor", "PredictorError"]

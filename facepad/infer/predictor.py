"""Predictor: image in, one liveness verdict per face out, with a torch or an onnxruntime backend.

This module imports no torch: the onnx path (`backend="onnx"`) must run where torch is not
installed. The torch backend is imported only when asked for.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facepad.data.faces import largest_face
from facepad.infer.backend import Backend, PredictorError

__all__ = ["Backend", "FacePrediction", "Predictor", "PredictorError"]

BATCH_SIZE = 32


@dataclass
class FacePrediction:
    """One face: where it is, how sure the detector is, how live it looks, and the decision."""

    box: tuple[int, int, int, int]  # (x, y, w, h) in image pixels
    detector_score: float
    score: float  # liveness in [0, 1], higher = more live
    is_live: bool  # score >= threshold
    threshold: float
    depth: np.ndarray | None = None  # (h, w) float32 in [0, 1], depth models only
    chosen: bool = True  # False: reported only because all faces were asked for (FaceChoice)

    @property
    def decision(self) -> str:
        return "live" if self.is_live else "spoof"

    def to_dict(self, with_depth: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "detector_score": round(float(self.detector_score), 4),
            "score": round(float(self.score), 6),
            "decision": self.decision,
            "threshold": float(self.threshold),
        }
        if with_depth and self.depth is not None:
            out["depth"] = np.round(self.depth, 3).tolist()
        return out


@dataclass(frozen=True)
class FaceChoice:
    """Which detected faces get a liveness decision: the one place `predict` and `serve` share.

    A liveness check is about one person, but the detector also fires on hands, on people in the
    background and on the attacker behind a held-up print. `FaceChoice.single()` (the service's
    default) decides on the largest face whose detector score and size pass the minimums.
    """

    largest_only: bool = False
    min_detector_score: float = 0.0
    min_face_fraction: float = 0.0  # the box's shorter side over the image's shorter side

    @classmethod
    def single(cls, min_detector_score: float = 0.75, min_face_fraction: float = 0.1) -> FaceChoice:
        """The largest face above the minimums (defaults measured by benchmarks/face_choice.py)."""
        return cls(True, min_detector_score, min_face_fraction)

    def choose(self, detections: list[Any], height: int, width: int) -> list[Any]:
        """The detections (with `.box` (x, y, w, h) and `.score`) to decide on, largest first."""
        min_side = self.min_face_fraction * min(height, width)
        kept = [
            d
            for d in detections
            if d.score >= self.min_detector_score and min(d.box[2], d.box[3]) >= min_side
        ]
        if self.largest_only:  # the same rule prepare crops by
            largest = largest_face(kept)
            return [] if largest is None else [largest]
        return sorted(kept, key=lambda d: -d.box[2] * d.box[3])


def _to_rgb(image: Any) -> np.ndarray:
    """Path, bytes, numpy RGB array or PIL image -> (H, W, 3) uint8 RGB."""
    from facepad.data.images import load_image

    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise PredictorError(
                f"numpy image has shape {image.shape}; pass (H, W, 3) RGB uint8 (or (H, W) gray)"
            )
        image = image[:, :, :3]
        if image.dtype != np.uint8:
            if np.issubdtype(image.dtype, np.floating) and image.max(initial=0) <= 1.0:
                image = image * 255.0
            image = np.clip(image, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image)
    if isinstance(image, (str, Path, bytes, bytearray)):
        return load_image(bytes(image) if isinstance(image, bytearray) else image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, io.IOBase):
        return load_image(image.read())
    raise PredictorError(
        f"cannot read an image from {type(image).__name__}; pass a path, bytes, an (H, W, 3) "
        "uint8 RGB array or a PIL image"
    )


def decision_threshold(backend: Backend, threshold: float | None) -> float:
    """`threshold` when given, else the model's calibrated one; an uncalibrated model without a
    given threshold is refused (its decisions would mean nothing)."""
    if threshold is not None:
        if not math.isfinite(threshold):
            raise PredictorError(f"threshold {threshold} is not a number; pass a score in [0, 1]")
        return float(threshold)
    if backend.threshold is None:
        where = getattr(backend, "path", backend.model_name)
        raise PredictorError(
            f"{where} is uncalibrated: its validation split held one class, so training chose no "
            "threshold. Pass --threshold T (live when score >= T; Python: threshold=T), or "
            "retrain with a validation split that holds both live and spoof samples"
        )
    return float(backend.threshold)


class Predictor:
    """Detects faces, crops them exactly as `facepad prepare` does, and scores every face.

    `Predictor()` uses the model that ships with facepad (onnxruntime); `Predictor.from_checkpoint`
    or `from_path` load another. Thread-safe: the face detector (mediapipe, not safe to share
    between threads) runs under a lock; the model runs outside it.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        threshold: float | None = None,
        largest_only: bool = False,
        detector: Any = None,
        face_choice: FaceChoice | None = None,
    ):
        if backend is None:  # the shipped model
            from facepad.infer.onnx_backend import OnnxBackend
            from facepad.infer.shipped import shipped_model_path

            backend = OnnxBackend(shipped_model_path())
        self.backend = backend
        self.face_choice = face_choice or FaceChoice(largest_only=largest_only)
        self.threshold = decision_threshold(backend, threshold)
        self.threshold_source = "given" if threshold is not None else "model"
        self.crop_scale = float(backend.crop_scale)
        self.input_size = int(backend.input_size)
        self.crop_size = int(backend.crop_size)
        self.model_name = backend.model_name
        self._detector = detector
        self._detector_lock = threading.Lock()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        backend: str = "torch",
        largest_only: bool = False,
        threads: int | None = None,
        threshold: float | None = None,
    ) -> Predictor:
        """Load a `.pt` checkpoint (backend "torch") or an exported `.onnx` (backend "onnx").

        `threshold` overrides the model's calibrated one; an uncalibrated model needs it.
        """
        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"model file {path} not found; pass a checkpoint (.pt) or .onnx")
        if backend == "onnx":
            from facepad.infer.onnx_backend import OnnxBackend

            model: Backend = OnnxBackend(path, threads=threads)
        elif backend == "torch":
            if path.suffix == ".onnx":
                raise PredictorError(f"{path} is an ONNX model; load it with backend='onnx'")
            from facepad.infer.torch_backend import TorchBackend

            model = TorchBackend(path, threads=threads)
        else:
            raise PredictorError(f"unknown backend {backend!r}; use 'torch' or 'onnx'")
        return cls(model, threshold=threshold, largest_only=largest_only)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        largest_only: bool = False,
        threads: int | None = None,
        threshold: float | None = None,
    ) -> Predictor:
        """Pick the backend from the file: `.onnx` -> onnxruntime, anything else -> torch."""
        backend = "onnx" if Path(path).suffix.lower() == ".onnx" else "torch"
        return cls.from_checkpoint(
            path, backend, largest_only=largest_only, threads=threads, threshold=threshold
        )

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from facepad.data.faces import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    @property
    def largest_only(self) -> bool:
        return self.face_choice.largest_only

    def detect_all(self, rgb: np.ndarray) -> tuple[list[Any], list[Any]]:
        """Face detections of one (H, W, 3) uint8 RGB image: (chosen by `face_choice`, largest
        first; the others)."""
        with self._detector_lock:
            detections = list(self.detector.detect(rgb))
        chosen = self.face_choice.choose(detections, rgb.shape[0], rgb.shape[1])
        return chosen, [d for d in detections if all(d is not c for c in chosen)]

    def detect(self, rgb: np.ndarray) -> list[Any]:
        """The detections `face_choice` keeps in one (H, W, 3) uint8 RGB image, largest first."""
        return self.detect_all(rgb)[0]

    def crop(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(S, S, 3) uint8 face crop made as in training: crop scale, store crop size, resize."""
        from facepad.data.crop import model_input_crop

        return model_input_crop(rgb, box, self.crop_scale, self.crop_size, self.input_size)

    def score_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """crops (N, S, S, 3) uint8 -> scores (N,), depth (N, h, w) or None; batched."""
        scores, depths = [], []
        for start in range(0, len(crops), BATCH_SIZE):
            batch = crops[start : start + BATCH_SIZE]
            images = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (B, 3, S, S)
            score, depth = self.backend.run(np.ascontiguousarray(images))
            scores.append(np.asarray(score, dtype=np.float32).reshape(-1))
            if depth is not None:
                depths.append(np.asarray(depth, dtype=np.float32)[:, 0])  # (B, h, w)
        if not scores:
            return np.zeros(0, np.float32), None
        return np.concatenate(scores), (np.concatenate(depths) if depths else None)

    def predict_rgb(
        self, rgbs: list[np.ndarray], all_faces: bool = False
    ) -> list[list[FacePrediction]]:
        """Faces of several RGB images: those `face_choice` keeps, then (if `all_faces`) the
        others with `chosen=False`. All crops go through the model in shared batches."""
        detections, chosen = [], []
        for rgb in rgbs:
            keep, others = self.detect_all(rgb)
            detections.append(keep + others if all_faces else keep)
            chosen.append(len(keep))
        crops = [
            self.crop(rgb, d.box) for rgb, dets in zip(rgbs, detections, strict=False) for d in dets
        ]
        if not crops:
            return [[] for _ in rgbs]
        scores, depths = self.score_crops(np.stack(crops))
        results, k = [], 0
        for dets, n_chosen in zip(detections, chosen, strict=True):
            faces = []
            for i, d in enumerate(dets):
                score = float(scores[k])
                faces.append(
                    FacePrediction(
                        box=tuple(int(round(v)) for v in d.box),
                        detector_score=float(d.score),
                        score=score,
                        is_live=score >= self.threshold,
                        threshold=self.threshold,
                        depth=None if depths is None else depths[k],
                        chosen=i < n_chosen,
                    )
                )
                k += 1
            results.append(faces)
        return results

    def predict(self, image: Any) -> list[FacePrediction] | list[list[FacePrediction]]:
        """One image -> its faces; a list of images -> a list of face lists (batched)."""
        if isinstance(image, (list, tuple)):
            return self.predict_rgb([_to_rgb(im) for im in image])
        return self.predict_rgb([_to_rgb(image)])[0]

    def describe(self) -> dict[str, Any]:
        """Model metadata, for logs and the serve page."""
        return {
            "model": self.model_name,
            "backend": type(self.backend).__name__,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "crop_scale": self.crop_scale,
            "crop_size": self.crop_size,
            "input_size": self.input_size,
        }

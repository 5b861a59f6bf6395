"""onnxruntime backend of the Predictor: runs an exported ScoredModel graph without torch.

Imports only numpy and onnxruntime (lazily); the threshold and crop settings come from the graph's
metadata_props, written by `facepad export`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facepad.infer.backend import PredictorError

# metadata_props keys written by facepad.infer.export and read here.
META_THRESHOLD = "facepad.threshold"
META_CROP_SCALE = "facepad.crop_scale"
META_INPUT_SIZE = "facepad.input_size"
META_CROP_SIZE = "facepad.crop_size"
META_MODEL_NAME = "facepad.model_name"
META_MODEL_KWARGS = "facepad.model_kwargs"


class OnnxBackend:
    """Scores face crops with an exported facepad graph: `images` in, `score` (and `depth`) out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PredictorError(
                f"{self.path} is not a loadable ONNX model ({exc}); re-create it with "
                "`facepad export CKPT --out model.onnx`"
            ) from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in (META_CROP_SCALE, META_INPUT_SIZE) if k not in meta]
        if missing:
            raise PredictorError(
                f"{self.path} lacks facepad metadata {missing}; export it with `facepad export`"
            )
        threshold = meta.get(META_THRESHOLD, "")
        self.threshold = float(threshold) if threshold not in ("", "None", "null") else None
        self.crop_scale = float(meta[META_CROP_SCALE])
        self.input_size = int(meta[META_INPUT_SIZE])
        self.crop_size = int(meta.get(META_CROP_SIZE, self.input_size))
        self.model_name = meta.get(META_MODEL_NAME, self.path.stem)
        self.model_kwargs = json.loads(meta.get(META_MODEL_KWARGS, "{}"))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        if "score" not in self.output_names:
            raise PredictorError(
                f"{self.path} has outputs {self.output_names}, not 'score'; export it with "
                "`facepad export`"
            )

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """images (N, 3, S, S) float32 in [0, 1] -> scores (N,), depth (N, 1, h, w) or None."""
        outputs = dict(
            zip(self.output_names, self.session.run(None, {self.input_name: images}), strict=False)
        )
        return outputs["score"].reshape(-1), outputs.get("depth")

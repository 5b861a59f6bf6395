"""`facepad export`: a checkpoint -> an ONNX graph of its ScoredModel, checked against torch.

The graph takes RGB crops in [0, 1] (normalisation is inside the model) with a dynamic batch and
returns `score` (B,) and, for depth models, `depth` (B, 1, h, w). The threshold and crop settings go
into metadata_props, so the onnx backend needs nothing but the .onnx file. CDC convs are folded
into plain convs first (the exporter cannot trace a kernel computed from weights); the check
compares the graph with the checkpoint's model as trained, unfolded.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facepad.infer.onnx_backend import (
    META_CROP_SCALE,
    META_CROP_SIZE,
    META_INPUT_SIZE,
    META_MODEL_KWARGS,
    META_MODEL_NAME,
    META_THRESHOLD,
)
from facepad.models.checkpoint import (
    checkpoint_preprocess,
    checkpoint_threshold,
    model_from_checkpoint,
)
from facepad.models.layers import fold_cdc
from facepad.models.score import ScoredModel


class _ExportGraph(nn.Module):
    """ScoredModel with a fixed output tuple (ONNX cannot return None)."""

    def __init__(self, scored: ScoredModel, has_depth: bool):
        super().__init__()
        self.scored = scored
        self.has_depth = has_depth

    def forward(self, images: torch.Tensor):
        score, depth = self.scored(images)
        return (score, depth) if self.has_depth else score


def sample_face_crops(crop_scale: float, crop_size: int, input_size: int) -> np.ndarray:
    """Real face crops (N, S, S, 3) uint8 from photos shipped in installed packages.

    skimage's astronaut and matplotlib's grace_hopper, detected and cropped as in serving; a
    random crop stands in where neither package or no face is available.
    """
    from facepad.data.crop import model_input_crop
    from facepad.data.faces import FaceDetector

    photos = []
    try:
        from skimage import data as skdata

        photos.append(skdata.astronaut())
    except ImportError:
        pass
    try:
        import matplotlib

        grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        from facepad.data.images import load_image

        photos.append(load_image(grace))
    except (ImportError, OSError, ValueError):
        pass
    detector = FaceDetector()
    crops = [
        model_input_crop(rgb, d.box, crop_scale, crop_size, input_size)
        for rgb in photos
        for d in detector.detect(rgb)
    ]
    if not crops:
        rng = np.random.default_rng(0)
        crops = [rng.integers(0, 256, (input_size, input_size, 3), dtype=np.uint8)]
    return np.stack(crops)


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    opset: int = 17,
    check: bool = True,
    threshold: float | None = None,
) -> dict:
    """Export `checkpoint` to `out`; returns a summary including the torch-vs-onnx max abs diff.

    The graph's threshold is `threshold` when given, else the checkpoint's calibrated one; an
    uncalibrated checkpoint without `threshold` is refused (UncalibratedError).
    """

    out = Path(out)
    model, ckpt = model_from_checkpoint(checkpoint)
    threshold = checkpoint_threshold(ckpt, str(checkpoint), threshold)
    model.eval()
    preprocess = checkpoint_preprocess(ckpt, str(checkpoint))
    crop_scale, crop_size = preprocess["crop_scale"], preprocess["crop_size"]
    input_size = preprocess["input_size"]
    scored = ScoredModel(model).eval()  # as trained: the reference the check compares with
    dummy = torch.rand(2, 3, input_size, input_size)  # (B, 3, S, S)
    with torch.inference_mode():
        _, depth = scored(dummy)
    has_depth = depth is not None
    folded = ScoredModel(fold_cdc(copy.deepcopy(model))).eval()
    output_names = ["score", "depth"] if has_depth else ["score"]
    _trace(_ExportGraph(folded, has_depth).eval(), dummy, out, output_names, opset)
    meta = {
        META_THRESHOLD: repr(threshold),
        META_CROP_SCALE: repr(crop_scale),
        META_INPUT_SIZE: str(input_size),
        META_CROP_SIZE: str(crop_size),
        META_MODEL_NAME: str(ckpt["model"]["name"]),
        META_MODEL_KWARGS: json.dumps(ckpt["model"].get("kwargs") or {}),
    }
    _set_metadata(out, meta)
    summary = {"out": str(out), "opset": opset, "outputs": output_names, **meta}
    if check:
        crops = sample_face_crops(crop_scale, crop_size, input_size)
        summary.update(compare_with_torch(scored, out, crops))
    return summary


def _trace(graph: nn.Module, dummy: torch.Tensor, out: Path, output_names: list[str],
           opset: int) -> None:  # fmt: skip
    """Trace `graph` into the ONNX file `out`, batch size left free."""
    dynamic_axes = {name: {0: "batch"} for name in ["images", *output_names]}
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Input-shape checks inside the models trace as constants: fine, the input size is fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            graph,
            (dummy,),
            str(out),
            input_names=["images"],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )


def _set_metadata(out: Path, meta: dict[str, str]) -> None:
    """Replace the file's metadata with `meta` (what predict and serve read back), checked."""
    import onnx

    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def compare_with_torch(scored: ScoredModel, onnx_path: Path, crops: np.ndarray) -> dict:
    """Max abs difference of score (and depth) between torch and onnxruntime on `crops`."""
    from facepad.infer.onnx_backend import OnnxBackend

    images = np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    with torch.inference_mode():
        t_score, t_depth = scored(torch.from_numpy(images))
    o_score, o_depth = OnnxBackend(onnx_path).run(images)
    result = {
        "check_crops": len(crops),
        "max_abs_diff_score": float(np.abs(t_score.numpy() - o_score).max()),
    }
    if t_depth is not None:
        result["max_abs_diff_depth"] = float(np.abs(t_depth.numpy() - o_depth).max())
    return result

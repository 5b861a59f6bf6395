"""`facepad export`: the ScoredModel ONNX graph, its metadata, dynamic batch, match with torch."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from _infer_helpers import CROP_SCALE, INPUT_SIZE, TINY_MODELS, save_tiny_checkpoint

from facepad.infer.export import export_onnx
from facepad.infer.onnx_backend import OnnxBackend
from facepad.models import ScoredModel, list_models, model_from_checkpoint
from facepad.models.layers import CDConv2d


def takes_theta(name: str) -> bool:
    """Whether the model's constructor has a CDC switch."""
    import inspect

    from facepad.models.registry import create_model

    return "theta" in inspect.signature(type(create_model(name, **TINY_MODELS[name]))).parameters


EXPORT_CASES = [
    (name, theta)
    for name in list_models()
    for theta in ((0.0, 0.7) if takes_theta(name) else (None,))
]


@pytest.mark.parametrize(("name", "theta"), EXPORT_CASES)
def test_every_model_exports_and_matches_torch_on_real_face_crops(name, theta, tmp_path):
    """Every registered model, with CDC on and off where it has CDC: the graph (CDC folded into
    plain convs) against the checkpoint's model as trained (CDC unfolded)."""
    kwargs = {} if theta is None else {"theta": theta}
    ckpt = save_tiny_checkpoint(tmp_path / f"{name}.pt", name, threshold=0.4321, extra=kwargs)
    model, _ = model_from_checkpoint(ckpt)
    uses_cdc = any(isinstance(m, CDConv2d) and m.theta > 0 for m in model.modules())
    assert uses_cdc == bool(theta)
    summary = export_onnx(ckpt, tmp_path / f"{name}.onnx")
    assert summary["check_crops"] >= 2  # astronaut and grace_hopper faces were found
    assert summary["max_abs_diff_score"] < 1e-5
    has_depth = "depth" in model(torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE))
    assert summary["outputs"] == (["score", "depth"] if has_depth else ["score"])
    if has_depth:
        assert summary["max_abs_diff_depth"] < 1e-5


@pytest.mark.parametrize("input_norm", ["image", "image_gray"])
def test_per_image_normalisation_exports(input_norm, tmp_path):
    extra = {"input_norm": input_norm}
    ckpt = save_tiny_checkpoint(tmp_path / "m.pt", "binary_cnn", threshold=0.5, extra=extra)
    summary = export_onnx(ckpt, tmp_path / "m.onnx")
    assert summary["check_crops"] >= 2 and summary["max_abs_diff_score"] < 1e-5


def test_metadata_and_dynamic_batch(tmp_path):
    import onnx

    ckpt = save_tiny_checkpoint(tmp_path / "d.pt", "depth_unet", threshold=0.4321)
    path = tmp_path / "d.onnx"
    export_onnx(ckpt, path, opset=17, check=False)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert float(meta["facepad.threshold"]) == pytest.approx(0.4321)
    assert float(meta["facepad.crop_scale"]) == CROP_SCALE
    assert int(meta["facepad.input_size"]) == INPUT_SIZE
    assert meta["facepad.model_name"] == "depth_unet"
    assert json.loads(meta["facepad.model_kwargs"])["map_stride"] == 4
    assert proto.opset_import[0].version == 17

    backend = OnnxBackend(path)
    assert backend.threshold == pytest.approx(0.4321) and backend.input_size == INPUT_SIZE
    model, _ = model_from_checkpoint(ckpt)
    scored = ScoredModel(model).eval()
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        images = rng.random((batch, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
        score, depth = backend.run(images)
        with torch.inference_mode():
            t_score, t_depth = scored(torch.from_numpy(images))
        assert score.shape == (batch,) and depth.shape == (batch, 1, 16, 16)
        np.testing.assert_allclose(score, t_score.numpy(), atol=1e-5)
        np.testing.assert_allclose(depth, t_depth.numpy(), atol=1e-5)


def test_an_uncalibrated_checkpoint_exports_only_with_a_threshold(tmp_path, capsys):
    from facepad.infer import commands
    from facepad.models.checkpoint import UncalibratedError

    ckpt = save_tiny_checkpoint(tmp_path / "b.pt", "binary_cnn", threshold=None)
    path = tmp_path / "b.onnx"
    with pytest.raises(UncalibratedError, match=r"b\.pt is uncalibrated.*--threshold T"):
        export_onnx(ckpt, path, check=False)
    assert not path.exists()
    export_onnx(ckpt, path, check=False, threshold=0.3)
    assert OnnxBackend(path).threshold == pytest.approx(0.3)

    parser = argparse.ArgumentParser(prog="facepad")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", str(ckpt), "--out", str(tmp_path / "c.onnx"), "--no-check"])
    with pytest.raises(UncalibratedError):  # facepad's main() prints it and exits 2
        args.func(args)
    args = parser.parse_args(
        ["export", str(ckpt), "--out", str(tmp_path / "c.onnx"), "--no-check", "--threshold", "0.7"]
    )
    assert args.func(args) == 0
    assert "facepad.threshold = 0.7" in capsys.readouterr().out
    assert OnnxBackend(tmp_path / "c.onnx").threshold == pytest.approx(0.7)


def test_a_given_threshold_replaces_the_calibrated_one_in_the_graph(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "d.pt", "binary_cnn", threshold=0.4321)
    export_onnx(ckpt, tmp_path / "d.onnx", check=False, threshold=0.9)
    assert OnnxBackend(tmp_path / "d.onnx").threshold == pytest.approx(0.9)


def test_export_cli_prints_the_difference(tmp_path, capsys):
    from facepad.infer import commands

    ckpt = save_tiny_checkpoint(tmp_path / "d.pt", "depth_unet")
    parser = argparse.ArgumentParser(prog="facepad")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", str(ckpt), "--out", str(tmp_path / "m.onnx")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "max abs diff score" in out and "facepad.threshold = 0.5" in out
    assert (tmp_path / "m.onnx").is_file()
    missing = parser.parse_args(["export", str(tmp_path / "no.pt"), "--out", "x.onnx"])
    assert missing.func(missing) == 2
    assert "no.pt" in capsys.readouterr().err


def test_onnx_without_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from facepad.infer.predictor import PredictorError

    node = helper.make_node("ReduceMean", ["images"], ["score"], axes=[1, 2, 3], keepdims=0)
    graph = helper.make_graph(
        [node],
        "plain",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "plain.onnx"))
    with pytest.raises(PredictorError, match="facepad export"):
        OnnxBackend(tmp_path / "plain.onnx")

"""Ensembles: outputs averaged, one calibrated checkpoint that evaluate, export and the Predictor
take like any other."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from _infer_helpers import INPUT_SIZE, astronaut, save_tiny_checkpoint
from _prepare_helpers import random_store_with_splits

from facepad import metrics
from facepad.config import load_config
from facepad.data.dataset import StoreDataset
from facepad.data.multistore import MultiStore, write_split_file
from facepad.evaluate.ensemble import build_ensemble, ensemble_of
from facepad.evaluate.evaluate import evaluate_checkpoint
from facepad.infer.export import export_onnx
from facepad.infer.predictor import Predictor
from facepad.models import ScoredModel, create_model, list_models, model_from_checkpoint
from facepad.train.loop import build_model


def members(tmp_path, name: str, n: int = 3) -> list:
    return [save_tiny_checkpoint(tmp_path / f"{name}{s}.pt", name, seed=s) for s in range(n)]


@pytest.mark.parametrize("name", ["binary_cnn", "depth_unet", "fusion"])
def test_outputs_are_the_members_mean(name, tmp_path):
    paths = members(tmp_path, name)
    ensemble, preprocess = ensemble_of(paths)
    assert preprocess["input_size"] == INPUT_SIZE
    x = torch.rand(4, 3, INPUT_SIZE, INPUT_SIZE)
    with torch.inference_mode():
        got = ensemble(x)
        each = [model_from_checkpoint(p)[0](x) for p in paths]
    assert set(got) == set(each[0])
    for key in got:
        expected = torch.stack([o[key] for o in each]).mean(0)
        torch.testing.assert_close(got[key], expected)
        assert not torch.allclose(got[key], each[0][key])  # the members really differ


def test_members_must_be_one_kind_and_crop_alike(tmp_path):
    with pytest.raises(ValueError, match="two or more members"):
        ensemble_of(members(tmp_path, "depth_unet", 1))
    mixed = [save_tiny_checkpoint(tmp_path / "a.pt", "depth_unet"),
             save_tiny_checkpoint(tmp_path / "b.pt", "fusion")]  # fmt: skip
    with pytest.raises(ValueError, match="one kind"):
        ensemble_of(mixed)
    with pytest.raises(ValueError, match="binary_cnn and depth_unet"):
        ensemble_of([save_tiny_checkpoint(tmp_path / "d.pt", "binary_cnn"), mixed[1]])
    other_crop = save_tiny_checkpoint(tmp_path / "c.pt", "depth_unet", crop_size=96)
    with pytest.raises(ValueError, match="c.pt crops faces"):
        ensemble_of([mixed[0], other_crop])


def test_late_fusion_scores_the_two_arms_as_fusion_does(tmp_path):
    """binary_cnn and depth_unet members: mean logit of the binaries, mean map of the depths,
    scored 0.5 sigmoid + 0.5 mean depth; calibrated and exported like any ensemble."""
    binaries, depths = members(tmp_path, "binary_cnn", 2), members(tmp_path, "depth_unet", 1)
    store, splits = random_store_with_splits(tmp_path, 16)
    view = MultiStore([{"path": str(store), "name": "data", "splits": str(splits)}])
    build_ensemble([*binaries, *depths], view, tmp_path / "late.pt")
    model, _ = model_from_checkpoint(tmp_path / "late.pt")
    x = torch.rand(4, 3, INPUT_SIZE, INPUT_SIZE)
    with torch.inference_mode():
        got = model(x)
        logit = torch.stack([model_from_checkpoint(p)[0](x)["logit"] for p in binaries]).mean(0)
        depth = model_from_checkpoint(depths[0])[0](x)["depth"]
        score = ScoredModel(model)(x)[0]
    torch.testing.assert_close(got["logit"], logit)
    torch.testing.assert_close(got["depth"], depth)
    expected = 0.5 * torch.sigmoid(logit) + 0.5 * depth.flatten(1).mean(1)
    torch.testing.assert_close(score, expected)
    summary = export_onnx(tmp_path / "late.pt", tmp_path / "late.onnx")
    assert summary["max_abs_diff_score"] < 1e-5 and summary["max_abs_diff_depth"] < 1e-5


def test_ensemble_is_not_a_model_to_train(tmp_path):
    assert "ensemble" not in list_models()
    with pytest.raises(ValueError, match="two or more members"):
        create_model("ensemble", members=[])
    config = load_config(None, ["model.name=ensemble", f"out_dir={tmp_path}"])
    with pytest.raises(ValueError, match="not a model to train.*facepad ensemble"):
        build_model(config)


def test_built_checkpoint_is_calibrated_on_val_and_evaluates(tmp_path):
    store, splits = random_store_with_splits(tmp_path, 16)
    view = MultiStore([{"path": str(store), "name": "data", "splits": str(splits)}])
    paths = members(tmp_path, "fusion")
    ckpt = build_ensemble(paths, view, tmp_path / "ens.pt")
    model, loaded = model_from_checkpoint(tmp_path / "ens.pt")
    assert loaded["model"]["name"] == "ensemble" and loaded["threshold"] == ckpt["threshold"]
    # The threshold is the training loop's rule on the ensemble's own val scores.
    val = StoreDataset(view, "val", INPUT_SIZE, 16)
    with torch.inference_mode():
        scores = ScoredModel(model)(torch.stack([val[k]["image"] for k in range(len(val))]))[0]
    scores = scores.numpy()
    live = np.array([bool(val[k]["live"] > 0.5) for k in range(len(val))])
    expected = metrics.eer_threshold(scores, live)
    assert loaded["threshold"] == pytest.approx(expected, abs=1e-6)
    assert loaded["val"]["n"] == 8 and 0.0 <= loaded["val"]["auc"] <= 1.0
    result = evaluate_checkpoint(tmp_path / "ens.pt", view, "test", out_dir=tmp_path / "ev",
                                 figures=False, n_boot=10)  # fmt: skip
    assert len(result.rows) == 8 and result.threshold == loaded["threshold"]


def test_a_one_class_split_is_refused(tmp_path):
    store, _ = random_store_with_splits(tmp_path, 16)
    one_class = write_split_file(tmp_path / "one.csv", {i: "val" if i % 2 == 0 else "test"
                                                        for i in range(16)})  # fmt: skip
    view = MultiStore([{"path": str(store), "name": "data", "splits": str(one_class)}])
    with pytest.raises(ValueError, match="holds one class"):
        build_ensemble(members(tmp_path, "depth_unet", 2), view, tmp_path / "ens.pt")
    assert not (tmp_path / "ens.pt").exists()


def test_cli_then_export_and_predict(tmp_path):
    store, splits = random_store_with_splits(tmp_path, 16)
    paths = [str(p) for p in members(tmp_path, "depth_unet", 2)]
    out = tmp_path / "ensembles" / "ens.pt"  # a folder that does not exist yet
    run = subprocess.run(
        [sys.executable, "-m", "facepad", "ensemble", *paths, "--store", f"d={store}",
         "--splits", str(splits), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "ensemble of 2 depth_unet models" in run.stdout and out.is_file()
    summary = export_onnx(out, tmp_path / "ens.onnx")
    assert summary["max_abs_diff_score"] < 1e-5 and summary["max_abs_diff_depth"] < 1e-5
    torch_result = Predictor.from_checkpoint(out, backend="torch").predict(astronaut())
    onnx = Predictor.from_checkpoint(tmp_path / "ens.onnx", backend="onnx")
    onnx_result = onnx.predict(astronaut())
    assert torch_result and onnx_result
    assert torch_result[0].score == pytest.approx(onnx_result[0].score, abs=1e-4)

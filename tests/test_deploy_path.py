"""The path a user walks to deploy, on real faces: `facepad prepare` part of nuaa-dev, `facepad
train` a tiny model from the packaged recipe, `facepad export` its best.pt, and `Predictor` with
the torch and the onnxruntime backend on held-out nuaa-dev frames: same faces, same decisions,
the same scores to 1e-4. Skips where nuaa-dev is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from facepad.cli import main
from facepad.infer.predictor import Predictor
from facepad.models import list_models

TRAIN_SUBJECTS = ("0001", "0002", "0003")  # 0003 is carved off as validation
PREDICT_SUBJECTS = ("0007", "0008")  # never trained on
PER_CLASS = 6  # frames per subject and label
TINY = [
    "train.epochs=2",
    "train.threads=1",
    "train.device=cpu",
    "data.input_size=64",
    "data.depth_size=16",
    "data.batch_size=8",
    "model.kwargs.widths=[8,16,16]",
]


def frames(nuaa_dev: Path, subjects, per_class: int) -> list[dict]:
    """Every k-th manifest row of each subject and label (consecutive frames look alike)."""
    with open(nuaa_dev / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    picked = []
    for subject in subjects:
        for label in ("live", "spoof"):
            mine = [r for r in rows if r["subject"] == subject and r["label"] == label]
            step = max(1, len(mine) // per_class)
            picked += mine[::step][:per_class]
    return picked


@pytest.fixture(scope="module")
def store(nuaa_dev, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nuaa")
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "attack_type", "subject", "split"])
        for r in frames(nuaa_dev, TRAIN_SUBJECTS, PER_CLASS):
            split = "val" if r["subject"] == TRAIN_SUBJECTS[-1] else "train"
            path = (nuaa_dev / r["path"]).absolute()
            writer.writerow([path, r["label"], r["attack_type"], r["subject"], split])
    out = root / "store"
    argv = ["prepare", "--manifest", str(manifest), "--out", str(out), "--crop-size", "64"]
    assert main([*argv, "--depth-size", "16", "--workers", "1", "--no-progress"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", list_models())
def test_train_export_and_both_backends_agree_on_real_faces(model, store, nuaa_dev, tmp_path):
    runs = tmp_path / "runs"
    argv = ["train", "nuaa_cpu", f"data.store={store}", f"model.name={model}", f"out_dir={runs}"]
    assert main([*argv, *TINY]) == 0
    best = runs / model / "best.pt"
    onnx_path = tmp_path / f"{model}.onnx"
    assert main(["export", str(best), "--out", str(onnx_path)]) == 0

    images = [str(nuaa_dev / r["path"]) for r in frames(nuaa_dev, PREDICT_SUBJECTS, 3)]
    with_torch = Predictor.from_checkpoint(best, "torch").predict(images)
    with_onnx = Predictor.from_checkpoint(onnx_path, "onnx").predict(images)
    torch_faces = [f for faces in with_torch for f in faces]
    onnx_faces = [f for faces in with_onnx for f in faces]
    assert len(torch_faces) >= len(images) - 2, "the detector should find nearly every face"
    assert [len(f) for f in with_torch] == [len(f) for f in with_onnx]
    assert [f.box for f in torch_faces] == [f.box for f in onnx_faces]
    assert [f.decision for f in torch_faces] == [f.decision for f in onnx_faces]
    t_scores = np.array([f.score for f in torch_faces])
    o_scores = np.array([f.score for f in onnx_faces])
    assert np.abs(t_scores - o_scores).max() < 1e-4
    assert torch_faces[0].threshold == onnx_faces[0].threshold  # the checkpoint's, carried over
    if model != "binary_cnn":  # depth maps agree too
        t_depth = np.stack([f.depth for f in torch_faces])
        o_depth = np.stack([f.depth for f in onnx_faces])
        assert np.abs(t_depth - o_depth).max() < 1e-4

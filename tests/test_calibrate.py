"""`facepad calibrate`: a threshold from live captures alone, written into a copy of the model
(.onnx metadata or the checkpoint), with a record of how it was set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _infer_helpers import save_tiny_checkpoint
from _prepare_helpers import face_photos, write_jpeg

from facepad.cli import main
from facepad.infer.calibrate import CALIBRATION_KEY
from facepad.infer.predictor import Predictor


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory):
    """Ten 'captures': two real face photos, shifted and brightened a little."""
    folder = tmp_path_factory.mktemp("live")
    for name, rgb in face_photos().items():
        for k in range(5):
            frame = np.clip(np.roll(rgb, 9 * k, axis=1) * (0.8 + 0.08 * k), 0, 255)
            write_jpeg(folder / f"{name}_{k}.jpg", frame.astype(np.uint8))
    (folder / "notes.txt").write_text("not an image: ignored")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from facepad.infer.export import export_onnx

    folder = tmp_path_factory.mktemp("models")
    ckpt = save_tiny_checkpoint(folder / "m.pt", "depth_unet", threshold=0.999)
    export_onnx(ckpt, folder / "m.onnx")
    return ckpt, folder / "m.onnx"


def scores_of(model, folder) -> np.ndarray:
    predictor = Predictor.from_path(model, largest_only=True)
    faces = [predictor.predict(p) for p in sorted(folder.glob("*.jpg"))]
    return np.array([f[0].score for f in faces if f])


@pytest.mark.parametrize("kind", [".pt", ".onnx"])
def test_calibrated_copy_rejects_at_most_the_target_of_the_live_captures(
    models, live_dir, tmp_path, kind, capsys
):
    model = models[0] if kind == ".pt" else models[1]
    out = tmp_path / f"calibrated{kind}"
    code = main(["calibrate", str(model), "--live", str(live_dir), "--target-bpcer", "0.2",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "10 live faces" in printed and "rejects 100.0 %" in printed  # the old 0.999
    calibrated = Predictor.from_path(out, largest_only=True)
    scores = scores_of(out, live_dir)
    assert len(scores) == 10
    assert np.mean(scores < calibrated.threshold) == pytest.approx(0.2)  # 2 of 10, as asked
    assert calibrated.threshold != pytest.approx(0.999)
    np.testing.assert_allclose(scores, scores_of(model, live_dir), atol=1e-6)  # same model


def test_the_record_of_a_calibration_travels_with_the_model(models, live_dir, tmp_path):
    import onnx
    import torch

    main(["calibrate", str(models[1]), "--live", str(live_dir), "--out", str(tmp_path / "c.onnx")])
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "c.onnx")).metadata_props}
    record = json.loads(meta[CALIBRATION_KEY])
    assert record["faces"] == 10 and record["target_bpcer"] == 0.02
    assert float(meta["facepad.threshold"]) == pytest.approx(record["threshold"])
    assert record["bpcer"] == 0.0  # ten faces cannot show 2 %: none is rejected
    main(["calibrate", str(models[0]), "--live", str(live_dir), "--out", str(tmp_path / "c.pt")])
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    assert ckpt["calibrated"] and ckpt["calibration"]["faces"] == 10


def test_bad_inputs_name_the_fix(models, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", str(models[1]), "--live", str(empty), "--out", "x.onnx"]) == 2
    assert "no face found" in capsys.readouterr().err
    assert main(["calibrate", str(models[1]), "--live", str(tmp_path / "nope"), "--out",
                 "x.onnx"]) == 2  # fmt: skip
    assert "not a folder" in capsys.readouterr().err
    assert main(["calibrate", str(models[1]), "--live", str(empty), "--out", "x.pt"]) == 2
    assert "must have the model's own suffix" in capsys.readouterr().err


def test_calibrate_the_shipped_model_as_the_readme_says(live_dir, tmp_path, monkeypatch):
    """`facepad calibrate --live my_camera/ --target-bpcer 0.02 --out my_model.onnx`: no model
    given, so the shipped one, calibrated on a folder of live captures."""
    from facepad.infer.shipped import shipped_model_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_camera").symlink_to(live_dir, target_is_directory=True)
    command = "calibrate --live my_camera/ --target-bpcer 0.02 --out my_model.onnx"
    assert main(command.split()) == 0
    calibrated = Predictor.from_path(tmp_path / "my_model.onnx")
    shipped = Predictor.from_path(shipped_model_path())
    assert calibrated.model_name == shipped.model_name
    assert calibrated.threshold <= min(scores_of(shipped_model_path(), live_dir))  # none rejected

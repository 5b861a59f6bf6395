"""The model that ships inside facepad: present, small, loaded when no model is given, and
deciding real faces of people it was never trained or tuned on (Replay-Attack's devel clients,
the shipped model's test set; docs/MODEL_CARD.md)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from _infer_helpers import astronaut
from conftest import DEV_DATA

from facepad.cli import main
from facepad.infer import Predictor
from facepad.infer.onnx_backend import OnnxBackend
from facepad.infer.shipped import SHIPPED_MODEL, shipped_model_path

REPLAY = DEV_DATA / "replay-attack-dev"
MAX_MB = 20


def test_the_shipped_model_is_in_the_package_and_small():
    path = shipped_model_path()
    assert path == SHIPPED_MODEL and path.is_file()
    assert path.stat().st_size <= MAX_MB * 1024 * 1024
    backend = OnnxBackend(path)
    assert backend.threshold is not None and 0.0 < backend.threshold < 1.0  # calibrated
    assert backend.model_kwargs.get("encoder") == "efficientnet_lite0"


def test_a_predictor_without_a_model_uses_it():
    predictor = Predictor()
    assert predictor.backend.path == SHIPPED_MODEL
    faces = predictor.predict(astronaut())
    assert len(faces) == 1 and faces[0].decision in ("live", "spoof")
    assert 0.0 <= faces[0].score <= 1.0


def test_predict_without_a_model_uses_it(tmp_path, capsys):
    import cv2

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(photo), "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr()
    assert "photo.jpg" in out.out and ("live" in out.out or "spoof" in out.out)
    assert "1 faces" in out.err


def replay_devel_frames(per_label: int) -> list[tuple[str, bool]]:
    """Evenly chosen frames of Replay-Attack's devel clients: (path, is_live)."""
    if not (REPLAY / "manifest.csv").is_file():
        pytest.skip(f"replay-attack-dev not found at {REPLAY} (set FACEPAD_DATA)")
    with open(REPLAY / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]  # the devel clients
    chosen = []
    for label in ("live", "spoof"):
        of_label = [r for r in rows if r["label"] == label]
        step = len(of_label) // per_label
        chosen += [(str(REPLAY / r["path"]), label == "live") for r in of_label[::step][:per_label]]
    return chosen


def test_it_decides_real_faces_of_people_it_never_saw():
    """40 frames of 15 clients the model never trained or chose anything on: ACER at most 10 %
    at its own threshold (its devel HTER is in docs/MODEL_CARD.md)."""
    frames = replay_devel_frames(20)
    predictor = Predictor(largest_only=True)
    decided = [(predictor.predict(path), live) for path, live in frames]
    found = [(faces[0].is_live, live) for faces, live in decided if faces]
    assert len(found) >= 38
    accepted, live = np.array(found).T
    apcer, bpcer = np.mean(accepted[~live]), np.mean(~accepted[live])
    assert (apcer + bpcer) / 2 <= 0.10, f"APCER {apcer:.2f}, BPCER {bpcer:.2f}"


def write_clip(path, frames: int = 6):
    """A short video of a real face photo, moving a little each frame."""
    import cv2

    rgb = astronaut()[:480, :496]  # even size for the codec
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (496, 480))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.roll(rgb, 2 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_predict_a_video_and_a_webcam_without_a_model(tmp_path, monkeypatch, capsys):
    """`facepad predict clip.mp4` and `facepad predict 0` as the README gives them; a recorded
    clip stands in for webcam 0 (no camera here)."""
    import facepad.infer.video as video

    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "clip.mp4")
    assert main(["predict", "clip.mp4"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("clip.mp4") == 6 and "window" in printed  # sliding-window decisions
    real_open = video.open_capture

    def webcam_zero_is_the_clip(source):
        return real_open("clip.mp4" if source == 0 else source)

    monkeypatch.setattr(video, "open_capture", webcam_zero_is_the_clip)
    assert main(["predict", "0"]) == 0
    assert capsys.readouterr().out.count("webcam:0") == 6

"""Predictor (torch and onnx backends), sliding-window tracking and `facepad predict`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from _infer_helpers import astronaut, grace_hopper_path, save_tiny_checkpoint

from facepad.data.faces import Detection
from facepad.infer.predictor import FaceChoice, FacePrediction, Predictor, PredictorError
from facepad.infer.video import FaceTracker, annotate, box_iou


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny untrained checkpoints and their ONNX exports."""
    from facepad.infer.export import export_onnx

    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("binary_cnn", "depth_unet"):
        ckpt = save_tiny_checkpoint(root / f"{name}.pt", name)
        out[name] = ckpt
        out[f"{name}.onnx"] = Path(export_onnx(ckpt, root / f"{name}.onnx", check=False)["out"])
    return out


@pytest.fixture(scope="module")
def depth_predictor(models) -> Predictor:
    return Predictor.from_checkpoint(models["depth_unet"])


def test_finds_and_scores_the_face_in_real_photos(depth_predictor):
    faces = depth_predictor.predict(astronaut())
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    # The astronaut's face is near (180, 80)-(275, 180) in the 512x512 photo.
    assert 140 < x < 230 and 40 < y < 130 and 60 < w < 150 and 60 < h < 150
    assert 0.0 <= faces[0].score <= 1.0
    assert faces[0].detector_score > 0.5
    assert faces[0].is_live == (faces[0].score >= depth_predictor.threshold)
    assert faces[0].depth.shape == (16, 16)  # 64 input / map_stride 4
    grace = depth_predictor.predict(grace_hopper_path())
    assert len(grace) == 1 and grace[0].box[2] > 100


def test_every_input_type_gives_the_same_result(depth_predictor, tmp_path):
    from PIL import Image

    rgb = astronaut()
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    data = path.read_bytes()
    results = [
        depth_predictor.predict(x)
        for x in (rgb, path, str(path), data, Image.fromarray(rgb), io.BytesIO(data))
    ]
    scores = {round(r[0].score, 6) for r in results}
    boxes = {r[0].box for r in results}
    assert len(scores) == 1 and len(boxes) == 1


def test_a_list_is_batched_and_matches_single_images(depth_predictor):
    gray = np.full((240, 320, 3), 128, np.uint8)  # no face
    batch = depth_predictor.predict([astronaut(), gray, grace_hopper_path()])
    assert [len(b) for b in batch] == [1, 0, 1]
    single = depth_predictor.predict(grace_hopper_path())
    assert batch[2][0].score == pytest.approx(single[0].score, abs=1e-6)
    np.testing.assert_allclose(batch[2][0].depth, single[0].depth, atol=1e-6)


def test_largest_only_keeps_the_biggest_face(models):
    import cv2

    face = astronaut()[20:280, 100:360]  # (260, 260, 3) around the face
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[:320, :320] = cv2.resize(face, (320, 320))
    canvas[100:380, 360:] = cv2.resize(face, (280, 280))  # the same face, a little smaller
    every = Predictor.from_checkpoint(models["binary_cnn"]).predict(canvas)
    largest = Predictor.from_checkpoint(models["binary_cnn"], largest_only=True).predict(canvas)
    assert len(every) == 2
    assert len(largest) == 1
    assert largest[0].box[2] == max(f.box[2] for f in every)


def test_face_choice_decides_on_the_largest_confident_face():
    subject = Detection((200, 150, 180, 180), 0.95)
    hand = Detection((400, 200, 220, 220), 0.68)  # bigger than the face, less sure
    background = Detection((20, 30, 80, 80), 0.86)  # a real face, smaller
    tiny = Detection((500, 20, 30, 30), 0.97)  # under a tenth of the image's shorter side
    found = [tiny, subject, background, hand]
    assert FaceChoice().choose(found, 480, 640) == [hand, subject, background, tiny]
    assert FaceChoice(largest_only=True).choose(found, 480, 640) == [hand]
    assert FaceChoice.single().choose(found, 480, 640) == [subject]
    assert FaceChoice(False, 0.75, 0.1).choose(found, 480, 640) == [subject, background]
    assert FaceChoice.single(min_detector_score=0.99).choose(found, 480, 640) == []


def test_all_faces_reports_the_others_after_the_chosen_one(models):
    import cv2

    face = astronaut()[20:280, 100:360]
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[:320, :320] = cv2.resize(face, (320, 320))
    canvas[100:380, 360:] = cv2.resize(face, (280, 280))
    predictor = Predictor.from_checkpoint(models["binary_cnn"])
    predictor.face_choice = FaceChoice.single()
    (chosen,) = predictor.predict_rgb([canvas])[0]
    everything = predictor.predict_rgb([canvas], all_faces=True)[0]
    assert [f.chosen for f in everything] == [True, False]
    assert everything[0].box == chosen.box and everything[0].score == chosen.score
    assert everything[1].box[2] < chosen.box[2]


def test_threshold_comes_from_the_checkpoint(tmp_path):
    low = save_tiny_checkpoint(tmp_path / "low.pt", "binary_cnn", threshold=0.0)
    high = save_tiny_checkpoint(tmp_path / "high.pt", "binary_cnn", threshold=1.01)
    assert Predictor.from_checkpoint(low).predict(astronaut())[0].decision == "live"
    assert Predictor.from_checkpoint(high).predict(astronaut())[0].decision == "spoof"
    assert Predictor.from_checkpoint(high).threshold == pytest.approx(1.01)


def test_an_uncalibrated_model_is_refused_unless_given_a_threshold(tmp_path):
    from facepad.infer.export import export_onnx

    uncalibrated = save_tiny_checkpoint(tmp_path / "uncal.pt", "binary_cnn", threshold=None)
    with pytest.raises(PredictorError, match=r"uncal\.pt is uncalibrated.*--threshold T"):
        Predictor.from_checkpoint(uncalibrated)
    given = Predictor.from_checkpoint(uncalibrated, threshold=1.01)
    assert given.threshold == 1.01 and given.describe()["threshold_source"] == "given"
    assert given.predict(astronaut())[0].decision == "spoof"
    # An ONNX graph without a threshold in its metadata (from an older export) alike.
    onnx_path = Path(
        export_onnx(uncalibrated, tmp_path / "u.onnx", check=False, threshold=0.3)["out"]
    )
    _clear_onnx_threshold(onnx_path)
    with pytest.raises(PredictorError, match=r"u\.onnx is uncalibrated.*--threshold T"):
        Predictor.from_checkpoint(onnx_path, "onnx")
    assert Predictor.from_checkpoint(onnx_path, "onnx", threshold=0.0).threshold == 0.0


def _clear_onnx_threshold(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "facepad.threshold":
            prop.value = ""
    onnx.save(model, str(path))


def test_a_given_threshold_overrides_the_calibrated_one(models):
    predictor = Predictor.from_checkpoint(models["binary_cnn"], threshold=-1.0)
    assert predictor.threshold == -1.0 and predictor.predict(astronaut())[0].decision == "live"
    assert Predictor.from_checkpoint(models["binary_cnn"]).threshold == 0.5
    with pytest.raises(PredictorError, match="not a number"):
        Predictor.from_checkpoint(models["binary_cnn"], threshold=float("nan"))


def test_torch_and_onnx_agree(models):
    images = [astronaut(), grace_hopper_path()]
    for name in ("binary_cnn", "depth_unet"):
        t = Predictor.from_checkpoint(models[name], "torch").predict(images)
        o = Predictor.from_checkpoint(models[f"{name}.onnx"], "onnx").predict(images)
        for tf, of in zip(t, o, strict=True):
            assert tf[0].box == of[0].box
            assert tf[0].score == pytest.approx(of[0].score, abs=1e-5)
            assert tf[0].decision == of[0].decision
            if name == "depth_unet":
                np.testing.assert_allclose(tf[0].depth, of[0].depth, atol=1e-5)
            else:
                assert tf[0].depth is None and of[0].depth is None


def test_bad_model_files_get_clear_errors(tmp_path, models):
    with pytest.raises(PredictorError, match="not found"):
        Predictor.from_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PredictorError, match="junk.pt"):
        Predictor.from_checkpoint(junk)
    with pytest.raises(PredictorError, match="not a loadable ONNX"):
        Predictor.from_checkpoint(junk, "onnx")
    with pytest.raises(PredictorError, match="backend='onnx'"):
        Predictor.from_checkpoint(models["depth_unet.onnx"], "torch")
    with pytest.raises(PredictorError, match="unknown backend"):
        Predictor.from_checkpoint(models["depth_unet"], "tensorflow")


def test_bad_images_get_clear_errors(depth_predictor, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match="bad.jpg"):
        depth_predictor.predict(bad)
    with pytest.raises(PredictorError, match="shape"):
        depth_predictor.predict(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(PredictorError, match="cannot read an image"):
        depth_predictor.predict(12345)


def _face(score: float, box=(100, 100, 80, 80)) -> FacePrediction:
    return FacePrediction(box, 0.9, score, score >= 0.5, 0.5)


def test_window_removes_flicker_around_the_threshold():
    scores = [0.56, 0.47, 0.58, 0.46, 0.57, 0.48, 0.59, 0.45]  # a live face flickering
    per_frame = [s >= 0.5 for s in scores]
    assert len(set(per_frame)) == 2
    tracker = FaceTracker(0.5, window=4, rule="mean")
    window = [tracker.update([_face(s)])[0] for s in scores]
    assert {d.track_id for d in window} == {0}
    assert all(d.window_live for d in window)
    majority = FaceTracker(0.5, window=5, rule="majority")
    votes = [majority.update([_face(s)])[0].window_live for s in scores]
    assert votes[6] is True  # frames 2-6: 3 of 5 live
    assert votes[7] is False  # frames 3-7: 2 of 5 live
    assert votes[1] is False  # 1 of 2: a tie is not a majority


def test_tracker_follows_two_faces_and_starts_new_tracks():
    tracker = FaceTracker(0.5, window=3)
    left, right = (10, 10, 50, 50), (300, 10, 50, 50)
    first = tracker.update([_face(0.9, left), _face(0.1, right)])
    # Faces come back in the other order and slightly moved: they keep their tracks.
    second = tracker.update([_face(0.2, (305, 12, 50, 50)), _face(0.8, (12, 11, 50, 50))])
    assert [d.track_id for d in first] == [0, 1]
    assert [d.track_id for d in second] == [1, 0]
    assert second[0].window_score == pytest.approx(0.15)
    far = tracker.update([_face(0.9, (600, 300, 50, 50))])
    assert far[0].track_id == 2
    assert box_iou(left, left) == 1.0 and box_iou(left, right) == 0.0
    with pytest.raises(ValueError, match="rule"):
        FaceTracker(0.5, rule="median")


def test_annotate_draws_without_changing_the_input():
    rgb = np.zeros((200, 300, 3), np.uint8)
    face = FacePrediction((50, 60, 80, 80), 0.9, 0.7, True, 0.5, np.ones((8, 8), np.float32))
    out = annotate(rgb, [face])
    assert rgb.sum() == 0
    assert out.shape == rgb.shape and out[60, 90].tolist() == [0, 200, 0]  # green top edge
    assert out[60:100, 132:172].mean() > 0  # the depth inset beside the box


def _run_cli(*argv) -> int:
    """`facepad predict|export ...` through this part's own parser (independent of other parts)."""
    import argparse

    from facepad.infer import commands

    parser = argparse.ArgumentParser(prog="facepad")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_predict_cli_on_a_folder_writes_json_csv_and_annotations(models, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut()).save(folder / "astronaut.png")
    (folder / "sub" / "grace.jpg").write_bytes(grace_hopper_path().read_bytes())
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(folder / "empty.png")
    out = tmp_path / "out"
    rc = _run_cli(
        "predict", folder, tmp_path / "nope.jpg", "--checkpoint", models["depth_unet"],
        "--json", out / "r.json", "--csv", out / "r.csv", "--annotate", out / "ann",
    )  # fmt: skip
    assert rc == 0
    rows = json.loads((out / "r.json").read_text())["results"]
    by_name = {Path(r["source"]).name: r for r in rows}
    assert by_name["astronaut.png"]["decision"] in ("live", "spoof")
    assert by_name["grace.jpg"]["error"] == ""
    assert "unreadable image" in by_name["broken.jpg"]["error"]
    assert by_name["empty.png"]["error"] == "no face found"
    assert "not found" in by_name["nope.jpg"]["error"]
    with (out / "r.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(rows) == 5
    assert (out / "ann" / "photos" / "astronaut.jpg").is_file()
    assert (out / "ann" / "photos" / "sub" / "grace.jpg").is_file()
    table = capsys.readouterr().out
    assert "astronaut.png" in table and "unreadable image" in table


def _write_video(path: Path, frames: int = 6) -> Path:
    import cv2

    rgb = astronaut()[:480, :496]  # even size for the codec
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (496, 480))
    for i in range(frames):
        shifted = np.roll(rgb, 2 * i, axis=1)  # the face moves a little each frame
        writer.write(cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_predict_cli_on_a_video_tracks_one_face_with_window_decisions(models, tmp_path):
    video = _write_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    rc = _run_cli(
        "predict", video, "--onnx", models["depth_unet.onnx"], "--window", "3",
        "--rule", "majority", "--csv", out / "v.csv", "--annotate", out / "ann", "--quiet",
    )  # fmt: skip
    assert rc == 0
    with (out / "v.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in rows] == list(range(6))
    assert {r["track"] for r in rows} == {"0"}
    assert all(r["window_decision"] in ("live", "spoof") for r in rows)
    assert (out / "ann" / "clip.annotated.mp4").stat().st_size > 1000


def test_predict_cli_records_an_unreadable_video_and_goes_on(models, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    rc = _run_cli(
        "predict", broken, grace_hopper_path(), "--onnx", models["depth_unet.onnx"],
        "--json", tmp_path / "r.json", "--quiet",
    )  # fmt: skip
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert rc == 0
    assert "cannot open video file" in next(r for r in rows if "broken" in r["source"])["error"]
    assert next(r for r in rows if "grace" in r["source"])["decision"] in ("live", "spoof")


def test_a_webcam_index_that_cannot_open_is_recorded(models, tmp_path):
    out = tmp_path / "w.json"
    rc = _run_cli("predict", "7", "--onnx", models["depth_unet.onnx"], "--json", out)
    rows = json.loads(out.read_text())["results"]
    assert rc == 1  # nothing could be read
    assert rows[0]["source"] == "7" and "cannot open webcam index 7" in rows[0]["error"]


def test_max_frames_stops_a_video_early(models, tmp_path):
    video = _write_video(tmp_path / "clip.mp4", frames=6)
    rc = _run_cli(
        "predict", video, "--onnx", models["depth_unet.onnx"], "--max-frames", "2",
        "--csv", tmp_path / "v.csv", "--quiet",
    )  # fmt: skip
    with (tmp_path / "v.csv").open() as f:
        assert rc == 0 and [r["frame"] for r in csv.DictReader(f)] == ["0", "1"]


def test_predict_cli_refuses_a_bad_model(tmp_path, capsys):
    rc = _run_cli("predict", tmp_path, "--checkpoint", tmp_path / "missing.pt")
    assert rc == 2
    assert "missing.pt" in capsys.readouterr().err


def test_predict_cli_needs_a_threshold_for_an_uncalibrated_model(tmp_path, capsys):
    uncalibrated = save_tiny_checkpoint(tmp_path / "uncal.pt", "binary_cnn", threshold=None)
    face = grace_hopper_path()
    assert _run_cli("predict", face, "--checkpoint", uncalibrated) == 2
    err = capsys.readouterr().err
    assert "uncal.pt is uncalibrated" in err and "--threshold T" in err
    out = tmp_path / "r.json"
    rc = _run_cli(
        "predict", face, "--checkpoint", uncalibrated, "--threshold", "0.25", "--json", out
    )
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["model"]["threshold"] == 0.25
    assert result["model"]["threshold_source"] == "given"
    assert result["results"][0]["decision"] in ("live", "spoof")


def test_predict_on_real_webcam_frames(nuaa_dev, depth_predictor):
    paths = (
        sorted((nuaa_dev / "live").rglob("*.jpg"))[:3]
        + sorted((nuaa_dev / "spoof").rglob("*.jpg"))[:3]
    )
    results = depth_predictor.predict(paths)
    assert sum(len(r) >= 1 for r in results) >= 5  # the detector finds nearly every face
    assert all(0.0 <= f.score <= 1.0 for r in results for f in r)


def test_crops_are_made_as_training_made_them(tmp_path):
    """Cut at the store's crop size, then resized like the Dataset: torch and onnx alike."""
    from _infer_helpers import CROP_SCALE, INPUT_SIZE

    from facepad.data.crop import resize_square, square_crop
    from facepad.infer.export import export_onnx

    ckpt = save_tiny_checkpoint(tmp_path / "m.pt", crop_size=4 * INPUT_SIZE)
    export_onnx(ckpt, tmp_path / "m.onnx", check=False)
    rgb = astronaut()
    box = (170.0, 60.0, 100.0, 110.0)
    expected = resize_square(square_crop(rgb, box, CROP_SCALE, 4 * INPUT_SIZE), INPUT_SIZE)
    direct = square_crop(rgb, box, CROP_SCALE, INPUT_SIZE)
    assert np.abs(expected.astype(int) - direct.astype(int)).max() > 0  # the path matters
    for predictor in (
        Predictor.from_checkpoint(ckpt),
        Predictor.from_checkpoint(tmp_path / "m.onnx", backend="onnx"),
    ):
        assert predictor.crop_size == 4 * INPUT_SIZE
        np.testing.assert_array_equal(predictor.crop(rgb, box), expected)

"""`facepad serve` in process (TestClient): a good upload, every kind of bad request answered 4xx
while serving on, response modes, keys, docs, CORS, errors, metrics and the access log.

The same behaviours against a real `facepad serve` process: tests/test_serve_process.py."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from _infer_helpers import astronaut, grace_hopper_path, save_tiny_checkpoint
from fastapi.testclient import TestClient

from facepad.infer.predictor import Predictor
from facepad.serve.app import create_app


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    from facepad.infer.export import export_onnx

    root = tmp_path_factory.mktemp("serve")
    ckpt = save_tiny_checkpoint(root / "d.pt", "depth_unet")
    return {"torch": ckpt, "onnx": Path(export_onnx(ckpt, root / "d.onnx", check=False)["out"])}


@pytest.fixture(scope="module")
def client(model_files) -> TestClient:
    predictor = Predictor.from_checkpoint(model_files["torch"])
    app = create_app(predictor, max_upload_bytes=2_000_000, max_pixels=5_000_000, response="full")
    with TestClient(app) as c:
        yield c


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A tiny file whose PNG header claims a huge image (a decompression bomb's first bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_good(client: TestClient, data: bytes, name: str = "face.jpg") -> dict:
    resp = client.post("/v1/predict", files={"image": (name, data, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_good_upload_in_full_mode_returns_the_face_with_score_and_depth(client):
    body = assert_good(client, grace_hopper_path().read_bytes())
    assert body["width"] == 512 and body["height"] == 600
    assert body["decision"] == body["faces"][0]["decision"] and len(body["request_id"]) == 32
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    assert set(face) >= {"box", "detector_score", "score", "decision", "threshold", "depth_png"}
    assert 0.0 <= face["score"] <= 1.0
    assert face["decision"] == ("live" if face["score"] >= face["threshold"] else "spoof")
    import cv2

    depth = cv2.imdecode(np.frombuffer(base64.b64decode(face["depth_png"]), np.uint8), 0)
    assert depth.shape == (16, 16) and face["depth_size"] == [16, 16]


def test_content_is_checked_by_decoding_not_by_name(client):
    body = assert_good(client, png_bytes(astronaut()), name="photo.txt")
    assert len(body["faces"]) == 1
    resp = client.post("/v1/predict", files={"image": ("face.jpg", b"hello, not an image")})
    assert resp.status_code == 415


def test_no_face_is_an_empty_list_not_an_error(client):
    body = assert_good(client, png_bytes(np.full((100, 120, 3), 200, np.uint8)))
    assert body["faces"] == [] and body["decision"] == "no_face"


BAD_REQUESTS = {
    "empty body": ({"files": {"image": ("a.jpg", b"", "image/jpeg")}}, 400, "empty"),
    "not an image": ({"files": {"image": ("a.jpg", b"GIF89a? no", "image/gif")}}, 415, "not an"),
    "truncated jpeg": (
        {"files": {"image": ("a.jpg", grace_hopper_path().read_bytes()[:4000], "image/jpeg")}},
        400,
        "truncated",
    ),
    "huge dimensions": (
        {"files": {"image": ("a.png", huge_png_header(30_000, 30_000), "image/png")}},
        413,
        "pixels",
    ),
    "over the pixel limit": (
        {"files": {"image": ("a.png", huge_png_header(3000, 2000), "image/png")}},
        413,
        "6,000,000 pixels",
    ),
    "wrong field": ({"files": {"photo": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}}, 400, "'image'"),
    "no multipart at all": ({"json": {"image": "abc"}}, 400, "'image'"),
    "field is text": ({"data": {"image": "not a file"}}, 422, "multipart file 'image'"),
    "too many bytes": (
        {"files": {"image": ("a.png", b"\x89PNG" + b"\0" * 2_100_000, "image/png")}},
        413,
        "bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_json_error_and_the_server_serves_on(client, case):
    kwargs, status, words = BAD_REQUESTS[case]
    resp = client.post("/v1/predict", **kwargs)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["error"]
    assert resp.json()["request_id"] == resp.headers["x-request-id"]
    assert_good(client, grace_hopper_path().read_bytes())


def test_wrong_method_and_path_are_json_errors(client):
    assert client.get("/v1/predict").status_code == 405
    resp = client.get("/nope")
    assert resp.status_code == 404 and "error" in resp.json()


def test_health_and_page(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "depth_unet"
    assert health["threshold"] == 0.5 and health["response"] == "full"
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "getUserMedia" in html and "v1/predict" in html
    assert 'src="http' not in html and 'href="http' not in html  # no external CDN


def test_onnx_model_serves_the_same_scores(model_files, client):
    onnx_app = create_app(Predictor.from_checkpoint(model_files["onnx"], "onnx"), response="full")
    data = grace_hopper_path().read_bytes()
    with TestClient(onnx_app) as onnx_client:
        o = assert_good(onnx_client, data)["faces"][0]
    t = assert_good(client, data)["faces"][0]
    assert o["box"] == t["box"] and o["score"] == pytest.approx(t["score"], abs=1e-5)


def test_a_model_failure_is_a_500_json_and_the_next_request_works(model_files):
    predictor = Predictor.from_checkpoint(model_files["onnx"], "onnx")
    real_run = predictor.backend.run
    calls = {"n": 0}

    def flaky(images):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated backend failure")
        return real_run(images)

    predictor.backend.run = flaky
    with TestClient(create_app(predictor)) as c:
        data = grace_hopper_path().read_bytes()
        resp = c.post("/v1/predict", files={"image": ("a.jpg", data)})
        assert resp.status_code == 500
        assert "simulated" not in resp.text and "RuntimeError" not in resp.text
        assert resp.json()["request_id"] == resp.headers["x-request-id"]
        assert_good(c, data)


def test_inference_does_not_block_the_event_loop(model_files):
    import threading
    import time

    predictor = Predictor.from_checkpoint(model_files["onnx"], "onnx")
    real_run = predictor.backend.run

    def slow(images):
        time.sleep(1.5)
        return real_run(images)

    predictor.backend.run = slow
    with TestClient(create_app(predictor)) as c:
        data = grace_hopper_path().read_bytes()
        answers = []  # filled only if the threaded request passed assert_good
        worker = threading.Thread(target=lambda: answers.append(assert_good(c, data)))
        worker.start()
        time.sleep(0.3)  # the upload is now inside the slow model
        t0 = time.perf_counter()
        assert c.get("/healthz").status_code == 200
        waited = time.perf_counter() - t0
        worker.join()
    assert len(answers) == 1, "the request in the thread failed (its error is printed above)"
    assert waited < 0.8, f"/healthz waited {waited:.2f} s behind a running prediction"


def test_serve_command_refuses_a_bad_model(tmp_path, capsys):
    import argparse

    from facepad.serve import commands

    parser = argparse.ArgumentParser(prog="facepad")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", str(tmp_path / "missing.onnx")])
    assert args.func(args) == 2
    assert "missing.onnx" in capsys.readouterr().err


def test_serve_needs_a_threshold_for_an_uncalibrated_model(tmp_path, capsys):
    import argparse

    from facepad.infer.predictor import PredictorError
    from facepad.serve import commands
    from facepad.serve.app import app_from_path

    uncalibrated = save_tiny_checkpoint(tmp_path / "uncal.pt", "depth_unet", threshold=None)
    parser = argparse.ArgumentParser(prog="facepad")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", str(uncalibrated)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "uncal.pt is uncalibrated" in err and "--threshold T" in err
    with pytest.raises(PredictorError, match="uncalibrated"):
        app_from_path(uncalibrated)
    args = parser.parse_args(["serve", str(uncalibrated), "--threshold", "0.35"])
    assert args.threshold == 0.35
    full = {"threshold": args.threshold, "response": "full"}  # full: the threshold is shown
    with TestClient(app_from_path(uncalibrated, **full)) as c:
        health = c.get("/healthz").json()
        assert health["threshold"] == 0.35 and health["threshold_source"] == "given"
        assert assert_good(c, grace_hopper_path().read_bytes())["threshold"] == 0.35


@pytest.fixture(scope="module")
def onnx_predictor(model_files) -> Predictor:
    return Predictor.from_checkpoint(model_files["onnx"], "onnx")


def two_faces() -> bytes:
    """A 640x480 frame: a large face and the same face smaller beside it."""
    import cv2

    face = astronaut()[20:280, 100:360]
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[:320, :320] = cv2.resize(face, (320, 320))
    canvas[100:380, 360:] = cv2.resize(face, (280, 280))
    return png_bytes(canvas)


@pytest.mark.parametrize(
    ("mode", "fields"),
    [
        ("decision", {"box", "decision"}),
        ("score", {"box", "decision", "score"}),
        ("full", {"box", "decision", "score", "detector_score", "threshold", "depth_png"}),
    ],
)
def test_the_response_mode_decides_what_is_given_away(onnx_predictor, mode, fields):
    with TestClient(create_app(onnx_predictor, response=mode)) as c:
        body = assert_good(c, grace_hopper_path().read_bytes())
        health = c.get("/healthz").json()
    assert set(body["faces"][0]) == fields | ({"depth_size"} if mode == "full" else set())
    assert ("threshold" in body) == (mode == "full") and ("model" in body) == (mode == "full")
    assert ("threshold" in health) == (mode == "full") and health["response"] == mode


def test_one_face_by_default_and_the_others_only_when_asked(onnx_predictor):
    with TestClient(create_app(onnx_predictor, response="score")) as c:
        one = assert_good(c, two_faces())
        resp = c.post("/v1/predict?all_faces=true", files={"image": ("f.png", two_faces())})
    assert len(one["faces"]) == 1 and one["faces"][0]["box"][0] < 320  # the larger, left face
    both = resp.json()["faces"]
    assert [f["chosen"] for f in both] == [True, False]
    assert both[0]["box"] == one["faces"][0]["box"] and both[1]["box"][2] < both[0]["box"][2]
    assert resp.json()["decision"] == one["decision"] == both[0]["decision"]


def test_faces_all_decides_on_every_face(onnx_predictor):
    with TestClient(create_app(onnx_predictor, faces="all")) as c:
        assert len(assert_good(c, two_faces())["faces"]) == 2


def test_api_keys_from_a_file_and_the_environment(onnx_predictor, tmp_path, monkeypatch):
    keys = tmp_path / "keys.txt"
    keys.write_text("# service keys\nfirst-key-0123456789abcdef\n\nsecond-key-0123456789abcdef\n")
    monkeypatch.setenv("FACEPAD_API_KEYS", "env-key-0123456789abcdef")
    data = grace_hopper_path().read_bytes()
    with TestClient(create_app(onnx_predictor, api_key_file=str(keys))) as c:
        post = lambda headers: c.post(  # noqa: E731
            "/v1/predict", files={"image": ("f.jpg", data)}, headers=headers
        )
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789abcdef"}, {"Authorization": "x"}):
            resp = post(headers)
            assert resp.status_code == 401 and "API key" in resp.json()["error"], headers
            assert resp.headers["www-authenticate"] == "Bearer"
        assert post({"X-API-Key": "first-key-0123456789abcdef"}).status_code == 200
        assert post({"Authorization": "Bearer second-key-0123456789abcdef"}).status_code == 200
        assert post({"Authorization": "bearer env-key-0123456789abcdef"}).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/healthz").json()["api_key"] is True and c.get("/").status_code == 200


def test_short_or_missing_keys_are_refused_at_start(onnx_predictor, tmp_path, monkeypatch):
    from facepad.serve.settings import SettingsError

    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(SettingsError, match="no key"):
        create_app(onnx_predictor, api_key_file=str(empty))
    monkeypatch.setenv("FACEPAD_API_KEYS", "short")
    with pytest.raises(SettingsError, match="shorter than 16"):
        create_app(onnx_predictor)


def test_docs_are_off_unless_asked_and_cors_is_closed_unless_named(onnx_predictor):
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    with TestClient(create_app(onnx_predictor)) as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404
        resp = c.options("/v1/predict", headers=preflight)
        assert "access-control-allow-origin" not in resp.headers
    app = create_app(onnx_predictor, docs=True, cors_origins=["https://app.example"])
    with TestClient(app) as c:
        assert c.get("/docs").status_code == 200 and "/v1/predict" in c.get("/openapi.json").text
        resp = c.options("/v1/predict", headers=preflight)
        assert resp.headers["access-control-allow-origin"] == "https://app.example"
        other = c.options("/v1/predict", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(onnx_predictor):
    def chunks():
        for _ in range(20):
            yield b"\0" * (1 << 20)

    with TestClient(create_app(onnx_predictor, max_upload_bytes=1_000_000)) as c:
        headers = {"Content-Type": "multipart/form-data; boundary=x"}
        resp = c.post("/v1/predict", content=chunks(), headers=headers)
        assert resp.status_code == 413 and "1,000,000 bytes" in resp.json()["error"]
        assert_good(c, grace_hopper_path().read_bytes())
    # TestClient sends the whole generator first; tests/test_serve_process.py checks that a real
    # server stops reading early.


def test_metrics_count_requests_decisions_and_latency(onnx_predictor):
    with TestClient(create_app(onnx_predictor)) as c:
        for _ in range(3):
            assert_good(c, grace_hopper_path().read_bytes())
        c.post("/v1/predict", files={"image": ("a.jpg", b"junk")})
        text = c.get("/metrics").text
    assert 'facepad_requests_total{path="/v1/predict",status="200"} 3.0' in text
    assert 'facepad_requests_total{path="/v1/predict",status="415"} 1.0' in text
    assert 'facepad_request_duration_seconds_count{path="/v1/predict"} 4.0' in text
    live = 'facepad_decisions_total{decision="live"}'
    spoof = 'facepad_decisions_total{decision="spoof"}'
    assert (live in text) or (spoof in text)
    assert "facepad_predictions_in_flight 0.0" in text


def test_the_access_log_is_json_lines_without_image_data(onnx_predictor, tmp_path):
    import json

    log = tmp_path / "access.jsonl"
    with TestClient(create_app(onnx_predictor, response="full", access_log=str(log))) as c:
        body = assert_good(c, grace_hopper_path().read_bytes())
        c.post("/v1/predict", files={"image": ("a.jpg", b"junk")})
        c.get("/healthz")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["path"], x["status"]) for x in lines] == [
        ("/v1/predict", 200),
        ("/v1/predict", 415),
        ("/healthz", 200),
    ]
    first = lines[0]
    assert first["request_id"] == body["request_id"] and first["faces"] == 1
    assert first["decisions"] == [body["faces"][0]["decision"]] and first["latency_ms"] > 0
    assert set(first) >= {"time", "client", "method", "status", "pid"}
    text = log.read_text()
    assert body["faces"][0]["depth_png"][:40] not in text and "score" not in text

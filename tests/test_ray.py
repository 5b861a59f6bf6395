"""Ray Serve deployment and Ray Data batch scoring, on a local Ray instance (2 CPUs, no dashboard).

Skips where the `ray` extra is not installed (`pip install "facepad[ray]"`; scripts/setup.sh --dev
installs it). Ray starts offline: no usage reporting, nothing downloaded.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _infer_helpers import astronaut, grace_hopper_path, save_tiny_checkpoint
from _serve_helpers import ServeProcess

from facepad.serve.ray_serve import deployment_options
from facepad.serve.settings import ServeSettings, SettingsError

KEY = "ray-key-0123456789abcdef"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from facepad.infer.export import export_onnx

    root = tmp_path_factory.mktemp("ray_model")
    ckpt = save_tiny_checkpoint(root / "d.pt", "depth_unet")
    return Path(export_onnx(ckpt, root / "d.onnx", check=False)["out"])


def test_deployment_options_from_defaults_yaml_and_flags(tmp_path):
    settings = ServeSettings(max_inflight=2, max_queue=6)
    base = deployment_options(settings)
    assert base["num_replicas"] == 1 and base["max_ongoing_requests"] == 8
    assert base["max_queued_requests"] == 6
    yaml_file = tmp_path / "ray.yaml"
    yaml_file.write_text(
        "autoscaling_config: {min_replicas: 1, max_replicas: 4}\nray_actor_options: {num_cpus: 2}\n"
    )
    scaled = deployment_options(settings, yaml_file, autoscale_max=3, target_ongoing=2)
    assert "num_replicas" not in scaled and scaled["ray_actor_options"] == {"num_cpus": 2}
    assert scaled["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 2,
    }
    fixed = deployment_options(settings, yaml_file, replicas=2)
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    with pytest.raises(SettingsError, match="not both"):
        deployment_options(settings, replicas=2, autoscale_max=3)
    yaml_file.write_text("replicas: 3\n")
    with pytest.raises(SettingsError, match="unknown keys"):
        deployment_options(settings, yaml_file)


def image_list(root: Path) -> Path:
    from PIL import Image

    Image.fromarray(astronaut()).save(root / "astronaut.png")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(root / "blank.png")
    (root / "notes.jpg").write_text("not a photo")
    lines = [str(grace_hopper_path()), "astronaut.png", "blank.png", "notes.jpg", "missing.jpg"]
    (root / "list.txt").write_text("# images to score\n" + "\n".join(lines) + "\n")
    return root / "list.txt"


@pytest.mark.slow
def test_ray_data_scores_a_list_like_the_predictor_and_resumes(model, tmp_path):
    pytest.importorskip("ray")
    import ray

    from facepad.infer.predictor import FaceChoice, Predictor
    from facepad.serve.ray_batch import score_image_list

    listing = image_list(tmp_path)
    out = tmp_path / "scores.csv"
    try:
        summary = score_image_list(listing, model, out, actors=2, batch_size=2, num_cpus=2)
        assert summary == {"scored": 5, "skipped_done": 0, "errors": 3}
        rows = {r["source"]: r for r in csv.DictReader(out.open())}
        direct = Predictor.from_path(model)
        direct.face_choice = FaceChoice.single()
        for name in (str(grace_hopper_path()), str(tmp_path / "astronaut.png")):
            (face,) = direct.predict(name)
            assert float(rows[name]["score"]) == pytest.approx(face.score, abs=1e-5)
            assert rows[name]["decision"] == face.decision and rows[name]["error"] == ""
        assert rows[str(tmp_path / "blank.png")]["error"] == "no face found"
        assert "unreadable" in rows[str(tmp_path / "notes.jpg")]["error"]
        assert "unreadable" in rows[str(tmp_path / "missing.jpg")]["error"]
        # A killed run: the last line half written. The rerun scores only what is missing.
        data = out.read_bytes()
        out.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 10])
        again = score_image_list(listing, model, out, actors=1, num_cpus=2)
        assert again["skipped_done"] == 4 and again["scored"] == 1
        rows_after = list(csv.DictReader(out.open()))
        assert len(rows_after) == 5 and {r["source"] for r in rows_after} == set(rows)
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_serve_deployment_serves_the_same_app(model, tmp_path):
    pytest.importorskip("ray")
    import httpx

    (tmp_path / "keys.txt").write_text(KEY + "\n")
    (tmp_path / "ray.yaml").write_text(
        "autoscaling_config: {min_replicas: 2, max_replicas: 2}\n"
        "ray_actor_options: {num_cpus: 0.5}\n"
    )
    log = tmp_path / "access.jsonl"
    server = ServeProcess(
        model,
        *("--ray", "--ray-config", str(tmp_path / "ray.yaml"), "--max-upload-mb", "1"),
        *("--api-key-file", str(tmp_path / "keys.txt"), "--access-log", str(log)),
        log=tmp_path / "server.log",
        env={"RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        server.wait_ready(timeout=240)
        url, auth = server.url, {"X-API-Key": KEY}
        data = grace_hopper_path().read_bytes()
        files = {"image": ("f.jpg", data, "image/jpeg")}
        assert httpx.post(url + "v1/predict", files=files, timeout=60).status_code == 401
        codes: list[int] = []

        def client() -> None:
            for _ in range(5):
                resp = httpx.post(url + "v1/predict", files=files, headers=auth, timeout=60)
                codes.append(resp.status_code)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert codes == [200] * 20
        body = httpx.post(url + "v1/predict", files=files, headers=auth, timeout=60).json()
        assert set(body["faces"][0]) == {"box", "decision"}  # the default response mode
        big = {"image": ("big.jpg", io.BytesIO(b"\xff" * 2_000_000), "image/jpeg")}
        resp = httpx.post(url + "v1/predict", files=big, headers=auth, timeout=60)
        assert resp.status_code == 413
        time.sleep(1.0)
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        pids = {x["pid"] for x in lines if x["path"] == "/v1/predict" and x["status"] == 200}
        assert len(pids) == 2, f"2 replicas expected to serve, saw pids {pids}"
        assert body["request_id"] in {x["request_id"] for x in lines}
        server.proc.terminate()  # SIGTERM to the driver: Serve and Ray shut down
        server.proc.wait(timeout=90)
    finally:
        server.stop()
        print(f"\nRay Serve log tail:\n{(tmp_path / 'server.log').read_text()[-1500:]}")

"""The onnx backend must run where torch is not installed (the `infer` install option)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from _infer_helpers import grace_hopper_path, save_tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]

# Blocks torch before anything is imported, then predicts with the onnx backend.
SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import json
from facepad.infer.predictor import Predictor
predictor = Predictor.from_checkpoint(sys.argv[1], backend="onnx", threads=1)
faces = predictor.predict(sys.argv[2])
leaked = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] == "torch" and mod)
print("RESULT " + json.dumps({"faces": [f.to_dict() for f in faces], "torch_modules": leaked,
                              "depth": faces[0].depth.shape if faces else None}))
"""


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    from facepad.infer.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    ckpt = save_tiny_checkpoint(root / "d.pt", "depth_unet")
    return Path(export_onnx(ckpt, root / "d.onnx", check=False)["out"])


def _predict(python: str, onnx_path: Path, extra_env: dict | None = None) -> dict:
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.run(
        [python, "-c", SCRIPT, str(onnx_path), str(grace_hopper_path())],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=str(onnx_path.parent),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_onnx_backend_runs_with_torch_blocked(onnx_model):
    result = _predict(sys.executable, onnx_model)
    assert len(result["faces"]) == 1
    assert result["faces"][0]["decision"] in ("live", "spoof")
    assert result["depth"] == [16, 16]
    assert result["torch_modules"] == []


@pytest.mark.slow
def test_onnx_backend_in_a_fresh_venv_with_only_infer_dependencies(onnx_model, tmp_path):
    """pip installs from its cache; skips where the packages cannot be fetched."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    pins = ["numpy", "opencv-python-headless", "onnxruntime", "pillow", "simplejpeg",
            "protobuf<5", "attrs", "matplotlib", "absl-py"]  # fmt: skip
    versions = {}
    for name in pins:
        base = name.split("<")[0]
        try:
            from importlib.metadata import version

            versions[name] = f"{base}=={version(base)}" if "<" not in name else name
        except Exception:
            versions[name] = name
    steps = [
        [py, "-m", "pip", "install", "-q", *versions.values()],
        [py, "-m", "pip", "install", "-q", "--no-deps", "mediapipe==0.10.14"],
        [py, "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"could not install {cmd[5:]}: {proc.stderr[-500:]}")
    check = subprocess.run([py, "-c", "import torch"], capture_output=True)
    assert check.returncode != 0, "torch must not be in the infer-only venv"
    result = _predict(py, onnx_model)
    assert len(result["faces"]) == 1 and result["depth"] == [16, 16]

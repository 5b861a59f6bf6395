"""What `pip install .` (not editable) ships: build the wheel, install it into a new venv and walk
the user's path there, from a folder outside the checkout: `facepad recipes`, `facepad reproduce
--dataset demo`, `facepad export` and `facepad serve` with its page.

What is reused, honestly: the wheel goes in with `--no-deps`, and a .pth file puts the running
environment's site-packages (torch, mediapipe, onnxruntime, fastapi, ...) after the new venv's own.
So this checks the wheel's contents (package, recipes, page, entry point), not dependency
resolution. facepad itself comes from the new venv only: PYTHONPATH is cleared, the editable
install's finder is not activated (.pth files of an added directory are not processed), and the
test asserts where `facepad` was imported from.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Left out of the source copy: local state that a clean checkout does not have.
NOT_SOURCE = (
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", "runs", "results", "stores", "prepared", "demo_data", "logs",
)  # fmt: skip


def not_source(folder: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore: local state, and exported models other than the shipped one."""
    left_out = shutil.ignore_patterns(*NOT_SOURCE)(folder, names)
    if Path(folder) == REPO:
        left_out |= {"data", "eval"} & set(names)  # links to the datasets; local evaluations
    if Path(folder) != REPO / "facepad" / "weights":
        left_out |= {n for n in names if n.endswith(".onnx")}
    return left_out


def run(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def package_data_files(root: Path) -> set[str]:
    """Every file under facepad/ that is not Python source: what package-data must ship."""
    return {
        p.relative_to(root).as_posix()
        for p in (root / "facepad").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a clean copy of the source (the checkout stays untouched)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=not_source)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    run([*cmd, "-q", "-w", str(root / "dist"), str(src)], cwd=root, env=dict(os.environ))
    (built,) = (root / "dist").glob("facepad-*.whl")
    return built


def test_the_wheel_ships_recipes_the_serve_page_and_the_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"facepad/configs/nuaa_cpu.yaml", "facepad/serve/page.html"} <= names
    assert "facepad/weights/facepad_lite0.onnx" in names
    missing = package_data_files(REPO) - names
    assert not missing, f"not in the wheel (add them to package-data in pyproject.toml): {missing}"
    assert not [n for n in names if n.startswith(("tests/", "configs/", "benchmarks/"))]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A new venv holding the wheel; returns (its bin folder, the environment to run it in)."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    run([*pip, "--no-deps", "--no-index", str(wheel)], cwd=env_dir, env=dict(os.environ))
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=env_dir, env=dict(os.environ)).strip()  # fmt: skip
    shared = sysconfig.get_paths()["purelib"]  # the dependencies, reused (see module docstring)
    (Path(purelib) / "_facepad_test_dependencies.pth").write_text(shared + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", NO_ALBUMENTATIONS_UPDATE="1")
    return env_dir / "bin", env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 120) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"facepad serve exited: {proc.stderr.read()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds} s")


@pytest.mark.slow
def test_installed_wheel_reproduces_the_demo_exports_and_serves(installed, tmp_path):
    bin_dir, env = installed
    work = tmp_path / "elsewhere"  # outside the checkout: nothing can come from the source tree
    work.mkdir()
    where = run([str(bin_dir / "python"), "-c", "import facepad; print(facepad.__file__)"],
                cwd=work, env=env).strip()  # fmt: skip
    assert Path(where).is_relative_to(bin_dir.parent), where
    assert "nuaa_cpu" in run([str(bin_dir / "facepad"), "recipes"], cwd=work, env=env)

    # The README's first command, one epoch per model to keep the test short.
    out = run(
        [str(bin_dir / "facepad"), "reproduce", "--dataset", "demo", "--out", "results/demo",
         "train.epochs=1"],
        cwd=work, env=env, timeout=1800,
    )  # fmt: skip
    results = work / "results" / "demo"
    assert str(bin_dir.parent) in out and "configs/demo_cpu.yaml" in out  # the wheel's recipe
    rows = (results / "table1.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["binary_cnn", "depth_unet", "fusion"]
    for model in ("binary_cnn", "depth_unet", "fusion"):
        assert (results / model / "report.json").is_file()

    onnx_path = work / "depth.onnx"
    best = results / "runs" / "depth_unet" / "best.pt"
    run([str(bin_dir / "facepad"), "export", str(best), "--out", str(onnx_path)], work, env)

    port = free_port()
    # --response full: /healthz names the model only in full mode
    serve = [str(bin_dir / "facepad"), "serve", str(onnx_path), "--port", str(port)]
    serve += ["--response", "full"]
    proc = subprocess.Popen(serve, cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        health = json.loads(wait_for(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["status"] == "ok" and health["model"] == "depth_unet"
        page = wait_for(f"http://127.0.0.1:{port}/", proc).decode()
        assert "v1/predict" in page  # the page.html the wheel shipped
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_installed_wheel_decides_real_faces_with_the_shipped_model(installed, tmp_path):
    """Right after install, `facepad predict IMG...` with no model: the package's own model,
    on 20 frames of Replay-Attack clients it never saw (skips without the data)."""
    from test_shipped import replay_devel_frames

    bin_dir, env = installed
    frames = replay_devel_frames(10)
    code = "from facepad.infer.shipped import shipped_model_path; print(shipped_model_path())"
    where = run([str(bin_dir / "python"), "-c", code], tmp_path, env).strip()
    assert Path(where).is_relative_to(bin_dir.parent), where  # the installed package's file
    out = tmp_path / "out.json"
    run([str(bin_dir / "facepad"), "predict", *[p for p, _ in frames], "--faces", "largest",
         "--json", str(out)], tmp_path, env)  # fmt: skip
    results = json.loads(out.read_text())["results"]
    decided = {r["source"]: r["decision"] == "live" for r in results if not r["error"]}
    right = [decided[p] == live for p, live in frames if p in decided]
    assert len(right) >= 18 and sum(right) >= 18, f"{sum(right)} of {len(right)} decided right"

    # `facepad serve` with no model serves the same one
    port = free_port()
    serve = [str(bin_dir / "facepad"), "serve", "--port", str(port), "--response", "full"]
    proc = subprocess.Popen(serve, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        health = json.loads(wait_for(f"http://127.0.0.1:{port}/healthz", proc))
        assert health["status"] == "ok" and health["model"] == "binary_cnn"
        path, live = frames[0]
        answer = post_image(f"http://127.0.0.1:{port}/v1/predict", Path(path).read_bytes())
        assert answer["decision"] == ("live" if live else "spoof")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def post_image(url: str, jpeg: bytes) -> dict:
    """POST one JPEG as the multipart field `image`; the JSON answer."""
    import httpx

    return httpx.post(url, files={"image": ("f.jpg", jpeg, "image/jpeg")}, timeout=30).json()

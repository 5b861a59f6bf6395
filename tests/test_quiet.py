"""A quiet command line: mediapipe's absl, TF Lite and protobuf lines are dropped where a graph is
built (`facepad.data.faces`), in the CLI process and in every worker; `--verbose` shows them.

"facepad's own lines" on stderr are the lines facepad prints (here: predict's summary, serve's
"facepad serving ..." line) and tqdm progress bars; everything else on stderr fails the tests.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _infer_helpers import tiny_onnx_model
from _serve_helpers import ServeProcess

from facepad.cli import build_parser
from facepad.data.faces import VERBOSE_ENV, is_native_noise, native_noise_dropped

# What mediapipe prints when nothing hides it (absl, TF Lite, protobuf's Python warning).
THIRD_PARTY = re.compile(
    r"absl|[IWEF]\d{4} \d\d:\d\d:\S+ +\d+ \S+\.cc:\d+\]|TensorFlow Lite|XNNPACK|GetPrototype"
    r"|UserWarning|warnings\.warn"
)
PROGRESS = re.compile(r"^[\w ]+: +\d+%\|")  # a tqdm bar, one refresh between carriage returns

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"W0000 00:00:1796355445.807497    5552 inference_feedback_manager.cc:114] Feedback manager "
    b"requires a model with a single signature inference. Disabling support for feedback "
    b"tensors.\n",
    b"I0000 00:00:1796355445.8 12 gl_context.cc:357] GL version: 3.2\n",
    # TF Lite writes "INFO: " and its text apart; another thread's line can land between them.
    b"INFO: W0000 00:00:1796355445.9 5553 inference_feedback_manager.cc:114] Feedback manager\n",
    b"Created TensorFlow Lite XNNPACK delegate for CPU.\n",
]
KEPT = [
    b"E0000 00:00:1796355446.1 5552 calculator_graph.cc:887] INTERNAL: a real graph error\n",
    b"F0000 00:00:1796355446.2 5552 packet.h:123] Check failed: a real crash\n",
    b"ERROR: TF Lite could not read the model\n",
    b"facepad prepare: error: a line facepad itself prints\n",
    b'  File "x.py", line 3, in <module>\n',
]


def stderr_lines(text: str) -> list[str]:
    """stderr's lines without tqdm's progress refreshes."""
    pieces = (p.strip() for line in text.splitlines() for p in line.split("\r"))
    return [p for p in pieces if p and not PROGRESS.match(p)]


def third_party(lines: list[str]) -> list[str]:
    return [line for line in lines if THIRD_PARTY.search(line)]


def run_facepad(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != VERBOSE_ENV}
    return subprocess.run(
        [sys.executable, "-m", "facepad", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )  # fmt: skip


# ---- the filter -------------------------------------------------------------------------------


def test_the_filter_drops_mediapipe_noise_and_keeps_errors_and_facepads_lines():
    assert [is_native_noise(line) for line in NOISE] == [True] * len(NOISE)
    assert [is_native_noise(line) for line in KEPT] == [False] * len(KEPT)


def test_inside_the_window_fd_2_keeps_everything_but_the_noise(capfd, monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    lines = [line for pair in zip(NOISE, KEPT + KEPT[:1], strict=True) for line in pair]
    with native_noise_dropped():
        for line in lines:
            os.write(2, line)  # as C++ writes: straight to the file descriptor
    os.write(2, NOISE[0])  # outside the window nothing is touched
    assert capfd.readouterr().err.encode() == b"".join([*KEPT, KEPT[0], NOISE[0]])


def test_verbose_lets_everything_through(capfd, monkeypatch):
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with native_noise_dropped():
        for line in NOISE:
            os.write(2, line)
    assert capfd.readouterr().err.encode() == b"".join(NOISE)


def test_a_native_crash_inside_the_window_is_reported_on_the_real_stderr(tmp_path):
    """What the crashing library wrote in the window dies with the capture; faulthandler's
    report of where the process died reaches the real stderr."""
    code = "import os\nfrom facepad.data.faces import native_noise_dropped\n"
    code += "with native_noise_dropped():\n    os.abort()  # line 4\n"
    env = {k: v for k, v in os.environ.items() if k not in (VERBOSE_ENV, "PYTHONFAULTHANDLER")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, cwd=tmp_path)  # fmt: skip
    assert run.returncode != 0
    assert "Fatal Python error: Aborted" in run.stderr and "line 4 in <module>" in run.stderr


@pytest.mark.parametrize(
    "argv", [["--verbose", "predict", "x.jpg"], ["predict", "--verbose", "x.jpg"]]
)
def test_verbose_is_a_global_flag_and_every_commands_flag(argv):
    parser = build_parser()
    assert parser.parse_args([*argv, "--onnx", "m.onnx"]).verbose is True
    assert parser.parse_args(["predict", "x.jpg", "--onnx", "m.onnx"]).verbose is False
    assert "--verbose" in parser.format_help()


# ---- the commands on real images --------------------------------------------------------------


@pytest.fixture(scope="module")
def nuaa_frames(nuaa_dev) -> list[Path]:
    """Two live and two spoof frames of two subjects."""
    with open(nuaa_dev / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for subject in ("0001", "0002"):
        for label in ("live", "spoof"):
            chosen.append(next(r for r in rows if r["subject"] == subject and r["label"] == label))
    return [nuaa_dev / r["path"] for r in chosen]


def prepare(frames: list[Path], tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """`facepad prepare --manifest` with two worker processes (one shard each)."""
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "attack_type", "subject"])
        for path in frames:
            label = path.parts[-3]
            writer.writerow([path, label, "none" if label == "live" else "print", path.parts[-2]])
    return run_facepad(*flags, "prepare", "--manifest", str(manifest), "--out",
                       str(tmp_path / "store"), "--workers", "2", "--shard-size", "2",
                       "--no-progress", cwd=tmp_path)  # fmt: skip


def test_prepare_with_workers_prints_nothing_on_stderr(nuaa_frames, tmp_path):
    run = prepare(nuaa_frames, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "prepared store" in run.stdout and "stored 4" in run.stdout
    assert run.stderr == ""


def test_prepare_verbose_shows_the_workers_mediapipe_lines(nuaa_frames, tmp_path):
    run = prepare(nuaa_frames, tmp_path, "--verbose")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "inference_feedback_manager" in run.stderr  # logged by every graph of both workers
    assert "GetPrototype" in run.stderr


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """A tiny depth U-Net exported to ONNX; its checkpoint lies next to it (d.pt)."""
    return tiny_onnx_model(tmp_path_factory.mktemp("quiet"))


@pytest.mark.parametrize("backend", ["--onnx", "--checkpoint"])
def test_predict_prints_only_its_summary(backend, onnx_model, nuaa_frames, tmp_path):
    model = onnx_model if backend == "--onnx" else onnx_model.with_name("d.pt")
    run = run_facepad("predict", backend, str(model), *map(str, nuaa_frames[:2]), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = stderr_lines(run.stderr)
    assert third_party(lines) == []
    assert len(lines) == 1 and re.match(r"\d+ faces \(.*\) at threshold", lines[0]), lines


def test_predict_verbose_shows_mediapipes_lines(onnx_model, nuaa_frames, tmp_path):
    run = run_facepad("--verbose", "predict", "--onnx", str(onnx_model), str(nuaa_frames[0]),
                      cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "inference_feedback_manager" in run.stderr and "GetPrototype" in run.stderr


@pytest.mark.slow
def test_serve_with_two_workers_prints_only_its_own_line(onnx_model, nuaa_frames, tmp_path):
    import httpx

    log = tmp_path / "serve.log"  # stdout and stderr of the server and its workers
    server = ServeProcess(onnx_model, "--workers", "2", "--access-log", "off", log=log,
                          env={VERBOSE_ENV: "0"}).wait_ready()  # fmt: skip
    try:
        for path in nuaa_frames[:4]:  # both workers build a detector on their first request
            files = {"image": (path.name, path.read_bytes(), "image/jpeg")}
            answer = httpx.post(server.url + "v1/predict", files=files, timeout=60)
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    lines = stderr_lines(log.read_text())
    assert third_party(lines) == []
    assert len(lines) == 1 and lines[0].startswith("facepad serving "), lines

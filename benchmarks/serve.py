"""Bounded concurrent load on `facepad serve` over loopback: throughput, latency p50/p99, errors,
for each `--workers` count side by side in one run.

For each worker count (and each of `--repeats`, alternating so machine noise hits both alike), it
starts `facepad serve --workers N` in its own process (an untrained CPU-sized depth U-Net exported
to ONNX unless --model is given), then runs `--clients` httpx clients, each posting 640x480
nuaa-dev frames one after another for `--seconds`. Target: 0 errors.

    .venv/bin/python benchmarks/serve.py [--workers 1 2] [--clients 8] [--seconds 30] [--model m]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from infer import load_frames, make_models  # noqa: E402  (benchmarks/infer.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited before it was ready")
        try:
            if httpx.get(url + "healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {timeout} s")


async def load(url: str, frames: list[bytes], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    faces = 0
    stop = time.perf_counter() + seconds

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal faces
        i = k
        while time.perf_counter() < stop:
            data = frames[i % len(frames)]
            i += clients
            t0 = time.perf_counter()
            try:
                resp = await http.post(url + "v1/predict", files={"image": ("f.jpg", data)})
                if resp.status_code != 200:
                    errors[str(resp.status_code)] = errors.get(str(resp.status_code), 0) + 1
                    continue
                faces += len(resp.json()["faces"])
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(k, http) for k in range(clients)))
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "faces": faces, "wall": wall}


def run_one(model: Path, workers: int, frames: list[bytes], args) -> dict:
    """Start `facepad serve --workers N`, load it, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "facepad", "serve", str(model), "--port", str(port)]
    cmd += ["--threads", str(args.threads), "--workers", str(workers), *args.server_args.split()]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_ready(url, proc)
        time.sleep(2.0 if workers > 1 else 0.0)  # the other workers finish loading their model
        return asyncio.run(load(url, frames, args.clients, args.seconds))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def summary(workers: int, result: dict) -> str:
    lat = result["latencies"]
    n_err = sum(result["errors"].values())
    rate = len(lat) / result["wall"]
    p50, p99 = (np.percentile(lat, 50), np.percentile(lat, 99)) if lat else (float("nan"),) * 2
    errors = f"{n_err} {result['errors']}" if n_err else "0"
    return f"| {workers} | {len(lat)} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {errors} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the worker counts")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", type=Path, help="a .pt or .onnx; default: untrained depth_unet")
    parser.add_argument("--threads", type=int, default=1, help="model threads per worker")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--server-args", default="", help='more serve flags, e.g. "--max-queue 4"')
    args = parser.parse_args()

    frames = load_frames(args.frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or make_models(Path(tmp), ["depth_unet"], 128)["depth_unet"]["onnx"]
        for _ in range(args.repeats):
            for workers in args.workers:
                rows.append(summary(workers, run_one(model, workers, frames, args)))
    print(
        f"model {Path(model).name}, {args.clients} clients x {args.seconds:.0f} s per row, "
        f"640x480 JPEG frames, model threads {args.threads} per worker, {os.cpu_count()} CPUs, "
        f"server flags: {args.server_args or 'defaults'}"
    )
    print("| workers | requests ok | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

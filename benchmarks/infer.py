"""End-to-end inference latency per 640x480 frame: decode + detect + crop + model.

For every model (untrained weights: timing only), torch vs onnxruntime, at 1 and 2 threads. Frames
are nuaa-dev webcam JPEGs (640x480) read into memory first, so disk is not timed. Prints p50/p95
(and the minimum, the best estimate of an uncontended machine) of the whole path and the median of
each stage. The machine is shared: run it more than once and quote medians.

    .venv/bin/python benchmarks/infer.py [--frames 150] [--input-size 128] [--models depth_unet]

A model name ending in `_xN` (e.g. `depth_unet_x3`) times an ensemble of N such models
(`facepad ensemble`), as one checkpoint and one exported graph; `late_xN` times N binary CNNs
and N depth U-Nets together (late fusion). `shipped` times the model that ships inside facepad
(its trained ONNX graph at its own input size; onnxruntime only), e.g. side by side with today's
depth U-Net: `--models shipped depth_unet --backends onnx`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _devdata import DEV_DATA

NUAA_DEV = DEV_DATA / "nuaa-dev"
# The CPU recipe's models (facepad/configs/nuaa_cpu.yaml widths): input 128 with map_stride 4 gives
# a 32x32 depth map. CDC (theta) folds into plain convs for inference, so it costs nothing here.
# `--paper-widths` times the default (256x256-sized) widths instead.
RECIPE_WIDTHS = [16, 32, 64, 128]
MODEL_KWARGS = {
    "binary_cnn": {"widths": RECIPE_WIDTHS},
    "depth_unet": {"widths": RECIPE_WIDTHS, "map_stride": 4},
    "fusion": {"widths": RECIPE_WIDTHS, "map_stride": 4},
}


def load_frames(n: int) -> list[bytes]:
    """n encoded 640x480 JPEG frames: nuaa-dev if present, else a resized sample photo."""
    paths = sorted(NUAA_DEV.rglob("*.jpg"))
    if paths:
        step = max(1, len(paths) // n)
        return [p.read_bytes() for p in paths[::step][:n]]
    import cv2
    from skimage import data

    print(f"nuaa-dev not found at {NUAA_DEV}; timing a resized sample photo", file=sys.stderr)
    frame = cv2.resize(data.astronaut(), (640, 480))
    ok, buf = cv2.imencode(".jpg", frame[:, :, ::-1])
    return [buf.tobytes()] * n


def make_models(root: Path, names: list[str], input_size: int) -> dict[str, dict[str, Path]]:
    """Untrained checkpoint + ONNX export per model name."""
    import torch

    from facepad.infer.export import export_onnx
    from facepad.models import create_model
    from facepad.models.checkpoint import build_checkpoint, save_checkpoint

    out = {}
    for name in names:
        if name == "shipped":
            from facepad.infer.shipped import shipped_model_path

            out[name] = {"onnx": shipped_model_path()}
            continue
        torch.manual_seed(0)
        base, _, copies = name.partition("_x")
        if copies:  # an ensemble of `copies` models of kind `base` (late: of each arm)
            kinds = ["binary_cnn", "depth_unet"] if base == "late" else [base]
            members = [{"name": k, "kwargs": MODEL_KWARGS.get(k, {})} for k in kinds]
            model = create_model("ensemble", members=members * int(copies)).eval()
        else:
            model = create_model(name, **MODEL_KWARGS.get(name, {})).eval()
        ckpt = build_checkpoint(
            model,
            config={},
            preprocess={"crop_scale": 1.3, "input_size": input_size},
            threshold=0.5,
            epoch=0,
            step=0,
            best_metric={},
        )
        pt = save_checkpoint(ckpt, root / f"{name}.pt")
        onnx_path = root / f"{name}.onnx"
        export_onnx(pt, onnx_path, check=False)
        out[name] = {"torch": pt, "onnx": onnx_path}
    return out


def time_one(predictor, frames: list[bytes], warmup: int = 5) -> dict[str, list[float]]:
    """Per-frame milliseconds of each stage and of the whole path."""
    from facepad.data.images import load_image

    stages: dict[str, list[float]] = {"decode": [], "detect": [], "crop": [], "model": []}
    total, faces = [], 0
    for i, data in enumerate(frames[:warmup] + frames):
        t0 = time.perf_counter()
        rgb = load_image(data)
        t1 = time.perf_counter()
        dets = predictor.detect(rgb)
        t2 = time.perf_counter()
        crops = [predictor.crop(rgb, d.box) for d in dets]
        t3 = time.perf_counter()
        if crops:
            predictor.score_crops(np.stack(crops))
        t4 = time.perf_counter()
        if i < warmup:
            continue
        faces += len(crops)
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key].append(dt * 1000)
        total.append((t4 - t0) * 1000)
    return {"total": total, "faces": [faces], **stages}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=list(MODEL_KWARGS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--paper-widths", action="store_true", help="default (256-sized) widths")
    args = parser.parse_args()
    if args.paper_widths:
        for kwargs in MODEL_KWARGS.values():
            kwargs.pop("widths")

    from facepad.infer.predictor import Predictor

    frames = load_frames(args.frames)
    print(
        f"{len(frames)} frames of 640x480, input {args.input_size}x{args.input_size}, "
        f"{os.cpu_count()} CPUs (shared: quote medians of repeated runs)"
    )
    header = f"{'model':<11} {'backend':<7} {'thr':>3} {'p50 ms':>7} {'p95 ms':>7} {'min ms':>7} "
    header += f"{'decode':>7} {'detect':>7} {'crop':>6} {'model':>7} {'faces':>6}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        models = make_models(Path(tmp), args.models, args.input_size)
        for name, files in models.items():
            for backend in (b for b in args.backends if b in files):
                for threads in args.threads:
                    predictor = Predictor.from_checkpoint(files[backend], backend, threads=threads)
                    t = time_one(predictor, frames)
                    med = {k: statistics.median(v) for k, v in t.items() if k != "faces"}
                    print(
                        f"{name:<11} {backend:<7} {threads:>3} {percentile(t['total'], 50):>7.2f} "
                        f"{percentile(t['total'], 95):>7.2f} {min(t['total']):>7.2f} "
                        f"{med['decode']:>7.2f} "
                        f"{med['detect']:>7.2f} {med['crop']:>6.2f} {med['model']:>7.2f} "
                        f"{t['faces'][0]:>6}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()

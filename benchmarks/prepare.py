"""Throughput of `facepad prepare` on nuaa-dev and of reading the store through StoreDataset.

    .venv/bin/python benchmarks/prepare.py [--nuaa-dev DIR] [--repeats 3] [--workers 2]

Prints: JPEG decode rates (simplejpeg, cv2, PIL) on the 640x480 frames; prepare images/s (all
frames, wall clock including worker start-up); bytes per stored sample; StoreDataset samples/s with
augmentation through a DataLoader with 2 and 0 workers. Each figure is the median of the repeats;
the load average is printed because the machine may be shared.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

from _devdata import DEV_DATA


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def decode_rates(paths: list[Path]) -> dict[str, float]:
    import cv2
    import numpy as np
    import simplejpeg
    from PIL import Image

    from facepad.data.images import load_image

    blobs = [p.read_bytes() for p in paths]
    decoders = {
        "facepad load_image": lambda b: load_image(b),
        "simplejpeg": lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB"),
        "cv2": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR),
        "PIL": lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
    }
    runs: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(3):  # round robin, so a burst of other load hits every decoder alike
        for name, fn in decoders.items():
            t = time.process_time()
            for b in blobs:
                fn(b)
            runs[name].append(len(blobs) / (time.process_time() - t))
    return {name: statistics.median(r) for name, r in runs.items()}


def bench_prepare(nuaa: Path, workers: int, repeats: int, keep: Path):
    """Rates of full prepare runs (fresh folder each), the last store folder, the image count."""
    from facepad.data.manifest import read_manifest
    from facepad.data.prepare import prepare_store

    read = read_manifest(nuaa / "manifest.csv")
    rates = []
    out = keep
    for r in range(repeats):
        out = keep / f"run{r}"
        t = time.perf_counter()
        prepare_store(read, out, dataset_name="nuaa-dev", workers=workers, progress=False)
        rates.append(len(read.samples) / (time.perf_counter() - t))
        print(f"  prepare run {r}: {rates[-1]:.1f} images/s (load {load()})", flush=True)
    return rates, out, len(read.samples)


def cpu_rates(nuaa: Path, store_dir: Path, n: int = 240) -> dict[str, float]:
    """Work per CPU-second (process_time, one process, cv2/torch on one thread): less sensitive to
    other load than wall-clock rates; 2 idle cores would give about twice these."""
    import cv2
    import torch

    from facepad.data.dataset import StoreDataset
    from facepad.data.manifest import read_manifest
    from facepad.data.prepare import _process_sample, _tools

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    samples = read_manifest(nuaa / "manifest.csv").samples[::7][:n]
    settings = {"crop_scale": 1.3, "crop_size": 256, "depth_size": 32, "jpeg_quality": 95,
                "no_mesh_policy": "skip", "min_face_confidence": 0.5}  # fmt: skip
    _tools(settings)  # build the graphs outside the timing, as a worker does once
    t = time.process_time()
    for sample in samples:
        _process_sample(sample, settings)
    out = {"prepare images per CPU-second": len(samples) / (time.process_time() - t)}
    ds = StoreDataset(store_dir, "train", input_size=256, depth_size=32, augment=True)
    ds[0]
    t = time.process_time()
    for k in range(min(len(ds), 1000)):
        ds[k]
    out["StoreDataset augmented items per CPU-second"] = min(len(ds), 1000) / (
        time.process_time() - t
    )
    return out


def bench_read(store_dir: Path, workers: int, input_size: int, repeats: int, batch_size: int = 64):
    """Samples/s of two augmented epochs of the train split through a DataLoader."""
    import torch

    from facepad.data.dataset import StoreDataset
    from facepad.data.store import PreparedStore

    store = PreparedStore(store_dir)
    rates = []
    for _ in range(repeats):
        ds = StoreDataset(store, "train", input_size=input_size, depth_size=32, augment=True)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=batch_size, shuffle=True, num_workers=workers,
            persistent_workers=workers > 0, drop_last=False,
        )  # fmt: skip
        next(iter(loader))  # start workers, open files
        n, t = 0, time.perf_counter()
        for _ in range(2):
            for batch in loader:
                n += len(batch["idx"])
        rates.append(n / (time.perf_counter() - t))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nuaa-dev", type=Path, default=DEV_DATA / "nuaa-dev")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", type=Path, help="reuse this prepared nuaa-dev store: read only")
    args = parser.parse_args()
    if not (args.nuaa_dev / "manifest.csv").is_file():
        raise SystemExit(f"nuaa-dev not found at {args.nuaa_dev}; pass --nuaa-dev DIR")
    print(f"cpus {os.cpu_count()}, load average at start {load()}")

    frames = sorted(args.nuaa_dev.glob("*/*/*.jpg"))[::8]
    for name, rate in decode_rates(frames).items():
        print(
            f"decode 640x480 JPEG, {name}: {rate:.0f} images per CPU-second ({len(frames)} frames)"
        )

    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            out = args.store
        else:
            rates, out, count = bench_prepare(args.nuaa_dev, args.workers, args.repeats, Path(tmp))
            print(
                f"prepare, nuaa-dev {count} images, {args.workers} workers: median "
                f"{statistics.median(rates):.1f} images/s "
                f"(runs: {', '.join(f'{r:.1f}' for r in rates)})"
            )
        from facepad.data.store import PreparedStore

        store = PreparedStore(out)
        shard_bytes = sum(p.stat().st_size for p in (out / "shards").glob("*.bin"))
        depth_bytes = sum(p.stat().st_size for p in (out / "shards").glob("*.depth.npy"))
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        n = len(store)
        print(f"store: {n} samples, {store.meta['counts']['skipped']} skipped")
        print(
            f"bytes per sample: {total / n:.0f} total (JPEG crop {shard_bytes / n:.0f}, "
            f"depth {depth_bytes / n:.0f}); x 625,537 CelebA-Spoof images = "
            f"{total / n * 625_537 / 1e9:.1f} GB"
        )
        for input_size in (256, 128):
            for workers in (2, 0):
                rates = bench_read(out, workers, input_size, args.repeats)
                print(
                    f"read StoreDataset(train, {input_size}, augment) DataLoader batch 64 "
                    f"workers={workers}: median {statistics.median(rates):.0f} samples/s "
                    f"(runs: {', '.join(f'{r:.0f}' for r in rates)}; load {load()})"
                )
        for name, rate in cpu_rates(args.nuaa_dev, out).items():
            print(f"{name}: {rate:.0f} (load {load()})")
    print(f"load average at end {load()}")


if __name__ == "__main__":
    main()

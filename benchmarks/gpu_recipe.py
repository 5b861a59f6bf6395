"""The GPU recipe for real: bf16 autocast, torch.compile, DataLoader workers, on one CUDA device.

Writes a synthetic prepared store at CelebA-Spoof's training size (256x256 JPEG crops of smooth
random textures, 32x32 depth maps; the pixels are not faces, the sizes and formats are the
real ones), trains each model for a couple of short epochs with `celeba_intra_gpu` (the first
epoch includes compilation), and prints per model: samples/s of the last epoch through the whole
training loop (loading, augmentation, forward, backward, AdamW), the model step alone on device
tensors, and peak GPU memory. Needs a CUDA device.

    python benchmarks/gpu_recipe.py --train 8192 --val 1024 --epochs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from facepad.config import load_config
from facepad.train.loop import build_model, train

SHARD = 512


def write_synthetic_store(root: Path, n_train: int, n_val: int, size: int = 256, depth: int = 32):
    """A store in facepad's format: smooth colour textures as crops, blobs as live depth maps."""
    import cv2
    import simplejpeg

    if (root / "store.json").is_file():
        return root
    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    rows, n = [], n_train + n_val
    for shard in range(0, n, SHARD):
        blobs, maps = bytearray(), []
        for i in range(shard, min(shard + SHARD, n)):
            small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            crop = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
            crop = np.clip(crop + rng.normal(0, 6, crop.shape), 0, 255).astype(np.uint8)
            jpeg = simplejpeg.encode_jpeg(crop, quality=95)
            live = i % 2 == 0
            yy, xx = np.mgrid[0:depth, 0:depth] / depth - 0.5
            maps.append(np.clip(255 * (1 - 4 * (xx**2 + yy**2)), 0, 255) * live)
            split = "train" if i < n_train else "val"
            subject = f"s{i // 20}"
            label, attack = ("live", "live") if live else ("spoof", "print")
            rows.append([i, split, f"img{i}.jpg", label, attack, subject, shard // SHARD,
                         len(blobs), len(jpeg)])  # fmt: skip
            blobs += jpeg
        (root / "shards" / f"{shard // SHARD:05d}.bin").write_bytes(bytes(blobs))
        depth_file = root / "shards" / f"{shard // SHARD:05d}.depth.npy"
        np.save(depth_file, np.stack(maps).astype(np.uint8))
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["idx", "split", "path", "label", "attack_type", "subject", "shard",
                         "offset", "length"])  # fmt: skip
        writer.writerows(rows)
    meta = {"format_version": 1, "dataset": "synthetic", "crop_scale": 1.3, "crop_size": size,
            "depth_size": depth}  # fmt: skip
    (root / "store.json").write_text(json.dumps(meta))
    return root


def model_step_rate(config, batch: int, steps: int = 30) -> float:
    """Samples/s of forward + backward + AdamW on device tensors: the loop's ceiling."""
    from facepad.models.losses import PadLoss

    model = build_model(config).cuda().to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.train.compile else model
    loss_fn = PadLoss(**vars(config.train.loss)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size, d = config.data.input_size, config.data.depth_size
    data = {
        "image": torch.rand(batch, 3, size, size, device="cuda").to(
            memory_format=torch.channels_last
        ),
        "live": (torch.rand(batch, device="cuda") > 0.5).float(),
        "depth": torch.rand(batch, 1, d, d, device="cuda"),
    }

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(step_model(data["image"]), data)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["binary_cnn", "depth_unet", "fusion"])
    p.add_argument("--train", type=int, default=8192, help="training samples")
    p.add_argument("--val", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--out", default="/tmp/facepad-gpu")
    p.add_argument("overrides", nargs="*", help="extra config overrides, e.g. model.kwargs.theta=0")
    args = p.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA device"
    out = Path(args.out)
    started = time.perf_counter()
    store = write_synthetic_store(out / "store", args.train, args.val)
    seconds = time.perf_counter() - started
    print(f"synthetic store: {args.train} + {args.val} samples in {seconds:.0f} s")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    rows = []
    for name in args.models:
        config = load_config("celeba_intra_gpu", [
            f"data.store={store}", f"model.name={name}", f"train.epochs={args.epochs}",
            f"data.workers={args.workers}", "train.early_stop_patience=0",
            f"out_dir={out / 'runs'}", f"run_name={name}", "train.device=cuda", *args.overrides,
        ])  # fmt: skip
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        train(config)
        wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2**30
        with open(out / "runs" / name / "metrics.csv") as f:
            epochs = list(csv.DictReader(f))
        loop_rate = float(epochs[-1]["train_samples_per_s"])
        step_rate = model_step_rate(config, config.data.batch_size)
        rows.append((name, float(epochs[0]["epoch_s"]), float(epochs[-1]["epoch_s"]), loop_rate,
                     step_rate, peak, wall))  # fmt: skip
        torch._dynamo.reset()
    print("\n| model | epoch 1 s (compiles) | last epoch s | loop samples/s | model step samples/s "
          "| peak GPU GiB | wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        name, first, last, loop_rate, step_rate, peak, wall = r
        cells = [name, f"{first:.1f}", f"{last:.1f}", f"{loop_rate:.0f}", f"{step_rate:.0f}",
                 f"{peak:.2f}", f"{wall:.0f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

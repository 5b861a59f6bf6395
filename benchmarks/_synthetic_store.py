"""A synthetic prepared store for the benchmarks, in facepad's format: JPEG crops (quality 95, as
prepare writes them) and blob depth maps for the live half. The pixels are not faces; the sizes
and formats are a prepared store's, e.g. CelebA-Spoof's 256x256 crops and 32x32 maps. Crops are
smooth random colour textures with sensor-like noise (61 KB per 256x256 JPEG: slower to decode
than a real store's), or with `photos=True` windows of scikit-image's sample photos (30 KB; a
prepared CelebA-Spoof store measured 20 KB per crop)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SHARD = 512


def texture_crop(rng, size: int) -> np.ndarray:
    """A smooth random colour texture with sensor-like noise (sigma 6)."""
    import cv2

    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    crop = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(crop + rng.normal(0, 6, crop.shape), 0, 255).astype(np.uint8)


def photo_crop(rng, size: int) -> np.ndarray:
    """A random square window of one of scikit-image's sample photos, resized to size."""
    import cv2
    import skimage.data

    photo = getattr(skimage.data, str(rng.choice(["astronaut", "coffee", "chelsea", "rocket"])))()
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w)))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    window = np.ascontiguousarray(photo[y : y + side, x : x + side])
    return cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)


def write_synthetic_store(
    root: Path,
    n_train: int,
    n_val: int,
    size: int = 256,
    depth: int = 32,
    photos: bool = False,
    subsampling: str = "444",
):
    """A store in facepad's format: textures (or photo windows) as crops, blobs as live depth
    maps, JPEG chroma `subsampling` as `prepare --jpeg-subsampling` sets it. An existing store at
    `root` is reused."""
    import simplejpeg

    if (root / "store.json").is_file():
        return root
    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    rows, n = [], n_train + n_val
    for shard in range(0, n, SHARD):
        blobs, maps = bytearray(), []
        for i in range(shard, min(shard + SHARD, n)):
            crop = photo_crop(rng, size) if photos else texture_crop(rng, size)
            jpeg = simplejpeg.encode_jpeg(crop, quality=95, colorsubsampling=subsampling)
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

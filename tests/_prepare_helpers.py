"""Tiny data for the store, prepare and dataset tests: real face photos and hand-written stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facepad.data.records import ReadResult, Sample, SkippedInput


def face_photos() -> dict[str, np.ndarray]:
    """Real face photos shipped inside installed packages, as (H, W, 3) uint8 RGB."""
    import matplotlib
    import skimage.data

    from facepad.data.images import load_image

    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": load_image(grace)}


def write_jpeg(path: Path, rgb: np.ndarray) -> str:
    import simplejpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=90))
    return str(path)


def photo_read_result(folder: Path, copies: int = 3, defects: bool = True) -> ReadResult:
    """Live and spoof samples cut from two real photos (shifted copies), plus broken inputs.

    Each copy is the photo rolled sideways by a few pixels, so samples differ but all hold a face.
    Spoof rows reuse the same photos: prepare never runs the mesh for them.
    """
    samples = []
    for name, rgb in face_photos().items():
        for k in range(copies):
            shifted = np.roll(rgb, 7 * k, axis=1)
            for label, split in (("live", "train"), ("spoof", "train" if k else "test")):
                path = write_jpeg(folder / label / f"{name}_{k}.jpg", shifted)
                attack = "live" if label == "live" else "print"
                samples.append(
                    Sample(path, label, attack, name, split, attributes={"session": str(k)})
                )
    skipped = []
    if defects:
        corrupt = folder / "live" / "corrupt.jpg"
        corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
        truncated = folder / "spoof" / "truncated.jpg"
        full = (folder / "live" / "astronaut_0.jpg").read_bytes()
        truncated.write_bytes(full[: len(full) // 3])
        blank = write_jpeg(folder / "live" / "blank.jpg", np.full((240, 320, 3), 90, np.uint8))
        samples += [
            Sample(str(corrupt), "live", "live", "x", "train"),
            Sample(str(truncated), "spoof", "print", "y", "train"),
            Sample(blank, "live", "live", "z", "val"),
        ]
        skipped.append(SkippedInput(str(folder / "gone.jpg"), "missing_image"))
    return ReadResult(samples=samples, skipped=skipped, counts={"rows": len(samples) + 1})


def write_store(
    root: Path,
    crops: list[np.ndarray],
    depths: list[np.ndarray],
    labels: list[str],
    splits: list[str],
    shard_size: int = 3,
) -> Path:
    """Write a store in the documented format by hand (independent of prepare)."""
    import simplejpeg

    (root / "shards").mkdir(parents=True, exist_ok=True)
    header = "idx,split,path,label,attack_type,subject,shard,offset,length,session\n"
    lines = []
    for shard in range(0, len(crops), shard_size):
        blobs, offset = b"", 0
        for i in range(shard, min(shard + shard_size, len(crops))):
            jpeg = simplejpeg.encode_jpeg(crops[i], quality=100, colorsubsampling="444")
            attack = "live" if labels[i] == "live" else "print"
            lines.append(
                f"{i},{splits[i]},img{i}.jpg,{labels[i]},{attack},s{i % 2},{shard // shard_size},"
                f"{offset},{len(jpeg)},{i % 3}\n"
            )
            blobs += jpeg
            offset += len(jpeg)
        (root / "shards" / f"{shard // shard_size:05d}.bin").write_bytes(blobs)
        stack = np.stack(
            [np.rint(d * 255).astype(np.uint8) for d in depths[shard : shard + shard_size]]
        )
        np.save(root / "shards" / f"{shard // shard_size:05d}.depth.npy", stack)
    (root / "index.csv").write_text(header + "".join(lines))
    meta = {
        "format_version": 1,
        "dataset": "synthetic",
        "crop_scale": 1.3,
        "crop_size": crops[0].shape[0],
        "depth_size": depths[0].shape[0],
    }
    (root / "store.json").write_text(json.dumps(meta))
    return root


def random_store_with_splits(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A store of n random 64 px crops (16 px depth), live and spoof alternating, and a split file
    making the first half val and the rest test: (store, split file)."""
    from facepad.data.multistore import write_split_file

    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)]
    depths = [rng.random((16, 16)).astype(np.float32) for _ in range(n)]
    store = write_store(tmp_path / "store", crops, depths, ["live", "spoof"] * (n // 2),
                        ["train"] * n)  # fmt: skip
    splits = write_split_file(tmp_path / "splits.csv",
                              {i: "val" if i < n // 2 else "test" for i in range(n)})  # fmt: skip
    return store, splits

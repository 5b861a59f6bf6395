"""The prepared store: face crops and depth maps made once, read every epoch.

Layout of a store folder (written by `facepad.data.prepare`):

    store.json              format version, dataset, crop scale/size, depth size, counts
    index.csv               one row per stored sample: idx, split, path, label, attack_type,
                            subject, shard, offset, length, box_source (dataset, detector,
                            detector-fallback, dataset-fallback), then dataset attributes
    shards/NNNNN.bin        the shard's JPEG crops, concatenated
    shards/NNNNN.depth.npy  (n, D, D) uint8 depth maps, rows in index order within the shard
    shards/NNNNN.rows.json  the shard's per-sample results (prepare's resume record)
    skipped.csv             every input left out, with its reason

Why this format: decoding full camera frames every epoch is the training bottleneck (a 1080p JPEG
decodes at ~170/s per core, a 256x256 crop at 4,000-6,000/s), so crops are cut once. JPEG at
quality 95 keeps a 256x256 crop near 20 KB, so CelebA-Spoof's 625k images fit in ~13 GB rather than
~120 GB as raw pixels. Concatenating crops into shards avoids 625k small files; a crop is read by
(shard, offset, length) from a memory map, so random access costs one slice. Depth maps are tiny
(32x32 uint8 = 1 KB) and live in one .npy per shard, memory mapped too. Shards are fixed, ordered
chunks of the sorted sample list, so prepare can write them in parallel and resume after a crash
shard by shard, and readers (DataLoader workers, torchrun ranks) share them read-only. Files are
opened lazily per process and never pickled, so a store object can be sent to worker processes.
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
INDEX_COLUMNS = (
    "idx",
    "split",
    "path",
    "label",
    "attack_type",
    "subject",
    "shard",
    "offset",
    "length",
    "box_source",
)
_INT_COLUMNS = ("idx", "shard", "offset", "length")
# Open shard files kept per process; more would risk the open-file limit on CelebA-Spoof (1,200+).
MAX_OPEN_SHARDS = 64


class StoreError(ValueError):
    """A folder that is not a complete prepared store; the message says how to fix it."""


def shard_name(shard: int) -> str:
    return f"{shard:05d}"


def bin_path(root: Path, shard: int) -> Path:
    return root / "shards" / f"{shard_name(shard)}.bin"


def depth_path(root: Path, shard: int) -> Path:
    return root / "shards" / f"{shard_name(shard)}.depth.npy"


def rows_path(root: Path, shard: int) -> Path:
    return root / "shards" / f"{shard_name(shard)}.rows.json"


class PreparedStore:
    """Read-only access to a prepared store; safe to pickle into DataLoader workers."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        rerun = f"rerun `facepad prepare --out {self.root}` to finish or rebuild it"
        meta_file = self.root / "store.json"
        if not self.root.is_dir():
            raise StoreError(
                f"{self.root}: no such folder; create the store with `facepad prepare`"
            )
        if not meta_file.is_file():
            raise StoreError(f"{self.root}: not a complete prepared store (no store.json); {rerun}")
        try:
            self.meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as e:
            raise StoreError(f"{meta_file}: unreadable ({e}); {rerun}") from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise StoreError(
                f"{meta_file}: store format {self.meta.get('format_version')!r}, this facepad "
                f"reads {FORMAT_VERSION}; {rerun} into a new folder"
            )
        index_file = self.root / "index.csv"
        if not index_file.is_file():
            raise StoreError(f"{self.root}: index.csv missing; {rerun}")
        with index_file.open(newline="") as f:
            self.index: list[dict] = list(csv.DictReader(f))
        for row in self.index:
            for key in _INT_COLUMNS:
                row[key] = int(row[key])
        # A sample's depth row is its rank among its shard's rows (rows of a shard are contiguous).
        self._depth_row: list[int] = []
        last_shard, rank = None, 0
        for row in self.index:
            rank = rank + 1 if row["shard"] == last_shard else 0
            last_shard = row["shard"]
            self._depth_row.append(rank)
        self._check_shards(rerun)
        self._bins: OrderedDict[int, np.ndarray] = OrderedDict()
        self._depths: OrderedDict[int, np.ndarray] = OrderedDict()

    def _check_shards(self, rerun: str) -> None:
        """Every shard's files exist, and no shard is cut short (a full disk, a copy stopped
        halfway): it fails here, naming it, rather than as an undecodable crop hours into a
        training. One pass over the rows, one stat per shard."""
        needed: dict[int, int] = {}  # shard -> bytes its rows need
        for row in self.index:
            end = row["offset"] + row["length"]
            needed[row["shard"]] = max(needed.get(row["shard"], 0), end)
        missing = [
            shard
            for shard in sorted(needed)
            if not (bin_path(self.root, shard).is_file() and depth_path(self.root, shard).is_file())
        ]
        if missing:
            raise StoreError(
                f"{self.root}: shard files missing for shards {missing[:5]}...; {rerun}"
            )
        short = [
            (shard, size, end)
            for shard, end in sorted(needed.items())
            if (size := bin_path(self.root, shard).stat().st_size) < end
        ]
        if short:
            shard, size, end = short[0]
            raise StoreError(
                f"{self.root}: shard {bin_path(self.root, shard)} holds {size} of the {end} bytes "
                f"its index rows need ({len(short)} shard(s) cut short): the store is damaged; "
                "rebuild it with `facepad prepare` into a new folder"
            )

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_bins"], state["_depths"] = OrderedDict(), OrderedDict()  # never pickle open maps
        return state

    @property
    def crop_size(self) -> int:
        return int(self.meta["crop_size"])

    @property
    def depth_size(self) -> int:
        return int(self.meta["depth_size"])

    def indices(self, split: str) -> list[int]:
        """Store indices of one split ("train", "val", "test"), in index order."""
        return [row["idx"] for row in self.index if row["split"] == split]

    def splits(self) -> list[str]:
        return sorted({row["split"] for row in self.index})

    def read_crop_bytes(self, i: int) -> bytes:
        row = self.index[i]
        data = _cached(
            self._bins, row["shard"], lambda s: np.memmap(bin_path(self.root, s), np.uint8, "r")
        )
        return data[row["offset"] : row["offset"] + row["length"]].tobytes()

    def read_crop(self, i: int) -> np.ndarray:
        """(S, S, 3) uint8 RGB crop of sample `i`."""
        import simplejpeg

        try:
            return simplejpeg.decode_jpeg(self.read_crop_bytes(i), colorspace="RGB")
        except ValueError as e:
            row = self.index[i]
            raise StoreError(
                f"{self.root}: the crop of sample {i} ({row['path']}, shard {row['shard']}) does "
                f"not decode ({e}): the store is damaged; rebuild it with `facepad prepare` into "
                "a new folder"
            ) from None

    def read_depth(self, i: int) -> np.ndarray:
        """(D, D) float32 depth map in [0, 1] of sample `i` (all zeros for spoofs)."""
        row = self.index[i]
        maps = _cached(
            self._depths, row["shard"], lambda s: np.load(depth_path(self.root, s), mmap_mode="r")
        )
        return maps[self._depth_row[i]].astype(np.float32) / 255.0

    def columns(self, split: str | None = None) -> dict[str, np.ndarray]:
        """Per-sample columns of a split (or all) for evaluation: `idx`, `is_live` (bool),
        `label`, `attack_type`, `subject`, `path`, and every attribute column, in index order."""
        rows = self.index if split is None else [r for r in self.index if r["split"] == split]
        names = [c for c in (self.index[0].keys() if self.index else INDEX_COLUMNS)]
        skip = {"shard", "offset", "length", "idx"}
        out: dict[str, np.ndarray] = {"idx": np.array([r["idx"] for r in rows], dtype=np.int64)}
        out["is_live"] = np.array([r["label"] == "live" for r in rows], dtype=bool)
        for name in names:
            if name not in skip:
                out[name] = np.array([r[name] for r in rows], dtype=object)
        return out


def _cached(cache: OrderedDict, key: int, opener) -> np.ndarray:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = opener(key)
    cache[key] = value
    if len(cache) > MAX_OPEN_SHARDS:
        cache.popitem(last=False)
    return value

"""Tiny prepared stores with many subjects, for the benchmark tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from _prepare_helpers import write_store


def subject_store(
    root: Path, subjects: dict[str, str], per_class: int = 2, size: int = 32, name: str = "tiny"
) -> Path:
    """A store with `per_class` live and spoof crops per subject; `subjects` maps subject -> split.

    Live crops are bright with a bright depth map, spoofs dark with stripes and zero depth, so a
    model learns them in one epoch.
    """
    crops, depths, labels, splits, owners = [], [], [], [], []
    rng = np.random.default_rng(len(subjects))
    for subject, split in subjects.items():
        for label in ("live", "spoof") * per_class:
            crop = np.full((size, size, 3), 190 if label == "live" else 60, np.uint8)
            if label == "spoof":
                crop[::4] = 120
            crops.append(np.clip(crop + rng.integers(0, 20, crop.shape), 0, 255).astype(np.uint8))
            depths.append(np.full((8, 8), 0.8 if label == "live" else 0.0, np.float32))
            labels.append(label)
            splits.append(split)
            owners.append(subject)
    write_store(root, crops, depths, labels, splits, shard_size=8)
    index = root / "index.csv"
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    for row, subject in zip(rows, owners, strict=True):
        row["subject"] = subject
    with open(index, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    meta = json.loads((root / "store.json").read_text())
    (root / "store.json").write_text(json.dumps({**meta, "dataset": name}))
    return root


def three_stores(tmp: Path) -> dict[str, Path]:
    """A: train/val/test; B: train/val only (like replay-attack-dev); C: train/val/test."""
    a = {f"a{i}": s for i, s in enumerate(["train"] * 4 + ["val", "test", "test"])}
    b = {f"b{i}": s for i, s in enumerate(["train"] * 5 + ["val"] * 3)}
    c = {f"c{i}": s for i, s in enumerate(["train"] * 3 + ["val", "test"])}
    return {
        "A": subject_store(tmp / "A", a, name="set_a"),
        "B": subject_store(tmp / "B", b, name="set_b"),
        "C": subject_store(tmp / "C", c, name="set_c"),
    }

"""Tiny CelebA-Spoof trees with every known defect, for the reader tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def vector(spoof_type: int, spoof: int, illumination: int = 0, environment: int = 0) -> list[int]:
    """A 44-int CelebA-Spoof label vector."""
    attrs = [0] * 40 if spoof else [1, 0] * 20
    return attrs + [spoof_type, illumination, environment, spoof]


def write_image(path: Path, size: tuple[int, int] = (16, 12)) -> None:
    """A small image; the format follows the extension (PNG/JPEG mix as in the real set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.full((size[1], size[0], 3), 128, np.uint8)
    Image.fromarray(rgb).save(path)


# key -> (vector, box text or None for no _BB.txt, image written?)
TRAIN = {
    "Data/train/1001/live/000001.jpg": (vector(0, 0), "10 20 100 120 0.99", True),
    "Data/train/1001/spoof/000002.png": (vector(1, 1, 2, 1), "30 30 60 80 0.9", True),
    # live folder, labelled spoof (replay PC): the JSON wins
    "Data/train/1002/live/000003.jpg": (vector(7, 1, 3, 2), "0 0 224 224 0.5", True),
    "Data/train/1002/spoof/000004.jpg": (vector(3, 1, 4, 1), "", True),  # empty _BB.txt
    "Data/train/1003/spoof/000005.jpg": (vector(9, 1, 1, 1), "-10 -5 50 60 0.9", True),
    "Data/train/1003/live/000006.jpg": (vector(0, 0), "1 1 5 5 1", False),  # image missing
    "Data/train/1004/live/000007.jpg": (vector(0, 0)[:43], "1 1 5 5 1", True),  # 43 ints
    "Data/train/1005/spoof/000008.jpg": (vector(4, 1, 1, 2), "5 5 -20 30 0.8", True),
    "Data/train/1006/live/000009.jpg": (vector(0, 0), None, True),  # no _BB.txt
}
TEST = {
    "Data/test/1001/live/000010.jpg": (vector(0, 0), "1 2 3 4 0.9", True),  # 1001 also in train
    "Data/test/2001/spoof/000011.png": (vector(6, 1, 2, 2), "50 50 100 100 0.9", True),
    "Data/test/2001/live/000012.jpg": (vector(0, 0), "50 50 100 100 0.9", True),
}


def write_tree(root: Path, protocol: str = "intra_test", indent: int | None = None) -> Path:
    """Write TRAIN/TEST under `root` (images, boxes, label JSONs of `protocol`); returns root."""
    for entries in (TRAIN, TEST):
        for key, (_, box, exists) in entries.items():
            image = root / key
            if exists:
                write_image(image)
            if box is not None:
                image.parent.mkdir(parents=True, exist_ok=True)
                (image.parent / f"{image.stem}_BB.txt").write_text(box + ("\n" if box else ""))
    metas = root / "metas" / protocol
    metas.mkdir(parents=True, exist_ok=True)
    for name, entries in (("train", TRAIN), ("test", TEST)):
        labels = {key: vec for key, (vec, _, _) in entries.items()}
        (metas / f"{name}_label.json").write_text(json.dumps(labels, indent=indent))
    return root

"""Torch dataset over a prepared store, with numpy/cv2 augmentation (no torchvision).

Augmentation (facepad.data.augment) moves the image and its depth map together, so the target
stays on the face; colour and capture-side steps touch the image only. With
`Augment.simulated_attacks > 0` the training split also holds that many extra items per live crop:
a random live crop re-rendered as a print or replay, labelled spoof with an all-zero depth map.
Random draws come from torch's generator, which DataLoader seeds differently per worker and epoch.
With `decode_only=True` (training with data.augment_device=device) an item is the stored crop as
decoded, uint8 (S, S, 3), and the stored depth map: `facepad.data.device_augment` augments and
resizes whole batches on the training device.
The store opens its files lazily in each process, so this is safe with DataLoader workers and
torchrun.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facepad.data.augment import Augment, augment_pair, simulate_attack
from facepad.data.crop import resize_square
from facepad.data.store import PreparedStore


class StoreDataset(torch.utils.data.Dataset):
    """Items: `image` (3, H, W) float32 RGB in [0, 1], `live` float32 scalar, `depth` (1, d, d)
    float32 in [0, 1], `idx` int (the store index; for a simulated spoof, its live source's)."""

    def __init__(
        self,
        store: PreparedStore | str | Path,
        split: str,
        input_size: int = 256,
        depth_size: int = 32,
        augment: bool | Augment = False,
        decode_only: bool = False,
    ):
        if decode_only and augment:
            raise ValueError(
                "StoreDataset(decode_only=True) leaves augmentation to the training device "
                "(facepad.data.device_augment): pass augment=False"
            )
        self.decode_only = decode_only
        self.store = store if isinstance(store, PreparedStore) else PreparedStore(store)
        self.split = split
        self.indices = self.store.indices(split)
        if not self.indices:
            raise ValueError(
                f"{self.store.root}: split {split!r} is empty; splits in this store: "
                f"{', '.join(self.store.splits()) or 'none'}"
            )
        self.input_size = int(input_size)
        self.depth_size = int(depth_size)
        self.augment = Augment() if augment is True else (augment or None)
        self.live_indices = [i for i in self.indices if self.store.index[i]["label"] == "live"]
        share = self.augment.simulated_attacks if self.augment is not None else 0.0
        self.n_simulated = round(share * len(self.live_indices))
        self._live_of: dict[str, list[int]] = {}  # live crops by dataset
        for i in self.live_indices:
            self._live_of.setdefault(self._dataset(i), []).append(i)
        # cv2 single-threaded here, before DataLoader forks: the workers are the parallelism, and
        # calling cv2.setNumThreads inside a forked worker can deadlock on the parent's pool
        # (seen: a worker stuck in pthread_cond_destroy).
        import cv2

        cv2.setNumThreads(1)

    def _dataset(self, i: int) -> str:
        return self.store.index[i].get("dataset", "")

    def simulated_row(self, j: int) -> dict[str, str]:
        """Label and dataset of simulated spoof j (item len(indices) + j): it re-renders a live
        crop of the dataset of live crop j * live / simulated, so each dataset keeps its share."""
        source = self.live_indices[int(j * len(self.live_indices) / self.n_simulated)]
        return {"label": "spoof", "dataset": self._dataset(source)}

    def __len__(self) -> int:
        return len(self.indices) + self.n_simulated

    def __getitem__(self, k: int) -> dict:
        if self.decode_only:
            return self._stored_item(self.indices[k])
        simulated = k >= len(self.indices)
        seed = int(torch.randint(0, 2**31 - 1, ()).item()) if self.augment is not None else 0
        if simulated:  # any live crop of its dataset, drawn afresh each time the item is read
            pool = self._live_of[self.simulated_row(k - len(self.indices))["dataset"]]
            i = pool[seed % len(pool)]
        else:
            i = self.indices[k]
        crop = self.store.read_crop(i)  # (S, S, 3) uint8
        depth = self.store.read_depth(i)  # (D, D) float32
        if self.augment is not None:
            crop, depth = augment_pair(
                crop, depth, self.input_size, self.depth_size, self.augment, seed
            )
            if simulated:
                crop = simulate_attack(crop, np.random.default_rng(seed + 1))
                depth = np.zeros_like(depth)
        else:
            crop = resize_square(crop, self.input_size)
            depth = resize_square(depth, self.depth_size)
        # numpy, not torch ops: torch's intra-op threads only contend inside DataLoader workers.
        image = np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32)  # (3, H, W)
        image *= np.float32(1.0 / 255.0)
        return {
            "image": torch.from_numpy(image),
            "live": torch.tensor(
                0.0 if simulated or self.store.index[i]["label"] != "live" else 1.0
            ),
            "depth": torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None],
            "idx": i,
        }

    def _stored_item(self, i: int) -> dict:
        """`crop` uint8 (S, S, 3) and `depth` (1, D, D) at the store's sizes (a smaller member of
        a MultiStore is resized up to them, so batches collate), `live`, `idx`."""
        crop, depth = self.store.read_crop(i), self.store.read_depth(i)
        if crop.shape[0] != self.store.crop_size:
            crop = resize_square(crop, self.store.crop_size)
        if depth.shape[0] != self.store.depth_size:
            depth = resize_square(depth, self.store.depth_size)
        return {
            "crop": torch.from_numpy(np.ascontiguousarray(crop)),
            "live": torch.tensor(1.0 if self.store.index[i]["label"] == "live" else 0.0),
            "depth": torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None],
            "idx": i,
        }

    def labels(self) -> dict[str, np.ndarray]:
        """Per-sample columns of this split in item order (`is_live`, `attack_type`, attributes)."""
        return split_columns(self.store, self.split)


def split_columns(store: PreparedStore | str | Path, split: str) -> dict[str, np.ndarray]:
    """`is_live` (bool), `attack_type`, `subject`, `path`, `idx` and attribute columns of a split,
    in the same order as `StoreDataset(store, split, ...)` items; evaluation needs them."""
    store = store if isinstance(store, PreparedStore) else PreparedStore(store)
    return store.columns(split)

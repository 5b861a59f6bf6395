"""Torch dataset over a prepared store, with numpy/cv2 augmentation (no torchvision).

Augmentation draws one geometric transform (mild random resized crop + horizontal flip) in
normalised crop coordinates and applies it to the image AND its depth map, so the target stays
aligned with the face; colour jitter (brightness, contrast, saturation) touches the image only.
Random draws come from torch's generator, which DataLoader seeds differently per worker and epoch.
The store opens its files lazily in each process, so this is safe with DataLoader workers and
torchrun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facepad.data.crop import resize_square
from facepad.data.store import PreparedStore


@dataclass(frozen=True)
class Augment:
    """Ranges of the random transforms; the defaults are mild on purpose (faces are pre-cropped)."""

    area: tuple[float, float] = (0.75, 1.0)  # share of the crop kept
    aspect: tuple[float, float] = (0.9, 1.1)  # width / height of the kept window
    flip: float = 0.5
    brightness: float = 0.2  # factor in [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2


class StoreDataset(torch.utils.data.Dataset):
    """Items: `image` (3, H, W) float32 RGB in [0, 1], `live` float32 scalar, `depth` (1, d, d)
    float32 in [0, 1], `idx` int (the store index)."""

    def __init__(
        self,
        store: PreparedStore | str | Path,
        split: str,
        input_size: int = 256,
        depth_size: int = 32,
        augment: bool | Augment = False,
    ):
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
        # cv2 single-threaded here, before DataLoader forks: the workers are the parallelism, and
        # calling cv2.setNumThreads inside a forked worker can deadlock on the parent's pool
        # (seen: a worker stuck in pthread_cond_destroy).
        import cv2

        cv2.setNumThreads(1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict:
        i = self.indices[k]
        crop = self.store.read_crop(i)  # (S, S, 3) uint8
        depth = self.store.read_depth(i)  # (D, D) float32
        if self.augment is not None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
            crop, depth = augment_pair(
                crop, depth, self.input_size, self.depth_size, self.augment, seed
            )
        else:
            crop = resize_square(crop, self.input_size)
            depth = resize_square(depth, self.depth_size)
        # numpy, not torch ops: torch's intra-op threads only contend inside DataLoader workers.
        image = np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32)  # (3, H, W)
        image *= np.float32(1.0 / 255.0)
        return {
            "image": torch.from_numpy(image),
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


def window_matrix(window: tuple[float, float, float, float], flip: bool, src: int, dst: int):
    """(2, 3) affine taking src-pixel coordinates of a window (u0, v0, w, h), given as fractions
    of the square, to a dst x dst image; the same window gives aligned image and depth."""
    u0, v0, w, h = window
    sx, sy = dst / (w * src), dst / (h * src)
    # pixel centre x -> fraction (x + 0.5) / src -> window fraction -> dst pixel centre
    ax, bx = sx, sx * (0.5 - u0 * src) - 0.5
    if flip:
        ax, bx = -sx, dst - 1 - bx
    ay, by = sy, sy * (0.5 - v0 * src) - 0.5
    return np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)


def augment_pair(
    crop: np.ndarray,
    depth: np.ndarray,
    input_size: int,
    depth_size: int,
    aug: Augment,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Random resized crop + flip of crop (S, S, 3) and depth (D, D) together; colour jitter."""
    import cv2

    rng = np.random.default_rng(seed)
    area = rng.uniform(*aug.area)
    aspect = np.exp(rng.uniform(np.log(aug.aspect[0]), np.log(aug.aspect[1])))
    w, h = min(1.0, np.sqrt(area * aspect)), min(1.0, np.sqrt(area / aspect))
    u0, v0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    flip = bool(rng.random() < aug.flip)
    # The image window snaps to whole crop pixels, so a slice + cv2.resize does the image
    # (several times faster than warpAffine); the depth map takes the same snapped window.
    size = crop.shape[0]
    cw, ch = max(1, round(w * size)), max(1, round(h * size))
    x0, y0 = min(round(u0 * size), size - cw), min(round(v0 * size), size - ch)
    window = (x0 / size, y0 / size, cw / size, ch / size)
    interp = cv2.INTER_AREA if min(cw, ch) > 1.5 * input_size else cv2.INTER_LINEAR
    image = cv2.resize(crop[y0 : y0 + ch, x0 : x0 + cw], (input_size, input_size),
                       interpolation=interp)  # fmt: skip
    if flip:
        image = cv2.flip(image, 1)
    m_dep = window_matrix(window, flip, depth.shape[0], depth_size)
    depth = cv2.warpAffine(depth, m_dep, (depth_size, depth_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip

    b = rng.uniform(1 - aug.brightness, 1 + aug.brightness)
    c = rng.uniform(1 - aug.contrast, 1 + aug.contrast)
    s = rng.uniform(1 - aug.saturation, 1 + aug.saturation)
    # Brightness, then contrast around the mean grey, then saturation towards each pixel's grey,
    # folded into one 3x4 colour matrix: out = s*c*b*I + (1-s)*c*b*grey(I) + (1-c)*b*mean_grey.
    weights = np.array([0.299, 0.587, 0.114])
    mean_grey = float(np.dot(cv2.mean(image)[:3], weights))
    matrix = np.zeros((3, 4))
    matrix[:, :3] = (1 - s) * c * b * weights[None, :] + s * c * b * np.eye(3)
    matrix[:, 3] = (1 - c) * b * mean_grey
    return cv2.transform(image, matrix), depth  # uint8, saturated

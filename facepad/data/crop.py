"""Square face crops, shared by prepare and inference so train and serve see the same pixels.

Geometry: a square of side `round(scale * max(w, h))` centred on the box centre, cut from the
image and padded with black (constant 0) where it leaves the image, then resized to `size`
(INTER_AREA when shrinking, INTER_LINEAR when enlarging). Black padding rather than edge
replication: replicated edges smear the frame border (bezels, photo edges) into long streaks,
inventing texture a classifier could learn as a shortcut; a flat black border is the same for
live and spoof.

Coordinates follow OpenCV: pixel centres at integers. The affine matrix maps image (x, y) to crop
(u, v) as cv2.resize does: u = s * (x - x0 + 0.5) - 0.5, with s = size / side. Never imports torch.
"""

from __future__ import annotations

import math

import numpy as np

Box = tuple[float, float, float, float]  # (x, y, w, h) in pixels


def crop_window(box: Box, scale: float = 1.3) -> tuple[int, int, int]:
    """The square (x0, y0, side) in image pixels that `square_crop` cuts for `box`."""
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"invalid face box {box!r}: need finite x, y and w, h > 0")
    if scale <= 0:
        raise ValueError(f"crop scale must be > 0, got {scale}")
    side = max(1, int(round(scale * max(w, h))))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = int(math.floor(cx - side / 2.0 + 0.5))
    y0 = int(math.floor(cy - side / 2.0 + 0.5))
    return x0, y0, side


def crop_matrix(box: Box, scale: float = 1.3, size: int = 256) -> np.ndarray:
    """(2, 3) float64 affine mapping image pixel coordinates to crop pixel coordinates."""
    x0, y0, side = crop_window(box, scale)
    s = size / side
    return np.array(
        [[s, 0.0, s * (0.5 - x0) - 0.5], [0.0, s, s * (0.5 - y0) - 0.5]], dtype=np.float64
    )


def square_crop(rgb: np.ndarray, box: Box, scale: float = 1.3, size: int = 256) -> np.ndarray:
    """Cut the square around `box`, black-padded at the borders, resized to (size, size, 3)."""
    return square_crop_with_matrix(rgb, box, scale, size)[0]


def square_crop_with_matrix(
    rgb: np.ndarray, box: Box, scale: float = 1.3, size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """`square_crop` plus the (2, 3) affine it applied, to map landmarks or boxes into the crop."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    x0, y0, side = crop_window(box, scale)
    height, width = rgb.shape[:2]
    # Copy only the part inside the image, then pad: cheap even for very large photos.
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + side, width), min(y0 + side, height)
    square = np.zeros((side, side, 3), dtype=np.uint8)  # (side, side, 3)
    if ix1 > ix0 and iy1 > iy0:
        square[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = rgb[iy0:iy1, ix0:ix1]
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        square = cv2.resize(square, (size, size), interpolation=interp)
    return square, crop_matrix(box, scale, size)


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def resize_square(array: np.ndarray, size: int) -> np.ndarray:
    """Resize a square image or map to size x size (area when shrinking, linear when growing).

    The one resize between a stored crop and the model input, used by the Dataset (no
    augmentation) and the Predictor alike.
    """
    import cv2

    if array.shape[0] == size and array.shape[1] == size:
        return array
    interp = cv2.INTER_AREA if array.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(array, (size, size), interpolation=interp)


def model_input_crop(
    rgb: np.ndarray, box: Box, scale: float, crop_size: int, input_size: int
) -> np.ndarray:
    """The crop a model sees at inference: cut at the prepared store's crop size, then resized to
    the model input exactly as the Dataset does, so train and serve see the same geometry."""
    return resize_square(square_crop(rgb, box, scale=scale, size=crop_size), input_size)

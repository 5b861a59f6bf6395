"""Presentation-attack media simulated on an RGB image: print, screen replay, border or bezel.

Shared by `facepad demo` (which builds whole synthetic attacks from them) and the training
augmentation (which turns live training crops into extra simulated spoofs). Each takes a float32
or uint8 (H, W, 3) image in 0..255 and a numpy Generator, and returns float32 (unclipped).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported inside functions: `facepad --help` stays fast
    import numpy as np


def plane_wave(h: int, w: int, angle: float, period: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of a plane wave (H, W) float32 along `angle` with `period` pixels, built from
    1-D factors (cos(a + b) = cos a cos b - sin a sin b) as two (H, 2) @ (2, W) products instead
    of a trigonometric call per pixel, so simulated attacks stay cheap enough for on-the-fly use."""
    import numpy as np

    k = 2 * np.pi / period
    ax = np.arange(w, dtype=np.float64) * k * np.cos(angle)
    ay = np.arange(h, dtype=np.float64) * k * np.sin(angle)
    along_x = np.empty((2, w), np.float32)
    along_x[0], along_x[1] = np.cos(ax), np.sin(ax)
    along_y = np.empty((h, 3), np.float32)  # columns cos, sin, -sin of ay
    along_y[:, 0], along_y[:, 1] = np.cos(ay), np.sin(ay)
    along_y[:, 2] = -along_y[:, 1]
    return along_y[:, [0, 2]] @ along_x, along_y[:, [1, 0]] @ along_x


def halftone(img: np.ndarray, rng) -> np.ndarray:
    """Multiply by a rotated dot screen: the print's halftone, weak or strong."""
    import numpy as np

    h, w = img.shape[:2]
    period, angle = rng.uniform(2.5, 5.0), rng.uniform(0, np.pi / 2)
    cos_u, _ = plane_wave(h, w, angle, period)
    cos_v, _ = plane_wave(h, w, angle + np.pi / 2, period)
    dots = 0.5 + 0.25 * (cos_u + cos_v)  # (H, W) in [0, 1]
    amount = np.float32(rng.uniform(0.04, 0.25))
    return times_map(img, 1 - amount * dots)


def times_map(img: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) image times an (H, W) map, per channel (cv2: 5x numpy's broadcast)."""
    import cv2
    import numpy as np

    factor = factor.astype(np.float32, copy=False)
    return cv2.multiply(img.astype(np.float32, copy=False), cv2.merge([factor] * 3))


@functools.cache
def _grain_field() -> np.ndarray:
    """(512, 512) float32 unit normal noise blurred by sigma 1.5, made once per process."""
    import cv2
    import numpy as np

    noise = np.random.default_rng(2024).standard_normal((512, 512), np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def paper_grain(h: int, w: int, rng) -> np.ndarray:
    """(H, W) float32 paper grain: unit normal noise blurred by sigma 1.5, a random window of one
    cached 512 x 512 field (a tenth of drawing it afresh)."""
    import cv2
    import numpy as np

    if h > 512 or w > 512:
        return cv2.GaussianBlur(rng.standard_normal((h, w), np.float32), (0, 0), 1.5)
    y, x = rng.integers(0, 512 - h + 1), rng.integers(0, 512 - w + 1)
    return _grain_field()[y : y + h, x : x + w]


def print_medium(img: np.ndarray, rng) -> np.ndarray:
    """Paper print: faded, desaturated, yellowish, halftone dots and paper grain."""
    import cv2
    import numpy as np

    s = rng.uniform(0.4, 0.85)  # saturation kept
    black, white = rng.uniform(15, 45), rng.uniform(215, 245)
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.86, 0.97)])
    # towards each pixel's grey (the channel mean), then the paper's levels and tint, as one
    # 3 x 4 colour matrix: out_c = tint_c * (black + (white - black) / 255 * (s I + (1 - s) grey))
    mix = s * np.eye(3) + (1 - s) / 3
    matrix = np.hstack([mix * (white - black) / 255, np.full((3, 1), black)]) * tint[:, None]
    f = cv2.transform(np.ascontiguousarray(img, dtype=np.float32), matrix.astype(np.float32))
    f = halftone(f, rng)
    grain = paper_grain(*f.shape[:2], rng) * np.float32(rng.uniform(2, 7))
    return cv2.add(f, cv2.merge([grain] * 3))


def screen_medium(img: np.ndarray, rng) -> np.ndarray:
    """Screen replay: gamma and blue cast, RGB sub-pixel stripes and a moire wave."""
    import cv2
    import numpy as np

    h, w = img.shape[:2]
    gamma = rng.uniform(0.6, 1.0)
    if img.dtype == np.uint8:  # the display's gamma as a look-up table
        f = cv2.LUT(img, 255 * (np.arange(256, dtype=np.float32) / 255) ** np.float32(gamma))
    else:
        f = 255 * (img.astype(np.float32) / 255) ** gamma
    tint = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.92, 1.0), 1.0], np.float32)
    pitch = int(rng.integers(3, 5))
    stripes = np.full((w, 3), 1 - rng.uniform(0.05, 0.3), np.float32)
    for c in range(3):
        stripes[c::pitch, c] = 1.0
    rows = np.ones(h, np.float32)
    rows[::pitch] = 1 - rng.uniform(0.05, 0.25)  # dark gaps between pixel rows
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 25)
    _, wave = plane_wave(h, w, angle, period)
    moire = 1 + np.float32(rng.uniform(0.02, 0.1)) * wave
    # sub-pixels, pixel rows and tint are separable: one outer product makes the (H, W, 3) mask
    mask = np.outer(rows, (stripes * tint).ravel()).reshape(h, w, 3)
    f = cv2.multiply(np.ascontiguousarray(f, dtype=np.float32), mask)
    return times_map(f, moire) + np.float32(rng.uniform(5, 25))  # a screen glows


def add_border(f, mask, margin_x, margin_y, colour):
    """Pad image and mask by a frame of `colour` (a photo's white border, a screen's bezel)."""
    import numpy as np

    h, w = f.shape[:2]
    out = np.empty((h + 2 * margin_y, w + 2 * margin_x, 3), np.float32)
    out[:] = colour
    out[margin_y : margin_y + h, margin_x : margin_x + w] = f
    m = np.ones(out.shape[:2], np.float32)
    m[margin_y : margin_y + h, margin_x : margin_x + w] = mask
    return out, m

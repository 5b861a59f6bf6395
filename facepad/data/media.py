"""Presentation-attack media simulated on an RGB image: print, screen replay, border or bezel.

Shared by `facepad demo` (which builds whole synthetic attacks from them) and the training
augmentation (which turns live training crops into extra simulated spoofs). Each takes a float32
or uint8 (H, W, 3) image in 0..255 and a numpy Generator, and returns float32 (unclipped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported inside functions: `facepad --help` stays fast
    import numpy as np


def plane_wave(h: int, w: int, angle: float, period: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of a plane wave (H, W) float32 along `angle` with `period` pixels, built from
    1-D factors (cos(a + b) = cos a cos b - sin a sin b): a few outer products instead of a
    trigonometric call per pixel, so simulated attacks stay cheap enough for on-the-fly use."""
    import numpy as np

    k = 2 * np.pi / period
    ax = np.arange(w, dtype=np.float64) * k * np.cos(angle)
    ay = np.arange(h, dtype=np.float64) * k * np.sin(angle)
    cx, sx = np.cos(ax).astype(np.float32), np.sin(ax).astype(np.float32)
    cy, sy = np.cos(ay).astype(np.float32), np.sin(ay).astype(np.float32)
    cos = np.outer(cy, cx) - np.outer(sy, sx)
    sin = np.outer(sy, cx) + np.outer(cy, sx)
    return cos, sin


def halftone(img: np.ndarray, rng) -> np.ndarray:
    """Multiply by a rotated dot screen: the print's halftone, weak or strong."""
    import numpy as np

    h, w = img.shape[:2]
    period, angle = rng.uniform(2.5, 5.0), rng.uniform(0, np.pi / 2)
    cos_u, _ = plane_wave(h, w, angle, period)
    cos_v, _ = plane_wave(h, w, angle + np.pi / 2, period)
    dots = 0.5 + 0.25 * (cos_u + cos_v)  # (H, W) in [0, 1]
    amount = np.float32(rng.uniform(0.04, 0.25))
    return img * (1 - amount * dots[:, :, None])


def print_medium(img: np.ndarray, rng) -> np.ndarray:
    """Paper print: faded, desaturated, yellowish, halftone dots and paper grain."""
    import cv2
    import numpy as np

    f = img.astype(np.float32)
    grey = (f[:, :, 0:1] + f[:, :, 1:2] + f[:, :, 2:3]) / 3  # f.mean(axis=2): 10x slower
    f = grey + (f - grey) * rng.uniform(0.4, 0.85)
    black, white = rng.uniform(15, 45), rng.uniform(215, 245)
    f = black + f * (white - black) / 255
    f = f * np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.86, 0.97)], np.float32)
    f = halftone(f, rng)
    grain = cv2.GaussianBlur(rng.normal(0, 1, f.shape[:2]).astype(np.float32), (0, 0), 1.5)
    return f + grain[:, :, None] * rng.uniform(2, 7)


def screen_medium(img: np.ndarray, rng) -> np.ndarray:
    """Screen replay: gamma and blue cast, RGB sub-pixel stripes and a moire wave."""
    import numpy as np

    h, w = img.shape[:2]
    f = 255 * (img.astype(np.float32) / 255) ** rng.uniform(0.6, 1.0)
    f = f * np.array([rng.uniform(0.85, 1.0), rng.uniform(0.92, 1.0), 1.0], np.float32)
    pitch = int(rng.integers(3, 5))
    stripes = np.ones((1, w, 3), np.float32) * (1 - rng.uniform(0.05, 0.3))
    for c in range(3):
        stripes[0, c::pitch, c] = 1.0
    rows = np.ones((h, 1, 1), np.float32)
    rows[::pitch] = 1 - rng.uniform(0.05, 0.25)  # dark gaps between pixel rows
    f = f * stripes * rows
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 25)
    _, wave = plane_wave(h, w, angle, period)
    f = f * (1 + np.float32(rng.uniform(0.02, 0.1)) * wave[:, :, None])
    return f + rng.uniform(5, 25)  # a screen glows: black is never black


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

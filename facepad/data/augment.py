"""Training augmentation of stored face crops (numpy + cv2, no torchvision).

Three families, each drawn from one seeded numpy Generator per item:
- geometry: a mild random resized crop, flip and small rotation, applied to the image AND its depth
  map so the target stays on the face;
- capture: what another camera would do to the same face (colour, gamma, white balance, blur,
  sensor noise, JPEG re-compression, down-and-up scaling). A model that generalises across cameras
  must not read these as liveness cues;
- simulated attacks: a live crop re-rendered as a print or a screen replay of itself (the same
  media simulators `facepad demo` uses), optionally with the medium's border in view; the dataset
  adds these as extra spoof samples with all-zero depth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and cv2 are imported inside functions: `facepad --help` stays fast
    import numpy as np


@dataclass(frozen=True)
class Augment:
    """Ranges and probabilities of the random transforms; defaults are mild (faces are cropped)."""

    area: tuple[float, float] = (0.75, 1.0)  # share of the crop kept
    aspect: tuple[float, float] = (0.9, 1.1)  # width / height of the kept window
    flip: float = 0.5
    brightness: float = 0.2  # factor in [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2
    rotate: float = 0.0  # max |angle| in degrees, drawn with probability 0.5
    capture: float = 0.0  # probability scale of the capture-side steps; 0 = off
    exposure: float = 0.0  # probability of a strong exposure change (another camera's AE)
    sharpness: float = 0.0  # probability of another camera's focus: blurred or sharpened
    simulated_attacks: float = 0.0  # extra simulated spoofs, as a fraction of live crops


def training_augment(data_config) -> Augment | None:
    """The Augment a training split gets from `data.*` settings (None when data.augment is off)."""
    if not data_config.augment:
        return None
    return Augment(
        rotate=float(data_config.rotate),
        capture=float(data_config.capture_aug),
        exposure=float(data_config.exposure_aug),
        sharpness=float(data_config.sharpness_aug),
        simulated_attacks=float(data_config.simulated_attacks),
    )


def window_matrix(window: tuple[float, float, float, float], flip: bool, src: int, dst: int):
    """(2, 3) affine taking src-pixel coordinates of a window (u0, v0, w, h), given as fractions
    of the square, to a dst x dst image; the same window gives aligned image and depth."""
    import numpy as np

    u0, v0, w, h = window
    sx, sy = dst / (w * src), dst / (h * src)
    # pixel centre x -> fraction (x + 0.5) / src -> window fraction -> dst pixel centre
    ax, bx = sx, sx * (0.5 - u0 * src) - 0.5
    if flip:
        ax, bx = -sx, dst - 1 - bx
    ay, by = sy, sy * (0.5 - v0 * src) - 0.5
    return np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)


def _affine3(matrix):
    """A (2, 3) affine as (3, 3), so affines compose by matrix product."""
    import numpy as np

    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _rotation(angle: float, size: int):
    """(3, 3) rotation by `angle` degrees about the centre of a size x size image."""
    import cv2

    c = (size - 1) / 2
    return _affine3(cv2.getRotationMatrix2D((c, c), angle, 1.0))


def augment_pair(
    crop: np.ndarray,
    depth: np.ndarray,
    input_size: int,
    depth_size: int,
    aug: Augment,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Random resized crop + flip (+ rotation) of crop (S, S, 3) and depth (D, D) together, then
    colour jitter and the capture-side steps on the image only. uint8 image, float32 depth."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    area = rng.uniform(*aug.area)
    aspect = np.exp(rng.uniform(np.log(aug.aspect[0]), np.log(aug.aspect[1])))
    w, h = min(1.0, np.sqrt(area * aspect)), min(1.0, np.sqrt(area / aspect))
    u0, v0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    flip = bool(rng.random() < aug.flip)
    angle = rng.uniform(-aug.rotate, aug.rotate) if aug.rotate and rng.random() < 0.5 else 0.0
    # The image window snaps to whole crop pixels, so a slice + cv2.resize does the image
    # (several times faster than warpAffine); the depth map takes the same snapped window.
    size = crop.shape[0]
    cw, ch = max(1, round(w * size)), max(1, round(h * size))
    x0, y0 = min(round(u0 * size), size - cw), min(round(v0 * size), size - ch)
    window = (x0 / size, y0 / size, cw / size, ch / size)
    shrink = min(cw, ch) > 1.5 * input_size  # INTER_AREA's job: warpAffine would alias
    size_2d = (input_size, input_size)
    if angle and not shrink:  # window, flip and rotation as one warp of the crop: the corners
        # the rotation uncovers show the crop around the window where it has any
        m_img = window_matrix(window, flip, size, input_size)
        m_img = _rotation(angle, input_size) @ _affine3(m_img)
        image = cv2.warpAffine(crop, m_img[:2], size_2d, borderMode=cv2.BORDER_REFLECT_101)
    else:
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(crop[y0 : y0 + ch, x0 : x0 + cw], size_2d, interpolation=interp)
        if flip:
            image = cv2.flip(image, 1)
        if angle:  # rotate about the centre, after the window (borders reflect)
            rot = _rotation(angle, input_size)[:2]
            image = cv2.warpAffine(image, rot, size_2d, borderMode=cv2.BORDER_REFLECT_101)
    m_dep = window_matrix(window, flip, depth.shape[0], depth_size)
    if angle:  # the depth map turns with the image, about its own centre
        m_dep = (_rotation(angle, depth_size) @ _affine3(m_dep))[:2]
    depth = cv2.warpAffine(depth, m_dep, (depth_size, depth_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    saturation = 1.0
    if aug.exposure > 0 and rng.random() < aug.exposure:
        image, saturation = _exposure(image, rng)
    image = _colour(image, aug, rng, saturation)
    if aug.sharpness > 0 and rng.random() < aug.sharpness:
        image = _focus(image, rng)
    if aug.capture > 0:
        image = capture_steps(image, rng, aug.capture)
    return image, depth


@functools.cache
def _ramp() -> np.ndarray:
    """in / 255 for in = 0..255 (float64), made once per process."""
    import numpy as np

    return np.arange(256) / 255


def exposure_lut(gain: float, gamma: float) -> np.ndarray:
    """The uint8 look-up table of out = 255 * gain * (in / 255) ** gamma, rounded and saturated
    (in place on a cached ramp: a third of np.clip's cost, the same values)."""
    import numpy as np

    out = _ramp() ** gamma
    out *= 255 * gain
    out += 0.5
    np.minimum(out, 255, out=out)
    np.maximum(out, 0, out=out)
    return out.astype(np.uint8)


def _exposure(image: np.ndarray, rng) -> tuple[np.ndarray, float]:
    """Another camera's exposure of the same face: gain 0.6-1.6 and gamma 0.5-2 as one LUT, and a
    saturation factor 0.4-1.3 that _colour folds into its colour matrix (so it costs nothing).
    A Replay-Attack model rejected half its own live faces once brightened by gamma 0.6: without
    this it learns a camera's exposure as liveness."""
    import cv2
    import numpy as np

    gain = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    gamma = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    return cv2.LUT(image, exposure_lut(gain, gamma)), rng.uniform(0.4, 1.3)


def _focus(image: np.ndarray, rng) -> np.ndarray:
    """Another camera's focus and in-camera sharpening: half the time a Gaussian blur (sigma
    0.5-1.5), half the time an unsharp mask (amount 0.5-2). nuaa-dev's live faces are five times
    sharper (Laplacian variance) than Replay-Attack's, whose attacks are sharper than its live
    faces: without this a model can learn a camera's sharpness as liveness."""
    import cv2

    if rng.random() < 0.5:
        return gaussian_blur(image, rng.uniform(0.5, 1.5))
    amount = rng.uniform(0.5, 2.0)
    blurred = gaussian_blur(image, 1.0)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0)  # uint8, saturated


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur's kernel (radius 3 sigma) as a float separable filter: OpenCV's uint8
    GaussianBlur takes a bit-exact fixed-point path about twice as slow on 128 px crops."""
    import cv2

    kernel = cv2.getGaussianKernel(2 * max(1, round(3 * sigma)) + 1, sigma)
    return cv2.sepFilter2D(image, -1, kernel, kernel)


def _colour(image: np.ndarray, aug: Augment, rng, saturation: float = 1.0) -> np.ndarray:
    """Brightness, contrast, saturation (times `saturation`) and per-channel white balance when
    capture is on, as one colour matrix."""
    import cv2
    import numpy as np

    b = rng.uniform(1 - aug.brightness, 1 + aug.brightness)
    c = rng.uniform(1 - aug.contrast, 1 + aug.contrast)
    s = rng.uniform(1 - aug.saturation, 1 + aug.saturation) * saturation
    # Brightness, then contrast around the mean grey, then saturation towards each pixel's grey,
    # folded into one 3x4 colour matrix: out = s*c*b*I + (1-s)*c*b*grey(I) + (1-c)*b*mean_grey.
    weights = np.array([0.299, 0.587, 0.114])
    mean_grey = float(np.dot(cv2.mean(image)[:3], weights))
    matrix = np.zeros((3, 4))
    matrix[:, :3] = (1 - s) * c * b * weights[None, :] + s * c * b * np.eye(3)
    matrix[:, 3] = (1 - c) * b * mean_grey
    if aug.capture > 0 and rng.random() < aug.capture:  # white balance: a gain per channel
        matrix *= rng.uniform(0.85, 1.15, 3)[:, None]
    return cv2.transform(image, matrix)  # uint8, saturated


@functools.cache
def _noise_tile() -> np.ndarray:
    """A fixed (256, 256, 3) float32 tile of unit-normal noise, made once per process; random
    windows of it, scaled, are per-item sensor noise at a tenth of the cost of fresh normals."""
    import numpy as np

    return np.random.default_rng(12345).standard_normal((256, 256, 3), np.float32)


def _add_noise(image: np.ndarray, rng) -> np.ndarray:
    """Gaussian sensor noise of sigma 2-8 grey levels on a uint8 (n, n, 3) image, added, rounded
    and saturated in one cv2 pass."""
    import cv2

    n = image.shape[0]
    tile = _noise_tile()
    k = min(n, tile.shape[0])
    y, x = rng.integers(0, tile.shape[0] - k + 1, 2)
    noise = tile[y : y + k, x : x + k]
    if k < n:
        noise = cv2.resize(noise, (n, n), interpolation=cv2.INTER_NEAREST)
    return cv2.addWeighted(image, 1.0, noise, rng.uniform(2.0, 8.0), 0.0, dtype=cv2.CV_8U)


def capture_steps(image: np.ndarray, rng, p: float) -> np.ndarray:
    """Another camera's rendering of the same crop: gamma, blur, down-and-up scaling, sensor noise
    and JPEG re-compression, each with probability `p` or `p` / 2 (uint8 (n, n, 3) in and out)."""
    import cv2
    import numpy as np

    n = image.shape[0]
    if rng.random() < p:  # gamma
        gamma = np.exp(rng.uniform(np.log(0.67), np.log(1.5)))
        image = cv2.LUT(image, exposure_lut(1.0, gamma))
    if rng.random() < p / 2:  # out of focus or motion-softened
        image = gaussian_blur(image, rng.uniform(0.4, 1.3))
    if rng.random() < p / 2:  # a lower-resolution sensor or a distant face
        small = shrink(image, max(8, round(n * rng.uniform(0.35, 0.8))))
        image = cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)
    if rng.random() < p:  # sensor noise
        image = _add_noise(image, rng)
    if rng.random() < p / 2:  # JPEG re-compression with a camera's 4:2:0 chroma (the stored
        # crops are JPEGs already; 0.1 ms with libjpeg-turbo's fast DCT: the costliest step)
        import simplejpeg

        quality = int(rng.integers(30, 91))
        rgb = np.ascontiguousarray(image)
        data = simplejpeg.encode_jpeg(rgb, quality, colorspace="RGB", colorsubsampling="420")
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=True)
    return image


def shrink(image: np.ndarray, size: int) -> np.ndarray:
    """A square image shrunk to size x size with pixel areas averaged: bilinear to twice the
    size, then INTER_AREA's exact halving (a third of a fractional INTER_AREA's cost)."""
    import cv2

    twice = cv2.resize(image, (2 * size, 2 * size), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(twice, (size, size), interpolation=cv2.INTER_AREA)


def simulate_attack(image: np.ndarray, rng) -> np.ndarray:
    """A live crop (uint8 (n, n, 3)) re-rendered as a print or screen replay of itself; half the
    time the medium is smaller than the crop, so its border or bezel and a background show."""
    import cv2
    import numpy as np

    from facepad.data.media import add_border, print_medium, screen_medium

    n = image.shape[0]
    is_print = rng.random() < 0.5
    f = print_medium(image, rng) if is_print else screen_medium(image, rng)
    if rng.random() < 0.5:
        inner = max(8, round(n * rng.uniform(0.6, 0.9)))
        medium = shrink(f, inner)
        margin = max(1, round(n * rng.uniform(0.02, 0.08)))
        colour = rng.uniform(215, 250) if is_print else rng.uniform(5, 40)
        medium, _ = add_border(medium, np.ones((inner, inner), np.float32), margin, margin, colour)
        # the scene behind the medium: the crop itself, blurred (down to a few pixels and back
        # up: a tenth of a wide Gaussian's cost) and dimmed beyond recognition
        tiny = max(2, round(n / rng.uniform(8, 20)))
        f = cv2.resize(shrink(image, tiny), (n, n), interpolation=cv2.INTER_LINEAR)
        f = f.astype(np.float32)
        f *= np.float32(rng.uniform(0.5, 1.1))
        side = min(n, medium.shape[0])
        y, x = rng.integers(0, n - side + 1, 2)
        f[y : y + side, x : x + side] = medium[:side, :side]
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)

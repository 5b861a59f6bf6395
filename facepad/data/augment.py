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


def _rotation(angle: float, size: int):
    """(3, 3) rotation by `angle` degrees about the centre of a size x size image."""
    import cv2
    import numpy as np

    c = (size - 1) / 2
    return np.vstack([cv2.getRotationMatrix2D((c, c), angle, 1.0), [0.0, 0.0, 1.0]])


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
    interp = cv2.INTER_AREA if min(cw, ch) > 1.5 * input_size else cv2.INTER_LINEAR
    image = cv2.resize(crop[y0 : y0 + ch, x0 : x0 + cw], (input_size, input_size),
                       interpolation=interp)  # fmt: skip
    if flip:
        image = cv2.flip(image, 1)
    m_dep = window_matrix(window, flip, depth.shape[0], depth_size)
    if angle:  # rotate both about their centres, after the window (borders replicate)
        rot = _rotation(angle, input_size)
        size_2d = (input_size, input_size)
        image = cv2.warpAffine(image, rot[:2], size_2d, borderMode=cv2.BORDER_REFLECT_101)
        m_dep = (_rotation(angle, depth_size) @ np.vstack([m_dep, [0.0, 0.0, 1.0]]))[:2]
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


def exposure_lut(gain: float, gamma: float) -> np.ndarray:
    """The uint8 look-up table of out = 255 * gain * (in / 255) ** gamma, rounded and saturated."""
    import numpy as np

    return np.clip(255 * gain * (np.arange(256) / 255) ** gamma + 0.5, 0, 255).astype(np.uint8)


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
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    amount = rng.uniform(0.5, 2.0)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0)  # uint8, saturated


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


_NOISE_TILE: dict[str, np.ndarray] = {}


def _noise_tile() -> np.ndarray:
    """A fixed (256, 256, 3) int16 tile of unit-normal noise times 16; random windows of it,
    scaled in integer arithmetic, are per-item sensor noise at a tenth of a float pass's cost."""
    import numpy as np

    if "tile" not in _NOISE_TILE:
        unit = np.random.default_rng(12345).standard_normal((256, 256, 3), np.float32)
        _NOISE_TILE["tile"] = np.round(unit * 16).astype(np.int16)
    return _NOISE_TILE["tile"]


def _add_noise(image: np.ndarray, rng) -> np.ndarray:
    """Gaussian sensor noise of sigma 2-8 grey levels on a uint8 (n, n, 3) image."""
    import cv2
    import numpy as np

    n = image.shape[0]
    tile = _noise_tile()
    k = min(n, tile.shape[0])
    y, x = rng.integers(0, tile.shape[0] - k + 1, 2)
    sigma_x16 = np.int16(round(rng.uniform(2.0, 8.0) * 16))  # |tile| < 80, so |product| < 2**14
    noise = (tile[y : y + k, x : x + k] * sigma_x16 + np.int16(128)) >> 8  # rounded /256
    if k < n:
        noise = cv2.resize(noise, (n, n), interpolation=cv2.INTER_NEAREST)
    noise += image
    np.clip(noise, 0, 255, out=noise)
    return noise.astype(np.uint8)


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
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < p / 2:  # a lower-resolution sensor or a distant face
        m = max(8, round(n * rng.uniform(0.35, 0.8)))
        small = cv2.resize(image, (m, m), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)
    if rng.random() < p:  # sensor noise
        image = _add_noise(image, rng)
    if rng.random() < p / 2:  # JPEG re-compression (encoded as BGR, as a camera would); the
        # stored crops are JPEGs already, and at 0.3 ms this is the costliest step
        quality = int(rng.integers(30, 91))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
        if ok:
            image = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return image


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
        medium = cv2.resize(f, (inner, inner), interpolation=cv2.INTER_AREA)
        margin = max(1, round(n * rng.uniform(0.02, 0.08)))
        colour = rng.uniform(215, 250) if is_print else rng.uniform(5, 40)
        medium, _ = add_border(medium, np.ones((inner, inner), np.float32), margin, margin, colour)
        # the scene behind the medium: the crop itself, blurred (down to a few pixels and back
        # up: a tenth of a wide Gaussian's cost) and dimmed beyond recognition
        tiny = max(2, round(n / rng.uniform(8, 20)))
        f = cv2.resize(cv2.resize(image, (tiny, tiny), interpolation=cv2.INTER_AREA), (n, n),
                       interpolation=cv2.INTER_LINEAR).astype(np.float32)  # fmt: skip
        f *= np.float32(rng.uniform(0.5, 1.1))
        side = min(n, medium.shape[0])
        y, x = rng.integers(0, n - side + 1, 2)
        f[y : y + side, x : x + side] = medium[:side, :side]
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)

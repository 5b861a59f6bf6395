"""Training augmentation of whole batches on the training device (torch, no torchvision).

The loader then only reads and decodes the stored crops (`StoreDataset(..., decode_only=True)`),
which is what keeps a GPU fed: per-sample numpy/cv2 augmentation in DataLoader workers ran the
GPU recipe's loop at a fifth of its model step. The steps and their probabilities and ranges are
those of `facepad.data.augment` (read its docstrings), on float images in [0, 1] instead of
uint8 (no rounding between steps):
- geometry: random resized crop + flip + small rotation as one affine per sample (`affine_grid`
  / `grid_sample`), the same affine for image and depth map, so the depth target stays on the
  face; it resamples to `input_size` / `depth_size` too;
- exposure (gain, gamma, saturation), colour (brightness, contrast, saturation, white balance),
  focus (Gaussian blur or unsharp mask);
- capture: gamma, blur, down-and-up scaling, sensor noise, and JPEG re-compression, emulated:
  JPEG's lossy part (YCbCr with 4:2:0 chroma, 8x8 DCT, quantisation by libjpeg's tables for the
  quality) is arithmetic and batches; its entropy coding is lossless, so it is left out.

Random draws: one (batch, len(DRAWS)) block of uniforms per batch from a numpy generator (CPU) that
`start_epoch(seed)` reseeds (training passes `epoch_seed(seed, rank, epoch)`), so the k-th
sample of an epoch draws the same numbers whatever the batch holds, on CPU and CUDA alike, and a
resumed run draws what an uninterrupted one did (DataLoader workers do not take part). The
parameters go to the device in one transfer; each step touches only the samples it drew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facepad.data.augment import Augment, training_augment

DRAWS = (
    "area", "aspect", "x0", "y0", "flip", "rotate_on", "angle",
    "exposure_on", "gain", "gamma", "exposure_saturation",
    "brightness", "contrast", "saturation", "balance_on", "balance_r", "balance_g", "balance_b",
    "focus_on", "focus_blur", "focus_sigma", "focus_amount",
    "capture_gamma_on", "capture_gamma", "capture_blur_on", "capture_sigma", "rescale_on",
    "rescale", "noise_on", "noise_sigma", "noise_y", "noise_x", "jpeg_on", "jpeg_quality",
)  # fmt: skip
GREY = (0.299, 0.587, 0.114)  # the grey of the colour steps, as in facepad.data.augment
NOISE_TILE = 256  # side of the fixed unit-normal tile sensor noise takes windows of
SHRINK = 1.5  # a crop this much larger than the output is pre-shrunk with area averaging


@dataclass
class Step:
    """One random step's share of a batch: which samples it touches and their parameters."""

    index: torch.Tensor  # (k,) int64 positions in the batch
    values: torch.Tensor  # (k, m) float32 parameters

    def __len__(self) -> int:
        return len(self.index)


def _log_uniform(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def _uniform(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return low + u * (high - low)


def _step(selected: np.ndarray, *columns: np.ndarray) -> Step:
    """The selected samples (a (B,) bool mask) with their values of each (B,) column."""
    index = np.flatnonzero(selected)
    values = np.stack([c[index] for c in columns], 1).astype(np.float32)
    return Step(torch.from_numpy(index), torch.from_numpy(values))


def geometry_theta(window: np.ndarray, flip: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(B, 2, 3) affines for `affine_grid` from windows (x0, y0, w, h) as fractions of the crop,
    flips and angles (degrees): output pixel p samples the crop at window(flip(R^-1 p)), the
    geometry of `facepad.data.augment.augment_pair` (window, then flip, then rotation about the
    centre, cv2's sign) in normalised coordinates."""
    x0, y0, w, h = np.asarray(window, np.float64).T
    a = np.deg2rad(angle)
    cos, sin = np.cos(a), np.sin(a)
    fx = np.where(flip, -1.0, 1.0)
    row_x = np.stack([w * fx * cos, -w * fx * sin, 2 * x0 + w - 1], 1)
    row_y = np.stack([h * sin, h * cos, 2 * y0 + h - 1], 1)
    return np.stack([row_x, row_y], 1)


def draw_steps(aug: Augment, u: np.ndarray, input_size: int) -> dict[str, Step]:
    """Each step's samples and parameters from a (B, len(DRAWS)) block of uniforms, with the
    probabilities and ranges of `facepad.data.augment` (numpy: a tenth of torch's cost on such
    small arrays; CPU tensors out)."""
    c = dict(zip(DRAWS, u.T, strict=True))
    everyone = np.ones(len(u), dtype=bool)
    return {
        "geometry": _geometry(aug, c, everyone),
        "exposure": _step(c["exposure_on"] < aug.exposure,
                          _log_uniform(c["gain"], 0.6, 1.6), _log_uniform(c["gamma"], 0.5, 2.0)),
        "colour": _colour_step(aug, c, everyone),
        "focus_blur": _step((c["focus_on"] < aug.sharpness) & (c["focus_blur"] < 0.5),
                            _uniform(c["focus_sigma"], 0.5, 1.5)),
        "sharpen": _step((c["focus_on"] < aug.sharpness) & (c["focus_blur"] >= 0.5),
                         _uniform(c["focus_amount"], 0.5, 2.0)),
        **_capture_steps(aug.capture, c, input_size),
    }  # fmt: skip


def _geometry(aug: Augment, c: dict, everyone: np.ndarray) -> Step:
    """Window (area, aspect, position), flip and rotation of every sample, as (B, 6) affines."""
    area = _uniform(c["area"], *aug.area)
    aspect = _log_uniform(c["aspect"], *aug.aspect)
    w, h = np.minimum(np.sqrt(area * aspect), 1.0), np.minimum(np.sqrt(area / aspect), 1.0)
    window = np.stack([c["x0"] * (1 - w), c["y0"] * (1 - h), w, h], 1)
    rotate = (c["rotate_on"] < 0.5) & bool(aug.rotate)
    angle = np.where(rotate, _uniform(c["angle"], -aug.rotate, aug.rotate), 0.0)
    theta = geometry_theta(window, c["flip"] < aug.flip, angle)
    return _step(everyone, *theta.reshape(-1, 6).T)


def _colour_step(aug: Augment, c: dict, everyone: np.ndarray) -> Step:
    """Brightness, contrast, saturation (times the exposure's) and white balance gains."""
    exposure_saturation = np.where(
        c["exposure_on"] < aug.exposure, _uniform(c["exposure_saturation"], 0.4, 1.3), 1.0
    )
    saturation = _uniform(c["saturation"], 1 - aug.saturation, 1 + aug.saturation)
    balance = (c["balance_on"] < aug.capture)[:, None]  # white balance comes with capture
    gains = np.stack([c["balance_r"], c["balance_g"], c["balance_b"]], 1)
    gains = np.where(balance, _uniform(gains, 0.85, 1.15), 1.0)
    return _step(
        everyone,
        _uniform(c["brightness"], 1 - aug.brightness, 1 + aug.brightness),
        _uniform(c["contrast"], 1 - aug.contrast, 1 + aug.contrast),
        saturation * exposure_saturation,
        *gains.T,
    )


def _capture_steps(p: float, c: dict, n: int) -> dict[str, Step]:
    """Another camera's gamma, blur, resolution, noise and JPEG, each with probability p or p/2."""
    rescaled = np.maximum(np.round(n * _uniform(c["rescale"], 0.35, 0.8)), 8)
    return {
        "capture_gamma": _step(c["capture_gamma_on"] < p,
                               _log_uniform(c["capture_gamma"], 0.67, 1.5)),
        "capture_blur": _step(c["capture_blur_on"] < p / 2, _uniform(c["capture_sigma"], 0.4, 1.3)),
        "rescale": _step(c["rescale_on"] < p / 2, rescaled),
        "noise": _step(c["noise_on"] < p, _uniform(c["noise_sigma"], 2.0, 8.0),
                       np.floor(c["noise_y"] * NOISE_TILE), np.floor(c["noise_x"] * NOISE_TILE)),
        "jpeg": _step(c["jpeg_on"] < p / 2, 30 + np.floor(c["jpeg_quality"] * 61)),
    }  # fmt: skip


def steps_to(steps: dict[str, Step], device: torch.device) -> dict[str, Step]:
    """The steps on `device`, in one transfer of indices and one of values (pinned on CUDA, so
    the copies do not wait for the queued work)."""
    index = torch.cat([s.index for s in steps.values()])
    values = torch.cat([s.values.reshape(-1) for s in steps.values()])
    if device.type == "cuda":
        index, values = index.pin_memory(), values.pin_memory()
    index, values = index.to(device, non_blocking=True), values.to(device, non_blocking=True)
    out, i, v = {}, 0, 0
    for name, s in steps.items():
        k, size = len(s.index), s.values.numel()
        out[name] = Step(index[i : i + k], values[v : v + size].view(s.values.shape))
        i, v = i + k, v + size
    return out


def device_augment(data_config) -> DeviceAugment | None:
    """The batched augmentation a training run applies on its device (data.augment_device=device
    with data.augment on), else None: the loader augments, or nothing does."""
    aug = training_augment(data_config)
    if aug is None or data_config.augment_device != "device":
        return None
    return DeviceAugment(aug, data_config.input_size, data_config.depth_size)


class DeviceAugment:
    """`Augment` applied to whole batches on the batch's device.

    Call with a batch on the device holding `crop` uint8 (B, S, S, 3) and `depth` (B, 1, D, D);
    returns it with `image` float32 (B, 3, input_size, input_size) in [0, 1] and `depth` float32
    (B, 1, depth_size, depth_size) in [0, 1] in their place.
    """

    def __init__(self, aug: Augment, input_size: int, depth_size: int):
        if aug.simulated_attacks > 0:
            raise ValueError(
                f"simulated_attacks={aug.simulated_attacks}: simulated print and replay media run "
                "per sample in the loader; set data.augment_device=loader to use them"
            )
        self.aug, self.input_size, self.depth_size = aug, int(input_size), int(depth_size)
        self.rng = np.random.default_rng(0)
        self._tiles: dict[torch.device, torch.Tensor] = {}

    def start_epoch(self, seed: int) -> None:
        """Reseed the draws: training passes `epoch_seed(seed, rank, epoch)`."""
        self.rng = np.random.default_rng(seed)

    def draw(self, n: int) -> dict[str, Step]:
        """The next n samples' steps (CPU)."""
        return draw_steps(self.aug, self.rng.random((n, len(DRAWS))), self.input_size)

    @torch.no_grad()
    def __call__(self, batch: dict) -> dict:
        if "crop" not in batch:
            raise ValueError(
                "data.augment_device=device needs training items holding the stored `crop` "
                "(StoreDataset(..., decode_only=True)); this training set gives "
                f"{', '.join(sorted(batch))}: set data.augment_device=loader"
            )
        out = {k: v for k, v in batch.items() if k != "crop"}
        steps = steps_to(self.draw(len(batch["crop"])), batch["crop"].device)
        out["image"], out["depth"] = self.apply(batch["crop"], batch["depth"], steps)
        return out

    def apply(
        self, crop: torch.Tensor, depth: torch.Tensor, steps: dict[str, Step]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, depth) from uint8 crops (B, S, S, 3) and depth maps (B, 1, D, D) by `steps`."""
        image = crop.permute(0, 3, 1, 2).float().div_(255.0)
        theta = steps["geometry"].values.view(-1, 2, 3)
        image = warp(image, theta, self.input_size, "reflection")
        depth = warp(depth.float(), theta, self.depth_size, "border").clamp_(0.0, 1.0)
        image = on_samples(image, steps["exposure"], exposure)
        image = colour(image, steps["colour"].values)
        image = on_samples(image, steps["focus_blur"], lambda x, v: gaussian_blur(x, v[:, 0], 4))
        image = on_samples(image, steps["sharpen"], unsharp_mask)
        image = on_samples(image, steps["capture_gamma"], lambda x, v: x.pow(_per_sample(v[:, 0])))
        image = on_samples(image, steps["capture_blur"], lambda x, v: gaussian_blur(x, v[:, 0], 4))
        image = on_samples(image, steps["rescale"], lambda x, v: down_up(x, v[:, 0]))
        image = on_samples(image, steps["noise"], lambda x, v: add_noise(x, v, self._tile(x)))
        image = on_samples(image, steps["jpeg"], lambda x, v: jpeg_like(x, v[:, 0]))
        return image.clamp_(0.0, 1.0), depth

    def _tile(self, like: torch.Tensor) -> torch.Tensor:
        """(3, T, T) unit normals, the same numbers on every device (drawn on CPU once)."""
        if like.device not in self._tiles:
            g = torch.Generator().manual_seed(12345)
            tile = torch.randn(3, NOISE_TILE, NOISE_TILE, generator=g)
            self._tiles[like.device] = tile.to(like.device)
        return self._tiles[like.device]


def on_samples(x: torch.Tensor, step: Step, fn) -> torch.Tensor:
    """x with fn(x[step.index], step.values) written back in place of those samples."""
    if len(step) == 0:
        return x
    if len(step) == len(x):  # every sample (the index is then 0 .. B - 1)
        return fn(x, step.values).to(x.dtype)
    return x.index_copy_(0, step.index, fn(x[step.index], step.values).to(x.dtype))


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def warp(x: torch.Tensor, theta: torch.Tensor, size: int, padding: str) -> torch.Tensor:
    """x (B, C, H, W) resampled bilinearly through the affines to (B, C, size, size); a source
    more than SHRINK times the output is first shrunk with area averaging (no aliasing)."""
    if x.shape[-1] > SHRINK * size:
        small = round(1.25 * size)
        x = F.interpolate(x, size=(small, small), mode="bilinear", antialias=True)
    grid = F.affine_grid(theta.to(x.dtype), [len(x), x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def exposure(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Another camera's exposure: gain * x ** gamma (the saturation factor is in `colour`)."""
    gain, gamma = _per_sample(values[:, 0]), _per_sample(values[:, 1])
    return (x.pow(gamma) * gain).clamp_(0.0, 1.0)


def colour(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Brightness b, then contrast c around the mean grey, then saturation s towards each
    pixel's grey, then white balance gains: facepad.data.augment._colour's matrix."""
    b, c, s = (_per_sample(values[:, k]) for k in range(3))
    gains = values[:, 3:6].view(-1, 3, 1, 1)
    weights = torch.tensor(GREY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    grey = (x * weights).sum(1, keepdim=True)
    mean_grey = grey.mean((2, 3), keepdim=True)
    out = x * (s * c * b) + grey * ((1 - s) * c * b) + mean_grey * ((1 - c) * b)
    return out.mul_(gains).clamp_(0.0, 1.0)


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(k, 2 radius + 1) Gaussian kernels, each cut at cv2's radius max(1, round(3 sigma))."""
    offsets = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    weights = torch.exp(-(offsets**2) / (2 * sigma[:, None] ** 2))
    cut = (3 * sigma).round().clamp(min=1)[:, None]
    weights = weights * (offsets.abs() <= cut)
    return weights / weights.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Each image (k, C, H, W) blurred by its own sigma: one separable grouped convolution,
    borders reflected as cv2's default (reflect-101)."""
    k, c, h, w = x.shape
    kernels = gaussian_kernels(sigma, radius).repeat_interleave(c, 0)  # (k * c, 2r + 1)
    y = F.pad(x.reshape(1, k * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernels[:, None, None, :], groups=k * c)
    y = F.conv2d(y, kernels[:, None, :, None], groups=k * c)
    return y.view(k, c, h, w)


def unsharp_mask(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """In-camera sharpening: (1 + amount) x - amount blur(x, sigma 1)."""
    amount = _per_sample(values[:, 0])
    blurred = gaussian_blur(x, torch.ones_like(values[:, 0]), 3)
    return (x * (1 + amount) - blurred * amount).clamp_(0.0, 1.0)


def _separable_grid(coords: torch.Tensor) -> torch.Tensor:
    """(k, n, n, 2) sampling grid whose x and y are both `coords` (k, n), normalised."""
    k, n = coords.shape
    return torch.stack([coords[:, None, :].expand(k, n, n), coords[:, :, None].expand(k, n, n)], -1)


def down_up(x: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """A lower-resolution sensor: each square image (k, C, n, n) averaged down to its own
    sizes[i] pixels a side, then bilinearly back up to n. Fixed shapes: the small image lives in
    the top-left corner of an n x n tensor, its last row and column repeated beyond it (the
    border cv2.resize replicates)."""
    n = x.shape[-1]
    factor = n / sizes
    x = gaussian_blur(x, ((factor**2 - 1).clamp(min=0) / 12).sqrt().clamp(min=1e-3), 3)
    pixel = torch.arange(n, device=x.device, dtype=x.dtype)
    low_pixel = torch.minimum(pixel[None, :], sizes[:, None] - 1)
    down = (2 * low_pixel + 1) / sizes[:, None] - 1  # centres of the small image's pixels
    small = F.grid_sample(x, _separable_grid(down), padding_mode="border", align_corners=False)
    up = (2 * pixel[None, :] + 1) * sizes[:, None] / n**2 - 1
    return F.grid_sample(small, _separable_grid(up), padding_mode="border", align_corners=False)


def add_noise(x: torch.Tensor, values: torch.Tensor, tile: torch.Tensor) -> torch.Tensor:
    """Sensor noise of sigma values[:, 0] grey levels: windows of a fixed unit-normal tile at
    offsets values[:, 1:3] (wrapping), as facepad.data.augment._add_noise takes them."""
    n, size = x.shape[-1], tile.shape[-1]
    pixel = torch.arange(n, device=x.device)
    rows = (pixel[None, :] + values[:, 1:2].long()) % size  # (k, n)
    cols = (pixel[None, :] + values[:, 2:3].long()) % size
    noise = tile[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)  # (k, 3, n, n)
    return (x + noise * _per_sample(values[:, 0] / 255)).clamp_(0.0, 1.0)


# JPEG's base quantisation tables (ITU T.81 Annex K), luminance and chrominance
LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
CHROMA_TABLE = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip


def quant_tables(quality: torch.Tensor, base: tuple[int, ...]) -> torch.Tensor:
    """(k, 8, 8) tables for qualities 1-100, scaled as libjpeg's jpeg_quality_scaling does."""
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)
    table = torch.tensor(base, dtype=q.dtype, device=q.device).view(1, 8, 8)
    return torch.floor((table * scale.view(-1, 1, 1) + 50) / 100).clamp(1, 255)


def _dct_matrix(like: torch.Tensor) -> torch.Tensor:
    """The orthonormal 8-point DCT-II (JPEG's DCT, 2-D by rows and columns)."""
    k = torch.arange(8, dtype=like.dtype, device=like.device)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def _quantise(plane: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """A (k, H, W) plane (0..255, H and W multiples of 8) through 8x8 DCT, rounding to its
    quantisation table (k, 8, 8), and back."""
    k, h, w = plane.shape
    d = _dct_matrix(plane)
    blocks = (plane - 128).view(k, h // 8, 8, w // 8, 8).transpose(2, 3)  # (k, hb, wb, 8, 8)
    q = tables[:, None, None]
    coef = torch.round(d @ blocks @ d.T / q) * q
    out = (d.T @ coef @ d).transpose(2, 3).reshape(k, h, w) + 128
    return out.round_().clamp_(0, 255)


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Each image (k, 3, H, W) in [0, 1] through JPEG's lossy steps at its own quality, as
    libjpeg encodes with 4:2:0 chroma and decodes with fast upsampling (chroma replicated):
    8-bit RGB -> YCbCr (JFIF), chroma averaged 2x2, 8x8 DCT quantised, back."""
    k, _, h, w = x.shape
    pad_h, pad_w = -h % 16, -w % 16  # whole 16 x 16 MCUs, edges repeated as libjpeg does
    rgb = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate").mul(255).round_()
    r, g, b = rgb.unbind(1)
    y = (0.299 * r + 0.587 * g + 0.114 * b).round()
    cb = (-0.168736 * r - 0.331264 * g + 0.5 * b + 128).round()
    cr = (0.5 * r - 0.418688 * g - 0.081312 * b + 128).round()
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2).flatten(0, 1)  # (2k, H/2, W/2)
    y = _quantise(y, quant_tables(quality, LUMA_TABLE))
    chroma_tables = quant_tables(quality, CHROMA_TABLE).repeat_interleave(2, 0)
    chroma = _quantise(chroma, chroma_tables).view(k, 2, *chroma.shape[-2:])
    cb, cr = F.interpolate(chroma, scale_factor=2, mode="nearest").unbind(1)
    cb, cr = cb - 128, cr - 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return out.round_().clamp_(0, 255)[:, :, :h, :w] / 255

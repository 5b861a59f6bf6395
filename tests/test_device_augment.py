"""Batched augmentation on the training device (run here on CPU): reproducible draws, image and
depth moving together, the numpy path's geometry and distributions, value ranges, the emulated
capture steps against OpenCV and libjpeg, and training end to end with data.augment_device."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from _prepare_helpers import write_store
from _train_helpers import DiesAt, Killed, small_config

from facepad.config import ConfigError, load_config
from facepad.data.augment import Augment, augment_pair, window_matrix
from facepad.data.dataset import StoreDataset
from facepad.data.device_augment import (
    DRAWS,
    DeviceAugment,
    down_up,
    draw_steps,
    gaussian_blur,
    geometry_theta,
    jpeg_like,
    warp,
)
from facepad.data.store import PreparedStore
from facepad.train import loop
from facepad.train.epoch import epoch_seed

NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0)
FULL = Augment(rotate=10.0, capture=0.8, exposure=0.8, sharpness=0.5)


def smooth_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 smooth random textures (upscaled noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    return np.stack([cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC) for s in small])


def batch_of(crops: np.ndarray, depth: np.ndarray) -> dict:
    n = len(crops)
    return {
        "crop": torch.from_numpy(crops),
        "depth": torch.from_numpy(depth).float().view(n, 1, *depth.shape[-2:]),
        "live": torch.ones(n),
        "idx": torch.arange(n),
    }


def augmented(aug: Augment, batch: dict, seed: int, size: int = 48, depth: int = 8) -> dict:
    device_aug = DeviceAugment(aug, size, depth)
    device_aug.start_epoch(seed)
    return device_aug(batch)


# --- reproducible draws ---------------------------------------------------------------------


def test_same_seed_rank_and_epoch_give_the_same_batch_and_others_differ():
    batch = batch_of(smooth_crops(6, 64), np.random.default_rng(1).random((6, 16, 16)))
    first = augmented(FULL, batch, epoch_seed(0, 0, 1))
    again = augmented(FULL, batch, epoch_seed(0, 0, 1))
    assert torch.equal(first["image"], again["image"])
    assert torch.equal(first["depth"], again["depth"])
    for other in (epoch_seed(0, 0, 2), epoch_seed(0, 1, 1), epoch_seed(1, 0, 1)):
        out = augmented(FULL, batch, other)
        assert (out["image"] - first["image"]).abs().mean() > 0.01


def test_a_samples_draws_and_result_do_not_depend_on_the_rest_of_its_batch():
    aug = DeviceAugment(FULL, 48, 8)
    aug.start_epoch(7)
    whole = aug.draw(8)
    aug.start_epoch(7)
    parts = [aug.draw(3), aug.draw(5)]  # the same epoch cut into other batches
    for name, step in whole.items():
        index = torch.cat([parts[0][name].index, parts[1][name].index + 3])
        assert torch.equal(step.index, index), name
        values = torch.cat([parts[0][name].values, parts[1][name].values])
        assert torch.equal(step.values, values), name
    crops, depth = smooth_crops(4, 64), np.zeros((4, 16, 16))
    others = crops.copy()
    others[1:] = smooth_crops(3, 64, seed=5)  # sample 0 alike, the rest of the batch not
    steps = aug.draw(4)
    a = aug.apply(batch_of(crops, depth)["crop"], batch_of(crops, depth)["depth"], steps)[0]
    b = aug.apply(batch_of(others, depth)["crop"], batch_of(others, depth)["depth"], steps)[0]
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
    assert (a[1] - b[1]).abs().mean() > 0.01


def test_steps_fire_with_the_numpy_paths_probabilities_and_ranges():
    n, size = 20000, 128
    u = np.random.default_rng(0).random((n, len(DRAWS)))
    steps = draw_steps(FULL, u, size)
    expected = {"exposure": 0.8, "focus_blur": 0.25, "sharpen": 0.25, "capture_gamma": 0.8,
                "capture_blur": 0.4, "rescale": 0.4, "noise": 0.8, "jpeg": 0.4}  # fmt: skip
    for name, share in expected.items():
        assert len(steps[name]) / n == pytest.approx(share, abs=0.015), name
    gain, gamma = steps["exposure"].values.T
    assert 0.6 <= gain.min() < 0.62 and 1.57 < gain.max() <= 1.6
    assert 0.5 <= gamma.min() < 0.52 and 1.95 < gamma.max() <= 2.0
    quality = steps["jpeg"].values[:, 0]
    assert set(quality.tolist()) == set(range(30, 91))
    sizes = steps["rescale"].values[:, 0]
    assert sizes.min() == round(0.35 * size) and sizes.max() == round(0.8 * size)
    gains = steps["colour"].values[:, 3:]
    balanced = (gains != 1).any(1).float().mean()
    assert balanced == pytest.approx(0.8, abs=0.015)  # white balance comes with capture
    off = draw_steps(Augment(), u[:100], size)  # the defaults: geometry and colour only
    assert all(len(off[k]) == 0 for k in expected) and len(off["geometry"]) == 100


# --- geometry: image and depth together -------------------------------------------------------


def test_flip_moves_a_marked_pixel_in_image_and_depth_alike():
    crops = np.zeros((1, 64, 64, 3), np.uint8)
    crops[0, 10:14, 4:8] = 255  # top left
    depth = np.zeros((1, 16, 16), np.float32)
    depth[0, 2:4, 1:2] = 1.0  # the same place at a quarter of the size
    aug = Augment(area=(1.0, 1.0), aspect=(1.0, 1.0), flip=1.0, **NO_JITTER)
    out = augmented(aug, batch_of(crops, depth), seed=0, size=64, depth=16)
    image, depth_out = out["image"][0, 0], out["depth"][0, 0]
    assert image[10:14, 56:60].mean() > 0.9 and image[10:14, 4:8].max() < 0.05
    assert depth_out[2:4, 14:15].mean() > 0.9 and depth_out[2:4, 1:2].max() < 0.05


def test_random_affines_keep_depth_on_the_face():
    """Image = depth map drawn large; after crops, flips and rotations they still match."""
    depth = np.zeros((32, 32), np.float32)
    depth[6:20, 4:14] = 1.0  # off-centre blocks
    depth[20:28, 18:30] = 0.5
    crop = np.repeat(np.kron(depth, np.ones((4, 4)))[:, :, None] * 255, 3, axis=2)
    n = 16
    batch = batch_of(np.stack([crop.astype(np.uint8)] * n), np.stack([depth] * n))
    aug = Augment(area=(0.5, 1.0), aspect=(0.8, 1.25), flip=0.5, rotate=15.0, **NO_JITTER)
    out = augmented(aug, batch, seed=3, size=128, depth=32)
    small = torch.nn.functional.avg_pool2d(out["image"][:, :1], 4)  # (n, 1, 32, 32)
    error = (small - out["depth"])[:, :, 3:-3, 3:-3].abs().mean((1, 2, 3))
    assert error.max() < 0.04, error
    moved = (out["depth"] - torch.from_numpy(depth)).abs().mean((1, 2, 3))
    assert (moved > 0.05).sum() >= n // 2  # the draws did move the maps


@pytest.mark.parametrize(("window", "flip", "angle"), [
    ((0.1, 0.05, 0.8, 0.9), False, 0.0), ((0.0, 0.2, 0.75, 0.8), True, 0.0),
    ((0.1, 0.1, 0.85, 0.85), False, 12.0), ((0.05, 0.1, 0.9, 0.85), True, -9.0),
])  # fmt: skip
def test_the_affine_is_the_numpy_paths_window_flip_and_rotation(window, flip, angle):
    import cv2

    from facepad.data.augment import _affine3, _rotation

    crop = smooth_crops(1, 96)[0]
    size = 64
    matrix = _rotation(angle, size) @ _affine3(window_matrix(window, flip, 96, size))
    expected = cv2.warpAffine(crop, matrix[:2], (size, size), flags=cv2.INTER_LINEAR)
    theta = torch.from_numpy(geometry_theta([window], [flip], [angle])).float()
    image = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    got = warp(image, theta, size, "reflection")[0].permute(1, 2, 0).numpy() * 255
    inner = (slice(8, -8), slice(8, -8))  # the corners a rotation uncovers fill differently
    assert np.abs(got - expected)[inner].mean() < 1.0


# --- image steps ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 255, None])
def test_every_step_at_once_keeps_images_and_depth_in_range(value):
    crops = smooth_crops(8, 64) if value is None else np.full((8, 64, 64, 3), value, np.uint8)
    depth = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    aug = Augment(rotate=10.0, capture=1.0, exposure=1.0, sharpness=1.0)
    out = augmented(aug, batch_of(crops, depth), seed=1, size=48, depth=8)
    image, depth_out = out["image"], out["depth"]
    assert image.shape == (8, 3, 48, 48) and image.dtype == torch.float32
    assert depth_out.shape == (8, 1, 8, 8) and depth_out.dtype == torch.float32
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    assert depth_out.min() >= 0 and depth_out.max() <= 1
    assert set(out) == {"image", "depth", "live", "idx"}


def test_exposure_and_colour_spread_brightness_as_the_numpy_path_does():
    face = np.full((64, 64, 3), (150, 110, 90), np.uint8)
    aug = Augment(area=(1.0, 1.0), exposure=0.8)
    n = 400
    numpy_means = [augment_pair(face, np.zeros((16, 16), np.float32), 32, 8, aug, s)[0].mean()
                   for s in range(n)]  # fmt: skip
    batch = batch_of(np.stack([face] * n), np.zeros((n, 16, 16), np.float32))
    device_means = augmented(aug, batch, seed=0, size=32)["image"].mean((1, 2, 3)) * 255
    for q in (0.1, 0.5, 0.9):
        assert np.quantile(device_means, q) == pytest.approx(np.quantile(numpy_means, q), rel=0.08)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_gaussian_blur_matches_the_numpy_paths_within_rounding(sigma):
    from facepad.data.augment import gaussian_blur as numpy_blur

    crop = smooth_crops(1, 64)[0]
    expected = numpy_blur(crop, sigma).astype(np.float32)
    image = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    got = gaussian_blur(image, torch.tensor([sigma]), 4)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - expected).max() <= 0.51  # uint8 rounding of the numpy path


def test_down_up_scaling_is_close_to_opencvs():
    import cv2

    from facepad.data.augment import shrink

    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    crop = cv2.GaussianBlur(crop, (0, 0), 1.0)
    image = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    for side in (23, 40, 51):
        expected = cv2.resize(shrink(crop, side), (64, 64), interpolation=cv2.INTER_LINEAR)
        got = down_up(image, torch.tensor([float(side)]))[0].permute(1, 2, 0).numpy() * 255
        change = np.abs(expected.astype(float) - crop).mean()
        assert np.abs(got - expected).mean() < 0.25 * change, side


@pytest.mark.parametrize("quality", [30, 60, 90])
def test_emulated_jpeg_is_libjpegs_within_one_quality_step(quality):
    """The emulation loses as much as libjpeg does, and lies closer to libjpeg's result at that
    quality than libjpeg's results at qualities q and q + 1 lie to each other."""
    import simplejpeg
    import skimage.data

    rgb = np.ascontiguousarray(skimage.data.astronaut()[80:208, 160:288])  # a face, 128 px

    def libjpeg(q: int) -> np.ndarray:
        data = simplejpeg.encode_jpeg(rgb, q, colorspace="RGB", colorsubsampling="420")
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastupsample=True).astype(float)

    real = libjpeg(quality)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    got = jpeg_like(image, torch.tensor([float(quality)]))[0].permute(1, 2, 0).numpy() * 255
    loss = np.abs(real - rgb).mean()
    assert np.abs(got - rgb).mean() == pytest.approx(loss, rel=0.03)
    assert np.abs(got - real).mean() < np.abs(libjpeg(quality + 1) - real).mean()


# --- refusals -------------------------------------------------------------------------------


def test_simulated_attacks_stay_on_the_loader_path():
    with pytest.raises(ValueError, match="data.augment_device=loader"):
        DeviceAugment(Augment(simulated_attacks=0.5), 32, 8)
    with pytest.raises(ConfigError, match="simulated_attacks=0.5 .* data.augment_device=loader"):
        load_config(None, ["data.augment_device=device", "data.simulated_attacks=0.5"])
    with pytest.raises(ConfigError, match="data.augment_device must be one of loader, device"):
        load_config(None, ["data.augment_device=gpu"])


def test_a_batch_without_stored_crops_is_a_clear_error():
    with pytest.raises(ValueError, match="needs training items holding the stored `crop`"):
        DeviceAugment(FULL, 32, 8)({"image": torch.zeros(2, 3, 32, 32), "live": torch.ones(2)})


# --- the loader's share and training end to end ------------------------------------------------


@pytest.fixture
def store(tmp_path) -> PreparedStore:
    n = 16
    crops = list(smooth_crops(n, 48))
    depths = [np.full((8, 8), 0.8 * (i % 2), np.float32) for i in range(n)]
    labels = ["live" if i % 2 else "spoof" for i in range(n)]
    return PreparedStore(write_store(tmp_path / "store", crops, depths, labels,
                                     ["train"] * 12 + ["val"] * 4))  # fmt: skip


def test_decode_only_items_are_the_stored_crop_and_map(store):
    ds = StoreDataset(store, "train", 32, 8, decode_only=True)
    item = ds[1]
    assert item["crop"].dtype == torch.uint8 and item["crop"].shape == (48, 48, 3)
    assert np.abs(item["crop"].numpy().astype(int) - store.read_crop(1)).max() == 0
    assert item["depth"].shape == (1, 8, 8) and item["live"].item() == 1.0 and item["idx"] == 1
    with pytest.raises(ValueError, match="pass augment=False"):
        StoreDataset(store, "train", 32, 8, augment=True, decode_only=True)


def test_decode_only_brings_a_smaller_member_store_up_to_the_largest_crop(tmp_path):
    from facepad.data.multistore import MultiStore

    paths = []
    for name, size, depth in (("large", 48, 8), ("small", 32, 4)):
        crops, depths = list(smooth_crops(4, size)), [np.zeros((depth, depth), np.float32)] * 4
        root = write_store(tmp_path / name, crops, depths, ["live", "spoof"] * 2, ["train"] * 4)
        paths.append(f"{name}={root}")
    ds = StoreDataset(MultiStore(paths), "train", 32, 8, decode_only=True)
    batch = torch.utils.data.default_collate([ds[k] for k in range(len(ds))])  # one size: collates
    assert batch["crop"].shape == (8, 48, 48, 3) and batch["depth"].shape == (8, 1, 8, 8)


def metrics_rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("train_samples_per_s", "epoch_s")}
                for r in csv.DictReader(f)]  # fmt: skip


def device_config(out, store, *extra):
    return small_config(
        out, "depth_unet", f"data.store={store.root}", "data.augment_device=device",
        "data.rotate=10", "data.capture_aug=0.8", "data.exposure_aug=0.8",
        "data.sharpness_aug=0.5", "data.batch_size=4", *extra,
    )  # fmt: skip


def test_training_on_the_device_path_draws_the_same_whatever_the_loader_workers(tmp_path, store):
    for workers in (0, 2):
        loop.train(device_config(tmp_path / f"w{workers}", store, f"data.workers={workers}"))
    rows = metrics_rows(tmp_path / "w0" / "depth_unet")
    assert len(rows) == 2 and all(np.isfinite(float(r["train_loss"])) for r in rows)
    assert rows == metrics_rows(tmp_path / "w2" / "depth_unet")


def test_a_device_path_run_resumed_after_a_kill_matches_an_uninterrupted_one(tmp_path, store):
    full = device_config(tmp_path / "a", store, "train.epochs=3")
    loop.train(full)
    killed = device_config(tmp_path / "b", store, "train.epochs=3")
    train_set, val_set, pre = loop.build_datasets(killed)
    with pytest.raises(Killed):  # dies in epoch 2
        loop.train(killed, datasets=(DiesAt(train_set, 12 + 6), val_set, pre))
    loop.train(killed, resume=True)
    a, b = metrics_rows(tmp_path / "a" / "depth_unet"), metrics_rows(tmp_path / "b" / "depth_unet")
    assert [r["epoch"] for r in b] == ["1", "2", "3"]
    for row_a, row_b in zip(a, b, strict=True):
        for key in ("train_loss", "val_loss"):
            assert float(row_b[key]) == pytest.approx(float(row_a[key]), rel=1e-4), key

"""StoreDataset: item contract, augmentation that keeps depth aligned, DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from _prepare_helpers import write_store

from facepad.data.augment import Augment, augment_pair, window_matrix
from facepad.data.dataset import StoreDataset, split_columns
from facepad.data.store import PreparedStore

NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0)


def left_bright(size: int) -> np.ndarray:
    """(size, size) float32: left third bright, the rest dark; an asymmetric map."""
    m = np.full((size, size), 0.2, np.float32)
    m[:, : size // 3] = 1.0
    return m


@pytest.fixture
def store(tmp_path) -> PreparedStore:
    n = 6
    crops = [np.repeat((left_bright(64)[:, :, None] * 255).astype(np.uint8), 3, axis=2)] * n
    depths = [left_bright(16) if i % 2 else np.zeros((16, 16), np.float32) for i in range(n)]
    labels = ["live" if i % 2 else "spoof" for i in range(n)]
    splits = ["train", "train", "train", "train", "val", "val"]
    return PreparedStore(write_store(tmp_path / "s", crops, depths, labels, splits))


def test_item_contract(store):
    ds = StoreDataset(store, "train", input_size=48, depth_size=8, augment=False)
    assert len(ds) == 4
    item = ds[1]
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0
    assert item["depth"].shape == (1, 8, 8) and item["depth"].dtype == torch.float32
    assert item["live"].dtype == torch.float32 and item["live"].item() == 1.0
    assert ds[0]["live"].item() == 0.0 and not ds[0]["depth"].any()
    assert item["idx"] == 1
    same = StoreDataset(store, "val", input_size=64, depth_size=16)[1]
    assert same["idx"] == 5
    np.testing.assert_allclose(same["depth"][0].numpy(), left_bright(16), atol=1 / 255)


def test_flip_moves_image_and_depth_together(store):
    aug = Augment(area=(1.0, 1.0), aspect=(1.0, 1.0), flip=1.0, **NO_JITTER)
    crop = store.read_crop(1)
    image, depth = augment_pair(crop, store.read_depth(1), 64, 16, aug, seed=0)
    np.testing.assert_allclose(depth, left_bright(16)[:, ::-1], atol=1 / 255)
    assert np.abs(image.astype(int) - crop[:, ::-1]).max() <= 2
    assert image[:, -5:].mean() > 240 and image[:, :5].mean() < 60  # bright side moved right


def test_random_crops_keep_depth_aligned():
    """Image = depth map drawn large; after any geometric augmentation they still match."""
    rng = np.random.default_rng(0)
    depth = np.zeros((32, 32), np.float32)
    depth[6:20, 4:14] = 1.0  # an off-centre block
    depth[20:28, 18:30] = 0.5
    crop = np.repeat(np.kron(depth, np.ones((8, 8)))[:, :, None] * 255, 3, axis=2).astype(np.uint8)
    aug = Augment(area=(0.5, 1.0), aspect=(0.8, 1.25), flip=0.5, **NO_JITTER)
    for seed in rng.integers(0, 2**31, 20):
        image, out = augment_pair(crop, depth, 128, 32, aug, int(seed))
        small = image[:, :, 0].reshape(32, 4, 32, 4).mean(axis=(1, 3)) / 255  # (32, 32)
        inner = (slice(2, -2), slice(2, -2))
        assert np.abs(small - out)[inner].mean() < 0.02, seed  # half a pixel off: 0.03


def test_colour_jitter_changes_image_only(store):
    aug = Augment(area=(1.0, 1.0), aspect=(1.0, 1.0), flip=0.0, brightness=0.5, contrast=0.5)
    crop, depth = store.read_crop(1), store.read_depth(1)
    changed = [augment_pair(crop, depth, 64, 16, aug, seed)[0].mean() for seed in range(6)]
    assert np.ptp(changed) > 10
    np.testing.assert_allclose(augment_pair(crop, depth, 64, 16, aug, 3)[1], depth, atol=1e-6)
    grey = np.full((8, 8, 3), (200, 100, 50), np.uint8)
    desat = Augment(area=(1, 1), aspect=(1, 1), flip=0, brightness=0, contrast=0, saturation=0.0)
    np.testing.assert_array_equal(
        augment_pair(grey, depth, 8, 16, desat, 0)[0][0, 0], (200, 100, 50)
    )


def test_window_matrix_identity_and_flip():
    np.testing.assert_allclose(window_matrix((0, 0, 1, 1), False, 10, 10), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(window_matrix((0, 0, 1, 1), True, 10, 10), [[-1, 0, 9], [0, 1, 0]])


def test_dataloader_with_workers_and_pickling(store):
    ds = StoreDataset(store, "train", input_size=32, depth_size=8, augment=True)
    ds[0]  # opens shard maps in this process; they must not travel to the workers
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.store._bins == {}
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=True)
    batches = list(loader)
    idx = sorted(int(i) for b in batches for i in b["idx"])
    assert idx == [0, 1, 2, 3]
    assert batches[0]["image"].shape == (2, 3, 32, 32) and batches[0]["depth"].shape == (2, 1, 8, 8)


def test_split_columns_follow_item_order(store):
    cols = split_columns(store, "train")
    ds = StoreDataset(store, "train", input_size=16, depth_size=4)
    assert list(cols["idx"]) == [ds[k]["idx"] for k in range(len(ds))]
    assert list(cols["is_live"]) == [bool(ds[k]["live"]) for k in range(len(ds))]
    assert list(cols["attack_type"]) == ["print", "live", "print", "live"]
    assert list(cols["session"]) == ["0", "1", "2", "0"]
    assert set(ds.labels()) == set(cols)


def test_empty_split_is_an_error(store):
    with pytest.raises(ValueError, match="split 'test' is empty; splits in this store: train, val"):
        StoreDataset(store, "test", 32, 8)


@pytest.mark.parametrize("scale", [8, 4])  # crop 256 px: resized, then rotated; 128 px: one warp
def test_rotation_keeps_depth_aligned(scale):
    """As above with small rotations on: the rotated image still matches the rotated map."""
    depth = np.zeros((32, 32), np.float32)
    depth[6:20, 4:14] = 1.0
    depth[20:28, 18:30] = 0.5
    block = np.ones((scale, scale))
    crop = np.repeat(np.kron(depth, block)[:, :, None] * 255, 3, axis=2).astype(np.uint8)
    aug = Augment(area=(0.7, 1.0), flip=0.5, rotate=15.0, **NO_JITTER)
    rotated = 0
    for seed in range(30):
        image, out = augment_pair(crop, depth, 128, 32, aug, seed)
        small = image[:, :, 0].reshape(32, 4, 32, 4).mean(axis=(1, 3)) / 255
        inner = (slice(3, -3), slice(3, -3))
        assert np.abs(small - out)[inner].mean() < 0.04, seed
        unrotated, _ = augment_pair(
            crop, depth, 128, 32, Augment(area=(0.7, 1.0), **NO_JITTER), seed
        )
        rotated += not np.array_equal(image, unrotated)
    assert rotated >= 5  # about half the draws rotate


def test_capture_steps_change_the_image_not_its_size_and_repeat_by_seed(store):
    from facepad.data.augment import capture_steps

    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    outs = [capture_steps(crop, np.random.default_rng(s), p=1.0) for s in range(4)]
    assert all(o.shape == crop.shape and o.dtype == np.uint8 for o in outs)
    assert all(np.abs(o.astype(int) - crop).mean() > 2 for o in outs)
    again = capture_steps(crop, np.random.default_rng(2), p=1.0)
    np.testing.assert_array_equal(again, outs[2])
    np.testing.assert_array_equal(capture_steps(crop, np.random.default_rng(0), p=0.0), crop)


def test_exposure_aug_spans_darker_and_brighter_faces_and_is_off_by_default():
    """The spread of mean brightness covers another camera's auto-exposure (x0.6 to x1.6-ish)."""
    face = np.full((64, 64, 3), (150, 110, 90), np.uint8)
    depth = np.zeros((16, 16), np.float32)

    def brightness(aug, seed):
        return augment_pair(face, depth, 64, 16, aug, seed)[0].mean()

    base = brightness(Augment(**NO_JITTER), 0)
    spread = [brightness(Augment(exposure=1.0, **NO_JITTER), s) / base for s in range(60)]
    assert min(spread) < 0.7 and max(spread) > 1.3
    assert {brightness(Augment(**NO_JITTER), s) for s in range(10)} == {base}
    from facepad.config import DataConfig
    from facepad.data.augment import training_augment

    assert training_augment(DataConfig(exposure_aug=0.5)).exposure == 0.5
    assert training_augment(DataConfig()).exposure == 0.0


def test_sharpness_aug_blurs_and_sharpens_and_is_off_by_default():
    """Focus changes go both ways (a model must not read either as liveness) and never move
    the depth target."""
    import cv2

    face = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8),
                            (0, 0), 1.5)  # fmt: skip
    depth = np.random.default_rng(1).random((16, 16)).astype(np.float32)

    def sharpness(aug, seed):
        image, target = augment_pair(face, depth, 64, 16, aug, seed)
        return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var(), target

    base, base_depth = sharpness(Augment(**NO_JITTER), 0)
    runs = [sharpness(Augment(sharpness=1.0, **NO_JITTER), 0)] + [
        sharpness(Augment(sharpness=1.0, **NO_JITTER), s) for s in range(1, 40)
    ]
    ratios = [r / base for r, _ in runs]
    assert min(ratios) < 0.5 and max(ratios) > 2.0
    np.testing.assert_array_equal(runs[0][1], base_depth)
    from facepad.config import DataConfig
    from facepad.data.augment import training_augment

    assert training_augment(DataConfig(sharpness_aug=0.5)).sharpness == 0.5
    assert training_augment(DataConfig()).sharpness == 0.0


def test_simulated_attacks_are_extra_spoofs_with_zero_depth(store):
    aug = Augment(simulated_attacks=1.0)
    ds = StoreDataset(store, "train", input_size=32, depth_size=8, augment=aug)
    live = [k for k in range(4) if ds[k]["live"] == 1.0]
    assert len(ds) == 4 + len(live) == 6  # one simulated spoof per live crop
    for k in (4, 5):
        item = ds[k]
        assert item["live"].item() == 0.0 and not item["depth"].any()
        assert item["idx"] in (1, 3)  # drawn from the live crops
    plain = StoreDataset(store, "train", input_size=32, depth_size=8, augment=True)
    assert len(plain) == 4
    assert len(StoreDataset(store, "val", input_size=32, depth_size=8, augment=False)) == 2


@pytest.mark.parametrize("value", [0, 128, 255])
def test_sensor_noise_has_its_sigma_and_saturates_instead_of_wrapping(value):
    from facepad.data.augment import _add_noise

    image = np.full((200, 200, 3), value, np.uint8)  # wider than the noise tile: it is tiled
    noisy = np.stack([_add_noise(image, np.random.default_rng(s)) for s in range(20)])
    assert noisy.shape == (20, 200, 200, 3) and noisy.dtype == np.uint8
    delta = noisy.astype(float) - value
    if value == 128:  # sigma drawn in [2, 8] per image; integer scaling neither biases nor clips
        assert abs(delta.mean()) < 0.05
        assert all(1.8 < d.std() < 8.2 for d in delta)
    else:  # saturating arithmetic: 255 + noise stops at 255, 0 - noise at 0, never wraps
        assert np.abs(delta).max() <= 40 and np.abs(delta).mean() > 0.5


def test_gaussian_blur_matches_opencvs_within_rounding():
    import cv2

    from facepad.data.augment import gaussian_blur

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for sigma in (0.4, 1.0, 1.5):
        ours = gaussian_blur(image, sigma)
        assert ours.dtype == np.uint8 and ours.shape == image.shape
        assert np.abs(ours.astype(int) - cv2.GaussianBlur(image, (0, 0), sigma)).max() <= 1


def test_plane_wave_matches_the_per_pixel_formula():
    from facepad.data.media import plane_wave

    h, w, angle, period = 37, 53, 0.7, 4.3
    yy, xx = np.mgrid[0:h, 0:w]
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
    cos, sin = plane_wave(h, w, angle, period)
    assert cos.shape == sin.shape == (h, w) and cos.dtype == np.float32
    np.testing.assert_allclose(cos, np.cos(phase), atol=1e-5)
    np.testing.assert_allclose(sin, np.sin(phase), atol=1e-5)


def test_screen_medium_gamma_table_matches_the_float_path():
    from facepad.data.media import screen_medium

    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    for seed in range(5):
        table = screen_medium(image, np.random.default_rng(seed))
        direct = screen_medium(image.astype(np.float32), np.random.default_rng(seed))
        assert table.dtype == np.float32 and table.shape == image.shape
        np.testing.assert_allclose(table, direct, atol=1e-2)


def test_print_medium_colour_matrix_is_desaturate_levels_tint(monkeypatch):
    """The one colour matrix equals the three steps it folds: towards the pixel's grey by the
    kept saturation s, into the paper's black..white levels, times the ink's tint."""
    from facepad.data import media

    monkeypatch.setattr(media, "halftone", lambda img, rng: img)
    monkeypatch.setattr(media, "paper_grain", lambda h, w, rng: np.zeros((h, w), np.float32))
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    for seed in range(5):
        out = media.print_medium(image, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        s, black, white = rng.uniform(0.4, 0.85), rng.uniform(15, 45), rng.uniform(215, 245)
        tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.86, 0.97)])
        f = image.astype(np.float64)
        grey = f.mean(axis=2, keepdims=True)
        expected = tint * (black + (grey + (f - grey) * s) * (white - black) / 255)
        np.testing.assert_allclose(out, expected, atol=1e-3)


def test_paper_grain_is_blurred_unit_noise_in_random_windows():
    from facepad.data.media import paper_grain

    grains = [paper_grain(48, 40, np.random.default_rng(s)) for s in range(3)]
    assert grains[0].shape == (48, 40) and grains[0].dtype == np.float32
    assert not np.array_equal(grains[0], grains[1])
    assert 0.1 < np.std(grains) < 0.3  # unit noise blurred by sigma 1.5: std about 0.19
    big = paper_grain(600, 520, np.random.default_rng(0))  # larger than the cached field
    assert big.shape == (600, 520) and 0.1 < big.std() < 0.3

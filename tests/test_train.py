"""Config loading and overrides, the training loop, checkpoints and resume (CPU, synthetic data)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _train_helpers import DiesAt, Killed, SyntheticPad, small_config, synthetic_datasets

from facepad import metrics
from facepad.cli import main as cli_main
from facepad.config import (
    RECIPES_DIR,
    ConfigError,
    config_from_dict,
    config_to_dict,
    list_recipes,
    load_config,
    save_config,
)
from facepad.models import list_models, model_from_checkpoint, score_outputs
from facepad.models.checkpoint import load_checkpoint
from facepad.train import loop

REPO = Path(__file__).resolve().parents[1]
CKPT_KEYS = {
    "format_version", "model", "state_dict", "config", "epoch", "step", "optimizer", "scheduler",
    "scaler", "rng", "best_metric", "threshold", "preprocess",
}  # fmt: skip


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


# --- config ------------------------------------------------------------------------------------


def test_dotted_overrides_are_typed():
    c = load_config(
        None, ["train.epochs=3", "model.name=fusion", "model.kwargs.theta=0.7", "train.lr=1"]
    )
    assert c.train.epochs == 3 and c.model.name == "fusion"
    assert c.model.kwargs == {"theta": 0.7}
    assert c.train.lr == 1.0 and isinstance(c.train.lr, float)
    assert load_config(None, ["model.kwargs.widths=[8, 16]"]).model.kwargs["widths"] == [8, 16]
    assert load_config(None, ["train.loss.contrastive_weight=0.5"]).train.loss.contrastive_weight


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'train.epoch'.*epochs, lr"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="'train.loss.bce'.*binary_weight, depth_weight"):
        load_config(None, ["train.loss.bce=1"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  input_sise: 64\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: unknown config key 'data.input_sise'"):
        load_config(recipe)


def test_bad_values_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs must be a int"):
        load_config(None, ["train.epochs=three"])
    with pytest.raises(ConfigError, match="train.amp must be one of bf16, fp16, none"):
        load_config(None, ["train.amp=fp8"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("recipe", list_recipes())
def test_recipes_load_and_round_trip(recipe):
    c = load_config(recipe)
    assert config_from_dict(config_to_dict(c)) == c
    assert c.data.input_size % c.data.depth_size == 0


def test_gpu_recipe_is_at_the_papers_scale():
    c = load_config("celeba_intra_gpu")
    assert (c.data.input_size, c.data.depth_size) == (256, 32)
    assert c.data.batch_size >= 64 and c.train.amp == "bf16" and c.train.compile
    assert c.data.augment_device == "device"  # the loader only decodes: it keeps a GPU fed
    assert load_config("nuaa_cpu").data.augment_device == "loader"  # faster on a CPU


def test_per_model_sections_follow_the_model_name():
    shared = load_config("nuaa_cpu").model.kwargs
    binary = load_config("nuaa_cpu", ["model.name=binary_cnn"]).model.constructor_kwargs()
    assert binary == shared and "theta" not in binary
    fusion = load_config("nuaa_cpu", ["model.name=fusion"]).model.constructor_kwargs()
    assert fusion == {**shared, "theta": 0.7}
    changed = load_config(
        "nuaa_cpu", ["model.name=fusion", "model.per_model.fusion.kwargs.theta=0.3"]
    )
    assert changed.model.constructor_kwargs()["theta"] == 0.3
    # another model's section leaves this one alone
    other = load_config("nuaa_cpu", ["model.per_model.fusion.kwargs.theta=0.3"])
    assert other.model.constructor_kwargs()["theta"] == 0.7


def test_per_model_data_settings_apply_to_that_model_under_command_line_overrides():
    section = "model.per_model.depth_unet.data.exposure_aug=0.8"
    assert load_config(None, ["model.name=depth_unet", section]).data.exposure_aug == 0.8
    assert load_config(None, ["model.name=binary_cnn", section]).data.exposure_aug == 0.0
    given = ["model.name=depth_unet", section, "data.exposure_aug=0.1"]
    assert load_config(None, given).data.exposure_aug == 0.1  # the command line wins


@pytest.mark.parametrize("exposure", ["0", "0.8"])
def test_a_saved_config_with_per_model_data_loads_back_unchanged(exposure, tmp_path):
    """Resume and benchmark reruns read config.yaml back: a data.* override must survive that."""
    config = load_config("nuaa_cpu", ["model.name=depth_unet", f"data.exposure_aug={exposure}"])
    save_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again.data.exposure_aug == float(exposure)
    assert config_to_dict(again) == config_to_dict(config)
    with pytest.raises(ConfigError, match="unknown config key 'data.exposure'"):
        load_config(None, ["model.per_model.depth_unet.data.exposure=0.8"])


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (["model.name=binary_cnn", "model.kwargs.theta=0.7"], "binary_cnn.*theta"),
        (["model.name=binary_cnn", "model.per_model.binary_cnn.kwargs.dropot=0.1"], "dropot"),
        (["model.per_model.fusoin.kwargs.theta=0.5"], "per_model.fusoin: no such model"),
    ],
)
def test_a_model_argument_typo_stays_an_error(overrides, error, tmp_path):
    config = small_config(tmp_path, "depth_unet", *overrides)
    with pytest.raises(ValueError, match=error):
        loop.build_model(config)


def test_per_model_section_keys_are_checked():
    with pytest.raises(ConfigError, match="unknown config key model.per_model.fusion.kwarg"):
        load_config(None, ["model.per_model.fusion.kwarg.theta=0.5"])
    with pytest.raises(ConfigError, match="model.per_model.fusion must be a mapping"):
        load_config(None, ["model.per_model.fusion=3"])


def test_recipes_by_name_or_path(tmp_path):
    assert load_config("nuaa_cpu") == load_config(RECIPES_DIR / "nuaa_cpu.yaml")
    assert load_config("nuaa_cpu.yaml") == load_config("nuaa_cpu")
    own = tmp_path / "nuaa_cpu.yaml"  # a file of that name in the working folder wins
    own.write_text("train:\n  epochs: 1\n")
    assert load_config(own).train.epochs == 1
    with pytest.raises(ConfigError, match="'configs/nuaa_cpu.yaml' not found.*demo_cpu.*nuaa_cpu"):
        load_config("configs/nuaa_cpu.yaml")  # the old checkout path is not a name


@pytest.mark.parametrize("model", list_models())
@pytest.mark.parametrize("recipe", list_recipes())
def test_every_model_takes_an_optimisation_step_with_every_recipe(recipe, model, tmp_path):
    """What `reproduce` and `train` build from each packaged recipe, at the recipe's own sizes
    and widths, trained for one step on CPU (GPU-only switches off; the synthetic items are
    model inputs already, so the loader path: test_device_augment trains on the device path)."""
    cpu = ["train.compile=false", "train.device=cpu", "train.threads=1", "data.workers=0",
           "data.augment_device=loader"]  # fmt: skip
    overrides = [f"model.name={model}", "data.batch_size=2", "train.epochs=1", *cpu]
    config = load_config(recipe, [*overrides, f"out_dir={tmp_path}"])
    torch.manual_seed(config.train.seed)
    start = loop.build_model(config).state_dict()
    d = config.data
    best = loop.train(config, datasets=synthetic_datasets(2, 2, d.input_size, d.depth_size))
    ckpt = load_checkpoint(best)
    assert best.parent.name == model and ckpt["step"] == 1
    # every constructor kwarg is kept, but `pretrained` (where training starts; the checkpoint
    # holds the weights)
    asked = {k: v for k, v in config.model.constructor_kwargs().items() if k != "pretrained"}
    assert ckpt["model"]["kwargs"].items() >= asked.items()
    moved = [k for k, v in ckpt["state_dict"].items() if not torch.equal(v, start[k])]
    assert any(k.endswith("weight") for k in moved), "one step changed no weight"


# --- training ----------------------------------------------------------------------------------


def test_train_writes_a_run_and_a_loadable_checkpoint(tmp_path):
    config = small_config(tmp_path, "fusion")
    best = loop.train(config, datasets=synthetic_datasets())
    run_dir = tmp_path / "fusion"
    assert best == run_dir / "best.pt" and (run_dir / "last.pt").is_file()
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == config_to_dict(config)
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard events"
    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["val_loss"])) for r in rows)

    ckpt = load_checkpoint(best)
    assert set(ckpt) >= CKPT_KEYS
    assert ckpt["model"]["name"] == "fusion" and ckpt["model"]["kwargs"]["map_stride"] == 4
    assert ckpt["preprocess"]["input_size"] == 32 and "crop_scale" in ckpt["preprocess"]
    # The saved threshold, applied to the saved model's own val scores (recomputed here), gives
    # the val rates logged for its epoch, and sits at the val EER point (smallest APCER-BPCER gap
    # over every decision point, counted by hand).
    val = SyntheticPad(16, 32, 8, seed=1)  # synthetic_datasets()'s val set
    model, _ = model_from_checkpoint(best)
    with torch.no_grad():
        images = torch.stack([val[i]["image"] for i in range(len(val))])
        val_scores = score_outputs(model, model(images)).numpy()
    is_live = np.array([bool(val[i]["live"]) for i in range(len(val))])

    def rates(threshold: float) -> tuple[float, float]:
        accepted = val_scores >= threshold
        return accepted[~is_live].mean(), (~accepted[is_live]).mean()

    logged = next(r for r in rows if int(r["epoch"]) == ckpt["epoch"])
    assert float(logged["threshold"]) == pytest.approx(ckpt["threshold"], abs=1e-7)
    apcer, bpcer = rates(ckpt["threshold"])
    assert (apcer, bpcer) == pytest.approx((float(logged["val_apcer"]), float(logged["val_bpcer"])))
    gaps = [abs(np.subtract(*rates(t))) for t in [*val_scores, np.inf]]
    assert abs(apcer - bpcer) == pytest.approx(min(gaps))
    assert ckpt["step"] == ckpt["epoch"] * 4  # 32 samples / batch 8
    model, _ = model_from_checkpoint(best)
    batch = torch.stack([SyntheticPad(4, 32, 8, seed=5)[i]["image"] for i in range(4)])
    with torch.no_grad():
        score = score_outputs(model, model(batch))
    assert ((score >= 0) & (score <= 1)).all()
    assert not list(run_dir.glob("*.tmp")), "atomic write left a temporary file"


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path):
    config = small_config(tmp_path, "binary_cnn", "train.epochs=1")
    with pytest.raises(FileNotFoundError, match="no .*last.pt to continue"):
        loop.train(config, resume=True, datasets=synthetic_datasets())
    loop.train(config, datasets=synthetic_datasets())
    with pytest.raises(FileExistsError, match="pass --resume"):
        loop.train(config, datasets=synthetic_datasets())


def test_resume_after_a_kill_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    overrides = ["train.epochs=3", "data.augment=false"]
    full = small_config(tmp_path / "a", "depth_unet", *overrides)
    loop.train(full, datasets=synthetic_datasets())

    killed = small_config(tmp_path / "b", "depth_unet", *overrides)
    train_set, val_set, pre = synthetic_datasets()
    with pytest.raises(Killed):  # dies in epoch 2, after epoch 1's checkpoint
        loop.train(killed, datasets=(DiesAt(train_set, 32 + 12), val_set, pre))
    assert load_checkpoint(tmp_path / "b" / "depth_unet" / "last.pt")["epoch"] == 1
    loop.train(killed, resume=True, datasets=synthetic_datasets())

    a = load_checkpoint(tmp_path / "a" / "depth_unet" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "depth_unet" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    rows_a = read_metrics(tmp_path / "a" / "depth_unet")
    rows_b = read_metrics(tmp_path / "b" / "depth_unet")
    assert [r["epoch"] for r in rows_b] == ["1", "2", "3"]
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert float(ra["train_loss"]) == pytest.approx(float(rb["train_loss"]), rel=1e-4)


def test_early_stopping(tmp_path, monkeypatch):
    # Validation that never improves after epoch 1: patience 2 stops after epoch 3.
    flat = {
        "val_loss": 0.5, "val_apcer": 0.1, "val_bpcer": 0.1, "val_acer": 0.1, "val_auc": 0.9,
        "val_eer": 0.1, "threshold": 0.5,
    }  # fmt: skip
    monkeypatch.setattr(loop, "validate", lambda *args, **kwargs: dict(flat))
    config = small_config(tmp_path, "binary_cnn", "train.epochs=6", "train.early_stop_patience=2")
    loop.train(config, datasets=synthetic_datasets())
    assert len(read_metrics(tmp_path / "binary_cnn")) == 3
    assert load_checkpoint(tmp_path / "binary_cnn" / "best.pt")["epoch"] == 1


class LiveOnly(torch.utils.data.Dataset):
    """The live items of a synthetic set: a validation split with one class."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base) // 2

    def __getitem__(self, i):
        return self.base[2 * i]  # even indices are live


def test_a_one_class_val_split_gives_an_uncalibrated_checkpoint(tmp_path, capsys):
    from facepad.models.checkpoint import UncalibratedError, checkpoint_threshold, is_calibrated

    train_set, val_set, pre = synthetic_datasets()
    config = small_config(tmp_path, "binary_cnn", "train.epochs=2")
    best = loop.train(config, datasets=(train_set, LiveOnly(val_set), pre))
    out = capsys.readouterr().out
    assert out.count("the val split holds one class") == 1  # said once, not every epoch
    assert "UNCALIBRATED" in out and "--threshold" in out
    ckpt = load_checkpoint(best)
    assert ckpt["calibrated"] is False and ckpt["threshold"] is None and not is_calibrated(ckpt)
    with pytest.raises(UncalibratedError, match=r"best\.pt is uncalibrated.*--threshold T"):
        checkpoint_threshold(ckpt, str(best))
    assert checkpoint_threshold(ckpt, str(best), threshold=0.4) == 0.4
    rows = read_metrics(tmp_path / "binary_cnn")
    assert [r["threshold"] for r in rows] == ["", ""] and all(r["val_loss"] for r in rows)


def test_a_two_class_val_split_gives_a_calibrated_checkpoint(tmp_path):
    from facepad.models.checkpoint import checkpoint_threshold

    config = small_config(tmp_path, "binary_cnn", "train.epochs=1")
    best = loop.train(config, datasets=synthetic_datasets())
    ckpt = load_checkpoint(best)
    assert ckpt["calibrated"] is True and 0 <= ckpt["threshold"] <= 1
    assert checkpoint_threshold(ckpt, str(best)) == ckpt["threshold"]


def test_depth_size_must_match_the_model(tmp_path):
    config = small_config(tmp_path, "depth_unet", "model.kwargs.map_stride=2")
    with pytest.raises(ValueError, match="16x16 depth map.*depth_size is 8"):
        loop.train(config, datasets=synthetic_datasets())


def test_cli_reports_config_errors(tmp_path, capsys):
    recipe = RECIPES_DIR / "demo_cpu.yaml"
    assert cli_main(["train", str(recipe), "train.epochz=1"]) == 2
    assert "unknown config key 'train.epochz'" in capsys.readouterr().err
    assert cli_main(["train", str(recipe), f"data.store={tmp_path / 'none'}"]) == 2
    assert "none" in capsys.readouterr().err


# --- real data -----------------------------------------------------------------------------------


def centre_crops(nuaa_dev: Path, per_class: int, size: int) -> list[tuple[np.ndarray, bool]]:
    """Plain centre crops of subject 0001 (the face is near the frame centre in nuaa-dev)."""
    import cv2

    with open(nuaa_dev / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for label in ("live", "spoof"):
        picked = [r for r in rows if r["subject"] == "0001" and r["label"] == label][:per_class]
        for r in picked:
            bgr = cv2.imread(str(nuaa_dev / r["path"]))
            h, w = bgr.shape[:2]
            side = min(h, w) * 3 // 4
            y0, x0 = (h - side) // 2, (w - side) // 2
            crop = cv2.resize(bgr[y0 : y0 + side, x0 : x0 + side], (size, size))
            out.append((crop[:, :, ::-1].copy(), label == "live"))
    return out


class CropSet(torch.utils.data.Dataset):
    def __init__(self, crops, depth_size: int):
        self.crops, self.depth_size = crops, depth_size

    def __len__(self):
        return len(self.crops)

    def __getitem__(self, i):
        rgb, live = self.crops[i]
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "live": torch.tensor(float(live)),
            "depth": torch.zeros(1, self.depth_size, self.depth_size),
            "idx": i,
        }


def test_loss_goes_down_on_real_nuaa_dev_crops(tmp_path, nuaa_dev):
    crops = centre_crops(nuaa_dev, per_class=12, size=32)
    data = (CropSet(crops, 8), CropSet(crops, 8), {"crop_scale": 1.0, "input_size": 32})
    config = small_config(tmp_path, "binary_cnn", "train.epochs=12", "train.lr=0.01")
    loop.train(config, datasets=data)
    losses = [float(r["train_loss"]) for r in read_metrics(tmp_path / "binary_cnn")]
    assert losses[-1] < 0.8 * losses[0], losses


def test_saved_threshold_keeps_a_margin_below_the_eer_score():
    scores = np.array([0.1, 0.2, 0.6, 0.8])
    assert metrics.margin_threshold(scores, 0.6) == pytest.approx(0.4)
    assert metrics.margin_threshold(scores, 0.1) == 0.1  # nothing below: unchanged


def test_ema_ships_averaged_weights_and_resumes_with_the_trained_ones(tmp_path):
    overrides = ["train.epochs=2", "data.augment=false", "train.ema=0.9"]
    config = small_config(tmp_path / "a", "depth_unet", *overrides)
    loop.train(config, datasets=synthetic_datasets())
    last = load_checkpoint(tmp_path / "a" / "depth_unet" / "last.pt")
    assert last["ema"]["updates"] == last["step"] == 8
    shipped, trained = last["state_dict"], last["train_state_dict"]
    assert set(shipped) == set(trained)
    differ = [k for k in shipped if shipped[k].is_floating_point()]
    assert any(not torch.equal(shipped[k], trained[k]) for k in differ)
    model, _ = model_from_checkpoint(last)  # the averaged weights load as the model
    assert torch.equal(model.state_dict()[differ[0]], shipped[differ[0]])

    # a resumed EMA run continues from the trained weights and the average's state
    killed = small_config(tmp_path / "b", "depth_unet", *overrides)
    train_set, val_set, pre = synthetic_datasets()
    with pytest.raises(Killed):
        loop.train(killed, datasets=(DiesAt(train_set, 32 + 12), val_set, pre))
    loop.train(killed, resume=True, datasets=synthetic_datasets())
    again = load_checkpoint(tmp_path / "b" / "depth_unet" / "last.pt")
    for key, value in shipped.items():
        torch.testing.assert_close(again["state_dict"][key], value, rtol=1e-4, atol=1e-5)


def test_selection_by_val_loss_or_auc(tmp_path, monkeypatch):
    # val ACER is 0 at epochs 1, 2, 4 (ties go to the lower loss: 4); the loss is lowest at 3;
    # AUC peaks at 2.
    epochs = [(0.0, 0.5, 0.97), (0.0, 0.45, 0.99), (0.1, 0.3, 0.98), (0.0, 0.4, 0.96)]
    for select, best_epoch in (("acer", 4), ("loss", 3), ("auc", 2)):
        vals = iter(
            {"val_loss": loss, "val_apcer": acer, "val_bpcer": acer, "val_acer": acer,
             "val_auc": auc, "val_eer": 0.0, "threshold": 0.5}
            for acer, loss, auc in epochs
        )  # fmt: skip
        monkeypatch.setattr(loop, "validate", lambda *args, _vals=vals, **kwargs: next(_vals))
        extra = ("train.epochs=4", f"train.select={select}")
        config = small_config(tmp_path / select, "binary_cnn", *extra)
        loop.train(config, datasets=synthetic_datasets())
        assert load_checkpoint(tmp_path / select / "binary_cnn" / "best.pt")["epoch"] == best_epoch


def test_selection_by_the_worst_datasets_auc(tmp_path, monkeypatch):
    # pooled AUC peaks at epoch 1, but one dataset ranks worst there: worst_auc keeps epoch 3
    epochs = [(0.99, 0.80), (0.97, 0.85), (0.98, 0.93), (0.96, 0.90)]
    vals = iter(
        {"val_loss": 0.5, "val_apcer": 0.1, "val_bpcer": 0.1, "val_acer": 0.1, "val_auc": auc,
         "val_eer": 0.1, "threshold": 0.5, "val_worst_auc": worst}
        for auc, worst in epochs
    )  # fmt: skip
    monkeypatch.setattr(loop, "validate", lambda *args, _vals=vals, **kwargs: next(_vals))
    config = small_config(tmp_path, "binary_cnn", "train.epochs=4", "train.select=worst_auc")
    loop.train(config, datasets=synthetic_datasets())
    best = load_checkpoint(tmp_path / "binary_cnn" / "best.pt")
    assert best["epoch"] == 3 and best["best_metric"]["val_worst_auc"] == 0.93

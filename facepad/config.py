"""Run configuration: dataclasses, YAML recipes and dotted command-line overrides.

`load_config("nuaa_cpu", ["train.epochs=3", "model.name=fusion"])`. A recipe is a YAML file, named
by its path or, for the recipes shipped in the package (facepad/configs/*.yaml), by its name.
Every key is checked: a typo is an error naming it and the valid keys, never a silently ignored
setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    store: str = ""  # a folder written by `facepad prepare`
    # Several stores trained on as one (used instead of `store` when set): "PATH", "NAME=PATH" or
    # {path: PATH, name: NAME, splits: CSV}; see facepad.data.multistore.
    stores: list[Any] = field(default_factory=list)
    balance: str = "none"  # none | dataset | class | dataset_class: train draws evenly per group
    epoch_samples: int = 0  # balanced training: items drawn per epoch; 0 = the train split's size
    input_size: int = 128  # model input, pixels (the stored crop is resized to this)
    depth_size: int = 32  # depth map side; must equal input_size / model map_stride
    batch_size: int = 32  # global batch: split over DDP ranks
    workers: int = 0  # DataLoader worker processes per rank
    augment: bool = True  # geometry and colour jitter on the train split
    rotate: float = 0.0  # max crop rotation, degrees (with augment)
    capture_aug: float = 0.0  # probability scale of camera-side steps: gamma, blur, noise, JPEG...
    exposure_aug: float = 0.0  # probability of a strong exposure change: gain, gamma, saturation
    sharpness_aug: float = 0.0  # probability of a focus change: Gaussian blur or unsharp mask
    simulated_attacks: float = 0.0  # extra simulated print/replay spoofs, per live train crop
    # where the train split is augmented: per sample in the DataLoader (numpy/cv2), or in
    # batches on the training device (torch; the loader only decodes), which keeps a GPU fed
    augment_device: str = "loader"  # loader | device
    train_split: str = "train"
    val_split: str = "val"


@dataclass
class ModelConfig:
    """Which model to build. One recipe serves every model: `kwargs` go to each model's
    constructor, and `per_model[name]["kwargs"]` are added for that model only (a binary CNN
    has no CDC `theta`). An argument a constructor does not take is an error, never dropped.
    `per_model[name]["data"]` sets `data.*` keys for that model (load_config applies it; a
    command-line `data.*` override still wins)."""

    name: str = "depth_unet"
    kwargs: dict[str, Any] = field(default_factory=dict)  # every model's constructor gets these
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # {name: {kwargs, data}}

    def constructor_kwargs(self) -> dict[str, Any]:
        """The kwargs the named model is built with: shared kwargs, then its own section."""
        own = (self.per_model.get(self.name) or {}).get("kwargs") or {}
        return {**self.kwargs, **own}


@dataclass
class LossConfig:
    binary_weight: float = 1.0  # BCE on the logit (binary_cnn, fusion)
    depth_weight: float = 1.0  # depth MSE (depth_unet, fusion)
    contrastive_weight: float = 0.0  # contrastive depth loss, relative to the depth MSE
    label_smoothing: float = 0.0  # BCE targets 1 - s/2 and s/2 instead of 1 and 0


@dataclass
class TrainConfig:
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5  # linear warm-up, in epochs (fractions allowed)
    schedule: str = "cosine"  # cosine | step
    step_epochs: int = 10  # step schedule: multiply lr by step_gamma every step_epochs
    step_gamma: float = 0.1
    grad_clip: float = 5.0  # max gradient norm; 0 = off
    amp: str = "none"  # bf16 | fp16 | none; autocast on CUDA only
    channels_last: bool = True
    compile: bool = False  # torch.compile the model
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower)
    early_stop_patience: int = 0  # stop after this many epochs without a better val figure; 0 = off
    # best epoch by val acer | auc | loss (never saturates at 0 %) | worst_auc (several stores:
    # the lowest per-dataset AUC, so one dataset can veto an epoch)
    select: str = "acer"
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    threads: int = 0  # torch threads per process; 0 = CPU cores / local processes
    device: str = "auto"  # auto | cpu | cuda
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs"
    run_name: str = ""  # run folder is out_dir/run_name; empty = the model name


CHOICES = {
    "data.balance": ("none", "dataset", "class", "dataset_class"),
    "data.augment_device": ("loader", "device"),
    "train.schedule": ("cosine", "step"),
    "train.amp": ("bf16", "fp16", "none"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.select": ("acer", "auc", "loss", "worst_auc"),
}


PER_MODEL_KEYS = ("kwargs", "data")
RECIPES_DIR = Path(__file__).resolve().parent / "configs"  # the recipes shipped in the package


class ConfigError(ValueError):
    """A recipe or override that does not fit the Config dataclasses."""


def list_recipes() -> list[str]:
    """Names of the packaged recipes (`facepad train NAME` accepts them)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(recipe: str | Path) -> Path:
    """A recipe file from a path, or from the name of a packaged recipe (with or without .yaml)."""
    path = Path(recipe)
    if path.is_file():
        return path
    packaged = RECIPES_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    raise ConfigError(
        f"recipe {str(recipe)!r} not found: it is not a file, nor a packaged recipe "
        f"({', '.join(list_recipes())}); pass a YAML path or one of these names"
    )


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, current: Any, key: str, where: str) -> Any:
    """Check a value against the default's type; ints are accepted where floats are expected."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, (int, float, str)) and not isinstance(value, type(current)):
        raise ConfigError(f"{where}: {key} must be a {type(current).__name__}, got {value!r}")
    if isinstance(current, dict) and not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
    if isinstance(current, list) and not isinstance(value, list):
        raise ConfigError(f"{where}: {key} must be a list, e.g. [a, b], got {value!r}")
    return value


def _merge(obj: Any, values: dict, prefix: str, where: str) -> None:
    """Set dataclass fields from a nested dict, refusing unknown keys."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {prefix or 'the recipe'} must be a mapping, got {values!r}")
    names = _field_names(type(obj))
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(
                f"{where}: unknown config key {dotted!r}; valid keys under "
                f"{prefix.rstrip('.') or 'the top level'}: {', '.join(names)}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, dotted + ".", where)
        else:
            setattr(obj, key, _coerce(value, current, dotted, where))


def _apply_override(config: Config, override: str) -> None:
    """`a.b.c=value`, the value parsed as YAML (so 3 is an int, true a bool, [1, 2] a list)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. train.epochs=3")
    dotted, raw = override.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    parts = dotted.strip().split(".")
    # model.kwargs.<anything> and model.per_model.<anything> go into free-form dicts (checked
    # by validate and by the model's constructor).
    if parts[0] == "model" and len(parts) > 2 and parts[1] in ("kwargs", "per_model"):
        target = getattr(config.model, parts[1])
        for part in parts[2:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
        return
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    _merge(config, nested, "", f"override {override!r}")


def _validate_per_model(per_model: dict) -> None:
    for name, section in per_model.items():
        where = f"model.per_model.{name}"
        if not isinstance(section, dict):
            raise ConfigError(
                f"{where} must be a mapping like {{kwargs: {{...}}}}, got {section!r}"
            )
        unknown = sorted(set(section) - set(PER_MODEL_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown config key {where}.{unknown[0]}; valid keys under {where}: "
                f"{', '.join(PER_MODEL_KEYS)}"
            )
        for key in PER_MODEL_KEYS:
            if not isinstance(section.get(key, {}), dict):
                raise ConfigError(f"{where}.{key} must be a mapping, got {section[key]!r}")
        _merge(DataConfig(), section.get("data", {}), "data.", where)  # unknown keys fail here


def validate(config: Config) -> None:
    for dotted, allowed in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value not in allowed:
            raise ConfigError(f"{dotted} must be one of {', '.join(allowed)}, got {value!r}")
    for dotted in ("data.input_size", "data.depth_size", "data.batch_size", "train.epochs"):
        section, key = dotted.split(".")
        if getattr(getattr(config, section), key) < 1:
            raise ConfigError(f"{dotted} must be at least 1")
    if config.data.workers < 0:
        raise ConfigError("data.workers must be 0 or more")
    if config.data.augment_device == "device" and config.data.simulated_attacks > 0:
        raise ConfigError(
            f"data.simulated_attacks={config.data.simulated_attacks} runs per sample in the "
            "loader (print and replay media in numpy): set data.augment_device=loader, or "
            "data.simulated_attacks=0 to augment on the device"
        )
    _validate_per_model(config.model.per_model)
    for entry in config.data.stores:
        if not isinstance(entry, (str, dict)):
            raise ConfigError(
                f"data.stores entry {entry!r}: give PATH, NAME=PATH or {{path: ..., name: ...}}"
            )


def load_config(recipe: str | Path | None = None, overrides: list[str] | tuple = ()) -> Config:
    """Defaults, then the YAML recipe (a path or a packaged recipe's name), then the dotted
    overrides, in order; then the named model's `per_model` data settings, under any `data.*`
    override given here."""
    config = Config()
    if recipe is not None:
        path = recipe_path(recipe)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        _merge(config, values, "", str(path))
    for override in overrides:
        _apply_override(config, override)
    validate(config)
    # Applied once: the resolved data.* keep the values and the section goes, so a saved
    # config.yaml loads back unchanged (a data.* override is not undone on resume or rerun).
    own_data = (config.model.per_model.get(config.model.name) or {}).pop("data", None) or {}
    if own_data:
        _merge(config.data, own_data, "data.", f"model.per_model.{config.model.name}.data")
        for override in overrides:
            if override.strip().startswith("data."):
                _apply_override(config, override)
        validate(config)
    return config


def config_from_dict(values: dict) -> Config:
    """Rebuild a Config from its plain dict (as stored in config.yaml and checkpoints)."""
    config = Config()
    _merge(config, values, "", "config dict")
    validate(config)
    return config


def config_to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

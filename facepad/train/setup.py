"""Setting a training run up: datasets, model, optimiser and schedule, loaders, --resume.

`setup_run` builds everything a `Run` holds; `build_model` is the one place a trained model is
constructed (and probed: its depth map must match `data.depth_size`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset

from facepad.config import Config, save_config
from facepad.data.device_augment import device_augment
from facepad.models.checkpoint import load_checkpoint, restore_training_state
from facepad.models.losses import PadLoss
from facepad.models.registry import create_model, list_models
from facepad.train import distributed as fdist
from facepad.train.ema import EMA
from facepad.train.recording import rewrite_metrics
from facepad.train.run import Run, run_dir_of

DEPTH_MODELS = ("depth_unet", "fusion")


def build_datasets(config: Config) -> tuple[Dataset, Dataset, dict]:
    """(train set, val set, preprocess dict) from the prepared store named in the config."""
    from facepad.data.augment import training_augment
    from facepad.data.dataset import StoreDataset
    from facepad.data.multistore import balanced, open_stores

    d = config.data
    store = open_stores(d.store, d.stores)  # one store, or several (data.stores) as one
    augment = training_augment(d)
    on_device = augment is not None and d.augment_device == "device"  # the loader only decodes
    train_set = StoreDataset(
        store, d.train_split, d.input_size, d.depth_size,
        augment=False if on_device else augment, decode_only=on_device,
    )  # fmt: skip
    train_set = balanced(train_set, d.balance, d.epoch_samples)
    val_set = StoreDataset(store, d.val_split, d.input_size, d.depth_size, augment=False)
    for split, ds in ((d.train_split, train_set), (d.val_split, val_set)):
        if len(ds) == 0:
            raise ValueError(f"{store.root} has no {split!r} samples: re-run prepare")
    preprocess = {
        "crop_scale": float(store.meta.get("crop_scale", 1.3)),
        "crop_size": store.crop_size,  # inference crops at this size, then resizes to input_size
        "input_size": d.input_size,
        "depth_size": d.depth_size,
    }
    return train_set, val_set, preprocess


def build_model(config: Config) -> nn.Module:
    """The configured model; depth models get map_stride = input_size / depth_size by default."""
    if config.model.name not in list_models():
        raise ValueError(
            f"model.name={config.model.name}: not a model to train; choose one of "
            f"{', '.join(list_models())} (an ensemble is built from trained checkpoints with "
            "`facepad ensemble`)"
        )
    unknown = sorted(set(config.model.per_model) - set(list_models()))
    if unknown:
        raise ValueError(
            f"model.per_model.{unknown[0]}: no such model ({', '.join(list_models())})"
        )
    kwargs = config.model.constructor_kwargs()
    d = config.data
    if config.model.name in DEPTH_MODELS and "map_stride" not in kwargs:
        if d.input_size % d.depth_size:
            raise ValueError(
                f"data.input_size {d.input_size} is not a multiple of data.depth_size "
                f"{d.depth_size}: the depth map is input_size / map_stride"
            )
        kwargs["map_stride"] = d.input_size // d.depth_size
    model = create_model(config.model.name, **kwargs)
    probe = _probe(model, d.input_size)
    if "depth" in probe:
        got = probe["depth"].shape[-1]
        if got != d.depth_size:
            raise ValueError(
                f"model gives a {got}x{got} depth map for {d.input_size}x{d.input_size} input, "
                f"data.depth_size is {d.depth_size}: fix model.kwargs.map_stride or the sizes"
            )
    return model


def _probe(model: nn.Module, size: int) -> dict[str, torch.Tensor]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    return out


def lr_lambda(config: Config, steps_per_epoch: int):
    """Linear warm-up, then cosine to zero (or step decay), as a factor of train.lr per step."""
    t = config.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = int(t.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if t.schedule == "step":
            return t.step_gamma ** (step // max(1, t.step_epochs * steps_per_epoch))
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def setup_run(
    config: Config,
    info: fdist.DistInfo,
    resume: bool,
    datasets: tuple[Dataset, Dataset, dict] | None,
) -> Run:
    """Data, model, optimiser and schedule of a run; its state from last.pt when resuming."""
    t, d = config.train, config.data
    _seed_and_backends(config, info)
    run_dir = run_dir_of(config)
    _check_run_dir(run_dir, resume)
    if d.batch_size % info.world_size:
        raise ValueError(
            f"data.batch_size {d.batch_size} (global) does not split over {info.world_size} ranks"
        )
    per_rank_batch = d.batch_size // info.world_size
    train_set, val_set, preprocess = datasets if datasets is not None else build_datasets(config)
    model = build_model(config).to(info.device)  # same seed on every rank: same initial weights
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    loader = train_loader(train_set, per_rank_batch, config, info)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, len(loader)))
    run = Run(
        config=config,
        info=info,
        run_dir=run_dir,
        model=model,
        train_model=model,
        loss_fn=PadLoss(**vars(t.loss)).to(info.device),
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=info.device.type == "cuda" and t.amp == "fp16"),
        loader=loader,
        val_loader=val_loader_for(val_set, per_rank_batch, d.workers, info),
        preprocess=preprocess,
        ema=EMA(model, t.ema) if t.ema else None,
        device_augment=device_augment(d),  # None unless data.augment_device=device
    )
    if resume:
        _resume(run)
    run.train_model = wrap_for_training(model, info, t.compile)
    if info.is_main:
        _open_run_dir(run, len(train_set), len(val_set))
    return run


def _seed_and_backends(config: Config, info: fdist.DistInfo) -> None:
    t, device = config.train, info.device
    torch.set_num_threads(t.threads or fdist.default_threads(info))
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    last = run_dir / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no {last} to continue; start without --resume")
    if not resume and last.is_file():
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume to continue it, or choose another "
            "folder with run_name=... or out_dir=..."
        )


def train_loader(
    train_set: Dataset, per_rank_batch: int, config: Config, info: fdist.DistInfo
) -> DataLoader:
    """Shuffled batches of this rank's share of the train set (DistributedSampler under DDP)."""
    d, t = config.data, config.train
    if info.distributed:
        sampler = DistributedSampler(train_set, shuffle=True, seed=t.seed, drop_last=True)
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator())
    loader = DataLoader(
        train_set,
        batch_size=per_rank_batch,
        sampler=sampler,
        num_workers=d.workers,
        drop_last=len(train_set) // info.world_size >= per_rank_batch,
        pin_memory=info.device.type == "cuda",
        persistent_workers=d.workers > 0,
    )
    if len(loader) == 0:
        raise ValueError(f"train split has {len(train_set)} samples: fewer than one batch")
    return loader


def wrap_for_training(model: nn.Module, info: fdist.DistInfo, compile: bool) -> nn.Module:
    """DDP first, then torch.compile, as PyTorch recommends (the compiler sees DDP's buckets)."""
    wrapped = model
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [info.device.index] if info.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=ids)
    if compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def val_loader_for(val_set: Dataset, batch_size: int, workers: int, info: fdist.DistInfo):
    """This rank's contiguous share of the val set (no padding, no sample twice), in batches."""
    share = np.array_split(np.arange(len(val_set)), info.world_size)[info.rank]
    return DataLoader(Subset(val_set, share.tolist()), batch_size=batch_size, num_workers=workers)


def _resume(run: Run) -> None:
    ckpt = load_checkpoint(run.last_path)
    restore_training_state(
        ckpt, str(run.last_path), run.model, run.optimizer, run.scheduler, run.scaler
    )
    if run.ema is not None:
        if ckpt.get("ema") is None:
            raise ValueError(f"{run.last_path} was trained without train.ema: resume without it")
        run.ema.load_state_dict(ckpt["ema"])
    run.epoch, run.step, run.best = ckpt["epoch"], ckpt["step"], dict(ckpt["best_metric"])
    if run.info.is_main:
        rewrite_metrics(run.metrics_path, run.epoch)
        rewrite_metrics(run.by_dataset_path, run.epoch)
        print(f"resuming {run.run_dir} after epoch {run.epoch} (step {run.step})")


def _open_run_dir(run: Run, n_train: int, n_val: int) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(run.config, run.run_dir / "config.yaml")
    run.writer = open_tensorboard(run.run_dir)
    print(
        f"training {run.config.model.name} on {run.device} x{run.info.world_size}: "
        f"{n_train} train / {n_val} val samples, {len(run.loader)} steps/epoch, "
        f"{torch.get_num_threads()} threads/process, run folder {run.run_dir}"
    )


def open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # tensorboard is an optional extra
        print(f"warning: no TensorBoard logging ({err})")
        return None
    return SummaryWriter(str(run_dir))

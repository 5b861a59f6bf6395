"""The training loop: one path for a single process and for torchrun DDP.

`train(config)` sets a run up (`setup_run`: data, model, optimiser, --resume from last.pt), then
each epoch trains (`train_one_epoch`), validates on the val split sharded over the ranks
(`validate`: loss, ACER at the val EER threshold, AUC, from every rank's scores, as one process
would compute them) and writes last.pt, and best.pt when val ACER improves (ties: lower val loss)
(`validate_and_checkpoint`). Rank 0 alone logs and saves.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset

from facepad.config import Config, config_to_dict, save_config
from facepad.metrics import (
    OneClassError,
    eer,
    eer_threshold,
    error_rates,
    roc_auc,
    summary,
)
from facepad.models.checkpoint import (
    build_checkpoint,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
)
from facepad.models.losses import PadLoss
from facepad.models.registry import create_model, list_models
from facepad.models.score import score_outputs
from facepad.train import distributed as fdist
from facepad.train.ema import EMA

DEPTH_MODELS = ("depth_unet", "fusion")
METRIC_COLUMNS = [
    "epoch", "step", "lr", "train_loss", "val_loss", "val_apcer", "val_bpcer", "val_acer",
    "val_auc", "val_eer", "threshold", "train_samples_per_s", "epoch_s",
]  # fmt: skip


def build_datasets(config: Config) -> tuple[Dataset, Dataset, dict]:
    """(train set, val set, preprocess dict) from the prepared store named in the config."""
    from facepad.data.augment import training_augment
    from facepad.data.dataset import StoreDataset
    from facepad.data.multistore import balanced, open_stores

    d = config.data
    store = open_stores(d.store, d.stores)  # one store, or several (data.stores) as one
    augment = training_augment(d)
    train_set = StoreDataset(store, d.train_split, d.input_size, d.depth_size, augment=augment)
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


def autocast(device: torch.device, amp: str):
    """bf16/fp16 autocast on CUDA; CPU runs fp32 (amp is CUDA only)."""
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def val_loader_for(val_set: Dataset, batch_size: int, workers: int, info: fdist.DistInfo):
    """This rank's contiguous share of the val set (no padding, no sample twice), in batches."""
    share = np.array_split(np.arange(len(val_set)), info.world_size)[info.rank]
    return DataLoader(Subset(val_set, share.tolist()), batch_size=batch_size, num_workers=workers)


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: PadLoss,
    device: torch.device,
    config: Config,
    info: fdist.DistInfo | None = None,
) -> dict:
    """Val loss, EER and its threshold, ACER at that threshold, AUC.

    Every rank scores its share (`val_loader_for`); the scores and labels of all ranks are
    gathered, so the figures are those of one process scoring the whole split. `threshold` is
    None when the split holds one class: nothing can be calibrated.
    """
    info = info or fdist.DistInfo()
    model.eval()
    scores, live, indices, loss_sum, seen = [], [], [], 0.0, 0
    for batch in loader:
        batch = _to_device(batch, device, config.train.channels_last)
        with autocast(device, config.train.amp):
            outputs = model(batch["image"])
        n = len(batch["live"])
        loss_sum += float(loss_fn(outputs, batch)["loss"]) * n  # the batch mean, weighted
        seen += n
        scores.append(score_outputs(model, outputs).float().cpu().numpy())
        live.append(batch["live"].cpu().numpy() > 0.5)
        if "idx" in batch:
            indices.append(batch["idx"].cpu().numpy())
    model.train()
    loss_sum, seen = fdist.all_reduce_sum([loss_sum, seen], info)
    s = fdist.all_gather_array(np.concatenate(scores or [np.zeros(0, np.float32)]), info)
    y = fdist.all_gather_array(np.concatenate(live or [np.zeros(0, bool)]), info)
    result = {"val_loss": loss_sum / max(1, seen), **val_metrics(s, y)}
    names = _dataset_names(loader, indices)
    if names is not None:  # the same on every rank (the store decides), so all ranks gather
        names = fdist.all_gather_array(names, info)
        result["by_dataset"] = val_by_dataset(s, y, names, result["threshold"])
    return result


def _dataset_names(loader: DataLoader, indices: list[np.ndarray]) -> np.ndarray | None:
    """Each val sample's dataset name when the store merges several (`data.stores`), else None.
    A rank with no val batches gets an empty array, not None: the gather that follows is
    collective."""
    base = getattr(loader.dataset, "dataset", loader.dataset)  # through this rank's Subset
    index = getattr(getattr(base, "store", None), "index", None)
    if not index or "dataset" not in index[0]:
        return None
    idx = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    return np.array([index[int(i)]["dataset"] for i in idx], dtype=object)


def val_by_dataset(
    scores: np.ndarray, is_live: np.ndarray, names: np.ndarray, threshold: float | None
) -> dict[str, dict]:
    """Each dataset's val AUC and error rates at the one shared threshold: pooled validation can
    look fine while one dataset fails. Empty unless the split spans several datasets."""
    if threshold is None or len(set(names)) < 2:
        return {}
    out = {}
    for name in sorted(set(names)):
        m = summary(scores[names == name], is_live[names == name], threshold)
        out[str(name)] = {k: m[k] for k in ("n_live", "n_attack", "apcer", "bpcer", "hter", "auc")}
    return out


def val_metrics(scores: np.ndarray, is_live: np.ndarray) -> dict:
    """ACER at the val EER threshold (`eer_threshold`), AUC, EER; NaN and no threshold when the
    split holds one class."""
    try:
        eer_value, threshold = eer(scores, is_live)[0], eer_threshold(scores, is_live)
    except OneClassError:  # a val split with one class: rank by loss only, no threshold
        nan = float("nan")
        return dict(
            val_apcer=nan, val_bpcer=nan, val_acer=nan, val_auc=nan, val_eer=nan, threshold=None
        )
    rates = error_rates(scores, is_live, threshold)
    return dict(
        val_apcer=rates["apcer"], val_bpcer=rates["bpcer"], val_acer=rates["acer"],
        val_auc=roc_auc(scores, is_live), val_eer=eer_value, threshold=threshold,
    )  # fmt: skip


def _rank_key(metrics: dict, select: str = "acer") -> tuple[float, float]:
    """Lower is better: val ACER (or minus val AUC), then val loss; NaN ranks last. With
    select="loss", val loss alone: it keeps ranking epochs after ACER has saturated at 0 %."""
    loss = metrics["val_loss"]
    if select == "loss":
        return (loss, 0.0)
    value = -metrics.get("val_auc", -math.inf) if select == "auc" else metrics["val_acer"]
    return (value if math.isfinite(value) else math.inf, loss)


def run_dir_of(config: Config) -> Path:
    return Path(config.out_dir) / (config.run_name or config.model.name)


def _rewrite_metrics(path: Path, up_to_epoch: int) -> None:
    """On resume, drop rows of epochs that last.pt does not hold (a kill after the csv write)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if int(r["epoch"]) <= up_to_epoch]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=reader.fieldnames or METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _append_metrics(path: Path, row: dict, columns: list[str] = METRIC_COLUMNS) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


BY_DATASET_COLUMNS = ["epoch", "dataset", "n_live", "n_attack", "apcer", "bpcer", "hter", "auc"]


def _record_by_dataset(run: Run, epoch: int, by_dataset: dict[str, dict]) -> None:
    """val_by_dataset.csv, TensorBoard and a log line: every dataset's validation, every epoch."""
    for name, m in by_dataset.items():
        _append_metrics(run.by_dataset_path, {"epoch": epoch, "dataset": name, **m},
                        BY_DATASET_COLUMNS)  # fmt: skip
        if run.writer is not None:
            for key in ("hter", "auc"):
                run.writer.add_scalar(f"val_by_dataset/{name}_{key}", m[key], epoch)
    print("  val by dataset: " + "; ".join(
        f"{name} HTER {100 * m['hter']:.2f}%, AUC {m['auc']:.4f}" for name, m in by_dataset.items()
    ))  # fmt: skip


def _open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # tensorboard is an optional extra
        print(f"warning: no TensorBoard logging ({err})")
        return None
    return SummaryWriter(str(run_dir))


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """The random seed of one rank's epoch: ranks draw different augmentations (and DataLoader
    workers, seeded from it, differ again), and a resumed run draws what an uninterrupted one
    did."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


@dataclass
class Run:
    """What one training run carries from epoch to epoch."""

    config: Config
    info: fdist.DistInfo
    run_dir: Path
    model: nn.Module  # the plain model: validated and saved
    train_model: nn.Module  # what a training step calls: DDP-wrapped, then compiled
    loss_fn: PadLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loader: DataLoader
    val_loader: DataLoader
    preprocess: dict
    epoch: int = 0  # the last finished epoch
    step: int = 0
    best: dict = field(
        default_factory=lambda: {
            "val_acer": math.inf,
            "val_loss": math.inf,
            "epoch": 0,
            "threshold": None,
            "stale": 0,
        }  # fmt: skip
    )
    writer: Any = None  # TensorBoard, rank 0 only
    ema: EMA | None = None  # averaged weights: validated and saved in place of the model's
    warned_one_class: bool = False

    @property
    def kept_model(self) -> nn.Module:
        """The weights validation judges and checkpoints ship: the EMA's when it is on."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.csv"

    @property
    def by_dataset_path(self) -> Path:
        return self.run_dir / "val_by_dataset.csv"


def train(
    config: Config,
    resume: bool = False,
    datasets: tuple[Dataset, Dataset, dict] | None = None,
) -> Path:
    """Train (or resume) the run described by `config`; returns the best checkpoint's path.

    `datasets` = (train, val, preprocess) overrides the prepared store (tests, custom data).
    """
    info = fdist.setup(config.train.device)
    run = setup_run(config, info, resume, datasets)
    try:
        for epoch in range(run.epoch + 1, config.train.epochs + 1):
            stats = train_one_epoch(run, epoch)
            if validate_and_checkpoint(run, epoch, stats):
                break
    finally:
        if run.writer is not None:
            run.writer.close()
    _print_summary(run)
    # Reached by every rank only when all succeeded. A rank that raised skips this barrier (the
    # others may be stuck in a collective that will never complete) and exits with its error;
    # torchrun then stops the other ranks.
    fdist.cleanup(info)
    return run.best_path


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
        _rewrite_metrics(run.metrics_path, run.epoch)
        _rewrite_metrics(run.by_dataset_path, run.epoch)
        print(f"resuming {run.run_dir} after epoch {run.epoch} (step {run.step})")


def _open_run_dir(run: Run, n_train: int, n_val: int) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(run.config, run.run_dir / "config.yaml")
    run.writer = _open_tensorboard(run.run_dir)
    print(
        f"training {run.config.model.name} on {run.device} x{run.info.world_size}: "
        f"{n_train} train / {n_val} val samples, {len(run.loader)} steps/epoch, "
        f"{torch.get_num_threads()} threads/process, run folder {run.run_dir}"
    )


def _start_epoch(run: Run, epoch: int) -> None:
    """Shuffle order from (seed, epoch); augmentation from (seed, rank, epoch)."""
    seed = run.config.train.seed
    sampler = run.loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    else:  # reshuffle from (seed, epoch): a resumed run sees the same order
        sampler.generator.manual_seed(seed * 1000 + epoch)
    # The dataset draws augmentations from torch's global generator (in this process, or in
    # DataLoader workers seeded from it when their iterator starts).
    torch.manual_seed(epoch_seed(seed, run.info.rank, epoch))
    run.model.train()


def train_one_epoch(run: Run, epoch: int) -> dict:
    """One pass over this rank's share of the train set; loss and rate over all ranks."""
    from tqdm import tqdm

    _start_epoch(run, epoch)
    started = time.perf_counter()
    seen, loss_sum = 0, 0.0
    desc = f"epoch {epoch}/{run.config.train.epochs}"
    bar = tqdm(run.loader, desc=desc, disable=not run.info.is_main, leave=False)
    for batch in bar:
        losses = train_step(run, batch, epoch)
        n = len(batch["live"])  # this rank's share of the global batch
        seen += n
        loss_sum += float(losses["loss"]) * n
        if run.info.is_main:
            _log_step(
                run, bar, losses, seen * run.info.world_size / (time.perf_counter() - started)
            )
    seconds = time.perf_counter() - started
    loss_sum, seen = fdist.all_reduce_sum([loss_sum, seen], run.info)
    return {
        "train_loss": loss_sum / max(1, seen),
        "train_samples_per_s": seen / max(1e-9, seconds),
        "started": started,
    }


def train_step(run: Run, batch: dict, epoch: int) -> dict[str, torch.Tensor]:
    """Forward, loss, backward, optimiser and schedule step; the detached loss terms."""
    t = run.config.train
    batch = _to_device(batch, run.device, t.channels_last)
    with autocast(run.device, t.amp):
        outputs = run.train_model(batch["image"])
    losses = run.loss_fn(outputs, batch)
    loss = losses["loss"]
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"loss is {float(loss)} at epoch {epoch} step {run.step}: lower train.lr "
            "or set train.grad_clip"
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if t.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), t.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update(run.model)
    run.step += 1
    return {name: value.detach() for name, value in losses.items()}


def _log_step(run: Run, bar, losses: dict[str, torch.Tensor], rate: float) -> None:
    loss = float(losses["loss"])
    lr = run.optimizer.param_groups[0]["lr"]
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", sps=f"{rate:.1f}")
    if run.writer is not None:
        for name, value in losses.items():
            run.writer.add_scalar(f"train/{name}", float(value), run.step)
        run.writer.add_scalar("train/lr", lr, run.step)


def validate_and_checkpoint(run: Run, epoch: int, stats: dict) -> bool:
    """Validate on every rank; rank 0 saves last.pt (and best.pt) and logs. True: stop early."""
    fdist.broadcast_buffers(run.kept_model, run.info)  # rank 0's BatchNorm statistics, as saved
    val = validate(run.kept_model, run.val_loader, run.loss_fn, run.device, run.config, run.info)
    run.epoch = epoch
    stop = _record_epoch(run, epoch, stats, val) if run.info.is_main else False
    return bool(fdist.broadcast_object(stop, run.info))


def _record_epoch(run: Run, epoch: int, stats: dict, val: dict) -> bool:
    """Rank 0: best tracking, checkpoints, metrics.csv, TensorBoard, a log line. True: stop."""
    improved = _track_best(run, epoch, val)
    _save_checkpoints(run, epoch, val, improved)
    _log_epoch(run, epoch, stats, val, improved)
    if val.get("by_dataset"):
        _record_by_dataset(run, epoch, val["by_dataset"])
    patience = run.config.train.early_stop_patience
    if patience > 0 and run.best["stale"] >= patience:
        print(f"early stop: no better val {run.config.train.select} for {patience} epochs")
        return True
    return False


def _track_best(run: Run, epoch: int, val: dict) -> bool:
    """Update run.best with this epoch if it ranks better (True), else count it stale."""
    select = run.config.train.select
    improved = _rank_key(val, select) < _rank_key(run.best, select)
    if improved:
        run.best = {k: val[k] for k in ("val_acer", "val_auc", "val_loss", "threshold")}
        run.best.update(epoch=epoch, stale=0)
    else:
        run.best["stale"] += 1
    if val["threshold"] is None and not run.warned_one_class:
        run.warned_one_class = True
        print(
            "warning: the val split holds one class, so no threshold can be calibrated: "
            "checkpoints are marked uncalibrated (best by val loss); predict, serve, export "
            "and evaluate will need --threshold"
        )
    return improved


def _save_checkpoints(run: Run, epoch: int, val: dict, improved: bool) -> None:
    """last.pt every epoch (what a resume starts from); best.pt when the epoch ranks best."""
    ckpt = build_checkpoint(
        run.kept_model,
        config=config_to_dict(run.config),
        preprocess=run.preprocess,
        threshold=val["threshold"],  # this epoch's val EER threshold
        epoch=epoch,
        step=run.step,
        best_metric=run.best,
        val=val,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        scaler=run.scaler,
        ema=run.ema,
        trained=run.model,
    )
    save_checkpoint(ckpt, run.last_path)
    if improved:
        save_checkpoint(ckpt, run.best_path)


def _log_epoch(run: Run, epoch: int, stats: dict, val: dict, improved: bool) -> None:
    """The epoch's row in metrics.csv and TensorBoard, and its line on stdout."""
    row = {
        "epoch": epoch,
        "step": run.step,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_loss": stats["train_loss"],
        **val,
        "train_samples_per_s": stats["train_samples_per_s"],
        "epoch_s": time.perf_counter() - stats["started"],
    }
    _append_metrics(run.metrics_path, row)
    if run.writer is not None:
        for name, value in row.items():
            if name.startswith("val_") or name == "train_samples_per_s":
                run.writer.add_scalar(f"epoch/{name}", value, epoch)
        run.writer.flush()
    print(
        f"epoch {epoch}/{run.config.train.epochs}: train loss {row['train_loss']:.4f}, val loss "
        f"{val['val_loss']:.4f}, val ACER {100 * val['val_acer']:.2f}% "
        f"(APCER {100 * val['val_apcer']:.2f}%, BPCER {100 * val['val_bpcer']:.2f}%), "
        f"AUC {val['val_auc']:.4f}, {row['train_samples_per_s']:.1f} samples/s"
        + (" *best*" if improved else "")
    )


def _print_summary(run: Run) -> None:
    if not run.info.is_main:
        return
    best = run.best
    if best["threshold"] is None:
        print(
            f"best epoch {best['epoch']} (by val loss {best['val_loss']:.4f}) -> {run.best_path}; "
            "UNCALIBRATED: the val split held one class, so pass --threshold T to predict, "
            "serve, export and evaluate"
        )
        return
    print(
        f"best epoch {best['epoch']}: val ACER {100 * best['val_acer']:.2f}% at threshold "
        f"{best['threshold']:.4f} -> {run.best_path}"
    )

"""The training loop: one path for a single process and for torchrun DDP.

train(config) builds data, model, optimiser; each epoch trains, validates on the val split
(loss, ACER at the val EER threshold, AUC), writes last.pt, and best.pt when val ACER improves
(ties: lower val loss). Rank 0 alone logs and saves. --resume continues from last.pt.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from facepad.config import Config, config_to_dict, save_config
from facepad.models.losses import PadLoss
from facepad.models.registry import create_model
from facepad.models.score import score_outputs
from facepad.train import distributed as fdist
from facepad.train.checkpoint import (
    CHECKPOINT_FORMAT_VERSION,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

DEPTH_MODELS = ("depth_unet", "fusion")
METRIC_COLUMNS = [
    "epoch", "step", "lr", "train_loss", "val_loss", "val_apcer", "val_bpcer", "val_acer",
    "val_auc", "val_eer", "threshold", "train_samples_per_s", "epoch_s",
]  # fmt: skip


def build_datasets(config: Config) -> tuple[Dataset, Dataset, dict]:
    """(train set, val set, preprocess dict) from the prepared store named in the config."""
    from facepad.data.dataset import StoreDataset
    from facepad.data.multistore import balanced, open_stores

    d = config.data
    store = open_stores(d.store, d.stores)  # one store, or several (data.stores) as one
    train_set = StoreDataset(store, d.train_split, d.input_size, d.depth_size, augment=d.augment)
    train_set = balanced(train_set, d.balance)
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
    kwargs = dict(config.model.kwargs)
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


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, loss_fn: PadLoss, device: torch.device, config: Config
) -> dict:
    """Val loss, EER and its threshold, ACER at that threshold, AUC."""
    from facepad.evaluate.metrics import OneClassError, eer, error_rates, roc_auc

    model.eval()
    scores, live, losses, weights = [], [], [], []
    for batch in loader:
        batch = _to_device(batch, device, config.train.channels_last)
        with autocast(device, config.train.amp):
            outputs = model(batch["image"])
        losses.append(float(loss_fn(outputs, batch)["loss"]))
        weights.append(len(batch["live"]))
        scores.append(score_outputs(model, outputs).float().cpu())
        live.append(batch["live"].cpu() > 0.5)
    model.train()
    s, y = torch.cat(scores).numpy(), torch.cat(live).numpy()
    result = {"val_loss": float(np.average(losses, weights=weights))}
    try:
        eer_value, threshold = eer(s, y)
        threshold = _margin_threshold(s, threshold)
        rates = error_rates(s, y, threshold)
        result.update(
            val_apcer=rates["apcer"], val_bpcer=rates["bpcer"], val_acer=rates["acer"],
            val_auc=roc_auc(s, y), val_eer=eer_value, threshold=threshold,
        )  # fmt: skip
    except OneClassError as err:  # a val split with one class: rank by loss only
        print(f"warning: val metrics need both classes ({err}); best checkpoint by val loss")
        nan = float("nan")
        result.update(val_apcer=nan, val_bpcer=nan, val_acer=nan, val_auc=nan, val_eer=nan)
        result["threshold"] = 0.5
    return result


def _margin_threshold(scores: np.ndarray, threshold: float) -> float:
    """Midway between the EER threshold (a sample's own score) and the next lower score.

    Val decisions stay the same, but a sample sitting exactly on the threshold no longer flips
    when it is re-scored with different batching or memory layout (1e-7 differences).
    """
    below = scores[scores < threshold]
    return float((threshold + below.max()) / 2) if below.size else float(threshold)


def _rank_key(metrics: dict) -> tuple[float, float]:
    """Lower is better: val ACER, then val loss (NaN ACER ranks last)."""
    acer = metrics["val_acer"]
    return (acer if math.isfinite(acer) else math.inf, metrics["val_loss"])


def run_dir_of(config: Config) -> Path:
    return Path(config.out_dir) / (config.run_name or config.model.name)


def _rewrite_metrics(path: Path, up_to_epoch: int) -> None:
    """On resume, drop rows of epochs that last.pt does not hold (a kill after the csv write)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= up_to_epoch]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _append_metrics(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # tensorboard is an optional extra
        print(f"warning: no TensorBoard logging ({err})")
        return None
    return SummaryWriter(str(run_dir))


def train(
    config: Config,
    resume: bool = False,
    datasets: tuple[Dataset, Dataset, dict] | None = None,
) -> Path:
    """Train (or resume) the run described by `config`; returns the best checkpoint's path.

    `datasets` = (train, val, preprocess) overrides the prepared store (tests, custom data).
    """
    from tqdm import tqdm

    info = fdist.setup(config.train.device)
    try:
        return _train(config, resume, datasets, info, tqdm)
    finally:
        fdist.cleanup(info)


def _train(config, resume, datasets, info, tqdm) -> Path:  # noqa: C901 - the loop reads top-down
    t, d = config.train, config.data
    device = info.device
    torch.set_num_threads(t.threads or fdist.default_threads(info))
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    run_dir = run_dir_of(config)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    metrics_path = run_dir / "metrics.csv"
    if resume and not last_path.is_file():
        raise FileNotFoundError(f"--resume: no {last_path} to continue; start without --resume")
    if not resume and last_path.is_file():
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume to continue it, or choose another "
            "folder with run_name=... or out_dir=..."
        )
    if d.batch_size % info.world_size:
        raise ValueError(
            f"data.batch_size {d.batch_size} (global) does not split over {info.world_size} ranks"
        )
    per_rank_batch = d.batch_size // info.world_size

    train_set, val_set, preprocess = datasets if datasets is not None else build_datasets(config)
    model = build_model(config)  # same seed on every rank -> same initial weights
    model_spec = {"name": config.model.name, "kwargs": dict(model.kwargs)}
    model.to(device)
    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    loss_fn = PadLoss(**vars(t.loss)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)

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
        pin_memory=device.type == "cuda",
        persistent_workers=d.workers > 0,
    )
    val_loader = DataLoader(val_set, batch_size=per_rank_batch, num_workers=d.workers)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"train split has {len(train_set)} samples: fewer than one batch")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, steps_per_epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and t.amp == "fp16")

    start_epoch, step = 0, 0
    best = {"val_acer": math.inf, "val_loss": math.inf, "epoch": 0, "threshold": 0.5, "stale": 0}
    if resume:
        ckpt = load_checkpoint(last_path)
        if ckpt["model"] != model_spec:
            raise ValueError(
                f"{last_path} holds model {ckpt['model']}, the config builds {model_spec}: "
                "resume with the run's own config.yaml"
            )
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, step, best = ckpt["epoch"], ckpt["step"], dict(ckpt["best_metric"])
        if info.is_main:
            _rewrite_metrics(metrics_path, start_epoch)
            print(f"resuming {run_dir} after epoch {start_epoch} (step {step})")

    train_model: nn.Module = model
    if t.compile:
        train_model = torch.compile(train_model)
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(train_model, device_ids=ids)

    writer = None
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        writer = _open_tensorboard(run_dir)
        print(
            f"training {config.model.name} on {device} x{info.world_size}: "
            f"{len(train_set)} train / {len(val_set)} val samples, {steps_per_epoch} steps/epoch, "
            f"{torch.get_num_threads()} threads/process, run folder {run_dir}"
        )

    for epoch in range(start_epoch + 1, t.epochs + 1):
        if info.distributed:
            sampler.set_epoch(epoch)
        else:  # reshuffle from (seed, epoch): a resumed run sees the same order
            sampler.generator.manual_seed(t.seed * 1000 + epoch)
        model.train()
        started = time.perf_counter()
        seen, loss_sum = 0, 0.0
        bar = tqdm(loader, desc=f"epoch {epoch}/{t.epochs}", disable=not info.is_main, leave=False)
        for batch in bar:
            batch = _to_device(batch, device, t.channels_last)
            with autocast(device, t.amp):
                outputs = train_model(batch["image"])
            losses = loss_fn(outputs, batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {float(loss)} at epoch {epoch} step {step}: lower train.lr "
                    "or set train.grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            n = len(batch["live"])  # this rank's share of the global batch
            seen += n
            loss_sum += float(loss.detach()) * n
            if info.is_main:
                rate = seen * info.world_size / max(1e-9, time.perf_counter() - started)
                lr = optimizer.param_groups[0]["lr"]
                bar.set_postfix(
                    loss=f"{float(loss.detach()):.4f}", lr=f"{lr:.2e}", sps=f"{rate:.1f}"
                )
                if writer is not None:
                    writer.add_scalar("train/loss", float(loss.detach()), step)
                    for name, value in losses.items():
                        if name != "loss":
                            writer.add_scalar(f"train/{name}", float(value.detach()), step)
                    writer.add_scalar("train/lr", lr, step)
        train_seconds = time.perf_counter() - started
        loss_sum, seen = fdist.all_reduce_sum([loss_sum, seen], info)  # over all ranks

        stop = False
        if info.is_main:
            val = evaluate(model, val_loader, loss_fn, device, config)
            row = {
                "epoch": epoch,
                "step": step,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": loss_sum / max(1, seen),
                **val,
                "train_samples_per_s": seen / max(1e-9, train_seconds),
                "epoch_s": time.perf_counter() - started,
            }
            improved = _rank_key(val) < _rank_key(best)
            if improved:
                best = {k: val[k] for k in ("val_acer", "val_loss", "threshold")}
                best.update(epoch=epoch, stale=0)
            else:
                best["stale"] += 1
            ckpt = {
                "format_version": CHECKPOINT_FORMAT_VERSION,
                "model": model_spec,
                "state_dict": model.state_dict(),
                "config": config_to_dict(config),
                "epoch": epoch,
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "best_metric": best,
                "threshold": val["threshold"],  # this epoch's val EER threshold
                "val": val,
                "preprocess": preprocess,
            }
            save_checkpoint(ckpt, last_path)
            if improved:
                save_checkpoint(ckpt, best_path)
            _append_metrics(metrics_path, row)
            if writer is not None:
                for name, value in row.items():
                    if name.startswith("val_") or name == "train_samples_per_s":
                        writer.add_scalar(f"epoch/{name}", value, epoch)
                writer.flush()
            print(
                f"epoch {epoch}/{t.epochs}: train loss {row['train_loss']:.4f}, val loss "
                f"{val['val_loss']:.4f}, val ACER {100 * val['val_acer']:.2f}% "
                f"(APCER {100 * val['val_apcer']:.2f}%, BPCER {100 * val['val_bpcer']:.2f}%), "
                f"AUC {val['val_auc']:.4f}, {row['train_samples_per_s']:.1f} samples/s"
                + (" *best*" if improved else "")
            )
            patience = t.early_stop_patience
            stop = patience > 0 and best["stale"] >= patience
            if stop:
                print(f"early stop: no better val ACER for {patience} epochs")
        stop = fdist.broadcast_object(stop, info)
        fdist.barrier(info)
        if stop:
            break

    if writer is not None:
        writer.close()
    if info.is_main:
        print(
            f"best epoch {best['epoch']}: val ACER {100 * best['val_acer']:.2f}% at threshold "
            f"{best['threshold']:.4f} -> {best_path}"
        )
    return best_path

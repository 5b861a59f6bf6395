"""One training epoch: reseeding from (seed, rank, epoch), the train step, per-step logging."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from facepad.train import distributed as fdist
from facepad.train.run import Run

if TYPE_CHECKING:
    from facepad.data.device_augment import DeviceAugment


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """The random seed of one rank's epoch: ranks draw different augmentations (and DataLoader
    workers, seeded from it, differ again), and a resumed run draws what an uninterrupted one
    did."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def autocast(device: torch.device, amp: str):
    """bf16/fp16 autocast on CUDA; CPU runs fp32 (amp is CUDA only)."""
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def to_device(
    batch: dict, device: torch.device, channels_last: bool, augment: DeviceAugment | None = None
) -> dict:
    """The batch on `device`; with `augment` (data.augment_device=device) augmented there."""
    out = {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }
    if augment is not None:
        out = augment(out)
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


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
    if run.device_augment is not None:  # its own generator: the same draws whatever the loader
        run.device_augment.start_epoch(epoch_seed(seed, run.info.rank, epoch))
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
    batch = to_device(batch, run.device, t.channels_last, run.device_augment)
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

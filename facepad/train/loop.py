"""The training loop: one path for a single process and for torchrun DDP.

`train(config)` sets a run up (`setup.setup_run`: data, model, optimiser, --resume from last.pt),
then each epoch trains (`epoch.train_one_epoch`), validates on the val split sharded over the ranks
(`validation.validate`: loss, ACER at the val EER threshold, AUC, from every rank's scores, as one
process would compute them) and writes last.pt, and best.pt when val ACER improves (ties: lower
val loss) (`validate_and_checkpoint`, recorded by `recording.record_epoch`). Rank 0 alone logs
and saves. The names other modules use from here (`train`, `build_model`, `validate`, ...) are
re-exported.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from facepad.config import Config
from facepad.models.losses import PadLoss
from facepad.train import distributed as fdist
from facepad.train.epoch import autocast, epoch_seed, to_device, train_one_epoch, train_step
from facepad.train.recording import METRIC_COLUMNS, print_summary, record_epoch
from facepad.train.run import Run, run_dir_of
from facepad.train.setup import (
    DEPTH_MODELS,
    build_datasets,
    build_model,
    lr_lambda,
    setup_run,
    train_loader,
    val_loader_for,
    wrap_for_training,
)
from facepad.train.validation import val_by_dataset, val_metrics, validate

__all__ = [
    "DEPTH_MODELS", "METRIC_COLUMNS", "PadLoss", "Run", "autocast", "build_datasets",
    "build_model", "epoch_seed", "lr_lambda", "run_dir_of", "setup_run", "to_device", "train",
    "train_loader", "train_one_epoch", "train_step", "val_by_dataset", "val_loader_for",
    "val_metrics", "validate", "validate_and_checkpoint", "wrap_for_training",
]  # fmt: skip


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
    print_summary(run)
    # Reached by every rank only when all succeeded. A rank that raised skips this barrier (the
    # others may be stuck in a collective that will never complete) and exits with its error;
    # torchrun then stops the other ranks.
    fdist.cleanup(info)
    return run.best_path


def validate_and_checkpoint(run: Run, epoch: int, stats: dict) -> bool:
    """Validate on every rank; rank 0 saves last.pt (and best.pt) and logs. True: stop early."""
    fdist.broadcast_buffers(run.kept_model, run.info)  # rank 0's BatchNorm statistics, as saved
    val = validate(run.kept_model, run.val_loader, run.loss_fn, run.device, run.config, run.info)
    run.epoch = epoch
    stop = record_epoch(run, epoch, stats, val) if run.info.is_main else False
    return bool(fdist.broadcast_object(stop, run.info))

"""Rank 0's record of each epoch: best-epoch tracking, last.pt and best.pt, metrics.csv,
val_by_dataset.csv, TensorBoard and the log lines."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

from facepad.config import config_to_dict
from facepad.models.checkpoint import build_checkpoint, save_checkpoint
from facepad.train.run import Run

METRIC_COLUMNS = [
    "epoch", "step", "lr", "train_loss", "val_loss", "val_apcer", "val_bpcer", "val_acer",
    "val_auc", "val_eer", "threshold", "train_samples_per_s", "epoch_s",
]  # fmt: skip
BY_DATASET_COLUMNS = ["epoch", "dataset", "n_live", "n_attack", "apcer", "bpcer", "hter", "auc"]


def record_epoch(run: Run, epoch: int, stats: dict, val: dict) -> bool:
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
        if "val_worst_auc" in val:
            run.best["val_worst_auc"] = val["val_worst_auc"]
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
    append_metrics(run.metrics_path, row)
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


def print_summary(run: Run) -> None:
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


def _rank_key(metrics: dict, select: str = "acer") -> tuple[float, float]:
    """Lower is better: val ACER (or minus val AUC), then val loss; NaN ranks last. With
    select="loss", val loss alone: it keeps ranking epochs after ACER has saturated at 0 %.
    select="worst_auc": minus the lowest per-dataset val AUC (several stores; else the pooled
    AUC), so one dataset ranked badly vetoes an epoch that pooled figures would keep."""
    loss = metrics["val_loss"]
    if select == "loss":
        return (loss, 0.0)
    if select == "worst_auc":
        value = -metrics.get("val_worst_auc", metrics.get("val_auc", -math.inf))
    elif select == "auc":
        value = -metrics.get("val_auc", -math.inf)
    else:
        value = metrics["val_acer"]
    return (value if math.isfinite(value) else math.inf, loss)


def rewrite_metrics(path: Path, up_to_epoch: int) -> None:
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


def append_metrics(path: Path, row: dict, columns: list[str] = METRIC_COLUMNS) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _record_by_dataset(run: Run, epoch: int, by_dataset: dict[str, dict]) -> None:
    """val_by_dataset.csv, TensorBoard and a log line: every dataset's validation, every epoch."""
    for name, m in by_dataset.items():
        append_metrics(run.by_dataset_path, {"epoch": epoch, "dataset": name, **m},
                        BY_DATASET_COLUMNS)  # fmt: skip
        if run.writer is not None:
            for key in ("hter", "auc"):
                run.writer.add_scalar(f"val_by_dataset/{name}_{key}", m[key], epoch)
    print("  val by dataset: " + "; ".join(
        f"{name} HTER {100 * m['hter']:.2f}%, AUC {m['auc']:.4f}" for name, m in by_dataset.items()
    ))  # fmt: skip

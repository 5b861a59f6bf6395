"""Validation, sharded over the ranks: val loss, EER and its threshold, ACER, AUC, and the
same per dataset when the store merges several."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from facepad.config import Config
from facepad.metrics import (
    OneClassError,
    eer,
    eer_threshold,
    error_rates,
    roc_auc,
    summary,
)
from facepad.models.losses import PadLoss
from facepad.models.score import score_outputs
from facepad.train import distributed as fdist
from facepad.train.epoch import autocast, to_device


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
        batch = to_device(batch, device, config.train.channels_last)
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
        aucs = [m["auc"] for m in result["by_dataset"].values()]
        if aucs:  # the dataset ranked worst: train.select=worst_auc lets it veto an epoch
            result["val_worst_auc"] = min(aucs)
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

"""Score one split of a prepared store with a checkpoint, and write scores, report and figures.

The threshold comes from the checkpoint (the validation EER threshold saved by the trainer) unless
one is given, and is applied unchanged to the evaluated split.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepad.evaluate import metrics, plots, report

# Columns of the store's index.csv that are bookkeeping, not sample attributes.
_STORE_COLUMNS = {"idx", "split", "path", "label", "attack_type", "subject", "shard", "offset"}
_STORE_COLUMNS |= {"length"}


@dataclass
class Evaluation:
    """What `evaluate_checkpoint` produced: rows, report and the files written."""

    rows: list[dict]
    report: dict
    threshold: float
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)


class _SafeItems:
    """Dataset wrapper: an item that fails to load becomes None (recorded), not a crash."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            return self.dataset[i]
        except Exception as err:  # a corrupt crop in a big run: record and skip
            return {"failed": i, "reason": f"{type(err).__name__}: {err}"}


def _collate(items: list[dict]) -> dict:
    import torch

    good = [x for x in items if "failed" not in x]
    out = {"failed": [(x["failed"], x["reason"]) for x in items if "failed" in x]}
    if good:
        out["image"] = torch.stack([x["image"] for x in good])  # (B, 3, H, W)
        out["idx"] = torch.tensor([int(x["idx"]) for x in good])
    return out


def score_dataset(
    scored_model, dataset, batch_size: int = 64, device: str = "cpu", workers: int = 0, desc=""
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Liveness scores of every item: (store idx (N,), scores (N,), failed [(position, reason)])."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    loader = DataLoader(
        _SafeItems(dataset), batch_size=batch_size, num_workers=workers, collate_fn=_collate
    )
    scored_model.eval().to(device)
    idx, scores, failed = [], [], []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc or "scoring", unit="batch", leave=False):
            failed += batch["failed"]
            if "image" not in batch:
                continue
            score, _ = scored_model(batch["image"].to(device))  # (B,)
            scores.append(score.float().cpu().numpy())
            idx.append(batch["idx"].numpy())
    if not scores:
        raise RuntimeError(f"no sample could be scored ({len(failed)} failed: {failed[:3]})")
    return np.concatenate(idx), np.concatenate(scores), failed


def store_rows(store, idx: np.ndarray, scores: np.ndarray, threshold: float) -> list[dict]:
    """Score rows (the `facepad.evaluate.report` format) from store index rows and scores."""
    rows = []
    for i, s in zip(idx.tolist(), scores.tolist(), strict=True):
        r = store.index[i]
        rows.append(
            {
                "idx": i,
                "path": r["path"],
                "subject": r["subject"],
                "label": r["label"],
                "attack_type": r["attack_type"],
                "attributes": {k: v for k, v in r.items() if k not in _STORE_COLUMNS},
                "score": float(s),
                "decision": report.decide(s, threshold),
            }
        )
    return rows


def depth_examples(scored_model, dataset, positions: list[int], device: str = "cpu"):
    """Inputs (H, W, 3) float, predicted depth maps (d, d) or None, and scores of a few items."""
    import torch

    items = [dataset[p] for p in positions]
    images = torch.stack([x["image"] for x in items]).to(device)  # (n, 3, H, W)
    with torch.inference_mode():
        score, depth = scored_model.eval().to(device)(images)
    pictures = [x["image"].permute(1, 2, 0).clamp(0, 1).numpy() for x in items]
    maps = [None] * len(items) if depth is None else list(depth[:, 0].float().cpu().numpy())
    return pictures, maps, score.float().cpu().numpy()


def evaluate_checkpoint(
    checkpoint: str | Path,
    store,
    split: str = "test",
    threshold: float | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    name: str = "",
    n_examples: int = 8,
    n_boot: int = 1000,
    rule: str | None = None,
    figures: bool = True,
) -> Evaluation:
    """Score `split` of a prepared store and write scores.csv, report.{json,md} and figures.

    `store` is a store folder or an open `PreparedStore` (e.g. a `MultiStore` of several
    datasets, or one with a split file, from `facepad.data.multistore`).

    Threshold: `threshold` if given; else, with `rule` ("eer", "apcer=0.05", "bpcer=0.01"), one
    chosen by that rule on the store's val split; else the checkpoint's validation EER threshold.

    Files go to `out_dir` (default: beside the checkpoint, `eval_<split>/`): scores.csv,
    report.json, report.md, roc.png, det.png, histogram.png, depth_examples.png, and skipped.csv
    when some samples could not be read.
    """
    from facepad.data.dataset import StoreDataset
    from facepad.data.store import PreparedStore
    from facepad.models.registry import model_from_checkpoint
    from facepad.models.score import ScoredModel

    checkpoint = Path(checkpoint)
    model, ckpt = model_from_checkpoint(checkpoint)
    name = name or ckpt.get("model", {}).get("name", checkpoint.stem)
    if threshold is not None:
        source = "given"
        rule = None
    elif rule is None:
        if ckpt.get("threshold") is None:
            raise ValueError(f"{checkpoint} holds no validation threshold; pass --threshold T")
        threshold, source = float(ckpt["threshold"]), "validation EER, from the checkpoint"
    pre = ckpt.get("preprocess") or {}
    data_cfg = (ckpt.get("config") or {}).get("data", {})
    input_size = int(pre.get("input_size") or data_cfg.get("input_size") or 128)

    prepared = store if isinstance(store, PreparedStore) else PreparedStore(store)
    if split not in prepared.splits():
        raise ValueError(
            f"{prepared.root} has no {split!r} split (it has {', '.join(prepared.splits())})"
        )
    depth_size = int(pre.get("depth_size") or data_cfg.get("depth_size") or prepared.depth_size)
    dataset = StoreDataset(prepared, split, input_size, depth_size, augment=False)
    scored = ScoredModel(model)
    if rule is not None:
        threshold, source = threshold_on_val(
            scored, prepared, rule, input_size, depth_size, batch_size, device
        )
        print(f"threshold {threshold:.4f}: {source}")
    idx, scores, failed = score_dataset(scored, dataset, batch_size, device, desc=f"{name} {split}")

    out_dir = Path(out_dir) if out_dir else checkpoint.parent / f"eval_{split}"
    rows = store_rows(prepared, idx, scores, threshold)
    files = {"scores": report.write_scores_csv(rows, out_dir / "scores.csv")}
    rep = report.build_report(
        rows, threshold, name=name, split=split, threshold_source=source, n_boot=n_boot
    )
    rep["checkpoint"] = str(checkpoint)
    rep["store"] = str(prepared.root)
    rep["n_failed"] = len(failed)
    files["report_json"], files["report_md"] = report.write_report(rep, out_dir)
    positions = {int(i): p for p, i in enumerate(prepared.indices(split))}
    skipped = [(prepared.indices(split)[p], reason) for p, reason in failed]
    if skipped:
        with open(out_dir / "skipped.csv", "w", newline="") as f:
            csv.writer(f).writerows([("idx", "reason"), *skipped])
        files["skipped"] = out_dir / "skipped.csv"
        print(f"warning: {len(skipped)} samples could not be read; see {files['skipped']}")

    if not figures:
        return Evaluation(rows, rep, threshold, out_dir, files, skipped)
    files.update(write_figures(rows, threshold, out_dir, name))
    is_live = np.array([r["label"] == "live" for r in rows])
    picks = plots.pick_depth_examples(scores, is_live, threshold, n=n_examples)
    images, maps, pick_scores = depth_examples(
        scored, dataset, [positions[int(idx[k])] for k in picks], device
    )
    files["depth_examples"] = plots.plot_depth_grid(
        images,
        maps,
        pick_scores,
        is_live[picks],
        threshold,
        out_dir / "depth_examples.png",
        title=f"{name} ({split}): inputs"
        + (" above predicted depth maps" if any(m is not None for m in maps) else ""),
    )
    return Evaluation(rows, rep, threshold, out_dir, files, skipped)


def parse_rule(rule: str) -> tuple[str, float | None]:
    """ "eer" -> ("eer", None); "apcer=0.05" -> ("apcer", 0.05); the same for bpcer."""
    name, _, value = rule.partition("=")
    if name == "eer" and not value:
        return "eer", None
    try:
        target = float(value)
    except ValueError:
        target = None
    if name not in ("apcer", "bpcer") or target is None or not 0.0 <= target <= 1.0:
        raise ValueError(
            f"threshold rule {rule!r} not understood; use eer, apcer=0.05 or bpcer=0.01 "
            "(target rates as fractions)"
        )
    return name, target


def threshold_on_val(
    scored_model, store, rule: str, input_size: int, depth_size: int, batch_size: int, device: str
) -> tuple[float, str]:
    """A threshold chosen by `rule` on the store's val split: (threshold, description)."""
    from facepad.data.dataset import StoreDataset

    name, target = parse_rule(rule)
    if "val" not in store.splits():
        raise ValueError(f"{store.root} has no 'val' split to choose a threshold on; pass one")
    val = StoreDataset(store, "val", input_size, depth_size, augment=False)
    idx, scores, _ = score_dataset(scored_model, val, batch_size, device, desc="val")
    is_live = np.array([store.index[i]["label"] == "live" for i in idx.tolist()])
    threshold = metrics.select_threshold(scores, is_live, name, target)
    return threshold, f"chosen on val by rule {rule}"


def write_figures(rows: list[dict], threshold: float, out_dir: Path, name: str) -> dict:
    """ROC, DET and score histograms of one model's rows (skipped when a class is missing)."""
    scores = np.array([r["score"] for r in rows])
    is_live = np.array([r["label"] == "live" for r in rows])
    files = {}
    if is_live.any() and (~is_live).any():
        curves = {name: (scores, is_live)}
        files["roc"] = plots.plot_roc(curves, out_dir / "roc.png", title=f"ROC: {name}")
        files["det"] = plots.plot_det(curves, out_dir / "det.png", title=f"DET: {name}")
    files["histogram"] = plots.plot_histograms(
        scores,
        is_live,
        threshold,
        out_dir / "histogram.png",
        [r["attack_type"] for r in rows],
        title=f"Liveness scores: {name}",
    )
    return files

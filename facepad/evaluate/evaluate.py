"""Score one split of a prepared store with a checkpoint, and write scores, report and figures.

The threshold comes from the checkpoint (the validation EER threshold saved by the trainer) unless
one is given, and is applied unchanged to the evaluated split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepad import metrics
from facepad.evaluate import plots, report

# Columns of the store's index.csv that are bookkeeping, not sample attributes.
_STORE_COLUMNS = {"idx", "split", "path", "label", "attack_type", "subject", "shard", "offset"}
_STORE_COLUMNS |= {"length"}


class DatasetError(ValueError):
    """Evaluation input that cannot be read; evaluation stops rather than score what is left."""


@dataclass
class Evaluation:
    """What `evaluate_checkpoint` produced: rows, report and the files written."""

    rows: list[dict]
    report: dict
    threshold: float
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


class _NamedItems:
    """Dataset wrapper: an item that fails to load stops evaluation with an error naming it.

    Scoring whatever survives would report figures on a set other than the one asked for."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            return self.dataset[i]
        except Exception as err:
            raise DatasetError(_unreadable(self.dataset, i, err)) from err


def _unreadable(dataset, i: int, err: Exception) -> str:
    cause = f"{type(err).__name__}: {err}"
    store, indices = getattr(dataset, "store", None), getattr(dataset, "indices", None)
    if store is None or indices is None:
        return f"item {i} of the evaluated dataset cannot be read ({cause})"
    row = store.index[indices[i]]
    return (
        f"sample {row['idx']} of {store.root} ({row['path']}) cannot be read ({cause}); the "
        "store is damaged: rebuild it with `facepad prepare` into a new folder"
    )


def _collate(items: list[dict]) -> dict:
    import torch

    return {
        "image": torch.stack([x["image"] for x in items]),  # (B, 3, H, W)
        "idx": torch.tensor([int(x["idx"]) for x in items]),
    }


def score_dataset(
    scored_model, dataset, batch_size: int = 64, device: str = "cpu", workers: int = 0, desc=""
) -> tuple[np.ndarray, np.ndarray]:
    """Liveness scores of every item: (store idx (N,), scores (N,)); `DatasetError` when an item
    cannot be read."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    loader = DataLoader(
        _NamedItems(dataset), batch_size=batch_size, num_workers=workers, collate_fn=_collate
    )
    scored_model.eval().to(device)
    idx, scores = [], []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc or "scoring", unit="batch", leave=False):
            score, _ = scored_model(batch["image"].to(device))  # (B,)
            scores.append(score.float().cpu().numpy())
            idx.append(batch["idx"].numpy())
    if not scores:
        raise DatasetError("nothing to score: the dataset is empty")
    return np.concatenate(idx), np.concatenate(scores)


def store_rows(store, idx: np.ndarray, scores: np.ndarray, threshold: float) -> list[dict]:
    """Score rows (the `facepad.evaluate.report` format) from store index rows and scores."""
    return [
        _score_row(store.index[i], float(s), threshold)
        for i, s in zip(idx.tolist(), scores.tolist(), strict=True)
    ]


def _score_row(index_row: dict, score: float, threshold: float, **extra: str) -> dict:
    attributes = {k: v for k, v in index_row.items() if k not in _STORE_COLUMNS}
    return {
        "idx": index_row["idx"],
        "path": index_row["path"],
        "subject": index_row["subject"],
        "label": index_row["label"],
        "attack_type": index_row["attack_type"],
        "attributes": attributes | extra,
        "score": score,
        "decision": report.decide(score, threshold),
    }


# ---- end to end: the deployed pipeline on the raw images ---------------------------------------

E2E_BATCH = 16  # raw images decoded and detected per Predictor call
FTA_CONVENTION = (
    "A presentation in which no face is found (a failure to acquire, FTA) is rejected, as the "
    "deployed system rejects it: a live one counts as a BPCER error, an attack as correctly "
    "rejected ('with FTA'). ISO/IEC 30107-3 reports failures to acquire separately: 'without "
    "FTA' leaves them out. The face scored is the largest one found."
)


def fta_score(threshold: float) -> float:
    """The score given to a presentation with no face: below the threshold and every real score,
    so curve metrics (AUC, EER) rank it as the most certain attack."""
    return min(0.0, threshold) - 1.0


def score_end_to_end(pipeline, store, split: str, threshold: float, batch: int = E2E_BATCH):
    """Rows of the split's raw images scored by `pipeline`, the deployed pipeline: a
    `facepad.infer.predictor.Predictor` (passed in: evaluate sits below infer), whose
    `predict_rgb(images)` gives each image's faces, largest first, each with a `score`.

    Attribute `face_found` is "yes" or "no"; a presentation with no face gets `fta_score` and
    decision spoof (`FTA_CONVENTION`). An image that cannot be read stops with `DatasetError`.
    """
    from tqdm import tqdm

    from facepad.data.images import ImageError, load_image

    index_rows = [store.index[i] for i in store.indices(split)]
    rows = []
    for start in tqdm(range(0, len(index_rows), batch), desc="end to end", leave=False):
        chunk = index_rows[start : start + batch]
        images = []
        for r in chunk:
            try:
                images.append(load_image(r["path"]))
            except ImageError as err:
                raise DatasetError(
                    f"store sample {r['idx']}: its raw image cannot be read ({err}); end-to-end "
                    "evaluation needs the images the store was prepared from"
                ) from None
        for r, faces in zip(chunk, pipeline.predict_rgb(images), strict=True):
            r = {k: v for k, v in r.items() if k != "box_source"}  # the pipeline finds the box
            if faces:
                rows.append(_score_row(r, faces[0].score, threshold, face_found="yes"))
            else:
                row = _score_row(r, fta_score(threshold), threshold, face_found="no")
                rows.append(row | {"decision": "spoof"})
    return rows


def end_to_end_report(store_rows_: list[dict], e2e_rows: list[dict], threshold: float) -> dict:
    """Failures to acquire, metrics with and without them, and agreement with the store figures."""
    acquired = [r for r in e2e_rows if r["attributes"]["face_found"] == "yes"]
    fta = [r for r in e2e_rows if r["attributes"]["face_found"] == "no"]
    n_fta_live = sum(r["label"] == "live" for r in fta)

    def overall(rows):
        if not rows:
            return None
        scores, is_live = [r["score"] for r in rows], [r["label"] == "live" for r in rows]
        return metrics.summary(scores, is_live, threshold, [r["attack_type"] for r in rows])

    return {
        "convention": FTA_CONVENTION,
        "n_presentations": len(e2e_rows),
        "n_fta": len(fta),
        "n_fta_live": n_fta_live,
        "n_fta_attack": len(fta) - n_fta_live,
        "fta_rate": len(fta) / len(e2e_rows) if e2e_rows else float("nan"),
        "with_fta": overall(e2e_rows),
        "without_fta": overall(acquired),
        "agreement": score_agreement(store_rows_, acquired, threshold),
    }


def score_agreement(store_rows_: list[dict], e2e_rows: list[dict], threshold: float) -> dict:
    """How far end-to-end scores are from the store's, per sample (same idx), overall and per
    store `box_source`: decision agreement and mean / max absolute score difference."""
    e2e = {r["idx"]: r["score"] for r in e2e_rows}
    groups: dict[str, list[tuple[float, float]]] = {"all": []}
    for r in store_rows_:
        if r["idx"] in e2e:
            pair = (r["score"], e2e[r["idx"]])
            groups["all"].append(pair)
            source = r["attributes"].get("box_source")
            if source:
                groups.setdefault(f"box_source={source}", []).append(pair)
    out = {}
    for key, pairs in groups.items():
        if not pairs:
            continue
        a, b = np.array(pairs).T  # (n,), (n,)
        diff = np.abs(a - b)
        out[key] = {
            "n": len(pairs),
            "decision_agreement": float(np.mean((a >= threshold) == (b >= threshold))),
            "mean_abs_score_diff": float(diff.mean()),
            "max_abs_score_diff": float(diff.max()),
        }
    return out


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
    pipeline=None,
) -> Evaluation:
    """Score `split` of a prepared store and write scores.csv, report.{json,md} and figures.

    `store` is a store folder or an open `PreparedStore` (e.g. a `MultiStore` of several
    datasets, or one with a split file, from `facepad.data.multistore`).

    Threshold: `threshold` if given; else, with `rule` ("eer", "apcer=0.05", "bpcer=0.01"), one
    chosen by that rule on the store's val split; else the checkpoint's validation EER threshold.
    An uncalibrated checkpoint (one-class val split) has none: it needs `threshold` or `rule`
    (UncalibratedError otherwise), since every reported rate depends on the threshold.

    With `pipeline` (the deployed pipeline: a `Predictor` of the same checkpoint, largest face
    only), the split's raw images are also decoded, face-detected, cropped and scored by it, and
    the report gains an `end_to_end` section (`score_end_to_end`, `end_to_end_report`), with
    per-image rows in end_to_end_scores.csv.

    Files go to `out_dir` (default: beside the checkpoint, `eval_<split>/`): scores.csv,
    report.json, report.md, roc.png, det.png, histogram.png, depth_examples.png. A sample that
    cannot be read stops evaluation with a `DatasetError` naming it.
    """
    from facepad.data.dataset import StoreDataset
    from facepad.models.checkpoint import checkpoint_threshold, model_from_checkpoint
    from facepad.models.score import ScoredModel

    checkpoint = Path(checkpoint)
    model, ckpt = model_from_checkpoint(checkpoint)
    name = name or ckpt.get("model", {}).get("name", checkpoint.stem)
    if threshold is not None:
        source = "given"
        rule = None
    elif rule is None:  # an uncalibrated checkpoint is refused here, naming the fix
        threshold = checkpoint_threshold(ckpt, str(checkpoint))
        source = "validation EER, from the checkpoint"
    prepared = _open_split(store, split)
    input_size, depth_size = _model_sizes(ckpt, prepared)
    dataset = StoreDataset(prepared, split, input_size, depth_size, augment=False)
    scored = ScoredModel(model)
    if rule is not None:
        threshold, source = threshold_on_val(
            scored, prepared, rule, input_size, depth_size, batch_size, device
        )
        print(f"threshold {threshold:.4f}: {source}")
    idx, scores = score_dataset(scored, dataset, batch_size, device, desc=f"{name} {split}")

    out_dir = Path(out_dir) if out_dir else checkpoint.parent / f"eval_{split}"
    rows = store_rows(prepared, idx, scores, threshold)
    files = {"scores": report.write_scores_csv(rows, out_dir / "scores.csv")}
    rep = report.build_report(
        rows, threshold, name=name, split=split, threshold_source=source, n_boot=n_boot
    )
    rep["checkpoint"] = str(checkpoint)
    rep["store"] = str(prepared.root)
    if pipeline is not None:
        rep["end_to_end"], files["end_to_end_scores"] = _end_to_end(
            pipeline, prepared, split, threshold, rows, out_dir
        )
    files["report_json"], files["report_md"] = report.write_report(rep, out_dir)
    if figures:
        files.update(write_figures(rows, threshold, out_dir, name))
        files["depth_examples"] = _write_depth_examples(
            scored, dataset, rows, threshold, out_dir, f"{name} ({split})", n_examples, device
        )
    return Evaluation(rows, rep, threshold, out_dir, files)


def _open_split(store, split: str):
    """The store (a folder or an open PreparedStore), refused when it lacks `split`."""
    from facepad.data.store import PreparedStore

    prepared = store if isinstance(store, PreparedStore) else PreparedStore(store)
    if split not in prepared.splits():
        raise ValueError(
            f"{prepared.root} has no {split!r} split (it has {', '.join(prepared.splits())})"
        )
    return prepared


def _model_sizes(ckpt: dict, prepared) -> tuple[int, int]:
    """(input size, depth map size) the checkpoint was trained with; older checkpoints keep
    them in their config only, and the store's depth size is the last resort."""
    pre = ckpt.get("preprocess") or {}
    data_cfg = (ckpt.get("config") or {}).get("data", {})
    input_size = int(pre.get("input_size") or data_cfg.get("input_size") or 128)
    depth_size = int(pre.get("depth_size") or data_cfg.get("depth_size") or prepared.depth_size)
    return input_size, depth_size


def _end_to_end(pipeline, prepared, split: str, threshold: float, rows: list[dict],
                out_dir: Path) -> tuple[dict, Path]:  # fmt: skip
    """The deployed pipeline on the split's raw images: its report section and its rows' csv."""
    e2e_rows = score_end_to_end(pipeline, prepared, split, threshold)
    path = report.write_scores_csv(e2e_rows, out_dir / "end_to_end_scores.csv")
    return end_to_end_report(rows, e2e_rows, threshold), path


def _write_depth_examples(
    scored, dataset, rows: list[dict], threshold: float, out_dir: Path, title: str, n: int, device
) -> Path:
    """A grid of a few samples, live and attacks, right and wrong (errors always shown), above
    their predicted depth maps (depth models): what the model reacts to. Row k is the dataset's
    item k (`score_dataset` reads it in order)."""
    scores = np.array([r["score"] for r in rows])
    is_live = np.array([r["label"] == "live" for r in rows])
    picks = plots.pick_depth_examples(scores, is_live, threshold, n=n)
    images, maps, pick_scores = depth_examples(scored, dataset, [int(k) for k in picks], device)
    has_maps = any(m is not None for m in maps)
    return plots.plot_depth_grid(
        images,
        maps,
        pick_scores,
        is_live[picks],
        threshold,
        out_dir / "depth_examples.png",
        title=f"{title}: inputs" + (" above predicted depth maps" if has_maps else ""),
    )


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
    idx, scores = score_dataset(scored_model, val, batch_size, device, desc="val")
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

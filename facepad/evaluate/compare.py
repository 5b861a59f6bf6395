"""Two models scored on the same samples: is the difference between them more than noise?

A recipe change that moves AUC from 0.77 to 0.84 on 22 images may be luck. `compare_scores` pairs
two `scores.csv` files sample by sample and runs a paired subject bootstrap (both models on each
resample of the subjects), so a change is adopted only when its interval excludes zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facepad import metrics
from facepad.evaluate.report import bootstrap_group, read_scores_csv


def _sample_key(row: dict) -> str:
    """What makes two rows the same sample: the source file and, for a video, the frame; so two
    stores prepared differently from the same data (another crop scale) still pair up."""
    if not row["path"]:
        return f"#{row['idx']}"
    return f"{row['path']}#{row['attributes'].get('frame', '')}"


def paired_rows(path_a: str | Path, path_b: str | Path) -> tuple[list[dict], list[dict]]:
    """The rows of two score files, in the same sample order; an error names what differs."""
    rows_a, rows_b = read_scores_csv(path_a), read_scores_csv(path_b)
    by_key_b = {_sample_key(r): r for r in rows_b}
    keys_a = [_sample_key(r) for r in rows_a]
    only_a = set(keys_a) - set(by_key_b)
    only_b = set(by_key_b) - set(keys_a)
    if only_a or only_b:
        raise ValueError(
            f"{path_a} and {path_b} score different samples ({len(only_a)} only in the first, "
            f"{len(only_b)} only in the second, e.g. {sorted(only_a or only_b)[0]}); score the "
            "same split of the same store with both checkpoints (`facepad evaluate ... --split S`)"
        )
    rows_b = [by_key_b[k] for k in keys_a]
    relabelled = [
        a["path"] for a, b in zip(rows_a, rows_b, strict=True) if a["label"] != b["label"]
    ]
    if relabelled:
        raise ValueError(
            f"{path_a} and {path_b} label {len(relabelled)} sample(s) differently, e.g. "
            f"{relabelled[0]}; compare score files of the same store"
        )
    return rows_a, rows_b


def compare_scores(path_a: str | Path, path_b: str | Path, n_boot: int = 1000) -> dict:
    """AUC and HTER of both models (each at its own decisions), b - a and its paired interval."""
    rows_a, rows_b = paired_rows(path_a, path_b)
    for path, rows in ((path_a, rows_a), (path_b, rows_b)):
        if any(r["decision"] not in ("live", "spoof") for r in rows):
            raise ValueError(f"{path}: a row has no live/spoof decision; rewrite it with evaluate")
    is_live = np.array([r["label"] == "live" for r in rows_a])
    subjects = [bootstrap_group(r) for r in rows_a]

    def model(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([r["score"] for r in rows]), np.array(
            [r["decision"] == "live" for r in rows]
        )

    result = metrics.paired_bootstrap(is_live, subjects, model(rows_a), model(rows_b), n_boot)
    n_subjects = len(set(subjects))
    return {"a": str(path_a), "b": str(path_b), "n_samples": len(rows_a),
            "n_subjects": n_subjects, "n_boot": n_boot, **result}  # fmt: skip


def compare_markdown(result: dict) -> str:
    """A table: each metric for a and b, b - a with its 95 % interval, and the verdict."""
    lines = [
        f"a: {result['a']}",
        f"b: {result['b']}",
        f"{result['n_samples']} paired samples, {result['n_subjects']} subjects, "
        f"{result['n_boot']} subject resamples",
        "",
        "| metric | a | b | b - a | 95 % interval | share of resamples b better | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, scale in (("auc", 1.0), ("hter", 100.0)):
        m = result[name]
        excludes_zero = m["low"] > 0 or m["high"] < 0
        better = m["diff"] > 0 if name == "auc" else m["diff"] < 0
        verdict = ("b better" if better else "a better") if excludes_zero else "no difference shown"
        unit = "" if name == "auc" else " %"
        lines.append(
            f"| {name.upper()}{unit} | {m['a'] * scale:.3f} | {m['b'] * scale:.3f} | "
            f"{m['diff'] * scale:+.3f} | {m['low'] * scale:+.3f} to {m['high'] * scale:+.3f} | "
            f"{m['p_b_better']:.2f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"

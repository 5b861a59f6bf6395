"""Per-sample score files and evaluation reports (JSON + Markdown) built from them.

A report is computed from score rows alone (no model, no torch), so it can be rebuilt from a
`scores.csv` later. Rows are dicts with `idx, path, subject, label, attack_type, attributes (dict),
score, decision`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from facepad import metrics

BASE_COLUMNS = ("idx", "path", "subject", "label", "attack_type")
# Attributes never worth a breakdown: file pointers, checksums, ids that duplicate attack_type.
NOT_BREAKDOWN = {"box_file", "md5", "spoof_type_id", "path", "video", "frame"}
FEW_SUBJECTS = 10  # below this the subject bootstrap CIs get a warning in the Markdown
MAX_GROUPS = 20  # an attribute with more distinct values than this is an id, not a condition


def write_scores_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write one row per sample; each attribute becomes its own column after attack_type."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attr_keys = sorted({k for r in rows for k in r.get("attributes", {})})
    header = [*BASE_COLUMNS, *attr_keys, "score", "decision"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in rows:
            attrs = r.get("attributes", {})
            writer.writerow(
                [r[c] for c in BASE_COLUMNS]
                + [attrs.get(k, "") for k in attr_keys]
                + [f"{float(r['score']):.6f}", r["decision"]]
            )
    return path


def read_scores_csv(path: str | Path) -> list[dict]:
    """Read a file written by `write_scores_csv` back into rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file {path} not found; run `facepad evaluate` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (*BASE_COLUMNS, "score") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        extra = [c for c in reader.fieldnames if c not in (*BASE_COLUMNS, "score", "decision")]
        rows = []
        for r in reader:
            rows.append(
                {
                    **{c: r[c] for c in BASE_COLUMNS},
                    "idx": int(r["idx"]),
                    "attributes": {k: r[k] for k in extra},
                    "score": float(r["score"]),
                    "decision": r.get("decision", ""),
                }
            )
    return rows


def decide(score: float, threshold: float) -> str:
    """The decision string for one score (live when score >= threshold)."""
    return "live" if score >= threshold else "spoof"


def breakdown_keys(rows: Sequence[dict]) -> list[str]:
    """Attributes that describe conditions: present, 2..MAX_GROUPS distinct values, not ids."""
    values: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r.get("attributes", {}).items():
            values.setdefault(k, set()).add(str(v))
    return sorted(
        k for k, v in values.items() if k not in NOT_BREAKDOWN and 2 <= len(v) <= MAX_GROUPS
    )


def _arrays(rows: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    scores = np.array([float(r["score"]) for r in rows])
    is_live = np.array([r["label"] == "live" for r in rows])
    types = np.array([str(r["attack_type"]) for r in rows], dtype=object)
    subjects = np.array([bootstrap_group(r) for r in rows], dtype=object)
    return scores, is_live, types, subjects


def bootstrap_group(row: dict) -> str:
    """The unit the bootstrap resamples: the subject (else the video, else the image), within
    its dataset, since two datasets may both number their subjects from 0001."""
    attrs = row.get("attributes", {})
    unit = str(row.get("subject") or attrs.get("video") or row.get("path") or row["idx"])
    return f"{attrs['dataset']}/{unit}" if attrs.get("dataset") else unit


def _group_metrics(rows: Sequence[dict], mask: np.ndarray, threshold: float) -> dict:
    scores, is_live, types, _ = _arrays(rows)
    m = metrics.summary(scores[mask], is_live[mask], threshold, types[mask])
    keep = ("n_live", "n_attack", "apcer", "bpcer", "acer", "acc", "auc", "eer")
    return {k: m[k] for k in keep}


def build_report(
    rows: Sequence[dict],
    threshold: float,
    *,
    name: str = "",
    split: str = "test",
    threshold_source: str = "",
    keys: Iterable[str] | None = None,
    n_boot: int = 1000,
) -> dict:
    """Metrics overall (with subject-bootstrap 95 % CIs) and broken down by attack type and by
    each condition attribute (illumination, environment, session, ...).

    Breakdown rules, stated in the Markdown too: per attack type, that type's attacks against all
    live samples (so APCER is the type's, BPCER and AUC are type-vs-live); per attribute value, only
    the samples with that value (a value held only by attacks, as CelebA-Spoof's illumination is,
    gives APCER and NaN BPCER).
    """
    if not rows:
        raise ValueError("no scored samples to report on")
    scores, is_live, types, subjects = _arrays(rows)
    overall = metrics.summary(scores, is_live, threshold, types)
    ci = metrics.bootstrap_ci(scores, is_live, threshold, subjects, n_boot=n_boot)
    by_type = {
        t: _group_metrics(rows, is_live | (types == t), threshold)
        for t in sorted(set(types[~is_live]))
    }
    by_attr: dict[str, dict[str, dict]] = {}
    for key in breakdown_keys(rows) if keys is None else keys:
        values = np.array([str(r.get("attributes", {}).get(key, "")) for r in rows], dtype=object)
        by_attr[key] = {
            v: _group_metrics(rows, values == v, threshold) for v in sorted(set(values))
        }
    return {
        "name": name,
        "split": split,
        "threshold": float(threshold),
        "threshold_source": threshold_source,
        "n_samples": len(rows),
        "n_subjects": len(set(subjects)),
        "overall": overall,
        "ci95": {k: list(v) for k, v in ci.items()},
        "by_attack_type": by_type,
        "by_attribute": by_attr,
    }


def _clean(obj):
    """NaN -> None so the JSON is standard (json.dump would write bare NaN)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def pct(x: float | None, digits: int = 2) -> str:
    """A fraction as a percent string; NaN/None shows as a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _group_table(groups: dict[str, dict], label: str) -> list[str]:
    cols = ["n live", "n attack", "APCER", "BPCER", "ACER", "ACC", "AUC", "EER"]
    body = []
    for g, m in groups.items():
        body.append(
            [g, str(m["n_live"]), str(m["n_attack"])]
            + [pct(m[k]) for k in ("apcer", "bpcer", "acer", "acc", "auc", "eer")]
        )
    return _table([label, *cols], body)


def report_markdown(report: dict) -> str:
    """The report as Markdown: rates in percent, pooled and worst-type APCER both given."""
    o, ci = report["overall"], report["ci95"]
    lines = [
        f"# Evaluation{': ' + report['name'] if report['name'] else ''} ({report['split']})",
        "",
        f"{report['n_samples']} samples ({o['n_live']} live, {o['n_attack']} attacks), "
        f"{report['n_subjects']} subjects. Decision: live when score >= "
        f"{report['threshold']:.4f} ({report['threshold_source'] or 'given threshold'}).",
        "All rates in percent. APCER is pooled over all attacks; APCER (worst) is ISO/IEC "
        "30107-3's maximum over attack types. 95 % CIs: subject-level bootstrap.",
        "",
    ]
    if report["n_subjects"] < FEW_SUBJECTS:
        lines[-1:-1] = [
            f"Only {report['n_subjects']} subjects: resampling so few subjects gives coarse, "
            "unreliable intervals; read them as a warning, not a measurement."
        ]
    rows = [
        ["APCER (pooled)", pct(o["apcer"]), f"{pct(ci['apcer'][0])} - {pct(ci['apcer'][1])}"],
        ["APCER (worst type)", pct(o["apcer_worst"]), ""],
        ["BPCER", pct(o["bpcer"]), f"{pct(ci['bpcer'][0])} - {pct(ci['bpcer'][1])}"],
        ["ACER (= HTER here)", pct(o["acer"]), f"{pct(ci['acer'][0])} - {pct(ci['acer'][1])}"],
        ["ACC", pct(o["acc"]), ""],
        ["AUC", pct(o["auc"]), ""],
        ["EER (this set's own)", pct(o["eer"]), ""],
        ["BPCER100 (BPCER @ APCER 1 %)", pct(o["bpcer100"]), ""],
        ["BPCER20 (BPCER @ APCER 5 %)", pct(o["bpcer20"]), ""],
    ]
    rows += [
        [f"TPR @ FPR={f} (spoof positive)", pct(o[f"tpr@fpr={f}"]), ""]
        for f in ("1e-2", "5e-3", "1e-3")
    ]
    lines += _table(["metric", "value", "95 % CI"], rows)
    if o["apcer_per_type"]:
        lines += ["", "## By attack type", ""]
        lines += [
            "Each attack type against all live samples: APCER is that type's; BPCER is all live.",
            "",
        ]
        lines += _group_table(report["by_attack_type"], "attack type")
    for key, groups in report["by_attribute"].items():
        lines += ["", f"## By {key}", "", f"Only the samples whose {key} is the value.", ""]
        lines += _group_table(groups, key)
    if report.get("end_to_end"):
        lines += end_to_end_markdown(report["end_to_end"], o)
    return "\n".join(lines) + "\n"


def end_to_end_markdown(e2e: dict, store_overall: dict) -> list[str]:
    """The end-to-end section: store figures beside the deployed pipeline's, with and without
    failures to acquire, and how far the two scorings agree."""
    keys = ("apcer", "bpcer", "acer", "acc", "auc", "eer")
    lines = [
        "",
        "## End to end (deployed pipeline)",
        "",
        f"The raw images of these samples decoded, face-detected, cropped and scored by the "
        f"Predictor (as `facepad predict` does), at the same threshold. "
        f"{e2e['n_presentations']} presentations; no face found in {e2e['n_fta']} "
        f"({e2e['n_fta_live']} live, {e2e['n_fta_attack']} attacks; FTA rate "
        f"{pct(e2e['fta_rate'])} %). {e2e['convention']}",
        "",
    ]
    body = [["store crops", str(store_overall["n_live"] + store_overall["n_attack"])]]
    body[0] += [pct(store_overall[k]) for k in keys]
    for title, m in (("end to end, without FTA", e2e["without_fta"]),
                     ("end to end, with FTA", e2e["with_fta"])):  # fmt: skip
        n = "0" if m is None else str(m["n_live"] + m["n_attack"])
        body.append([title, n] + [pct(None if m is None else m[k]) for k in keys])
    lines += _table(["scoring", "n", "APCER", "BPCER", "ACER", "ACC", "AUC", "EER"], body)
    agreement = e2e.get("agreement") or {}
    if agreement:
        lines += ["", "Store score vs end-to-end score of the same sample (faces found only):", ""]
        rows = [
            [group, str(a["n"]), pct(a["decision_agreement"]), f"{a['mean_abs_score_diff']:.4f}",
             f"{a['max_abs_score_diff']:.4f}"]
            for group, a in agreement.items()
        ]  # fmt: skip
        lines += _table(
            ["samples", "n", "same decision (%)", "mean abs diff", "max abs diff"], rows
        )
    return lines


def write_report(report: dict, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
    """Write `<stem>.json` (NaN as null) and `<stem>.md` into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(_clean(report), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(report_markdown(report), encoding="utf-8")
    return json_path, md_path

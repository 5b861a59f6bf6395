"""Tables and figures of `facepad benchmark`: results.csv, results.md and heatmap.png.

Built from each cell's report alone (no model, no torch), so they can be rebuilt from the
per-cell reports. Rates are fractions in the records, percent in the files.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facepad.evaluate import report

if TYPE_CHECKING:
    from facepad.experiments.benchmark_cells import Outcome, Settings

# Result columns (report keys), in percent in results.csv and results.md.
METRICS = ("hter", "acer_iso", "apcer", "apcer_worst", "bpcer", "auc", "eer")
FIGURES = (*METRICS, "hter_ci_low", "hter_ci_high")  # what figures_of returns


ENSEMBLE = "ensemble"  # the `seed` of an outcome scored by the ensemble of every seed's model
LATE_FUSION = "late_fusion"  # the model of a cell's binary_cnn and depth_unet averaged into one


def reported_models(settings: Settings) -> list[str]:
    """The tables' model columns: the models trained, then the late fusion when asked for."""
    return [*settings.models, *([LATE_FUSION] if settings.late_fusion else [])]


def seed_folder(seed: int | str | None) -> str:
    """The run and eval sub-folder of one training seed ("" when the benchmark runs one), or of
    the ensemble of the seeds."""
    if seed == ENSEMBLE:
        return f"{ENSEMBLE}/"
    return "" if seed is None else f"seed{seed}/"


def figures_of(rep: dict) -> dict[str, float]:
    """The table's figures (fractions) from a report; NaN where undefined."""
    o = rep["overall"]

    def num(x) -> float:
        return float("nan") if x is None else float(x)

    out = {k: num(o.get(k)) for k in ("apcer", "apcer_worst", "bpcer", "auc", "eer")}
    out["hter"] = num(o.get("hter", o.get("acer")))
    out["acer_iso"] = (out["apcer_worst"] + out["bpcer"]) / 2
    ci = rep.get("ci95", {}).get("acer", [None, None])
    out["hter_ci_low"], out["hter_ci_high"] = num(ci[0]), num(ci[1])
    return out


def fold_stats(values: list[dict[str, float]]) -> tuple[dict, dict]:
    """Mean and sample standard deviation (ddof 1) over folds, NaN folds left out."""
    mean, std = {}, {}
    for key in values[0]:
        column = np.array([v[key] for v in values], dtype=float)
        column = column[np.isfinite(column)]
        mean[key] = float(column.mean()) if column.size else float("nan")
        std[key] = float(column.std(ddof=1)) if column.size > 1 else float("nan")
    return mean, std


def pooled_report(outcomes: list[Outcome], model: str, settings: Settings) -> tuple[list, dict]:
    """All folds' test rows in one report; each score minus its fold's threshold (decision at 0
    unchanged), so one threshold (0) applies to all."""
    rows = []
    for o in outcomes:
        t = float(o.report["threshold"])
        rows += [{**r, "score": float(r["score"]) - t} for r in o.rows]
    rep = report.build_report(
        rows, 0.0, name=model, split=f"{len(outcomes)} folds pooled", n_boot=settings.n_boot,
        threshold_source="each fold's validation EER threshold (scores shifted by it)",
    )  # fmt: skip
    return rows, rep


def write_results(outcomes: list[Outcome], out: Path, settings: Settings) -> dict[str, Path]:
    """results.csv (one row per cell, model, fold and seed, plus k-fold mean, std and pooled rows
    and, with several training seeds, mean and std over seeds), results.md (models side by side)
    and heatmap.png."""
    records = [_record(o.cell.protocol, o.cell.train, o.cell.test, o.cell.fold, o.model,
                       figures_of(o.report), o.report, o.seed) for o in outcomes]  # fmt: skip
    for (protocol, dataset, seed), group in _kfold_groups(outcomes).items():
        for model in reported_models(settings):
            folds = [o for o in group if o.model == model]
            if not folds:
                continue
            mean, std = fold_stats([figures_of(o.report) for o in folds])
            records.append(_record(protocol, dataset, dataset, "mean", model, mean, None, seed))
            records.append(_record(protocol, dataset, dataset, "std", model, std, None, seed))
            rows, rep = pooled_report(folds, model, settings)
            pooled = out / "eval" / protocol / f"{dataset}__{dataset}" / "pooled"
            pooled_dir = pooled / seed_folder(seed) / model
            report.write_scores_csv(rows, pooled_dir / "scores.csv")
            report.write_report(rep, pooled_dir)
            records.append(_record(protocol, dataset, dataset, "pooled", model,
                                   figures_of(rep), rep, seed))  # fmt: skip
    records += seed_stats(records)
    files = {"csv": _write_csv(records, out / "results.csv")}
    files["md"] = out / "results.md"
    files["md"].write_text(results_markdown(records, settings))
    heat = heatmap_values(records, reported_models(settings))
    if heat:
        from facepad.evaluate.plots import plot_heatmaps

        files["heatmap"] = plot_heatmaps(heat, out / "heatmap.png")
    return files


def _kfold_groups(outcomes: list[Outcome]) -> dict[tuple, list[Outcome]]:
    """k-fold outcomes grouped by (protocol, dataset, training seed)."""
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        if o.cell.fold is not None:
            groups.setdefault((o.cell.protocol, o.cell.train, o.seed), []).append(o)
    return groups


def seed_stats(records: list[dict]) -> list[dict]:
    """Mean and std over training seeds of every row that was run with several seeds (k-fold
    std rows left out: the spread over seeds of a spread over folds says little)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["seed"] not in ("", ENSEMBLE) and r["fold"] != "std":
            key = (r["protocol"], r["train"], r["test"], r["fold"], r["model"])
            groups.setdefault(key, []).append(r)
    out = []
    for (protocol, train, test, fold, model), group in groups.items():
        mean, std = fold_stats([{k: r[k] for k in FIGURES} for r in group])
        out.append(_record(protocol, train, test, fold, model, mean, None, "mean"))
        out.append(_record(protocol, train, test, fold, model, std, None, "std"))
    return out


def _record(protocol, train, test, fold, model, values: dict, rep: dict | None, seed=None) -> dict:
    return {
        "protocol": protocol,
        "train": train,
        "test": test,
        "fold": "" if fold is None else fold,
        "seed": "" if seed is None else seed,
        "model": model,
        "n_samples": rep["n_samples"] if rep else "",
        "n_subjects": rep["n_subjects"] if rep else "",
        "threshold": rep["threshold"] if rep else "",
        **values,
    }


CSV_COLUMNS = ("protocol", "train", "test", "fold", "seed", "model", "n_samples", "n_subjects",
               "threshold", *METRICS, "hter_ci_low", "hter_ci_high")  # fmt: skip


def _write_csv(records: list[dict], path: Path) -> Path:
    """Rates in percent (4 decimals); empty where undefined."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            cells = []
            for c in CSV_COLUMNS:
                v = r.get(c, "")
                if c in METRICS or c.startswith("hter_ci"):
                    v = "" if v == "" or math.isnan(v) else f"{100 * v:.4f}"
                elif c == "threshold" and v != "":
                    v = f"{v:.6f}"
                cells.append(v)
            writer.writerow(cells)
    return path


PROTOCOL_NOTES = {
    "intra": "official splits; a store without a test split is tested on its val split, with "
    "validation carved from train by subject",
    "cross": "trained on the first store's train split, threshold at its val split's EER, tested "
    "on {test} of the second store",
    "lodo": "trained on all the other stores' train splits (threshold at their pooled val EER), "
    "tested on {test} of the held-out store",
    "kfold": "folds by subject; each fold tested with a model trained on the other folds "
    "(validation carved from them by subject); mean and sample std over folds, and all folds' "
    "scores pooled (each shifted by its fold's threshold)",
}


def results_markdown(records: list[dict], settings: Settings) -> str:
    """One table per protocol: a row per cell (and fold), the models side by side."""
    test_what = "all samples" if settings.cross_test == "all" else "the test split"
    lines = [
        "# Benchmark",
        "",
        "Percent. HTER = (APCER + BPCER) / 2 with APCER pooled over attack types; ACER = ISO/IEC "
        "30107-3's (worst-type APCER + BPCER) / 2; both at the threshold chosen at the validation "
        "EER and applied unchanged to test. AUC is threshold-free. 95 % subject-bootstrap CIs of "
        "HTER are in results.csv.",
    ]
    seeds = list(settings.train_seeds)
    ensembles = any(r["seed"] == ENSEMBLE for r in records)
    if seeds:
        lines += ["", f"Each cell trained once per seed ({', '.join(map(str, seeds))}): mean ± std "
                  "over seeds (k-fold rows: of each seed's figure); every seed's row is in "
                  "results.csv."]  # fmt: skip
    if ensembles:
        lines += ["", "Ensemble rows: one model averaging the seeds' models (`facepad ensemble`), "
                  "its threshold at its own validation EER."]  # fmt: skip
    if settings.late_fusion:
        lines += ["", "late_fusion: the cell's binary_cnn and depth_unet averaged into one model "
                  "(`facepad ensemble`; scored 0.5 sigmoid + 0.5 mean depth), its threshold at its "
                  "own validation EER; its ensemble row averages every seed's two."]  # fmt: skip
    shown = "mean" if seeds else ""
    kinds = [(shown, "")]  # (records' seed, its label in the "seeds" column)
    if ensembles:
        n = len(seeds)
        kinds = [("mean", f"mean ± std ({n} seeds)"), (ENSEMBLE, f"ensemble ({n} seeds)")]
    models = reported_models(settings)
    figures = [f"{m} {k}" for m in models for k in ("HTER", "ACER", "AUC")]
    protocols = list(dict.fromkeys(r["protocol"] for r in records))
    for protocol in protocols:
        kfold = protocol.startswith("kfold")
        note = PROTOCOL_NOTES["kfold" if kfold else protocol]
        header = ["train", "test", *(["fold"] if kfold else []), *(["seeds"] if ensembles else []),
                  *figures]  # fmt: skip
        lines += ["", f"## {protocol}", "", note.format(test=test_what) + ".", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        keys = list(dict.fromkeys((r["train"], r["test"], r["fold"]) for r in records
                                  if r["protocol"] == protocol and r["seed"] == shown))  # fmt: skip
        for train, test, fold in keys:
            if fold == "std":
                continue
            for seed, label in kinds:
                cells = [train, test, *([_fold_label(fold, seed == "mean")] if kfold else []),
                         *([label] if ensembles else [])]  # fmt: skip
                for m in models:
                    rec = _find(records, protocol, train, test, fold, m, seed)
                    std = _spread(records, (protocol, train, test, fold, m), seed)
                    cells += [_cell(rec, std, k) for k in ("hter", "acer_iso", "auc")]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _spread(records, where: tuple, seed) -> dict | None:
    """The ± of a shown row: over seeds for the seeds' mean, over folds for a one-seed (or the
    ensemble's) k-fold mean, none otherwise."""
    protocol, train, test, fold, model = where
    if seed == "mean":
        return _find(records, protocol, train, test, fold, model, "std")
    if fold == "mean":
        return _find(records, protocol, train, test, "std", model, seed)
    return None


def _fold_label(fold, over_seeds: bool) -> str:
    """With several seeds every figure shows ± over seeds, so the fold-mean row is not ± folds."""
    mean = "mean over folds" if over_seeds else "mean ± std"
    return {"": "", "mean": mean, "pooled": "pooled"}.get(fold, str(fold))


def _find(records, protocol, train, test, fold, model, seed) -> dict | None:
    for r in records:
        if (r["protocol"], r["train"], r["test"], r["fold"], r["model"], r["seed"]) == (
            protocol, train, test, fold, model, seed,
        ):  # fmt: skip
            return r
    return None


def _cell(rec: dict | None, std: dict | None, key: str) -> str:
    if rec is None:
        return ""
    text = report.pct(rec[key])
    return f"{text} ± {report.pct(std[key])}" if std is not None else text


def heatmap_values(records: list[dict], models: Sequence[str]) -> dict:
    """{model: (row labels, column labels, HTER matrix in percent)}: rows train sets, columns
    test sets; the diagonal is intra (else the k-fold pooled figure); lodo rows read 'not B'.
    With several training seeds, their mean."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    several = any(r.get("seed") == "mean" for r in records)
    for r in records:
        if r.get("seed", "") != ("mean" if several else ""):
            continue
        protocol = r["protocol"]
        if protocol in ("intra", "cross") and r["fold"] == "":
            row = r["train"]
        elif protocol == "lodo":
            row = "all but test"
        elif protocol.startswith("kfold") and r["fold"] == "pooled":
            row = r["train"]
            if (row, r["test"]) in cells and r["model"] in cells[(row, r["test"])]:
                continue  # intra wins the diagonal
        else:
            continue
        cells.setdefault((row, r["test"]), {})[r["model"]] = 100 * r["hter"]
    if not cells:
        return {}
    tests = sorted({t for _, t in cells})
    rows = sorted({r for r, _ in cells}, key=lambda r: (r == "all but test", r))
    out = {}
    for m in models:
        matrix = np.full((len(rows), len(tests)), np.nan)
        for (r, t), values in cells.items():
            if m in values:
                matrix[rows.index(r), tests.index(t)] = values[m]
        out[m] = (rows, tests, matrix)
    return out

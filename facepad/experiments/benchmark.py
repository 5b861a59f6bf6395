"""`facepad benchmark`: intra-dataset, cross-dataset, leave-one-dataset-out and k-fold protocols
over prepared stores, every cell with binary_cnn, depth_unet and fusion side by side.

Protocols (each cell: train, pick the threshold at the validation EER, apply it unchanged to test):
- intra A: A's official splits. A store without a test split (replay-attack-dev: train + devel)
  is tested on its val split, with validation carved from train by subject.
- cross A -> B: trained on A's train split, threshold at A's val split (as prepared), tested on
  all of B (`cross_test="all"`, default: B never took part in training) or on B's test split
  (`cross_test="test"`). Every ordered pair of the stores given.
- lodo B (leave one dataset out, 3+ stores): trained on every other store's train split (val:
  their val splits pooled), tested on B as in cross.
- kfold A: A's subjects dealt into K folds (seeded); fold f is the test set, validation is carved
  by subject from the other folds, the rest trains. Reported per fold, as mean and std over folds,
  and pooled: all folds' test scores in one report, each score shifted by its fold's threshold.

Subsets of a store are given to training and evaluation as split files (`facepad.data.multistore`),
so stores are never copied. Work goes under OUT: `splits/` (the split files), `train/<run>/<model>/`
(run folders), `eval/<protocol>/<cell>/<model>/` (scores.csv, report.json/md, figures), then
`results.csv`, `results.md` and `heatmap.png`. A rerun reuses finished trainings and evaluations
and resumes a killed training; a changed store, split or config is refused (use a new OUT or
`force`). The train and evaluate steps are injectable (`Steps`) so the orchestration can be tested.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepad.data.multistore import read_split_file, write_split_file
from facepad.data.split import choose_subjects
from facepad.data.store import PreparedStore
from facepad.evaluate import report

MODELS = ("binary_cnn", "depth_unet", "fusion")
PROTOCOLS = ("intra", "cross", "lodo", "kfold")
CROSS_TEST = ("all", "test")
# The CPU recipes that did best per model on nuaa-dev (README, Table I).
DEFAULT_RECIPES = {"binary_cnn": "nuaa_cpu", "depth_unet": "nuaa_cpu_cdc", "fusion": "nuaa_cpu_cdc"}
# Result columns (report keys), in percent in results.csv and results.md.
METRICS = ("hter", "acer_iso", "apcer", "apcer_worst", "bpcer", "auc", "eer")


@dataclass
class Settings:
    """What every cell shares: models and their recipes, overrides, split and report settings."""

    models: Sequence[str] = MODELS
    recipes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RECIPES))
    overrides: Sequence[str] = ()
    val_fraction: float = 0.2
    seed: int = 0
    folds: int = 5
    cross_test: str = "all"
    device: str = "auto"
    n_boot: int = 1000


@dataclass
class View:
    """A store seen through a split file: `{store idx: split}` (samples not listed left out)."""

    store: str  # the dataset name given to the benchmark
    key: str  # split file name: OUT/splits/<key>.csv
    splits: dict[int, str]


@dataclass
class Run:
    """One training per model: the views it trains (train split) and validates (val split) on."""

    name: str
    views: list[View]


@dataclass
class Cell:
    """One table cell: a run's models evaluated on the test split of a view."""

    protocol: str
    train: str
    test: str
    run: Run
    test_view: View
    fold: int | None = None

    @property
    def folder(self) -> str:
        name = f"{self.train}__{self.test}"
        return f"{self.protocol}/{name}" + (f"/fold{self.fold}" if self.fold is not None else "")


# ---- split maps --------------------------------------------------------------------------------


def official_splits(store: PreparedStore, name: str) -> dict[int, str]:
    """Every sample with its prepared split; train and val must be there."""
    missing = [s for s in ("train", "val") if s not in store.splits()]
    if missing:
        raise ValueError(
            f"store {name} ({store.root}) has no {' or '.join(missing)} split: prepare it with "
            "train and val splits (facepad prepare carves val from train by subject)"
        )
    return {row["idx"]: row["split"] for row in store.index}


def carved_splits(
    store: PreparedStore, name: str, val_fraction: float, seed: int
) -> dict[int, str]:
    """For a store without a test split: its val split becomes the test set, and validation is
    carved from its train split by subject."""
    official = official_splits(store, name)
    train_subjects = {store.index[i]["subject"] for i, s in official.items() if s == "train"}
    val = choose_subjects(train_subjects, val_fraction, seed)
    if not val:
        raise ValueError(f"store {name}: cannot carve validation subjects from {train_subjects}")
    out = {}
    for i, split in official.items():
        if split == "val":
            out[i] = "test"
        elif split == "train":
            out[i] = "val" if store.index[i]["subject"] in val else "train"
    return out


def test_splits(store: PreparedStore, name: str, cross_test: str) -> dict[int, str]:
    """The samples a model trained elsewhere is tested on: all of the store, or its test split."""
    if cross_test == "all":
        return {row["idx"]: "test" for row in store.index}
    rows = [row["idx"] for row in store.index if row["split"] == "test"]
    if not rows:
        raise ValueError(
            f"store {name} has no test split to test on (cross_test=test); use cross_test=all"
        )
    return dict.fromkeys(rows, "test")


def fold_subjects(store: PreparedStore, folds: int, seed: int) -> list[list[str]]:
    """Subjects dealt into `folds` groups after a seeded shuffle (sizes differ by at most 1)."""
    subjects = sorted({row["subject"] for row in store.index})
    if folds < 2 or folds > len(subjects):
        raise ValueError(
            f"{folds} folds over {len(subjects)} subjects: choose 2 to {len(subjects)} folds"
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    return [[subjects[j] for j in order[f::folds]] for f in range(folds)]


def kfold_splits(
    store: PreparedStore, groups: list[list[str]], fold: int, val_fraction: float, seed: int
) -> dict[int, str]:
    """Fold `fold`'s subjects -> test; validation carved by subject from the other folds."""
    test = set(groups[fold])
    rest = {s for g in groups for s in g} - test
    val = choose_subjects(rest, val_fraction, seed + 1 + fold)
    if not val:
        raise ValueError(f"fold {fold}: too few subjects outside the test fold to carve validation")
    role = dict.fromkeys(rest, "train") | dict.fromkeys(val, "val") | dict.fromkeys(test, "test")
    return {row["idx"]: role[row["subject"]] for row in store.index}


# ---- the plan ----------------------------------------------------------------------------------


def parse_protocols(text: str, names: Sequence[str]) -> dict[str, list[str]]:
    """`"intra,cross,kfold:nuaa"` -> {protocol: datasets tested on}; no filter = all datasets."""
    out: dict[str, list[str]] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        protocol, _, only = item.partition(":")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")
        chosen = [d.strip() for d in only.split("+") if d.strip()] if only else list(names)
        unknown = [d for d in chosen if d not in names]
        if unknown:
            raise ValueError(f"{item}: no store named {', '.join(unknown)} ({', '.join(names)})")
        out.setdefault(protocol, []).extend(d for d in chosen if d not in out.get(protocol, []))
    if not out:
        raise ValueError(f"no protocol given; choose from {', '.join(PROTOCOLS)}")
    return out


def plan(
    stores: Mapping[str, PreparedStore], protocols: Mapping[str, list[str]], settings: Settings
) -> list[Cell]:
    """Every cell of the asked protocols, with the runs they need (shared where identical)."""
    names = list(stores)
    runs: dict[str, Run] = {}

    def official(a: str) -> Run:
        if a not in runs:
            runs[a] = Run(a, [View(a, f"{a}.official", official_splits(stores[a], a))])
        return runs[a]

    def tested(b: str) -> View:
        return View(b, f"{b}.test-{settings.cross_test}",
                    test_splits(stores[b], b, settings.cross_test))  # fmt: skip

    cells = []
    for a in protocols.get("intra", []):
        if "test" in stores[a].splits():
            run = official(a)
            cells.append(Cell("intra", a, a, run, run.views[0]))
        else:
            splits = carved_splits(stores[a], a, settings.val_fraction, settings.seed)
            view = View(a, f"{a}.carved", splits)
            cells.append(Cell("intra", a, a, Run(f"{a}-carved", [view]), view))
    for b in protocols.get("cross", []):
        for a in names:
            if a != b:
                cells.append(Cell("cross", a, b, official(a), tested(b)))
    if "lodo" in protocols and len(names) < 3:
        print("note: leave-one-dataset-out needs 3+ stores (with 2 it is the cross protocol)")
    elif "lodo" in protocols:
        for b in protocols["lodo"]:
            others = [a for a in names if a != b]
            run = Run(f"lodo-{b}", [official(a).views[0] for a in others])
            cells.append(Cell("lodo", "+".join(others), b, run, tested(b)))
    for a in protocols.get("kfold", []):
        k = settings.folds
        groups = fold_subjects(stores[a], k, settings.seed)
        for f in range(k):
            splits = kfold_splits(stores[a], groups, f, settings.val_fraction, settings.seed)
            view = View(a, f"{a}.kfold{k}-f{f}", splits)
            cells.append(Cell(f"kfold{k}", a, a, Run(f"{a}-kfold{k}-f{f}", [view]), view, fold=f))
    return cells


# ---- steps -------------------------------------------------------------------------------------


def find_recipe(name: str) -> Path:
    """A recipe path, or a name looked up in the checkout's configs/ and the package's configs/."""
    path = Path(name)
    if path.is_file():
        return path
    here = Path(__file__).resolve()
    folders = [here.parents[2] / "configs", here.parents[1] / "configs"]
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.yaml"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"recipe {name!r} not found (a YAML path, or a name in {', '.join(map(str, folders))})"
    )


def run_config(recipe: Path, overrides: Sequence[str], model: str, stores: list[dict], run_dir):
    """The run's Config: the recipe, the overrides, then the benchmark's own data and folder."""
    from facepad.config import load_config, validate

    config = load_config(recipe, list(overrides))
    config.model.name = model
    config.data.store = ""
    config.data.stores = stores
    config.data.train_split, config.data.val_split = "train", "val"
    config.out_dir, config.run_name = str(run_dir), model
    validate(config)
    return config


def default_train(config) -> Path:
    """Train (resuming a killed run from its last.pt) and return the best checkpoint."""
    from facepad.train.loop import run_dir_of, train

    return train(config, resume=(run_dir_of(config) / "last.pt").is_file())


def default_evaluate(
    checkpoint: Path, views: list[dict], out_dir: Path, name: str, settings: Settings, figures: bool
) -> tuple[list[dict], dict]:
    """Score the views' test split with the checkpoint's validation threshold: (rows, report)."""
    from facepad.data.multistore import MultiStore
    from facepad.evaluate.evaluate import evaluate_checkpoint

    device = settings.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    result = evaluate_checkpoint(
        checkpoint, MultiStore(views), "test", out_dir=out_dir, name=name, device=device,
        n_boot=settings.n_boot, figures=figures,
    )  # fmt: skip
    return result.rows, result.report


@dataclass
class Steps:
    """The two steps the benchmark orchestrates; replace them in tests."""

    train: Callable = default_train
    evaluate: Callable = default_evaluate


# ---- running -----------------------------------------------------------------------------------


def store_fingerprint(store: PreparedStore) -> str:
    return hashlib.sha256((store.root / "index.csv").read_bytes()).hexdigest()[:16]


def _check_same(path: Path, payload: dict, what: str) -> None:
    """Refuse to mix results made from other inputs into one results folder."""
    if path.is_file():
        old = json.loads(path.read_text())
        if old != payload:
            changed = sorted(k for k in set(old) | set(payload) if old.get(k) != payload.get(k))
            raise ValueError(
                f"{path.parent} was made with other {what} ({', '.join(changed)}); use a new "
                "--out folder, or --force to redo everything"
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_view(view: View, store: PreparedStore, folder: Path) -> dict:
    """Write (or check) the view's split file; the `data.stores` entry that reads it."""
    path = folder / f"{view.key}.csv"
    if path.is_file():
        old = read_split_file(path, store)
        new = [view.splits.get(i, "") for i in range(len(store))]
        if old != new:
            raise ValueError(
                f"{path} holds other splits than this benchmark computes (another seed, "
                "val fraction or fold count?); use a new --out folder, or --force"
            )
    else:
        write_split_file(path, view.splits)
    return {"path": str(store.root.resolve()), "name": view.store, "splits": str(path.resolve())}


@dataclass
class Outcome:
    """One model in one cell: its score rows and report."""

    cell: Cell
    model: str
    rows: list[dict]
    report: dict


def benchmark(
    stores: Mapping[str, str | Path],
    protocols: str | Mapping[str, list[str]],
    out_dir: str | Path,
    settings: Settings | None = None,
    force: bool = False,
    steps: Steps | None = None,
) -> dict[str, Path]:
    """Run (or resume) the protocols over the named stores into `out_dir`; returns the files
    written (results.csv, results.md, heatmap.png)."""
    settings, steps = settings or Settings(), steps or Steps()
    unknown = [m for m in settings.models if m not in MODELS]
    if unknown or not settings.models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if settings.cross_test not in CROSS_TEST:
        raise ValueError(f"cross_test {settings.cross_test!r}: choose all or test")
    out = Path(out_dir)
    if force:
        for sub in ("splits", "train", "eval", "benchmark.json"):
            target = out / sub
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    opened = {name: PreparedStore(path) for name, path in stores.items()}
    if isinstance(protocols, str):
        protocols = parse_protocols(protocols, list(opened))
    recipes = {m: find_recipe(settings.recipes.get(m, DEFAULT_RECIPES[m])) for m in settings.models}
    _check_same(
        out / "benchmark.json",
        {
            "stores": {
                n: {"path": str(s.root.resolve()), "index": store_fingerprint(s)}
                for n, s in opened.items()
            },
            "val_fraction": settings.val_fraction,
            "seed": settings.seed,
        },  # fmt: skip
        "stores or split settings",
    )
    cells = plan(opened, protocols, settings)
    print(f"benchmark: {len(cells)} cells x {len(settings.models)} models -> {out}")
    outcomes, seconds = [], {}
    for n, cell in enumerate(cells, 1):
        print(f"[{n}/{len(cells)}] {cell.protocol}: {cell.train} -> {cell.test}"
              + (f" (fold {cell.fold})" if cell.fold is not None else ""), flush=True)  # fmt: skip
        train_views = [_write_view(v, opened[v.store], out / "splits") for v in cell.run.views]
        test_views = [_write_view(cell.test_view, opened[cell.test_view.store], out / "splits")]
        for model in settings.models:
            started = time.perf_counter()
            config = run_config(recipes[model], settings.overrides, model, train_views,
                                out / "train" / cell.run.name)  # fmt: skip
            checkpoint, marker = _trained(config, steps)
            eval_dir = out / "eval" / cell.folder / model
            rows, rep = _evaluated(
                checkpoint, marker, test_views, eval_dir, model, settings, steps,
                figures=cell.fold is None,
            )  # fmt: skip
            outcomes.append(Outcome(cell, model, rows, rep))
            seconds[f"{cell.folder}/{model}"] = round(time.perf_counter() - started, 1)
    files = write_results(outcomes, out, settings)
    (out / "timings.json").write_text(json.dumps(seconds, indent=2) + "\n")
    print((out / "results.md").read_text())
    return files


def _trained(config, steps: Steps) -> tuple[Path, Path]:
    """A finished training's best checkpoint and its marker: reused, resumed, or trained now."""
    from facepad.config import config_to_dict, load_config
    from facepad.train.loop import run_dir_of

    run_dir = run_dir_of(config)
    marker = run_dir / "benchmark_done.json"
    wanted = config_to_dict(config)
    if (run_dir / "config.yaml").is_file():  # an earlier (maybe killed) run of this folder
        old = config_to_dict(load_config(run_dir / "config.yaml"))
        if old != wanted:
            raise ValueError(
                f"{run_dir} was trained with another config (recipe or overrides changed); use a "
                "new --out folder, or --force to redo everything"
            )
    if marker.is_file():
        print(f"  {config.model.name}: reusing {run_dir}")
        return Path(json.loads(marker.read_text())["checkpoint"]), marker
    checkpoint = Path(steps.train(config))
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"checkpoint": str(checkpoint)}, indent=2) + "\n")
    return checkpoint, marker


def _evaluated(checkpoint, marker, views, eval_dir: Path, model, settings, steps, figures):
    """A cell's evaluation: reused when newer than its training, else run now."""
    done = eval_dir / "report.json"
    if done.is_file() and done.stat().st_mtime >= marker.stat().st_mtime:
        print(f"  {model}: reusing {eval_dir}")
        return report.read_scores_csv(eval_dir / "scores.csv"), json.loads(done.read_text())
    return steps.evaluate(checkpoint, views, eval_dir, model, settings, figures)


# ---- results -----------------------------------------------------------------------------------


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
    """results.csv (one row per cell, model and fold, plus k-fold mean, std and pooled rows),
    results.md (models side by side) and heatmap.png."""
    records = [_record(o.cell.protocol, o.cell.train, o.cell.test, o.cell.fold, o.model,
                       figures_of(o.report), o.report) for o in outcomes]  # fmt: skip
    for (protocol, dataset), group in _kfold_groups(outcomes).items():
        for model in settings.models:
            folds = [o for o in group if o.model == model]
            if not folds:
                continue
            mean, std = fold_stats([figures_of(o.report) for o in folds])
            records.append(_record(protocol, dataset, dataset, "mean", model, mean, None))
            records.append(_record(protocol, dataset, dataset, "std", model, std, None))
            rows, rep = pooled_report(folds, model, settings)
            pooled_dir = out / "eval" / protocol / f"{dataset}__{dataset}" / "pooled" / model
            report.write_scores_csv(rows, pooled_dir / "scores.csv")
            report.write_report(rep, pooled_dir)
            records.append(_record(protocol, dataset, dataset, "pooled", model,
                                   figures_of(rep), rep))  # fmt: skip
    files = {"csv": _write_csv(records, out / "results.csv")}
    files["md"] = out / "results.md"
    files["md"].write_text(results_markdown(records, settings))
    heat = heatmap_values(records, settings.models)
    if heat:
        from facepad.evaluate.plots import plot_heatmaps

        files["heatmap"] = plot_heatmaps(heat, out / "heatmap.png")
    return files


def _kfold_groups(outcomes: list[Outcome]) -> dict[tuple[str, str], list[Outcome]]:
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.cell.fold is not None:
            groups.setdefault((o.cell.protocol, o.cell.train), []).append(o)
    return groups


def _record(protocol, train, test, fold, model, values: dict, rep: dict | None) -> dict:
    return {
        "protocol": protocol,
        "train": train,
        "test": test,
        "fold": "" if fold is None else fold,
        "model": model,
        "n_samples": rep["n_samples"] if rep else "",
        "n_subjects": rep["n_subjects"] if rep else "",
        "threshold": rep["threshold"] if rep else "",
        **values,
    }


CSV_COLUMNS = ("protocol", "train", "test", "fold", "model", "n_samples", "n_subjects",
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
    models = list(settings.models)
    header = ["train", "test", "fold"] + [
        f"{m} {k}" for m in models for k in ("HTER", "ACER", "AUC")
    ]
    protocols = list(dict.fromkeys(r["protocol"] for r in records))
    for protocol in protocols:
        note = PROTOCOL_NOTES["kfold" if protocol.startswith("kfold") else protocol]
        lines += ["", f"## {protocol}", "", note.format(test=test_what) + ".", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        keys = list(dict.fromkeys((r["train"], r["test"], r["fold"]) for r in records
                                  if r["protocol"] == protocol))  # fmt: skip
        for train, test, fold in keys:
            if fold == "std":
                continue
            cells = [train, test, _fold_label(fold)]
            for m in models:
                rec = _find(records, protocol, train, test, fold, m)
                std = _find(records, protocol, train, test, "std", m) if fold == "mean" else None
                for k in ("hter", "acer_iso", "auc"):
                    cells.append(_cell(rec, std, k))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fold_label(fold) -> str:
    return {"": "", "mean": "mean ± std", "pooled": "pooled"}.get(fold, str(fold))


def _find(records, protocol, train, test, fold, model) -> dict | None:
    for r in records:
        if (r["protocol"], r["train"], r["test"], r["fold"], r["model"]) == (
            protocol, train, test, fold, model,
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
    test sets; the diagonal is intra (else the k-fold pooled figure); lodo rows read 'not B'."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for r in records:
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

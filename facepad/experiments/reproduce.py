"""`facepad reproduce`: the paper's whole experiment, from raw data to Table I and its figures.

Steps: (1) get the data (demo: generate it) and prepare a store; (2) train each model with the
dataset's packaged recipe (one recipe, with per-model sections, serves all three); (3) evaluate
each on test with the threshold chosen on validation; (4) write Table I (Markdown + CSV), a
Figure-2-like bar chart, combined ROC/DET, and per-model reports and figures into one results
folder. Each step is skipped when its output is already there (a rerun
resumes), unless `force`. The steps are injectable (`Steps`) so the orchestration can be tested
without training anything.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepad.config import list_recipes, load_config, recipe_path
from facepad.evaluate import plots, report
from facepad.experiments.paper_models import MODELS, check_models

CONFIG_SETS = ("cpu", "gpu")
# Table I columns: (key in the report's overall metrics, header). Rates in percent.
TABLE_COLUMNS = (
    ("apcer", "APCER"),
    ("bpcer", "BPCER"),
    ("acer", "ACER"),
    ("acc", "ACC"),
    ("auc", "AUC"),
    ("eer", "EER"),
    ("apcer_worst", "APCER worst type"),
)
PAPER_NOTE = (
    "APCER is pooled over all attack types (as the paper reports it); 'APCER worst type' is "
    "ISO/IEC 30107-3's maximum over attack types. EER is the test set's own; every other rate uses "
    "the threshold chosen at the validation EER and applied unchanged to test."
)


@dataclass
class Source:
    """Where the data comes from: kind is 'demo', 'celeba' (root) or 'manifest' (CSV path)."""

    kind: str
    path: str = ""
    protocol: str = "intra_test"
    test_subjects: Sequence[str] | None = None
    face_crops: bool = False  # a manifest of face crops (kept as given, framing measured)

    @property
    def dataset_name(self) -> str:
        return {"demo": "demo", "celeba": "celeba_spoof"}.get(self.kind, Path(self.path).stem)


def recipe_for(model: str, source: Source, config_set: str) -> Path:
    """The packaged recipe of a data source and recipe family: `<dataset>_<protocol>_<set>`
    (CelebA-Spoof, protocol's first word: 'intra' for intra_test), else `<dataset>_<set>`, where
    dataset is 'demo', 'celeba' or 'nuaa' (manifests). Recipes hold a section per model, so the
    model is set by an override (model.name) and one recipe serves all models."""
    dataset = {"demo": "demo", "celeba": "celeba"}.get(source.kind, "nuaa")
    if source.face_crops:
        dataset = "celeba_mini"  # the recipe for face-crop sets (celeba-spoof-mini's 112 px)
    names = [f"{dataset}_{config_set}"]
    if source.kind == "celeba":
        names.insert(0, f"{dataset}_{source.protocol.split('_')[0]}_{config_set}")
    for name in names:
        if name in list_recipes():
            return recipe_path(name)
    raise FileNotFoundError(
        f"no recipe for {model} on {source.kind} data ({config_set}): looked for "
        f"{', '.join(n + '.yaml' for n in names)} among the packaged recipes "
        f"({', '.join(list_recipes())}); pass --recipe NAME_OR_PATH"
    )


# ---- default steps (the real thing) ----------------------------------------------------------


def store_settings(recipes: Sequence[Path], source: Source, overrides: Sequence[str] = ()) -> dict:
    """Prepare settings that fit the recipes (with the run's overrides): crops as large as the
    largest model input, their depth map size, and a larger validation share for small manifest
    sets (few subjects)."""
    configs = [load_config(r, list(overrides)) for r in recipes]
    return {
        "crop_size": max(c.data.input_size for c in configs),
        "depth_size": max(c.data.depth_size for c in configs),
        "val_fraction": 0.2 if source.kind == "manifest" else 0.1,
    }


def default_prepare(source: Source, store_dir: Path, work_dir: Path, settings: dict) -> Path:
    """Read the dataset (generating the demo first) and write the prepared store."""
    from facepad.data.prepare import prepare_store

    val = settings["val_fraction"]

    if source.kind == "demo":
        from facepad.data.celeba_spoof import read_celeba_spoof
        from facepad.data.demo import make_demo_dataset

        root = work_dir / "demo_data"
        if (root / "metas" / "intra_test" / "test_label.json").is_file():
            print(f"  reusing demo data in {root}")
        else:
            print(f"  generating the demo set in {root}")
            make_demo_dataset(root, seed=0, overwrite=True)
        result = read_celeba_spoof(root, val_fraction=val)
    elif source.kind == "celeba":
        from facepad.data.celeba_spoof import read_celeba_spoof

        result = read_celeba_spoof(source.path, protocol=source.protocol, val_fraction=val)
    elif source.kind == "manifest":
        from facepad.data.manifest import read_manifest

        result = read_manifest(source.path, val_fraction=val, test_subjects=source.test_subjects)
    else:
        raise ValueError(f"unknown data source {source.kind!r}")
    print(f"  read {len(result.samples)} samples, skipped {len(result.skipped)}")
    limit = settings.get("max_failed_fraction")
    framing = {}
    if source.face_crops:  # kept as given; the scale predict cuts photos at is measured
        from facepad.data.prepare import measured_crop_scale

        framing = {"face_crops": True, "box": "dataset"}
        framing["crop_scale"] = measured_crop_scale(result.samples)
        print(f"  face crops: {framing['crop_scale']:.2f}x the detector's box (median)")
    return prepare_store(
        result,
        store_dir,
        dataset_name=source.dataset_name,
        crop_size=settings["crop_size"],
        depth_size=settings["depth_size"],
        **framing,
        **({} if limit is None else {"max_failed_fraction": limit}),
    )


def default_train(recipe: Path, overrides: list[str]) -> Path:
    """Train one model (resuming a half-finished run) and return its best checkpoint."""
    from facepad.train.loop import run_dir_of, train

    config = load_config(recipe, overrides)
    resume = (run_dir_of(config) / "last.pt").is_file()
    return train(config, resume=resume)


def default_evaluate(checkpoint: Path, store_dir: Path, out_dir: Path, name: str):
    """Test figures from the store and end to end (the deployed Predictor on the raw images)."""
    from facepad.evaluate.evaluate import evaluate_checkpoint
    from facepad.infer.predictor import Predictor

    pipeline = Predictor.from_checkpoint(checkpoint, "torch", largest_only=True)
    return evaluate_checkpoint(
        checkpoint, store_dir, "test", out_dir=out_dir, name=name, pipeline=pipeline
    )


def default_shipped(store_dir: Path) -> tuple[list[dict], float]:
    """Score rows of the store's test images end to end with the model that ships in facepad,
    and its threshold."""
    from facepad.data.store import PreparedStore
    from facepad.evaluate.evaluate import score_end_to_end
    from facepad.infer import Predictor

    predictor = Predictor(largest_only=True)
    threshold = predictor.threshold
    return score_end_to_end(predictor, PreparedStore(store_dir), "test", threshold), threshold


@dataclass
class Steps:
    """The steps reproduce orchestrates; replace any of them in tests. `shipped` scores the
    demo's test images with the shipped model, beside the models the demo trained."""

    prepare: Callable[[Source, Path, Path, dict], Path] = default_prepare
    train: Callable[[Path, list[str]], Path] = default_train
    evaluate: Callable[[Path, Path, Path, str], object] = default_evaluate
    recipe: Callable[[str, Source, str], Path] = recipe_for
    settings: Callable[[Sequence[Path], Source, Sequence[str]], dict] = store_settings
    shipped: Callable[[Path], tuple[list[dict], float]] | None = default_shipped


@dataclass
class Result:
    """What reproduce returns: Table I rows (fractions), and the files it wrote."""

    table: dict[str, dict[str, float]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _step(message: str) -> float:
    print(message, flush=True)
    return time.perf_counter()


def _done(marker: Path, payload: dict) -> None:
    marker.write_text(json.dumps(payload, indent=2) + "\n")


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def reproduce(
    source: Source,
    out_dir: str | Path,
    config_set: str | None = None,
    models: Sequence[str] = MODELS,
    force: bool = False,
    store_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    steps: Steps | None = None,
    recipe: str | Path | None = None,
    max_failed_fraction: float | None = None,
) -> Result:
    """Run (or resume) the whole experiment into `out_dir` and return Table I.

    config_set defaults to 'gpu' for CelebA-Spoof (no CPU recipe runs it in useful time) and
    'cpu' otherwise; `recipe` (a path or packaged recipe name) replaces that choice for every
    model.
    """
    steps = steps or Steps()
    out_dir = Path(out_dir)
    config_set = config_set or ("gpu" if source.kind == "celeba" else "cpu")
    _check_choices(config_set, models)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Path(store_dir) if store_dir else out_dir / "store"
    n_steps = 2 + 2 * len(models)
    step = iter(f"[{k}/{n_steps}]" for k in range(1, n_steps + 1))

    # 1. data
    if recipe is not None:
        recipes = {m: recipe_path(recipe) for m in models}
    else:  # fail early if missing
        recipes = {m: steps.recipe(m, source, config_set) for m in models}
    t0 = _step(f"{next(step)} prepare {source.kind} {source.path} -> {store}")
    if force and store_dir is None:
        for folder in (store, out_dir / "demo_data"):
            if folder.exists():
                shutil.rmtree(folder)
    _prepare_or_reuse(steps, source, store, out_dir, list(recipes.values()), overrides,
                      max_failed_fraction)  # fmt: skip
    seconds = {"prepare": time.perf_counter() - t0}

    # 2. train and 3. evaluate, per model
    evaluations: dict[str, tuple[list[dict], dict]] = {}
    (out_dir / "configs").mkdir(exist_ok=True)
    for model in models:
        t0 = _step(f"{next(step)} train {model} with {recipes[model]}")
        ckpt, marker = _train_model(steps, model, recipes[model], store, out_dir, overrides, force)
        seconds[f"train_{model}"] = time.perf_counter() - t0
        t0 = _step(f"{next(step)} evaluate {model} on test (threshold from validation)")
        evaluations[model] = _evaluate_model(steps, model, ckpt, marker, store, out_dir, force)
        seconds[f"evaluate_{model}"] = time.perf_counter() - t0

    # 4. Table I and figures
    _step(f"{next(step)} Table I and figures -> {out_dir}")
    table, files = _write_table_and_figures(evaluations, out_dir, seconds)
    if source.kind == "demo":
        if steps.shipped is not None:
            _add_shipped_row(*steps.shipped(store), files["table_md"])
        print(DEMO_NOTE)
    return Result(table, out_dir, files, seconds)


DEMO_NOTE = (
    "The demo is synthetic (simulated attacks on photos that Python packages ship): its figures "
    "show the pipeline runs, not how a model does on real attacks. Real figures: docs/results.md "
    "in the facepad repository."
)


def _add_shipped_row(rows: list[dict], threshold: float, table_md: Path) -> None:
    """Append (and print) the shipped model's figures on the same test images, end to end."""
    from facepad.metrics import summary

    found = [r for r in rows if r["attributes"]["face_found"] == "yes"]
    live = [r["label"] == "live" for r in found]
    s = summary([r["score"] for r in found], live, threshold)
    cells = [report.pct(s[k]) for k in ("apcer", "bpcer", "acer", "acc", "auc", "eer")]
    markdown = "\n".join([
        "", "The model that ships with facepad (trained on four real datasets, never on this one),",
        "the same test images end to end, its own threshold:", "",
        "| model | no face (n) | APCER | BPCER | ACER | ACC | AUC | EER |",
        "|---|---|---|---|---|---|---|---|",
        f"| shipped | {len(rows) - len(found)} | " + " | ".join(cells) + " |", "",
    ])  # fmt: skip
    with open(table_md, "a") as f:
        f.write(markdown)
    print(markdown)


def _check_choices(config_set: str, models: Sequence[str]) -> None:
    """Refuse an unknown config set or model before the store is prepared."""
    if config_set not in CONFIG_SETS:
        raise ValueError(f"config set {config_set!r} unknown; use one of {', '.join(CONFIG_SETS)}")
    check_models(models)


def _prepare_or_reuse(
    steps: Steps, source: Source, store: Path, out_dir: Path, recipes: list[Path],
    overrides: Sequence[str], max_failed_fraction: float | None,
) -> None:  # fmt: skip
    """Prepare the store with the recipes' crop and map sizes, unless a finished one is there."""
    if (store / "store.json").is_file():
        print(f"  reusing prepared store {store} (--force to rebuild)")
        return
    settings = steps.settings(recipes, source, overrides)
    if max_failed_fraction is not None:  # prepare's limit on failed samples
        settings["max_failed_fraction"] = max_failed_fraction
    print(f"  store settings: {settings}")
    steps.prepare(source, store, out_dir, settings)


def _write_table_and_figures(
    evaluations: dict[str, tuple[list[dict], dict]], out_dir: Path, seconds: dict[str, float]
) -> tuple[dict, dict]:
    """Table I (md, csv), the end-to-end table, Figure 2 and ROC/DET, timings; printed too."""
    table = {m: _table_row(rep) for m, (_, rep) in evaluations.items()}
    files = write_table(table, out_dir)
    e2e_md = write_end_to_end_table(evaluations, out_dir, files)
    files.update(write_comparison_figures(evaluations, out_dir))
    (out_dir / "timings.json").write_text(json.dumps(seconds, indent=2) + "\n")
    print()
    print(table_markdown(table) + e2e_md)
    print(f"Table I: {files['table_md']} and {files['table_csv']}")
    print(f"Figure 2: {files['figure2']}; ROC/DET: {files.get('roc')}, {files.get('det')}")
    print(f"Per model: {out_dir}/<model>/ (report.md, roc.png, det.png, histogram.png, ")
    print("  depth_examples.png = the paper's Figure 3)")
    return table, files


def _train_model(
    steps: Steps,
    model: str,
    recipe: Path,
    store: Path,
    out_dir: Path,
    overrides: Sequence[str],
    force: bool,
) -> tuple[Path, Path]:
    """Train `model` into out_dir/runs/<model> (or reuse a finished run): its checkpoint and the
    marker file that records it. The config and recipe are copied to out_dir/configs."""
    run_root = out_dir / "runs"
    marker = run_root / model / "reproduce_done.json"
    if force and (run_root / model).exists():
        shutil.rmtree(run_root / model)
    if marker.is_file():
        ckpt = Path(json.loads(marker.read_text())["checkpoint"])
        print(f"  reusing trained {ckpt} (--force to retrain)")
    else:
        run_overrides = [
            f"data.store={store}",
            f"model.name={model}",
            f"out_dir={run_root}",
            f"run_name={model}",
            *overrides,
        ]
        ckpt = Path(steps.train(recipe, run_overrides))
        (run_root / model).mkdir(parents=True, exist_ok=True)
        _done(marker, {"checkpoint": str(ckpt), "recipe": str(recipe)})
    if (run_root / model / "config.yaml").is_file():
        shutil.copy(run_root / model / "config.yaml", out_dir / "configs" / f"{model}.yaml")
    shutil.copy(recipe, out_dir / "configs" / f"{model}.recipe.yaml")
    return ckpt, marker


def _evaluate_model(
    steps: Steps, model: str, ckpt: Path, marker: Path, store: Path, out_dir: Path, force: bool
) -> tuple[list[dict], dict]:
    """Score rows and report of `model` on the test split, reused if newer than its training."""
    eval_dir = out_dir / model
    fresh = eval_dir / "report.json"
    if fresh.is_file() and not force and fresh.stat().st_mtime >= marker.stat().st_mtime:
        print(f"  reusing {fresh} (--force to redo)")
        return report.read_scores_csv(eval_dir / "scores.csv"), json.loads(fresh.read_text())
    evaluation = steps.evaluate(ckpt, store, eval_dir, model)
    return evaluation.rows, evaluation.report


def _table_row(rep: dict) -> dict[str, float]:
    """One model's Table I row from its evaluation report."""
    low, high = (rep.get("ci95") or {}).get("acer", [None, None])
    return (
        {key: _nan(rep["overall"][key]) for key, _ in TABLE_COLUMNS}
        | {"threshold": float(rep["threshold"]), "n_subjects": int(rep.get("n_subjects", 0))}
        | {"acer_ci_low": _nan(low), "acer_ci_high": _nan(high)}
    )


def table_markdown(table: dict[str, dict[str, float]]) -> str:
    """Table I as Markdown, rates in percent, with the ACER's subject-bootstrap interval, a note on
    what each APCER is, and a warning when the test set holds too few subjects to mean much."""
    header = ["model", *[h + " (%)" for _, h in TABLE_COLUMNS], "ACER 95 % CI (%)"]
    lines = [
        "Table I: test results (percent)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for model, row in table.items():
        ci = f"{report.pct(row.get('acer_ci_low'))} - {report.pct(row.get('acer_ci_high'))}"
        cells = [model, *[report.pct(row[k]) for k, _ in TABLE_COLUMNS], ci]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [PAPER_NOTE]
    subjects = min((int(row.get("n_subjects", 0)) for row in table.values()), default=0)
    if 0 < subjects < report.FEW_SUBJECTS:
        notes.append(
            f"SMOKE TEST: the test set holds {subjects} subject(s). Figures from so few people "
            "cannot tell a model that generalises from one that memorised them: on other people "
            "of the same database such models have scored an order of magnitude worse. Judge "
            "models with `facepad benchmark` (k-fold by subject, cross-dataset) instead."
        )
    return "\n".join([*lines, "", *notes]) + "\n"


def write_table(table: dict[str, dict[str, float]], out_dir: Path) -> dict[str, Path]:
    """table1.md, table1.csv (percent, 4 decimals) and figure2.png (grouped bars)."""
    md = out_dir / "table1.md"
    md.write_text(table_markdown(table))
    path = out_dir / "table1.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", *[k for k, _ in TABLE_COLUMNS], "threshold"])
        for model, row in table.items():
            cells = ["" if math.isnan(row[k]) else f"{100 * row[k]:.4f}" for k, _ in TABLE_COLUMNS]
            writer.writerow([model, *cells, f"{row['threshold']:.6f}"])
    bars = plots.plot_table_bars(
        table,
        out_dir / "figure2.png",
        columns=("apcer", "bpcer", "acer", "apcer_worst"),
        title="Test error rates, threshold from validation (lower is better)",
    )
    return {"table_md": md, "table_csv": path, "figure2": bars}


# End-to-end table: (key, header); `*_without` / `*_with` leave out / count failures to acquire.
E2E_COLUMNS = (
    ("n_fta", "no face (n)"),
    ("acer_store", "ACER store"),
    ("apcer_without", "APCER e2e"),
    ("bpcer_without", "BPCER e2e"),
    ("acer_without", "ACER e2e"),
    ("bpcer_with", "BPCER e2e with FTA"),
    ("acer_with", "ACER e2e with FTA"),
    ("agreement", "same decision"),
)


def write_end_to_end_table(evaluations: dict, out_dir: Path, files: dict) -> str:
    """Append the deployed pipeline's figures beside the store's to table1.md and write
    table1_end_to_end.csv (percent); returns the Markdown added ("" without end-to-end runs)."""
    rows, convention = {}, ""
    for model, (_, rep) in evaluations.items():
        e2e = rep.get("end_to_end")
        if not e2e:
            continue
        convention = e2e["convention"]
        without, with_fta = e2e["without_fta"] or {}, e2e["with_fta"] or {}
        rows[model] = {
            "n_fta": e2e["n_fta"],
            "acer_store": rep["overall"]["acer"],
            "apcer_without": without.get("apcer"),
            "bpcer_without": without.get("bpcer"),
            "acer_without": without.get("acer"),
            "bpcer_with": with_fta.get("bpcer"),
            "acer_with": with_fta.get("acer"),
            "agreement": (e2e["agreement"].get("all") or {}).get("decision_agreement"),
        }
    if not rows:
        return ""
    cells = {m: [str(r["n_fta"])] + [report.pct(r[k]) for k, _ in E2E_COLUMNS[1:]]
             for m, r in rows.items()}  # fmt: skip
    lines = ["", "End to end: the test images through the deployed pipeline (the Predictor)", ""]
    lines += ["| model | " + " | ".join(h for _, h in E2E_COLUMNS) + " |"]
    lines += ["|" + "---|" * (len(E2E_COLUMNS) + 1)]
    lines += [f"| {m} | " + " | ".join(c) + " |" for m, c in cells.items()]
    lines += ["", f"Rates in percent. {convention}"]
    markdown = "\n".join(lines) + "\n"
    with open(files["table_md"], "a") as f:
        f.write(markdown)
    path = out_dir / "table1_end_to_end.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["model", *(k for k, _ in E2E_COLUMNS)],
                                 *([m, *c] for m, c in cells.items())])  # fmt: skip
    files["table_e2e_csv"] = path
    return markdown


def write_comparison_figures(
    evaluations: dict[str, tuple[list[dict], dict]], out_dir: Path
) -> dict[str, Path]:
    """ROC and DET of all models on one plot each (when both classes are in test)."""
    curves = {}
    for model, (rows, _) in evaluations.items():
        scores = np.array([r["score"] for r in rows])
        is_live = np.array([r["label"] == "live" for r in rows])
        if is_live.any() and (~is_live).any():
            curves[model] = (scores, is_live)
    if not curves:
        return {}
    return {
        "roc": plots.plot_roc(curves, out_dir / "roc.png", title="ROC on test"),
        "det": plots.plot_det(curves, out_dir / "det.png", title="DET on test"),
    }

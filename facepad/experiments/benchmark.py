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
- kfold A: A's subjects outside its test split dealt into K folds (seeded); fold f is the test
  set, validation is carved by subject from the other folds, the rest trains. Reported per fold,
  as mean and std over folds, and pooled: all folds' test scores in one report, each score shifted
  by its fold's threshold.

With several training seeds (`train_seeds`), every cell is trained and tested once per seed (same
splits) and reported per seed and as mean and std over seeds: how far retraining alone moves it;
and the seeds' models are averaged into one (`facepad ensemble`, calibrated on the cell's
validation split) and tested as well. With `late_fusion`, each cell's binary_cnn and depth_unet
are also averaged into one model (per seed, and all seeds as one) and reported as `late_fusion`.

Subsets of a store are given to training and evaluation as split files (`facepad.data.multistore`),
so stores are never copied. Work goes under OUT: `splits/` (the split files), `train/<run>/<model>/`
(run folders; `train/<run>/seed<S>/<model>/` per training seed), `eval/<protocol>/<cell>/<model>/`
(scores.csv, report.json/md, figures; likewise `.../seed<S>/<model>/`; the ensemble's checkpoint
`train/<run>/ensemble/<model>.pt`, its evaluation `.../ensemble/<model>/`; the late fusion's
`train/<run>/[seed<S>/|ensemble/]late_fusion.pt`), then
`results.csv`, `results.md` and `heatmap.png`. A rerun reuses finished trainings and evaluations
and resumes a killed training; a changed store, split or config is refused (use a new OUT or
`force`). The train, evaluate and ensemble steps are injectable (`Steps`) so the orchestration can
be tested.
Settings, cells and outcomes: `facepad.experiments.benchmark_cells`; tables and the heatmap:
`facepad.experiments.benchmark_results`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facepad.data.multistore import read_split_file, write_split_file
from facepad.data.split import choose_subjects
from facepad.data.store import PreparedStore
from facepad.evaluate import report
from facepad.experiments.benchmark_cells import DEFAULT_RECIPES, Cell, Outcome, Run, Settings, View
from facepad.experiments.benchmark_results import ENSEMBLE, LATE_FUSION, seed_folder, write_results
from facepad.experiments.paper_models import check_models

PROTOCOLS = ("intra", "cross", "lodo", "kfold")
CROSS_TEST = ("all", "test")


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
    """Subjects dealt into `folds` groups after a seeded shuffle (sizes differ by at most 1).
    A store's test split is never dealt: k-fold chooses recipes, and a test split judges them."""
    subjects = sorted({row["subject"] for row in store.index if row["split"] != "test"})
    if folds < 2 or folds > len(subjects):
        held = " outside its test split" if any(r["split"] == "test" for r in store.index) else ""
        raise ValueError(
            f"{folds} folds over {len(subjects)} subjects{held}: choose 2 to {len(subjects)} folds"
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
    return {row["idx"]: role[row["subject"]] for row in store.index if row["subject"] in role}


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
    """The run's Config: the recipe, the overrides, then the benchmark's own data and folder.
    `model` is a benchmark label (`model_of`)."""
    from facepad.config import load_config, validate

    config = load_config(recipe, [*overrides, f"model.name={model_of(model)}"])
    config.data.store = ""
    config.data.stores = stores
    config.data.train_split, config.data.val_split = "train", "val"
    config.out_dir, config.run_name = str(run_dir), label_folder(model)
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


def default_ensemble(checkpoints: list[Path], views: list[dict], out: Path) -> Path:
    """Average the checkpoints into one, calibrated on the views' val split; returns its path."""
    from facepad.data.multistore import MultiStore
    from facepad.evaluate.ensemble import build_ensemble

    build_ensemble(checkpoints, MultiStore(views), out)  # save_checkpoint makes the folder
    return out


@dataclass
class Steps:
    """The steps the benchmark orchestrates; replace them in tests."""

    train: Callable = default_train
    evaluate: Callable = default_evaluate
    ensemble: Callable = default_ensemble


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
    _check_settings(settings)
    out = Path(out_dir)
    if force:
        _clear_outputs(out)
    opened = {name: PreparedStore(path) for name, path in stores.items()}
    if isinstance(protocols, str):
        protocols = parse_protocols(protocols, list(opened))
    recipes = {m: find_recipe(recipe_of(m, settings)) for m in settings.models}
    _check_same(out / "benchmark.json", _split_settings(opened, settings),
                "stores or split settings")  # fmt: skip
    cells = plan(opened, protocols, settings)
    print(f"benchmark: {len(cells)} cells x {len(settings.models)} models -> {out}")
    outcomes, seconds = [], {}
    for n, cell in enumerate(cells, 1):
        print(f"[{n}/{len(cells)}] {cell.protocol}: {cell.train} -> {cell.test}"
              + (f" (fold {cell.fold})" if cell.fold is not None else ""), flush=True)  # fmt: skip
        train_views = [_write_view(v, opened[v.store], out / "splits") for v in cell.run.views]
        test_views = [_write_view(cell.test_view, opened[cell.test_view.store], out / "splits")]
        cell_outcomes, cell_seconds = _run_cell(cell, recipes, train_views, test_views, out,
                                                settings, steps)  # fmt: skip
        outcomes += cell_outcomes
        seconds.update(cell_seconds)
    files = write_results(outcomes, out, settings)
    (out / "timings.json").write_text(json.dumps(seconds, indent=2) + "\n")
    print((out / "results.md").read_text())
    return files


def model_of(label: str) -> str:
    """The registered model a benchmark label names: `fusion`, or `fusion@lite0_cpu` (that
    model trained with that recipe: another family, side by side with the default one)."""
    return label.partition("@")[0]


def recipe_of(label: str, settings: Settings) -> str:
    """The recipe a label trains with: its own after '@', else the settings' for its model."""
    model, _, recipe = label.partition("@")
    return recipe or settings.recipes.get(model, DEFAULT_RECIPES[model])


def label_folder(label: str) -> str:
    """A label as a folder name (`fusion@lite0_cpu` -> `fusion-lite0_cpu`)."""
    return label.replace("@", "-").replace("/", "_")


def _check_settings(settings: Settings) -> None:
    """Refuse a run that could not finish, before anything trains."""
    check_models([model_of(m) for m in settings.models])
    if len(set(settings.models)) < len(settings.models):
        raise ValueError(f"models {list(settings.models)} name one twice; give each once")
    if settings.cross_test not in CROSS_TEST:
        raise ValueError(f"cross_test {settings.cross_test!r}: choose all or test")
    _check_seeds(settings)
    if settings.late_fusion and not {"binary_cnn", "depth_unet"} <= set(settings.models):
        raise ValueError(
            "late fusion averages each cell's binary_cnn and depth_unet: benchmark both "
            "(--models binary_cnn,depth_unet[,fusion])"
        )


def _clear_outputs(out: Path) -> None:
    """--force: drop what a resume would reuse (splits, checkpoints, evaluations)."""
    for sub in ("splits", "train", "eval", "benchmark.json"):
        target = out / sub
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)


def _split_settings(opened: Mapping[str, PreparedStore], settings: Settings) -> dict:
    """What the splits depend on: a resume into the same folder must find these unchanged."""
    return {
        "stores": {
            n: {"path": str(s.root.resolve()), "index": store_fingerprint(s)}
            for n, s in opened.items()
        },
        "val_fraction": settings.val_fraction,
        "seed": settings.seed,
    }


def _run_cell(
    cell: Cell, recipes: Mapping[str, Path], train_views: list[dict], test_views: list[dict],
    out: Path, settings: Settings, steps: Steps,
) -> tuple[list[Outcome], dict[str, float]]:  # fmt: skip
    """Every model of one cell, per training seed, then the seeds' ensemble and the late
    fusion where asked; with each training's seconds."""
    outcomes, seconds = [], {}
    trained: dict[str, list[Path]] = {}  # model -> its checkpoint per training seed
    for model in settings.models:
        trained[model] = []
        for seed in settings.train_seeds or [None]:
            started = time.perf_counter()
            outcome, checkpoint = _train_and_test(cell, model, seed, recipes[model], train_views,
                                                  test_views, out, settings, steps)  # fmt: skip
            outcomes.append(outcome)
            trained[model].append(checkpoint)
            seconds[f"{cell.folder}/{seed_folder(seed)}{model}"] = round(
                time.perf_counter() - started, 1
            )
        if len(trained[model]) > 1:
            outcomes.append(_averaged_and_test(cell, model, trained[model], ENSEMBLE, train_views,
                                               test_views, out, settings, steps))  # fmt: skip
    if settings.late_fusion:
        outcomes += _late_fusion_and_test(cell, trained, train_views, test_views, out, settings,
                                          steps)  # fmt: skip
    return outcomes, seconds


def _train_and_test(
    cell: Cell, model: str, seed: int | None, recipe: Path, train_views: list[dict],
    test_views: list[dict], out: Path, settings: Settings, steps: Steps,
) -> tuple[Outcome, Path]:  # fmt: skip
    """One model of one cell, trained with one seed (None: the recipe's) or reused, then tested:
    (outcome, best checkpoint)."""
    sub = seed_folder(seed)
    overrides = [*settings.overrides, *([] if seed is None else [f"train.seed={seed}"])]
    config = run_config(recipe, overrides, model, train_views, out / "train" / cell.run.name / sub)
    eval_dir = out / "eval" / cell.folder / sub / label_folder(model)
    checkpoint, marker = _trained(config, steps)
    rows, rep = _evaluated(checkpoint, marker, test_views, eval_dir, model, settings, steps,
                           figures=cell.fold is None)  # fmt: skip
    return Outcome(cell, model, rows, rep, seed), checkpoint


def _late_fusion_and_test(
    cell: Cell, trained: dict[str, list[Path]], train_views: list[dict], test_views: list[dict],
    out: Path, settings: Settings, steps: Steps,
) -> list[Outcome]:  # fmt: skip
    """The cell's binary CNN and depth U-Net averaged into one model, per training seed, and with
    several seeds all of them as one (its ENSEMBLE row)."""
    pairs = list(zip(trained["binary_cnn"], trained["depth_unet"], strict=True))
    seeds = list(settings.train_seeds) or [None]
    outcomes = [_averaged_and_test(cell, LATE_FUSION, list(pair), seed, train_views, test_views,
                                   out, settings, steps)
                for seed, pair in zip(seeds, pairs, strict=True)]  # fmt: skip
    if len(pairs) > 1:
        members = [c for pair in pairs for c in pair]
        outcomes.append(_averaged_and_test(cell, LATE_FUSION, members, ENSEMBLE, train_views,
                                           test_views, out, settings, steps))  # fmt: skip
    return outcomes


def _averaged_and_test(
    cell: Cell, model: str, checkpoints: list[Path], seed: int | str | None,
    train_views: list[dict], test_views: list[dict], out: Path, settings: Settings, steps: Steps,
) -> Outcome:  # fmt: skip
    """Checkpoints of one cell averaged into one model (`facepad ensemble`, calibrated on the
    cell's validation; rebuilt when a member is newer), tested. `model` names the row: the seeds'
    ensemble of a model (seed ENSEMBLE), or the late fusion."""
    path = out / "train" / cell.run.name / f"{seed_folder(seed)}{label_folder(model)}.pt"
    newest = max(Path(c).stat().st_mtime for c in checkpoints)
    if path.is_file() and path.stat().st_mtime >= newest:
        print(f"  {model}: reusing {path}")
    else:
        print(f"  {model}: {len(checkpoints)} models averaged -> {path}")
        path = Path(steps.ensemble(checkpoints, train_views, path))
    eval_dir = out / "eval" / cell.folder / f"{seed_folder(seed)}{label_folder(model)}"
    rows, rep = _evaluated(path, path, test_views, eval_dir, model, settings, steps,
                           figures=cell.fold is None)  # fmt: skip
    return Outcome(cell, model, rows, rep, seed)


def _check_seeds(settings: Settings) -> None:
    """Training seeds: distinct, and not also set by an override (which would win silently)."""
    seeds = list(settings.train_seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"training seeds {seeds} repeat a seed; give each once")
    if seeds and any(o.startswith("train.seed=") for o in settings.overrides):
        raise ValueError("train.seed=... and --seeds both set the training seed; keep one")


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

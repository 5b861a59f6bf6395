"""Command-line commands of facepad.experiments: `facepad benchmark`.

Heavy imports (torch, matplotlib) happen inside the command functions so `facepad --help` is fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    b = subparsers.add_parser(
        "benchmark",
        help="intra, cross-dataset, leave-one-out and k-fold protocols over prepared stores",
        description="Train binary_cnn, depth_unet and fusion per protocol cell, threshold at the "
        "validation EER, evaluate on the cell's test set, and write results.md, results.csv and "
        "heatmap.png into --out. Protocols: intra (official splits; a store without a test split "
        "is tested on its val split, validation carved from train), cross (every ordered pair: "
        "train on A, threshold on A's val, test on B), lodo (leave one dataset out, 3+ stores), "
        "kfold (folds by subject). Limit a protocol to some test datasets with PROTOCOL:A+B. A "
        "rerun reuses finished trainings and evaluations.",
        epilog="example: facepad benchmark --store replay=stores/replay-dev --store "
        "nuaa=stores/nuaa --protocols intra:replay,cross --out results/bench train.epochs=8",
    )
    b.add_argument(
        "--store",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a prepared store and its short name (repeat for several)",
    )
    b.add_argument("--out", required=True, help="results folder")
    b.add_argument(
        "--protocols",
        default="intra,cross,lodo",
        help="comma-separated: intra, cross, lodo, kfold; PROTOCOL:A+B tests on A and B only "
        "(default: intra,cross,lodo)",
    )
    b.add_argument("--folds", type=int, default=5, help="k of kfold (default 5)")
    b.add_argument(
        "--models", default="binary_cnn,depth_unet,fusion", help="comma-separated model names"
    )
    b.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="[MODEL=]RECIPE",
        help="recipe name in configs/ or YAML path, for all models or MODEL= one (default: "
        "nuaa_cpu for binary_cnn, nuaa_cpu_cdc for depth_unet and fusion)",
    )
    b.add_argument(
        "--cross-test",
        choices=["all", "test"],
        default="all",
        help="cross/lodo: test on all of the other store (default) or on its test split",
    )
    b.add_argument("--val-fraction", type=float, default=0.2, help="share of subjects carved")
    b.add_argument("--seed", type=int, default=0, help="seed of carved validation and folds")
    b.add_argument("--device", default="auto", help="evaluation device: auto, cpu or cuda")
    b.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    b.add_argument("--force", action="store_true", help="redo every training and evaluation")
    b.add_argument("overrides", nargs="*", help="config overrides for every run: train.epochs=3")
    b.set_defaults(func=_benchmark)


def parse_named(items: list[str]) -> dict[str, str]:
    """`["nuaa=stores/nuaa", "stores/replay"]` -> {"nuaa": ..., "replay": ...} (folder name when
    no name is given)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = (name.strip(), path.strip()) if sep else (Path(item).name, item)
        if not name or not path:
            raise ValueError(f"--store {item!r}: give NAME=PATH")
        if name in out:
            raise ValueError(f"--store: the name {name!r} is given twice")
        out[name] = path
    return out


def _benchmark(args: argparse.Namespace) -> int:
    from facepad.experiments.benchmark import DEFAULT_RECIPES, MODELS, Settings, benchmark

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    recipes = dict(DEFAULT_RECIPES)
    for item in args.recipe:
        model, sep, recipe = item.partition("=")
        if sep and model not in MODELS:
            raise ValueError(f"--recipe {item}: {model} is not one of {', '.join(MODELS)}")
        recipes.update({model: recipe} if sep else dict.fromkeys(MODELS, item))
    settings = Settings(
        models=models,
        recipes=recipes,
        overrides=args.overrides,
        val_fraction=args.val_fraction,
        seed=args.seed,
        folds=args.folds,
        cross_test=args.cross_test,
        device=args.device,
        n_boot=args.n_boot,
    )
    start = time.perf_counter()
    files = benchmark(parse_named(args.store), args.protocols, args.out, settings, args.force)
    print(f"benchmark finished in {time.perf_counter() - start:.0f} s: "
          + ", ".join(str(p) for p in files.values()))  # fmt: skip
    return 0

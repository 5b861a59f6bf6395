"""Command-line commands of facepad.experiments: `facepad evaluate`, `compare`, `ensemble`,
`reproduce`, `benchmark`.

`evaluate` lives here, above both facepad.evaluate and facepad.infer, because --end-to-end hands
the evaluation the deployed pipeline (the Predictor).

Heavy imports (torch, matplotlib) happen inside the command functions so `facepad --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    _add_evaluate(subparsers)
    _add_compare(subparsers)
    _add_ensemble(subparsers)
    _add_reproduce(subparsers)
    _add_benchmark(subparsers)


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a split with a checkpoint; write scores, report and figures",
        description="Score one split of a prepared store with a checkpoint. The threshold is the "
        "checkpoint's validation EER threshold unless --threshold is given (an uncalibrated "
        "checkpoint, trained on a one-class validation split, needs --threshold or --rule). "
        "Writes scores.csv, "
        "report.json, report.md, roc.png, det.png, histogram.png and depth_examples.png.",
    )
    p.add_argument("checkpoint", help="a .pt checkpoint written by `facepad train`")
    p.add_argument(
        "--store",
        required=True,
        nargs="+",
        metavar="[NAME=]STORE",
        help="prepared store folder (`facepad prepare`); several are scored as one set and "
        "every figure is broken down by dataset",
    )
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--threshold", type=float, default=None, help="decision threshold (live >= T)")
    p.add_argument(
        "--rule",
        default=None,
        help="choose the threshold on the val split instead: eer, apcer=0.05 or bpcer=0.01",
    )
    p.add_argument("--out", default=None, help="output folder (default: <ckpt dir>/eval_<split>)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--end-to-end",
        action="store_true",
        help="also run the split's raw images through the deployed pipeline (decode, detect, "
        "crop, model: the Predictor of `facepad predict`) and report its figures, with failures "
        "to acquire counted, beside the store's",
    )
    p.set_defaults(func=_evaluate)


def _add_compare(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="is model b better than model a on the same samples? (paired subject bootstrap)",
        description="Pair two scores.csv files written by `facepad evaluate` on the same split, "
        "sample by sample, and resample subjects with replacement, scoring both models on each "
        "resample. Prints AUC and HTER (each model at its own threshold) of both, b - a with its "
        "95 %% interval, and whether the interval excludes zero.",
        epilog="example: facepad compare runs/a/eval_val/scores.csv runs/b/eval_val/scores.csv",
    )
    p.add_argument("scores_a", help="scores.csv of the baseline (a)")
    p.add_argument("scores_b", help="scores.csv of the candidate (b)")
    p.add_argument("--n-boot", type=int, default=1000, help="subject resamples (default 1000)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.set_defaults(func=_compare)


def _add_ensemble(subparsers) -> None:
    p = subparsers.add_parser(
        "ensemble",
        help="average checkpoints (training seeds of one model, or binary_cnn with depth_unet) "
        "into one calibrated one",
        description="Build one checkpoint whose model averages the outputs (logit, depth map) of "
        "several checkpoints of one kind, or of binary_cnn and depth_unet together (late fusion, "
        "scored as the fusion model is), trained on the same prepared store and input size, and "
        "calibrate its threshold at the EER of the val split, as training does. "
        "evaluate, export, predict and serve take it like any checkpoint.",
        epilog="example: facepad ensemble runs/s0/depth_unet/best.pt runs/s1/depth_unet/best.pt "
        "runs/s2/depth_unet/best.pt --store stores/replay-all --out runs/depth_x3.pt",
    )
    p.add_argument(
        "checkpoints",
        nargs="+",
        help="two or more checkpoints of one model, or of binary_cnn and depth_unet",
    )
    p.add_argument(
        "--store",
        required=True,
        nargs="+",
        metavar="[NAME=]STORE",
        help="the prepared store(s) the members were validated on",
    )
    p.add_argument(
        "--splits",
        default=None,
        metavar="CSV",
        help="a split file (idx,split) replacing the store's split column, one store only: e.g. "
        "a benchmark's splits/NAME.carved.csv",
    )
    p.add_argument("--split", default="val", help="split to calibrate on (default: val)")
    p.add_argument("--out", required=True, help="the ensemble checkpoint to write (.pt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=_ensemble)


def _add_reproduce(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="the paper's whole experiment: prepare, train, evaluate, Table I and figures",
        description="Prepare the data, train binary_cnn, depth_unet and fusion with the dataset's "
        "packaged recipe (see `facepad recipes`), evaluate each on test with the threshold chosen "
        "on validation, and write Table I, a Figure-2-like bar chart and per-model reports into "
        "--out. A rerun reuses what is already prepared, trained and evaluated unless --force.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["demo"], help="generate and use the synthetic demo set")
    src.add_argument("--celeba-spoof", metavar="ROOT", help="CelebA-Spoof root folder")
    src.add_argument("--manifest", metavar="CSV", help="a manifest CSV (e.g. nuaa-dev)")
    p.add_argument("--protocol", default="intra_test", help="CelebA-Spoof protocol")
    p.add_argument("--test-subjects", nargs="+", default=None, help="manifest test subjects")
    p.add_argument(
        "--face-crops",
        action="store_true",
        help="manifest: the images are face crops (e.g. celeba-spoof-mini): kept as given, "
        "their framing measured; recipe celeba_mini_cpu",
    )
    p.add_argument("--out", required=True, help="results folder, e.g. results/demo")
    p.add_argument("--store", default=None, help="prepared store to use (default: <out>/store)")
    p.add_argument(
        "--config-set",
        default=None,
        choices=["cpu", "gpu"],
        help="recipe family (default: gpu for CelebA-Spoof, cpu otherwise)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="train every model with this recipe instead (a YAML path or a packaged recipe name)",
    )
    p.add_argument(
        "--models", default="binary_cnn,depth_unet,fusion", help="comma-separated model names"
    )
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=None,
        metavar="F",
        help="prepare: stop when more than this share of samples fails (default 0.05)",
    )
    p.add_argument("--force", action="store_true", help="redo every step")
    p.add_argument(
        "overrides", nargs="*", help="config overrides for every model, e.g. train.epochs=3"
    )
    p.set_defaults(func=_reproduce)


def _add_benchmark(subparsers) -> None:
    p = subparsers.add_parser(
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
    p.add_argument(
        "--store",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a prepared store and its short name (repeat for several)",
    )
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument(
        "--protocols",
        default="intra,cross,lodo",
        help="comma-separated: intra, cross, lodo, kfold; PROTOCOL:A+B tests on A and B only "
        "(default: intra,cross,lodo)",
    )
    p.add_argument("--folds", type=int, default=5, help="k of kfold (default 5)")
    p.add_argument(
        "--models",
        default="binary_cnn,depth_unet,fusion",
        help="comma-separated model names; MODEL@RECIPE trains that model with that recipe "
        "too, as a row of its own (e.g. binary_cnn,binary_cnn@lite0_cpu: both families)",
    )
    p.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="[MODEL=]RECIPE",
        help="packaged recipe name or YAML path, for all models or MODEL= one (default: "
        "nuaa_cpu, whose per-model sections give depth_unet and fusion a CDC encoder)",
    )
    p.add_argument(
        "--cross-test",
        choices=["all", "test"],
        default="all",
        help="cross/lodo: test on all of the other store (default) or on its test split",
    )
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of subjects carved")
    p.add_argument("--seed", type=int, default=0, help="seed of carved validation and folds")
    p.add_argument(
        "--seeds",
        type=seed_list,
        default=(),
        metavar="S,S,...",
        help="training seeds: train and test every cell once per seed (same splits) and report "
        "mean ± std over seeds (default: the recipe's seed, once)",
    )
    p.add_argument(
        "--late-fusion",
        action="store_true",
        help="also average each cell's binary_cnn and depth_unet into one model (`facepad "
        "ensemble`; per seed, and all seeds as one) and report it as the model late_fusion",
    )
    p.add_argument("--device", default="auto", help="evaluation device: auto, cpu or cuda")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--force", action="store_true", help="redo every training and evaluation")
    p.add_argument("overrides", nargs="*", help="config overrides for every run: train.epochs=3")
    p.set_defaults(func=_benchmark)


def _evaluate(args: argparse.Namespace) -> int:
    from facepad.evaluate.evaluate import evaluate_checkpoint

    pipeline = None
    if args.end_to_end:
        # Experiments sit above evaluate and infer: evaluation gets the deployed pipeline here.
        from facepad.infer.predictor import Predictor

        pipeline = Predictor.from_checkpoint(args.checkpoint, "torch", largest_only=True)
    result = evaluate_checkpoint(
        args.checkpoint,
        open_store_args(args.store),
        split=args.split,
        threshold=args.threshold,
        out_dir=args.out,
        batch_size=args.batch_size,
        device=args.device,
        rule=args.rule,
        pipeline=pipeline,
    )
    print((result.out_dir / "report.md").read_text())
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return 0


def open_store_args(items: list[str], splits: str | None = None):
    """`--store` values as `evaluate_checkpoint` and `build_ensemble` take them: one plain folder
    as is, else one `MultiStore` (datasets named); `splits`, a split file, applies to one store."""
    from facepad.data.multistore import MultiStore

    if splits:
        if len(items) != 1:
            raise ValueError("--splits applies to one --store; give one")
        name, path = next(iter(parse_named(items).items()))
        return MultiStore([{"path": path, "name": name, "splits": splits}])
    return items[0] if len(items) == 1 and "=" not in items[0] else MultiStore(items)


def _ensemble(args: argparse.Namespace) -> int:
    from facepad.evaluate.ensemble import build_ensemble

    store = open_store_args(args.store, args.splits)
    ckpt = build_ensemble(args.checkpoints, store, args.out, args.split, device=args.device)
    val = ckpt["val"]
    kinds = Counter(m["name"] for m in ckpt["model"]["kwargs"]["members"])
    members = " + ".join(f"{n} {name}" for name, n in kinds.items())
    print(f"ensemble of {members} models -> {args.out}: threshold {ckpt['threshold']:.4f} at "
          f"the {args.split} EER; {args.split} AUC {val['auc']:.4f}, EER {100 * val['eer']:.2f} %, "
          f"HTER {100 * val['hter']:.2f} % ({val['n']} samples)")  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from facepad.evaluate.compare import compare_markdown, compare_scores

    result = compare_scores(args.scores_a, args.scores_b, n_boot=args.n_boot)
    print(compare_markdown(result), end="")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from facepad.experiments.reproduce import Source, reproduce

    if args.dataset:
        source = Source("demo")
    elif args.celeba_spoof:
        source = Source("celeba", args.celeba_spoof, protocol=args.protocol)
    else:
        source = Source("manifest", args.manifest, test_subjects=args.test_subjects,
                        face_crops=args.face_crops)  # fmt: skip
    if (args.test_subjects or args.face_crops) and source.kind != "manifest":
        print("error: --test-subjects and --face-crops apply to --manifest only", file=sys.stderr)
        return 2
    start = time.perf_counter()
    reproduce(
        source,
        args.out,
        config_set=args.config_set,
        models=model_names(args.models),
        force=args.force,
        store_dir=args.store,
        overrides=args.overrides,
        recipe=args.recipe,
        max_failed_fraction=args.max_failed_fraction,
    )
    print(f"reproduce finished in {time.perf_counter() - start:.0f} s")
    return 0


def model_names(text: str) -> list[str]:
    """`--models "binary_cnn, fusion"` -> ["binary_cnn", "fusion"] (empty items dropped)."""
    return [m.strip() for m in text.split(",") if m.strip()]


def seed_list(text: str) -> list[int]:
    """`--seeds 0,1,2` -> [0, 1, 2]."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give integer seeds, e.g. 0,1,2") from None


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
    from facepad.experiments.benchmark import benchmark
    from facepad.experiments.benchmark_cells import DEFAULT_RECIPES, Settings
    from facepad.experiments.paper_models import MODELS

    models = model_names(args.models)
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
        train_seeds=args.seeds,
        late_fusion=args.late_fusion,
    )
    start = time.perf_counter()
    files = benchmark(parse_named(args.store), args.protocols, args.out, settings, args.force)
    print(f"benchmark finished in {time.perf_counter() - start:.0f} s: "
          + ", ".join(str(p) for p in files.values()))  # fmt: skip
    return 0

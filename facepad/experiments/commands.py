"""Command-line commands of facepad.experiments: `facepad reproduce`.

Heavy imports (torch, matplotlib) happen inside the command functions so `facepad --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    r = subparsers.add_parser(
        "reproduce",
        help="the paper's whole experiment: prepare, train, evaluate, Table I and figures",
        description="Prepare the data, train binary_cnn, depth_unet and fusion with the dataset's "
        "packaged recipe (see `facepad recipes`), evaluate each on test with the threshold chosen "
        "on validation, and write Table I, a Figure-2-like bar chart and per-model reports into "
        "--out. A rerun reuses what is already prepared, trained and evaluated unless --force.",
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["demo"], help="generate and use the synthetic demo set")
    src.add_argument("--celeba-spoof", metavar="ROOT", help="CelebA-Spoof root folder")
    src.add_argument("--manifest", metavar="CSV", help="a manifest CSV (e.g. nuaa-dev)")
    r.add_argument("--protocol", default="intra_test", help="CelebA-Spoof protocol")
    r.add_argument("--test-subjects", nargs="+", default=None, help="manifest test subjects")
    r.add_argument("--out", required=True, help="results folder, e.g. results/demo")
    r.add_argument("--store", default=None, help="prepared store to use (default: <out>/store)")
    r.add_argument(
        "--config-set",
        default=None,
        choices=["cpu", "gpu"],
        help="recipe family (default: gpu for CelebA-Spoof, cpu otherwise)",
    )
    r.add_argument(
        "--recipe",
        default=None,
        help="train every model with this recipe instead (a YAML path or a packaged recipe name)",
    )
    r.add_argument(
        "--models", default="binary_cnn,depth_unet,fusion", help="comma-separated model names"
    )
    r.add_argument("--force", action="store_true", help="redo every step")
    r.add_argument(
        "overrides", nargs="*", help="config overrides for every model, e.g. train.epochs=3"
    )
    r.set_defaults(func=_reproduce)


def _reproduce(args: argparse.Namespace) -> int:
    from facepad.experiments.reproduce import Source, reproduce

    if args.dataset:
        source = Source("demo")
    elif args.celeba_spoof:
        source = Source("celeba", args.celeba_spoof, protocol=args.protocol)
    else:
        source = Source("manifest", args.manifest, test_subjects=args.test_subjects)
    if args.test_subjects and source.kind != "manifest":
        print("error: --test-subjects applies to --manifest only", file=sys.stderr)
        return 2
    start = time.perf_counter()
    reproduce(
        source,
        args.out,
        config_set=args.config_set,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        force=args.force,
        store_dir=args.store,
        overrides=args.overrides,
        recipe=args.recipe,
    )
    print(f"reproduce finished in {time.perf_counter() - start:.0f} s")
    return 0

"""Command-line commands of facepad.evaluate: `facepad evaluate` and `facepad reproduce`.

Heavy imports (torch, matplotlib) happen inside the command functions so `facepad --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a split with a checkpoint; write scores, report and figures",
        description="Score one split of a prepared store with a checkpoint. The threshold is the "
        "checkpoint's validation EER threshold unless --threshold is given. Writes scores.csv, "
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
    p.set_defaults(func=_evaluate)

    r = subparsers.add_parser(
        "reproduce",
        help="the paper's whole experiment: prepare, train, evaluate, Table I and figures",
        description="Prepare the data, train binary_cnn, depth_unet and fusion with the recipes "
        "in configs/, evaluate each on test with the threshold chosen on validation, and write "
        "Table I, a Figure-2-like bar chart and per-model reports into --out. A rerun reuses "
        "what is already prepared, trained and evaluated unless --force.",
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
        "--models", default="binary_cnn,depth_unet,fusion", help="comma-separated model names"
    )
    r.add_argument("--force", action="store_true", help="redo every step")
    r.add_argument(
        "overrides", nargs="*", help="config overrides for every model, e.g. train.epochs=3"
    )
    r.set_defaults(func=_reproduce)


def _evaluate(args: argparse.Namespace) -> int:
    from facepad.data.multistore import MultiStore
    from facepad.evaluate.evaluate import evaluate_checkpoint

    one = len(args.store) == 1 and "=" not in args.store[0]
    result = evaluate_checkpoint(
        args.checkpoint,
        args.store[0] if one else MultiStore(args.store),
        split=args.split,
        threshold=args.threshold,
        out_dir=args.out,
        batch_size=args.batch_size,
        device=args.device,
        rule=args.rule,
    )
    print((result.out_dir / "report.md").read_text())
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from facepad.evaluate.reproduce import Source, reproduce

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
    )
    print(f"reproduce finished in {time.perf_counter() - start:.0f} s")
    return 0

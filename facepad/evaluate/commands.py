"""Command-line command of facepad.evaluate: `facepad evaluate`.

Heavy imports (torch, matplotlib) happen inside the command functions so `facepad --help` is fast.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
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
    p.add_argument("--store", required=True, help="prepared store folder (`facepad prepare`)")
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


def _evaluate(args: argparse.Namespace) -> int:
    from facepad.evaluate.evaluate import evaluate_checkpoint

    pipeline = None
    if args.end_to_end:
        # The command line sits above every layer: it hands evaluation the deployed pipeline.
        from facepad.infer.predictor import Predictor

        pipeline = Predictor.from_checkpoint(args.checkpoint, "torch", largest_only=True)
    result = evaluate_checkpoint(
        args.checkpoint,
        args.store,
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

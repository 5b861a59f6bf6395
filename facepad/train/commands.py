"""Command-line commands of facepad.train: `facepad train CONFIG [overrides...] [--resume]`."""

from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description=(
            "Train a model. Same command under torchrun for DDP: "
            "torchrun --nproc_per_node=N -m facepad train CONFIG ..."
        ),
    )
    p.add_argument("config", help="YAML recipe, e.g. configs/nuaa_cpu.yaml")
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides: train.epochs=3 model.kwargs.theta=0.7"
    )
    p.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from facepad.config import load_config
    from facepad.train.loop import train

    config = load_config(args.config, args.overrides)
    best = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone reports
        print(best)
    return 0

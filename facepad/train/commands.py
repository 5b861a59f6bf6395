"""Command-line commands of facepad.train: `facepad train RECIPE [overrides...] [--resume]` and
`facepad recipes`."""

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
    p.add_argument(
        "config",
        metavar="RECIPE",
        help="a YAML recipe: a path, or the name of a packaged one (`facepad recipes` lists them)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="dotted overrides: train.epochs=3 model.name=fusion model.per_model.fusion.kwargs."
        "theta=0.5",
    )
    p.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    p.set_defaults(func=run_train)

    r = subparsers.add_parser(
        "recipes",
        help="list the packaged training recipes",
        description="The recipes shipped with facepad, usable by name in `facepad train NAME` "
        "and `facepad reproduce --recipe NAME`.",
    )
    r.set_defaults(func=run_recipes)


def run_train(args: argparse.Namespace) -> int:
    from facepad.config import load_config
    from facepad.train.loop import train

    config = load_config(args.config, args.overrides)
    best = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone reports
        print(best)
    return 0


def run_recipes(args: argparse.Namespace) -> int:
    from facepad.config import RECIPES_DIR, list_recipes, recipe_path

    for name in list_recipes():
        lines = recipe_path(name).read_text().splitlines()
        summary = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else ""
        print(f"{name:<18} {summary}")
    print(f"(in {RECIPES_DIR}; use a name or a path: facepad train NAME [key=value ...])")
    return 0

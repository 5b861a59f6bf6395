"""`facepad` command line: thin commands over the library.

Each part of the package registers its own subcommands, so this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function) pairs; each function takes the subparsers object and adds its commands.
COMMAND_MODULES = (
    "facepad.data.commands",  # prepare, demo, manifest
    "facepad.train.commands",  # train
    "facepad.experiments.commands",  # evaluate, compare, ensemble, reproduce, benchmark
    "facepad.infer.commands",  # predict, export
    "facepad.serve.commands",  # serve
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facepad", description="Face presentation attack detection toolkit."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        # Bad input (a missing file, a malformed dataset, an unknown config key): the message
        # names the file and the fix; a traceback would only bury it.
        print(f"facepad {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

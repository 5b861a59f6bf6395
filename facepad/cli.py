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


VERBOSE_HELP = (
    "show the log lines of third-party libraries (mediapipe's absl, TF Lite and protobuf "
    "warnings), hidden by default; also FACEPAD_VERBOSE=1"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facepad", description="Face presentation attack detection toolkit."
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for command in subparsers.choices.values():  # `facepad predict --verbose` works too
        # SUPPRESS: a command without the flag leaves `facepad --verbose COMMAND`'s value alone.
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=VERBOSE_HELP)  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        from facepad.data.faces import show_third_party_logs

        show_third_party_logs()  # before any command loads mediapipe, for every worker it starts
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

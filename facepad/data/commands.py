"""Command-line commands of facepad.data: `facepad demo` and `facepad prepare`."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    from facepad.data import demo, prepare

    demo.register(subparsers)
    prepare.register(subparsers)

"""Command-line commands of facepad.serve."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""

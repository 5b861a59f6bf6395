"""Command-line commands of facepad.data: `facepad demo`, `facepad prepare`, `facepad manifest`."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this part's commands to the `facepad` parser."""
    from facepad.data import demo, prepare, video_manifests

    demo.register(subparsers)
    prepare.register(subparsers)
    video_manifests.register(subparsers)

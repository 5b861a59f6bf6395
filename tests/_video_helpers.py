"""Tiny generated videos (cv2.VideoWriter) for the video reader, manifest and builder tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Codec per container that this OpenCV both writes and reads back.
FOURCC = {".avi": "MJPG", ".mov": "mp4v", ".mp4": "mp4v"}


def write_video(
    path: Path, n_frames: int = 12, size: tuple[int, int] = (32, 24), base: np.ndarray | None = None
) -> Path:
    """A video whose frame i is grey level 10 * i (or `base` brightened by i), so a test can tell
    which frame was decoded from its mean."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if base is not None:
        size = (base.shape[1], base.shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), 10, size)
    assert writer.isOpened(), f"cv2 cannot write {path}"
    for i in range(n_frames):
        if base is None:
            rgb = np.full((size[1], size[0], 3), 10 * i, np.uint8)
        else:
            rgb = np.clip(base.astype(np.int16) + i, 0, 255).astype(np.uint8)
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))  # cv2 writes BGR
    writer.release()
    return path

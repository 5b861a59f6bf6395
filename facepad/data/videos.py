"""Video inputs of datasets: evenly spaced frames, decoded with OpenCV, that keep their video id.

Video benchmarks (Replay-Attack, OULU-NPU) ship one short video per presentation. A manifest row
that names a video becomes K frame samples (`frames_per_video`): the same `path`, with attributes
`video` (the id that groups its frames) and `frame` (the frame index). Prepare decodes the frame
when it cuts the crop, so no frame files are written. Frames of one video are near duplicates:
they always share a split, and where a dataset names no subject, the video stands in for it.
No torch here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from facepad.data.images import ImageError, load_image
from facepad.data.records import Sample

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: str | Path):
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ImageError(f"{path}: OpenCV cannot open this video (missing, corrupt or no codec)")
    return capture


def frame_count(path: str | Path) -> int:
    """Frames in a video; counted by decoding when the container does not say (or says 0)."""
    import cv2

    capture = _open(path)
    try:
        n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:
            n = 0
            while capture.grab():
                n += 1
    finally:
        capture.release()
    if n == 0:
        raise ImageError(f"{path}: the video holds no decodable frame")
    return n


def spaced_frames(n_frames: int, k: int) -> list[int]:
    """`k` evenly spaced frame indices of an `n_frames` video, first and last included
    (k = 1: the middle frame); fewer when the video is shorter than k frames."""
    if k < 1:
        raise ValueError(f"frames per video must be at least 1, got {k}")
    if k == 1:
        return [(n_frames - 1) // 2]
    picks = [int(i * (n_frames - 1) / (k - 1) + 0.5) for i in range(k)]
    return sorted(set(picks))


def read_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` of a video as (H, W, 3) uint8 RGB; raises `ImageError` naming the file."""
    import cv2

    capture = _open(path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
        if not ok:  # some containers cannot seek: decode from the start instead
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            for _ in range(index + 1):
                ok, bgr = capture.read()
                if not ok:
                    break
    finally:
        capture.release()
    if not ok or bgr is None:
        raise ImageError(f"{path}: cannot decode frame {index}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_sample_image(sample: Sample) -> np.ndarray:
    """The sample's picture: its image file, or its frame of a video (attribute `frame`)."""
    frame = sample.attributes.get("frame", "")
    if frame != "" and is_video(sample.path):
        return read_frame(sample.path, int(frame))
    return load_image(sample.path)


def frame_samples(sample: Sample, frames_per_video: int) -> list[Sample]:
    """One sample per evenly spaced frame of `sample`'s video (its `video` attribute kept,
    else set to the path); raises `ImageError` when the video cannot be read."""
    video = sample.attributes.get("video") or sample.path
    indices = spaced_frames(frame_count(sample.path), frames_per_video)
    return [
        dataclasses.replace(
            sample, attributes={**sample.attributes, "video": video, "frame": str(i)}
        )
        for i in indices
    ]

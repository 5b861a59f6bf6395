"""Video and webcam: frames, faces tracked by box IoU, and a per-face decision over a window.

A single frame's score flickers around the threshold; deciding over the last N frames of the same
face (mean score, or majority of per-frame decisions) removes that flicker. No torch here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from facepad.infer.predictor import FacePrediction

RULES = ("mean", "majority")


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames, with its last `window` scores."""

    track_id: int
    box: tuple[int, int, int, int]
    scores: deque = field(default_factory=deque)
    missed: int = 0


@dataclass
class WindowDecision:
    """A face in one frame with its window decision (what a person should act on)."""

    track_id: int
    face: FacePrediction
    window_score: float  # mean score over the window
    window_live: bool
    frames_in_window: int

    @property
    def window_decision(self) -> str:
        return "live" if self.window_live else "spoof"


class FaceTracker:
    """Greedy IoU matching of each frame's faces to existing tracks; sliding-window decisions."""

    def __init__(
        self,
        threshold: float,
        window: int = 15,
        rule: str = "mean",
        iou_min: float = 0.3,
        max_missed: int = 5,
    ):
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; use one of {RULES}")
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.threshold = threshold
        self.window = window
        self.rule = rule
        self.iou_min = iou_min
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def _decide(self, scores: deque) -> bool:
        if self.rule == "mean":
            return float(np.mean(scores)) >= self.threshold
        votes = sum(s >= self.threshold for s in scores)
        return votes * 2 > len(scores)  # a tie is not a live majority

    def update(self, faces: list[FacePrediction]) -> list[WindowDecision]:
        """Assign this frame's faces to tracks and return their window decisions."""
        pairs = sorted(
            (
                (box_iou(t.box, f.box), ti, fi)
                for ti, t in enumerate(self.tracks)
                for fi, f in enumerate(faces)
            ),
            reverse=True,
        )
        face_track: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for iou, ti, fi in pairs:
            if iou < self.iou_min:
                break
            if ti in used_tracks or fi in face_track:
                continue
            used_tracks.add(ti)
            face_track[fi] = self.tracks[ti]
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        out = []
        for fi, face in enumerate(faces):
            track = face_track.get(fi)
            if track is None:
                track = Track(self._next_id, face.box, deque(maxlen=self.window))
                self._next_id += 1
                self.tracks.append(track)
            track.box, track.missed = face.box, 0
            track.scores.append(face.score)
            out.append(
                WindowDecision(
                    track.track_id,
                    face,
                    float(np.mean(track.scores)),
                    self._decide(track.scores),
                    len(track.scores),
                )
            )
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out


def open_capture(source: str | int):
    """cv2.VideoCapture for a file or webcam index; a clear error when it cannot be opened."""
    import cv2

    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        kind = "webcam index" if isinstance(source, int) else "video file"
        raise ValueError(
            f"cannot open {kind} {source!r}; check that it exists and is a video OpenCV can read"
        )
    return cap


def iter_frames(source: str | int, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of a video file or webcam, until the end or `max_frames`."""
    import cv2

    cap = open_capture(source)
    try:
        n = 0
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def video_info(source: str | int) -> tuple[int | None, float]:
    """(frame count or None for webcams/unknown, frames per second, 15 when unknown)."""
    import cv2

    if isinstance(source, int):
        return None, 15.0
    cap = cv2.VideoCapture(source)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    cap.release()
    return (n or None), (fps if 1.0 <= fps <= 240.0 else 15.0)


def annotate(
    rgb: np.ndarray, faces: list[FacePrediction], decisions: list[WindowDecision] | None = None
) -> np.ndarray:
    """A copy of `rgb` with each face's box, score, decision and (depth models) a depth inset."""
    import cv2

    out = rgb.copy()
    height, width = out.shape[:2]
    thick = max(1, round(min(height, width) / 300))
    for i, face in enumerate(faces):
        live = face.is_live
        label = f"{face.decision} {face.score:.2f}"
        if decisions is not None:
            d = decisions[i]
            live = d.window_live
            label = f"#{d.track_id} {d.window_decision} {d.window_score:.2f} ({face.score:.2f})"
        color = (0, 200, 0) if live else (230, 0, 0)  # RGB
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        scale = 0.5 * thick
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(th + base, y - 4)
        cv2.rectangle(out, (x, ty - th - base), (x + tw, ty + base // 2), color, -1)
        cv2.putText(
            out, label, (x, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick
        )
        if face.depth is not None:
            side = max(16, min(w // 2, h // 2, 128))
            inset = cv2.resize(
                (np.clip(face.depth, 0, 1) * 255).astype(np.uint8),
                (side, side),
                interpolation=cv2.INTER_NEAREST,
            )
            inset = cv2.applyColorMap(inset, cv2.COLORMAP_INFERNO)[:, :, ::-1]  # BGR -> RGB
            x0, y0 = min(max(0, x + w + 2), width - side), min(max(0, y), height - side)
            if x0 >= 0 and y0 >= 0:
                out[y0 : y0 + side, x0 : x0 + side] = inset
    return out

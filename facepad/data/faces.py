"""Face detector and face mesh: thin wrappers over mediapipe 0.10.14's bundled, offline models.

mediapipe is imported lazily (it is slow to import), and never torch, so inference without torch
can use these. Each object holds one mediapipe graph: build it once per process and reuse it
(graphs are not picklable; multiprocessing workers build their own).

Quiet by default: building a graph makes mediapipe's C++ (absl logging, TF Lite) write lines like
`W0000 ... inference_feedback_manager.cc:114] ...` straight to fd 2, in every process, and its
first run warns `SymbolDatabase.GetPrototype() is deprecated` (protobuf). GLOG_minloglevel,
TF_CPP_MIN_LOG_LEVEL and ABSL_MIN_LOG_LEVEL change nothing in mediapipe 0.10.14 (measured), so a
graph is built with fd 2 captured, and only those info and warning lines are dropped from what is
written back. `FACEPAD_VERBOSE=1` (`facepad --verbose`) lets everything through, in this process
and the processes it starts.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

NUM_LANDMARKS = 468
# Mediapipe's detector works on a 128x128 input; detecting on a smaller copy of a huge photo gives
# the same box and saves the full-size colour conversion inside mediapipe.
DETECT_MAX_SIDE = 1280


@dataclass(frozen=True)
class Detection:
    """A face found by the detector: `box` (x, y, w, h) in image pixels, `score` in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float


def largest_face(detections: list[Detection]) -> Detection | None:
    """The face a presentation is judged by: the largest detection (None when there is none).

    `prepare` and the Predictor (largest-face mode) choose alike, so train and serve crop the
    same face. The highest-scoring face is not always the largest: on a nuaa-dev frame with two
    detections the two crops scored 0.04 and 0.89 live."""
    if not detections:
        return None
    return max(detections, key=lambda d: d.box[2] * d.box[3])


VERBOSE_ENV = "FACEPAD_VERBOSE"  # "1": third-party log lines shown (`facepad --verbose`)
# absl's line prefix, e.g. `W0000 00:00:1796355445.807497   5552 some_calculator.cc:114] `
_ABSL_LINE = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")
_ABSL_UNINITIALISED = b"WARNING: All log messages before absl::InitializeLog() is called"
_TFLITE_INFO = b"INFO: "  # written as a piece of its own: another thread's line may follow it
_TFLITE_XNNPACK = b"Created TensorFlow Lite XNNPACK delegate for CPU."
_CAPTURE_LOCK = threading.Lock()  # fd 2 is one per process: one capture at a time


def show_third_party_logs(show: bool = True) -> None:
    """Show (or hide) mediapipe's log lines here and in the processes started from now on."""
    os.environ[VERBOSE_ENV] = "1" if show else "0"


def third_party_logs_shown() -> bool:
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def is_native_noise(line: bytes) -> bool:
    """Whether a line written while a graph was built is mediapipe's chatter: absl's info and
    warning lines and its note that logging is not initialised, TF Lite's INFO lines (or their
    pieces, split by another thread's line). absl errors (E, F) and all else are kept."""
    rest, tflite = line.strip(), False
    while rest.startswith(_TFLITE_INFO):
        rest, tflite = rest.removeprefix(_TFLITE_INFO).lstrip(), True
    if _ABSL_LINE.match(rest):
        return rest[:1] in (b"I", b"W")
    return tflite or not rest or rest.startswith(_ABSL_UNINITIALISED) or rest == _TFLITE_XNNPACK


def _mediapipe():
    import mediapipe as mp  # `import mediapipe.solutions` fails in 0.10.14; attribute access works

    if not third_party_logs_shown():
        # mediapipe's own Python calls a deprecated protobuf function on a graph's first run.
        deprecated = r"SymbolDatabase\.GetPrototype\(\) is deprecated"
        warnings.filterwarnings("ignore", message=deprecated, category=UserWarning)
    return mp


@contextlib.contextmanager
def native_noise_dropped() -> Iterator[None]:
    """Run the block with fd 2 captured, then write back every line but `is_native_noise`.

    Lines other threads write meanwhile come out a moment late, not lost. A native crash inside
    the block would take the captured lines with it, so faulthandler then reports it on the real
    stderr (unless it is on already); `--verbose` shows mediapipe's own message."""
    if third_party_logs_shown():
        yield
        return
    with _CAPTURE_LOCK, tempfile.TemporaryFile() as capture:
        saved = _fd2_to(capture.fileno())
        try:
            yield
        finally:
            if saved is not None:
                _fd2_back(saved)
                capture.seek(0)
                kept = [ln for ln in capture.read().splitlines(True) if not is_native_noise(ln)]
                with open(2, "wb", closefd=False) as stderr:
                    stderr.write(b"".join(kept))


def _fd2_to(fd: int) -> tuple[int, bool] | None:
    """Point fd 2 at `fd`: (a copy of the old fd 2, whether faulthandler was turned on for the
    window), or None where this process has no fd 2."""
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:
        return None
    crash_report = not faulthandler.is_enabled()
    if crash_report:
        faulthandler.enable(file=saved)
    os.dup2(fd, 2)
    return saved, crash_report


def _fd2_back(saved: tuple[int, bool]) -> None:
    _flush_stderr()
    fd, crash_report = saved
    os.dup2(fd, 2)
    if crash_report:
        faulthandler.disable()
    os.close(fd)


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _open_graph(build: Callable[[], object]) -> object:
    """`build()` a mediapipe solution with its log lines dropped. Its calculators open (and log)
    in graph threads after `build` returns, so wait for them before the capture ends."""
    with native_noise_dropped():
        solution = build()
        graph = getattr(solution, "_graph", None)  # SolutionBase's CalculatorGraph
        if graph is not None:
            graph.wait_until_idle()
    return solution


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


class _MediapipeGraph:
    """Owns one mediapipe graph (`self._graph`): close it, or use it as a context manager."""

    _graph: object

    def close(self) -> None:
        self._graph.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FaceDetector(_MediapipeGraph):
    """BlazeFace short range (faces within ~2 m, the selfie/webcam/dataset case)."""

    def __init__(self, min_confidence: float = 0.5, model_selection: int = 0):
        mp = _mediapipe()
        self._graph = _open_graph(
            lambda: mp.solutions.face_detection.FaceDetection(
                model_selection=model_selection, min_detection_confidence=min_confidence
            )
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """All faces in `rgb` (H, W, 3) uint8, highest score first; boxes clipped to the image."""
        import cv2

        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        small = rgb
        if max(height, width) > DETECT_MAX_SIDE:
            f = DETECT_MAX_SIDE / max(height, width)
            size = (max(1, round(width * f)), max(1, round(height * f)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        result = self._graph.process(small)
        found = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0 = min(max(rel.xmin * width, 0.0), width)
            y0 = min(max(rel.ymin * height, 0.0), height)
            x1 = min(max((rel.xmin + rel.width) * width, 0.0), width)
            y1 = min(max((rel.ymin + rel.height) * height, 0.0), height)
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                found.append(Detection((x0, y0, x1 - x0, y1 - y0), float(det.score[0])))
        return sorted(found, key=lambda d: -d.score)


class FaceMesh(_MediapipeGraph):
    """468 face landmarks of a (face crop) image; static image mode, no tracking between calls."""

    def __init__(self, min_confidence: float = 0.5):
        mp = _mediapipe()
        self._graph = _open_graph(
            lambda: mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=min_confidence,
            )
        )

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(468, 3) float32: x, y in pixels of `rgb`, z in the same pixel scale (smaller = nearer).

        None when no face is found.
        """
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        result = self._graph.process(rgb)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        out = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)  # (468, 3) normalised
        # mediapipe's z uses the same scale as x (image width).
        out *= np.array([width, height, width], dtype=np.float32)
        return out[:NUM_LANDMARKS]


@functools.cache
def mesh_triangles() -> np.ndarray:
    """(852, 3) int32 triangles of the face mesh, rebuilt from mediapipe's 2,556 tessellation edges.

    Every 3-clique of the edge graph is a candidate; two cliques are not faces (they close a loop
    around a vertex of degree 3, so each of their edges already borders two real faces). A clique
    whose three edges all lie in more than two cliques is dropped, leaving the 852 faces.
    """
    mp = _mediapipe()
    edges = {tuple(sorted(e)) for e in mp.solutions.face_mesh.FACEMESH_TESSELATION}
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    cliques = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    uses: dict[tuple[int, int], int] = {}
    for a, b, c in cliques:
        for e in ((a, b), (a, c), (b, c)):
            uses[e] = uses.get(e, 0) + 1
    faces = [
        t
        for t in sorted(cliques)
        if not all(uses[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))
    ]
    return np.array(faces, dtype=np.int32)

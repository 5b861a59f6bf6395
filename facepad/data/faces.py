"""Face detector and face mesh: thin wrappers over mediapipe 0.10.14's bundled, offline models.

mediapipe is imported lazily (it is slow to import and prints absl warnings), and never torch,
so inference without torch can use these. Each object holds one mediapipe graph: build it once per
process and reuse it (graphs are not picklable; multiprocessing workers build their own).
"""

from __future__ import annotations

import functools
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


def _mediapipe():
    import mediapipe as mp  # `import mediapipe.solutions` fails in 0.10.14; attribute access works

    return mp


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
        self._graph = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_confidence
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
        self._graph = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
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

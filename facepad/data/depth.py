"""Pseudo depth maps: the face mesh rasterised by a small numpy z-buffer.

The face mesh is run on the crop itself, so the map is aligned with the crop pixel for pixel
(scaled from crop size to map size). Values: background 0; the face spans [FACE_FLOOR, 1] with the
nearest point 1, so even the farthest face pixel stays distinct from the background. Eyes and mouth
are holes of the tessellation and stay 0. Spoof targets are all zeros by definition and are never
rendered. Never imports torch.
"""

from __future__ import annotations

import numpy as np

# The farthest face point maps here, not to 0: a face pixel should never look like background.
FACE_FLOOR = 0.1


def render_depth(
    landmarks: np.ndarray,
    triangles: np.ndarray,
    size: int = 32,
    frame_size: float | None = None,
) -> np.ndarray:
    """Rasterise a mesh to a (size, size) float32 map in [0, 1], nearer = brighter, background 0.

    landmarks: (N, 3) x, y in pixels of a square frame of side `frame_size` (default: `size`, i.e.
    already in map pixels), z in the same scale with smaller = nearer (mediapipe's convention).
    triangles: (T, 3) vertex indices. Pixels are sampled at their centres.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    if landmarks.ndim != 2 or landmarks.shape[1] != 3:
        raise ValueError(f"landmarks must be (N, 3), got {landmarks.shape}")
    scale = size / float(frame_size if frame_size else size)
    xy = landmarks[:, :2] * scale  # (N, 2) in map pixels, centres at k + 0.5
    near = -landmarks[:, 2]  # larger = nearer
    span = near.max() - near.min()
    value = (near - near.min()) / span if span > 0 else np.ones_like(near)
    value = FACE_FLOOR + (1.0 - FACE_FLOOR) * value  # (N,) in [FACE_FLOOR, 1]

    out = np.zeros(size * size, dtype=np.float64)
    a, b, c = xy[triangles[:, 0]], xy[triangles[:, 1]], xy[triangles[:, 2]]  # (T, 2) each
    # Signed double area; drop degenerate triangles (they cover no pixel centre reliably).
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.abs(area) > 1e-12
    tris, a, b, c, area = triangles[keep], a[keep], b[keep], c[keep], area[keep]
    corners = np.stack([a, b, c], axis=1)  # (T, 3, 2)
    # Integer pixel ranges whose centres (k + 0.5) may fall in each triangle's bounding box.
    lo = np.clip(np.ceil(corners.min(axis=1) - 0.5), 0, size).astype(np.int64)  # (T, 2)
    hi = np.clip(np.floor(corners.max(axis=1) - 0.5) + 1, 0, size).astype(np.int64)  # (T, 2)
    nx, ny = hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]
    count = np.where((nx > 0) & (ny > 0), nx * ny, 0)
    if count.sum() == 0:
        return out.reshape(size, size).astype(np.float32)
    tri_of = np.repeat(np.arange(len(tris)), count)  # (P,) candidate pixel -> triangle
    start = np.cumsum(count) - count
    k = np.arange(count.sum()) - start[tri_of]  # position within the triangle's box
    px = lo[tri_of, 0] + k % nx[tri_of]
    py = lo[tri_of, 1] + k // nx[tri_of]
    qx, qy = px + 0.5, py + 0.5
    ta, tb, tc = a[tri_of], b[tri_of], c[tri_of]
    # Barycentric weights of the pixel centre.
    w_b = (
        (qx - ta[:, 0]) * (tc[:, 1] - ta[:, 1]) - (qy - ta[:, 1]) * (tc[:, 0] - ta[:, 0])
    ) / area[tri_of]
    w_c = (
        (tb[:, 0] - ta[:, 0]) * (qy - ta[:, 1]) - (tb[:, 1] - ta[:, 1]) * (qx - ta[:, 0])
    ) / area[tri_of]
    w_a = 1.0 - w_b - w_c
    eps = -1e-9
    inside = (w_a >= eps) & (w_b >= eps) & (w_c >= eps)
    t = tris[tri_of[inside]]
    z = w_a[inside] * value[t[:, 0]] + w_b[inside] * value[t[:, 1]] + w_c[inside] * value[t[:, 2]]
    np.maximum.at(out, py[inside] * size + px[inside], z)  # z-buffer: the nearest surface wins
    return np.clip(out, 0.0, 1.0).reshape(size, size).astype(np.float32)


def ellipse_prior(box: tuple[float, float, float, float], size: int = 32) -> np.ndarray:
    """A smooth dome over the ellipse inscribed in `box` (map pixels): a depth guess without a mesh.

    Used only by prepare's `detector-box-ellipse` policy for live faces whose mesh fails.
    """
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    grid = np.arange(size) + 0.5
    dx = (grid[None, :] - cx) / (w / 2.0)
    dy = (grid[:, None] - cy) / (h / 2.0)
    r2 = dx * dx + dy * dy  # (size, size)
    dome = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    return np.where(r2 < 1.0, FACE_FLOOR + (1.0 - FACE_FLOOR) * dome, 0.0).astype(np.float32)


def to_uint8(depth: np.ndarray) -> np.ndarray:
    """[0, 1] float map -> uint8 as stored (round to nearest)."""
    return np.rint(np.clip(depth, 0.0, 1.0) * 255.0).astype(np.uint8)

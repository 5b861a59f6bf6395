"""Pseudo depth: synthetic meshes of known depth, holes, occlusion, and the real face mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facepad.data.depth import FACE_FLOOR, ellipse_prior, render_depth, to_uint8


def pyramid(size: float = 32.0, margin: float = 4.0, height: float = 10.0):
    """A square pyramid seen from above: apex (nearest, smallest z) at the centre."""
    lo, hi, mid = margin, size - margin, size / 2
    points = np.array(
        [[lo, lo, 0], [hi, lo, 0], [hi, hi, 0], [lo, hi, 0], [mid, mid, -height]], dtype=float
    )
    triangles = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return points, triangles


def test_pyramid_brighter_where_nearer_zero_outside():
    points, triangles = pyramid()
    depth = render_depth(points, triangles, size=32)
    assert depth.shape == (32, 32) and depth.dtype == np.float32
    assert depth[:4].max() == 0 and depth[:, 28:].max() == 0  # background
    assert depth[15:17, 15:17].min() > 0.9  # apex
    row = depth[16, 4:16]  # from the base edge towards the apex
    assert (np.diff(row) > 0).all()
    assert depth[depth > 0].min() >= FACE_FLOOR - 1e-6
    np.testing.assert_allclose(depth, depth.T, atol=1e-6)  # symmetric pyramid -> symmetric map


def test_tilted_plane_is_linear_in_x():
    # z decreases (nearer) to the right: value grows linearly from FACE_FLOOR to 1.
    points = np.array([[0, 0, 0], [16, 0, -5], [16, 16, -5], [0, 16, 0]], dtype=float)
    depth = render_depth(points, np.array([[0, 1, 2], [0, 2, 3]]), size=16)
    expected = FACE_FLOOR + (1 - FACE_FLOOR) * (np.arange(16) + 0.5) / 16
    np.testing.assert_allclose(depth[8], expected, atol=1e-5)
    np.testing.assert_allclose(depth[3], expected, atol=1e-5)


def test_hole_stays_zero():
    # A square ring: outer square 0-3, inner square 4-7; eight triangles around the hole.
    outer = [[2, 2], [30, 2], [30, 30], [2, 30]]
    inner = [[10, 10], [22, 10], [22, 22], [10, 22]]
    points = np.array([[x, y, 0.0] for x, y in outer + inner])
    points[4:, 2] = -3.0
    triangles = []
    for k in range(4):
        a, b, c, d = k, (k + 1) % 4, 4 + (k + 1) % 4, 4 + k
        triangles += [[a, b, c], [a, c, d]]
    depth = render_depth(points, np.array(triangles), size=32)
    assert depth[11:21, 11:21].max() == 0  # the hole
    assert depth[5, 5:27].min() > 0  # the ring


def test_nearest_surface_wins():
    square = [[4, 4], [28, 4], [28, 28], [4, 28]]
    far = [[x, y, 0.0] for x, y in square]
    near = [[x, y, -2.0] for x, y in [[8, 8], [16, 8], [16, 16]]]
    points = np.array(far + near + [[0, 0, 5.0]])  # a farther unused point sets the scale
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    depth = render_depth(points, tris, size=32)
    assert depth[9, 14] == pytest.approx(1.0)  # inside the near triangle
    assert depth[20, 20] == pytest.approx(FACE_FLOOR + (1 - FACE_FLOOR) * 5 / 7, abs=1e-5)


def test_frame_size_scales_landmarks():
    points, triangles = pyramid(size=256, margin=32, height=80)
    big = render_depth(points, triangles, size=32, frame_size=256)
    small_points, _ = pyramid(size=32, margin=4, height=10)
    np.testing.assert_allclose(big, render_depth(small_points, triangles, size=32), atol=1e-5)


def test_ellipse_prior_and_uint8():
    prior = ellipse_prior((8, 4, 16, 24), size=32)
    assert prior[16, 16] == pytest.approx(1.0, abs=0.02) and prior[0, 0] == 0 and prior[16, 2] == 0
    assert to_uint8(prior).dtype == np.uint8 and to_uint8(prior).max() >= 254


def test_mesh_triangles_rebuilt_from_edges():
    from facepad.data.faces import mesh_triangles

    tris = mesh_triangles()
    assert tris.shape == (852, 3) and len({tuple(t) for t in tris}) == 852
    assert tris.min() == 0 and tris.max() == 467
    # every edge is used by at most two triangles (a manifold surface)
    edges: dict[tuple[int, int], int] = {}
    for a, b, c in tris:
        for e in ((a, b), (a, c), (b, c)):
            edges[e] = edges.get(e, 0) + 1
    assert max(edges.values()) == 2 and len(edges) == 1322


def test_real_face_mesh_depth_on_astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    from facepad.data.crop import square_crop
    from facepad.data.faces import FaceDetector, FaceMesh, mesh_triangles

    rgb = skimage_data.astronaut()
    with FaceDetector() as detector, FaceMesh() as mesh:
        found = detector.detect(rgb)
        assert found and 0.5 < found[0].score <= 1.0
        crop = square_crop(rgb, found[0].box, 1.3, 256)
        landmarks = mesh.landmarks(crop)
    assert landmarks.shape == (468, 3)
    assert landmarks[:, 0].min() > 0 and landmarks[:, 0].max() < 256
    depth = render_depth(landmarks, mesh_triangles(), size=256, frame_size=256)
    assert 0.25 < (depth > 0).mean() < 0.8
    nose_tip = landmarks[1, :2].astype(int)  # landmark 1: the nose tip, near the top of the range
    assert depth[nose_tip[1], nose_tip[0]] > 0.85
    eye = landmarks[[33, 133, 159, 145], :2].mean(axis=0).astype(int)  # right eye opening
    assert depth[eye[1], eye[0]] == 0
    small = render_depth(landmarks, mesh_triangles(), size=32, frame_size=256)
    assert small.max() > 0.9 and small[0].max() == 0


def test_no_face_on_blank_and_grace_hopper_found():
    from facepad.data.faces import FaceDetector, FaceMesh

    blank = np.full((200, 200, 3), 128, np.uint8)
    with FaceDetector() as detector, FaceMesh() as mesh:
        assert detector.detect(blank) == []
        assert mesh.landmarks(blank) is None
        import matplotlib

        from facepad.data.images import load_image

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        assert len(detector.detect(load_image(path))) >= 1  # matplotlib ships this photo

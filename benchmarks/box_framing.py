"""How far apart are the face framings of training and serving? Dataset box vs detector box.

`facepad prepare --box dataset` crops CelebA-Spoof from its `_BB.txt` boxes (RetinaFace, scaled
from the 224 frame); the Predictor crops from the face detector's box (mediapipe BlazeFace, the
largest face). This prints, per image and summarised: IoU of the two boxes, IoU of the square crop
windows cut from them (what the model sees), the centre offset in units of the dataset box side,
and the side ratio detector / dataset. Both boxes are also compared with a third, independent
framing: the extent of the face mesh's 468 landmarks (mesh run on the detector crop).

nuaa-dev has no dataset boxes: prepare crops it from the detector's box, as the Predictor does, so
the two framings are the same by construction. There it prints the detector box against the face
mesh extent, for scale.

    .venv/bin/python benchmarks/box_framing.py [--celeba-spoof ROOT] [--nuaa-dev DIR]
        [--nuaa-step 20]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from _devdata import DEV_DATA

from facepad.data.crop import crop_matrix, crop_window, map_points
from facepad.data.faces import FaceDetector, FaceMesh, largest_face
from facepad.data.images import load_image

CROP_SCALE = 1.3
MESH_CROP = 256


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def window_box(box) -> tuple[float, float, float, float]:
    """The square crop window prepare and the Predictor cut around `box`, as a box."""
    x0, y0, side = crop_window(box, CROP_SCALE)
    return (x0, y0, side, side)


def compare(reference, other) -> dict[str, float]:
    """IoU of boxes and of crop windows, centre offset (reference sides), side ratio."""
    side = max(reference[2], reference[3])
    dx = (other[0] + other[2] / 2) - (reference[0] + reference[2] / 2)
    dy = (other[1] + other[3] / 2) - (reference[1] + reference[3] / 2)
    return {
        "box_iou": iou(reference, other),
        "crop_iou": iou(window_box(reference), window_box(other)),
        "centre_offset": float(np.hypot(dx, dy)) / side,
        "dx": dx / side,
        "dy": dy / side,
        "side_ratio": max(other[2], other[3]) / side,
    }


def detector_box(detector: FaceDetector, rgb: np.ndarray):
    """The Predictor's face box: the largest detection (None when no face is found), and the
    number of faces found."""
    found = detector.detect(rgb)
    face = largest_face(found)
    return (None if face is None else face.box), len(found)


def mesh_box(mesh: FaceMesh, rgb: np.ndarray, around):
    """The extent of the face mesh landmarks in image pixels, the mesh run on the crop of
    `around` (None when the mesh finds no face)."""
    from facepad.data.crop import square_crop

    crop = square_crop(rgb, around, CROP_SCALE, MESH_CROP)
    points = mesh.landmarks(crop)
    if points is None:
        return None
    matrix = crop_matrix(around, CROP_SCALE, MESH_CROP)
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    xy = map_points(inverse, points[:, :2])  # (468, 2) image pixels
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def summarise(title: str, rows: list[dict]) -> None:
    if not rows:
        print(f"{title}: nothing to compare")
        return
    print(f"{title} (n={len(rows)}): median [min, max]")
    for key in ("box_iou", "crop_iou", "centre_offset", "dx", "dy", "side_ratio"):
        values = [r[key] for r in rows]
        print(
            f"  {key:14s} {statistics.median(values):7.3f}  "
            f"[{min(values):.3f}, {max(values):.3f}]  mean {statistics.fmean(values):.3f}"
        )


def celeba(root: Path, protocol: str, detector: FaceDetector, mesh: FaceMesh) -> None:
    from facepad.data.celeba_spoof import load_box, read_celeba_spoof

    samples = read_celeba_spoof(root, protocol, val_fraction=0.0).samples
    print(f"CelebA-Spoof {root}: {len(samples)} images present")
    header = "image", "label", "size", "faces", "box IoU", "crop IoU", "offset", "side ratio"
    print("  " + " | ".join(header))
    vs_detector, dataset_vs_mesh, detector_vs_mesh, no_face = [], [], [], 0
    for s in samples:
        rgb = load_image(s.path)
        height, width = rgb.shape[:2]
        given, problem = load_box(s.attributes["box_file"], width, height)
        found, n_faces = detector_box(detector, rgb)
        name = "/".join(Path(s.path).parts[-3:])
        if given is None or found is None:
            no_face += found is None
            print(f"  {name} | {s.label} | {width}x{height} | {n_faces} | dataset box {problem}")
            continue
        row = compare(given, found)
        vs_detector.append(row)
        print(
            f"  {name} | {s.label} | {width}x{height} | {n_faces} | {row['box_iou']:.3f} | "
            f"{row['crop_iou']:.3f} | {row['centre_offset']:.3f} | {row['side_ratio']:.3f}"
        )
        extent = mesh_box(mesh, rgb, found)
        if extent is not None:
            dataset_vs_mesh.append(compare(extent, given))
            detector_vs_mesh.append(compare(extent, found))
    print(f"  no face found by the detector: {no_face} of {len(samples)}")
    summarise("dataset box (reference) vs detector box", vs_detector)
    summarise("mesh extent (reference) vs dataset box", dataset_vs_mesh)
    summarise("mesh extent (reference) vs detector box", detector_vs_mesh)


def nuaa(folder: Path, step: int, detector: FaceDetector, mesh: FaceMesh) -> None:
    from facepad.data.manifest import read_manifest

    samples = read_manifest(folder / "manifest.csv").samples[::step]
    rows, no_face, no_mesh = [], 0, 0
    for s in samples:
        rgb = load_image(s.path)
        found, _ = detector_box(detector, rgb)
        if found is None:
            no_face += 1
            continue
        extent = mesh_box(mesh, rgb, found)
        if extent is None:
            no_mesh += 1
            continue
        rows.append(compare(extent, found))
    print(
        f"\nnuaa-dev {folder}: every {step}th frame, {len(samples)} images; no face "
        f"{no_face}, no mesh {no_mesh}. prepare and the Predictor both crop from the detector "
        "box here: the same framing by construction (crop IoU 1)."
    )
    summarise("mesh extent (reference) vs detector box", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--celeba-spoof", type=Path, default=DEV_DATA / "celeba-spoof-sample" / "CelebA_Spoof"
    )
    parser.add_argument("--protocol", default="intra_test")
    parser.add_argument("--nuaa-dev", type=Path, default=DEV_DATA / "nuaa-dev")
    parser.add_argument("--nuaa-step", type=int, default=20, help="use every Nth nuaa-dev frame")
    args = parser.parse_args()
    with FaceDetector() as detector, FaceMesh() as mesh:
        if (args.celeba_spoof / "metas").is_dir():
            celeba(args.celeba_spoof, args.protocol, detector, mesh)
        else:
            print(f"CelebA-Spoof not found at {args.celeba_spoof}; pass --celeba-spoof ROOT")
        if (args.nuaa_dev / "manifest.csv").is_file():
            nuaa(args.nuaa_dev, args.nuaa_step, detector, mesh)
        else:
            print(f"nuaa-dev not found at {args.nuaa_dev}; pass --nuaa-dev DIR")


if __name__ == "__main__":
    main()

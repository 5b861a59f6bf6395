"""False face detections on nuaa-dev, before and after the service's face choice (`FaceChoice`).

nuaa-dev holds 1,915 webcam frames, each about one subject (a live person or a printed photo). The
detector also fires on hands, background people and the attacker behind a held-up print. This
counts, over all frames:

- frames with more than one detection, and detections that are not the subject's face, when every
  detection is decided on (before), and when `FaceChoice.single()` picks the face (after);
- frames where the choice picks a face other than the subject's, and frames it leaves without a
  face (the subject's detection is below the minimums).

The subject's face is taken to be the detection with the highest detector score: on nuaa-dev every
other detection is smaller in score (check with --sheet, which draws every multi-detection frame:
green = subject, red = the others, yellow box = the face the choice decides on).

    .venv/bin/python benchmarks/face_choice.py [--data data/nuaa-dev] [--sheet f.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from _devdata import DEV_DATA

from facepad.data.faces import FaceDetector
from facepad.data.images import load_image
from facepad.infer.predictor import FaceChoice

DEFAULT_DATA = DEV_DATA / "nuaa-dev"


def count(frames: list[dict], choice: FaceChoice) -> dict[str, int]:
    """Counts for one choice over frames of {"dets": [Detection], "h", "w"}."""
    out = {"frames": len(frames), "multi": 0, "not_subject": 0, "wrong_face": 0, "no_face": 0}
    for f in frames:
        dets = f["dets"]
        subject = max(dets, key=lambda d: d.score) if dets else None
        kept = choice.choose(dets, f["h"], f["w"])
        out["multi"] += len(kept) > 1
        out["not_subject"] += sum(d is not subject for d in kept)
        out["wrong_face"] += bool(kept) and kept[0] is not subject
        out["no_face"] += not kept
    return out


def draw_sheet(frames: list[dict], choice: FaceChoice, path: Path) -> None:
    import cv2

    tiles = []
    for f in frames:
        if len(f["dets"]) < 2:
            continue
        im = cv2.cvtColor(load_image(f["path"]), cv2.COLOR_RGB2BGR)
        subject = max(f["dets"], key=lambda d: d.score)
        kept = choice.choose(f["dets"], f["h"], f["w"])
        for d in f["dets"]:
            x, y, w, h = (int(v) for v in d.box)
            colour = (0, 200, 0) if d is subject else (0, 0, 255)
            cv2.rectangle(im, (x, y), (x + w, y + h), colour, 3)
            cv2.putText(im, f"{d.score:.2f}", (x + 3, y + 22), 0, 0.8, colour, 2)
        if kept:
            x, y, w, h = (int(v) for v in kept[0].box)
            cv2.rectangle(im, (x - 6, y - 6), (x + w + 6, y + h + 6), (0, 220, 255), 2)
        tiles.append(cv2.resize(im, (320, 240)))
    cols = 6
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), np.vstack(rows))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sheet", type=Path, help="draw the multi-detection frames into a PNG")
    args = parser.parse_args()

    rows = list(csv.DictReader((args.data / "manifest.csv").open()))
    detector = FaceDetector()
    frames = []
    for row in rows:
        rgb = load_image(args.data / row["path"])
        frames.append(
            {"path": args.data / row["path"], "dets": detector.detect(rgb), "h": rgb.shape[0]}
        )
        frames[-1]["w"] = rgb.shape[1]
    single = FaceChoice.single()
    choices = {
        "before: every detection (detector >= 0.5)": FaceChoice(),
        "largest face only, no minimums": FaceChoice(largest_only=True),
        f"after: FaceChoice.single() (largest, detector >= {single.min_detector_score}, "
        f"side >= {single.min_face_fraction} of the image)": single,
    }
    n = len(frames)
    print(f"{n} nuaa-dev frames, {sum(not f['dets'] for f in frames)} with no detection at all")
    print(
        "| faces decided on | frames with >1 face | faces not the subject's | wrong face first "
        "| frames left without a face |"
    )
    print("|---|---|---|---|---|")
    for name, choice in choices.items():
        c = count(frames, choice)
        print(
            f"| {name} | {c['multi']} ({100 * c['multi'] / n:.2f} %) | {c['not_subject']} | "
            f"{c['wrong_face']} | {c['no_face']} ({100 * c['no_face'] / n:.2f} %) |"
        )
    if args.sheet:
        draw_sheet(frames, single, args.sheet)


if __name__ == "__main__":
    main()

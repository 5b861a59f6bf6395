"""`facepad predict` and `facepad export`.

Heavy libraries (torch, cv2, onnxruntime, mediapipe) are imported inside the commands, so that
`facepad --help` stays fast.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from facepad.data.images import IMAGE_SUFFIXES

CSV_FIELDS = [
    "source",
    "frame",
    "face",
    "x",
    "y",
    "w",
    "h",
    "detector_score",
    "score",
    "decision",
    "track",
    "window_score",
    "window_decision",
    "error",
]
IMAGE_CHUNK = 16  # images read and scored together
THRESHOLD_HELP = (
    "decision threshold, live when score >= T (default: the model's calibrated one; "
    "an uncalibrated model needs it)"
)


def register(subparsers) -> None:
    """Add `predict` and `export` to the `facepad` parser."""
    p = subparsers.add_parser(
        "predict",
        help="score faces in images, folders, videos or a webcam",
        description="Detect every face, crop it as training did, and print a live/spoof verdict.",
    )
    p.add_argument(
        "inputs", nargs="+", help="image files, folders (recursive), video files, or a webcam index"
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", type=Path, help="a .pt checkpoint (torch backend)")
    model.add_argument(
        "--onnx",
        type=Path,
        help="an exported .onnx model (onnxruntime backend); without --checkpoint or --onnx, "
        "the model that ships with facepad",
    )
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--csv", type=Path, help="write one row per face to this CSV file")
    p.add_argument("--annotate", type=Path, help="write annotated images/videos into this folder")
    add_face_choice_arguments(p, default="all")
    p.add_argument("--largest-only", action="store_true", help="the same as --faces largest")
    p.add_argument("--window", type=int, default=15, help="video: frames per decision window")
    p.add_argument("--rule", choices=("mean", "majority"), default="mean", help="window rule")
    p.add_argument("--max-frames", type=int, default=None, help="video/webcam: stop after N frames")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    p.add_argument("--threshold", type=float, default=None, help=THRESHOLD_HELP)
    p.add_argument("--quiet", action="store_true", help="no per-face table on the terminal")
    p.set_defaults(func=run_predict)

    e = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX",
        description="Export the checkpoint's scored model to ONNX and check it against torch.",
    )
    e.add_argument("checkpoint", type=Path, help="a .pt checkpoint")
    e.add_argument("--out", type=Path, required=True, help="where to write model.onnx")
    e.add_argument("--opset", type=int, default=17)
    e.add_argument("--no-check", action="store_true", help="skip the torch-vs-onnx comparison")
    e.add_argument(
        "--threshold", type=float, default=None, help=THRESHOLD_HELP + " (written into the graph)"
    )
    e.set_defaults(func=run_export)

    c = subparsers.add_parser(
        "calibrate",
        help="set a model's threshold from live captures of your own camera",
        description="Score the largest face in every image (and 10 frames of every video) under "
        "--live, all bona fide captures of the deployment's camera, and write a copy of the "
        "model whose threshold rejects --target-bpcer of them. No attacks needed.",
    )
    c.add_argument(
        "model", type=Path, nargs="?", help="a .pt or .onnx (default: the shipped model)"
    )
    c.add_argument("--live", type=Path, required=True, help="folder of live images or videos")
    c.add_argument(
        "--target-bpcer",
        type=float,
        default=0.02,
        help="share of these live faces the threshold may reject (default 0.02)",
    )
    c.add_argument("--out", type=Path, required=True, help="the calibrated copy (.pt or .onnx)")
    c.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    c.set_defaults(func=run_calibrate)


def add_face_choice_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """--faces, --min-detector-score, --min-face-fraction: which faces get a decision
    (`FaceChoice`, shared by `predict` and `serve`)."""
    from facepad.infer.predictor import FaceChoice

    single = FaceChoice.single()
    score, fraction = (
        (single.min_detector_score, single.min_face_fraction) if default == "largest" else (0, 0)
    )
    parser.add_argument(
        "--faces",
        choices=("largest", "all"),
        default=default,
        help=f"decide on the largest face or on every face (default {default})",
    )
    parser.add_argument(
        "--min-detector-score",
        type=float,
        default=score,
        help=f"ignore detections below this face detector score (default {score})",
    )
    parser.add_argument(
        "--min-face-fraction",
        type=float,
        default=fraction,
        help="ignore faces whose shorter side is below this fraction of the image's shorter "
        f"side (default {fraction})",
    )


def face_choice_from_args(args: argparse.Namespace):
    """The FaceChoice that `add_face_choice_arguments` options describe."""
    from facepad.infer.predictor import FaceChoice

    largest = args.faces == "largest" or getattr(args, "largest_only", False)
    return FaceChoice(largest, args.min_detector_score, args.min_face_fraction)


def run_export(args: argparse.Namespace) -> int:
    from facepad.infer.export import export_onnx

    if not args.checkpoint.is_file():
        print(f"error: checkpoint {args.checkpoint} not found", file=sys.stderr)
        return 2
    summary = export_onnx(
        args.checkpoint,
        args.out,
        opset=args.opset,
        check=not args.no_check,
        threshold=args.threshold,
    )
    print(f"wrote {summary['out']} (opset {summary['opset']}, outputs {summary['outputs']})")
    for key, value in summary.items():
        if key.startswith("facepad."):
            print(f"  {key} = {value}")
    if "max_abs_diff_score" in summary:
        line = f"torch vs onnxruntime on {summary['check_crops']} real face crops: "
        line += f"max abs diff score {summary['max_abs_diff_score']:.2e}"
        if "max_abs_diff_depth" in summary:
            line += f", depth {summary['max_abs_diff_depth']:.2e}"
        print(line)
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from facepad.infer.calibrate import calibrate
    from facepad.infer.predictor import PredictorError

    try:
        if args.model is None:
            from facepad.infer.shipped import shipped_model_path

            args.model = shipped_model_path()
        rec = calibrate(args.model, args.live, args.target_bpcer, args.out, threads=args.threads)
    except PredictorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = rec["faces"]
    print(f"{n} live faces ({rec['images']} images, {rec['video_frames']} video frames; no face "
          f"in {rec['no_face']}, {rec['unreadable']} unreadable) under {args.live}")  # fmt: skip
    if rec["previous_threshold"] is not None:
        print(f"  the model's threshold {rec['previous_threshold']:.4f} rejects "
              f"{100 * rec['previous_bpcer']:.1f} % of them")  # fmt: skip
    print(f"  new threshold {rec['threshold']:.4f} rejects {100 * rec['bpcer']:.1f} % "
          f"(target {100 * args.target_bpcer:g} %) -> {args.out}")  # fmt: skip
    if n * args.target_bpcer < 1:
        print(f"  note: {n} faces cannot show a {100 * args.target_bpcer:g} % rate (one face is "
              f"{100 / n:.1f} %): capture at least {int(1 / args.target_bpcer) + 1}")  # fmt: skip
    return 0


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[str, Path | int, Path | None]], list]:
    """Inputs -> (kind, source, folder it came from) with kind image|video|webcam, plus errors."""
    items, errors = [], []
    for raw in inputs:
        if raw.isdigit() and not Path(raw).exists():
            items.append(("webcam", int(raw), None))
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            videos = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _video_suffixes()
            )
            if not found and not videos:
                errors.append((raw, "folder holds no images or videos"))
            items += [("image", p, path) for p in found] + [("video", p, path) for p in videos]
        elif path.is_file():
            kind = "video" if path.suffix.lower() in _video_suffixes() else "image"
            items.append((kind, path, None))
        else:
            errors.append((raw, "not found (pass an image, folder, video file or webcam index)"))
    return items, errors


def _video_suffixes() -> set[str]:
    from facepad.data.videos import VIDEO_SUFFIXES

    return VIDEO_SUFFIXES


def _face_row(source: str, frame: Any, i: int, face, decision=None) -> dict:
    x, y, w, h = face.box
    row = {
        "source": source,
        "frame": frame,
        "face": i,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "detector_score": round(face.detector_score, 4),
        "score": round(face.score, 6),
        "decision": face.decision,
        "track": "",
        "window_score": "",
        "window_decision": "",
        "error": "",
    }
    if decision is not None:
        row.update(
            track=decision.track_id,
            window_score=round(decision.window_score, 6),
            window_decision=decision.window_decision,
        )
    return row


def _empty_row(source: str, frame: Any, error: str) -> dict:
    row = dict.fromkeys(CSV_FIELDS, "")
    row.update(source=source, frame=frame, face="", error=error)
    return row


def _annotated_path(out_dir: Path, path: Path, folder: Path | None, suffix: str) -> Path:
    rel = Path(folder.name) / path.relative_to(folder) if folder is not None else Path(path.name)
    return out_dir / rel.with_suffix(suffix)


def _predict_images(predictor, items, args, rows: list[dict]) -> None:
    """Score image files in chunks; an unreadable file becomes an error row, never a crash."""
    from tqdm import tqdm

    from facepad.infer.predictor import _to_rgb

    bar = tqdm(total=len(items), desc="images", unit="img", disable=len(items) < 2, file=sys.stderr)
    for start in range(0, len(items), IMAGE_CHUNK):
        chunk, rgbs = [], []
        for _, path, folder in items[start : start + IMAGE_CHUNK]:
            try:
                rgbs.append(_to_rgb(path))
                chunk.append((path, folder))
            except Exception as exc:  # a corrupt file in a big run is recorded and skipped
                rows.append(_empty_row(str(path), "", f"unreadable image: {exc}"))
        results = predictor.predict_rgb(rgbs) if rgbs else []
        for (path, folder), rgb, faces in zip(chunk, rgbs, results, strict=False):
            if not faces:
                rows.append(_empty_row(str(path), "", "no face found"))
            rows += [_face_row(str(path), "", i, f) for i, f in enumerate(faces)]
            if args.annotate:
                _write_image(_annotated_path(args.annotate, path, folder, ".jpg"), rgb, faces)
        bar.update(len(items[start : start + IMAGE_CHUNK]))
    bar.close()


def _write_image(out: Path, rgb, faces) -> None:
    import cv2

    from facepad.infer.video import annotate

    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(annotate(rgb, faces), cv2.COLOR_RGB2BGR))


def _predict_stream(predictor, kind, source, folder, args, rows: list[dict]) -> None:
    """Score a video file or webcam frame by frame, with tracked sliding-window decisions."""
    import cv2
    from tqdm import tqdm

    from facepad.infer.video import FaceTracker, annotate, iter_frames, video_info

    name = f"webcam:{source}" if kind == "webcam" else str(source)
    src = source if kind == "webcam" else str(source)
    tracker = FaceTracker(predictor.threshold, window=args.window, rule=args.rule)
    total, fps = video_info(src)
    if args.max_frames and total:
        total = min(total, args.max_frames)
    writer = None
    frames = tqdm(
        iter_frames(src, args.max_frames), total=total, desc=name, unit="frame", file=sys.stderr
    )
    try:
        for n, rgb in enumerate(frames):
            faces = predictor.predict_rgb([rgb])[0]
            decisions = tracker.update(faces)
            if not faces:
                rows.append(_empty_row(name, n, "no face found"))
            rows += [
                _face_row(name, n, i, f, d)
                for i, (f, d) in enumerate(zip(faces, decisions, strict=True))
            ]
            if args.annotate:
                if writer is None:
                    out = (
                        args.annotate / f"webcam{source}.annotated.mp4"
                        if kind == "webcam"
                        else _annotated_path(args.annotate, Path(source), folder, ".annotated.mp4")
                    )
                    out.parent.mkdir(parents=True, exist_ok=True)
                    size = (rgb.shape[1], rgb.shape[0])
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                writer.write(cv2.cvtColor(annotate(rgb, faces, decisions), cv2.COLOR_RGB2BGR))
    except KeyboardInterrupt:  # Ctrl-C ends a webcam run; what was seen is still written out
        print(f"\nstopped {name} after {len(rows)} rows", file=sys.stderr)
    finally:
        if writer is not None:
            writer.release()


def print_table(rows: list[dict], file=None) -> None:
    """A compact per-face table on the terminal."""
    file = file or sys.stdout
    windowed = any(r["window_decision"] != "" for r in rows)
    header = f"{'source':<44} {'frame':>5} {'face':>4} {'box (x,y,w,h)':<22} {'score':>7} decision"
    if windowed:
        header += "  window"
    print(header, file=file)
    for r in rows:
        src = r["source"] if len(r["source"]) <= 44 else "..." + r["source"][-41:]
        if r["error"]:
            print(f"{src:<44} {r['frame']!s:>5} {'':>4} {r['error']}", file=file)
            continue
        box = f"{r['x']},{r['y']},{r['w']},{r['h']}"
        line = f"{src:<44} {r['frame']!s:>5} {r['face']:>4} {box:<22} {r['score']:>7.3f} "
        line += f"{r['decision']:<8}"
        if windowed and r["window_decision"] != "":
            line += f"  {r['window_decision']} {r['window_score']:.3f} (#{r['track']})"
        print(line, file=file)


def run_predict(args: argparse.Namespace) -> int:
    from facepad.infer.predictor import Predictor, PredictorError

    if args.window < 1:
        print("error: --window must be at least 1 frame", file=sys.stderr)
        return 2
    model, backend = (args.onnx, "onnx") if args.onnx is not None else (args.checkpoint, "torch")
    try:
        if model is None:
            from facepad.infer.shipped import shipped_model_path

            model, backend = shipped_model_path(), "onnx"
        predictor = Predictor.from_checkpoint(
            model,
            backend,
            largest_only=args.largest_only,
            threads=args.threads,
            threshold=args.threshold,
        )
    except PredictorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictor.face_choice = face_choice_from_args(args)
    items, missing = expand_inputs(args.inputs)
    rows = [_empty_row(src, "", reason) for src, reason in missing]
    images = [it for it in items if it[0] == "image"]
    if images:
        _predict_images(predictor, images, args, rows)
    for kind, source, folder in items:
        if kind == "image":
            continue
        try:
            _predict_stream(predictor, kind, source, folder, args, rows)
        except ValueError as exc:
            rows.append(_empty_row(str(source), "", str(exc)))
    if not args.quiet:
        print_table(rows)
    n_faces = sum(1 for r in rows if not r["error"])
    n_live = sum(1 for r in rows if not r["error"] and r["decision"] == "live")
    n_err = sum(1 for r in rows if r["error"] and r["error"] != "no face found")
    print(
        f"{n_faces} faces ({n_live} live, {n_faces - n_live} spoof) at threshold "
        f"{predictor.threshold:.4f}; {n_err} inputs skipped",
        file=sys.stderr,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": predictor.describe(), "results": rows}, indent=1))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return 0 if n_faces or not n_err else 1

"""`facepad calibrate`: a model's threshold set from live captures of the user's own camera.

Where a model ranks faces well but its threshold does not carry to a new camera (the commonest
failure on people and cameras it never saw), a few minutes of bona fide captures fix the
operating point: the threshold that rejects `target_bpcer` of them (`metrics.live_threshold`).
No attacks are needed; the APCER that follows is what the model's ranking gives at that point.
The calibrated copy is the same model with the new threshold (ONNX metadata, or the checkpoint's
`threshold`) and a record of how it was set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from facepad.infer.backend import PredictorError
from facepad.metrics import live_threshold

CALIBRATION_KEY = "facepad.calibration"  # ONNX metadata (and checkpoint key "calibration")


def live_scores(predictor, folder: Path, frames_per_video: int = 10) -> tuple[np.ndarray, dict]:
    """Liveness scores of the largest face in every image (and `frames_per_video` evenly spaced
    frames of every video) under `folder`; counts of what was read and where no face was found."""
    from facepad.data.images import IMAGE_SUFFIXES, ImageError, load_image
    from facepad.data.videos import VIDEO_SUFFIXES, frame_count, read_frame, spaced_frames

    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    scores, counts = [], {"images": 0, "video_frames": 0, "no_face": 0, "unreadable": 0}
    for path in files:
        suffix = path.suffix.lower()
        try:
            if suffix in IMAGE_SUFFIXES:
                rgbs, kind = [load_image(path)], "images"
            elif suffix in VIDEO_SUFFIXES:
                indices = spaced_frames(frame_count(path), frames_per_video)
                rgbs, kind = [read_frame(path, i) for i in indices], "video_frames"
            else:
                continue
        except (ImageError, ValueError):
            counts["unreadable"] += 1
            continue
        counts[kind] += len(rgbs)
        for faces in predictor.predict_rgb(rgbs):
            if faces:
                scores.append(faces[0].score)
            else:
                counts["no_face"] += 1
    return np.asarray(scores, dtype=np.float64), counts


def calibrate(
    model: str | Path, live_dir: str | Path, target_bpcer: float, out: str | Path,
    threads: int | None = None,
) -> dict:  # fmt: skip
    """Write `out`, a copy of `model` (.onnx or .pt) whose threshold rejects `target_bpcer` of
    the live faces under `live_dir`; returns what was measured."""
    from facepad.infer.predictor import Predictor

    model, out, live_dir = Path(model), Path(out), Path(live_dir)
    if not live_dir.is_dir():
        raise PredictorError(f"--live {live_dir} is not a folder of live captures (images, videos)")
    if model.suffix.lower() != out.suffix.lower():
        raise PredictorError(f"--out {out} must have the model's own suffix ({model.suffix})")
    predictor = Predictor.from_path(model, largest_only=True, threads=threads, threshold=0.5)
    old = predictor.backend.threshold
    scores, counts = live_scores(predictor, live_dir)
    if scores.size == 0:
        raise PredictorError(f"no face found in the images or videos under {live_dir}")
    threshold = live_threshold(scores, target_bpcer)
    record = {
        "live_dir": str(live_dir), **counts, "faces": int(scores.size),
        "target_bpcer": target_bpcer, "threshold": threshold, "previous_threshold": old,
        "bpcer": float(np.mean(scores < threshold)),
        "previous_bpcer": None if old is None else float(np.mean(scores < old)),
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if model.suffix.lower() == ".onnx":
        _write_onnx(model, out, threshold, record)
    else:
        _write_checkpoint(model, out, threshold, record)
    return record


def _write_onnx(model: Path, out: Path, threshold: float, record: dict) -> None:
    """The ONNX graph with its threshold metadata replaced and the calibration recorded."""
    import onnx

    from facepad.infer.onnx_backend import META_THRESHOLD

    graph = onnx.load(str(model))
    meta = {p.key: p.value for p in graph.metadata_props}
    meta.update({META_THRESHOLD: repr(float(threshold)), CALIBRATION_KEY: json.dumps(record)})
    del graph.metadata_props[:]
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(graph, str(tmp))
    shutil.move(tmp, out)


def _write_checkpoint(model: Path, out: Path, threshold: float, record: dict) -> None:
    """The checkpoint with its threshold replaced, marked calibrated, the calibration kept."""
    from facepad.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(model)
    ckpt.update(threshold=float(threshold), calibrated=True, calibration=record)
    save_checkpoint(ckpt, out)

"""`facepad prepare`: cut face crops and render pseudo depth once, into a prepared store.

Per sample: decode -> face box -> square crop -> for live faces, face mesh on the crop and a
rendered depth map (spoofs: zeros by definition, the mesh is not even run) -> JPEG crop + uint8
depth into the sample's shard.

Shards are fixed, deterministic chunks of the sorted samples, processed in parallel by worker
processes (each builds its mediapipe graphs once). A shard is written under temporary names and
renamed when complete, its `.rows.json` last, so after kill -9 a rerun redoes only unfinished
shards and ends byte-identical to an uninterrupted run. `store.json` is written last of all.

Face box (`box`): "dataset" takes the dataset's box (CelebA-Spoof `_BB.txt`) and falls back to the
face detector where the box is missing or unusable; "detector" takes the detector's box, the one
the Predictor sees at inference, and falls back to the dataset's box where no face is found. The
detector's face is the largest one found (`faces.largest_face`), as the Predictor chooses.
index.csv's `box_source` says which box each sample got: dataset, detector, detector-fallback
(dataset box wanted, unusable) or dataset-fallback (no face found).

A run whose share of failed samples (unreadable, no face, no mesh...) passes
`max_failed_fraction` stops with an error before writing store.json: a broken dataset or setting
shows up as an error, not as a store quietly missing a tenth of its faces. Rerunning with a higher
limit only reassembles the finished shards.

Live faces whose mesh fails follow `no_mesh_policy`:
- `skip` (default): leave the sample out, recorded in skipped.csv (no made-up labels);
- `detector-box-ellipse`: keep it with a smooth ellipse dome over the face box as its depth
  target (a crude prior; counted in store.json so its share is visible).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from facepad.data.split import describe_overlap, subjects_in_two_splits

NO_MESH_POLICIES = ("skip", "detector-box-ellipse")
BOX_MODES = ("dataset", "detector")
MAX_FAILED_FRACTION = 0.05
DEFAULT_SHARD_SIZE = 512
JPEG_QUALITY = 95  # 256x256 crop ~20 KB; 4:4:4 keeps colour detail (moire, print tint)
# Chroma subsampling of the stored crops. 4:2:0 stores colour at half resolution: its crops decode
# about 1.5x faster, for a training loader bound by JPEG decoding (a GPU fed by few cores).
JPEG_SUBSAMPLINGS = ("444", "422", "420")
JPEG_SUBSAMPLING = "444"  # the default
SKIPPED_COLUMNS = ("path", "split", "label", "reason", "detail")
# Reader counts worth a line in the summary when not zero (the rest are in store.json).
READER_DEFECTS = (
    "missing_image",
    "duplicate_entries",
    "duplicate_rows",
    "bad_vector",
    "bad_txt_line",
    "bad_path",
    "missing_box_file",
    "label_folder_disagree",
    "json_txt_disagree",
    "txt_only",
)


class PrepareError(ValueError):
    """A prepare run that must not yield a store (too many failures); says how to proceed."""


class Skipped(NamedTuple):
    """Why a sample was left out: a short reason code and a detail naming the file."""

    reason: str
    detail: str


# Per-process tools (detector, mesh, triangles), built on first use in each process.
_TOOLS: dict = {}
_PROGRESS = None  # multiprocessing queue of processed-image counts, set in worker processes


def prepare_store(
    read_result,
    out_dir: str | Path,
    *,
    dataset_name: str,
    crop_scale: float = 1.3,
    crop_size: int = 256,
    depth_size: int = 32,
    workers: int | None = None,
    no_mesh_policy: str = "skip",
    shard_size: int = DEFAULT_SHARD_SIZE,
    jpeg_quality: int = JPEG_QUALITY,
    jpeg_subsampling: str = JPEG_SUBSAMPLING,
    min_face_confidence: float = 0.5,
    box: str = "dataset",
    face_crops: bool = False,
    max_failed_fraction: float = MAX_FAILED_FRACTION,
    progress: bool = True,
) -> Path:
    """Write (or finish) a prepared store for `read_result` in `out_dir`; returns `out_dir`.

    `face_crops`: every image is already a face crop (a set shipped as crops, without frames or
    boxes). `box="detector"` cuts the square at `crop_scale` around the detector's box on the crop
    (black where it leaves the crop), the framing the Predictor gives a photo; `box="dataset"`
    keeps the crop as given. Either way the summary says how the crops compare with the
    detector's box (`face_crop_framing`).
    Rerunning with the same inputs and settings resumes; different ones raise `StoreError`.
    Raises `PrepareError` (store.json not written) when more than `max_failed_fraction` of the
    samples could not be prepared.
    """
    from facepad.data.store import rows_path

    _check_options(no_mesh_policy, box, max_failed_fraction, crop_size, depth_size, shard_size,
                   crop_scale, jpeg_quality, jpeg_subsampling)  # fmt: skip
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    samples = sorted(read_result.samples, key=lambda s: (s.split, s.path))
    settings = {
        "format_version": 1,
        "dataset": dataset_name,
        "crop_scale": crop_scale,
        "crop_size": crop_size,
        "depth_size": depth_size,
        "shard_size": shard_size,
        "jpeg_quality": jpeg_quality,
        "no_mesh_policy": no_mesh_policy,
        "min_face_confidence": min_face_confidence,
        "box": box,
        "face_crops": face_crops,
        "num_samples": len(samples),
        "samples_sha256": _samples_digest(samples),
    }
    # recorded only when not the default: older stores' plans resume as they are
    if jpeg_subsampling != JPEG_SUBSAMPLING:
        settings["jpeg_subsampling"] = jpeg_subsampling
    _start_or_resume(out, settings)
    chunks = [samples[k : k + shard_size] for k in range(0, len(samples), shard_size)]
    pending = [k for k in range(len(chunks)) if not rows_path(out, k).is_file()]
    if pending:
        _run_shards(out, chunks, pending, settings, workers, progress)
    summary = _assemble(out, chunks, read_result, settings)
    _check_failures(out, summary, len(samples), max_failed_fraction)
    _write_store_json(out, settings, summary, max_failed_fraction)
    _print_summary(out, summary, settings)
    return out


def _check_options(
    no_mesh_policy: str, box: str, max_failed_fraction: float, crop_size: int, depth_size: int,
    shard_size: int, crop_scale: float, jpeg_quality: int, jpeg_subsampling: str,
) -> None:  # fmt: skip
    """Refuse impossible settings before anything is read or written."""
    if no_mesh_policy not in NO_MESH_POLICIES:
        raise ValueError(f"no_mesh_policy {no_mesh_policy!r}: choose one of {NO_MESH_POLICIES}")
    if box not in BOX_MODES:
        raise ValueError(f"box {box!r}: choose one of {BOX_MODES}")
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise ValueError(f"max_failed_fraction must be in [0, 1], got {max_failed_fraction}")
    if crop_size < 8 or depth_size < 1 or shard_size < 1 or crop_scale <= 0:
        raise ValueError("need crop_size >= 8, depth_size >= 1, shard_size >= 1, crop_scale > 0")
    if jpeg_subsampling not in JPEG_SUBSAMPLINGS or not 1 <= jpeg_quality <= 100:
        raise ValueError(
            f"jpeg_subsampling {jpeg_subsampling!r} / jpeg_quality {jpeg_quality}: choose one of "
            f"{', '.join(JPEG_SUBSAMPLINGS)} and a quality of 1-100"
        )


def _write_store_json(out: Path, settings: dict, summary: dict, max_failed_fraction: float) -> None:
    """store.json is written last: its presence says the store is complete."""
    meta = {k: v for k, v in settings.items() if k != "samples_sha256"}
    meta["attributes"] = summary["attributes"]
    meta["max_failed_fraction"] = max_failed_fraction
    meta["counts"] = {k: v for k, v in summary.items() if k != "attributes"}
    _write_atomic(out / "store.json", _dumps(meta).encode())


def _start_or_resume(out: Path, settings: dict) -> None:
    """Record the run's settings in shards/plan.json, or check that an interrupted run in `out`
    had the same ones (StoreError naming the differences), and drop its half-written shards."""
    from facepad.data.store import StoreError

    plan_file = out / "shards" / "plan.json"
    if plan_file.is_file():
        old = json.loads(plan_file.read_text())
        if old != settings:
            changed = sorted(k for k in settings if old.get(k) != settings[k])
            raise StoreError(
                f"{out} holds a prepare run with other inputs or settings ({', '.join(changed)}); "
                "use a new --out folder or delete this one"
            )
    else:
        _write_atomic(plan_file, _dumps(settings).encode())
    for tmp in (out / "shards").glob("*.tmp"):
        tmp.unlink()  # leftovers of an interrupted run; their shards are redone


def _samples_digest(samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        attrs = json.dumps(s.attributes, sort_keys=True)
        h.update(f"{s.split}\t{s.path}\t{s.label}\t{s.attack_type}\t{s.box}\t{attrs}\n".encode())
    return h.hexdigest()


def _dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- running shards


def _run_shards(out: Path, chunks, pending, settings, workers, progress) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    from facepad.data.faces import third_party_logs_shown

    total = sum(len(chunks[k]) for k in pending)
    workers = (os.cpu_count() or 1) if workers is None else max(1, workers)
    workers = min(workers, len(pending))
    bar = tqdm(total=total, unit="img", desc="prepare", disable=not progress, smoothing=0.1)
    tasks = [(out, k, chunks[k], settings) for k in pending]
    if workers == 1:
        global _PROGRESS
        _PROGRESS = None
        for task in tasks:
            bar.update(_run_shard(task, bar.update))
        bar.close()
        return
    # Not plain fork: mediapipe aborts in a child forked from a process that already ran a graph.
    # A forkserver that has imported the heavy modules (but run nothing) forks workers quickly.
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["numpy", "cv2", "simplejpeg", "mediapipe", __name__])
    queue = ctx.Queue()
    verbose = third_party_logs_shown()  # a forkserver started earlier holds an older environment
    pool = ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=(queue, verbose))
    try:
        futures = {pool.submit(_run_shard, task) for task in tasks}
        while futures:
            finished, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, bar, timeout=0.0)
            for future in finished:
                future.result()  # re-raises a worker's unexpected error
        deadline = time.monotonic() + 1.0  # the last progress counts may still be in the pipe
        while bar.n < total and time.monotonic() < deadline:
            _drain(queue, bar, timeout=0.1)
    except BrokenProcessPool:
        raise RuntimeError(
            f"a prepare worker process died (out of memory or a crash in a native library); "
            f"finished shards are kept: rerun the same command to resume into {out}"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def _drain(queue, bar, timeout: float) -> None:
    import queue as queue_lib

    try:
        bar.update(queue.get(timeout=timeout) if timeout else queue.get_nowait())
        while True:
            bar.update(queue.get_nowait())
    except queue_lib.Empty:
        pass


def _init_worker(queue, verbose: bool) -> None:
    import cv2

    from facepad.data.faces import show_third_party_logs

    global _PROGRESS
    _PROGRESS = queue
    show_third_party_logs(verbose)
    _TOOLS.clear()  # never reuse graphs inherited from the parent through fork
    cv2.setNumThreads(1)  # one process per core already


def _tools(settings) -> dict:
    """Detector, mesh and triangles of this process, built once on first use."""
    if _TOOLS.get("pid") != os.getpid():
        _TOOLS.clear()
        _TOOLS["pid"] = os.getpid()
    if "detector" not in _TOOLS:
        from facepad.data.faces import FaceDetector, FaceMesh, mesh_triangles

        _TOOLS["detector"] = FaceDetector(min_confidence=settings["min_face_confidence"])
        _TOOLS["mesh"] = FaceMesh(min_confidence=settings["min_face_confidence"])
        _TOOLS["triangles"] = mesh_triangles()
    return _TOOLS


def _run_shard(task, report=None) -> int:
    """Process one shard and write its files; returns images not yet reported as progress."""
    import numpy as np

    from facepad.data.store import bin_path, depth_path, rows_path

    out, shard, samples, settings = task
    size = settings["depth_size"]
    records, blobs, maps = [], [], []
    offset, unreported = 0, 0
    for sample in samples:
        result = _process_sample(sample, settings)
        if isinstance(result, Skipped):
            records.append({"status": "skipped", "reason": result.reason, "detail": result.detail})
        else:
            jpeg, depth_u8, fields = result
            records.append({"status": "stored", "offset": offset, "length": len(jpeg), **fields})
            blobs.append(jpeg)
            maps.append(depth_u8)
            offset += len(jpeg)
        unreported += 1
        if unreported >= 8:
            if _PROGRESS is not None:
                _PROGRESS.put(unreported)
            elif report is not None:
                report(unreported)
            unreported = 0
    depth_stack = np.stack(maps) if maps else np.zeros((0, size, size), np.uint8)  # (n, D, D)
    _write_atomic(bin_path(out, shard), b"".join(blobs))
    depth_tmp = depth_path(out, shard).with_name(depth_path(out, shard).name + ".tmp")
    with open(depth_tmp, "wb") as f:
        np.save(f, depth_stack)
    os.replace(depth_tmp, depth_path(out, shard))
    _write_atomic(rows_path(out, shard), _dumps(records).encode())  # the shard's "done" marker
    if _PROGRESS is not None and unreported:
        _PROGRESS.put(unreported)
        return 0
    return unreported


def _process_sample(sample, settings):
    """(jpeg, depth uint8 (D, D), the shard record's fields: `box` source, `box_problem`,
    `depth` target kind and, for face-crop sets, `framing`), or `Skipped`."""
    try:
        return _process_sample_unsafe(sample, settings)
    except Exception as e:  # a corrupt input in a big run is recorded, never a crash
        return Skipped("error", f"{type(e).__name__}: {e}")


def _process_sample_unsafe(sample, settings):
    import numpy as np
    import simplejpeg

    from facepad.data.crop import map_points, square_crop_with_matrix
    from facepad.data.depth import ellipse_prior, render_depth, to_uint8
    from facepad.data.images import ImageError
    from facepad.data.videos import load_sample_image

    try:
        rgb = load_sample_image(sample)  # an image file, or a frame of a video
    except ImageError as e:
        return Skipped("unreadable_image", str(e))
    face = (
        _face_crop_box(rgb, settings)
        if settings["face_crops"]
        else _face_box(sample, rgb, settings)
    )
    if isinstance(face, Skipped):
        return face
    box, fields = face
    crop, matrix = square_crop_with_matrix(
        rgb, box, settings["crop_scale"], settings["crop_size"]
    )  # (S, S, 3)
    size = settings["depth_size"]
    target = "zeros"
    depth = np.zeros((size, size), np.float32)  # spoof target: zeros by definition
    if sample.label == "live":
        tools = _tools(settings)  # built on first use: spoof-only runs with boxes need no mesh
        landmarks = tools["mesh"].landmarks(crop)
        if landmarks is not None:
            depth = render_depth(landmarks, tools["triangles"], size, settings["crop_size"])
            target = "mesh"
        elif settings["no_mesh_policy"] == "skip":
            return Skipped("no_mesh", f"{sample.path}: face mesh failed on the live crop")
        else:
            x, y, w, h = box
            corners = map_points(matrix, [(x, y), (x + w, y + h)]) * (size / settings["crop_size"])
            (u0, v0), (u1, v1) = corners
            depth = ellipse_prior((u0, v0, u1 - u0, v1 - v0), size)
            target = "ellipse"
    jpeg = simplejpeg.encode_jpeg(
        crop,
        quality=settings["jpeg_quality"],
        colorspace="RGB",
        colorsubsampling=settings.get("jpeg_subsampling", JPEG_SUBSAMPLING),
    )
    return jpeg, to_uint8(depth), {**fields, "depth": target}


def dataset_box(sample, width: int, height: int):
    """`(box, problem)`: the dataset's face box of `sample` in image pixels, or None with why
    (`no_dataset_box` when the dataset gives none, else `load_box`'s reason)."""
    if sample.box is not None:
        return sample.box, None
    box_file = sample.attributes.get("box_file")
    if not box_file:
        return None, "no_dataset_box"
    from facepad.data.celeba_spoof import load_box

    return load_box(box_file, width, height)


def whole_crop_box(width: int, height: int, crop_scale: float) -> tuple[float, ...]:
    """The box of an image that is itself a face crop: centred, 1 / crop_scale of its sides, so
    the square cut around it at `crop_scale` is the image itself (the crop as given)."""
    w, h = width / crop_scale, height / crop_scale
    return ((width - w) / 2, (height - h) / 2, w, h)


def _face_crop_box(rgb, settings) -> tuple[tuple[float, ...], dict]:
    """A face-crop set's box and record fields: the detector's box on the crop (`box` detector)
    or the crop as given (`box` dataset, and where no face is found). `framing` says how the crop
    compares with the detector's box: [IoU of the box with the crop, crop side / box side, share
    of the square cut at crop_scale that falls outside the crop and is padded black]; NaN where no
    face was found."""
    from facepad.data.crop import crop_window
    from facepad.data.faces import largest_face

    height, width = rgb.shape[:2]
    face = largest_face(_tools(settings)["detector"].detect(rgb))
    if face is not None and settings["box"] == "detector":
        box, source = face.box, "detector"
    else:
        box = whole_crop_box(width, height, settings["crop_scale"])
        source = "dataset" if settings["box"] == "dataset" else "dataset-fallback"
    if face is None:
        return box, {"box": source, "box_problem": "", "framing": [math.nan] * 3}
    x, y, w, h = face.box
    x0, y0, side = crop_window(box, settings["crop_scale"])
    inside_w = max(0, min(x0 + side, width) - max(x0, 0))
    inside_h = max(0, min(y0 + side, height) - max(y0, 0))
    framing = [w * h / (width * height), max(width, height) / max(w, h),  # the box lies inside
               1 - inside_w * inside_h / side**2]  # fmt: skip
    return box, {"box": source, "box_problem": "", "framing": [round(v, 4) for v in framing]}


def measured_crop_scale(samples, n: int = 200, seed: int = 0) -> float:
    """How a face-crop set frames faces: the median of crop side / detector box side over up to
    `n` of its crops (seeded choice), rounded to 0.01. Kept as given, such crops frame the face
    as a square cut at this scale around the detector's box does, so prepare records it and
    predict cuts photos at it."""
    import random

    from facepad.data.faces import FaceDetector, largest_face
    from facepad.data.images import ImageError, load_image

    chosen = random.Random(seed).sample(list(samples), min(n, len(samples)))
    ratios = []
    with FaceDetector() as detector:
        for sample in chosen:
            try:
                rgb = load_image(sample.path)
            except ImageError:
                continue
            face = largest_face(detector.detect(rgb))
            if face is not None:
                ratios.append(max(rgb.shape[:2]) / max(face.box[2], face.box[3]))
    if not ratios:
        raise PrepareError(f"the face detector found no face on {len(chosen)} of the crops")
    return round(float(sorted(ratios)[len(ratios) // 2]), 2)


def _face_box(sample, rgb, settings):
    """`(box, record fields)` by the `box` setting (module docstring), or `Skipped`."""
    height, width = rgb.shape[:2]
    given, problem = dataset_box(sample, width, height)
    if settings["box"] == "dataset" and given is not None:
        return given, {"box": "dataset", "box_problem": ""}
    if problem == "no_dataset_box":
        problem = None  # not a defect: the dataset gives no boxes (a manifest)
    from facepad.data.faces import largest_face

    face = largest_face(_tools(settings)["detector"].detect(rgb))
    if face is not None:
        wanted_dataset = settings["box"] == "dataset" and problem is not None
        source = "detector-fallback" if wanted_dataset else "detector"
        return face.box, {"box": source, "box_problem": problem or ""}
    if given is not None:
        return given, {"box": "dataset-fallback", "box_problem": ""}
    why = f" (and the dataset box: {problem})" if problem else ""
    return Skipped("no_face", f"{sample.path}: face detector found no face{why}")


# ---------------------------------------------------------------- index and summary


def _assemble(out: Path, chunks, read_result, settings) -> dict:
    """Write index.csv and skipped.csv from the finished shards; return the counts."""
    from facepad.data.store import INDEX_COLUMNS, rows_path

    attr_names = sorted(
        {k for c in chunks for s in c for k in s.attributes if k != "box_file"}
    )  # box_file is a CelebA-Spoof pointer, not an attribute to break results down by
    index_rows, skipped_rows = [], []
    for reader_skip in read_result.skipped:
        skipped_rows.append([reader_skip.path, "", "", "reader", reader_skip.reason])
    stored_by = {"split_label": Counter(), "split_attack": Counter()}
    box_sources, box_problems, targets, reasons = Counter(), Counter(), Counter(), Counter()
    framings, unknown_subject = [], Counter()
    for shard, chunk in enumerate(chunks):
        records = json.loads(rows_path(out, shard).read_text())
        for sample, rec in zip(chunk, records, strict=True):
            if rec["status"] != "stored":
                skipped_rows.append(
                    [sample.path, sample.split, sample.label, rec["reason"], rec["detail"]]
                )
                reasons[rec["reason"]] += 1
                continue
            row = [len(index_rows), sample.split, sample.path, sample.label, sample.attack_type]
            row += [sample.subject, shard, rec["offset"], rec["length"], rec["box"]]
            row += [sample.attributes.get(k, "") for k in attr_names]
            index_rows.append(row)
            stored_by["split_label"][f"{sample.split}/{sample.label}"] += 1
            stored_by["split_attack"][f"{sample.split}/{sample.attack_type}"] += 1
            box_sources[rec["box"]] += 1
            box_problems[rec.get("box_problem") or ""] += 1
            targets[rec["depth"]] += 1
            if "framing" in rec:
                framings.append(rec["framing"])
            if not sample.subject:
                unknown_subject[sample.split] += 1
    failed = sum(reasons.values())
    reasons["reader"] += len(read_result.skipped)
    _write_csv(out / "index.csv", list(INDEX_COLUMNS) + attr_names, index_rows)
    _write_csv(out / "skipped.csv", list(SKIPPED_COLUMNS), skipped_rows)
    box_problems.pop("", None)
    return {
        "stored": len(index_rows),
        "skipped": len(skipped_rows),
        "failed": failed,
        "by_split_label": dict(sorted(stored_by["split_label"].items())),
        "by_split_attack_type": dict(sorted(stored_by["split_attack"].items())),
        "skipped_by_reason": dict(sorted((k, v) for k, v in reasons.items() if v)),
        "box_source": dict(sorted(box_sources.items())),
        "dataset_box_problem": dict(sorted(box_problems.items())),
        "depth_target": dict(sorted(targets.items())),
        "live_mesh_rate": _mesh_rate(targets, reasons),
        "face_crop_framing": _framing_summary(framings),
        "unknown_subject": dict(sorted(unknown_subject.items())),
        "reader": dict(sorted(read_result.counts.items())),
        "subjects_in_two_splits": subjects_in_two_splits(s for c in chunks for s in c),
        "attributes": attr_names,
    }


def _mesh_rate(targets: Counter, reasons: Counter) -> float | None:
    """Share of the live crops whose face mesh succeeded (None when no live crop was tried)."""
    tried = targets["mesh"] + targets["ellipse"] + reasons["no_mesh"]
    return round(targets["mesh"] / tried, 4) if tried else None


def _framing_summary(framings: list[list[float]]) -> dict:
    """Medians and 10-90 % ranges of the face-crop framing (`_face_crop_box`), and how many
    crops had no face found; empty unless the store was cut from face crops."""
    import numpy as np

    if not framings:
        return {}
    values = np.array(framings, dtype=np.float64)  # (n, 3)
    found = values[~np.isnan(values[:, 0])]
    out = {"crops": len(values), "no_face": int(len(values) - len(found))}
    for k, name in enumerate(("box_iou", "crop_over_box", "padded_share")):
        if len(found):
            p10, p50, p90 = np.percentile(found[:, k], [10, 50, 90])
            out[name] = {"median": round(p50, 3), "p10": round(p10, 3), "p90": round(p90, 3)}
    return out


def _check_failures(out: Path, counts: dict, n_samples: int, limit: float) -> None:
    """Stop before store.json when too many samples failed (reader skips are not counted:
    listed-but-absent files are the reader's, reported in the summary)."""
    failed = counts["failed"]
    if not n_samples or failed / n_samples <= limit:
        return
    reasons = {k: v for k, v in counts["skipped_by_reason"].items() if k != "reader"}
    share = failed / n_samples
    raise PrepareError(
        f"{failed} of {n_samples} samples ({100 * share:.1f} %) could not be prepared "
        f"({', '.join(f'{k} {v}' for k, v in reasons.items())}), more than the limit of "
        f"{100 * limit:g} %; each is listed with its reason in {out / 'skipped.csv'}. Fix the "
        f"inputs, or accept the losses by rerunning with --max-failed-fraction "
        f"{math.ceil(share * 100) / 100:g} (finished shards are kept: the rerun only reassembles)."
    )


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def _print_summary(out: Path, counts: dict, settings: dict) -> None:
    print(f"prepared store: {out}")
    print(f"  stored {counts['stored']}, skipped {counts['skipped']} (see skipped.csv)")
    for title, key in (
        ("per split/label", "by_split_label"),
        ("per split/attack type", "by_split_attack_type"),
        ("skipped by reason", "skipped_by_reason"),
        ("face box from", "box_source"),
        ("dataset box unusable", "dataset_box_problem"),
        ("depth target", "depth_target"),
    ):
        if counts[key]:
            print(f"  {title}: " + ", ".join(f"{k} {v}" for k, v in counts[key].items()))
    reader = {k: v for k, v in counts["reader"].items() if v and k in READER_DEFECTS}
    if reader:
        print("  reader: " + ", ".join(f"{k} {v}" for k, v in reader.items()))
    if counts.get("live_mesh_rate") is not None:
        print(f"  face mesh found on {100 * counts['live_mesh_rate']:.1f} % of the live crops")
    framing = counts.get("face_crop_framing")
    if framing and "box_iou" in framing:
        iou, ratio, pad = (
            framing[k]["median"] for k in ("box_iou", "crop_over_box", "padded_share")
        )
        print(f"  face crops: the detector's box covers {100 * iou:.0f} % of a crop (median; crop "
              f"side {ratio:.2f}x the box), {100 * pad:.0f} % of each cut padded; no face on "
              f"{framing['no_face']} of {framing['crops']}")  # fmt: skip
        scale = settings["crop_scale"]
        if settings["box"] == "dataset" and abs(ratio / scale - 1) > 0.05:
            print(f"  warning: crops kept as given frame faces at {ratio:.2f}x the box, not the "
                  f"--crop-scale {scale} that predict will cut photos at: prepare again with "
                  f"--crop-scale {ratio:.2f}")  # fmt: skip
    if counts.get("unknown_subject"):
        where = ", ".join(f"{k} {v}" for k, v in counts["unknown_subject"].items())
        print(f"  subject unknown for {where} samples: they share no split with known people, but "
              "a split carved from them would not be subject-disjoint (none was)")  # fmt: skip
    overlap = counts["subjects_in_two_splits"]
    if overlap:
        print(f"  subjects in two splits: {len(overlap)}: {describe_overlap(overlap)}")


# ---------------------------------------------------------------- command line


def register(subparsers) -> None:
    """Add `facepad prepare`."""
    p = subparsers.add_parser(
        "prepare",
        help="cut face crops and pseudo depth once into a prepared store",
        description="Cut square face crops and render pseudo-depth targets into a store folder "
        "(resumable: rerun the same command after an interruption).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--celeba-spoof", metavar="ROOT", help="CelebA-Spoof folder (Data/, metas/)"
    )
    source.add_argument("--manifest", metavar="CSV", help="manifest CSV (path,label,...)")
    source.add_argument("--demo", action="store_true", help="generate the demo set into OUT/source")
    p.add_argument("--protocol", default="intra_test", help="CelebA-Spoof protocol")
    p.add_argument(
        "--test-subjects", nargs="+", metavar="ID", help="manifest: subjects forming the test split"
    )
    p.add_argument(
        "--frames-per-video",
        type=int,
        default=None,
        metavar="K",
        help="manifest rows that name a video: take K evenly spaced frames of each",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="store folder to write")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    p.add_argument("--crop-scale", type=float, default=1.3)
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--depth-size", type=int, default=32)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-mesh-policy", choices=NO_MESH_POLICIES, default="skip")
    p.add_argument(
        "--box",
        choices=BOX_MODES,
        default=None,
        help="face box: the dataset's (detector where it has none) or the detector's, as at "
        "inference (dataset box where no face is found); index.csv's box_source records which. "
        "Default: dataset, or detector with --face-crops",
    )
    p.add_argument(
        "--face-crops",
        action="store_true",
        help="manifest: every image is already a face crop (a set shipped as crops). The square "
        "is cut at --crop-scale around the detector's box on the crop, as predict cuts a photo "
        "(--box dataset: the crop as given); the summary compares crop and box",
    )
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=MAX_FAILED_FRACTION,
        metavar="F",
        help="stop with an error when more than this share of samples fails (default 0.05)",
    )
    p.add_argument(
        "--allow-subject-overlap",
        action="store_true",
        help="manifest: accept a split column that puts one subject in two splits",
    )
    p.add_argument(
        "--ignore-split-column",
        action="store_true",
        help="manifest: split by subject as if it had no split column (--test-subjects, else "
        "a seeded share; --test-fraction 0 puts every subject in train/val)",
    )
    p.add_argument(
        "--split-map",
        nargs="+",
        default=[],
        metavar="OLD=NEW",
        help="manifest: rename the split column's splits first, e.g. val=test (Replay-Attack: "
        "devel becomes the test set and validation is carved from train by subject)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="manifest without a split column or --test-subjects: share of subjects in test",
    )
    p.add_argument(
        "--jpeg-quality", type=int, default=JPEG_QUALITY, help="stored crops' JPEG quality"
    )
    p.add_argument(
        "--jpeg-subsampling",
        choices=JPEG_SUBSAMPLINGS,
        default=JPEG_SUBSAMPLING,
        help="stored crops' chroma subsampling: 444 keeps colour detail (default); 420 decodes "
        "about 1.5x faster, for a GPU whose loader is bound by JPEG decoding",
    )
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.face_crops and not args.manifest:
        raise ValueError("--face-crops describes a manifest's images: use it with --manifest CSV")
    box = args.box or ("detector" if args.face_crops else "dataset")
    if args.celeba_spoof or args.demo:
        from facepad.data.celeba_spoof import read_celeba_spoof

        root, name = args.celeba_spoof, "celeba_spoof"
        if args.demo:
            from facepad.data.demo import make_demo_dataset

            root = make_demo_dataset(Path(args.out) / "source", seed=args.seed)
            name = "demo"
        read = read_celeba_spoof(root, args.protocol, args.val_fraction, args.seed)
    else:
        from facepad.data.manifest import read_manifest

        read = read_manifest(
            args.manifest,
            args.val_fraction,
            args.seed,
            test_subjects=args.test_subjects,
            allow_subject_overlap=args.allow_subject_overlap,
            frames_per_video=args.frames_per_video,
            use_split_column=not args.ignore_split_column,
            test_fraction=args.test_fraction,
            split_map=dict(item.split("=", 1) for item in args.split_map),
        )
        name = Path(args.manifest).resolve().parent.name
    prepare_store(
        read,
        args.out,
        dataset_name=name,
        crop_scale=args.crop_scale,
        crop_size=args.crop_size,
        depth_size=args.depth_size,
        workers=args.workers,
        no_mesh_policy=args.no_mesh_policy,
        shard_size=args.shard_size,
        jpeg_quality=args.jpeg_quality,
        jpeg_subsampling=args.jpeg_subsampling,
        box=box,
        face_crops=args.face_crops,
        max_failed_fraction=args.max_failed_fraction,
        progress=not args.no_progress,
    )
    return 0

"""Batch scoring of a large image list with Ray Data, over the same Predictor as predict and serve.

Each Ray Data actor loads the Predictor once and scores batches of paths; the driver streams the
rows into one CSV as batches finish. A file that cannot be read, or holds no face, becomes a row
with an `error` and is never a crash. A killed run resumes: images already in the CSV are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from facepad.infer.predictor import FaceChoice

FIELDS = ["source", "face", "x", "y", "w", "h", "detector_score", "score", "decision", "error"]


class BatchScorer:
    """A Ray Data actor: one Predictor, loaded once, turns a batch of paths into result rows."""

    def __init__(self, model: str, face_choice: FaceChoice, threads: int = 1):
        from facepad.infer.predictor import Predictor

        self.predictor = Predictor.from_path(model, threads=threads)
        self.predictor.face_choice = face_choice

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        from facepad.infer.predictor import _to_rgb

        rows: list[dict[str, Any]] = []
        readable, rgbs = [], []
        for path in (str(p) for p in batch["path"]):
            try:
                rgbs.append(_to_rgb(path))
                readable.append(path)
            except Exception as exc:  # one bad file in a big list is recorded, not fatal
                rows.append(error_row(path, f"unreadable image: {exc}"))
        for path, faces in zip(readable, self.predictor.predict_rgb(rgbs), strict=True):
            if not faces:
                rows.append(error_row(path, "no face found"))
            for i, f in enumerate(faces):
                x, y, w, h = f.box
                rows.append(
                    {
                        **error_row(path, ""),
                        "face": i,
                        **{"x": x, "y": y, "w": w, "h": h},
                        "detector_score": round(f.detector_score, 4),
                        "score": round(f.score, 6),
                        "decision": f.decision,
                    }
                )
        return {key: [str(r[key]) for r in rows] for key in FIELDS}


def error_row(path: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS, "")
    row.update(source=path, error=error)
    return row


def done_sources(out: Path) -> set[str]:
    """Sources already in the CSV; a half-written last line (a killed run) is cut off first."""
    if not out.is_file() or out.stat().st_size == 0:
        return set()
    data = out.read_bytes()
    if not data.endswith(b"\n"):
        with out.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    with out.open(newline="") as f:
        return {row["source"] for row in csv.DictReader(f)}


def score_image_list(
    image_list: Path,
    model: Path,
    out: Path,
    *,
    face_choice: FaceChoice | None = None,
    actors: int = 2,
    batch_size: int = 16,
    address: str | None = None,
    num_cpus: int | None = None,
) -> dict[str, int]:
    """Score every path of `image_list` (one a line, relative to the list's folder or absolute)
    into `out` (CSV, one row per face or error); returns counts."""
    import ray

    from facepad.serve.ray_serve import init_ray

    base = image_list.parent
    lines = image_list.read_text(encoding="utf-8").splitlines()
    paths = [str(base / p.strip()) for p in lines if p.strip() and not p.startswith("#")]
    done = done_sources(out)
    todo = [p for p in dict.fromkeys(paths) if p not in done]
    summary = {"scored": 0, "skipped_done": len(paths) - len(todo), "errors": 0}
    if not todo:
        return summary
    init_ray(address, num_cpus)
    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = ray.data.from_items(
        [{"path": p} for p in todo], override_num_blocks=max(1, min(len(todo), actors * 8))
    ).map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "model": str(model),
            "face_choice": face_choice or FaceChoice.single(),
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out.is_file() or out.stat().st_size == 0
    seen: set[str] = set()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            rows = [{k: str(batch[k][i]) for k in FIELDS} for i in range(len(batch["source"]))]
            writer.writerows(rows)
            f.flush()
            seen.update(r["source"] for r in rows)
            summary["errors"] += sum(1 for r in rows if r["error"])
    summary["scored"] = len(seen)
    return summary

"""Manifest CSV reader: any dataset described by `path,label[,attack_type,subject,split]`.

The way to bring a dataset other than CelebA-Spoof (e.g. nuaa-dev) into facepad. Paths are relative
to the CSV's folder (absolute paths also work); columns beyond the known ones (nuaa-dev's `session`,
`md5`) are kept in `Sample.attributes`. A row may name a video: it becomes `frames_per_video`
evenly spaced frames (`facepad.data.videos`). A `video` column (or, for video rows, the path) is
the id that groups frames; without a `subject` column the video stands in for the subject.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facepad.data.images import ImageError
from facepad.data.records import LABELS, ReadResult, Sample, SkippedInput
from facepad.data.split import (
    choose_subjects,
    describe_overlap,
    split_by_subject,
    split_counts,
    subjects_in_two_splits,
)
from facepad.data.videos import frame_samples, is_video

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("attack_type", "subject", "split")
EXPECTED_HEADER = "path,label[,attack_type,subject,split][,any extra columns]"
SPLITS = ("train", "val", "test")
# attack_type values that mean "no attack" in manifests (nuaa-dev writes `none` for live rows).
_NO_ATTACK = {"", "none", "live", "bona_fide", "bonafide"}


def read_manifest(
    csv_path: str | Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    test_subjects: Iterable[str] | None = None,
    test_fraction: float = 0.2,
    allow_subject_overlap: bool = False,
    frames_per_video: int | None = None,
    use_split_column: bool = True,
    split_map: dict[str, str] | None = None,
) -> ReadResult:
    """Read a manifest CSV into samples with subject-disjoint train/val/test splits.

    Without a `split` column, the subjects in `test_subjects` form the test split (else a seeded
    `test_fraction` of the subjects); validation is then carved from train by subject. With a
    `split` column that has no `val` rows, validation is carved from its train rows the same way.
    Without a `subject` column every video (`video` column, or a video row's path), else every
    image, is its own subject (a warning says so). An empty subject cell (people not known, as in
    celeba-spoof-mini's train split) is allowed only in a split column's rows and stays empty
    (counted as `unknown_subject`); validation is never carved from such rows. Rows naming a
    video become `frames_per_video` evenly spaced frames. A `split` column that puts a subject in
    two splits is an error naming the subjects, unless `allow_subject_overlap`.
    `use_split_column=False` ignores the column (all rows are split as above: e.g. to train on
    every subject of a dataset and test elsewhere). `split_map` renames the column's splits first
    (`{"val": "test"}`: Replay-Attack's devel set becomes the test set, and validation is then
    carved from train by subject).
    Rows whose file is missing or unreadable video are skipped with a reason.
    """
    csv_path = Path(csv_path).expanduser().absolute()
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"manifest {csv_path} not found; write a CSV with header {EXPECTED_HEADER}"
        )
    columns, result = _read_rows(csv_path, frames_per_video, use_split_column)
    samples = result.samples
    for old, new in (split_map or {}).items():
        if old not in SPLITS or new not in SPLITS:
            raise ValueError(f"split map {old}={new}: both must be one of {', '.join(SPLITS)}")
    for sample in samples:
        sample.split = (split_map or {}).get(sample.split, sample.split)
    if result.counts["rows"] == 0:
        raise ValueError(f"{csv_path} has a header but no rows; add one row per image")
    if not columns.has_subject:
        unit = "video" if any("video" in s.attributes for s in samples) else "image"
        warnings.warn(
            f"{csv_path} has no subject column: every {unit} is treated as its own subject, so "
            "frames of one person can land in both train and test; add a subject column",
            stacklevel=2,
        )
    if columns.has_split:
        if not allow_subject_overlap:
            check_subject_overlap(samples, csv_path)
        if test_subjects is not None:
            warnings.warn(f"{csv_path} has a split column: test_subjects is ignored", stacklevel=2)
    else:
        _split_off_test(samples, csv_path, test_subjects, test_fraction, seed)
    if not any(s.split == "val" for s in samples):
        _check_subjects_known(samples, csv_path)
        # a different stream from the test choice, so val is not the test subjects' neighbours
        split_by_subject(samples, val_fraction, seed + 1)
    counts = result.counts
    counts.update(split_counts(samples))
    counts["samples"] = len(samples)
    counts["skipped"] = len(result.skipped)
    counts["live"] = sum(s.is_live for s in samples)
    counts["spoof"] = len(samples) - counts["live"]
    return result


@dataclass
class _Columns:
    """What a manifest's header offers: which optional columns are used, and the extra ones."""

    has_subject: bool
    has_split: bool
    has_video: bool
    extra: list[str]


def _read_rows(
    csv_path: Path, frames_per_video: int | None, use_split_column: bool
) -> tuple[_Columns, ReadResult]:
    """What the header offers, and every row as samples (all in `train` unless a split column
    is used), the rows left out with their reasons and counts of defects; malformed rows raise,
    naming the line."""
    result = ReadResult(
        samples=[],
        counts={
            "rows": 0,
            "missing_image": 0,
            "duplicate_rows": 0,
            "live_attack_type_ignored": 0,
            "unknown_subject": 0,
        },  # fmt: skip
    )
    seen: set[str] = set()
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = _header_columns(reader, csv_path, use_split_column)
        for row in reader:
            where = f"{csv_path} line {reader.line_num}"
            if None in row:
                raise ValueError(
                    f"{where}: more fields than the header's {len(reader.fieldnames)}; "
                    "quote paths that contain commas"
                )
            rel = (row.get("path") or "").strip()
            if not rel and not any((v or "").strip() for v in row.values()):
                continue  # blank line
            result.counts["rows"] += 1
            samples = _row_samples(row, rel, csv_path.parent, columns, where, result.counts, seen,
                                   frames_per_video)  # fmt: skip
            if isinstance(samples, SkippedInput):
                result.skipped.append(samples)
            else:
                result.samples += samples
    return columns, result


def _header_columns(reader: csv.DictReader, csv_path: Path, use_split_column: bool) -> _Columns:
    """Check the header has the required columns (stripped of spaces) and say what it offers."""
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{csv_path}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(columns) or 'no header'}); expected header {EXPECTED_HEADER}"
        )
    reader.fieldnames = columns
    return _Columns(
        has_subject="subject" in columns,
        has_split="split" in columns and use_split_column,
        has_video="video" in columns,
        extra=[c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS],
    )


def _row_samples(
    row: dict,
    rel: str,
    base: Path,
    columns: _Columns,
    where: str,
    counts: dict,
    seen: set[str],
    frames_per_video: int | None,
) -> list[Sample] | SkippedInput:
    """One row's samples (one image, or a video's frames), or why it is skipped (a duplicate of
    an earlier row, its file missing, an unreadable video), counted in `counts`."""
    if not rel:
        raise ValueError(f"{where}: empty path; every row needs an image path")
    label = (row.get("label") or "").strip().lower()
    if label not in LABELS:
        raise ValueError(
            f"{where}: label {row.get('label')!r} for {rel}; label must be live or spoof"
        )
    path = str((base / rel).absolute())
    if path in seen:
        counts["duplicate_rows"] += 1
        return SkippedInput(path=path, reason=f"duplicate row ({where})")
    seen.add(path)
    attack = _attack_type(row, label, counts)
    split = _split_value(row, where) if columns.has_split else "train"
    subject = (row.get("subject") or "").strip() if columns.has_subject else ""
    if columns.has_subject and not subject:
        if not columns.has_split:
            raise ValueError(
                f"{where}: empty subject for {rel}; fill it, or give the rows a split column "
                "(without one, test and validation are carved by subject)"
            )
        counts["unknown_subject"] += 1  # kept in its split; never carved from (read_manifest)
    if not Path(path).is_file():
        counts["missing_image"] += 1
        return SkippedInput(path=path, reason="image file missing")
    attributes = {c: (row.get(c) or "").strip() for c in columns.extra}
    video = attributes.get("video", "") if columns.has_video else ""
    if is_video(path) and not video:
        attributes["video"] = video = rel
    # no subject column: the video (else the image) stands in; an empty cell stays unknown ("")
    subject = subject if columns.has_subject else (video or rel)
    sample = Sample(path, label, attack, subject, split, None, attributes)
    if is_video(path):
        return _video_frames(sample, frames_per_video, where, rel, counts)
    return [sample]


def _attack_type(row: dict, label: str, counts: dict) -> str:
    """`live` for every live row (counting those that named an attack), `spoof` for an attack
    of unnamed type, else the row's attack type."""
    attack = (row.get("attack_type") or "").strip()
    if label == "live":
        if attack.lower() not in _NO_ATTACK:
            counts["live_attack_type_ignored"] += 1
        return "live"
    return "spoof" if attack.lower() in _NO_ATTACK else attack


def _split_value(row: dict, where: str) -> str:
    split = (row.get("split") or "").strip().lower()
    if split not in SPLITS:
        raise ValueError(
            f"{where}: split {row.get('split')!r}; split must be one of "
            f"{', '.join(SPLITS)} (or drop the column to split by subject)"
        )
    return split


def _split_off_test(
    samples: list[Sample],
    csv_path: Path,
    test_subjects: Iterable[str] | None,
    test_fraction: float,
    seed: int,
) -> None:
    """Move the named test subjects (else a seeded fraction of the subjects) to `test`."""
    if test_subjects is not None:
        wanted = {str(s) for s in test_subjects}
        present = {s.subject for s in samples}
        unknown = sorted(wanted - present)
        if unknown:
            raise ValueError(
                f"{csv_path}: test_subjects {', '.join(unknown)} are not in the manifest "
                f"(subjects present: {', '.join(sorted(present)[:20])}"
                f"{' ...' if len(present) > 20 else ''})"
            )
    else:
        wanted = choose_subjects((s.subject for s in samples), test_fraction, seed)
    for sample in samples:
        if sample.subject in wanted:
            sample.split = "test"


def _check_subjects_known(samples: list[Sample], csv_path: Path) -> None:
    """Validation carved from train rows of unknown subject would share people with train and
    flatter every figure: refuse, and say how to give the manifest its own val rows."""
    unknown = sum(1 for s in samples if s.split == "train" and not s.subject)
    if unknown:
        raise ValueError(
            f"{csv_path}: {unknown} train rows have an empty subject, so a validation split "
            "carved from train would not be subject-disjoint; give the manifest val rows in its "
            "split column (people not in train), or fill in the subjects"
        )


def check_subject_overlap(samples: list[Sample], source: str | Path) -> None:
    """Raise ValueError naming the subjects that a manifest's split column puts in two splits."""
    overlap = subjects_in_two_splits(samples)
    if overlap:
        raise ValueError(
            f"{source}: the split column puts {len(overlap)} subject(s) in two splits: "
            f"{describe_overlap(overlap)}. Frames of one person in train and test inflate every "
            "figure; fix the split column, or pass --allow-subject-overlap to proceed anyway"
        )


def _video_frames(
    sample: Sample, frames_per_video: int | None, where: str, rel: str, counts: dict
) -> list[Sample] | SkippedInput:
    """The frame samples of a video row, or why it was skipped (an unreadable video)."""
    if not frames_per_video:
        raise ValueError(
            f"{where}: {rel} is a video; pass frames_per_video (prepare: --frames-per-video K) "
            "to take K evenly spaced frames of each video"
        )
    counts["videos"] = counts.get("videos", 0) + 1
    try:
        return frame_samples(sample, frames_per_video)
    except ImageError as err:
        counts["unreadable_video"] = counts.get("unreadable_video", 0) + 1
        return SkippedInput(path=sample.path, reason=f"unreadable video: {err}")

"""Subject-disjoint splits.

Frames of one person are near duplicates, so a held-out split that shares subjects with train
measures memory, not generalisation. Every held-out split in facepad (validation carved from train,
test carved from a manifest without a split column) is therefore chosen by subject, here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from facepad.data.records import Sample


def choose_subjects(subjects: Iterable[str], fraction: float, seed: int = 0) -> set[str]:
    """Pick about `fraction` of the distinct `subjects`, reproducibly for a given seed.

    The choice depends only on the set of subject ids and the seed (not on sample order). When
    `fraction > 0` at least one subject is chosen, and at least one is always left unchosen.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction}")
    pool = sorted(set(subjects))
    if fraction == 0.0 or len(pool) < 2:
        return set()
    count = min(max(1, round(fraction * len(pool))), len(pool) - 1)
    random.Random(seed).shuffle(pool)
    return set(pool[:count])


def split_by_subject(
    samples: list[Sample],
    fraction: float,
    seed: int = 0,
    source: str = "train",
    target: str = "val",
) -> set[str]:
    """Move about `fraction` of the subjects of split `source` to split `target`, in place.

    Returns the moved subjects. A subject is moved with all its `source` samples, so `source` and
    `target` share no subject afterwards.
    """
    chosen = choose_subjects((s.subject for s in samples if s.split == source), fraction, seed)
    if chosen:
        for sample in samples:
            if sample.split == source and sample.subject in chosen:
                sample.split = target
    return chosen


def split_counts(samples: Iterable[Sample]) -> dict[str, int]:
    """Samples, live, spoof and distinct subjects per split: `{"train": n, "train_live": ...}`."""
    counts: dict[str, int] = {}
    subjects: dict[str, set[str]] = {}
    for sample in samples:
        counts[sample.split] = counts.get(sample.split, 0) + 1
        key = f"{sample.split}_{sample.label}"
        counts[key] = counts.get(key, 0) + 1
        subjects.setdefault(sample.split, set()).add(sample.subject)
    for split, members in subjects.items():
        counts[f"{split}_subjects"] = len(members)
    return counts


def subjects_in_two_splits(samples: Iterable[Sample]) -> dict[str, list[str]]:
    """Subjects that appear in more than one split -> their splits (sorted)."""
    splits: dict[str, set[str]] = {}
    for sample in samples:
        splits.setdefault(sample.subject, set()).add(sample.split)
    return {subject: sorted(v) for subject, v in sorted(splits.items()) if len(v) > 1}


def describe_overlap(overlap: dict[str, list[str]], shown: int = 10) -> str:
    """'s1 (test+train), s2 (train+val) and 3 more': the first subjects of an overlap."""
    first = ", ".join(f"{s} ({'+'.join(v)})" for s, v in list(overlap.items())[:shown])
    more = f" and {len(overlap) - shown} more" if len(overlap) > shown else ""
    return first + more

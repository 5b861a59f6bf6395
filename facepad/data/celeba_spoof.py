"""CelebA-Spoof reader: label JSONs -> `ReadResult`, and the `_BB.txt` face box loader.

The label files are large (494,405 + 67,170 entries for intra_test), so they are parsed as a
stream of `"path": [44 ints]` entries instead of `json.load`, which would hold every vector as a
Python list at once. Only the fields facepad uses are decoded (DESIGN.md section 2):
`[40]` spoof type, `[41]` illumination, `[42]` environment, `[43]` live (0) / spoof (1).
Boxes are not read here (562k small files); `load_box` is called by prepare, one image at a time.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from facepad.data.records import (
    CELEBA_ENVIRONMENT,
    CELEBA_ILLUMINATION,
    CELEBA_SPOOF_TYPES,
    ReadResult,
    Sample,
    SkippedInput,
)
from facepad.data.split import split_by_subject, split_counts

# Protocol name -> folder under `metas/` holding train_label.json and test_label.json.
PROTOCOLS: dict[str, str] = {
    "intra_test": "intra_test",
    "protocol1": "protocol1",
    "protocol2/test_on_low_quality_device": "protocol2/test_on_low_quality_device",
    "protocol2/test_on_middle_quality_device": "protocol2/test_on_middle_quality_device",
    "protocol2/test_on_high_quality_device": "protocol2/test_on_high_quality_device",
}
PROTOCOL_ALIASES = {
    "protocol2_low": "protocol2/test_on_low_quality_device",
    "protocol2_middle": "protocol2/test_on_middle_quality_device",
    "protocol2_high": "protocol2/test_on_high_quality_device",
}
VECTOR_LENGTH = 44
BOX_FRAME = 224  # _BB.txt coordinates live in a 224x224 frame
IMAGE_EXTENSIONS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png"}

_EXPECTED_FORM = (
    'a JSON object mapping "Data/<train|test>/<subject>/<live|spoof>/<image>" '
    "to a list of 44 ints (CelebA-Spoof metas/<protocol>/<split>_label.json)"
)
# One `"key": [ ... ]` entry; the list body must hold no nested list.
_ENTRY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\[([^\[\]]*)\]')
_CHUNK_CHARS = 8 << 20
_MAX_ENTRY_CHARS = 1 << 20

# Attribute strings built once, so 500k samples share them instead of holding copies.
_TYPE_IDS = {i: str(i) for i in CELEBA_SPOOF_TYPES}


def resolve_protocol(protocol: str) -> str:
    """Canonical protocol name for `protocol` (also accepts `protocol2_low|middle|high`)."""
    name = PROTOCOL_ALIASES.get(protocol, protocol)
    if name not in PROTOCOLS:
        known = ", ".join(list(PROTOCOLS) + list(PROTOCOL_ALIASES))
        raise ValueError(f"unknown CelebA-Spoof protocol {protocol!r}; use one of: {known}")
    return name


def available_protocols(root: str | Path) -> list[str]:
    """Protocols whose label JSONs exist under `root/metas` (for error messages)."""
    metas = Path(root) / "metas"
    return [name for name, sub in PROTOCOLS.items() if (metas / sub / "train_label.json").is_file()]


def _check_root(root: Path, protocol: str) -> Path:
    """The protocol's label folder, or an error that says what is wrong and how to fix it."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"CelebA-Spoof root {root} does not exist or is not a folder; pass the folder that "
            "holds Data/ and metas/"
        )
    metas = root / "metas"
    if not metas.is_dir():
        hint = ""
        if (root / "CelebA_Spoof" / "metas").is_dir():
            hint = f" (it is in {root / 'CelebA_Spoof'}: pass that folder)"
        raise FileNotFoundError(
            f"{metas} not found{hint}; pass the CelebA-Spoof folder that holds Data/ and metas/"
        )
    folder = metas / PROTOCOLS[protocol]
    for name in ("train_label.json", "test_label.json"):
        if not (folder / name).is_file():
            there = available_protocols(root)
            raise FileNotFoundError(
                f"{folder / name} not found: protocol {protocol!r} is not in this copy of "
                f"CelebA-Spoof. Protocols present: {', '.join(there) if there else 'none'}"
            )
    return folder


def iter_label_entries(json_path: str | Path):
    """Yield `(key, list_body)` for each `"key": [list_body]` entry of a CelebA-Spoof label JSON.

    Streams the file in chunks (bounded memory). Raises ValueError naming the file when its
    structure is not CelebA-Spoof's: not an object, a value that is not a flat list, trailing junk.
    """

    def not_celeba(detail: str) -> ValueError:
        return ValueError(
            f"{json_path} is not a CelebA-Spoof label file ({detail}); expected {_EXPECTED_FORM}"
        )

    buffer = ""
    started = False
    with open(json_path, encoding="utf-8") as f:
        while True:
            chunk = f.read(_CHUNK_CHARS)
            buffer += chunk
            if not started:
                head = buffer.lstrip()
                if not head and chunk:
                    continue
                if not head.startswith("{"):
                    raise not_celeba(f"starts with {head[:30]!r}, not '{{'")
                started = True
            pos = 0
            for match in _ENTRY.finditer(buffer):
                gap = buffer[pos : match.start()]
                if gap.strip(" \t\r\n,{"):
                    raise not_celeba(f"unexpected text {gap.strip()[:60]!r}")
                key = match.group(1)
                if "\\" in key:
                    key = json.loads(f'"{key}"')
                yield key, match.group(2)
                pos = match.end()
            buffer = buffer[pos:]
            if not chunk:
                break
            if len(buffer) > _MAX_ENTRY_CHARS:
                raise not_celeba(f"no '\"path\": [ints]' entry in {len(buffer)} characters")
    if buffer.strip(" \t\r\n,{") != "}":
        raise not_celeba(f"unexpected text at the end: {buffer.strip()[:60]!r}")


def _list_dir(cache: dict[str, frozenset[str]], directory: str) -> frozenset[str]:
    """File names in `directory`, listed once: one scandir per folder instead of a stat per file."""
    names = cache.get(directory)
    if names is None:
        try:
            with os.scandir(directory) as it:
                names = frozenset(entry.name for entry in it)
        except (FileNotFoundError, NotADirectoryError):
            names = frozenset()
        cache[directory] = names
    return names


def read_celeba_spoof(
    root: str | Path,
    protocol: str = "intra_test",
    val_fraction: float = 0.1,
    seed: int = 0,
    check_files: bool = True,
) -> ReadResult:
    """Read one CelebA-Spoof protocol into samples; validation is carved from train by subject.

    `root` holds `Data/` and `metas/`. The JSON label wins over the live/spoof folder name (about
    2,000 train images disagree). Entries that cannot be used (bad vector, unexpected path, missing
    image when `check_files`) are skipped with a reason; every defect is counted in `counts`.
    """
    protocol = resolve_protocol(protocol)
    root = Path(root).expanduser().absolute()
    folder = _check_root(root, protocol)
    root_str = str(root)

    samples: list[Sample] = []
    skipped: list[SkippedInput] = []
    counts: dict[str, int] = {
        "entries": 0,
        "duplicate_entries": 0,
        "bad_vector": 0,
        "bad_path": 0,
        "missing_image": 0,
        "missing_box_file": 0,
        "label_folder_disagree": 0,
        "spoof_label_live_type": 0,
        "images_jpg": 0,
        "images_png": 0,
        "images_other": 0,
    }
    seen: set[str] = set()
    subjects: dict[str, set[str]] = {"train": set(), "test": set()}
    dir_cache: dict[str, frozenset[str]] = {}
    folders: dict[
        str, tuple
    ] = {}  # "Data/<split>/<subject>/<folder>" -> (abs dir, subject, folder)

    def skip(path: str, reason: str, count_key: str) -> None:
        skipped.append(SkippedInput(path=path, reason=reason))
        counts[count_key] += 1

    for split in ("train", "test"):
        json_path = folder / f"{split}_label.json"
        first_samples = len(samples)
        entries = 0
        first_problem = None
        for key, body in iter_label_entries(json_path):
            entries += 1
            if key in seen:
                skip(f"{root_str}/{key}", f"duplicate in {json_path.name}", "duplicate_entries")
                continue
            seen.add(key)
            # count commas and split off only the last 4 values: 500k entries, keep it cheap
            n_values = body.count(",") + 1 if body.strip() else 0
            try:
                if n_values != VECTOR_LENGTH:
                    raise ValueError(f"{n_values} values")
                type_id, light, env, spoof = map(int, body.rsplit(",", 4)[1:])
                if type_id not in CELEBA_SPOOF_TYPES or spoof not in (0, 1):
                    raise ValueError(f"spoof type {type_id}, live/spoof {spoof}")
            except ValueError as err:
                reason = f"label vector is not 44 ints with valid [40] and [43] ({err})"
                first_problem = first_problem or f"{key}: {reason}"
                skip(f"{root_str}/{key}", reason, "bad_vector")
                continue
            # folders repeat (~60 images each): parse and check each folder once
            head, _, name = key.rpartition("/")
            info = folders.get(head)
            if info is None:
                parts = head.split("/")
                ok = len(parts) == 4 and parts[0] == "Data" and parts[2]
                info = (f"{root_str}/{head}", parts[2], parts[3]) if ok else ()
                folders[head] = info
            if not info or not name:
                reason = "path is not Data/<split>/<subject>/<live|spoof>/<image>"
                first_problem = first_problem or f"{key}: {reason}"
                skip(f"{root_str}/{key}", reason, "bad_path")
                continue
            directory, subject, folder_label = info
            path = f"{directory}/{name}"
            dot = name.rfind(".")
            stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
            if check_files:
                names = _list_dir(dir_cache, directory)
                if name not in names:
                    skip(path, "image file missing", "missing_image")
                    continue
                if f"{stem}_BB.txt" not in names:
                    counts["missing_box_file"] += 1
            counts["images_" + IMAGE_EXTENSIONS.get(ext.lower(), "other")] += 1

            label = "spoof" if spoof else "live"
            if folder_label != label:
                counts["label_folder_disagree"] += 1
            if label == "live":
                attack_type = "live"
            elif type_id == 0:
                attack_type = "unknown"  # labelled spoof, but the type says live
                counts["spoof_label_live_type"] += 1
            else:
                attack_type = CELEBA_SPOOF_TYPES[type_id]
            subjects[split].add(subject)
            samples.append(
                Sample(
                    path=path,
                    label=label,
                    attack_type=attack_type,
                    subject=subject,
                    split=split,
                    box=None,
                    attributes={
                        "spoof_type_id": _TYPE_IDS[type_id],
                        "illumination": CELEBA_ILLUMINATION.get(light, "unknown"),
                        "environment": CELEBA_ENVIRONMENT.get(env, "unknown"),
                        "box_file": f"{directory}/{stem}_BB.txt",
                    },
                )
            )
        counts["entries"] += entries
        counts[f"entries_{split}"] = entries
        if entries == 0 or (len(samples) == first_samples and first_problem):
            raise ValueError(
                f"{json_path} holds no usable entry"
                + (f" (first problem: {first_problem})" if first_problem else "")
                + f"; expected {_EXPECTED_FORM}"
            )

    counts["subjects_in_train_and_test"] = len(subjects["train"] & subjects["test"])
    split_by_subject(samples, val_fraction, seed)
    counts.update(split_counts(samples))
    counts["samples"] = len(samples)
    counts["skipped"] = len(skipped)
    return ReadResult(samples=samples, skipped=skipped, counts=counts)


def load_box(
    box_file: str | Path, width: int, height: int
) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """The face box of one image in its own pixels, from its `_BB.txt` (224x224 frame).

    Returns `((x, y, w, h), None)`, clipped to the image, or `(None, problem)` with problem one of
    `box_file_missing`, `box_empty`, `box_unparsable`, `box_zero_area`, `box_outside_image`, so
    the caller can fall back to the face detector and count why.
    """
    try:
        text = Path(box_file).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None, "box_file_missing"
    line = text.strip().splitlines()[0] if text.strip() else ""
    if not line:
        return None, "box_empty"
    try:
        x, y, w, h = (float(v) for v in line.replace(",", " ").split()[:4])
    except ValueError:
        return None, "box_unparsable"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None, "box_unparsable"
    if w <= 0 or h <= 0:
        return None, "box_zero_area"
    sx, sy = width / BOX_FRAME, height / BOX_FRAME
    x0, y0 = max(0.0, x * sx), max(0.0, y * sy)
    x1, y1 = min(float(width), (x + w) * sx), min(float(height), (y + h) * sy)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None, "box_outside_image"
    return (x0, y0, x1 - x0, y1 - y0), None

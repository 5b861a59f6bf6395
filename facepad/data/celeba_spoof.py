"""CelebA-Spoof reader: label lists (JSON and TXT) -> `ReadResult`, and the `_BB.txt` box loader.

Each protocol folder `metas/<protocol>/` holds `<split>_label.json` (image -> 44-int vector) and/or
`<split>_label.txt` (`<image> <0|1>` lines, 1 = spoof), for split train and/or test. The JSONs
are large (494,405 + 67,170 entries for intra_test), so they are parsed as a stream of
`"path": [44 ints]` entries instead of `json.load`, which would hold every vector as a Python list
at once. Only the fields facepad uses are decoded: `[40]` spoof type, `[41]` illumination, `[42]`
environment, `[43]` live (0) / spoof (1). Boxes are not read here (562k small files); `load_box`
is called by prepare, one image at a time.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
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

# Protocol name -> folder under `metas/` holding its label lists.
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
SPLITS = ("train", "test")
LIST_KINDS = ("json", "txt")  # read in this order: the JSON first, the TXT adds what it lacks
VECTOR_LENGTH = 44
BOX_FRAME = 224  # _BB.txt coordinates live in a 224x224 frame
IMAGE_EXTENSIONS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png"}

_EXPECTED_FORM = (
    'a JSON object mapping "Data/<train|test>/<subject>/<live|spoof>/<image>" '
    "to a list of 44 ints (CelebA-Spoof metas/<protocol>/<split>_label.json)"
)
_EXPECTED_TXT = (
    "lines 'Data/<train|test>/<subject>/<live|spoof>/<image> <0|1>' (1 = spoof; CelebA-Spoof "
    "metas/<protocol>/<split>_label.txt)"
)
# One `"key": [ ... ]` entry; the list body must hold no nested list.
_ENTRY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\[([^\[\]]*)\]')
_CHUNK_CHARS = 8 << 20
_MAX_ENTRY_CHARS = 1 << 20

# Attribute strings built once, so 500k samples share them instead of holding copies.
_TYPE_IDS = {i: str(i) for i in CELEBA_SPOOF_TYPES}
_UNKNOWN = "unknown"
COUNT_KEYS = (
    "entries_json",
    "entries_txt",
    "txt_only",
    "json_txt_disagree",
    "duplicate_entries",
    "bad_vector",
    "bad_txt_line",
    "bad_path",
    "missing_image",
    "missing_box_file",
    "label_folder_disagree",
    "spoof_label_live_type",
    "images_jpg",
    "images_png",
    "images_other",
)


def resolve_protocol(protocol: str) -> str:
    """Canonical protocol name for `protocol` (also accepts `protocol2_low|middle|high`)."""
    name = PROTOCOL_ALIASES.get(protocol, protocol)
    if name not in PROTOCOLS:
        known = ", ".join(list(PROTOCOLS) + list(PROTOCOL_ALIASES))
        raise ValueError(f"unknown CelebA-Spoof protocol {protocol!r}; use one of: {known}")
    return name


def label_lists(folder: Path) -> dict[str, dict[str, Path]]:
    """The label lists present in a protocol folder: `{split: {"json"|"txt": path}}`."""
    lists: dict[str, dict[str, Path]] = {}
    for split in SPLITS:
        found = {kind: folder / f"{split}_label.{kind}" for kind in LIST_KINDS}
        lists[split] = {kind: path for kind, path in found.items() if path.is_file()}
    return lists


def available_protocols(root: str | Path) -> list[str]:
    """Protocols with at least one label list under `root/metas` (for error messages)."""
    metas = Path(root) / "metas"
    return [name for name, sub in PROTOCOLS.items() if any(label_lists(metas / sub).values())]


def _check_root(root: Path, protocol: str) -> dict[str, dict[str, Path]]:
    """The protocol's label lists, or an error that says what is wrong and how to fix it."""
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
    lists = label_lists(folder)
    if not any(lists.values()):
        there = available_protocols(root)
        raise FileNotFoundError(
            f"{folder} holds no label list (train_label.json/.txt, test_label.json/.txt): "
            f"protocol {protocol!r} is not in this copy of CelebA-Spoof. Protocols present: "
            f"{', '.join(there) if there else 'none'}"
        )
    return lists


def iter_label_entries(json_path: str | Path):
    """Yield `(key, list_body)` for each `"key": [list_body]` entry of a CelebA-Spoof label JSON.

    Streams the file in chunks (bounded memory); an empty file yields nothing. Raises ValueError
    naming the file when its structure is not CelebA-Spoof's: not an object, a value that is not
    a flat list, trailing junk.
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
                if not head:
                    return  # an empty file: a list with no entries
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


def iter_txt_entries(txt_path: str | Path) -> Iterator[tuple[int, str, int | None]]:
    """Yield `(line number, key, spoof)` for each non-blank line of a CelebA-Spoof label TXT.

    A line is `Data/<split>/<subject>/<live|spoof>/<image> <0|1>` (1 = spoof); for a line that is
    not, `spoof` is None and `key` is the line itself, so the caller can say which line is wrong.
    """
    with open(txt_path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 2 and fields[1] in ("0", "1"):
                yield number, fields[0], int(fields[1])
            else:
                yield number, line.strip()[:80], None


class _Collector:
    """Turns label-list entries into samples; skips and counts every entry it cannot use.

    Folders repeat (~60 images each), so each is parsed once and listed once with `os.scandir`:
    checking that 67k listed images exist costs one directory listing per folder, not a stat per
    image, and a folder that is absent (a partial download) costs one failed listing.
    """

    def __init__(self, root: Path, check_files: bool):
        self.root = str(root)
        self.check_files = check_files
        self.samples: list[Sample] = []
        self.skipped: list[SkippedInput] = []
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
        self.seen: set[str] = set()
        self.subjects: dict[str, set[str]] = {split: set() for split in SPLITS}
        self.first_problem: str | None = None
        self._listings: dict[str, frozenset[str]] = {}
        self._folders: dict[str, tuple] = {}  # "Data/<split>/<subject>/<folder>" -> parsed

    def skip(self, path: str, reason: str, count_key: str, malformed: bool = False) -> None:
        self.skipped.append(SkippedInput(path=path, reason=reason))
        self.counts[count_key] += 1
        if malformed and self.first_problem is None:
            self.first_problem = f"{path}: {reason}"

    def malformed(self) -> int:
        """Entries so far that are not in CelebA-Spoof's form (not merely absent on disk)."""
        return sum(self.counts[k] for k in ("bad_vector", "bad_path", "bad_txt_line"))

    def first_sighting(self, key: str, list_path: Path) -> bool:
        """True the first time `key` is listed; a repeat is skipped as a duplicate."""
        if key in self.seen:
            self.skip(f"{self.root}/{key}", f"duplicate in {list_path.name}", "duplicate_entries")
            return False
        self.seen.add(key)
        return True

    def _listing(self, directory: str) -> frozenset[str]:
        names = self._listings.get(directory)
        if names is None:
            try:
                with os.scandir(directory) as it:
                    names = frozenset(entry.name for entry in it)
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            self._listings[directory] = names
        return names

    def add(
        self, key: str, split: str, spoof: int, vector: tuple[int, int, int] | None, source: str
    ) -> None:
        """One listed image: `vector` is (spoof type, illumination, environment) from the JSON,
        or None for an image listed only in a TXT (its attributes are then "unknown")."""
        head, _, name = key.rpartition("/")
        info = self._folders.get(head)
        if info is None:
            parts = head.split("/")
            ok = len(parts) == 4 and parts[0] == "Data" and parts[2]
            info = (f"{self.root}/{head}", parts[2], parts[3]) if ok else ()
            self._folders[head] = info
        if not info or not name:
            reason = "path is not Data/<split>/<subject>/<live|spoof>/<image>"
            self.skip(f"{self.root}/{key}", reason, "bad_path", malformed=True)
            return
        directory, subject, folder_label = info
        path = f"{directory}/{name}"
        dot = name.rfind(".")
        stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
        if self.check_files:
            names = self._listing(directory)
            if name not in names:
                self.skip(path, "image file missing", "missing_image")
                return
            if f"{stem}_BB.txt" not in names:
                self.counts["missing_box_file"] += 1
        self.counts["images_" + IMAGE_EXTENSIONS.get(ext.lower(), "other")] += 1

        label = "spoof" if spoof else "live"
        if folder_label != label:
            self.counts["label_folder_disagree"] += 1
        if vector is None:
            attack_type = "live" if label == "live" else _UNKNOWN
            type_id = light = env = _UNKNOWN
        else:
            attack_type = self._attack_type(label, vector[0])
            type_id = _TYPE_IDS[vector[0]]
            light = CELEBA_ILLUMINATION.get(vector[1], _UNKNOWN)
            env = CELEBA_ENVIRONMENT.get(vector[2], _UNKNOWN)
        self.subjects[split].add(subject)
        attributes = {
            "spoof_type_id": type_id,
            "illumination": light,
            "environment": env,
            "label_source": source,
            "box_file": f"{directory}/{stem}_BB.txt",
        }
        self.samples.append(Sample(path, label, attack_type, subject, split, None, attributes))

    def _attack_type(self, label: str, type_id: int) -> str:
        if label == "live":
            return "live"
        if type_id == 0:
            self.counts["spoof_label_live_type"] += 1
            return _UNKNOWN  # labelled spoof, but the type says live
        return CELEBA_SPOOF_TYPES[type_id]


def _decode_vector(body: str) -> tuple[int, tuple[int, int, int]]:
    """(spoof 0/1, (spoof type, illumination, environment)) of a 44-int list body."""
    # count commas and split off only the last 4 values: 500k entries, keep it cheap
    n_values = body.count(",") + 1 if body.strip() else 0
    if n_values != VECTOR_LENGTH:
        raise ValueError(f"{n_values} values")
    type_id, light, env, spoof = map(int, body.rsplit(",", 4)[1:])
    if type_id not in CELEBA_SPOOF_TYPES or spoof not in (0, 1):
        raise ValueError(f"spoof type {type_id}, live/spoof {spoof}")
    return spoof, (type_id, light, env)


def _read_json(c: _Collector, json_path: Path, split: str, keep: bool) -> dict[str, int | None]:
    """Add the samples of one label JSON; returns its labels (key -> spoof, None when the
    vector is bad) when `keep`, for the TXT of the same split to be checked against."""
    labels: dict[str, int | None] = {}
    for key, body in iter_label_entries(json_path):
        c.counts["entries_json"] += 1
        if not c.first_sighting(key, json_path):
            continue
        try:
            spoof, vector = _decode_vector(body)
        except ValueError as err:
            reason = f"label vector is not 44 ints with valid [40] and [43] ({err})"
            c.skip(f"{c.root}/{key}", reason, "bad_vector", malformed=True)
            if keep:
                labels[key] = None
            continue
        if keep:
            labels[key] = spoof
        c.add(key, split, spoof, vector, "json")
    return labels


def _read_txt(c: _Collector, txt_path: Path, split: str, json_labels: dict) -> None:
    """Add the images of one label TXT that its split's JSON does not already give."""
    for number, key, spoof in iter_txt_entries(txt_path):
        c.counts["entries_txt"] += 1
        if spoof is None:
            reason = f"line {number} is not '<path> <0|1>': {key!r}"
            c.skip(str(txt_path), reason, "bad_txt_line", malformed=True)
            continue
        if key in json_labels:
            if json_labels[key] is not None and json_labels[key] != spoof:
                c.counts["json_txt_disagree"] += 1  # the JSON wins, as it gives the attributes
            continue
        if not c.first_sighting(key, txt_path):
            continue
        c.counts["txt_only"] += 1
        c.add(key, split, spoof, None, "txt")


def read_celeba_spoof(
    root: str | Path,
    protocol: str = "intra_test",
    val_fraction: float = 0.1,
    seed: int = 0,
    check_files: bool = True,
) -> ReadResult:
    """Read one CelebA-Spoof protocol into samples; validation is carved from train by subject.

    `root` holds `Data/` and `metas/`. Each split's labels come from `<split>_label.json` and/or
    `<split>_label.txt`: the JSON's 44-int vector gives label and attributes; an image listed
    only in the TXT gets its label from it and "unknown" spoof type, illumination and
    environment (attribute `label_source` says which list gave a sample). A protocol may hold a
    test list only (evaluating a trained model). The label wins over the live/spoof folder name
    (about 2,000 train images disagree). Entries that cannot be used (bad vector or line,
    unexpected path, missing image when `check_files`) are skipped with a reason and counted.
    """
    protocol = resolve_protocol(protocol)
    root = Path(root).expanduser().absolute()
    lists = _check_root(root, protocol)
    c = _Collector(root, check_files)
    for split in SPLITS:
        before = len(c.seen)
        json_labels: dict[str, int | None] = {}
        for kind, path in lists[split].items():
            entries, malformed = c.counts[f"entries_{kind}"], c.malformed()
            if kind == "json":
                json_labels = _read_json(c, path, split, keep="txt" in lists[split])
            else:
                _read_txt(c, path, split, json_labels)
            entries = c.counts[f"entries_{kind}"] - entries
            if entries and c.malformed() - malformed == entries:
                expected = _EXPECTED_FORM if kind == "json" else _EXPECTED_TXT
                raise ValueError(
                    f"{path} holds no usable entry (first problem: {c.first_problem}); "
                    f"expected {expected}"
                )
        c.counts[f"entries_{split}"] = len(c.seen) - before
    c.counts["entries"] = len(c.seen)
    _check_result(c, lists)

    c.counts["subjects_in_train_and_test"] = len(c.subjects["train"] & c.subjects["test"])
    split_by_subject(c.samples, val_fraction, seed)
    c.counts.update(split_counts(c.samples))
    c.counts["samples"] = len(c.samples)
    c.counts["skipped"] = len(c.skipped)
    return ReadResult(samples=c.samples, skipped=c.skipped, counts=c.counts)


def _check_result(c: _Collector, lists: dict[str, dict[str, Path]]) -> None:
    files = ", ".join(str(p) for split in SPLITS for p in lists[split].values())
    if not c.counts["entries"]:
        raise ValueError(f"no entry in the label lists ({files}); expected {_EXPECTED_FORM}")
    if not c.samples and c.counts["missing_image"] == c.counts["entries"]:
        raise FileNotFoundError(
            f"none of the {c.counts['entries']} images listed in {files} exists under "
            f"{c.root}/Data; pass the CelebA-Spoof folder that holds Data/ and metas/"
        )


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

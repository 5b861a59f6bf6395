"""`facepad manifest`: manifest CSVs from the documented layouts of two video benchmarks.

- Replay-Attack (Idiap): `{train,devel,test}/real/*.mov` and
  `{train,devel,test}/attack/{fixed,hand}/*.mov`; real
  `client001_session01_webcam_authenticate_adverse_1.mov`, attacks
  `attack_<print|mobile|highdef>_client001_session01_<device>_<photo|video>_<light>.mov`.
  Splits train, devel -> val, test; attack types print_photo, mobile_photo, mobile_video,
  highdef_photo, highdef_video; columns support (real|fixed|hand) and light (controlled|adverse).
- OULU-NPU: videos `Phone_Session_User_File.avi` anywhere under ROOT (File 1 live, 2-3 print,
  4-5 replay) and protocol lists `Protocols/Protocol_N/{Train,Dev,Test}.txt` of lines
  `+1,1_1_01_1` (protocols 3 and 4: `Train_K.txt` ... per left-out phone K = 1..6).
  Splits Train, Dev -> val, Test; columns phone, session, instrument (print1/2, replay1/2).

The manifests name the videos (paths relative to the CSV); `facepad prepare --manifest CSV
--frames-per-video K` then takes K evenly spaced frames of each. Subjects are the clients/users,
so splits and bootstrap intervals group by person; `video` groups each video's frames.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path

COLUMNS = ("path", "label", "attack_type", "subject", "split", "video")
REPLAY_SPLITS = {"train": "train", "devel": "val", "test": "test"}
REPLAY_REAL = re.compile(r"^(client\d+)_session\d+_webcam_authenticate_(controlled|adverse)_\d+$")
REPLAY_ATTACK = re.compile(
    r"^attack_(print|mobile|highdef)_(client\d+)_session\d+_\w+?_(photo|video)_"
    r"(controlled|adverse)$"
)
OULU_SPLITS = {"Train": "train", "Dev": "val", "Test": "test"}
OULU_NAME = re.compile(r"^([1-6])_([1-3])_(\d{2})_([1-5])$")
OULU_INSTRUMENT = {1: "live", 2: "print1", 3: "print2", 4: "replay1", 5: "replay2"}


def replay_attack_rows(root: str | Path) -> tuple[list[dict], list[Path]]:
    """Rows for every Replay-Attack video under `root`, and the .mov files whose names do not
    follow the database's naming (left out; the caller reports them)."""
    root = Path(root)
    rows, unknown = [], []
    for folder, split in REPLAY_SPLITS.items():
        places = [("real", "real", root / folder / "real")]
        places += [("attack", s, root / folder / "attack" / s) for s in ("fixed", "hand")]
        for kind, support, where in places:
            for video in sorted(where.glob("*.mov")):
                row = _replay_row(video, kind, support, folder, split)
                if row is None:
                    unknown.append(video)
                else:
                    rows.append(row)
    if not rows:
        raise FileNotFoundError(
            f"no Replay-Attack videos under {root}: expected {{train,devel,test}}/real/*.mov and "
            f"{{train,devel,test}}/attack/{{fixed,hand}}/*.mov"
        )
    return rows, unknown


def _replay_row(video: Path, kind: str, support: str, folder: str, split: str) -> dict | None:
    real = REPLAY_REAL.match(video.stem) if kind == "real" else None
    attack = REPLAY_ATTACK.match(video.stem) if kind == "attack" else None
    if real:
        label, attack_type, subject, light = "live", "live", real.group(1), real.group(2)
    elif attack:
        medium, subject, media, light = attack.groups()
        label = "spoof"
        attack_type = "print_photo" if medium == "print" else f"{medium}_{media}"
    else:
        return None
    return {
        "path": video, "label": label, "attack_type": attack_type, "subject": subject,
        "split": split, "video": f"{folder}__{kind}__{support}__{video.stem}",
        "support": support, "light": light,
    }  # fmt: skip


def oulu_list_files(root: Path, protocol: int, subprotocol: int | None) -> dict[str, Path]:
    """{split: protocol list file} of an OULU-NPU protocol (3 and 4 need the sub-protocol)."""
    if protocol not in (1, 2, 3, 4):
        raise ValueError(f"OULU-NPU protocol {protocol}: choose 1, 2, 3 or 4")
    if protocol in (3, 4) and subprotocol not in range(1, 7):
        raise ValueError(
            f"OULU-NPU protocol {protocol} has one list per left-out phone: give --subprotocol 1-6"
        )
    if protocol in (1, 2) and subprotocol is not None:
        raise ValueError(f"OULU-NPU protocol {protocol} has no sub-protocols; drop --subprotocol")
    folder = root / "Protocols" / f"Protocol_{protocol}"
    suffix = f"_{subprotocol}" if protocol in (3, 4) else ""
    files = {split: folder / f"{name}{suffix}.txt" for name, split in OULU_SPLITS.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"OULU-NPU protocol list(s) {', '.join(missing)} not found; expected "
            f"ROOT/Protocols/Protocol_N/Train{suffix}.txt, Dev{suffix}.txt, Test{suffix}.txt"
        )
    return files


def oulu_npu_rows(
    root: str | Path, protocol: int, subprotocol: int | None = None
) -> tuple[list[dict], list[str]]:
    """Rows of one OULU-NPU protocol, and the listed video ids with no .avi under `root`."""
    root = Path(root)
    lists = oulu_list_files(root, protocol, subprotocol)
    videos = {p.stem: p for p in root.rglob("*.avi")}
    rows, missing = [], []
    for split, list_file in lists.items():
        for line_no, sign, name in _protocol_lines(list_file):
            where = f"{list_file} line {line_no}"
            match = OULU_NAME.match(name)
            if not match:
                raise ValueError(
                    f"{where}: {name!r} is not Phone_Session_User_File (e.g. 1_1_01_1)"
                )
            phone, session, user, file_id = match.groups()
            live = file_id == "1"
            if (sign > 0) != live:
                raise ValueError(
                    f"{where}: label {sign:+d} for {name}, but file {file_id} is "
                    f"{'live' if live else 'an attack'} (File 1 live, 2-3 print, 4-5 replay)"
                )
            if name not in videos:
                missing.append(name)
                continue
            instrument = OULU_INSTRUMENT[int(file_id)]
            rows.append({
                "path": videos[name], "label": "live" if live else "spoof",
                "attack_type": "live" if live else instrument[:-1], "subject": user,
                "split": split, "video": name, "phone": phone, "session": session,
                "instrument": instrument,
            })  # fmt: skip
    if not rows:
        listed = ", ".join(map(str, lists.values()))
        raise FileNotFoundError(
            f"none of the videos listed in {listed} is under {root} (looked for <id>.avi in all "
            "its folders)"
        )
    return rows, missing


def _protocol_lines(path: Path) -> Iterable[tuple[int, int, str]]:
    """(line number, +1/-1/-2, video id) of a protocol list; blank lines skipped."""
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        label, sep, name = line.strip().partition(",")
        try:
            sign = int(label)
        except ValueError:
            sign = 0
        if not sep or sign == 0:
            raise ValueError(f"{path} line {line_no}: {line!r} is not like +1,1_1_01_1")
        yield line_no, sign, name.strip()


def write_manifest(rows: list[dict], out: str | Path) -> Path:
    """Write rows as a manifest CSV, video paths relative to the CSV's folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = [k for k in rows[0] if k not in COLUMNS]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            rel = os.path.relpath(Path(row["path"]).absolute(), out.parent.absolute())
            writer.writerow({**row, "path": Path(rel).as_posix()})
    return out


def _summary(rows: list[dict], out: Path) -> None:
    counts: dict[str, int] = {}
    for row in rows:
        key = f"{row['split']}/{row['attack_type']}"
        counts[key] = counts.get(key, 0) + 1
    subjects = {(r["split"], r["subject"]) for r in rows}
    print(f"wrote {out}: {len(rows)} videos of {len(subjects)} split/subject pairs")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"  next: facepad prepare --manifest {out} --frames-per-video 5 --out STORE")


def register(subparsers) -> None:
    """Add `facepad manifest replay-attack|oulu-npu`."""
    p = subparsers.add_parser(
        "manifest",
        help="write a manifest CSV for a video benchmark (Replay-Attack, OULU-NPU)",
        description="Write a manifest CSV (one row per video) from a benchmark's documented "
        "layout; then `facepad prepare --manifest CSV --frames-per-video K`.",
    )
    kinds = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    r = kinds.add_parser("replay-attack", help="Idiap Replay-Attack: {train,devel,test}/...")
    r.add_argument("root", help="folder holding train/, devel/, test/")
    r.add_argument("--out", required=True, help="manifest CSV to write")
    r.set_defaults(func=_cmd_replay)
    o = kinds.add_parser("oulu-npu", help="OULU-NPU: *.avi and Protocols/Protocol_N/*.txt")
    o.add_argument("root", help="folder holding the videos and Protocols/")
    o.add_argument("--protocol", type=int, required=True, choices=[1, 2, 3, 4])
    o.add_argument("--subprotocol", type=int, default=None, help="protocols 3, 4: phone 1-6")
    o.add_argument("--out", required=True, help="manifest CSV to write")
    o.set_defaults(func=_cmd_oulu)


def _cmd_replay(args: argparse.Namespace) -> int:
    rows, unknown = replay_attack_rows(args.root)
    if unknown:
        print(f"warning: {len(unknown)} .mov files do not follow Replay-Attack's naming and are "
              f"left out, e.g. {unknown[0]}")  # fmt: skip
    _summary(rows, write_manifest(rows, args.out))
    return 0


def _cmd_oulu(args: argparse.Namespace) -> int:
    rows, missing = oulu_npu_rows(args.root, args.protocol, args.subprotocol)
    if missing:
        print(f"warning: {len(missing)} listed videos are not under {args.root} and are left out, "
              f"e.g. {missing[0]}.avi")  # fmt: skip
    _summary(rows, write_manifest(rows, args.out))
    return 0

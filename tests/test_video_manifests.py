"""`facepad manifest`: Replay-Attack and OULU-NPU layouts on tiny trees of generated videos."""

from __future__ import annotations

import csv

import pytest
from _video_helpers import write_video

from facepad.cli import main
from facepad.data.manifest import read_manifest
from facepad.data.video_manifests import oulu_npu_rows, replay_attack_rows

REPLAY = [
    "train/real/client001_session01_webcam_authenticate_adverse_1.mov",
    "train/real/client001_session01_webcam_authenticate_controlled_2.mov",
    "train/attack/fixed/attack_highdef_client001_session01_highdef_photo_adverse.mov",
    "train/attack/hand/attack_print_client001_session01_highdef_photo_controlled.mov",
    "train/attack/hand/attack_mobile_client001_session01_mobile_video_controlled.mov",
    "devel/real/client002_session01_webcam_authenticate_controlled_1.mov",
    "devel/attack/fixed/attack_mobile_client002_session01_mobile_photo_adverse.mov",
    "test/real/client003_session01_webcam_authenticate_adverse_1.mov",
    "test/attack/hand/attack_highdef_client003_session01_highdef_video_adverse.mov",
]


@pytest.fixture
def replay_root(tmp_path):
    root = tmp_path / "replayattack"
    for rel in REPLAY:
        write_video(root / rel, n_frames=6)
    write_video(root / "train" / "attack" / "hand" / "my_own_clip.mov", n_frames=6)
    return root


def test_replay_attack_names_splits_and_types(replay_root):
    rows, unknown = replay_attack_rows(replay_root)
    assert [p.name for p in unknown] == ["my_own_clip.mov"]
    by_video = {r["video"]: r for r in rows}
    assert len(rows) == 9
    row = by_video["train__attack__hand__attack_print_client001_session01_highdef_photo_controlled"]
    assert (row["label"], row["attack_type"], row["subject"], row["split"]) == (
        "spoof", "print_photo", "client001", "train",
    )  # fmt: skip
    assert (row["support"], row["light"]) == ("hand", "controlled")
    live = by_video["devel__real__real__client002_session01_webcam_authenticate_controlled_1"]
    assert (live["label"], live["attack_type"], live["split"], live["support"]) == (
        "live", "live", "val", "real",
    )  # fmt: skip
    types = {r["attack_type"] for r in rows if r["label"] == "spoof"}
    assert types == {
        "print_photo",
        "mobile_photo",
        "mobile_video",
        "highdef_photo",
        "highdef_video",
    }


def test_replay_attack_cli_then_reader_takes_frames(replay_root, tmp_path, capsys):
    out = tmp_path / "manifests" / "replay.csv"
    assert main(["manifest", "replay-attack", str(replay_root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 .mov files do not follow" in printed and "--frames-per-video" in printed
    with open(out, newline="") as f:
        first = next(csv.DictReader(f))
    assert first["path"].startswith("../replayattack/")  # relative to the CSV
    result = read_manifest(out, frames_per_video=3)
    assert len(result.samples) == 27
    assert {s.split for s in result.samples} == {"train", "val", "test"}
    assert {s.attributes["frame"] for s in result.samples} == {"0", "3", "5"}  # 2.5 rounds up
    assert {s.attributes["light"] for s in result.samples} == {"adverse", "controlled"}
    with pytest.raises(FileNotFoundError, match="no Replay-Attack videos"):
        replay_attack_rows(tmp_path / "empty")


def write_oulu(root, lists: dict[str, list[str]], videos: list[str]):
    for name in videos:
        folder = {"0": "Train_files", "2": "Dev_files"}.get(name.split("_")[2][0], "Test_files")
        write_video(root / folder / f"{name}.avi", n_frames=5)
    for rel, lines in lists.items():
        path = root / "Protocols" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


def oulu_lines(names):
    return [f"{'+1' if n.endswith('_1') else '-1' if n[-1] in '23' else '-2'},{n}" for n in names]


TRAIN = ["1_1_01_1", "1_1_01_2", "1_1_01_4", "2_1_02_1", "2_1_02_5"]
DEV = ["1_1_21_1", "1_1_21_3"]
TEST = ["1_3_36_1", "1_3_36_5"]


def test_oulu_protocol_1(tmp_path):
    root = tmp_path / "oulu"
    lists = {"Protocol_1/Train.txt": oulu_lines(TRAIN), "Protocol_1/Dev.txt": oulu_lines(DEV),
             "Protocol_1/Test.txt": oulu_lines(TEST + ["6_3_55_1"])}  # fmt: skip
    write_oulu(root, lists, TRAIN + DEV + TEST)
    rows, missing = oulu_npu_rows(root, 1)
    assert missing == ["6_3_55_1"] and len(rows) == 9
    by_video = {r["video"]: r for r in rows}
    assert by_video["1_1_01_4"]["attack_type"] == "replay"
    assert by_video["1_1_01_4"]["instrument"] == "replay1"
    assert by_video["1_1_21_3"]["attack_type"] == "print" and by_video["1_1_21_3"]["split"] == "val"
    assert by_video["1_3_36_1"]["label"] == "live" and by_video["1_3_36_1"]["subject"] == "36"
    assert (by_video["2_1_02_5"]["phone"], by_video["2_1_02_5"]["session"]) == ("2", "1")
    out = tmp_path / "oulu_p1.csv"
    assert main(["manifest", "oulu-npu", str(root), "--protocol", "1", "--out", str(out)]) == 0
    result = read_manifest(out, frames_per_video=2)
    assert len(result.samples) == 18
    assert {s.split for s in result.samples} == {"train", "val", "test"}


def test_oulu_protocol_3_needs_its_phone_list_and_checks_labels(tmp_path):
    root = tmp_path / "oulu"
    lists = {f"Protocol_3/{n}_2.txt": oulu_lines(TRAIN if n == "Train" else DEV)
             for n in ("Train", "Dev", "Test")}  # fmt: skip
    write_oulu(root, lists, TRAIN + DEV)
    rows, _ = oulu_npu_rows(root, 3, 2)
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    with pytest.raises(ValueError, match="--subprotocol 1-6"):
        oulu_npu_rows(root, 3)
    with pytest.raises(FileNotFoundError, match="Train_1.txt"):
        oulu_npu_rows(root, 3, 1)
    (root / "Protocols/Protocol_3/Dev_2.txt").write_text("+1,1_1_21_3\n")  # a print called live
    with pytest.raises(ValueError, match="Dev_2.txt line 1: label \\+1 for 1_1_21_3"):
        oulu_npu_rows(root, 3, 2)
    (root / "Protocols/Protocol_3/Dev_2.txt").write_text("live 1_1_21_1\n")
    with pytest.raises(ValueError, match="not like"):
        oulu_npu_rows(root, 3, 2)

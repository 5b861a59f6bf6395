"""Manifest CSV reader: columns, labels, subject splits, errors, and the real nuaa-dev set."""

from __future__ import annotations

from collections import Counter

import pytest
from _readers_helpers import write_image

from facepad.data.manifest import read_manifest


def write_manifest(root, header, rows, make_images=True):
    """A CSV under `root` whose `path` column images exist (unless listed as missing)."""
    lines = [header] + rows
    for row in rows:
        rel = row.split(",")[0]
        if make_images and "missing" not in rel:
            write_image(root / rel)
    path = root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def rows_for(subjects, per_subject=2):
    rows = []
    for subject in subjects:
        for i in range(per_subject):
            rows.append(f"img/{subject}/live_{i}.jpg,live,none,{subject},{i}")
            rows.append(f"img/{subject}/spoof_{i}.png,spoof,print,{subject},{i}")
    return rows


HEADER = "path,label,attack_type,subject,session"


def test_tiny_manifest_with_test_subjects(tmp_path):
    csv = write_manifest(tmp_path, HEADER, rows_for(["s1", "s2", "s3", "s4", "s5"]))
    result = read_manifest(csv, val_fraction=0.25, seed=0, test_subjects=["s5"])
    by_split = {}
    for s in result.samples:
        by_split.setdefault(s.split, set()).add(s.subject)
    assert by_split["test"] == {"s5"}
    assert len(by_split["val"]) == 1 and len(by_split["train"]) == 3  # round(0.25 * 4)
    assert not by_split["val"] & by_split["train"]
    first = result.samples[0]
    assert first.path == str(tmp_path / "img/s1/live_0.jpg")
    assert (first.label, first.attack_type, first.attributes) == ("live", "live", {"session": "0"})
    assert result.samples[1].attack_type == "print"
    assert result.counts["live"] == 10 and result.counts["spoof"] == 10


def test_test_fraction_split_is_seeded_and_subject_disjoint(tmp_path):
    subjects = [f"p{i}" for i in range(10)]
    csv = write_manifest(tmp_path, HEADER, rows_for(subjects, 1))
    a = read_manifest(csv, val_fraction=0.2, seed=4, test_fraction=0.3)
    b = read_manifest(csv, val_fraction=0.2, seed=4, test_fraction=0.3)
    assert [s.split for s in a.samples] == [s.split for s in b.samples]
    groups = {}
    for s in a.samples:
        groups.setdefault(s.split, set()).add(s.subject)
    assert (len(groups["test"]), len(groups["val"]), len(groups["train"])) == (3, 1, 6)
    assert all(not groups[x] & groups[y] for x, y in [("test", "val"), ("test", "train")])


def test_split_column_is_used_and_val_carved_when_absent(tmp_path):
    rows = [
        "a/1.jpg,live,,s1,train",
        "a/2.jpg,spoof,replay,s2,train",
        "a/3.jpg,spoof,,s3,train",
        "a/4.jpg,live,,s4,test",
    ]
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    with pytest.warns(UserWarning, match="test_subjects is ignored"):
        result = read_manifest(csv, val_fraction=0.3, test_subjects=["s1"])
    splits = Counter(s.split for s in result.samples)
    assert splits == {"train": 2, "val": 1, "test": 1}
    assert [s.attack_type for s in result.samples] == ["live", "replay", "spoof", "live"]
    rows[0] = "a/1.jpg,live,,s1,val"
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    assert Counter(s.split for s in read_manifest(csv).samples) == {"train": 2, "val": 1, "test": 1}


def test_no_subject_column_warns_and_uses_one_subject_per_image(tmp_path):
    csv = write_manifest(tmp_path, "path,label", [f"x/{i}.jpg,live" for i in range(10)])
    with pytest.warns(UserWarning, match="no subject column"):
        result = read_manifest(csv, val_fraction=0.1, test_fraction=0.2)
    assert len({s.subject for s in result.samples}) == 10
    assert Counter(s.split for s in result.samples) == {"train": 7, "test": 2, "val": 1}


def test_missing_files_are_skipped_with_reason(tmp_path):
    rows = ["a/1.jpg,live,,s1,x", "a/missing.jpg,spoof,print,s1,x", "a/2.jpg,spoof,,s2,x"]
    csv = write_manifest(tmp_path, HEADER, rows)
    result = read_manifest(csv, val_fraction=0.0, test_fraction=0.0)
    assert result.counts["missing_image"] == 1 and len(result.samples) == 2
    assert result.skipped[0].path.endswith("a/missing.jpg")
    assert result.skipped[0].reason == "image file missing"


def test_missing_columns_error_names_file_columns_and_header(tmp_path):
    csv = write_manifest(tmp_path, "file,class", ["a.jpg,live"], make_images=False)
    with pytest.raises(ValueError) as err:
        read_manifest(csv)
    msg = str(err.value)
    assert str(csv) in msg and "path, label" in msg and "path,label[,attack_type" in msg


@pytest.mark.parametrize(
    "row, fragment",
    [
        ("a.jpg,attack,print,s1", "line 2: label 'attack'"),
        ("a.jpg,,print,s1", "label must be live or spoof"),
        ("a.jpg,live,print,", "empty subject"),
        ("a.jpg,live,none,s1,extra", "more fields"),
        (",live,none,s1", "empty path"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, fragment):
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,attack_type,subject\n" + row + "\n")
    with pytest.raises(ValueError) as err:
        read_manifest(csv)
    assert fragment in str(err.value) and str(csv) in str(err.value)


def test_bad_split_value_and_unknown_test_subjects(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,subject,split\na.jpg,live,s1,dev\n")
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        read_manifest(csv)
    csv = write_manifest(tmp_path, HEADER, rows_for(["s1", "s2"], 1))
    with pytest.raises(ValueError, match="test_subjects s9 are not in the manifest"):
        read_manifest(csv, test_subjects=["s9"])


def test_missing_csv_and_empty_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="path,label"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match="no rows"):
        read_manifest(tmp_path / "empty.csv")


def test_nuaa_dev(nuaa_dev):
    result = read_manifest(nuaa_dev / "manifest.csv", test_subjects=["0007", "0008"])
    assert (result.counts["live"], result.counts["spoof"]) == (735, 1180)
    assert result.skipped == []
    subjects = {}
    for s in result.samples:
        subjects.setdefault(s.split, set()).add(s.subject)
    assert subjects["test"] == {"0007", "0008"}
    assert subjects["train"] | subjects["val"] == {f"000{i}" for i in range(1, 7)}
    assert len(subjects["val"]) == 1 and not subjects["val"] & subjects["train"]
    assert {s.attack_type for s in result.samples} == {"live", "print"}
    assert set(result.samples[0].attributes) == {"session", "md5"}


def test_split_column_with_a_subject_in_two_splits_is_an_error(tmp_path):
    rows = [
        "a/1.jpg,live,,s1,train",
        "a/2.jpg,spoof,print,s1,test",  # s1 in train and test
        "a/3.jpg,live,,s2,train",
        "a/4.jpg,spoof,print,s3,val",
        "a/5.jpg,live,,s3,test",  # s3 in val and test
        "a/6.jpg,live,,s4,test",
    ]
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    with pytest.raises(ValueError) as err:
        read_manifest(csv)
    msg = str(err.value)
    assert "2 subject(s)" in msg and "s1 (test+train)" in msg and "s3 (test+val)" in msg
    assert str(csv) in msg and "--allow-subject-overlap" in msg
    result = read_manifest(csv, allow_subject_overlap=True)
    assert Counter(s.split for s in result.samples) == {"train": 2, "val": 1, "test": 3}


def test_cli_refuses_subject_overlap_unless_allowed(tmp_path, capsys):
    from facepad.cli import main

    rows = ["a/1.jpg,live,,s1,train", "a/2.jpg,spoof,print,s1,test"]
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    assert main(["prepare", "--manifest", str(csv), "--out", str(tmp_path / "s")]) == 2
    assert "s1 (test+train)" in capsys.readouterr().err


def test_split_column_can_be_ignored_to_use_every_subject(tmp_path):
    rows = [f"a/{i}.jpg,{'live' if i % 2 else 'spoof'},,s{i},{'test' if i > 5 else 'train'}"
            for i in range(8)]  # fmt: skip
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    kept = Counter(s.split for s in read_manifest(csv, val_fraction=0.25).samples)
    assert kept == {"train": 4, "val": 2, "test": 2}  # the column: s6, s7 test; val carved
    pooled = read_manifest(csv, val_fraction=0.25, use_split_column=False, test_fraction=0.0)
    splits = Counter(s.split for s in pooled.samples)
    assert splits == {"train": 6, "val": 2}  # every subject in train or val, none in test
    val = {s.subject for s in pooled.samples if s.split == "val"}
    assert not val & {s.subject for s in pooled.samples if s.split == "train"}


def test_a_split_map_renames_splits_before_validation_is_carved(tmp_path):
    rows = [f"{s}_{k}.jpg,{lab},none,{s},{split}" for s, split in
            (("s1", "train"), ("s2", "train"), ("s3", "train"), ("s4", "val"))
            for k, lab in enumerate(("live", "spoof"))]  # fmt: skip
    csv = write_manifest(tmp_path, "path,label,attack_type,subject,split", rows)
    result = read_manifest(csv, val_fraction=0.34, split_map={"val": "test"})
    by_split = {}
    for s in result.samples:
        by_split.setdefault(s.split, set()).add(s.subject)
    assert by_split["test"] == {"s4"}  # the old val split
    assert len(by_split["val"]) == 1 and by_split["val"] < {"s1", "s2", "s3"}  # carved by subject
    with pytest.raises(ValueError, match="split map val=dev"):
        read_manifest(csv, split_map={"val": "dev"})

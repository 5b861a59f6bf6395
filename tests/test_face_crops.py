"""Sets that ship as face crops (celeba-spoof-mini, casia-fasd-train): `prepare --face-crops` on
a few real crops, the framing it measures, unknown subjects, and validation never carved from
them. Skips where the datasets are absent ($FACEPAD_DATA)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import DEV_DATA

from facepad.data.manifest import read_manifest
from facepad.data.prepare import measured_crop_scale, prepare_store

CELEBA_MINI = DEV_DATA / "celeba-spoof-mini"
CASIA = DEV_DATA / "casia-fasd-train"


def subset_manifest(root: Path, out: Path, per_split_label: int) -> Path:
    """A manifest of the first rows of each (split, label) of `root`'s manifest, with absolute
    paths (the images stay where they are)."""
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"{root.name} not found at {root} (set FACEPAD_DATA)")
    with open(root / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows, taken = reader.fieldnames, [], {}
        for row in reader:
            key = (row["split"], row["label"])
            if taken.get(key, 0) < per_split_label:
                taken[key] = taken.get(key, 0) + 1
                rows.append({**row, "path": str(root / row["path"])})
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


@pytest.fixture(scope="module")
def celeba_manifest(tmp_path_factory) -> Path:
    return subset_manifest(CELEBA_MINI, tmp_path_factory.mktemp("m") / "celeba.csv", 4)


def test_unknown_train_subjects_are_kept_and_counted(celeba_manifest):
    result = read_manifest(celeba_manifest)
    train = [s for s in result.samples if s.split == "train"]
    assert train and all(s.subject == "" for s in train)
    assert result.counts["unknown_subject"] == len(train)
    assert {s.split for s in result.samples} == {"train", "val", "test"}  # the manifest's own
    assert all(s.subject for s in result.samples if s.split != "train")


def test_validation_is_never_carved_from_unknown_subjects(celeba_manifest, tmp_path):
    rows = celeba_manifest.read_text().splitlines()
    no_val = tmp_path / "no_val.csv"
    no_val.write_text("\n".join(r for r in rows if ",val," not in r) + "\n")
    with pytest.raises(ValueError, match="empty subject.*not be subject-disjoint"):
        read_manifest(no_val)


@pytest.mark.parametrize("box", ["dataset", "detector"])
def test_face_crops_prepare_with_their_framing_measured(celeba_manifest, tmp_path, box, capsys):
    result = read_manifest(celeba_manifest)
    out = prepare_store(result, tmp_path / box, dataset_name="celeba-mini", crop_scale=1.2,
                        crop_size=64, depth_size=16, workers=1, box=box, face_crops=True,
                        max_failed_fraction=0.5, progress=False)  # fmt: skip
    meta = json.loads((out / "store.json").read_text())
    counts = meta["counts"]
    assert meta["face_crops"] is True and meta["crop_scale"] == 1.2
    framing = counts["face_crop_framing"]
    assert framing["crops"] == counts["stored"] and framing["no_face"] < counts["stored"]
    # a detector box inside a tight 112 px crop: most of its area, the crop ~1.2x its side
    assert 0.4 < framing["box_iou"]["median"] < 0.95
    assert 1.05 < framing["crop_over_box"]["median"] < 1.5
    if box == "dataset":  # kept as given: nothing padded, every box from the dataset (the crop)
        assert framing["padded_share"]["p90"] == 0.0
        assert counts["box_source"] == {"dataset": counts["stored"]}
    else:  # re-cut around the detector's box, as predict cuts a photo: part falls outside
        assert framing["padded_share"]["median"] > 0.0
        assert counts["box_source"].get("detector", 0) >= counts["stored"] - framing["no_face"]
    assert counts["live_mesh_rate"] > 0.8
    assert counts["unknown_subject"] == {"train": counts["by_split_label"]["train/live"]
                                         + counts["by_split_label"]["train/spoof"]}  # fmt: skip
    printed = capsys.readouterr().out
    assert "face mesh found on" in printed and "detector's box covers" in printed
    assert "subject unknown for train" in printed


def test_the_crop_scale_of_crops_kept_as_given_is_measured(celeba_manifest):
    samples = read_manifest(celeba_manifest).samples
    assert 1.05 < measured_crop_scale(samples, n=12) < 1.4


def test_casia_crops_frame_the_face_wider(tmp_path):
    manifest = subset_manifest(CASIA, tmp_path / "casia.csv", 6)
    samples = read_manifest(manifest, val_fraction=0.0).samples
    assert 1.3 < measured_crop_scale(samples, n=12) < 1.8  # 256 px crops with some background


def test_face_crops_need_a_manifest(capsys):
    from facepad.cli import main

    assert main(["prepare", "--demo", "--face-crops", "--out", "unused"]) == 2
    assert "--face-crops describes a manifest" in capsys.readouterr().err

"""Demo dataset: deterministic, CelebA-Spoof layout, readable by the CelebA-Spoof reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facepad.data.celeba_spoof import load_box, read_celeba_spoof
from facepad.data.demo import make_demo_dataset

SMALL = dict(n_subjects=4, live_per_subject=2, spoof_per_subject=3, test_fraction=0.25)


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "a", seed=5, **SMALL)


def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    again = files(make_demo_dataset(tmp_path / "b", seed=5, **SMALL))
    first = files(demo)
    assert sorted(first) == sorted(again) and len(first) == 4 * 5 * 2 + 4  # images, boxes, metas
    assert all(first[k] == again[k] for k in first)
    other = files(make_demo_dataset(tmp_path / "c", seed=6, **SMALL))
    assert sum(other.get(k) != v for k, v in first.items() if k.endswith(".jpg")) > 0


def test_reader_reads_the_demo(demo):
    result = read_celeba_spoof(demo, val_fraction=0.0)
    c = result.counts
    assert c["samples"] == 20 and c["skipped"] == 0 and c["missing_box_file"] == 0
    assert (c["train"], c["test"], c["train_subjects"], c["test_subjects"]) == (15, 5, 3, 1)
    assert c["label_folder_disagree"] == 0 and c["subjects_in_train_and_test"] == 0
    assert c["images_jpg"] + c["images_png"] == 20
    assert sum(s.is_live for s in result.samples) == 8
    spoof_types = {s.attack_type for s in result.samples if not s.is_live}
    assert len(spoof_types) >= 3 and "live" not in spoof_types
    for s in result.samples:
        with Image.open(s.path) as img:
            w, h = img.size
            assert img.mode == "RGB"
        box, problem = load_box(s.attributes["box_file"], w, h)
        assert problem is None
        x, y, bw, bh = box
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
        assert bw > 0.1 * w and bh > 0.1 * h  # a face, not a speck


def test_labels_are_celeba_spoof_vectors(demo):
    labels = json.loads((demo / "metas/intra_test/train_label.json").read_text())
    for key, vec in labels.items():
        assert len(vec) == 44 and all(isinstance(v, int) for v in vec)
        spoof = key.split("/")[3] == "spoof"
        assert vec[43] == int(spoof) and (vec[40] > 0) == spoof
        assert (vec[41] in (1, 2, 3, 4)) if spoof else vec[41] == 0
        assert (vec[42] in (1, 2)) if spoof else vec[42] == 0
    assert "SYNTHETIC" in (demo / "README.txt").read_text()


def test_live_and_spoof_images_differ_but_share_subjects(demo):
    result = read_celeba_spoof(demo, val_fraction=0.0)
    for subject in {s.subject for s in result.samples}:
        labels = {s.label for s in result.samples if s.subject == subject}
        assert labels == {"live", "spoof"}
    pixels = [np.asarray(Image.open(s.path)) for s in result.samples[:3]]
    assert all(p.std() > 10 for p in pixels)  # not blank


def test_reuses_a_finished_demo_and_refuses_other_folders(demo, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in demo.rglob("*")}
    assert make_demo_dataset(demo, seed=5, **SMALL) == demo  # same parameters: reused
    assert {p: p.stat().st_mtime_ns for p in demo.rglob("*")} == before
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo_dataset(demo, seed=6, **SMALL)  # another demo: only with overwrite
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        make_demo_dataset(tmp_path / "mine", **SMALL)
    with pytest.raises(ValueError, match="n_subjects"):
        make_demo_dataset(tmp_path / "x", n_subjects=500)


def test_rewrites_a_half_written_demo(demo, tmp_path):
    import shutil

    half = tmp_path / "half"
    shutil.copytree(demo, half)
    (half / "demo.json").unlink()  # as if killed before the end
    (half / "metas/intra_test/test_label.json").unlink()
    make_demo_dataset(half, seed=5, **SMALL)
    assert files(half) == files(demo)


def test_cli_registers_demo():
    import argparse

    from facepad.data import demo as demo_module

    parser = argparse.ArgumentParser()
    demo_module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--out", "/tmp/x", "--seed", "3", "--subjects", "5"])
    assert (args.seed, args.subjects, args.live, args.spoof) == (3, 5, 4, 4)

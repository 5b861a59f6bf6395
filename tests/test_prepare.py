"""`facepad prepare` end to end: real faces, broken inputs, resume after kill -9, the CLI."""

from __future__ import annotations

import csv
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _prepare_helpers import photo_read_result

from facepad.data import faces
from facepad.data.prepare import prepare_store
from facepad.data.records import ReadResult
from facepad.data.store import PreparedStore, StoreError

REPO = Path(__file__).resolve().parents[1]
# The photo set is a third broken inputs on purpose: accept any share of failures.
prepare_any = functools.partial(prepare_store, max_failed_fraction=1.0)


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def skipped_rows(root: Path) -> list[dict]:
    with open(root / "skipped.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[ReadResult, Path]:
    folder = tmp_path_factory.mktemp("photos")
    return photo_read_result(folder, copies=2), folder


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> Path:
    """An uninterrupted single-process run that other tests compare against."""
    out = tmp_path_factory.mktemp("ref") / "store"
    return prepare_any(photos[0], out, dataset_name="photos", crop_size=128, workers=1,
                         shard_size=3, progress=False)  # fmt: skip


def test_end_to_end_on_real_photos(reference, capsys):
    store = PreparedStore(reference)
    counts = store.meta["counts"]
    assert counts["stored"] == 8  # 2 photos x 2 copies x (live, spoof)
    assert counts["by_split_label"] == {"test/spoof": 2, "train/live": 4, "train/spoof": 2}
    assert counts["depth_target"] == {"mesh": 4, "zeros": 4}
    assert counts["box_source"] == {"detector": 8} and counts["dataset_box_problem"] == {}
    reasons = {Path(r["path"]).name: r["reason"] for r in skipped_rows(reference)}
    assert reasons == {
        "gone.jpg": "reader",
        "corrupt.jpg": "unreadable_image",
        "truncated.jpg": "unreadable_image",
        "blank.jpg": "no_face",
    }
    assert counts["skipped_by_reason"] == {"no_face": 1, "reader": 1, "unreadable_image": 2}
    for i in range(len(store)):
        crop, depth = store.read_crop(i), store.read_depth(i)
        assert crop.shape == (128, 128, 3) and depth.shape == (32, 32)
        if store.index[i]["label"] == "live":
            assert 0.2 < (depth > 0).mean() < 0.8 and depth.max() > 0.9
            # the face sits in the middle of the crop: the nose area is face, corners are not
            assert depth[12:17, 13:18].min() > 0.5 and depth[:3, :3].max() == 0
        else:
            assert not depth.any()
    assert store.index[0]["session"] in {"0", "1"}  # dataset attributes become columns
    assert "box_file" not in store.index[0]


def test_two_workers_byte_identical(photos, reference, tmp_path, capsys):
    out = prepare_any(photos[0], tmp_path / "store", dataset_name="photos", crop_size=128,
                        workers=2, shard_size=3, progress=False)  # fmt: skip
    assert files_of(out) == files_of(reference)
    assert "stored 8, skipped 4" in capsys.readouterr().out


def test_resume_after_partial_shards(photos, reference, tmp_path):
    out = tmp_path / "store"
    prepare_any(photos[0], out, dataset_name="photos", crop_size=128, workers=1, shard_size=3,
                  progress=False)  # fmt: skip
    # Simulate a crash: shard 1 half written, shard 2 never finished, summary files not written.
    (out / "shards" / "00001.rows.json").unlink()
    (out / "shards" / "00001.bin").write_bytes(b"half a shard")
    (out / "shards" / "00002.bin.tmp").write_bytes(b"partial")
    for name in ("00002.bin", "00002.depth.npy", "00002.rows.json"):
        (out / "shards" / name).unlink()
    (out / "store.json").unlink()
    (out / "index.csv").unlink()
    with pytest.raises(StoreError, match="no store.json"):
        PreparedStore(out)
    prepare_any(photos[0], out, dataset_name="photos", crop_size=128, workers=1, shard_size=3,
                  progress=False)  # fmt: skip
    assert files_of(out) == files_of(reference)


def test_rerun_with_other_settings_is_refused(photos, reference, tmp_path):
    out = tmp_path / "store"
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "plan.json").write_bytes((reference / "shards" / "plan.json").read_bytes())
    with pytest.raises(StoreError, match="crop_size.*new --out"):
        prepare_any(photos[0], out, dataset_name="photos", crop_size=96, workers=1, shard_size=3,
                      progress=False)  # fmt: skip


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from _prepare_helpers import photo_read_result
from facepad.data.prepare import prepare_store
read = photo_read_result(Path({src!r}), copies=6, defects=False)
prepare_store(read, {out!r}, dataset_name="kill", crop_size=96, workers=1, shard_size=2,
              progress=False)
"""


def test_kill_9_midway_then_rerun_is_byte_identical(tmp_path):
    src, killed, clean = tmp_path / "src", tmp_path / "killed", tmp_path / "clean"
    script = KILL_SCRIPT.format(tests=str(REPO / "tests"), src=str(src), out=str(killed))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((killed / "shards").glob("*.rows.json"))) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "prepare finished before it could be killed"
    done = len(list((killed / "shards").glob("*.rows.json")))
    assert 2 <= done < 12 and not (killed / "store.json").exists()
    read = photo_read_result(src, copies=6, defects=False)
    prepare_store(read, killed, dataset_name="kill", crop_size=96, workers=1, shard_size=2,
                  progress=False)  # fmt: skip
    prepare_store(read, clean, dataset_name="kill", crop_size=96, workers=1, shard_size=2,
                  progress=False)  # fmt: skip
    assert files_of(killed) == files_of(clean)
    assert PreparedStore(killed).meta["counts"]["stored"] == 24


@pytest.mark.parametrize("policy", ["skip", "detector-box-ellipse"])
def test_no_mesh_policy(photos, tmp_path, monkeypatch, policy):
    monkeypatch.setattr(faces.FaceMesh, "landmarks", lambda self, rgb: None)
    monkeypatch.setattr("facepad.data.prepare._TOOLS", {})  # rebuild tools with the patched mesh
    out = prepare_any(photos[0], tmp_path / "s", dataset_name="p", crop_size=96, workers=1,
                        no_mesh_policy=policy, progress=False)  # fmt: skip
    store = PreparedStore(out)
    counts = store.meta["counts"]
    if policy == "skip":
        assert counts["skipped_by_reason"]["no_mesh"] == 4 and counts["stored"] == 4
    else:
        assert counts["depth_target"] == {"ellipse": 4, "zeros": 4}
        live = [i for i in range(len(store)) if store.index[i]["label"] == "live"]
        depth = store.read_depth(live[0])
        assert depth[16, 16] > 0.9 and depth[0, 0] == 0  # a dome centred on the face box
    with pytest.raises(ValueError, match="no_mesh_policy"):
        prepare_any(photos[0], tmp_path / "t", dataset_name="p", no_mesh_policy="guess")


def test_nuaa_dev_subset(nuaa_dev, tmp_path):
    from facepad.data.manifest import read_manifest

    full = read_manifest(nuaa_dev / "manifest.csv")
    subset = full.samples[:: len(full.samples) // 40][:40]
    out = prepare_store(ReadResult(subset), tmp_path / "nuaa", dataset_name="nuaa-dev", workers=2,
                        shard_size=8, progress=False)  # fmt: skip
    store = PreparedStore(out)
    assert len(store) >= 36, skipped_rows(out)  # the detector finds nearly every webcam face
    live = [i for i in range(len(store)) if store.index[i]["label"] == "live"]
    spoof = [i for i in range(len(store)) if store.index[i]["label"] == "spoof"]
    assert live and spoof
    assert np.mean([store.read_depth(i).mean() for i in live]) > 0.15
    assert all(not store.read_depth(i).any() for i in spoof)
    assert store.read_crop(0).shape == (256, 256, 3)


def test_cli_manifest_and_errors(photos, tmp_path, capsys):
    from facepad.cli import main

    _, folder = photos
    manifest = tmp_path / "m.csv"
    rows = ["path,label,attack_type,subject"]
    for k in range(2):
        rows += [f"{folder}/live/astronaut_{k}.jpg,live,none,a{k}"]
        rows += [f"{folder}/spoof/grace_hopper_{k}.jpg,spoof,print,g{k}"]
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "store"
    args = ["prepare", "--manifest", str(manifest), "--out", str(out), "--workers", "1",
            "--crop-size", "64", "--depth-size", "16", "--no-progress",
            "--test-subjects", "a1"]  # fmt: skip
    assert main(args) == 0
    store = PreparedStore(out)
    assert len(store) == 4 and store.depth_size == 16 and store.crop_size == 64
    assert "test" in store.splits()
    assert main(args) == 0  # a rerun of a finished store changes nothing
    assert main([*args[:-2], "--crop-size", "80"]) == 2
    assert "other inputs or settings" in capsys.readouterr().err
    bad = ["prepare", "--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x")]
    assert main(bad) == 2
    assert "none.csv" in capsys.readouterr().err


def test_celeba_box_files_and_detector_fallback(tmp_path):
    """`box_file` boxes are read in the 224 frame; an empty one falls back to the detector."""
    from _prepare_helpers import face_photos, write_jpeg

    from facepad.data.records import Sample

    rgb = face_photos()["astronaut"]  # 512x512: the 224 frame scales by 512 / 224
    path = write_jpeg(tmp_path / "a.jpg", rgb)
    good, empty = tmp_path / "a_BB.txt", tmp_path / "b_BB.txt"
    good.write_text("77 28 56 70 0.99\n")
    empty.write_text("")
    samples = [
        Sample(path, "spoof", "photo", "1", "train", attributes={"box_file": str(good)}),
        Sample(path, "spoof", "photo", "2", "test", attributes={"box_file": str(empty)}),
    ]
    out = prepare_store(ReadResult(samples), tmp_path / "s", dataset_name="c", crop_size=64,
                        workers=1, progress=False)  # fmt: skip
    store = PreparedStore(out)
    counts = store.meta["counts"]
    assert counts["box_source"] == {"dataset": 1, "detector-fallback": 1}
    assert counts["dataset_box_problem"] == {"box_empty": 1}
    by_split = {row["split"]: row["box_source"] for row in store.index}
    assert by_split == {"train": "dataset", "test": "detector-fallback"}
    assert "box_file" not in store.meta["attributes"]
    from facepad.data.crop import square_crop

    f = 512 / 224
    expected = square_crop(rgb, (77 * f, 28 * f, 56 * f, 70 * f), 1.3, 64)
    train = store.indices("train")[0]
    assert np.abs(store.read_crop(train).astype(int) - expected).mean() < 3


@pytest.mark.slow
def test_cli_demo(tmp_path):
    from facepad.cli import main

    out = tmp_path / "demo"
    assert main(["prepare", "--demo", "--out", str(out), "--crop-size", "64", "--depth-size", "16",
                 "--no-progress"]) == 0  # fmt: skip
    store = PreparedStore(out)
    assert store.meta["dataset"] == "demo" and (out / "source" / "metas").is_dir()
    assert len(store) > 300 and {"train", "val", "test"} <= set(store.splits())
    assert store.meta["counts"]["box_source"].get("dataset", 0) > 300


def test_too_many_failures_stop_before_store_json_and_a_higher_limit_resumes(photos, tmp_path):
    from facepad.data.prepare import PrepareError

    out = tmp_path / "store"
    with pytest.raises(PrepareError) as err:
        prepare_store(photos[0], out, dataset_name="photos", crop_size=96, workers=1,
                      progress=False)  # fmt: skip
    msg = str(err.value)
    assert "3 of 11 samples (27.3 %)" in msg and "limit of 5 %" in msg
    assert "no_face 1" in msg and "unreadable_image 2" in msg
    assert str(out / "skipped.csv") in msg and "--max-failed-fraction 0.28" in msg
    assert not (out / "store.json").exists() and (out / "skipped.csv").is_file()
    shards = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    prepare_store(photos[0], out, dataset_name="photos", crop_size=96, workers=1,
                  progress=False, max_failed_fraction=0.28)  # fmt: skip
    store = PreparedStore(out)
    assert store.meta["max_failed_fraction"] == 0.28 and len(store) == 8
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == shards


def test_summary_names_subjects_in_two_splits(reference, photos, tmp_path, capsys):
    counts = PreparedStore(reference).meta["counts"]
    both = {"astronaut": ["test", "train"], "grace_hopper": ["test", "train"]}
    assert counts["subjects_in_two_splits"] == both
    prepare_any(photos[0], tmp_path / "s", dataset_name="photos", crop_size=128, workers=1,
                shard_size=3, progress=False)  # fmt: skip
    out = capsys.readouterr().out
    assert "subjects in two splits: 2: astronaut (test+train), grace_hopper (test+train)" in out


def test_box_detector_mode_with_dataset_fallback(tmp_path):
    """--box detector: the detector's box where it finds a face, else the dataset's."""
    from _prepare_helpers import face_photos, write_jpeg

    from facepad.data.records import Sample

    face = write_jpeg(tmp_path / "a.jpg", face_photos()["astronaut"])
    blank = write_jpeg(tmp_path / "b.jpg", np.full((224, 224, 3), 90, np.uint8))
    box = tmp_path / "a_BB.txt"
    box.write_text("77 28 56 70 0.99\n")
    samples = [
        Sample(face, "spoof", "photo", "1", "train", attributes={"box_file": str(box)}),
        Sample(blank, "spoof", "photo", "2", "test", attributes={"box_file": str(box)}),
        Sample(blank, "spoof", "photo", "3", "val"),  # no dataset box, no face: skipped
    ]
    out = prepare_any(ReadResult(samples), tmp_path / "s", dataset_name="c", crop_size=64,
                      workers=1, box="detector", progress=False)  # fmt: skip
    store = PreparedStore(out)
    assert {row["split"]: row["box_source"] for row in store.index} == {
        "train": "detector",
        "test": "dataset-fallback",
    }
    assert store.meta["box"] == "detector"
    assert store.meta["counts"]["skipped_by_reason"] == {"no_face": 1}
    with pytest.raises(StoreError, match="box"):  # another box mode is another store
        prepare_any(ReadResult(samples), out, dataset_name="c", crop_size=64, workers=1,
                    progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="box 'retina'"):
        prepare_store(ReadResult(samples), tmp_path / "t", dataset_name="c", box="retina")


def test_detector_face_is_the_largest_as_in_the_predictor(tmp_path, monkeypatch):
    """Two faces found: prepare crops the largest, not the highest-scoring, as the Predictor."""
    from _prepare_helpers import face_photos, write_jpeg

    from facepad.data.crop import square_crop
    from facepad.data.faces import Detection
    from facepad.data.records import Sample

    rgb = face_photos()["astronaut"]
    small, large = Detection((10, 10, 20, 20), 0.99), Detection((150, 40, 160, 160), 0.6)
    monkeypatch.setattr(faces.FaceDetector, "detect", lambda self, image: [small, large])
    monkeypatch.setattr("facepad.data.prepare._TOOLS", {})
    sample = Sample(write_jpeg(tmp_path / "a.jpg", rgb), "spoof", "print", "s", "test")
    out = prepare_store(ReadResult([sample]), tmp_path / "s", dataset_name="two", crop_size=64,
                        workers=1, progress=False)  # fmt: skip
    expected = square_crop(rgb, large.box, 1.3, 64)
    assert np.abs(PreparedStore(out).read_crop(0).astype(int) - expected).mean() < 3


def test_jpeg_subsampling_420_is_stored_and_recorded(photos, reference, tmp_path):
    """--jpeg-subsampling 420 (for decode-bound loaders) writes 4:2:0 crops and says so in
    store.json; the default store stays 4:4:4 and records nothing new (old plans resume)."""
    import simplejpeg

    out = prepare_any(photos[0], tmp_path / "s420", dataset_name="photos", crop_size=128,
                      workers=1, shard_size=3, progress=False, jpeg_subsampling="420")  # fmt: skip
    subsampled, default = PreparedStore(out), PreparedStore(reference)
    assert subsampled.meta["jpeg_subsampling"] == "420" and "jpeg_subsampling" not in default.meta
    assert simplejpeg.decode_jpeg_header(subsampled.read_crop_bytes(0))[3] == "420"
    assert simplejpeg.decode_jpeg_header(default.read_crop_bytes(0))[3] == "444"
    assert np.abs(subsampled.read_crop(0).astype(int) - default.read_crop(0)).mean() < 4
    with pytest.raises(ValueError, match="jpeg_subsampling"):
        prepare_store(photos[0], tmp_path / "bad", dataset_name="photos", jpeg_subsampling="411")

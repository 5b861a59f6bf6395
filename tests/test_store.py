"""Prepared store: round trip, reader API, errors for incomplete stores, pickling."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest
from _prepare_helpers import write_jpeg, write_store

from facepad.data import store as store_module
from facepad.data.store import PreparedStore, StoreError


def synthetic(n: int = 7, size: int = 24, dsize: int = 8):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    for c in crops:  # flat blocks survive JPEG exactly enough to compare
        c[:] = c[:1, :1]
        c[: size // 2, : size // 3] = 255
    depths = [rng.random((dsize, dsize)).astype(np.float32) for _ in range(n)]
    labels = ["live" if i % 2 else "spoof" for i in range(n)]
    splits = ["train", "train", "val", "test", "train", "val", "test"][:n]
    return crops, depths, labels, splits


def test_round_trip(tmp_path):
    crops, depths, labels, splits = synthetic()
    store = PreparedStore(write_store(tmp_path / "s", crops, depths, labels, splits))
    assert len(store) == 7 and store.crop_size == 24 and store.depth_size == 8
    assert store.indices("train") == [0, 1, 4] and store.indices("test") == [3, 6]
    assert store.splits() == ["test", "train", "val"]
    for i in (6, 0, 4, 3):  # random order, across shards
        assert np.abs(store.read_crop(i).astype(int) - crops[i]).max() <= 3
        np.testing.assert_allclose(store.read_depth(i), depths[i], atol=0.5 / 255 + 1e-6)
        assert store.read_depth(i).dtype == np.float32
    cols = store.columns("val")
    assert list(cols["idx"]) == [2, 5] and list(cols["is_live"]) == [False, True]
    assert list(cols["session"]) == ["2", "2"]
    assert list(cols["attack_type"]) == ["print", "live"]


def test_pickle_drops_open_maps(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_OPEN_SHARDS", 1)  # evicts on every shard change
    crops, depths, labels, splits = synthetic()
    store = PreparedStore(write_store(tmp_path / "s", crops, depths, labels, splits))
    first = [store.read_crop(i) for i in range(7)]
    assert len(store._bins) == 1
    clone = pickle.loads(pickle.dumps(store))
    assert clone._bins == {} and clone._depths == {}
    for i in range(7):
        np.testing.assert_array_equal(clone.read_crop(i), first[i])


def test_incomplete_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no such folder"):
        PreparedStore(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no store.json.*rerun `facepad prepare --out"):
        PreparedStore(tmp_path / "empty")
    crops, depths, labels, splits = synthetic()
    root = write_store(tmp_path / "s", crops, depths, labels, splits)
    (root / "shards" / "00001.depth.npy").unlink()
    with pytest.raises(StoreError, match=r"shard files missing for shards \[1\]"):
        PreparedStore(root)
    meta = json.loads((root / "store.json").read_text())
    (root / "store.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(StoreError, match="store format 99"):
        PreparedStore(root)


def test_damaged_shards_are_named_with_the_fix(tmp_path):
    crops, depths, labels, splits = synthetic()
    root = write_store(tmp_path / "s", crops, depths, labels, splits)
    shard = root / "shards" / "00000.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])  # a copy stopped halfway
    with pytest.raises(StoreError, match=r"00000.bin holds \d+ of the \d+ bytes.*new folder"):
        PreparedStore(root)
    shard.write_bytes(bytes(len(data)))  # right size, wrong bytes
    store = PreparedStore(root)
    with pytest.raises(StoreError, match=r"crop of sample 0 \(.+, shard 0\) does not decode"):
        store.read_crop(0)


def test_prepare_writes_readable_store_with_dataset_boxes(tmp_path):
    """Spoofs with given boxes need no face models: a quick check of the writer's format."""
    from facepad.data.crop import square_crop
    from facepad.data.prepare import prepare_store
    from facepad.data.records import ReadResult, Sample

    rng = np.random.default_rng(1)
    images, samples = [], []
    for k in range(5):
        img = np.zeros((90, 120, 3), np.uint8)
        img[20 + 5 * k : 60, 30:80] = rng.integers(60, 250, 3, dtype=np.uint8)
        images.append(img)
        path = write_jpeg(tmp_path / "src" / f"{k}.jpg", img)
        box = (30.0, 20.0 + 5 * k, 50.0, 40.0 - 5 * k)
        samples.append(Sample(path, "spoof", "print", f"s{k}", "train", box, {"light": str(k)}))
    (tmp_path / "src" / "bad.jpg").write_bytes(b"nope")
    samples.append(
        Sample(str(tmp_path / "src" / "bad.jpg"), "spoof", "print", "s9", "test", (0, 0, 5, 5))
    )
    out = prepare_store(
        ReadResult(samples), tmp_path / "store", dataset_name="t", crop_size=64, depth_size=8,
        workers=1, shard_size=2, progress=False, max_failed_fraction=0.2,
    )  # fmt: skip
    store = PreparedStore(out)
    assert {row["box_source"] for row in store.index} == {"dataset"}
    assert len(store) == 5 and store.meta["counts"]["by_split_label"] == {"train/spoof": 5}
    for i in range(5):
        row = store.index[i]
        k = int(row["path"].rsplit("/", 1)[1][0])
        from facepad.data.images import load_image

        expected = square_crop(load_image(row["path"]), samples[k].box, 1.3, 64)
        assert np.abs(store.read_crop(i).astype(int) - expected).mean() < 2
        assert not store.read_depth(i).any()  # spoof: zeros by definition
        assert row["light"] == str(k)
    with open(out / "skipped.csv", newline="") as f:
        (skipped,) = list(csv.DictReader(f))
    assert skipped["path"].endswith("bad.jpg") and skipped["reason"] == "unreadable_image"
    assert "bad.jpg" in skipped["detail"]

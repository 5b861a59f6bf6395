"""Several stores as one: merged index, split files, balanced draws, training and evaluation."""

from __future__ import annotations

import csv
import json
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from _prepare_helpers import write_store
from _train_helpers import small_config

from facepad.config import ConfigError, load_config
from facepad.data.dataset import StoreDataset
from facepad.data.multistore import (
    BalancedDataset,
    MultiStore,
    StoreSpec,
    balanced,
    open_stores,
    parse_store_spec,
    write_split_file,
)
from facepad.data.store import PreparedStore, StoreError


def tiny_store(root, n: int, splits: list[str], size: int = 32, live_every: int = 2):
    """n samples; live crops bright with a bright depth map, spoofs dark with zeros."""
    labels = ["live" if i % live_every == 0 else "spoof" for i in range(n)]
    crops = [np.full((size, size, 3), 200 if lab == "live" else 40, np.uint8) for lab in labels]
    depths = [np.full((8, 8), 0.8 if lab == "live" else 0.0, np.float32) for lab in labels]
    return write_store(root, crops, depths, labels, [splits[i % len(splits)] for i in range(n)])


@pytest.fixture
def two_stores(tmp_path):
    a = tiny_store(tmp_path / "a", 6, ["train", "val", "test"])
    b = tiny_store(tmp_path / "b", 9, ["train", "train", "val"], live_every=3)
    return a, b


def test_specs_parse_folder_named_and_mapping():
    assert parse_store_spec("stores/x") == StoreSpec("stores/x")
    assert parse_store_spec("nuaa=stores/x") == StoreSpec("stores/x", "nuaa")
    spec = parse_store_spec({"path": "p", "name": "n", "splits": "s.csv"})
    assert spec == StoreSpec("p", "n", "s.csv")
    with pytest.raises(ValueError, match="only keys"):
        parse_store_spec({"path": "p", "split": "typo"})
    with pytest.raises(ValueError, match="give a folder"):
        parse_store_spec("")


def test_merged_index_reads_members_and_tags_dataset(two_stores):
    a, b = two_stores
    multi = MultiStore([f"A={a}", f"B={b}"])
    sa, sb = PreparedStore(a), PreparedStore(b)
    assert len(multi) == 15 and multi.names == ["A", "B"]
    assert [r["idx"] for r in multi.index] == list(range(15))
    assert [r["dataset"] for r in multi.index] == ["A"] * 6 + ["B"] * 9
    np.testing.assert_array_equal(multi.read_crop(7), sb.read_crop(1))
    np.testing.assert_array_equal(multi.read_depth(2), sa.read_depth(2))
    assert multi.splits() == ["test", "train", "val"]
    assert multi.indices("test") == [2, 5]
    assert multi.columns("val")["dataset"].tolist() == ["A", "A", "B", "B", "B"]
    clone = pickle.loads(pickle.dumps(multi))
    np.testing.assert_array_equal(clone.read_crop(14), sb.read_crop(8))
    assert multi.composition("val") == "A 2 (1 live), B 3 (0 live)"


def test_split_files_override_and_leave_out(two_stores, tmp_path):
    a, b = two_stores
    by_idx = write_split_file(tmp_path / "a.csv", {0: "test", 1: "test", 4: "train"})
    by_subject = tmp_path / "b.csv"
    by_subject.write_text("subject,split\ns0,fold0\n")  # write_store: subject s{i % 2}
    multi = MultiStore([{"path": str(a), "name": "A", "splits": str(by_idx)},
                        {"path": str(b), "name": "B", "splits": str(by_subject)}])  # fmt: skip
    assert multi.indices("test") == [0, 1] and multi.indices("train") == [4]
    assert multi.indices("fold0") == [6, 8, 10, 12, 14]
    assert multi.splits() == ["fold0", "test", "train"]  # left-out samples form no split
    bad = tmp_path / "bad.csv"
    bad.write_text("idx,split\n99,train\n")
    with pytest.raises(ValueError, match="idx 99"):
        MultiStore([{"path": str(a), "splits": str(bad)}])
    bad.write_text("subject,split\nnobody,train\n")
    with pytest.raises(ValueError, match="nobody"):
        MultiStore([{"path": str(a), "splits": str(bad)}])
    bad.write_text("path,split\nx,train\n")
    with pytest.raises(ValueError, match="header must be"):
        MultiStore([{"path": str(a), "splits": str(bad)}])


def test_names_must_differ_and_crops_must_match(two_stores, tmp_path):
    a, b = two_stores
    with pytest.raises(ValueError, match="name them"):
        MultiStore([str(a), str(b)])  # both stores call themselves 'synthetic'
    big = tiny_store(tmp_path / "big", 3, ["train"], size=48)
    mixed = MultiStore([f"A={a}", f"C={big}"])  # crop sizes may differ: crops are resized
    assert mixed.crop_size == 48
    assert StoreDataset(mixed, "train", 32, 8)[-1]["image"].shape == (3, 32, 32)
    meta = json.loads((big / "store.json").read_text())
    (big / "store.json").write_text(json.dumps({**meta, "crop_scale": 1.5}))
    with pytest.raises(StoreError, match="crop_scale"):
        MultiStore([f"A={a}", f"C={big}"])
    with pytest.raises(ValueError, match="data.store is empty"):
        open_stores("", [])
    assert isinstance(open_stores(str(a), []), PreparedStore)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("dataset", {("A",): 0.5, ("B",): 0.5}),
        ("class", {("live",): 0.5, ("spoof",): 0.5}),
        ("dataset_class", {g: 0.25 for g in
                           [("A", "live"), ("A", "spoof"), ("B", "live"), ("B", "spoof")]}),
    ],
)  # fmt: skip
def test_balanced_epochs_draw_every_group_equally(tmp_path, mode, expected):
    a = tiny_store(tmp_path / "a", 40, ["train"], live_every=4)  # 10 live, 30 spoof
    b = tiny_store(tmp_path / "b", 8, ["train"])  # 4 live, 4 spoof
    multi = MultiStore([f"A={a}", f"B={b}"])
    ds = balanced(StoreDataset(multi, "train", 32, 8), mode)
    assert isinstance(ds, BalancedDataset) and len(ds) == 48
    torch.manual_seed(0)
    counts = Counter()
    for k in torch.randperm(len(ds)).tolist():
        row = multi.index[ds[k]["idx"]]
        key = {"dataset": (row["dataset"],), "class": (row["label"],)}.get(
            mode, (row["dataset"], row["label"])
        )
        counts[key] += 1
    assert {g: c / len(ds) for g, c in counts.items()} == expected
    assert balanced(ds.dataset, "none") is ds.dataset
    with pytest.raises(ValueError, match="balance mode"):
        BalancedDataset(ds.dataset, "subject")


def test_config_keys_for_several_stores(tmp_path):
    config = load_config(None, ["data.stores=[a, {path: b, name: B}]", "data.balance=dataset"])
    assert config.data.stores == ["a", {"path": "b", "name": "B"}]
    with pytest.raises(ConfigError, match="must be a list"):
        load_config(None, ["data.stores=a"])
    with pytest.raises(ConfigError, match="data.balance"):
        load_config(None, ["data.balance=subject"])
    with pytest.raises(ConfigError, match="data.stores entry"):
        load_config(None, ["data.stores=[3]"])


def test_train_on_two_stores_then_report_by_dataset(two_stores, tmp_path):
    from facepad.evaluate.evaluate import evaluate_checkpoint
    from facepad.train.loop import train

    a, b = two_stores
    stores = [f"A={a}", f"B={b}"]
    config = small_config(
        tmp_path / "runs", "binary_cnn", "data.store=ignored", "data.balance=dataset_class",
        "train.epochs=1", f"data.stores={stores}".replace("'", ""),
    )  # fmt: skip
    best = train(config)
    assert best.is_file()
    with open(best.parent / "val_by_dataset.csv") as f:  # val A: 1 live + 1 spoof; B: 3 spoofs
        by_dataset = {r["dataset"]: r for r in csv.DictReader(f)}
    assert sorted(by_dataset) == ["A", "B"] and by_dataset["A"]["epoch"] == "1"
    assert (by_dataset["A"]["n_live"], by_dataset["A"]["n_attack"]) == ("1", "1")
    assert (by_dataset["B"]["n_live"], by_dataset["B"]["n_attack"]) == ("0", "3")
    test_all = write_split_file(tmp_path / "b_all.csv", {i: "test" for i in range(9)})
    view = MultiStore([f"A={a}", {"path": str(b), "name": "B", "splits": str(test_all)}])
    result = evaluate_checkpoint(best, view, "test", out_dir=tmp_path / "eval", figures=False)
    assert result.report["n_samples"] == 2 + 9
    by_dataset = result.report["by_attribute"]["dataset"]
    assert {k: v["n_live"] + v["n_attack"] for k, v in by_dataset.items()} == {"A": 2, "B": 9}
    assert "## By dataset" in (tmp_path / "eval" / "report.md").read_text()
    assert result.rows[0]["attributes"]["dataset"] == "A"

    from facepad.cli import main  # the same from the command line: NAME=STORE, several

    out = tmp_path / "eval_cli"
    args = ["evaluate", str(best), "--store", *stores, "--split", "val", "--out", str(out)]
    assert main(args) == 0
    assert "## By dataset" in (out / "report.md").read_text()


def test_bootstrap_groups_by_dataset_subject_then_video():
    from facepad.evaluate.report import bootstrap_group

    row = {"idx": 3, "path": "p.jpg", "subject": "0001", "attributes": {"dataset": "nuaa"}}
    assert bootstrap_group(row) == "nuaa/0001"  # two datasets may both have a subject 0001
    no_subject = {"idx": 3, "path": "v.avi", "subject": "", "attributes": {"video": "v7"}}
    assert bootstrap_group(no_subject) == "v7"
    assert bootstrap_group({"idx": 3, "path": "a.jpg", "subject": "", "attributes": {}}) == "a.jpg"


def test_simulated_spoofs_are_spoofs_of_their_sources_dataset(tmp_path):
    """data.simulated_attacks keeps its meaning under balancing: that many simulated spoofs per
    live crop, inside the spoof group of the dataset whose live crops they re-render."""
    from facepad.data.augment import Augment

    a = tiny_store(tmp_path / "a", 40, ["train"], live_every=4)  # 10 live, 30 spoof
    b = tiny_store(tmp_path / "b", 8, ["train"])  # 4 live, 4 spoof
    multi = MultiStore([f"A={a}", f"B={b}"])
    data = StoreDataset(multi, "train", 32, 8, augment=Augment(simulated_attacks=0.5))
    assert data.n_simulated == 7  # half of the 14 live crops
    by_class = BalancedDataset(data, "class")
    sizes = dict(zip(by_class.group_names, map(len, by_class.groups), strict=True))
    assert sizes == {("live",): 14, ("spoof",): 34 + 7}
    by_both = BalancedDataset(data, "dataset_class")
    sizes = dict(zip(by_both.group_names, map(len, by_both.groups), strict=True))
    assert sizes == {("A", "live"): 10, ("A", "spoof"): 30 + 5, ("B", "live"): 4,
                     ("B", "spoof"): 4 + 2}  # fmt: skip
    torch.manual_seed(0)
    for j in range(data.n_simulated):  # each re-renders a live crop of its own dataset
        item = data[len(data.indices) + j]
        source = multi.index[item["idx"]]
        assert item["live"].item() == 0.0 and source["label"] == "live"
        assert source["dataset"] == data.simulated_row(j)["dataset"]

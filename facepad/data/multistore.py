"""Several prepared stores as one, split overrides, and batches balanced over datasets and classes.

Experiments that train on more than one dataset (cross-dataset, leave-one-dataset-out) or on a
subset of one (k-fold by subject) need neither a new store nor a copy: `MultiStore` is a
`PreparedStore` whose index is the members' indexes one after another, each row tagged with its
`dataset` (so every report breaks results down by dataset), read from the members' own shards.
A member may carry a split file that replaces its prepared split column (a store's splits are
fixed when it is prepared): a CSV `idx,split` (store indices) or `subject,split`; samples it does
not list are left out. `BalancedDataset` makes each training epoch draw evenly from the groups
(datasets, classes or both) instead of in proportion to their sizes.

Config (`facepad.config.DataConfig`): `data.stores` lists the stores as `"PATH"`, `"NAME=PATH"` or
`{path: PATH, name: NAME, splits: CSV}`; `data.balance` is none | dataset | class | dataset_class.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facepad.data.store import PreparedStore, StoreError

BALANCE_MODES = ("none", "dataset", "class", "dataset_class")
SPEC_KEYS = ("path", "name", "splits")


@dataclass(frozen=True)
class StoreSpec:
    """One member store: its folder, the dataset name its rows carry, an optional split file."""

    path: str
    name: str = ""
    splits: str = ""


def parse_store_spec(entry: str | Mapping | StoreSpec) -> StoreSpec:
    """`"PATH"`, `"NAME=PATH"` or a mapping with keys path, name, splits."""
    if isinstance(entry, StoreSpec):
        return entry
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - set(SPEC_KEYS))
        if unknown or not entry.get("path"):
            raise ValueError(
                f"store entry {dict(entry)}: needs a path, and only keys {', '.join(SPEC_KEYS)} "
                f"(unknown: {', '.join(unknown) or 'none'})"
            )
        name, splits = entry.get("name") or "", entry.get("splits") or ""
        return StoreSpec(str(entry["path"]), str(name), str(splits))
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"store entry {entry!r}: give a folder, NAME=FOLDER or a mapping")
    name, sep, path = entry.partition("=")
    return StoreSpec(path.strip(), name.strip()) if sep else StoreSpec(entry.strip())


def read_split_file(path: str | Path, store: PreparedStore) -> list[str]:
    """The split of every sample of `store` from a CSV `idx,split` or `subject,split`;
    "" for samples the file does not list (left out)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"split file {path} not found (a CSV with header idx,split or subject,split)"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        key = next((k for k in ("idx", "subject") if k in (reader.fieldnames or [])), None)
        if key is None or "split" not in (reader.fieldnames or []):
            raise ValueError(f"{path}: header must be idx,split or subject,split")
        entries = [(r[key].strip(), r["split"].strip()) for r in reader]
    splits = [""] * len(store)
    if key == "idx":
        for value, split in entries:
            i = int(value)
            if not 0 <= i < len(store):
                raise ValueError(f"{path}: idx {i} is not in {store.root} ({len(store)} samples)")
            splits[i] = split
        return splits
    by_subject = dict(entries)
    unknown = sorted(set(by_subject) - {row["subject"] for row in store.index})
    if unknown:
        raise ValueError(f"{path}: subjects {', '.join(unknown[:5])} are not in {store.root}")
    return [by_subject.get(row["subject"], "") for row in store.index]


def write_split_file(path: str | Path, splits: Mapping[int, str]) -> Path:
    """Write `{store idx: split}` as a CSV `idx,split` (what `read_split_file` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["idx", "split"])
        writer.writerows(sorted(splits.items()))
    os.replace(tmp, path)
    return path


class MultiStore(PreparedStore):
    """Member stores read as one: rows renumbered in member order, a `dataset` column added,
    attribute columns united (blank where a member lacks one), splits optionally overridden."""

    def __init__(self, specs: Sequence[str | Mapping | StoreSpec]):
        self.specs = [parse_store_spec(s) for s in specs]
        if not self.specs:
            raise ValueError("no stores given")
        self.members = [PreparedStore(s.path) for s in self.specs]
        self.names = [s.name or str(m.meta.get("dataset") or m.root.name) for s, m in
                      zip(self.specs, self.members, strict=True)]  # fmt: skip
        if len(set(self.names)) < len(self.names):
            raise ValueError(
                f"stores {', '.join(s.path for s in self.specs)} share dataset names "
                f"{self.names}: name them, e.g. nuaa=PATH"
            )
        self._check_crops()
        self.root = Path(",".join(str(m.root) for m in self.members))
        self.meta = {
            **self.members[0].meta,
            "dataset": "+".join(self.names),
            "crop_size": max(m.crop_size for m in self.members),  # inference crops at the largest
            "depth_size": max(m.depth_size for m in self.members),
            "members": [{"name": n, "path": str(m.root), "splits": s.splits}
                        for n, m, s in zip(self.names, self.members, self.specs, strict=True)],
        }  # fmt: skip
        self.index, member, local = self._merged_index()
        self._member = np.array(member, dtype=np.int32)
        self._local = np.array(local, dtype=np.int64)
        self._bins, self._depths = {}, {}  # unused: the members hold the open files

    def _check_crops(self) -> None:
        """Crops of every member must frame the face alike; their pixel sizes may differ (each is
        resized to the model input)."""
        scales = {m.meta.get("crop_scale") for m in self.members}
        if len(scales) > 1:
            raise StoreError(
                f"stores {', '.join(str(m.root) for m in self.members)} differ in crop_scale "
                f"({sorted(scales)}): prepare them with the same --crop-scale"
            )

    def _merged_index(self) -> tuple[list[dict], list[int], list[int]]:
        columns: list[str] = []
        for m in self.members:
            for name in m.index[0].keys() if m.index else ():
                if name not in columns:
                    columns.append(name)
        rows, member, local = [], [], []
        for k, (store, spec, name) in enumerate(
            zip(self.members, self.specs, self.names, strict=True)
        ):
            splits = read_split_file(spec.splits, store) if spec.splits else None
            for j, row in enumerate(store.index):
                merged = {c: row.get(c, "") for c in columns}
                merged.update(idx=len(rows), dataset=name)
                if splits is not None:
                    merged["split"] = splits[j]
                rows.append(merged)
                member.append(k)
                local.append(j)
        return rows, member, local

    def splits(self) -> list[str]:
        return sorted({row["split"] for row in self.index} - {""})

    def _locate(self, i: int) -> tuple[PreparedStore, int]:
        return self.members[int(self._member[i])], int(self._local[i])

    def read_crop_bytes(self, i: int) -> bytes:
        store, j = self._locate(i)
        return store.read_crop_bytes(j)

    def read_crop(self, i: int) -> np.ndarray:
        store, j = self._locate(i)
        return store.read_crop(j)

    def read_depth(self, i: int) -> np.ndarray:
        store, j = self._locate(i)
        return store.read_depth(j)

    def composition(self, split: str) -> str:
        """'nuaa-dev 1208 (483 live), replay 1799 (300 live)': what a split is made of."""
        parts = []
        for name in self.names:
            rows = [r for r in self.index if r["split"] == split and r["dataset"] == name]
            live = sum(r["label"] == "live" for r in rows)
            parts.append(f"{name} {len(rows)} ({live} live)")
        return ", ".join(parts)


def open_stores(store: str = "", stores: Sequence = ()) -> PreparedStore:
    """The store(s) a config names: `data.stores` (several, or one with a split file) when given,
    else the single `data.store`."""
    if stores:
        multi = MultiStore(stores)
        if os.environ.get("RANK", "0") == "0":
            if store:
                print(f"note: data.stores is set, so data.store ({store}) is not used")
            splits = "; ".join(f"{s}: {multi.composition(s)}" for s in multi.splits())
            print(f"data.stores, samples per split: {splits}")
        return multi
    if not store:
        raise ValueError(
            "data.store is empty: set it to a `facepad prepare` output folder "
            "(or data.stores to several)"
        )
    return PreparedStore(store)


def balance_key(row: dict, mode: str) -> tuple[str, ...]:
    """The group a sample belongs to under a balance mode."""
    return {
        "dataset": (row.get("dataset", ""),),
        "class": (row["label"],),
        "dataset_class": (row.get("dataset", ""), row["label"]),
    }[mode]


class BalancedDataset(torch.utils.data.Dataset):
    """A training set whose item k comes from group k mod G, drawn uniformly within the group.

    The sampler shuffles k, so an epoch (by default as long as the wrapped set; `epoch_samples`
    sets its length, e.g. to validate a large pooled set more often) holds every group
    equally often (exactly per epoch, about equally per batch): a small dataset or the rarer class
    is seen as often as a large one (small groups repeat, large ones are subsampled). Simulated
    spoofs (`data.simulated_attacks`) are spoofs of their source's dataset, so the setting keeps
    its meaning (that many per live crop) inside the spoof group. Draws use torch's generator,
    which DataLoader seeds per worker and epoch. Works with DistributedSampler.
    """

    def __init__(self, dataset, mode: str, epoch_samples: int = 0):
        if mode not in BALANCE_MODES or mode == "none":
            raise ValueError(f"balance mode {mode!r}: choose one of {', '.join(BALANCE_MODES[1:])}")
        if epoch_samples < 0:
            raise ValueError(f"epoch_samples must be 0 (the set size) or more: {epoch_samples}")
        self.dataset, self.mode = dataset, mode
        self.epoch_samples = epoch_samples or len(dataset)
        groups: dict[tuple[str, ...], list[int]] = {}
        for position, i in enumerate(dataset.indices):
            groups.setdefault(balance_key(dataset.store.index[i], mode), []).append(position)
        for j in range(dataset.n_simulated):  # simulated spoofs (augmentation) after the rest
            key = balance_key(dataset.simulated_row(j), mode)
            groups.setdefault(key, []).append(len(dataset.indices) + j)
        self.group_names = sorted(groups)
        self.groups = [groups[g] for g in self.group_names]

    @property
    def store(self) -> PreparedStore:
        return self.dataset.store

    def __len__(self) -> int:
        return self.epoch_samples

    def __getitem__(self, k: int) -> dict:
        group = self.groups[k % len(self.groups)]
        return self.dataset[group[int(torch.randint(len(group), ()))]]

    def describe(self) -> str:
        return ", ".join(
            f"{'/'.join(g)} {len(m)}" for g, m in zip(self.group_names, self.groups, strict=True)
        )


def balanced(dataset, mode: str, epoch_samples: int = 0):
    """`dataset` itself for mode 'none', else a `BalancedDataset` over it drawing
    `epoch_samples` items an epoch (0: as many as the set holds)."""
    if mode == "none":
        if epoch_samples:
            raise ValueError("data.epoch_samples sets a balanced epoch's length: set data.balance")
        return dataset
    result = BalancedDataset(dataset, mode, epoch_samples)
    if os.environ.get("RANK", "0") == "0":
        print(f"balance {mode}: {len(result.groups)} groups drawn equally ({result.describe()}), "
              f"{len(result)} items an epoch")  # fmt: skip
    return result

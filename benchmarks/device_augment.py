"""The two augmentation paths side by side (data.augment_device): `loader` (per-sample numpy/cv2 in
the DataLoader) against `device` (the loader only reads and decodes; the batch is augmented on the
training device), on synthetic stores (benchmarks/_synthetic_store.py). Rounds alternate between
the paths, so load on the machine hits both alike; figures are medians over the rounds. The load
average is printed: other processes on the machine slow both paths down.

`loader`: the loader's CPU cost per sample at 256x256 crops (256 in, 32x32 maps), on a store of
textures (as benchmarks/gpu_recipe.py writes), one of photo windows, and the photos with 4:2:0
chroma (`prepare --jpeg-subsampling 420`; the others are 4:4:4, prepare's default), with every
augmentation on but simulated attacks (rotation 10, capture 0.8, exposure 0.8, sharpness 0.5):
CPU seconds of this process per sample through a DataLoader with 0 workers (read, decode,
augment, collate), as samples/s per core of loader work, and `decode`, the JPEG decoding alone
(the device path's floor); for the device path also what its
batched augmentation costs when the device is this CPU, on each round's first batch (the CPU
recipe's case; on a GPU that work is the GPU's).

    python benchmarks/device_augment.py loader --n 1024 --repeats 5

`train`: `facepad train nuaa_cpu`-like training (128 crops, 128 in, batch 32, balance class,
workers 0) for one epoch per round, train.threads=1; prints train samples/s (metrics.csv) per path.
Without `device` in --paths it sets no data.augment_device, so the same command times a tree that
predates the switch (run it with that tree on PYTHONPATH, alternating with this one).

    python benchmarks/device_augment.py train --n 512 --repeats 3 --models depth_unet binary_cnn
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import statistics
import time
from pathlib import Path

import torch
from _synthetic_store import write_synthetic_store

EVERY_AUGMENTATION = dict(rotate=10.0, capture=0.8, exposure=0.8, sharpness=0.5)


def loader_cost(store: Path, path: str, batch: int) -> tuple[float, float]:
    """(loader CPU ms per sample over one epoch, device-augmentation CPU ms per sample of its
    first batch, or 0)."""
    from facepad.data.augment import Augment
    from facepad.data.dataset import StoreDataset
    from facepad.data.device_augment import DeviceAugment

    aug = Augment(**EVERY_AUGMENTATION)
    if path == "decode":  # the floor of the device path's loader: JPEG decoding alone
        from facepad.data.store import PreparedStore

        reader, train = PreparedStore(store), PreparedStore(store).indices("train")
        started = time.process_time()
        for i in torch.randperm(len(train)).tolist():
            reader.read_crop(train[i])
        return 1000 * (time.process_time() - started) / len(train), 0.0
    if path == "loader":
        ds = StoreDataset(store, "train", 256, 32, augment=aug)
    else:
        ds = StoreDataset(store, "train", 256, 32, decode_only=True)
    ds[0]  # open the shard maps
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, drop_last=True, generator=torch.Generator()
    )
    device_aug = DeviceAugment(aug, 256, 32) if path == "device" else None
    load, seen, augment = 0.0, 0, 0.0
    batches = iter(loader)
    while True:
        started = time.process_time()
        item = next(batches, None)
        load += time.process_time() - started
        if item is None:
            break
        if device_aug is not None and seen == 0:
            started = time.process_time()
            device_aug(item)
            augment = (time.process_time() - started) / len(item["live"])
        seen += len(item["live"])
    return 1000 * load / seen, 1000 * augment


def loader_main(args) -> None:
    torch.set_num_threads(1)
    for photos, subsampling in ((False, "444"), (True, "444"), (True, "420")):
        name = ("photos256" if photos else "textures256") + ("-420" if subsampling == "420" else "")
        store = write_synthetic_store(
            Path(args.out) / name, args.n, 64, size=256, photos=photos, subsampling=subsampling
        )
        loader_table(store, args)


def loader_table(store: Path, args) -> None:
    """Both paths on one store, alternating rounds: medians, ratio, rate per core."""
    from facepad.data.store import PreparedStore

    index = PreparedStore(store).index
    kb = sum(int(r["length"]) for r in index) / len(index) / 1000
    print(f"\n{store}: {args.n} train crops 256x256 ({kb:.1f} KB JPEG each), batch {args.batch}, "
          f"0 workers, {args.repeats} alternating rounds, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in ("loader", "device", "decode")}
    for _ in range(args.repeats):
        for path in runs:
            runs[path].append(loader_cost(store, path, args.batch))
    load = {p: statistics.median(r[0] for r in runs[p]) for p in runs}
    augment = statistics.median(r[1] for r in runs["device"])
    print(f"{'path':<8} {'loader CPU ms/sample':>21} {'samples/s per core':>19} {'vs loader':>10}")
    for path in runs:
        print(f"{path:<8} {load[path]:>21.3f} {1000 / load[path]:>19.0f} "
              f"{load['loader'] / load[path]:>9.2f}x")  # fmt: skip
    print(
        f"device augmentation on this CPU (1 thread, not loader work): {augment:.3f} ms/sample; "
        f"loader + augmentation {load['device'] + augment:.3f} ms/sample"
    )


def train_rate(store: Path, out: Path, path: str, model: str, run: str) -> float:
    """train_samples_per_s of one nuaa_cpu epoch on the store, through facepad's training loop."""
    from facepad.config import load_config
    from facepad.train.loop import train

    overrides = [
        f"data.store={store}", f"model.name={model}", "train.epochs=1", "train.threads=1",
        "train.early_stop_patience=0", f"out_dir={out}", f"run_name={run}",
    ]  # fmt: skip
    if path == "device":
        overrides.append("data.augment_device=device")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(load_config("nuaa_cpu", overrides))
    with open(out / run / "metrics.csv", newline="") as f:
        return float(next(csv.DictReader(f))["train_samples_per_s"])


def train_main(args) -> None:
    out = Path(args.out)
    store = write_synthetic_store(out / "store128", args.n, 64, size=128)
    runs_dir = out / f"runs-{os.getpid()}"
    print(f"{store}: {args.n} train crops 128x128, nuaa_cpu, 1 epoch per round, train.threads=1, "
          f"{args.repeats} alternating rounds, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'model':<11} {'path':<8} {'train samples/s':>16} {'vs first':>9}  rounds")
    for model in args.models:
        rates: dict[str, list[float]] = {p: [] for p in args.paths}
        for r in range(args.repeats):
            for path in args.paths:
                rates[path].append(train_rate(store, runs_dir, path, model, f"{model}-{path}-{r}"))
        first = statistics.median(rates[args.paths[0]])
        for path in args.paths:
            rate = statistics.median(rates[path])
            rounds = ", ".join(f"{x:.1f}" for x in rates[path])
            print(f"{model:<11} {path:<8} {rate:>16.1f} {rate / first:>8.2f}x  {rounds}",
                  flush=True)  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["loader", "train"])
    p.add_argument("--n", type=int, default=1024, help="training crops in the synthetic store")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=128, help="loader: batch size")
    p.add_argument("--models", nargs="+", default=["depth_unet"], help="train: models")
    p.add_argument("--paths", nargs="+", default=["loader", "device"], choices=["loader", "device"])
    p.add_argument("--out", default="/tmp/facepad-device-augment")
    args = p.parse_args()
    loader_main(args) if args.mode == "loader" else train_main(args)


if __name__ == "__main__":
    main()

"""Training and inference throughput of every facepad model on this machine, with FLOP counts.

Prints, per model, input size and variant (fp32 / channels_last / bf16 autocast): forward GFLOPs per
image (counted with torch.utils.flop_counter), training samples/s (forward + backward + AdamW step),
inference images/s, and the share of the CPU's fp32 peak that training reaches
(3 x forward FLOPs x samples/s / peak), and the same per CPU-second of this process against one
core's half of the peak, which shows the kernels' efficiency apart from what other processes on
the machine take. Timings are medians of --repeats runs; other processes on
the machine slow them down, so quote them with the load in mind.

    .venv/bin/python benchmarks/train.py --sizes 128 256 --repeats 3

With --store, it times the whole training step instead (read from the store, augment, collate,
forward, backward, AdamW) for each augmentation setting, interleaved run by run so that load on
the machine hits all settings alike: `basic` (geometry and colour jitter), `exposure` (+ exposure
augmentation, as nuaa_cpu trains depth and fusion), `full` (+ rotation, exposure, sharpness,
capture-side steps, simulated attacks), `off`. Batches are balanced as the recipe's (--balance
class: simulated spoofs count as spoofs). Columns:
samples/s and its ratio to the first setting; per sample, the time spent waiting for the batch
(load) and in the model's step; one item alone; and `load cost`, the same ratio computed from the
load times and the median step of all settings (the step does not depend on augmentation), which
is steadier than samples/s on a busy machine:

    .venv/bin/python benchmarks/train.py --store stores/replay --sizes 128 \
        --kwargs '{widths: [16, 32, 64, 128]}' --augment off basic full
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from facepad.data.multistore import BALANCE_MODES
from facepad.models.losses import PadLoss
from facepad.models.registry import create_model

PEAK_GFLOPS = 160.0  # fp32 matmul peak measured on this 2-core AVX-512 CPU (DESIGN.md)


def seeded_model(name: str, size: int, depth_size: int, extra: dict) -> torch.nn.Module:
    """The model under test, seeded; depth models map `size` input to a `depth_size` map."""
    kwargs = dict(extra)
    if name != "binary_cnn":
        kwargs.setdefault("map_stride", size // depth_size)
    torch.manual_seed(0)
    return create_model(name, **kwargs)


def forward_gflops(model: torch.nn.Module, size: int) -> float:
    """Forward FLOPs of one image (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, 3, size, size))
    model.train()
    return counter.get_total_flops() / 1e9


def make_batch(model_name: str, batch: int, size: int, depth: int) -> dict:
    return {
        "image": torch.rand(batch, 3, size, size),
        "live": (torch.rand(batch) > 0.5).float(),
        "depth": torch.rand(batch, 1, depth, depth),
    }


def cast(bf16: bool):
    if bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_train(model, data, steps: int, channels_last: bool, bf16: bool) -> float:
    loss_fn = PadLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = data["image"]
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()

    def step():
        with cast(bf16):
            out = model(images)
        loss = loss_fn(out, data)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocator, oneDNN primitive cache
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    n = steps * len(images)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


@torch.no_grad()
def time_infer(model, data, steps: int, channels_last: bool, bf16: bool) -> float:
    images = data["image"]
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    model.eval()
    with cast(bf16):
        model(images)
        start = time.perf_counter()
        for _ in range(steps):
            model(images)
    return steps * len(images) / (time.perf_counter() - start)


AUGMENTS = {
    "off": None,
    "basic": {},
    "exposure": {"exposure": 0.8},  # nuaa_cpu's depth_unet and fusion
    "full": {
        "rotate": 10.0,
        "capture": 0.8,
        "exposure": 0.8,
        "sharpness": 0.5,
        "simulated_attacks": 0.5,
    },
}


def time_pipeline(model, store, size: int, depth: int, augment, args) -> tuple[float, ...]:
    """(samples/s, load ms, step ms, item ms) of `steps` training steps fed by the store's
    DataLoader: load = waiting for the batch (read, decode, augment, collate), step = the model's
    forward, backward and AdamW, both per sample; item = one dataset item alone."""
    from facepad.data.augment import Augment
    from facepad.data.dataset import StoreDataset
    from facepad.data.multistore import BalancedDataset

    aug = None if augment is None else Augment(**augment)
    ds = StoreDataset(store, "train", size, depth, augment=aug)
    if args.balance != "none":  # as the recipe draws its batches (not `balanced`: it prints)
        ds = BalancedDataset(ds, args.balance)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True
    )
    loss_fn = PadLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    batches = iter(loader)
    next(batches)  # warm-up: worker start, allocator
    load = 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        load += time.perf_counter() - t0
        images = batch["image"].contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(images), batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    total, n = time.perf_counter() - start, args.steps * args.batch
    t0 = time.perf_counter()
    for k in range(64):
        ds[k % len(ds)]
    item = (time.perf_counter() - t0) / 64 * 1000
    return n / total, load / n * 1000, (total - load) / n * 1000, item


def pipeline_main(args, extra: dict) -> None:
    from facepad.data.store import PreparedStore

    store = PreparedStore(args.store)
    n_train = len(store.indices("train"))
    print(f"{store.root}: {n_train} train samples, batch {args.batch}, {args.workers} DataLoader "
          f"workers, balance {args.balance}, medians of {args.repeats} x {args.steps} "
          "steps")  # fmt: skip
    print(f"{'model':<11} {'size':>4} {'augment':<8} {'train/s':>8} {'vs first':>8} "
          f"{'load ms':>8} {'step ms':>8} {'item ms':>8} {'load cost':>9}")  # fmt: skip
    for name in args.models:
        for size in args.sizes:
            model = seeded_model(name, size, args.depth_size, extra)
            model = model.to(memory_format=torch.channels_last)
            runs = {a: [] for a in args.augment}
            for _ in range(args.repeats):  # interleaved: off, basic, full, off, basic, ...
                for a in args.augment:
                    runs[a].append(time_pipeline(model, store, size, args.depth_size,
                                                 AUGMENTS[a], args))  # fmt: skip
            # per setting: medians of samples/s, load, step and item ms over the repeats
            med = {a: [statistics.median(col) for col in zip(*runs[a], strict=True)]
                   for a in args.augment}  # fmt: skip
            first_rate, first_load, _, _ = med[args.augment[0]]
            # The step does not depend on augmentation: its median over every run of every
            # setting is the steadiest estimate; `load cost` is then the rate the extra loading
            # alone leaves, (step + first load) / (step + load): the same ratio as `vs first`
            # without the run-to-run noise of the model step.
            step_all = statistics.median(r[2] for a in args.augment for r in runs[a])
            for a in args.augment:
                rate, load, step, item = med[a]
                cost = (step_all + first_load) / (step_all + load)
                print(f"{name:<11} {size:>4} {a:<8} {rate:>8.1f} {rate / first_rate:>8.2f} "
                      f"{load:>8.2f} {step:>8.2f} {item:>8.2f} {cost:>9.2f}",
                      flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=["binary_cnn", "depth_unet", "fusion"])
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    p.add_argument("--depth-size", type=int, default=32, help="map side at every input size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    p.add_argument(
        "--variants", nargs="+", default=["fp32", "fp32_cl", "bf16_cl"],
        help="fp32 (NCHW), fp32_cl (channels_last), bf16_cl (bf16 autocast, channels_last)",
    )  # fmt: skip
    p.add_argument("--kwargs", default="{}", help="model kwargs as YAML, e.g. '{widths: [16,32]}'")
    p.add_argument("--store", help="time the full training step fed from this prepared store")
    p.add_argument("--augment", nargs="+", default=["basic", "full"], choices=list(AUGMENTS))
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (--store)")
    p.add_argument(
        "--balance", default="class", choices=BALANCE_MODES,
        help="--store: batches drawn as data.balance draws them (nuaa_cpu: class)",
    )  # fmt: skip
    args = p.parse_args()
    import yaml

    extra = yaml.safe_load(args.kwargs) or {}
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.store:
        pipeline_main(args, extra)
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"medians of {args.repeats} x {args.steps} steps; peak {PEAK_GFLOPS} GFLOP/s"
    )
    header = (
        f"{'model':<11} {'size':>4} {'map':>4} {'variant':<8} {'GFLOP/img':>9} "
        f"{'train/s':>8} {'infer/s':>8} {'train GFLOP/s':>13} {'% peak':>6} "
        f"{'train/cpu-s':>11} {'% peak/core':>11}"
    )
    print(header)
    for name in args.models:
        for size in args.sizes:
            model = seeded_model(name, size, args.depth_size, extra)
            gflops = forward_gflops(model, size)
            data = make_batch(name, args.batch, size, args.depth_size)
            for variant in args.variants:
                channels_last, bf16 = variant.endswith("_cl"), variant.startswith("bf16")
                model = model.to(
                    memory_format=torch.channels_last if channels_last else torch.contiguous_format
                )
                runs = [
                    time_train(model, data, args.steps, channels_last, bf16)
                    for _ in range(args.repeats)
                ]
                train_rates = [wall for wall, _ in runs]
                # Samples per CPU-second of this process: on a shared machine, x cores gives the
                # rate this process would reach with the cores to itself (if threads scale).
                cpu_rate = statistics.median(cpu for _, cpu in runs)
                infer_rates = [
                    time_infer(model, data, args.steps, channels_last, bf16)
                    for _ in range(args.repeats)
                ]
                train_sps = statistics.median(train_rates)
                infer_ips = statistics.median(infer_rates)
                achieved = 3 * gflops * train_sps
                map_side = "-" if name == "binary_cnn" else str(args.depth_size)
                print(
                    f"{name:<11} {size:>4} {map_side:>4} {variant:<8} {gflops:>9.3f} "
                    f"{train_sps:>8.1f} {infer_ips:>8.1f} {achieved:>13.1f} "
                    f"{100 * achieved / PEAK_GFLOPS:>5.1f}% {cpu_rate:>11.1f} "
                    f"{100 * 3 * gflops * cpu_rate / (PEAK_GFLOPS / 2):>10.1f}%",
                    flush=True,
                )


if __name__ == "__main__":
    main()

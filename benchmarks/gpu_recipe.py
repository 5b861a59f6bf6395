"""The GPU recipe for real: bf16 autocast, torch.compile, DataLoader workers, on one CUDA device.

Writes a synthetic prepared store at CelebA-Spoof's training size (256x256 JPEG crops of smooth
random textures, 32x32 depth maps; the pixels are not faces, the sizes and formats are the
real ones), trains each model for a couple of short epochs with `celeba_intra_gpu` (the first
epoch includes compilation) once per augmentation path (`--augment-device`: `device`, the recipe's,
augments batches on the GPU and the workers only decode; `loader`, per-sample numpy in the
workers, as before), and prints per model and path: samples/s of the last epoch through the whole
training loop (loading, augmentation, forward, backward, AdamW), the model step alone on device
tensors, and peak GPU memory. First it checks the batched augmentation itself: the same draws on
CPU and on the GPU give the same batch (mean and largest difference), and its rate on the GPU at the
recipe's batch with the recipe's augmentation and with every augmentation on. Needs a CUDA device.

    python benchmarks/gpu_recipe.py --train 8192 --val 1024 --epochs 2
    python benchmarks/gpu_recipe.py --models depth_unet --augment-device device   # quicker
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from _synthetic_store import write_synthetic_store

from facepad.config import load_config
from facepad.train.loop import build_model, train


def model_step_rate(config, batch: int, steps: int = 30) -> float:
    """Samples/s of forward + backward + AdamW on device tensors: the loop's ceiling."""
    from facepad.models.losses import PadLoss

    model = build_model(config).cuda().to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.train.compile else model
    loss_fn = PadLoss(**vars(config.train.loss)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size, d = config.data.input_size, config.data.depth_size
    data = {
        "image": torch.rand(batch, 3, size, size, device="cuda").to(
            memory_format=torch.channels_last
        ),
        "live": (torch.rand(batch, device="cuda") > 0.5).float(),
        "depth": torch.rand(batch, 1, d, d, device="cuda"),
    }

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(step_model(data["image"]), data)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def check_device_augment(config, store: Path, every: bool, steps: int = 20) -> str:
    """One line: CPU vs GPU difference of the batched augmentation on the same draws, and its
    samples/s on the GPU (and peak memory) at the recipe's batch size."""
    from facepad.data.augment import Augment, training_augment
    from facepad.data.dataset import StoreDataset
    from facepad.data.device_augment import DeviceAugment

    d = config.data
    aug = training_augment(d)
    if every:
        aug = Augment(rotate=10.0, capture=0.8, exposure=0.8, sharpness=0.5)
    ds = StoreDataset(store, "train", d.input_size, d.depth_size, decode_only=True)
    batch = torch.utils.data.default_collate([ds[i] for i in range(d.batch_size)])
    device_aug = DeviceAugment(aug, d.input_size, d.depth_size)
    outs = []
    for device in ("cpu", "cuda"):
        device_aug.start_epoch(1)
        outs.append(device_aug({k: v.to(device) for k, v in batch.items()}))
    image_diff = (outs[0]["image"] - outs[1]["image"].cpu()).abs()
    depth_diff = (outs[0]["depth"] - outs[1]["depth"].cpu()).abs().max().item()
    on_gpu = {k: v.cuda() for k, v in batch.items()}
    for _ in range(3):
        device_aug(on_gpu)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        device_aug(on_gpu)
    torch.cuda.synchronize()
    rate = steps * d.batch_size / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30
    which = "every augmentation" if every else "the recipe's augmentation"
    return (f"batched augmentation, {which}: CPU vs GPU on the same draws: image mean "
            f"{image_diff.mean():.1e}, max {image_diff.max():.1e}, depth max {depth_diff:.1e} "
            f"(TF32 convolutions on the GPU); {rate:.0f} samples/s on the GPU alone (batch "
            f"{d.batch_size}, peak {peak:.2f} GiB)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["binary_cnn", "depth_unet", "fusion"])
    p.add_argument("--train", type=int, default=8192, help="training samples")
    p.add_argument("--val", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument(
        "--augment-device",
        nargs="+",
        default=["device", "loader"],
        choices=["device", "loader"],
        help="augmentation paths to train with",
    )
    p.add_argument("--out", default="/tmp/facepad-gpu")
    p.add_argument("overrides", nargs="*", help="extra config overrides, e.g. model.kwargs.theta=0")
    args = p.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA device"
    out = Path(args.out)
    started = time.perf_counter()
    store = write_synthetic_store(out / "store", args.train, args.val)
    seconds = time.perf_counter() - started
    print(f"synthetic store: {args.train} + {args.val} samples in {seconds:.0f} s")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    base = [
        f"data.store={store}", f"train.epochs={args.epochs}", f"data.workers={args.workers}",
        "train.early_stop_patience=0", f"out_dir={out / 'runs'}", "train.device=cuda",
    ]  # fmt: skip
    recipe = load_config("celeba_intra_gpu", [*base, *args.overrides])
    for every in (False, True):
        print(check_device_augment(recipe, store, every), flush=True)
    rows = []
    for name in args.models:
        for path in args.augment_device:
            run = f"{name}-{path}"
            config = load_config("celeba_intra_gpu", [
                *base, f"model.name={name}", f"run_name={run}", f"data.augment_device={path}",
                *args.overrides,
            ])  # fmt: skip
            rows.append((name, path, *train_and_time(config, out / "runs" / run)))
            torch._dynamo.reset()
    print("\n| model | augmentation | epoch 1 s (compiles) | last epoch s | loop samples/s "
          "| model step samples/s | loop / step | peak GPU GiB | wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path, first, last, loop_rate, step_rate, peak, wall in rows:
        cells = [name, path, f"{first:.1f}", f"{last:.1f}", f"{loop_rate:.0f}", f"{step_rate:.0f}",
                 f"{loop_rate / step_rate:.2f}", f"{peak:.2f}", f"{wall:.0f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


def train_and_time(config, run_dir: Path) -> tuple[float, ...]:
    """(epoch 1 s, last epoch s, loop samples/s, model step samples/s, peak GiB, wall s)."""
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    train(config)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30
    with open(run_dir / "metrics.csv") as f:
        epochs = list(csv.DictReader(f))
    step_rate = model_step_rate(config, config.data.batch_size)
    return (float(epochs[0]["epoch_s"]), float(epochs[-1]["epoch_s"]),
            float(epochs[-1]["train_samples_per_s"]), step_rate, peak, wall)  # fmt: skip


if __name__ == "__main__":
    main()

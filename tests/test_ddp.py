"""Two-process DDP on CPU (gloo): same weights on every rank, same loss curve as one process,
a different augmentation on every rank, validation sharded yet exact, and a failing rank that
ends the job instead of hanging it."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _prepare_helpers import write_store
from _train_helpers import DiesAt, SyntheticPad, small_config, synthetic_datasets

from facepad.train import distributed as fdist
from facepad.train import epoch as train_epoch
from facepad.train import loop
from facepad.train import setup as train_setup

JOB_LIMIT_S = 120  # a hung job fails its test instead of hanging the suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_env(rank: int, world_size: int, port: int) -> None:
    """The environment torchrun would give this rank.

    Also fork DataLoader workers, as under torchrun: a process started by mp's spawn would
    spawn its workers too, and each would import torch again (seconds per worker).
    """
    multiprocessing.set_start_method("fork", force=True)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
    )


def run_ranks(fn, *args, nprocs: int = 2, limit_s: float = JOB_LIMIT_S) -> float:
    """Start `fn(rank, port, *args)` in `nprocs` processes; wait at most `limit_s` seconds.

    Returns the seconds the job took; a rank's error is raised (mp.ProcessRaisedException) once
    the others are stopped, as torchrun would stop them.
    """
    started = time.monotonic()
    context = mp.start_processes(
        fn, args=(free_port(), *args), nprocs=nprocs, join=False, start_method="spawn"
    )
    try:
        while not context.join(timeout=1):
            if time.monotonic() - started > limit_s:
                pytest.fail(f"the {nprocs}-rank job still runs after {limit_s} s: it hangs")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return time.monotonic() - started


def keep_models(built: list):
    """Patch build_model (where setup_run calls it) to hold on to this rank's model."""
    original = train_setup.build_model

    def keep(config):
        built.append(original(config))
        return built[-1]

    train_setup.build_model = keep


def ddp_worker(rank: int, port: int, out_dir: str, overrides: list[str]) -> None:
    """One rank: the ordinary train(), then its weights saved to compare them."""
    torchrun_env(rank, 2, port)
    built: list = []
    keep_models(built)
    config = small_config(Path(out_dir), "depth_unet", *overrides)
    loop.train(config, datasets=synthetic_datasets(n_train=32))
    torch.save(built[0].state_dict(), Path(out_dir) / f"rank{rank}.pt")


def train_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_two_rank_gloo_matches_one_process(tmp_path):
    overrides = ["train.epochs=3", "data.batch_size=8", "data.augment=false"]
    ddp_dir = tmp_path / "ddp"
    run_ranks(ddp_worker, str(ddp_dir), overrides)
    rank0 = torch.load(ddp_dir / "rank0.pt", weights_only=True)
    rank1 = torch.load(ddp_dir / "rank1.pt", weights_only=True)
    for key, value in rank0.items():  # BN statistics too: rank 0's are broadcast to validate
        torch.testing.assert_close(rank1[key], value, msg=f"{key} differs between ranks")

    # The figures saved with the checkpoint are those of its own weights, scored by one process.
    from facepad.models.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(ddp_dir / "depth_unet" / "last.pt")
    model, _ = model_from_checkpoint(ckpt)
    config = small_config(ddp_dir, "depth_unet", *overrides)
    again = loop.validate(
        model,
        loop.val_loader_for(synthetic_datasets(n_train=32)[1], 4, 0, fdist.DistInfo()),
        loop.PadLoss(**vars(config.train.loss)),
        torch.device("cpu"),
        config,
    )
    assert again["val_loss"] == pytest.approx(ckpt["val"]["val_loss"], rel=1e-5)

    single = small_config(tmp_path / "single", "depth_unet", *overrides)
    loop.train(single, datasets=synthetic_datasets(n_train=32))
    one, two = (
        train_losses(tmp_path / "single" / "depth_unet"),
        train_losses(ddp_dir / "depth_unet"),
    )
    assert len(one) == len(two) == 3
    # Same global batch (8 = 2 x 4); shuffles and per-rank BN batches differ, so only close.
    for a, b in zip(one, two, strict=True):
        assert b == pytest.approx(a, rel=0.1), (one, two)
    assert two[-1] < two[0]


# --- augmentation: each rank (and each worker) draws its own --------------------------------


def same_face_store(root: Path, n: int = 16) -> Path:
    """n copies of one crop: batches can differ only by their augmentation."""
    yy, xx = np.mgrid[0:48, 0:48]
    crop = np.stack([xx * 5, yy * 5, (xx + yy) * 2], axis=2).clip(0, 255).astype(np.uint8)
    depth = np.zeros((8, 8), np.float32)
    labels = ["live" if i % 2 else "spoof" for i in range(n)]
    splits = ["train"] * (n - 4) + ["val"] * 4
    return write_store(root, [crop] * n, [depth] * n, labels, splits)


def augment_worker(rank: int, port: int, out_dir: str, store: str, workers: int, path: str) -> None:
    """Train one epoch on the store; save the images of the first two training batches as the
    model gets them (after the device augmentation with data.augment_device=device)."""
    torchrun_env(rank, 2, port)
    built: list = []
    keep_models(built)
    seen: list[torch.Tensor] = []
    original = train_epoch.to_device

    def record(*args, **kwargs):
        batch = original(*args, **kwargs)
        if len(seen) < 2:  # train_step's call (validation holds its own to_device)
            seen.append(batch["image"].clone())
        return batch

    train_epoch.to_device = record
    config = small_config(
        Path(out_dir), "binary_cnn", "train.epochs=1", "data.batch_size=4", "data.augment=true",
        f"data.workers={workers}", f"data.store={store}", "data.input_size=32",
        f"data.augment_device={path}",
    )  # fmt: skip
    loop.train(config)
    torch.save(seen, Path(out_dir) / f"batches{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "path"), [(0, "loader"), (2, "loader"), (2, "device")])
def test_each_rank_draws_its_own_augmentation(tmp_path, workers, path):
    store = same_face_store(tmp_path / "store")
    run_ranks(augment_worker, str(tmp_path / "run"), str(store), workers, path)
    rank0 = torch.load(tmp_path / "run" / "batches0.pt")
    rank1 = torch.load(tmp_path / "run" / "batches1.pt")
    assert len(rank0) == len(rank1) == 2
    # Every sample is the same crop, so any difference is the augmentation's.
    for b0, b1 in zip(rank0, rank1, strict=True):
        assert b0.shape == b1.shape == (2, 3, 32, 32)
        assert not torch.equal(b0, b1), "both ranks drew the same augmentation"
    # Within a rank, consecutive batches (from different workers when workers > 0) differ too.
    assert not torch.equal(rank0[0], rank0[1])


# --- validation: sharded over the ranks, the same figures as one process ---------------------


class ShuffledLabels(torch.utils.data.Dataset):
    """13 synthetic items whose labels ignore the image: an untrained model then ranks them
    neither perfectly nor perfectly wrong, so EER, ACER and AUC are all informative."""

    LIVE = (1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1)

    def __init__(self):
        self.base = SyntheticPad(len(self.LIVE), 32, 8, seed=1)

    def __len__(self):
        return len(self.LIVE)

    def __getitem__(self, i):
        return {**self.base[i], "live": torch.tensor(float(self.LIVE[i]))}


def val_worker(rank: int, port: int, out_dir: str) -> None:
    """Validate a fixed model on this rank's share; rank 0 writes the gathered figures."""
    torchrun_env(rank, 2, port)
    info = fdist.setup("cpu")
    config = small_config(Path(out_dir), "depth_unet")
    torch.manual_seed(0)
    model = loop.build_model(config)  # same seed: same weights on both ranks
    loader = loop.val_loader_for(ShuffledLabels(), 4, 0, info)  # the ranks hold 7 and 6
    loss_fn = loop.PadLoss(**vars(config.train.loss))
    result = loop.validate(model, loader, loss_fn, info.device, config, info)
    result["shard"] = len(loader.dataset)
    # Compile after DDP: the compiled module wraps the DDP one (compiling is lazy: no compile).
    wrapped = loop.wrap_for_training(model, info, compile=True)
    result["wrapped"] = [type(wrapped).__name__, type(wrapped._orig_mod).__name__]
    (Path(out_dir) / f"val{rank}.json").write_text(json.dumps(result))
    fdist.cleanup(info)


@pytest.mark.slow
def test_sharded_validation_gives_the_figures_of_one_process(tmp_path):
    run_ranks(val_worker, str(tmp_path))
    ranks = [json.loads((tmp_path / f"val{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["shard"] for r in ranks) == [6, 7]
    assert ranks[0]["wrapped"] == ["OptimizedModule", "DistributedDataParallel"]

    config = small_config(tmp_path, "depth_unet")
    torch.manual_seed(0)
    model = loop.build_model(config)
    one = loop.validate(
        model,
        loop.val_loader_for(ShuffledLabels(), 4, 0, fdist.DistInfo()),
        loop.PadLoss(**vars(config.train.loss)),
        torch.device("cpu"),
        config,
    )
    assert 0 < one["val_acer"] < 1 and 0 < one["val_auc"] < 1  # not a trivial case
    for rank in ranks:  # every rank computes the same figures
        for key in ("val_loss", "val_apcer", "val_bpcer", "val_acer", "val_auc", "val_eer"):
            assert rank[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7), key
        assert rank["threshold"] == pytest.approx(one["threshold"], abs=1e-6)


# --- a rank that fails ends the job ----------------------------------------------------------


def failing_worker(rank: int, port: int, out_dir: str) -> None:
    """Rank 1 raises in the middle of epoch 2, while rank 0 waits for its gradients."""
    torchrun_env(rank, 2, port)
    train_set, val_set, pre = synthetic_datasets(n_train=32)
    if rank == 1:
        train_set = DiesAt(train_set, 16 + 6)  # 16 items per rank per epoch
    config = small_config(Path(out_dir), "binary_cnn", "train.epochs=3", "data.augment=false")
    loop.train(config, datasets=(train_set, val_set, pre))


@pytest.mark.slow
def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    with pytest.raises(mp.ProcessRaisedException, match="died after"):
        seconds = run_ranks(failing_worker, str(tmp_path), limit_s=90)
        pytest.fail(f"the job ended without an error after {seconds:.0f} s")
    last = tmp_path / "binary_cnn" / "last.pt"
    assert torch.load(last, weights_only=True)["epoch"] == 1  # epoch 1 was saved, then the error

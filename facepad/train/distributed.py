"""DDP plumbing: one code path for `facepad train` and `torchrun --nproc_per_node=N -m facepad`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible: use train.device=auto")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device_preference: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single process.

    Backend: nccl on CUDA, gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
        device=pick_device(device_preference, local_rank),
    )
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if info.device.type == "cuda" else "gloo"
        if info.device.type == "cuda":
            torch.cuda.set_device(info.device)
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's value on every rank (e.g. the early-stop decision)."""
    if not info.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank. Each rank updates them from
    its own batches, so they drift apart; sharded validation and the saved checkpoint (rank 0's)
    must see one set."""
    if not info.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum of each value over the ranks (the epoch's loss and sample count)."""
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_array(values: np.ndarray, info: DistInfo) -> np.ndarray:
    """Every rank's 1-D array joined in rank order, on every rank (val scores and labels).

    Ranks may hold different lengths (an uneven val split), so this goes through objects.
    """
    if not info.distributed:
        return values
    parts: list[Any] = [None] * info.world_size
    dist.all_gather_object(parts, values)
    return np.concatenate(parts)


def cleanup(info: DistInfo) -> None:
    """Leave the process group after a run that succeeded on every rank.

    Barrier first: without it a rank sometimes aborts at exit (gloo). Never call this after an
    error: the other ranks may be inside a collective and the barrier would hang.
    """
    if info.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def default_threads(info: DistInfo) -> int:
    """Share this machine's cores among the local processes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_world_size))

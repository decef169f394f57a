"""Data-parallel fine-tunes: under ``torchrun`` (or ``accelerate launch``) each process takes its share of every
batch and the gradients are averaged, so N processes make the update one process makes on the whole batch.

:func:`tune` calls :func:`join` (a process group from torchrun's environment: ``gloo`` on CPU, ``nccl`` on
CUDA), shards the training and hint batches with :func:`shard` and calls :func:`average_grads` after each
backward. Terms on fixed prompts (KL on neutral text, the beyond-the-template terms) and validation run whole
on every process: they agree, and averaging leaves them as they are. Only the first process writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from lftf_interp.errors import ConfigError


def join() -> None:
    """Start the process group torchrun describes (``WORLD_SIZE`` > 1), once; nothing in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def world() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def check_batch(batch_size: int) -> None:
    _, n = world()
    if batch_size % n:
        raise ConfigError(
            f"batch_size {batch_size} does not split over {n} processes: give a multiple of {n}."
        )


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This process's contiguous share of a batch's indices (all of them in a single process)."""
    rank, n = world()
    if n == 1:
        return idx
    if len(idx) % n:
        raise ConfigError(
            f"a batch of {len(idx)} prompts does not split over {n} processes (fewer prompts than batch_size?)."
        )
    k = len(idx) // n
    return idx[rank * k : (rank + 1) * k]


def average_grads(params) -> None:
    """Average each parameter's gradient over the processes (in place)."""
    _, n = world()
    if n == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= n


def mean(x: float) -> float:
    """A float averaged over the processes (the logged loss of the whole batch)."""
    _, n = world()
    if n == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item() / n)


__all__ = ["average_grads", "check_batch", "is_main", "join", "mean", "shard", "world"]

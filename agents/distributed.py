"""Data-parallel training over processes started by ``torchrun`` (torch.distributed).

Every rank steps its own slice of the sub-envs and computes the gradient of a mean over its own
samples; :func:`average_gradients` turns those into the gradient of the mean over the samples of
all ranks, so that every rank takes the same optimiser step and the parameters stay identical.
Rank 0 alone writes the TensorBoard log and the checkpoint, which holds every rank's env state.

A process must leave the process group before the interpreter shuts down: a gloo worker thread that
is still alive then (it may hold the last reference to a tensor of the last collective) is stopped by
the interpreter's teardown and aborts the whole process ("terminate called without an active
exception", SIGABRT), at random and more often under load. :func:`join_from_environment` therefore
registers :func:`leave_process_group` to run at exit, and ``physrl train`` calls it when it is done.
"""

from __future__ import annotations

import atexit
import gc
import os
from typing import Any, Iterable

import torch
import torch.distributed as dist


def rank_and_world_size() -> tuple[int, int]:
    """(rank, number of ranks); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(parameters: Iterable[torch.nn.Parameter], weight: torch.Tensor | float) -> None:
    """Replace each rank's gradient of a mean over ``weight`` samples by the all-rank sample mean:
    g ← Σ_r w_r g_r / Σ_r w_r (one all-reduce of one flat buffer). Does nothing in a single process."""
    if rank_and_world_size()[1] == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    weight = torch.as_tensor(weight, dtype=grads[0].dtype, device=grads[0].device).reshape(1)
    flat = torch.cat([weight] + [g.flatten() * weight for g in grads])
    dist.all_reduce(flat)
    total = flat[0].clamp(min=torch.finfo(flat.dtype).tiny)
    offset = 1
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g) / total)
        offset += g.numel()


def join_from_environment(device: str) -> tuple[int, int, str]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1) join the process group — NCCL for CUDA devices, gloo on
    the CPU — and return (rank, world size, this rank's device: ``cuda:LOCAL_RANK`` on GPUs)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, device
    cuda = torch.device(device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
        atexit.register(leave_process_group, synchronize=False)
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def leave_process_group(synchronize: bool = True) -> None:
    """Destroy the process group (after a barrier when ``synchronize``, so that no rank tears its
    connections down while another still uses them) and collect what held its tensors; does nothing
    when no group is initialised. Call it on every rank; skip the barrier when the other ranks may
    already be gone (an error, at exit)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if synchronize:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (so that all ranks stop at the same step)."""
    if rank_and_world_size()[1] == 1:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if rank_and_world_size()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_rank0(value: Any) -> list[Any] | None:
    """Every rank's ``value`` (moved to the CPU), as a list on rank 0 and None elsewhere."""
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return [value]
    value = _to_cpu(value)
    values = [None] * world_size if rank == 0 else None
    dist.gather_object(value, values, dst=0)
    return values


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value

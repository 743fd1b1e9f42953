"""Data-parallel training over processes started by ``torchrun`` (torch.distributed).

Every rank steps its own slice of the sub-envs and computes the gradient of a mean over its own
samples; :func:`average_gradients` turns those into the gradient of the mean over the samples of
all ranks, so that every rank takes the same optimiser step and the parameters stay identical.
"""

from __future__ import annotations

from typing import Iterable

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

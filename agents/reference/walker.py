"""Known answers of the random walkers (:mod:`physrl.envs.walker`): their optimal policies and the exact
optimal expected return of WalkerTarget."""

from __future__ import annotations

import torch


def walker_target_optimum(max_steps: int = 20, target_range: int = 10) -> float:
    """Exact optimal expected return of WalkerTarget: move right until on target, then stay.

    A target at g > 0 is reached at the end of step g and pays on steps g..T; g = 0 pays T times.
    """
    totals = [max_steps if g == 0 else max(0, max_steps - g + 1) for g in range(target_range)]
    return sum(totals) / target_range


def random_walker_optimum(obs: torch.Tensor) -> torch.Tensor:
    """RandomWalker's optimum: always +1 (return T)."""
    return torch.ones(obs.shape[0], dtype=torch.int64, device=obs.device)


def walker_target_optimum_policy(obs: torch.Tensor) -> torch.Tensor:
    """WalkerTarget's optimum: move right until on target, then stay (action = 1 − on_target)."""
    return 1 - obs.long()

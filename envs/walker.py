"""The random walkers of the policy-gradient lecture (Marquardt, *Machine Learning for Physicists*).

``RandomWalker``: T steps of ±1; the return is the final position x(T) = 2N₊ − T. With a stateless
policy π = σ(θ) for +1, E[R] = T(2π − 1) and the trajectory-averaged REINFORCE update is
δθ = 2ηTπ(1 − π) (Marquardt, Les Houches 2019 lecture notes, §3.1.3).

``WalkerTarget`` (the lecture's "second-simplest" example): a target sits at a random position
g ∈ {0, …, target_range − 1}; the walker starts at 0, may stay (0) or move right (1), observes
whether it is on the target, and earns 1 for every step that ends on the target.
"""

from __future__ import annotations

import torch
from gymnasium import spaces

from physrl.envs.core import BatchCore, SingleEnv, VectorEnv, check_int


class WalkerCore(BatchCore):
    """Batched ±1 random walk; observation = time step, reward = displacement."""

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", max_steps: int = 20) -> None:
        super().__init__(num_envs, device, max_steps)
        self.single_observation_space = spaces.Discrete(self.max_steps + 1)
        self.single_action_space = spaces.Discrete(2)
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def reset_envs(self, index: torch.Tensor) -> None:
        self.position[index] = 0

    def observe(self) -> torch.Tensor:
        return self.elapsed.clone()

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        displacement = 2 * actions - 1
        self.position = self.position + displacement
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return displacement.to(torch.float32), terminated, {"position": self.position.clone()}

    def render_ansi(self, i: int) -> str:
        return f"t={int(self.elapsed[i])} x={int(self.position[i])}"


def walker_target_optimum(max_steps: int = 20, target_range: int = 10) -> float:
    """Exact optimal expected return of WalkerTarget: move right until on target, then stay.

    A target at g > 0 is reached at the end of step g and pays on steps g..T; g = 0 pays T times.
    """
    totals = [max_steps if g == 0 else max(0, max_steps - g + 1) for g in range(target_range)]
    return sum(totals) / target_range


class WalkerTargetCore(BatchCore):
    """Batched walker with a hidden target; observation = on target (0/1)."""

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", max_steps: int = 20,
                 target_range: int = 10) -> None:
        super().__init__(num_envs, device, max_steps)
        self.target_range = check_int("target_range", target_range, 1)
        self.single_observation_space = spaces.Discrete(2)
        self.single_action_space = spaces.Discrete(2)
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.target = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def reset_envs(self, index: torch.Tensor) -> None:
        self.position[index] = 0
        self.target[index] = self.rng.bits(index, ()) % self.target_range

    def observe(self) -> torch.Tensor:
        return (self.position == self.target).to(torch.int64)

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        self.position = self.position + actions
        reward = (self.position == self.target).to(torch.float32)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return reward, terminated, {"position": self.position.clone(), "target": self.target.clone()}

    def render_ansi(self, i: int) -> str:
        cells = ["."] * max(int(self.position[i]), int(self.target[i]), 0) + ["."]
        cells[int(self.target[i])] = "T"
        cells[int(self.position[i])] = "W" if self.position[i] != self.target[i] else "*"
        return f"t={int(self.elapsed[i])} " + "".join(cells)


class RandomWalkerEnv(SingleEnv):
    __doc__ = "RandomWalker-v0, single-env face.\n\n" + __doc__
    core_class = WalkerCore


class RandomWalkerVectorEnv(VectorEnv):
    __doc__ = "RandomWalker-v0, vector face.\n\n" + __doc__
    core_class = WalkerCore


class WalkerTargetEnv(SingleEnv):
    __doc__ = "WalkerTarget-v0, single-env face.\n\n" + __doc__
    core_class = WalkerTargetCore


class WalkerTargetVectorEnv(VectorEnv):
    __doc__ = "WalkerTarget-v0, vector face.\n\n" + __doc__
    core_class = WalkerTargetCore

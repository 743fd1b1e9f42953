"""Reference policies: random, the maze's greedy planner and exact optimum, the walkers' analytic optima.

Every policy is a callable mapping a batch of observations (as the vector face returns them) to a
batch of actions, like ``agent.act`` and ``physrl.training.load_policy``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from gymnasium import spaces

from physrl.agents.rollout import play_episodes
from physrl.envs.maze import MOVES, MazeLayout, greedy_actions, optimal_plan

PolicyFn = Callable[[torch.Tensor], torch.Tensor]


def random_policy(action_space: spaces.Space, seed: int = 0) -> PolicyFn:
    """Uniformly random actions from the single-env ``action_space`` (Discrete or bounded Box)."""
    generators: dict[torch.device, torch.Generator] = {}

    def policy(obs: torch.Tensor) -> torch.Tensor:
        if obs.device not in generators:
            generators[obs.device] = torch.Generator(device=obs.device).manual_seed(seed)
        generator, n = generators[obs.device], obs.shape[0]
        if isinstance(action_space, spaces.Discrete):
            low = int(action_space.start)
            return torch.randint(low, low + int(action_space.n), (n,), generator=generator, device=obs.device)
        if isinstance(action_space, spaces.Box):
            low = torch.as_tensor(action_space.low, dtype=torch.float32, device=obs.device)
            high = torch.as_tensor(action_space.high, dtype=torch.float32, device=obs.device)
            u = torch.rand((n, *action_space.shape), generator=generator, device=obs.device)
            return low + (high - low) * u
        raise TypeError(f"random_policy needs a Discrete or Box action space, got {action_space}")

    return policy


def maze_greedy_policy(obs: torch.Tensor) -> torch.Tensor:
    """The maze's nearest-chest planner on image observations (:func:`physrl.envs.maze.greedy_actions`)."""
    return greedy_actions(obs)


class MazeOptimalPolicy:
    """The exact optimum of the treasure maze as a policy on image observations (B, 3, M, M).

    The first time it sees a state it plans ``max_steps`` steps ahead with
    :func:`physrl.envs.maze.optimal_plan` (so it must first see each episode at its start) and
    remembers the states along the plan; later steps of the episode replay the plan.
    """

    def __init__(self, max_steps: int, delete_chests: bool = True) -> None:
        self.max_steps, self.delete_chests = max_steps, delete_chests
        self.plans: dict[bytes, int] = {}

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        planes = obs.detach().cpu().numpy() > 0.5
        actions = [self._action(p) for p in planes]
        return torch.tensor(actions, dtype=torch.int64, device=obs.device)

    def _action(self, planes: np.ndarray) -> int:
        key = planes.tobytes()
        if key not in self.plans:
            self._plan(planes)
        return self.plans[key]

    def _plan(self, planes: np.ndarray) -> None:
        walls, chests, robot = planes
        start = tuple(int(v) for v in np.argwhere(robot)[0])
        layout = MazeLayout(walls, [tuple(int(v) for v in c) for c in np.argwhere(chests)], start)
        _, actions = optimal_plan(layout, self.max_steps, self.delete_chests)
        state = planes.copy()
        for action in actions + [0]:
            self.plans[state.tobytes()] = action
            r, c = np.argwhere(state[2])[0]
            dr, dc = MOVES[action]
            state[2, r, c] = False
            state[2, r + dr, c + dc] = True
            if self.delete_chests:
                state[1, r + dr, c + dc] = False


def random_walker_optimum(obs: torch.Tensor) -> torch.Tensor:
    """RandomWalker's optimum: always +1 (return T)."""
    return torch.ones(obs.shape[0], dtype=torch.int64, device=obs.device)


def walker_target_optimum_policy(obs: torch.Tensor) -> torch.Tensor:
    """WalkerTarget's optimum: move right until on target, then stay (action = 1 − on_target)."""
    return 1 - obs.long()


def episode_returns(envs, policy: PolicyFn, seed: int) -> torch.Tensor:
    """Return of the first episode of every sub-env of a vector env under ``policy`` (reset with ``seed``)."""
    obs, _ = envs.reset(seed=seed)
    return play_episodes(envs, policy, obs)

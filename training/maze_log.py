"""``charts/optimum_ratio`` during ``physrl train`` on the treasure maze: return over the exact optimum.

For a sample of the episodes that end in each iteration (the first ``per_iteration``), the exact
optimum of the maze actually played (:func:`physrl.agents.reference.maze.optimal_return`, about 10 ms a maze)
is computed from the episode's first observation; the chart is the summed return over the summed
optimum of the last ``window`` sampled episodes, the challenge's score on the training mazes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from physrl.agents.reference.maze import optimal_return
from physrl.envs.maze import MazeLayout, TreasureMazeVectorEnv


class MazeOptimumLog:
    """Tracks the return-to-optimum ratio of sampled training episodes of one maze learner."""

    def __init__(self, envs: Any, learner: Any, per_iteration: int = 4, window: int = 40) -> None:
        self.max_steps, self.rollout, self.per_iteration = envs.max_steps, learner.rollout, per_iteration
        self.pairs: deque[tuple[float, int]] = deque(maxlen=window)
        self.rollout.keep_starts = True

    @classmethod
    def applies(cls, envs: Any, learner: Any) -> bool:
        """True for one of our learners on a maze whose optimum :func:`~physrl.agents.reference.maze.optimal_return` gives (image observations,
        chests deleted when collected, no wall penalty)."""
        if not isinstance(envs, TreasureMazeVectorEnv):
            return False
        options = envs.options
        return (options["obs_mode"] == "image" and options["delete_chests"] and options["wall_penalty"] == 0
                and hasattr(learner, "rollout"))

    def stats(self) -> dict[str, float]:
        """``{"charts/optimum_ratio": ...}`` after an iteration (empty while no episode has ended)."""
        finished = self.rollout.finished
        if finished is not None:
            starts, returns = finished
            for obs, value in zip(starts[:self.per_iteration].cpu(), returns[:self.per_iteration].tolist()):
                self.pairs.append((value, optimal_return(layout_of(obs), self.max_steps)))
        optimum = sum(o for _, o in self.pairs)
        return {"charts/optimum_ratio": sum(r for r, _ in self.pairs) / optimum} if optimum else {}


def layout_of(obs: torch.Tensor) -> MazeLayout:
    """The maze of an image observation (3, M, M): walls, chests, robot (as the start)."""
    walls = (obs[0] > 0.5).numpy()
    chests = [tuple(c) for c in torch.nonzero(obs[1] > 0.5).tolist()]
    start = tuple(torch.nonzero(obs[2] > 0.5)[0].tolist())
    return MazeLayout(walls, chests, start)

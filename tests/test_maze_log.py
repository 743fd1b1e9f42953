"""charts/optimum_ratio: return over the exact optimum of the training mazes actually played."""

from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch

from physrl.agents.reference.maze import MazeOptimalPolicy, maze_greedy_policy
from physrl.agents.rollout import Rollout
from physrl.training.maze_log import MazeOptimumLog


def test_the_optimal_policy_scores_exactly_one_and_greedy_less():
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=4, size=7, n_chests=4, max_steps=12)
    learner = SimpleNamespace(rollout=Rollout(envs, seed=0))
    assert MazeOptimumLog.applies(envs, learner)
    log = MazeOptimumLog(envs, learner, per_iteration=100)
    optimal = MazeOptimalPolicy(max_steps=12)
    ended = 0
    for _ in range(3):
        batch = learner.rollout.collect(10, lambda obs: (optimal(obs), {}))
        ended += int(batch.dones.sum())
        assert log.stats() == ({"charts/optimum_ratio": 1.0} if ended else {})
    assert ended >= 4
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=16)
    learner = SimpleNamespace(rollout=Rollout(envs, seed=1))
    log = MazeOptimumLog(envs, learner, per_iteration=100)
    learner.rollout.collect(41, lambda obs: (maze_greedy_policy(obs), {}))
    assert 0.6 < log.stats()["charts/optimum_ratio"] < 0.99   # greedy scores 0.878 on the evaluation set


@pytest.mark.parametrize("kwargs", [{"obs_mode": "position"}, {"delete_chests": False}, {"wall_penalty": 0.1}])
def test_the_ratio_is_only_logged_where_the_optimum_is_known(kwargs):
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, **kwargs)
    assert not MazeOptimumLog.applies(envs, SimpleNamespace(rollout=Rollout(envs, seed=0)))
    assert not MazeOptimumLog.applies(gym.make_vec("physrl/RandomWalker-v0", num_envs=2), SimpleNamespace())

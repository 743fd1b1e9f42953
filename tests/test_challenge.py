import json
import pathlib

import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.envs.maze import MazeCore, greedy_actions, optimal_return
from physrl.training import challenge
from physrl.training.challenge import (CHALLENGE_ENV, EVAL_DOMAIN, EVAL_SIZE, builtin_submission, evaluate,
                                       evaluation_envs, evaluation_optima, maze_digests)
from physrl.training.checkpoint import save_checkpoint, space_spec
from physrl.training.cli import main

#: Content hash of the 1000 evaluation mazes. Changing it changes the challenge: old results stop counting.
EVALUATION_SET_HASH = "39e76e3a85f4c835e9583ac67508b5c2e6125cec5fe013bc9c24f090e9856c43"
LEADERBOARD = pathlib.Path(__file__).resolve().parents[1] / "leaderboard"


def test_the_evaluation_set_is_fixed():
    assert challenge.EVAL_SET_HASH == EVALUATION_SET_HASH
    assert challenge.evaluation_set_hash() == EVALUATION_SET_HASH
    core = evaluation_envs()[0].core
    digests = maze_digests(core.walls, core.chests, core.start_cell)
    assert len(set(digests)) == EVAL_SIZE
    first = evaluation_envs(7)[0].core  # a prefix of the set is the same mazes, whatever the batch
    assert maze_digests(first.walls, first.chests, first.start_cell) == digests[:7]


def test_shipped_optima_are_the_exact_optima():
    assert len(challenge.EVAL_OPTIMA) == EVAL_SIZE
    np.testing.assert_array_equal(challenge.exact_optima(60), evaluation_optima(60))


def test_evaluation_domain_is_not_reachable_from_env_options():
    assert EVAL_DOMAIN != 0
    assert gym.make_vec(CHALLENGE_ENV, num_envs=2).core.rng.domain == 0
    assert gym.make(CHALLENGE_ENV).unwrapped.core.rng.domain == 0
    with pytest.raises(TypeError, match="domain"):
        gym.make_vec(CHALLENGE_ENV, num_envs=2, domain=EVAL_DOMAIN)


def record_mazes(monkeypatch) -> set[str]:
    """Collect the content digest of every maze that any MazeCore draws from now on."""
    seen: set[str] = set()
    reset_envs = MazeCore.reset_envs

    def recording(self, index):
        reset_envs(self, index)
        seen.update(maze_digests(self.walls[index], self.chests[index], self.start_cell[index]))
    monkeypatch.setattr(MazeCore, "reset_envs", recording)
    return seen


def evaluation_digests() -> set[str]:
    core = evaluation_envs()[0].core
    return set(maze_digests(core.walls, core.chests, core.start_cell))


def test_training_streams_never_draw_an_evaluation_maze(monkeypatch):
    seen = record_mazes(monkeypatch)
    for seed in (0, 1, 500, 123456):  # the evaluation seeds 0..999, in the training domain
        envs = gym.make_vec(CHALLENGE_ENV, num_envs=100)
        envs.reset(seed=seed)
        actions = torch.Generator().manual_seed(seed)
        for _ in range(10 * 41):  # ten episodes of every sub-env (plus autoreset steps)
            envs.step(torch.randint(0, 5, (100,), generator=actions))
    assert len(seen) > 4000
    assert not seen & evaluation_digests()

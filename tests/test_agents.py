"""Learning tests of the from-scratch agents (fixed seeds and thresholds, CI-sized budgets)."""

import math

import gymnasium as gym
import pytest
import torch

from physrl.agents import AGENTS, DQN, DeepPolicyGradient, QLearning, TabularPolicyGradient
from physrl.agents.reference.maze import optimal_return
from physrl.agents.reference.uniform import random_policy
from physrl.agents.reference.walker import walker_target_optimum
from physrl.agents.rollout import play_episodes

FIXED_MAZE = dict(fixed_maze=True, start=(1, 1), obs_mode="position", delete_chests=False, max_steps=40)


def test_agents_registry():
    assert set(AGENTS) == {"tabular-pg", "deep-pg", "q-learning", "dqn", "qec-student"}


@pytest.mark.slow
def test_walker_mean_reinforce_update_matches_lecture():
    """At fixed θ the batch-averaged REINFORCE step is 2ηTπ(1−π) (Marquardt, Les Houches §3.1.3)."""
    envs = gym.make_vec("physrl/RandomWalker-v0", num_envs=64)
    eta, theta = 0.01, 0.4
    agent = TabularPolicyGradient(envs, seed=1, learning_rate=eta, ignore_observation=True)
    updates = []
    for _ in range(300):
        with torch.no_grad():
            agent.theta.fill_(theta)
        agent.learn_iteration()
        updates.append(agent.theta.item() - theta)
    updates = torch.tensor(updates)
    pi = 1 / (1 + math.exp(-theta))
    expected = 2 * eta * 20 * pi * (1 - pi)
    standard_error = updates.std().item() / math.sqrt(len(updates))
    assert abs(updates.mean().item() - expected) < 4 * standard_error
    assert standard_error < 0.1 * expected, "the test must be able to tell the update apart from zero"


@pytest.mark.slow
def test_walker_learns_to_walk_right():
    envs = gym.make_vec("physrl/RandomWalker-v0", num_envs=16)
    agent = TabularPolicyGradient(envs, seed=0, learning_rate=0.01, ignore_observation=True)
    for _ in range(300):
        stats = agent.learn_iteration()
        assert len(stats["episodic_return"]) == 16, "a default batch is one whole episode per sub-env"
    assert agent.probabilities()[0, 1] > 0.95


@pytest.mark.slow
def test_walker_target_tabular_pg():
    envs = gym.make_vec("physrl/WalkerTarget-v0", num_envs=64)
    agent = TabularPolicyGradient(envs, seed=0, learning_rate=0.1, baseline="running_mean")
    for _ in range(60):
        agent.learn_iteration()
    returns = play_episodes(gym.make_vec("physrl/WalkerTarget-v0", num_envs=1000),
                              lambda obs: agent.act(obs, deterministic=False), seed=10**6)
    assert returns.mean() >= 13
    assert walker_target_optimum() == pytest.approx(16.4)


def fixed_maze_optimum(size: int, n_chests: int, maze_seed: int):
    kwargs = dict(FIXED_MAZE, size=size, n_chests=n_chests, maze_seed=maze_seed)
    probe = gym.make_vec("physrl/TreasureMaze-v0", num_envs=1, **kwargs)
    probe.reset(seed=0)
    return kwargs, optimal_return(probe.core.layout(0), 40, delete_chests=False)


@pytest.mark.slow
@pytest.mark.parametrize("agent_class, hyperparameters, iterations", [
    (TabularPolicyGradient, dict(learning_rate=0.1, baseline="running_mean"), 80),
    (QLearning, dict(exploration_steps=50_000), 60),
])
def test_tabular_agents_on_fixed_11x11_maze(agent_class, hyperparameters, iterations):
    kwargs, optimum = fixed_maze_optimum(11, 10, maze_seed=14)
    assert optimum == 34, "the nearest chest is 7 steps from the start"
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=32, **kwargs)
    agent = agent_class(envs, seed=0, **hyperparameters)
    for _ in range(iterations):
        agent.learn_iteration()
    returns = play_episodes(gym.make_vec("physrl/TreasureMaze-v0", num_envs=1, **kwargs), agent.act, seed=0)
    assert returns.mean() >= 0.9 * optimum


@pytest.mark.slow
def test_dqn_on_fixed_7x7_maze():
    kwargs, optimum = fixed_maze_optimum(7, 3, maze_seed=31)
    assert optimum == 32, "the nearest chest is 9 steps from the start"
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=16, **kwargs)
    agent = DQN(envs, seed=0, exploration_steps=20_000, learning_starts=1_000)
    for _ in range(600):
        agent.learn_iteration()
    returns = play_episodes(gym.make_vec("physrl/TreasureMaze-v0", num_envs=1, **kwargs), agent.act, seed=0)
    assert returns.mean() >= 0.9 * optimum


@pytest.mark.slow
def test_deep_pg_beats_random_on_small_random_mazes():
    kwargs = dict(size=7, n_chests=3, max_steps=15)
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=64, **kwargs)
    agent = DeepPolicyGradient(envs, seed=0, network="egocentric")
    for _ in range(30):
        agent.learn_iteration()
    held_out = gym.make_vec("physrl/TreasureMaze-v0", num_envs=500, **kwargs)
    random_mean = play_episodes(held_out, random_policy(envs.single_action_space), seed=10**6).mean()
    trained_mean = play_episodes(held_out, agent.act, seed=10**6).mean()
    assert trained_mean >= random_mean + 0.7  # measured: 1.53 vs 0.53 (at most 3 chests)

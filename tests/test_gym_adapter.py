"""Our agents on any registered Gymnasium env through the torch adapter (envs/gym_adapter.py)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.agents import DeepPolicyGradient
from physrl.agents.rollout import play_episodes
from physrl.envs.gym_adapter import GymnasiumVectorEnv, make_torch_vec
from physrl.training import load_policy, train
from physrl.training.cli import main
from physrl.training.evaluate import evaluate


def test_adapter_follows_gymnasium_sync_vector_env_step_for_step():
    adapter = make_torch_vec("CartPole-v1", 3)
    reference = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync")
    assert isinstance(adapter, GymnasiumVectorEnv) and adapter.max_steps == 500
    obs, _ = adapter.reset(seed=7)
    expected, _ = reference.reset(seed=7)
    assert obs.dtype == torch.float32 and np.allclose(obs.numpy(), expected)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):
        actions = rng.integers(0, 2, 3)
        obs, reward, terminated, truncated, _ = adapter.step(torch.as_tensor(actions))
        expected, expected_reward, expected_terminated, expected_truncated, _ = reference.step(actions)
        assert np.allclose(obs.numpy(), expected) and np.array_equal(reward.numpy(), expected_reward)
        assert np.array_equal(terminated.numpy(), expected_terminated)
        assert np.array_equal(truncated.numpy(), expected_truncated)
        ended += int(terminated.sum())
    assert ended > 0  # autoresets happened, on the same (next) step as Gymnasium's


def test_deep_pg_learns_cartpole(tmp_path):
    """10,000 env steps (seed 0) take the greedy policy from a few dozen steps per episode to well over 150."""
    run_dir = train("CartPole-v1", "deep-pg", num_envs=8, total_steps=10_000, logdir=tmp_path, progress=False,
                    hyperparameters={"num_steps": 64, "learning_rate": 1e-3}, picture_every=0)
    envs = make_torch_vec("CartPole-v1", 20)
    untrained = DeepPolicyGradient(envs, seed=0, num_steps=64)
    assert float(play_episodes(envs, untrained.act, seed=1_000_000).mean()) < 60
    assert evaluate(run_dir, episodes=20)["mean"] >= 150


@pytest.mark.parametrize("env_id, agent", [("Pendulum-v1", "deep-pg"), ("Acrobot-v1", "dqn"),
                                           ("FrozenLake-v1", "q-learning")])
def test_box_and_discrete_spaces_train_save_and_resume(env_id, agent, tmp_path):
    run_dir = train(env_id, agent, num_envs=2, total_steps=300, logdir=tmp_path, progress=False,
                    hyperparameters={"learning_starts": 50} if agent == "dqn" else {})
    train(resume=run_dir, total_steps=600, progress=False)  # episodes restart: Gymnasium envs keep no state
    policy = load_policy(run_dir)
    envs = make_torch_vec(env_id, 3)
    observations, _ = envs.reset(seed=0)
    actions = policy(observations)
    assert actions.shape == (3, *envs.single_action_space.shape)
    assert all(envs.single_action_space.contains(action) for action in actions.numpy())


def test_spaces_and_agents_that_do_not_fit_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(TypeError, match=r"agent 'dqn' cannot train on Pendulum-v1 .*DQN needs a Discrete action"):
        train("Pendulum-v1", "dqn", logdir=tmp_path)
    with pytest.raises(ValueError, match="Blackjack-v1 has a Tuple observation space"):
        train("Blackjack-v1", "deep-pg", logdir=tmp_path)
    assert main(["train", "--env", "MountainCarContinuous-v0", "--agent", "q-learning", "--logdir",
                 str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("physrl train: error: agent 'q-learning' cannot train on MountainCarContinuous-v0")
    assert error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []

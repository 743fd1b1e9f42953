import math

import gymnasium as gym
import pytest
import torch

from physrl.agents.reference.walker import walker_target_optimum


def run_stateless(env_id: str, num_envs: int, plus_probability: float, seed: int = 0) -> torch.Tensor:
    envs = gym.make_vec(env_id, num_envs=num_envs)
    envs.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(num_envs)
    for _ in range(envs.core.max_steps):
        actions = (torch.rand(num_envs, generator=generator) < plus_probability).long()
        _, reward, _, truncated, _ = envs.step(actions)
        total += reward
    assert bool(truncated.all())
    return total


@pytest.mark.parametrize("plus_probability", [0.2, 0.5, 0.9])
def test_mean_return_matches_T_times_2pi_minus_1(plus_probability):
    returns = run_stateless("physrl/RandomWalker-v0", 8192, plus_probability)
    standard_error = returns.std().item() / math.sqrt(len(returns))
    assert abs(returns.mean().item() - 20 * (2 * plus_probability - 1)) < 4 * standard_error


def test_return_is_final_position():
    env = gym.make("physrl/RandomWalker-v0")
    obs, _ = env.reset(seed=1)
    assert obs == 0
    total = 0.0
    for t, action in enumerate([1] * 12 + [0] * 8):
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        assert obs == t + 1 and not terminated
    assert truncated and total == info["position"] == 12 - 8


def test_walker_target_optimal_policy_reaches_exact_optimum():
    envs = gym.make_vec("physrl/WalkerTarget-v0", num_envs=4000)
    obs, _ = envs.reset(seed=5)
    total = torch.zeros(4000)
    for _ in range(20):
        obs, reward, *_ = envs.step(1 - obs)  # move while off target, stay on it
        total += reward
    optimum = walker_target_optimum(20, 10)
    assert optimum == pytest.approx(16.4)
    standard_error = total.std().item() / math.sqrt(4000)
    assert abs(total.mean().item() - optimum) < 4 * standard_error
    assert total.max().item() == 20


def test_bad_options_raise():
    with pytest.raises(ValueError, match="max_steps"):
        gym.make("physrl/RandomWalker-v0", max_steps=0)
    with pytest.raises(TypeError, match="target_range"):
        gym.make("physrl/WalkerTarget-v0", target_range=2.5)

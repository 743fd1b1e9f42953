"""The oscillator's reference solvers: gradient optimal control through the env's own kernels
and Nelder–Mead (physrl.agents.reference.oscillator)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.agents.reference.oscillator import (actions_from_parameters, nelder_mead_fidelity, optimal_fidelity,
                                               sequence_fidelity, sequence_infidelity)
from physrl.envs.oscillator import OscillatorStatePrepVectorEnv

ENV_ID = "physrl/OscillatorStatePrep-v0"


@pytest.mark.parametrize("options", [{"n_levels": 30, "alpha_max": 2.0, "snap_phases": 5},
                                     {"control": "ecd", "n_levels": 30}])
def test_gradient_agrees_with_finite_differences(options):
    envs = OscillatorStatePrepVectorEnv(num_envs=1, target="fock", n=2, reward_mode="fidelity", max_steps=3, **options)
    size = envs.single_action_space.shape[0]
    actions = torch.as_tensor(np.random.default_rng(0).uniform(-0.8, 0.8, (1, 3, size))).requires_grad_()
    sequence_infidelity(envs, actions).sum().backward()
    step = 1e-6
    numeric = np.zeros((3, size))
    for index in np.ndindex(3, size):
        shifted = [actions.detach().clone()[0].numpy() for _ in range(2)]
        shifted[0][index] += step
        shifted[1][index] -= step
        numeric[index] = -(sequence_fidelity(envs, shifted[0]) - sequence_fidelity(envs, shifted[1])) / (2 * step)
    assert np.abs(numeric).max() > 1e-2  # a point with a real gradient
    np.testing.assert_allclose(actions.grad[0].numpy(), numeric, atol=1e-8, rtol=0)


def test_parameters_map_into_the_box_with_periodic_angles():
    x = torch.tensor([[5.0, -5.0, 1.5, -3.2, 0.25]])
    np.testing.assert_allclose(actions_from_parameters(x).numpy(),
                               [[np.tanh(5.0), -np.tanh(5.0), -0.5, 0.8, 0.25]], atol=1e-12)


def test_reaches_fock_1_to_1e_minus_4_and_the_env_replays_it():
    result = optimal_fidelity(1, restarts=4, iterations=100, polish=1, polish_iterations=100, seed=0,
                               max_steps=3, n_levels=20, alpha_max=2.0, snap_phases=4)
    assert result.fidelity >= 0.9999
    assert result.actions.shape == (3, 6) and result.actions.dtype == np.float32
    assert np.abs(result.actions).max() <= 1.0
    env = gym.make(ENV_ID, n=1, max_steps=3, n_levels=20, alpha_max=2.0, snap_phases=4, reward_mode="fidelity")
    env.reset(seed=0)
    for action in result.actions:
        *_, info = env.step(action)
    assert info["fidelity"] == pytest.approx(result.fidelity, abs=1e-12)


@pytest.mark.parametrize("options, match", [({"restarts": 0}, "restarts"), ({"polish": 5, "restarts": 4}, "polish"),
                                            ({"learning_rate": 0.0}, "learning_rate"), ({"n_levels": 3, "snap_phases": 2}, "n must")])
def test_bad_options_raise_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        optimal_fidelity(3, **options)


def test_nelder_mead_finds_the_one_step_optimum_from_exact_f_and_from_shots():
    # one step, one SNAP phase: F = 4 sin²(θ₀/2) |α|² e^{−2|α|²} ≤ 2/e (θ₀ = π, |α|² = 1/2)
    small = {"n_levels": 12, "alpha_max": 1.5, "snap_phases": 1, "max_steps": 1}
    exact, _ = nelder_mead_fidelity(1, restarts=2, max_evaluations=400, seed=0, **small)
    assert exact == pytest.approx(2 / math.e, abs=1e-6)
    measured, actions = nelder_mead_fidelity(1, restarts=1, max_evaluations=300, seed=0, shots_per_evaluation=1000,
                                             **small)
    envs = OscillatorStatePrepVectorEnv(num_envs=1, n=1, reward_mode="fidelity", **small)
    assert measured == pytest.approx(sequence_fidelity(envs, actions), abs=1e-12)
    assert 0.3 < measured < 2 / math.e   # shot noise (1000 shots: ±0.015) keeps it short of the optimum

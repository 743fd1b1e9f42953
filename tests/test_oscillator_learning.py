"""CI-sized learning check on physrl/OscillatorStatePrep-v0 (Sivak et al., PRX 12, 011059 (2022)).

DeepPolicyGradient with PPO clipping learns to prepare |1⟩ from the single-shot ``"fock"`` reward
alone (+1/−1 per episode, E = 2F − 1), as in the paper; the deterministic (mean) policy is then
scored by its exact fidelity. To stay CI-sized the task is one step (T = 1) with one SNAP phase,
where the optimum is known in closed form: U = D(−α) SNAP(θ₀) D(α) gives
⟨1|U|0⟩ = −(e^{iθ₀} − 1) α e^{−|α|²}, so F = 4 sin²(θ₀/2) |α|² e^{−2|α|²} ≤ 2/e (θ₀ = π, |α|² = 1/2).
The full-size benchmark (T = 5, N = 80) is in the README (oscillator section).
"""

import math

import gymnasium as gym
import torch

from physrl.agents import DeepPolicyGradient

ENV_ID = "physrl/OscillatorStatePrep-v0"
SMALL_ENV = {"n": 1, "n_levels": 20, "alpha_max": 1.5, "snap_phases": 1, "max_steps": 1}
OPTIMUM = 2 / math.e
ITERATIONS = 60  # with num_steps=1 every other iteration is the autoreset step: 30 × 256 = 7 680 shots


def deterministic_fidelity(agent: DeepPolicyGradient) -> float:
    """Exact fidelity F = |⟨1|ψ⟩|² of the state prepared by the agent's mean action."""
    envs = gym.make_vec(ENV_ID, num_envs=1, reward_mode="fidelity", **SMALL_ENV)
    obs, _ = envs.reset(seed=0)
    _, _, _, truncated, info = envs.step(agent.act(obs))
    assert bool(truncated[0])
    return float(info["fidelity"][0])


def test_deep_pg_prepares_fock_1_from_single_shots():
    envs = gym.make_vec(ENV_ID, num_envs=256, **SMALL_ENV)
    agent = DeepPolicyGradient(envs, seed=0, num_steps=1, gamma=1.0, gae_lambda=1.0, ent_coef=0.0,
                               hidden_sizes=(32,), learning_rate=1e-2, update_epochs=8, num_minibatches=1,
                               log_std_init=-0.5)
    assert deterministic_fidelity(agent) < 1e-6  # the initial mean action is α ≈ 0: vacuum
    for _ in range(ITERATIONS):
        agent.learn_iteration()
    fidelity = deterministic_fidelity(agent)
    # 0.6 ≈ 82 % of the optimum: at a constant learning rate the ±1 shots keep the mean policy moving
    # around the optimum (seeds 0 and 1 reach 0.73 and 0.72 here), so the bar leaves room for that
    assert 0.6 < fidelity <= OPTIMUM + 1e-9

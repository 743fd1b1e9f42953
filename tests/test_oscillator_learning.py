"""CI-sized learning check on physrl/OscillatorStatePrep-v0 (Sivak et al., PRX 12, 011059 (2022)).

DeepPolicyGradient with PPO clipping learns to prepare |1⟩ from the single-shot ``"fock"`` reward
alone (+1/−1 per episode, E = 2F − 1), as in the paper; the deterministic (mean) policy is then
scored by its exact fidelity. The Fock space is small (n_levels = 20, α_max = 1.5, S = 4) so the
test takes seconds; the full-size benchmark is in docs/readme/oscillator.md.
"""

import gymnasium as gym
import torch

from physrl.agents import DeepPolicyGradient

ENV_ID = "physrl/OscillatorStatePrep-v0"
SMALL_ENV = {"n": 1, "n_levels": 12, "alpha_max": 1.5, "snap_phases": 1, "n_steps": 1}


def deterministic_fidelity(agent: DeepPolicyGradient) -> float:
    """Exact fidelity F = |⟨1|ψ⟩|² of the state prepared by the agent's mean actions."""
    envs = gym.make_vec(ENV_ID, num_envs=1, reward_mode="fidelity", **SMALL_ENV)
    obs, _ = envs.reset(seed=0)
    truncated = torch.zeros(1, dtype=torch.bool)
    while not bool(truncated[0]):
        obs, _, _, truncated, info = envs.step(agent.act(obs))
    return float(info["fidelity"][0])


def test_deep_pg_prepares_fock_1_from_single_shots():
    envs = gym.make_vec(ENV_ID, num_envs=256, **SMALL_ENV)
    agent = DeepPolicyGradient(envs, seed=0, num_steps=SMALL_ENV["n_steps"], gamma=1.0, gae_lambda=1.0,
                               ent_coef=0.0, hidden_sizes=(32,), learning_rate=3e-3, update_epochs=8,
                               log_std_init=-1.0)
    before = deterministic_fidelity(agent)
    for _ in range(ITERATIONS):
        agent.learn_iteration()
    after = deterministic_fidelity(agent)
    assert before < 0.5
    assert after > THRESHOLD

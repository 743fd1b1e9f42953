"""physrl/QubitErrorCorrection-v0: exact idle decay, invariants, revealing measurements, faces, options."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.agents.reference.qec import (HAND_WRITTEN_CODES, RepetitionCodePolicy, ScheduledPolicy, effective_lifetime,
                                        idle_policy)
from physrl.envs.kernels import qubit_pairs as P, qubits as K, recoverable_information as R
from physrl.envs.qec import QubitErrorCorrectionVectorEnv, step_reward

ENV_ID = "physrl/QubitErrorCorrection-v0"


@pytest.mark.parametrize("noise, rate", [("bitflip", 2), ("dephasing", 2), ("correlated", 2), ("bitflip+dephasing", 4)])
def test_idle_memory_decays_exactly(noise, rate):
    env = gym.make(ENV_ID, noise=noise, t_dec=50.0, n_qubits=3, hadamard=True)
    env.reset(seed=0)
    for t in range(1, 41):
        _, reward, terminated, _, info = env.step(env.unwrapped.action_index("idle"))
        expected = math.exp(-rate * t / 50.0)
        assert info["recoverable_information"] == pytest.approx(expected, abs=1e-12)
        assert reward == pytest.approx(1 + (expected - math.exp(-rate * (t - 1) / 50.0)) * 25, abs=1e-6)  # float32 reward
        assert info["outcome"] == -1 and not terminated


def test_idle_lifetime_ratio_is_one_and_first_idle_reward_is_nearly_zero():
    env = gym.make(ENV_ID, t_dec=80.0)
    env.reset(seed=0)
    assert env.step(0)[1] == pytest.approx(1 + (math.exp(-2 / 80) - 1) * 40, abs=1e-6)
    assert abs(env.step(0)[1]) < 0.05
    ratio, error = effective_lifetime({"t_dec": 80.0}, idle_policy, num_envs=4, steps=30)
    assert ratio == pytest.approx(1.0, abs=1e-9) and error < 1e-9


def test_channel_matrices_stay_physical_over_ten_thousand_random_steps():
    """Trace 1, Hermitian and positive ρ₀ (within 1e-8) after every one of 50 × 200 random steps."""
    envs = gym.make_vec(ENV_ID, num_envs=50, t_dec=40.0, n_qubits=3, noise="bitflip+dephasing", hadamard=True)
    envs.reset(seed=3)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for _ in range(200):
        envs.step(torch.randint(0, envs.single_action_space.n, (50,), generator=generator))
        rho = envs.unwrapped.core.rho
        rho0 = rho[:, 0]
        trace_error = (torch.diagonal(rho0, dim1=-2, dim2=-1).sum(-1) - 1).abs().max()
        hermitian_error = (rho - rho.mH).abs().amax()
        negativity = (-torch.linalg.eigvalsh(rho0)).clamp_min(0).max()
        worst = max(worst, float(trace_error), float(hermitian_error), float(negativity))
        assert torch.isfinite(torch.view_as_real(rho)).all()
    assert worst < 1e-8


@pytest.mark.parametrize("actions", [["measure(0)"], ["cnot(0,1)", "measure(1)"], ["cnot(0,2)", "x(2)", "measure(2)"]])
def test_a_revealing_measurement_ends_the_episode_and_costs_the_whole_information(actions):
    """A complete reveal pays 1·0 + (0 − R_Q(t)) T_dec/2: the loss of everything left, like the limit of an
    almost-complete reveal (the old −0.1 made revealing 5000 times cheaper than nearly revealing)."""
    env = gym.make(ENV_ID)
    env.reset(seed=1)
    before = 1.0
    for name in actions[:-1]:
        _, _, terminated, _, info = env.step(env.unwrapped.action_index(name))
        assert not terminated
        before = info["recoverable_information"]
    _, reward, terminated, truncated, info = env.step(env.unwrapped.action_index(actions[-1]))
    assert reward == pytest.approx(-before * 600, rel=1e-6) and terminated and not truncated
    assert info["outcome"] in (0, 1) and info["recoverable_information"] < 1e-12


def test_the_reward_is_continuous_across_the_reveal_threshold():
    """r = min(1, R̂/ε) + (R̂ − R) T_dec/2: Eq. (6) above ε = 1e-3, continuous at ε, a reveal never cheaper
    than an almost-reveal, and only a measurement that crosses ε from above ends the episode."""
    before = torch.full((5,), 0.88, dtype=torch.float64)
    averaged = torch.tensor([0.0, 5e-4, 1e-3 - 1e-12, 1e-3 + 1e-12, 0.5], dtype=torch.float64)
    reward, revealed = step_reward(averaged, before, torch.ones(5, dtype=torch.bool), 1200.0)
    assert reward[2].item() == pytest.approx(reward[3].item(), abs=1e-6)
    assert reward[4].item() == pytest.approx(1 + (0.5 - 0.88) * 600)
    assert bool((reward[:-1].diff() > 0).all()) and revealed.tolist() == [True, True, True, False, False]
    _, quiet = step_reward(averaged, before, torch.zeros(5, dtype=torch.bool), 1200.0)
    assert not quiet.any()
    gone = torch.full((5,), 5e-4, dtype=torch.float64)  # nothing left to reveal: a measurement goes on
    assert not step_reward(averaged, gone, torch.ones(5, dtype=torch.bool), 1200.0)[1].any()
    env = gym.make(ENV_ID, t_dec=0.2)   # R_Q falls by e^-10 per step: gone after one step
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.unwrapped.action_index("idle"))
    assert info["recoverable_information"] < 1e-4 and abs(reward) < 0.1
    _, reward, terminated, _, _ = env.step(env.unwrapped.action_index("measure(0)"))
    assert not terminated and abs(reward) < 0.1


def test_measuring_an_ancilla_keeps_the_information_and_shows_the_outcome():
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=2)
    assert not obs.any()
    index = env.unwrapped.action_index("measure(3)")
    obs, reward, terminated, _, info = env.step(index)
    assert not terminated and info["outcome"] == 0 and reward == pytest.approx(1 + (math.exp(-2 / 1200) - 1) * 600)
    assert obs[index] == 1 and obs[-1] == 1.0  # last action one-hot, then Z eigenvalue +1 of qubit 3
    env.step(env.unwrapped.action_index("x(3)"))
    obs, _, _, _, info = env.step(index)
    assert info["outcome"] == 1 and obs[-1] == -1.0


def test_single_and_vector_faces_agree_through_measurements():
    options = dict(t_dec=30.0, n_qubits=3)
    vector = gym.make_vec(ENV_ID, num_envs=6, **options)
    singles = [gym.make(ENV_ID, **options) for _ in range(6)]
    vector.reset(seed=40)
    for i, env in enumerate(singles):
        env.reset(seed=40 + i)
    names = vector.unwrapped.action_names
    safe = [k for k, name in enumerate(names) if name not in ("measure(0)",)]
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(60):
        actions = rng.choice(safe, size=6)
        actions[rng.random(6) < 0.4] = names.index("measure(2)")
        obs, reward, terminated, truncated, info = vector.step(torch.as_tensor(actions))
        for i, env in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = env.step(actions[i])
            np.testing.assert_array_equal(obs[i].numpy(), s_obs)
            assert float(reward[i]) == pytest.approx(s_reward, abs=1e-6) and bool(terminated[i]) == s_term
            assert int(info["outcome"][i]) == s_info["outcome"]
            assert float(info["recoverable_information"][i]) == pytest.approx(s_info["recoverable_information"],
                                                                             abs=1e-12)
            outcomes.add(s_info["outcome"])
            if s_term or s_trunc:
                env.reset()
        if bool((terminated | truncated).any()):
            break
    assert outcomes == {-1, 0, 1}


def test_state_observation_holds_the_channel_matrices():
    env = gym.make(ENV_ID, obs_mode="state", n_qubits=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8 * 16,) and obs.dtype == np.float32
    parts = obs.reshape(2, 4, 4, 4)
    np.testing.assert_allclose(parts[0, 3], np.diag([0.5, 0, -0.5, 0]))  # Re δρz
    np.testing.assert_allclose(parts[1, 2][0, 2], -0.5)  # Im δρy
    assert env.observation_space.contains(obs)


def test_repetition_code_outlives_the_idle_memory():
    """A cheap proxy of the README's T_eff/T_dec ≈ 28 at T_dec = 1200: 4.5 ± 1.2 at T_dec = 200, as the
    scaling T_eff/T_dec ≈ 1/(3pW) (flip probability p per step, W ≈ 14 steps) expects; idle gives 1."""
    ratio, error = effective_lifetime({"t_dec": 200.0}, RepetitionCodePolicy, num_envs=64, steps=100, seed=1, groups=4)
    assert ratio > 3 and 0 < error < ratio / 2


def test_lifetime_repeats_with_different_seeds_use_disjoint_episodes():
    """seed s runs the episodes seeded s·num_envs … (s+1)·num_envs − 1: seed 1 with 8 envs replays episodes
    8–15 of seed 0 with 16 envs and shares none with seed 0 with 8 envs (they once overlapped in 7 of 8)."""
    records = []

    def recording(envs):
        records.append(envs.core)
        return RepetitionCodePolicy(envs)

    for num_envs, seed in ((16, 0), (8, 1), (8, 0)):
        effective_lifetime({"t_dec": 60.0}, recording, num_envs=num_envs, steps=40, seed=seed)
    wide, second, first = (core.history[:, :, 1] for core in records)
    assert torch.equal(second, wide[8:]) and torch.equal(first, wide[:8])
    assert not any(torch.equal(second[i], first[j]) for i in range(8) for j in range(8))
    with pytest.raises(ValueError, match="fit_from"):
        effective_lifetime({}, idle_policy, num_envs=2, steps=10, fit_from=10)


def test_action_memory_appends_the_last_actions_to_every_view():
    """action_memory=k: any observation ends with the last k actions one-hot, most recent first, zeros
    before the episode's first steps and again after a reset; the pairs view's action mask is unchanged."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=3, obs_mode="pairs", action_memory=3, max_steps=4)
    plain = QubitErrorCorrectionVectorEnv(num_envs=3, obs_mode="pairs", max_steps=4)
    n = envs.single_action_space.n
    assert envs.single_observation_space.shape == (16 * 16 + 4 + 3 * n,)
    obs, _ = envs.reset(seed=0)
    plain_obs, _ = plain.reset(seed=0)
    assert not obs[:, -3 * n:].any()
    played = [envs.action_index(a) for a in ("cnot(0,1)", "measure(3)", "x(2)", "idle")]
    for k, action in enumerate(played):
        actions = torch.full((3,), action)
        obs, *_ = envs.step(actions)
        plain_obs, *_ = plain.step(actions)
        memory = obs[:, -3 * n:].view(3, 3, n)
        expected = [played[k - j] if k - j >= 0 else -1 for j in range(3)]
        if k < 3:
            for j, a in enumerate(expected):
                assert memory[:, j].sum(1).eq(0 if a < 0 else 1).all() and (a < 0 or bool(memory[:, j, a].eq(1).all()))
            torch.testing.assert_close(obs[:, :-3 * n], plain_obs)
            assert torch.equal(envs.core.action_mask(obs), plain.core.action_mask(plain_obs))
    obs, *_ = envs.step(torch.zeros(3, dtype=torch.int64))  # truncated at step 4: this step resets
    assert not obs[:, -3 * n:].any()
    state = QubitErrorCorrectionVectorEnv(num_envs=1, obs_mode="measurements", action_memory=2)
    assert state.single_observation_space.shape == (n + 4 + 2 * n,)
    with pytest.raises(ValueError, match="action_memory"):
        QubitErrorCorrectionVectorEnv(num_envs=1, action_memory=17)


def test_hand_written_codes_protect_their_scenarios():
    """Each scenario's schedule runs on its own device; the decoherence-free encoding keeps R_Q exactly
    constant under collective dephasing after its two steps; the phase-flip code in the Hadamard frame
    and the repetition code on the reduced device outlive the idle memory (T_dec = 200 steps)."""
    for name, (options, prefix, cycle) in HAND_WRITTEN_CODES.items():
        envs = QubitErrorCorrectionVectorEnv(num_envs=2, **options)
        envs.reset(seed=0)
        for _ in range(len(prefix) + 2 * len(cycle)):
            envs.step(ScheduledPolicy(envs, prefix, cycle)(None))
    options, prefix, cycle = HAND_WRITTEN_CODES["correlated"]
    envs = QubitErrorCorrectionVectorEnv(num_envs=2, t_dec=20.0, **options)
    envs.reset(seed=0)
    policy = ScheduledPolicy(envs, prefix, cycle)
    values = [float(envs.step(policy(None))[4]["recoverable_information"][0]) for _ in range(40)]
    assert values[1] < 1 and max(abs(v - values[1]) for v in values[1:]) < 1e-12
    for name in ("dephasing", "reduced"):
        options, prefix, cycle = HAND_WRITTEN_CODES[name]
        ratio, _ = effective_lifetime({**options, "t_dec": 200.0}, lambda envs: ScheduledPolicy(envs, prefix, cycle),
                                      num_envs=16, steps=60)
        assert ratio > 2.0, name
    with pytest.raises(ValueError, match="cycle"):
        ScheduledPolicy(envs, ("idle",), ())


def test_render_modes():
    env = gym.make(ENV_ID, render_mode="ansi")
    env.reset(seed=0)
    env.step(env.unwrapped.action_index("cnot(0,1)"))
    env.step(env.unwrapped.action_index("measure(3)"))
    text = env.render()
    assert "cnot(0,1)" in text and "measure(3)->0" in text
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(1)
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_action_names_and_lookup():
    env = gym.make(ENV_ID, n_qubits=4, connectivity="chain", hadamard=True, measurable=[3])
    names = env.unwrapped.action_names
    assert names[0] == "idle" and "cnot(2,3)" in names and "h(1)" in names and names[-1] == "measure(3)"
    assert env.action_space.n == len(names) == 1 + 6 + 4 + 4 + 1
    assert names[env.unwrapped.action_index("cnot(1,2)")] == "cnot(1,2)"
    with pytest.raises(ValueError, match="connectivity"):
        env.unwrapped.action_index("cnot(0,3)")
    with pytest.raises(ValueError, match="measurable"):
        env.unwrapped.action_index("measure(0)")
    with pytest.raises(ValueError, match="unknown action"):
        env.unwrapped.action_index("swap(0,1)")
    with pytest.raises(ValueError, match="hadamard"):
        gym.make(ENV_ID).unwrapped.action_index("h(0)")


@pytest.mark.parametrize("options, error, match", [
    ({"n_qubits": 1}, ValueError, "n_qubits"), ({"n_qubits": 7}, ValueError, "n_qubits"),
    ({"n_qubits": 3.0}, TypeError, "n_qubits"), ({"noise": "depolarizing"}, ValueError, "noise"),
    ({"t_dec": 0}, ValueError, "t_dec"), ({"t_dec": float("nan")}, ValueError, "t_dec"),
    ({"connectivity": "ring"}, ValueError, "connectivity"), ({"obs_mode": "pixels"}, ValueError, "obs_mode"),
    ({"measurable": [4]}, ValueError, "measurable"), ({"measurable": [1, 1]}, ValueError, "measurable"),
    ({"hadamard": "yes"}, TypeError, "hadamard"), ({"max_steps": 0}, ValueError, "max_steps"),
])
def test_bad_options_raise_clear_errors(options, error, match):
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **options)


def test_repetition_code_needs_its_gates():
    with pytest.raises(ValueError, match="connectivity"):
        RepetitionCodePolicy(QubitErrorCorrectionVectorEnv(num_envs=2, connectivity="chain"))
    with pytest.raises(ValueError, match="n_qubits"):
        RepetitionCodePolicy(QubitErrorCorrectionVectorEnv(num_envs=2, n_qubits=3))


@pytest.mark.parametrize("noise", ["bitflip", "dephasing", "bitflip+dephasing", "correlated"])
def test_pair_form_matches_the_dense_matrices_step_by_step(noise):
    """Without Hadamards the core keeps the 2×2 blocks on the pairs {a, a⊕v}; with hadamard=True (never used
    here) the dense matrices: same matrices, outcomes and R_Q over random gates and measurements."""
    options = dict(num_envs=64, t_dec=30.0, noise=noise, measurable=[1, 2, 3])
    pairs, dense = QubitErrorCorrectionVectorEnv(**options), QubitErrorCorrectionVectorEnv(hadamard=True, **options)
    assert pairs.unwrapped.core.pair_form and not dense.unwrapped.core.pair_form
    pairs.reset(seed=5)
    dense.reset(seed=5)
    names = pairs.action_names
    to_dense = torch.tensor([dense.action_index(name) for name in names])
    generator = torch.Generator().manual_seed(1)
    for _ in range(60):
        actions = torch.randint(0, len(names), (64,), generator=generator)
        _, reward, terminated, _, info = pairs.step(actions)
        _, dense_reward, dense_terminated, _, dense_info = dense.step(to_dense[actions])
        assert torch.equal(info["outcome"], dense_info["outcome"]) and torch.equal(terminated, dense_terminated)
        torch.testing.assert_close(pairs.unwrapped.core.rho, dense.unwrapped.core.rho, rtol=0, atol=1e-12)
        torch.testing.assert_close(info["recoverable_information"], dense_info["recoverable_information"],
                                   rtol=0, atol=1e-9)
        torch.testing.assert_close(reward, dense_reward, rtol=0, atol=1e-5)


def test_tracked_recoverable_information_matches_a_cold_grid_search():
    """The warm-started R_Q of every step (a few Newton steps from the last minimiser) stays within 1e-3 of
    the minimum over a 20 000-point grid on the sphere, along the repetition code with random extra gates.
    The grid evaluates the blocks' closed-form trace norm (checked against eigenvalues in the kernel tests)."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=24, t_dec=100.0)
    policy = RepetitionCodePolicy(envs)
    obs, _ = envs.reset(seed=3)
    gates = torch.tensor([k for k, name in enumerate(envs.action_names) if not name.startswith("measure")])
    generator = torch.Generator().manual_seed(2)
    grid = R.fibonacci_half_sphere(20000).expand(24, -1, -1)
    for t in range(90):
        actions = policy(obs)
        extra = torch.rand(24, generator=generator) < 0.3
        actions = torch.where(extra, gates[torch.randint(0, len(gates), (24,), generator=generator)], actions)
        obs, _, _, _, _ = envs.step(actions)
        if t % 30 == 29:  # the core's state (a fresh one where an episode just ended) and its R_Q
            best = R._PairNorm.of(envs.core.pairs[:, 1:]).along(grid).amin(1)
            tracked = envs.core.recoverable
            assert float((tracked - best).abs().max()) < 1e-3 and bool((tracked <= best + 1e-12).all())


def test_pairs_observation_lists_every_row_of_the_channel_matrices():
    """obs_mode="pairs": for every basis state a and matrix, the Pauli coordinates of the block {a, a⊕v}
    seen from a, then the bits of v; checked against the dense matrices over random steps with measurements."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=32, t_dec=40.0, noise="bitflip+dephasing", obs_mode="pairs")
    obs, _ = envs.reset(seed=4)
    core, d = envs.core, 16
    assert obs.shape == (32, 16 * d + 4) and envs.single_observation_space.contains(obs[0].numpy())
    generator = torch.Generator().manual_seed(3)
    for _ in range(40):
        actions = torch.randint(0, envs.single_action_space.n, (32,), generator=generator)
        envs.step(actions)
        view, rho, shift = core.view("pairs").double(), core.rho, core.shift
        for i in range(32):
            a = torch.arange(d)
            partner = a ^ shift[i]
            diagonal = torch.diagonal(rho[i], dim1=-2, dim2=-1).real
            off = rho[i][:, a, partner]
            expected = torch.stack([diagonal[:, a] + diagonal[:, partner], 2 * off.real, -2 * off.imag,
                                    diagonal[:, a] - diagonal[:, partner]], -1).permute(1, 0, 2).reshape(-1)
            bits = torch.tensor([(int(shift[i]) >> (3 - q)) & 1 for q in range(4)], dtype=torch.float64)
            torch.testing.assert_close(view[i], torch.cat([expected, bits]), rtol=0, atol=1e-6)
    initial = QubitErrorCorrectionVectorEnv(num_envs=1, obs_mode="pairs").reset(seed=0)[0][0]
    assert initial[-4:].tolist() == [1.0, 0.0, 0.0, 0.0]   # the logical X sits on qubit 0
    # row |0000⟩: the blocks {|0000⟩, |1000⟩} of ρ₀, δρx, δρy, δρz are ½ 1, ½ X, ½ Y, ½ Z
    assert initial[:16].tolist() == torch.eye(4).flatten().tolist()
    with pytest.raises(ValueError, match="hadamard=False"):
        gym.make(ENV_ID, obs_mode="pairs", hadamard=True)


def test_explicit_connectivity_lists_the_coupled_pairs():
    env = gym.make(ENV_ID, connectivity=[[0, 3], [0, 1], (0, 2), [1, 3], [2, 3]], measurable=[3])
    assert env.unwrapped.action_names == ("idle", "cnot(0,1)", "cnot(0,2)", "cnot(0,3)", "cnot(1,3)", "cnot(2,3)",
                                          "x(0)", "x(1)", "x(2)", "x(3)", "measure(3)")
    with pytest.raises(ValueError, match=r"cnot\(1,2\).*coupled \(control, target\) pairs are"):
        env.unwrapped.action_index("cnot(1,2)")
    envs = QubitErrorCorrectionVectorEnv(num_envs=64, connectivity=[[0, 1], [0, 2], [0, 3], [1, 3], [2, 3]])
    ratio, _ = effective_lifetime({"connectivity": [[0, 1], [0, 2], [0, 3], [1, 3], [2, 3]], "t_dec": 200.0},
                                  RepetitionCodePolicy, num_envs=64, steps=100, seed=1, groups=4)
    assert ratio > 3 and envs.core.connectivity == [[0, 1], [0, 2], [0, 3], [1, 3], [2, 3]]


@pytest.mark.parametrize("connectivity", [[], [[0, 0]], [[0, 4]], [[0, 1], [0, 1]], [[True, 1]], [[0, 1, 2]], 5])
def test_bad_explicit_connectivity_is_refused(connectivity):
    with pytest.raises(ValueError, match="connectivity must be one of"):
        gym.make(ENV_ID, connectivity=connectivity)


def _play_masked(envs: QubitErrorCorrectionVectorEnv, steps: int, other=None) -> list[int]:
    """Random play for ``steps`` steps: ``envs.action_mask`` allows every action but measurements; every
    measurement it rules out ends its episode, paying −R_Q(t) T_dec/2, and no allowed one does; with ``other``
    (the same env on another view) the two masks agree where an episode goes on.
    Returns [masked measurements, allowed measurements] tried."""
    num_envs = envs.num_envs
    obs, _ = envs.reset(seed=0)
    other_obs = other.reset(seed=0)[0] if other is not None else None
    measure = torch.tensor([name.startswith("measure") for name in envs.action_names])
    generator = torch.Generator().manual_seed(0)
    fresh = torch.ones(num_envs, dtype=torch.bool)   # this step acts (not the autoreset step after an ending)
    counts = [0, 0]
    for _ in range(steps):
        mask = envs.action_mask(obs)
        assert bool(mask[:, ~measure].all())
        if other is not None:  # (after a reveal the views differ on the next, autoreset step's mask)
            assert torch.equal(mask[fresh], other.action_mask(other_obs)[fresh])
        actions = torch.randint(0, len(measure), (num_envs,), generator=generator)
        allowed = mask[torch.arange(num_envs), actions]
        before = envs.core.recoverable.clone()
        obs, reward, terminated, truncated, _ = envs.step(actions)
        if other is not None:
            other_obs = other.step(actions)[0]
        measured = measure[actions] & fresh
        assert bool(terminated[measured & ~allowed].all()) and not bool(terminated[measured & allowed].any())
        revealed = measured & ~allowed
        torch.testing.assert_close(reward[revealed], (-envs.core.t_dec / 2 * before[revealed]).float())
        counts[0] += int(revealed.sum())
        counts[1] += int((measured & allowed).sum())
        fresh = ~(terminated | truncated)
    return counts


def test_action_mask_rules_out_exactly_the_measurements_that_reveal_the_state():
    """On the pairs view, measure(q) is masked iff qubit q carries the logical X: over random play every
    masked measurement ends the episode (paying −R_Q(t) T_dec/2) and no allowed one does; other actions are
    always allowed."""
    assert min(_play_masked(QubitErrorCorrectionVectorEnv(num_envs=64, t_dec=100.0, obs_mode="pairs"), 200)) > 100
    with pytest.raises(ValueError, match="obs_mode='pairs', 'state' or 'pauli'"):
        QubitErrorCorrectionVectorEnv(num_envs=2).core.action_mask(torch.zeros(2, 18))


def test_state_view_mask_rules_out_the_revealing_measurements_with_hadamards():
    """On the state view, measure(q) is masked iff Z_q acts on the code as a logical Pauli (|Tr(Z_q δρ_k)| > 1/2):
    with dephasing and Hadamards every masked measurement of random play ends the episode and no allowed one
    does; without Hadamards the mask is the pairs view's exact one (qubit q carries the logical X)."""
    dense = QubitErrorCorrectionVectorEnv(num_envs=32, obs_mode="state", noise="dephasing", hadamard=True,
                                          action_memory=2)
    pauli = QubitErrorCorrectionVectorEnv(num_envs=32, obs_mode="pauli", noise="dephasing", hadamard=True,
                                          action_memory=2)
    assert dense.masks_actions and pauli.masks_actions
    assert min(_play_masked(dense, 100, other=pauli)) > 50   # the Pauli view's mask is the same
    state = QubitErrorCorrectionVectorEnv(num_envs=32, obs_mode="state")
    pairs = QubitErrorCorrectionVectorEnv(num_envs=32, obs_mode="pairs")
    assert min(_play_masked(state, 100, other=pairs)) > 50
    fresh = QubitErrorCorrectionVectorEnv(num_envs=1, obs_mode="state", hadamard=True)
    obs, _ = fresh.reset(seed=0)
    allowed = dict(zip(fresh.action_names, fresh.action_mask(obs)[0].tolist()))
    assert not allowed["measure(0)"] and allowed["measure(1)"] and allowed["h(0)"]  # the logical Z vs |0>
    obs, *_ = fresh.step(torch.tensor([fresh.core.action_index("h(0)")]))
    assert not fresh.action_mask(obs)[0, fresh.core.action_index("measure(0)")]   # now the logical X


@pytest.mark.parametrize("noise", ["bitflip", "dephasing", "bitflip+dephasing", "correlated"])
def test_dense_path_tracks_the_global_minimum_of_the_recoverable_information(noise):
    """With Hadamards (dense matrices) the tracked R_Q of random episodes, measurements included, stays within
    1e-4 of a cold search from 200 grid directions (6 refined, 40 Newton steps each). A warm start left in
    another basin after a measurement, or stuck at a kink, was off by up to 0.011 here (reward error ~1)."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=8, noise=noise, hadamard=True, n_qubits=3, t_dec=100.0, max_steps=60)
    envs.reset(seed=3)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for t in range(60):
        envs.step(torch.randint(0, envs.single_action_space.n, (8,), generator=generator))
        if t in (18, 19, 20, 35, 45, 55, 59):
            best, _ = R.recoverable_information(envs.core.rho[:, 1:], grid=200, refine=6, iterations=40)
            worst = max(worst, float((envs.core.recoverable - best).max()))
    assert worst < 1e-4


@pytest.mark.parametrize("noise", ["bitflip", "dephasing", "bitflip+dephasing"])
def test_hadamard_path_keeps_the_channel_in_pair_form_in_its_clifford_frame(noise):
    """Under Pauli noise the dense matrices of random episodes with Hadamards (measurements included) are block
    diagonal on the pairs {a, a ⊕ e₀} seen in the core's Clifford frame, and the frame is unitary; so R_Q is
    the closed-form pair search's. Collective dephasing is not a Pauli channel: no frame there."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=8, noise=noise, hadamard=True, t_dec=100.0, max_steps=50)
    envs.reset(seed=5)
    generator = torch.Generator().manual_seed(1)
    shift = torch.full((8,), 8)
    frame_changes = 0
    for _ in range(50):
        before = envs.core.frame.clone()
        envs.step(torch.randint(0, envs.single_action_space.n, (8,), generator=generator))
        core = envs.core
        seen = core.frame.mH[:, None] @ core.rho @ core.frame[:, None]
        torch.testing.assert_close(P.from_pairs(P.frame_pairs(core.rho, core.frame, 4), shift, 4), seen,
                                   rtol=0, atol=1e-12)
        torch.testing.assert_close(core.frame @ core.frame.mH, torch.eye(16, dtype=torch.complex128).expand(8, -1, -1))
        measured = torch.tensor([name.startswith("measure") for name in core.action_names])[core.last_action]
        frame_changes += int(((core.frame - before).abs().amax((1, 2)) > 1e-9)[measured & (core.elapsed > 1)].sum())
    assert frame_changes > 0
    assert not QubitErrorCorrectionVectorEnv(num_envs=1, noise="correlated", hadamard=True).core.framed


def test_under_dephasing_the_passive_phase_flip_code_is_five_unrewarded_gates_away():
    """Dephasing with Hadamards, no measurement (deterministic): idle keeps R_Q = e^(−2t/T_dec) and returns
    200 + (R_Q(200) − 1)·T_dec/2 (Eq. (6) telescopes); h(1), h(2), h(0), cnot(1,0), cnot(2,0) encode
    a|+++⟩ + b|−−−⟩ with every reward equal to idle's until the last gate, then ≈ 1 per step (return 131.6
    against 29.9). Encoding as for bit flips first pays ≈ −1 and −2 per step (the logical phase
    dephases 2×, 3× as fast) and each Hadamard on a data qubit then lifts the reward by ≈ 1."""
    def play(gates: list[str]) -> tuple[list[float], float]:
        envs = QubitErrorCorrectionVectorEnv(num_envs=1, noise="dephasing", hadamard=True)
        envs.reset(seed=0)
        rewards = [float(envs.step(torch.tensor([envs.core.action_index(gates[t] if t < len(gates) else "idle")]))[1])
                   for t in range(200)]
        return rewards, float(envs.core.recoverable[0])

    idle, idle_final = play([])
    assert idle_final == pytest.approx(math.exp(-2 * 200 / 1200), abs=1e-12)
    assert sum(idle) == pytest.approx(200 + (idle_final - 1) * 600, abs=1e-3)
    phase_code, phase_final = play(["h(1)", "h(2)", "h(0)", "cnot(1,0)", "cnot(2,0)"])
    assert phase_code[:5] == pytest.approx(idle[:5], abs=1e-6)
    assert phase_code[5] > 0.97
    assert sum(phase_code) > 130 and sum(idle) < 30 and phase_final > 0.88
    bit_flip_order, _ = play(["cnot(0,1)", "cnot(0,2)", "h(0)", "h(1)", "h(2)"])
    assert bit_flip_order[1:6] == pytest.approx([-1.0, -2.0, -1.0, 0.0, 1.0], abs=0.03)


def test_pauli_view_holds_the_channel_matrices_in_the_pauli_basis():
    """obs_mode="pauli": Tr(P ρ) for ρ₀, δρx, δρy, δρz and the 4ⁿ Pauli strings, from which the matrices
    follow as Σ_P Tr(Pρ) P / 2ⁿ; at reset δρx is X on qubit 0 times |0⟩⟨0| (the Z strings) on the others."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=4, obs_mode="pauli", noise="bitflip+dephasing", hadamard=True,
                                         action_memory=1)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 4 * 256 + 25) and envs.single_observation_space.shape == (4 * 256 + 25,)
    x_on_0 = [64 + 16 * a + 4 * b + c for a in (0, 3) for b in (0, 3) for c in (0, 3)]  # X ⊗ {1, Z}³
    assert obs[0, 256:512].nonzero().squeeze(1).tolist() == x_on_0 and bool((obs[0, 256 + torch.tensor(x_on_0)] == 1).all())
    strings, _ = K.pauli_basis(4)
    for _ in range(12):
        obs, *_ = envs.step(torch.randint(0, envs.single_action_space.n, (4,), generator=torch.Generator().manual_seed(_)))
        coefficients = obs[:, :1024].reshape(4, 4, 256).to(torch.complex128)
        rebuilt = torch.einsum("bkp,pxy->bkxy", coefficients, strings) / 16
        torch.testing.assert_close(rebuilt, envs.core.rho, atol=1e-6, rtol=0)
        assert torch.equal(obs[:, :1024], envs.core.view("pauli")[:, :1024])
        assert envs.core.view("pauli").dtype == torch.float32 and float(obs.abs().max()) <= 1.0


@pytest.mark.parametrize("obs_mode", ["state", "pauli"])
def test_kept_part_mask_follows_its_rule_component_by_component(obs_mode):
    """Hand-made observations (not states of the env) of δρx, δρy, δρz: measure(0) is ruled out exactly where some
    δρ_k keeps less than a quarter of its squared norm under Z_0 (entries with a_0 = b_0, Pauli strings with 1 or
    Z on qubit 0); other qubits' measurements keep it all here. Exactly a quarter is allowed."""
    envs = QubitErrorCorrectionVectorEnv(num_envs=1, obs_mode=obs_mode, hadamard=True)
    measure = [envs.core.action_index(f"measure({q})") for q in range(4)]
    size = envs.single_observation_space.shape[0]

    def mask(parts: dict[int, list[tuple[bool, float]]]) -> list[bool]:
        """parts: k -> [(flipped by Z_0, amplitude)], placed on distinct entries / Pauli strings."""
        obs = torch.zeros(1, size)
        for k, entries in parts.items():
            for slot, (flipped, amplitude) in enumerate(entries):
                if obs_mode == "state":  # entry (a, b) = (slot, slot + 8 if flipped); δρy imaginary, others real
                    row, column = slot, slot + 8 * flipped
                    obs[0, (4 if k == 2 else 0) * 256 + k * 256 + row * 16 + column] = amplitude
                else:  # X or 1 on qubit 0 (flipped or not) ⊗ a string of 1s and Zs on qubits 1-3
                    obs[0, k * 256 + 64 * flipped + (0, 3, 12, 15, 48)[slot]] = amplitude
        allowed = envs.core.action_mask(obs)[0]
        return [bool(allowed[a]) for a in measure]

    kept = [(False, 0.5)]
    for k in (1, 2, 3):
        others = {j: kept for j in (1, 2, 3) if j != k}
        assert mask({k: [(True, 0.5)], **others}) == [False, True, True, True]
        assert mask({k: kept, **others}) == [True] * 4
        quarter = [(False, 0.5), (True, 0.5), (True, 0.5), (True, 0.5)]           # kept 1/4 of the norm
        assert mask({k: quarter, **others}) == [True] * 4
        under = quarter + [(True, 0.25)]                                          # kept 0.25/1.0625
        assert mask({k: under, **others}) == [False, True, True, True]
    assert mask({}) == [True] * 4  # nothing left to reveal

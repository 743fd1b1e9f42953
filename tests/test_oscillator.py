"""physrl/OscillatorStatePrep-v0: rules, rewards, truncation guard and errors (Sivak et al., PRX 12, 011059 (2022))."""

import math

import gymnasium as gym
import numpy as np
import pytest
import qutip as qt
import scipy.linalg
import torch

from physrl.envs.kernels.oscillator import FockSpace, population
from physrl.envs.oscillator import OscillatorCore

ENV_ID = "physrl/OscillatorStatePrep-v0"


def run_episode(actions: np.ndarray, num_envs: int, seed: int = 0, **options) -> tuple[torch.Tensor, dict]:
    """The same T actions in every sub-env: (last-step rewards, last-step infos)."""
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, **options)
    envs.reset(seed=seed)
    for action in actions:
        _, reward, _, truncated, info = envs.step(torch.as_tensor(np.tile(action, (num_envs, 1))))
    assert bool(truncated.all())
    return reward, info


def snap_action(alpha: complex, theta: dict[int, float] | None = None, phases: int = 10) -> np.ndarray:
    action = np.zeros(2 + phases, dtype=np.float32)
    action[:2] = alpha.real / 3.0, alpha.imag / 3.0
    for k, value in (theta or {}).items():
        action[2 + k] = value / math.pi
    return action


def reference_state(actions: np.ndarray, n_levels: int = 80) -> qt.Qobj:
    """The SNAP + D sequence in plain QuTiP, D = exp(α a† − α* a) by scipy's expm (qutip.displace is slow at 80 levels)."""
    ket = qt.basis(n_levels, 0)
    a = qt.destroy(n_levels).full()
    for action in actions:
        alpha = 3.0 * complex(action[0], action[1])
        phases = np.zeros(n_levels)
        phases[:len(action) - 2] = math.pi * action[2:]
        displace = qt.Qobj(scipy.linalg.expm(alpha * a.conj().T - np.conj(alpha) * a))
        ket = displace.dag() * qt.qdiags(np.exp(1j * phases), 0) * displace * ket
    return ket


def test_defaults_spaces_and_observations():
    env = gym.make(ENV_ID)
    assert env.action_space == gym.spaces.Box(-1, 1, (12,), np.float32)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [1, 0, 0, 0, 0])
    env.action_space.seed(0)
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["top_population"] < 1e-6
        assert ("fidelity" in info) == (t == 4) and truncated == (t == 4) and not terminated
        if t < 4:
            assert reward == 0.0 and obs[t + 1] == 1 and obs.sum() == 1
    assert reward in (-1.0, 1.0) and not obs.any()
    assert gym.make(ENV_ID, feedback=True).observation_space.shape == (6,)
    assert gym.make(ENV_ID, control="ecd").action_space.shape == (4,)


def test_trajectory_matches_a_plain_qutip_sequence():
    rng = np.random.default_rng(1)
    actions = rng.uniform(-0.5, 0.5, (5, 12))
    _, info = run_episode(actions, 1, n=3, reward_mode="fidelity")
    expected = abs(reference_state(actions).overlap(qt.basis(80, 3))) ** 2
    assert float(info["fidelity"][0]) == pytest.approx(expected, abs=1e-10)


def test_norm_is_preserved_over_ten_thousand_random_steps():
    for control, size in [("snap_displacement", 12), ("ecd", 4)]:
        core = OscillatorCore(4, control=control)
        core.reset(torch.arange(4), torch.arange(4))
        psi = core.psi
        actions = torch.as_tensor(np.random.default_rng(2).uniform(-1, 1, (2500, 4, size)))
        for action in actions:
            psi = core.apply(psi, action)
        norms = psi.abs().square().flatten(1).sum(1)
        np.testing.assert_allclose(norms.numpy(), 1.0, atol=1e-10, rtol=0)


def test_displacement_only_ecd_sequence_gives_the_coherent_state_fidelity():
    # R(π, 0) = −iσx sends |g⟩ to |e⟩; ECD(β) then returns it to |g⟩ with D(−β/2): |g, −(β₁ + β₂)/2⟩.
    b1, b2 = 0.4 - 0.2j, 0.3 + 0.5j
    actions = np.array([[b1.real, b1.imag, 1.0, 0.0], [b2.real, b2.imag, 1.0, 0.0]], dtype=np.float32)
    for n in (0, 1, 3):
        _, info = run_episode(actions, 1, control="ecd", alpha_max=3.0, max_steps=2, n=n, reward_mode="fidelity")
        beta = 3.0 * complex(*actions.astype(np.float64)[:, :2].sum(0))
        mean = abs(beta) ** 2 / 4
        assert float(info["fidelity"][0]) == pytest.approx(math.exp(-mean) * mean**n / math.factorial(n), abs=1e-10)


def test_snap_on_vacuum_gives_the_hand_computed_fidelity():
    # U|0⟩ = |0⟩ − 2 ⟨0|α⟩ D(−α)|0⟩ = |0⟩ − 2 e^{−|α|²/2} |−α⟩ for θ_0 = π, so F_n = 4 e^{−2|α|²} |α|^{2n}/n!.
    alpha = 0.9 - 0.6j
    action = snap_action(alpha, {0: math.pi})
    for n in (1, 2, 4):
        _, info = run_episode(action[None], 1, max_steps=1, n=n, reward_mode="fidelity")
        x = 9.0 * (float(action[0]) ** 2 + float(action[1]) ** 2)  # α as the float32 action gives it
        assert float(info["fidelity"][0]) == pytest.approx(4 * math.exp(-2 * x) * x**n / math.factorial(n), abs=1e-10)
    _, info = run_episode(snap_action(alpha)[None], 1, max_steps=1, n=1, reward_mode="fidelity")
    assert float(info["fidelity"][0]) == pytest.approx(0.0, abs=1e-10)


def test_fock_reward_expectation_is_two_f_minus_one():
    action = snap_action(0.9 - 0.6j, {0: math.pi})
    count = 4000
    for control, actions in [("snap_displacement", action[None]),
                             ("ecd", np.array([[0.3, -0.2, 1.0, 0.0], [0.1, 0.2, 0.6, 0.3]], np.float32))]:
        options = {"n": 1, "max_steps": len(actions), "control": control, "alpha_max": 3.0}
        reward, info = run_episode(actions, count, **options)
        fidelity = float(info["fidelity"][0])
        assert 0.1 < fidelity < 0.9
        mean, error = reward.double().mean().item(), reward.double().std().item() / math.sqrt(count)
        assert abs(mean - (2 * fidelity - 1)) < 4 * error


def test_shots_count_the_single_shot_measurements_of_finished_episodes():
    action = snap_action(0.9 - 0.6j)
    for options, per_episode in [({"n": 1}, 1), ({"target": qt.basis(80, 1), "reward_mode": "wigner",
                                                  "wigner_samples": 3}, 3), ({"n": 1, "reward_mode": "fidelity"}, 0)]:
        envs = gym.make_vec(ENV_ID, num_envs=4, max_steps=2, **options)
        envs.reset(seed=0)
        counts = []
        for _ in range(6):  # two episodes and the autoreset step after each
            envs.step(torch.as_tensor(np.tile(action, (4, 1))))
            counts.append(int(envs.unwrapped.core.shots))
        assert counts == [per_episode * count for count in (0, 4, 4, 4, 8, 8)], options


def test_wigner_reward_expectation_follows_the_documented_formula():
    action = snap_action(0.9 - 0.6j, {0: math.pi, 1: 1.0})
    count = 4000
    reward, info = run_episode(action[None], count, max_steps=1, target=qt.basis(80, 1), reward_mode="wigner",
                               wigner_samples=2)
    core = OscillatorCore(1, max_steps=1, target=qt.basis(80, 1), reward_mode="wigner")
    ket = reference_state(action[None])
    axis = math.sqrt(2) * core.grid.real.numpy()[:81]
    w_state = qt.wigner(ket, axis, axis).ravel()
    w_target = core.grid_target_w.numpy()
    exact = math.pi * (w_target * w_state).sum() / np.abs(w_target).sum()
    mean, error = reward.double().mean().item(), reward.double().std().item() / math.sqrt(count)
    assert abs(mean - exact) < 4 * error
    axis = np.linspace(-8, 8, 401)
    area = np.abs(qt.wigner(qt.basis(80, 1), axis, axis)).sum() * (axis[1] - axis[0]) ** 2
    fidelity = float(info["fidelity"][0])
    assert exact == pytest.approx(fidelity / (2 * area), rel=1e-2)  # the 81 x 81 grid approximates the integrals


def test_feedback_outcomes_follow_born_probabilities():
    count = 4000
    action = snap_action(0.7 + 0.4j, {1: 2.0, 2: -1.0})
    envs = gym.make_vec(ENV_ID, num_envs=count, feedback=True, n=2)
    envs.reset(seed=5)
    obs, *_ = envs.step(torch.as_tensor(np.tile(action, (count, 1))))
    p_even = sum(abs(reference_state(action[None]).full()[k, 0]) ** 2 for k in range(0, 80, 2))
    frequency = (obs[:, -1] == 1).double().mean().item()
    assert set(obs[:, -1].tolist()) <= {-1.0, 1.0}
    assert abs(frequency - p_even) < 4 * math.sqrt(p_even * (1 - p_even) / count)
    envs = gym.make_vec(ENV_ID, num_envs=count, feedback=True, control="ecd")
    envs.reset(seed=6)
    obs, *_ = envs.step(torch.as_tensor(np.tile([0.2, 0.1, 0.4, 0.0], (count, 1))))
    p_ground = math.sin(0.4 * math.pi / 2) ** 2  # R(θ, 0)|g⟩ = cos(θ/2)|g⟩ − i sin(θ/2)|e⟩, then ECD swaps g, e
    frequency = (obs[:, -1] == 1).double().mean().item()
    assert abs(frequency - p_ground) < 4 * math.sqrt(p_ground * (1 - p_ground) / count)


def top_bound(n_levels: int, radii: np.ndarray, steps: int = 5, phases: int = 10) -> np.ndarray:
    """(2 T ‖P_top D(−r) Π_{<S}‖)² for each radius: a bound on the top-two population after T steps.

    U − I = D(−α)(SNAP − I)D(α) maps every ket into span{D(−α)|k⟩, k < S} with norm ≤ 2, so each step
    adds at most 2‖P_top D(−α) Π_{<S}‖ to the top-two amplitude. R(φ) = e^{iφa†a} commutes with both
    projectors, so the norm depends on |α| only.
    """
    matrices = FockSpace(n_levels).displacement_matrix(torch.as_tensor(-radii + 0j)).numpy()
    norms = np.linalg.norm(matrices[:, -2:, :phases], ord=2, axis=(1, 2))
    return (2 * steps * norms) ** 2


def test_top_two_population_stays_below_1e_minus_6_for_every_action_at_the_defaults():
    radii = np.linspace(0, 3 * math.sqrt(2), 121)
    bound = top_bound(80, radii)
    assert bound.argmax() == len(radii) - 1  # the worst actions are the corners |α| = α_max √2
    assert bound.max() < 1e-6
    assert top_bound(40, radii[-1:])[0] > 1e-3  # why the default is 80 levels, not 40
    rng = np.random.default_rng(7)
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float32)
    batch = []
    for _ in range(64):
        actions = rng.choice([-1.0, 1.0], size=(5, 12)).astype(np.float32)
        actions[:, :2] = corners[rng.integers(0, 4, 5)]
        batch.append(actions)
    batch += list(rng.uniform(-1, 1, (64, 5, 12)).astype(np.float32))
    batch = torch.as_tensor(np.stack(batch))
    envs = gym.make_vec(ENV_ID, num_envs=len(batch))
    envs.reset(seed=0)
    worst = 0.0
    for t in range(5):
        _, _, _, _, info = envs.step(batch[:, t])
        worst = max(worst, float(info["top_population"].max()))
    assert worst < 1e-6


def ecd_reference_state(actions: np.ndarray, n_levels: int = 80, alpha_max: float = 1.5) -> qt.Qobj:
    """The ECD sequence in plain QuTiP: R(θ, φ) = exp(−iθ/2 (cos φ σx + sin φ σy)), then
    ECD(β) = D(β/2)|e⟩⟨g| + D(−β/2)|g⟩⟨e| with D by scipy's expm."""
    g, e = qt.basis(2, 0), qt.basis(2, 1)
    a = qt.destroy(n_levels).full()
    ket = qt.tensor(g, qt.basis(n_levels, 0))
    for action in actions:
        beta = alpha_max * complex(action[0], action[1])
        theta, phi = math.pi * action[2], math.pi * action[3]
        rotation = (-0.5j * theta * (math.cos(phi) * qt.sigmax() + math.sin(phi) * qt.sigmay())).expm()
        half = qt.Qobj(scipy.linalg.expm(beta / 2 * a.conj().T - np.conj(beta) / 2 * a))
        ecd = qt.tensor(e * g.dag(), half) + qt.tensor(g * e.dag(), half.dag())
        ket = ecd * qt.tensor(rotation, qt.qeye(n_levels)) * ket
    return ket


def test_ecd_trajectory_matches_a_plain_qutip_sequence():
    actions = np.random.default_rng(3).uniform(-1, 1, (5, 4)).astype(np.float32)
    reference = ecd_reference_state(actions.astype(np.float64))
    for n in (0, 2, 3):
        _, info = run_episode(actions, 1, control="ecd", n=n, reward_mode="fidelity")
        expected = abs(reference.overlap(qt.tensor(qt.basis(2, 0), qt.basis(80, n)))) ** 2
        assert float(info["fidelity"][0]) == pytest.approx(expected, abs=1e-10)
    assert 0.01 < expected  # a state with real weight on the target, not a trivially zero overlap


def ecd_corner_sequences(count: int, seed: int) -> torch.Tensor:
    """``count`` ECD sequences with every β at a corner of the box (the largest displacements) and
    random qubit rotations, the first one the alternating sequence [s, s, 0, 0], s = 1, −1, 1, −1, 1."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (count, 5, 4))
    actions[:, :, :2] = rng.choice([-1.0, 1.0], size=(count, 5, 2))
    actions[0] = [[s, s, 0, 0] for s in (1, -1, 1, -1, 1)]
    return torch.as_tensor(actions.astype(np.float32))


def test_ecd_top_two_population_stays_below_1e_minus_6_at_the_defaults():
    batch = ecd_corner_sequences(4096, 8)
    envs = gym.make_vec(ENV_ID, num_envs=len(batch), control="ecd", reward_mode="fidelity")
    envs.reset(seed=0)
    for t in range(5):
        _, _, _, _, info = envs.step(batch[:, t])
    assert float(info["top_population"].max()) < 1e-6
    # the defaults also keep the kets equal to a 4× larger space's (the truncation changes nothing)
    small, large = (OscillatorCore(256, control="ecd", n_levels=levels) for levels in (80, 320))
    overlap = (small.prepare(batch[:256].double()).conj() * large.prepare(batch[:256].double())[..., :80]).sum((1, 2))
    np.testing.assert_allclose(overlap.abs().square().numpy(), 1.0, atol=1e-10)


def test_truncation_guard_keeps_the_episode_maximum_and_warns():
    # with alpha_max = 3 the alternating corner sequence moves the state far past 80 levels: its top-two
    # population peaks mid-episode (0.12 at step 4), and the guard must report that peak, not the last value
    actions = ecd_corner_sequences(1, 0)[0]
    core = OscillatorCore(1, control="ecd", alpha_max=3.0)
    per_step = [float(population(core.prepare(actions[None, :t + 1].double()), core.top_levels)[0]) for t in range(5)]
    assert max(per_step) > 0.1 and per_step[-1] < max(per_step) / 10
    envs = gym.make_vec(ENV_ID, num_envs=1, control="ecd", alpha_max=3.0, reward_mode="fidelity")
    envs.reset(seed=0)
    with pytest.warns(RuntimeWarning, match="truncation edge"):
        for t in range(5):
            _, _, _, _, info = envs.step(actions[None, t])
            assert float(info["top_population"][0]) == pytest.approx(max(per_step[:t + 1]), rel=1e-9)


def test_targets_from_arrays_qobj_and_cat():
    ket = qt.rand_ket(20, seed=3)
    a = OscillatorCore(1, n_levels=20, target=ket, reward_mode="fidelity")
    b = OscillatorCore(1, n_levels=20, target=ket.full().ravel(), reward_mode="fidelity")
    torch.testing.assert_close(a.target, b.target)
    cat = OscillatorCore(1, target="cat", reward_mode="wigner").target.numpy()
    expected = (qt.coherent(80, 2.0, method="analytic") + qt.coherent(80, -2.0, method="analytic")).unit()
    np.testing.assert_allclose(cat, expected.full().ravel(), atol=1e-12)


def test_render_shows_the_wigner_function():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    centre, corner = image[128, 128], image[0, 0]
    assert centre[0] > 150 and centre[2] < 100  # vacuum: W(0) = 1/π > 0 is red
    np.testing.assert_array_equal(corner, [255, 255, 255])


@pytest.mark.parametrize("options, match", [
    ({"n": 80}, "n must be"),
    ({"snap_phases": 81}, "snap_phases"),
    ({"target": np.ones(7) / math.sqrt(7), "reward_mode": "fidelity"}, "shape"),
    ({"target": np.ones(80), "reward_mode": "fidelity"}, "normalised"),
    ({"target": qt.basis(80, 1).proj(), "reward_mode": "fidelity"}, "ket"),
    ({"target": "cat"}, "reward_mode='fock'"),
    ({"target": "cat", "n": 2, "reward_mode": "wigner"}, "n is only"),
    ({"control": "snap"}, "control"),
    ({"reward_mode": "parity"}, "reward_mode"),
    ({"alpha_max": float("nan")}, "alpha_max"),
    ({"control": "ecd", "snap_phases": 4}, "snap_phases"),
    ({"wigner_samples": 0, "reward_mode": "wigner"}, "wigner_samples"),
])
def test_bad_options_raise_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **options)


def test_nan_actions_raise():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    action = np.zeros(12, np.float32)
    action[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.step(action)


def test_horizon_is_max_steps_and_the_old_n_steps_still_works_with_a_deprecation_warning():
    env = gym.make(ENV_ID, max_steps=3)
    assert env.observation_space.shape == (3,)
    with pytest.warns(DeprecationWarning, match="n_steps is deprecated, use max_steps"):
        envs = gym.make_vec(ENV_ID, num_envs=2, n_steps=2)
    envs.reset(seed=0)
    truncated = [bool(envs.step(torch.zeros(2, 12))[3].all()) for _ in range(2)]
    assert truncated == [False, True]


def test_episode_summary_reports_the_exact_fidelity_and_the_wigner_picture():
    envs = gym.make_vec(ENV_ID, num_envs=2, n=1, max_steps=1, render_mode="rgb_array")
    envs.reset(seed=0)
    _, _, _, _, info = envs.step(torch.as_tensor(np.tile(snap_action(0.9 - 0.6j, {0: math.pi}), (2, 1))))
    summary = envs.unwrapped.core.episode_summary(1, [])
    assert summary["charts/fidelity"] == pytest.approx(float(info["fidelity"][1]), abs=1e-12)
    assert summary["charts/fidelity"] > 0.1 and summary["images/episode"].shape == (256, 256, 3)

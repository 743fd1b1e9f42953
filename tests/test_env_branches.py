"""Every reward and termination branch of every env, driven directly into the branch it tests.

Walker: on the target, staying there, walking past it. Maze: wall bumps with and without a penalty,
chest deletion, a deleted chest revisited, the last chest, chests that pay every step. QEC: a
non-revealing measurement (reward from R̂_Q averaged over the outcomes, the same for both outcomes),
a revealing one, an idle step below the 10⁻³ threshold. Oscillator: every reward mode at its
extremes (F = 1 and F = 0), the ECD qubit check. And ``load_policy`` acts exactly as the agent it saved.
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import qutip as qt
import torch

from physrl.envs.kernels import qubits as K, recoverable_information as R
from physrl.envs.qec import REVEALED
from physrl.training import load_policy
from physrl.training.checkpoint import export_policy
from physrl.training.train import execute, prepare

# ---------------------------------------------------------------- walkers


def test_walker_target_pays_on_the_target_while_staying_and_never_past_it():
    envs = gym.make_vec("physrl/WalkerTarget-v0", num_envs=1, max_steps=10, target_range=5)
    envs.reset(seed=0)
    envs.core.target[:] = 2
    # (action, reward, observation "on target"): right, right (arrive), stay, right (overshoot), stay, right
    for position, (action, reward, on_target) in enumerate(
            [(1, 0.0, 0), (1, 1.0, 1), (0, 1.0, 1), (1, 0.0, 0), (0, 0.0, 0), (1, 0.0, 0)]):
        obs, r, terminated, truncated, info = envs.step(torch.tensor([action]))
        assert (r.item(), obs.item(), terminated.item()) == (reward, on_target, False)
        assert r.dtype == torch.float32 and terminated.dtype == torch.bool and info["target"].item() == 2
    assert info["position"].item() == 4


def test_walker_target_at_the_start_pays_for_staying():
    envs = gym.make_vec("physrl/WalkerTarget-v0", num_envs=1, max_steps=3)
    obs, _ = envs.reset(seed=0)
    envs.core.target[:] = 0
    assert envs.core.observe().item() == 1
    rewards = [envs.step(torch.tensor([a]))[1].item() for a in (0, 1, 0)]
    assert rewards == [1.0, 0.0, 0.0]


def test_random_walker_pays_the_displacement_of_every_step():
    envs = gym.make_vec("physrl/RandomWalker-v0", num_envs=1, max_steps=3)
    envs.reset(seed=0)
    steps = [envs.step(torch.tensor([a])) for a in (1, 0, 0)]
    assert [s[1].item() for s in steps] == [1.0, -1.0, -1.0] and steps[0][1].dtype == torch.float32
    assert [s[4]["position"].item() for s in steps] == [1, 0, -1]
    assert [s[3].item() for s in steps] == [False, False, True]


@pytest.mark.parametrize("env_id", ["physrl/RandomWalker-v0", "physrl/WalkerTarget-v0"])
def test_walker_observations_stay_in_their_space_to_the_last_step(env_id):
    envs = gym.make_vec(env_id, num_envs=1, max_steps=4)
    obs, _ = envs.reset(seed=0)
    seen = [obs.item()]
    for _ in range(4):
        obs, *_ = envs.step(torch.tensor([1]))
        seen.append(obs.item())
    space = envs.single_observation_space
    assert all(space.contains(np.int64(o)) for o in seen)
    if env_id == "physrl/RandomWalker-v0":  # the observation is the time step, 0 … T
        assert seen == [0, 1, 2, 3, 4] and space.n == 5


# ---------------------------------------------------------------- maze

STAY, UP, RIGHT, DOWN, LEFT = range(5)


def maze_with(chests, robot, **options):
    """A 5×5 maze with only the border as wall, the given chests and robot (row, col)."""
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=1, size=5, n_chests=2, max_steps=40, **options)
    envs.reset(seed=0)
    core = envs.core
    walls = torch.ones(5, 5, dtype=torch.bool)
    walls[1:4, 1:4] = False
    core.walls[0] = walls.flatten()
    core.chests[0] = False
    for r, c in chests:
        core.chests[0, r * 5 + c] = True
    core.position[0] = robot[0] * 5 + robot[1]
    return envs


def play(envs, actions):
    out = []
    for action in actions:
        obs, reward, terminated, truncated, _ = envs.step(torch.tensor([action]))
        out.append((reward.item(), terminated.item(), divmod(int(envs.core.position[0]), 5)))
    return out


def test_maze_deleted_chests_pay_once_and_the_last_one_ends_the_episode():
    envs = maze_with([(1, 2), (1, 3)], (1, 1), delete_chests=True, wall_penalty=0.5)
    assert play(envs, [UP, RIGHT, LEFT, RIGHT, STAY, RIGHT]) == [
        (-0.5, False, (1, 1)),   # bump into the border: penalty, no move
        (1.0, False, (1, 2)),    # first chest, deleted
        (0.0, False, (1, 1)),
        (0.0, False, (1, 2)),    # the deleted chest pays nothing
        (0.0, False, (1, 2)),
        (1.0, True, (1, 3)),     # the last chest ends the episode
    ]
    obs = envs.core.observe()[0]
    assert obs[1].sum().item() == 0 and obs[2, 1, 3].item() == 1.0


def test_maze_kept_chests_pay_every_step_there_even_after_a_wall_bump():
    envs = maze_with([(1, 3), (3, 3)], (1, 2), delete_chests=False, wall_penalty=0.25)
    assert play(envs, [RIGHT, STAY, UP, RIGHT, LEFT]) == [
        (1.0, False, (1, 3)),
        (1.0, False, (1, 3)),    # staying on a chest pays again
        (0.75, False, (1, 3)),   # blocked while on the chest: 1 − penalty
        (0.75, False, (1, 3)),
        (0.0, False, (1, 2)),
    ]
    assert envs.core.chests[0].sum().item() == 2


def test_maze_wall_bump_without_penalty_costs_nothing_and_inner_walls_block():
    envs = maze_with([(3, 3), (3, 1)], (1, 1), delete_chests=True)
    envs.core.walls[0, 1 * 5 + 2] = True  # an inner wall right of the robot
    assert play(envs, [RIGHT, LEFT, UP, DOWN]) == [(0.0, False, (1, 1)), (0.0, False, (1, 1)), (0.0, False, (1, 1)),
                                                   (0.0, False, (2, 1))]


# ---------------------------------------------------------------- QEC


def qec(num_envs=1, **options):
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=num_envs, n_qubits=3, max_steps=20, **options)
    envs.reset(seed=0)
    return envs


def averaged_recoverable_information(core, measured_qubit):
    """R̂_Q(t+1) computed afresh from the state before the step: noise, then Σ_m R_Q(Π_m δρ Π_m) for a
    measurement (R_Q is 1-homogeneous, so this is Σ_m p_m R_Q of the normalised branch), else R_Q."""
    rho = core.apply_noise(core.rho.clone())
    if measured_qubit is None:
        return R.recoverable_information(rho[:, 1:], iterations=30)[0]
    branches = [K.project(rho, core.n_qubits, measured_qubit, m) for m in (0, 1)]
    return sum(R.recoverable_information(b[:, 1:], iterations=30)[0] for b in branches)


def documented_reward(averaged, previous, t_dec):
    """r = min(1, R̂_Q(t+1)/ε) + (R̂_Q(t+1) − R_Q(t)) / (2Δt/T_dec), ε = 10⁻³ (Fösel et al. Eq. (6) above ε,
    continuous below it)."""
    return (averaged / REVEALED).clamp(max=1.0) + (averaged - previous) * (t_dec / 2.0)


@pytest.mark.parametrize("hadamard", [False, True])
def test_qec_measurement_reward_uses_the_outcome_average_and_is_the_same_for_both_outcomes(hadamard):
    t_dec = 20.0
    envs = qec(num_envs=256, t_dec=t_dec, hadamard=hadamard)
    core = envs.core
    for name in ("cnot(0,1)", "cnot(0,2)", "cnot(1,2)"):  # qubit 2 holds the parity of qubits 0 and 1
        previous = core.recoverable.clone()
        expected = documented_reward(averaged_recoverable_information(core, None), previous, t_dec)
        _, reward, terminated, _, info = envs.step(torch.full((256,), core.action_index(name)))
        assert torch.allclose(reward.double(), expected, atol=1e-6) and not terminated.any()
    previous = core.recoverable.clone()
    averaged = averaged_recoverable_information(core, 2)
    _, reward, terminated, _, info = envs.step(torch.full((256,), core.action_index("measure(2)")))
    outcome, realised = info["outcome"], info["recoverable_information"]
    assert 0 < int(outcome.sum()) < 256  # both outcomes occurred
    assert realised[outcome == 0].min() > realised[outcome == 1].max() + 0.05  # and they differ in R_Q
    assert torch.allclose(reward.double(), documented_reward(averaged, previous, t_dec), atol=1e-5)
    assert not terminated.any()
    # the realised outcome's R_Q would give other rewards: this test tells the two rules apart
    realised_reward = documented_reward(realised, previous, t_dec)
    assert (realised_reward - reward.double()).abs().max() > 0.1


def test_qec_idle_reward_follows_the_plain_recoverable_information():
    t_dec = 50.0
    envs = qec(num_envs=4, t_dec=t_dec)
    core = envs.core
    for t in range(1, 4):
        previous = core.recoverable.clone()
        _, reward, terminated, _, info = envs.step(torch.zeros(4, dtype=torch.int64))
        expected = documented_reward(info["recoverable_information"], previous, t_dec)
        assert torch.allclose(reward.double(), expected, atol=1e-6) and not terminated.any()
        assert torch.allclose(info["recoverable_information"], torch.full((4,), math.exp(-2 * t / t_dec),
                                                                          dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("actions", [["measure(0)"], ["cnot(0,1)", "measure(1)"]])
def test_qec_revealing_measurement_pays_the_lost_information_and_ends_the_episode(actions):
    envs = qec(num_envs=8)
    core = envs.core
    for name in actions:
        previous, averaged = core.recoverable.clone(), averaged_recoverable_information(core, int(name[-2]) if
                                                                                         "measure" in name else None)
        _, reward, terminated, truncated, _ = envs.step(torch.full((8,), core.action_index(name)))
    assert float(averaged.max()) <= REVEALED < float(previous.min())
    assert torch.allclose(reward.double(), documented_reward(averaged, previous, core.t_dec), atol=1e-3)
    assert float(reward.max()) < -0.4 * core.t_dec  # about −R_Q(t)·T_dec/2
    assert terminated.all() and not truncated.any()


def test_qec_steps_below_the_threshold_follow_the_continuous_reward_and_only_a_real_reveal_ends_an_episode():
    """With T_dec = 0.05 steps one idle step erases the logical state (R_Q ≈ 0). No measurement was made, so
    the episode goes on; a measurement afterwards reveals nothing more, so it goes on too."""
    t_dec = 0.05
    envs = qec(num_envs=4, t_dec=t_dec)
    core = envs.core
    for name in ("idle", "idle", "measure(0)", "measure(1)", "idle"):
        previous = core.recoverable.clone()
        _, reward, terminated, truncated, info = envs.step(torch.full((4,), core.action_index(name)))
        assert float(info["recoverable_information"].max()) <= REVEALED
        assert not terminated.any() and not truncated.any()
        assert torch.allclose(reward.double(), documented_reward(info["recoverable_information"], previous, t_dec),
                              atol=1e-6)


# ---------------------------------------------------------------- oscillator


def oscillator_rewards(control="snap_displacement", max_steps=2, num_envs=64, **options):
    """Rewards of every step under the zero action (SNAP + D: the identity; ECD: a qubit flip g <-> e)."""
    extra = {"snap_phases": 2} if control == "snap_displacement" else {}
    envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=num_envs, control=control, n_levels=12,
                        max_steps=max_steps, **extra, **options)
    envs.reset(seed=0)
    zero = torch.zeros(num_envs, envs.single_action_space.shape[0])
    steps = [envs.step(zero) for _ in range(max_steps)]
    assert all(s[1].dtype == torch.float32 for s in steps)
    return torch.stack([s[1] for s in steps]), steps[-1][4]


@pytest.mark.parametrize("n, reward", [(0, 1.0), (1, -1.0)])
def test_oscillator_fock_reward_is_plus_one_at_fidelity_one_and_minus_one_at_zero(n, reward):
    rewards, info = oscillator_rewards(target="fock", n=n, reward_mode="fock")
    assert rewards[0].tolist() == [0.0] * 64 and rewards[1].tolist() == [reward] * 64
    assert info["fidelity"].tolist() == pytest.approx([(1.0 + reward) / 2] * 64)


@pytest.mark.parametrize("max_steps, reward", [(1, -1.0), (2, 1.0)])
def test_oscillator_fock_reward_with_ecd_needs_the_qubit_in_g(max_steps, reward):
    """The zero ECD step flips the qubit: after one step it is in |e⟩ (the measurement fails), after two in |g⟩."""
    rewards, _ = oscillator_rewards(control="ecd", max_steps=max_steps, target="fock", n=0, reward_mode="fock")
    assert rewards[-1].tolist() == [reward] * 64


@pytest.mark.parametrize("control, outcomes", [("ecd", [-1.0, 1.0, -1.0]), ("snap_displacement", [1.0, 1.0, 1.0])])
def test_oscillator_feedback_reports_the_measured_outcome(control, outcomes):
    """Zero actions: ECD flips the qubit every step (g -> e -> g: −1, +1, −1 with +1 = |g⟩); SNAP + D leaves the
    vacuum, whose photon-number parity is even (+1)."""
    extra = {"snap_phases": 2} if control == "snap_displacement" else {}
    envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=4, control=control, n_levels=12, max_steps=3,
                        feedback=True, reward_mode="fidelity", **extra)
    envs.reset(seed=0)
    zero = torch.zeros(4, envs.single_action_space.shape[0])
    seen = [envs.step(zero)[0][:, -1].tolist() for _ in range(3)]
    assert seen == [[o] * 4 for o in outcomes]


@pytest.mark.parametrize("n, fidelity", [(0, 1.0), (1, 0.0)])
def test_oscillator_fidelity_reward_is_the_fidelity(n, fidelity):
    rewards, _ = oscillator_rewards(target="fock", n=n, reward_mode="fidelity", num_envs=2)
    assert rewards[0].tolist() == [0.0, 0.0] and rewards[1].tolist() == pytest.approx([fidelity, fidelity])


@pytest.mark.parametrize("n", [0, 1])
def test_oscillator_wigner_reward_at_fidelity_one_and_zero_follows_the_documented_expectation(n):
    count = 2048
    rewards, _ = oscillator_rewards(target="fock", n=n, reward_mode="wigner", wigner_samples=4, num_envs=count)
    envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=1, n_levels=12, target="fock", n=n,
                        reward_mode="wigner", snap_phases=2)
    core = envs.core
    axis = math.sqrt(2) * core.grid.real.numpy()[:81]
    w_state = qt.wigner(qt.basis(12, 0), axis, axis).ravel()  # the prepared state is the vacuum
    w_target = core.grid_target_w.numpy()
    exact = math.pi * (w_target * w_state).sum() / np.abs(w_target).sum()
    last = rewards[-1].double()
    assert rewards[0].abs().sum() == 0
    assert abs(last.mean().item() - exact) < 4 * max(last.std().item(), 0.05) / math.sqrt(count)
    assert (exact > 0.2) if n == 0 else (abs(exact) < 0.02)


# ---------------------------------------------------------------- load_policy


@pytest.mark.parametrize("agent, env_id, env_kwargs, hyperparameters", [
    ("deep-pg", "physrl/TreasureMaze-v0", {"size": 7, "n_chests": 3, "max_steps": 10}, {}),
    ("dqn", "physrl/TreasureMaze-v0", {"size": 7, "n_chests": 3, "max_steps": 10},
     {"learning_starts": 8, "buffer_size": 256}),
    ("q-learning", "physrl/WalkerTarget-v0", {}, {}),
    ("tabular-pg", "physrl/RandomWalker-v0", {}, {}),
])
def test_load_policy_acts_exactly_as_the_trained_agent(agent, env_id, env_kwargs, hyperparameters, tmp_path):
    run = prepare(env_id, agent, num_envs=2, total_steps=32, env_kwargs=env_kwargs, hyperparameters=hyperparameters,
                  logdir=tmp_path)
    generator = torch.Generator().manual_seed(0)
    learner = run.learner
    learned = {"deep-pg": lambda: list(learner.model.parameters()), "dqn": lambda: list(learner.q_network.parameters()),
               "q-learning": lambda: [learner.q], "tabular-pg": lambda: [learner.theta]}[agent]()
    with torch.no_grad():  # move the agent far from its initialisation, so that a policy left untrained shows
        for parameter in learned:
            parameter.add_(torch.randn(parameter.shape, generator=generator))
    execute(run, progress=False)
    policy = load_policy(run.run_dir)
    envs = gym.make_vec(env_id, num_envs=64, **env_kwargs)
    fresh = prepare(env_id, agent, num_envs=2, total_steps=32, env_kwargs=env_kwargs,
                    hyperparameters=hyperparameters, logdir=tmp_path / "fresh").learner
    obs, _ = envs.reset(seed=3)
    differs = False
    for _ in range(5):
        trained = run.learner.act(obs)
        assert torch.equal(policy(obs), trained)
        differs |= not torch.equal(fresh.act(obs), trained)
        obs = envs.step(trained)[0]
    assert differs  # the check above would notice weights that were not loaded
    # the policy-only export (optimiser, buffer and env state dropped) acts the same
    exported = load_policy(export_policy(run.run_dir, tmp_path / "policy.pt"))
    obs, _ = envs.reset(seed=4)
    assert torch.equal(exported(obs), policy(obs))


def test_an_out_of_range_discrete_action_is_named_in_the_error():
    """Actions at both ends of Discrete(5) are valid; the error names the first one outside [0, 4], not a bound."""
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=3)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must be in \[0, 4\] for Discrete\(5\), got 7$"):
        envs.step(torch.tensor([0, 4, 7]))

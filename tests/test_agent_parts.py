"""Unit tests of the agents' shared pieces: rollouts, returns, networks, resume, baselines, errors."""

import io
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from physrl.agents import AGENTS, DeepPolicyGradient, TabularPolicyGradient
from physrl.agents.reference.maze import (MazeOptimalPolicy, bfs_distances, maze_greedy_policy, optimal_plan,
                                          optimal_return)
from physrl.agents.reference.uniform import random_policy
from physrl.agents.reference.walker import random_walker_optimum, walker_target_optimum, walker_target_optimum_policy
from physrl.agents.networks import ActionMapNet, GaussianHead, ValuePropagationNet, build_network
from physrl.agents.novelty import SimHashCounts
from physrl.agents.rollout import Rollout, discounted_returns, gae, play_episodes
from physrl.envs.maze import MOVES, MazeLayout


def test_rollout_masks_the_autoreset_step_and_counts_episodes():
    envs = gym.make_vec("physrl/RandomWalker-v0", num_envs=2, max_steps=3)
    rollout = Rollout(envs, seed=0)
    batch = rollout.collect(9, lambda obs: (torch.ones(2, dtype=torch.int64), {}))
    # Steps 0-2 are the first episode, step 3 the autoreset step, 4-6 the second episode, 7 autoreset.
    assert batch.valid[:, 0].tolist() == [True, True, True, False, True, True, True, False, True]
    assert batch.dones[:, 0].tolist() == [False, False, True, False, False, False, True, False, False]
    assert batch.obs[:, 0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert batch.complete[:, 0].tolist() == [True] * 7 + [False] * 2
    stats = batch.episode_stats()
    assert stats == {"episodic_return": [3.0, 3.0, 3.0, 3.0], "episodic_length": [3, 3, 3, 3]}


def test_gae_with_lambda_one_is_reward_to_go_minus_value():
    generator = torch.Generator().manual_seed(0)
    rewards = torch.rand(7, 3, generator=generator)
    values = torch.rand(7, 3, generator=generator)
    dones = torch.rand(7, 3, generator=generator) < 0.3
    last = torch.rand(3, generator=generator)
    returns = discounted_returns(rewards, dones, 0.9, last)
    assert torch.allclose(gae(rewards, values, dones, last, 0.9, 1.0), returns - values)
    # λ = 0: one-step TD errors.
    next_values = torch.cat([values[1:], last[None]])
    assert torch.allclose(gae(rewards, values, dones, last, 0.9, 0.0), rewards + 0.9 * next_values * ~dones - values)


def test_whole_episode_return_weights_every_step_of_an_episode_alike():
    envs = gym.make_vec("physrl/RandomWalker-v0", num_envs=2, max_steps=3)
    agent = DeepPolicyGradient(envs, value_baseline=False, gae_lambda=1.0, gamma=1.0, reward_to_go=False)
    batch = Rollout(envs, seed=0).collect(9, lambda obs: (torch.ones(2, dtype=torch.int64), {}))
    weights, _, mask = agent.advantages(batch)
    # Reward 1 a step: every step of a 3-step episode is weighted by 3 (reward-to-go would give 3, 2, 1).
    assert weights[mask[:, 0], 0].tolist() == [3.0] * 6
    with pytest.raises(ValueError, match="reward_to_go"):
        DeepPolicyGradient(envs, value_baseline=False, gae_lambda=1.0, gamma=0.99, reward_to_go=False)


def test_gaussian_head_keeps_actions_in_the_box_and_has_the_normal_log_prob():
    head = GaussianHead(spaces.Box(-1.0, 1.0, (12,)), log_std_init=0.5)
    out = torch.randn(256, 12) * 5
    env_action, raw = head.sample(out, torch.Generator().manual_seed(0))
    assert env_action.shape == (256, 12) and bool((env_action.abs() <= 1).all()) and bool((raw.abs() > 1).any())
    assert bool((head.mode(out).abs() <= 1).all())
    log_p, entropy = head.log_prob_entropy(out, raw)
    normal = torch.distributions.Normal(head._mean(out), head.log_std.exp())
    assert torch.allclose(log_p, normal.log_prob(raw).sum(-1), atol=1e-5)
    assert torch.allclose(entropy, normal.entropy().sum(-1), atol=1e-5)


def test_action_map_net_reads_the_robot_cell():
    net = ActionMapNet(spaces.Box(0.0, 1.0, (3, 7, 7)), out_dim=5)
    obs = torch.zeros(2, 3, 7, 7)
    obs[0, 2, 1, 1] = obs[1, 2, 3, 5] = 1
    maps = net.convs(obs)
    assert torch.equal(net(obs), torch.stack([maps[0, :, 1, 1], maps[1, :, 3, 5]]))


def test_value_propagation_gives_discounted_distances_to_the_nearest_chest():
    """Reward 1 on chests and 0 elsewhere, spread γ on free cells and 0 on walls: v = γ^(BFS distance)."""
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=3)
    obs, _ = envs.reset(seed=4)
    net = ValuePropagationNet(envs.single_observation_space, out_dim=5, hidden_sizes=(8,), iterations=15 * 15)
    walls, chests = obs[:, 0], obs[:, 1]
    gamma = 0.9
    value = net.propagate(chests, gamma * (1 - walls))
    for i in range(3):
        nearest = np.full(walls.shape[1:], np.iinfo(np.int64).max)
        for cell in torch.nonzero(chests[i]).tolist():
            dist = bfs_distances(walls[i].numpy() > 0.5, tuple(cell))
            nearest = np.where(dist >= 0, np.minimum(nearest, dist), nearest)
        free = walls[i].numpy() < 0.5
        expected = torch.as_tensor(gamma ** nearest[free].astype(np.float64), dtype=torch.float32)
        assert torch.allclose(value[i][torch.as_tensor(free)], expected, rtol=1e-5)
        assert torch.all(value[i][walls[i] > 0.5] == 0)


@torch.no_grad()
def test_value_propagation_net_reads_the_cells_around_the_robot():
    space = spaces.Box(0.0, 1.0, (3, 7, 7))
    actor, critic = (build_network("value_prop", space, out, (8,)) for out in (5, 1))
    obs = torch.zeros(2, 3, 7, 7)
    obs[:, 0, 2, :] = 1  # a wall row
    obs[0, 1, 5, 5] = obs[1, 1, 0, 3] = 1
    obs[0, 2, 1, 1] = obs[1, 2, 3, 0] = 1  # robot 1 sits on the left edge: outside counts as wall
    free = 1 - obs[:, 0]
    reward, spread = (torch.sigmoid(actor.embed(obs)) * free[:, None]).unbind(1)
    log_v = actor.propagate(reward, spread).clamp_min(1e-6).log()
    for i, (row, col) in enumerate([(1, 1), (3, 0)]):
        cells = [(row + dr, col + dc) for dr, dc in MOVES]
        features = torch.tensor([[log_v[i, r, c] - log_v[i, row, col], reward[i, r, c], free[i, r, c]]
                                 if 0 <= c < 7 else [np.log(1e-6) - log_v[i, row, col], 0.0, 0.0]
                                 for r, c in cells])
        assert torch.allclose(actor(obs)[i], actor.head(features).squeeze(-1), atol=1e-5)
    assert critic(obs).shape == (2, 1)
    with pytest.raises(ValueError, match="value_prop.*image"):
        build_network("value_prop", spaces.Box(0.0, 1.0, (4,)), 5, (8,))


def make_envs(name):
    if name in ("tabular-pg", "q-learning", "dqn"):
        return gym.make_vec("physrl/TreasureMaze-v0", num_envs=4, size=7, n_chests=3, max_steps=10,
                            fixed_maze=True, maze_seed=2, obs_mode="position", delete_chests=False)
    return gym.make_vec("physrl/TreasureMaze-v0", num_envs=4, size=7, n_chests=3, max_steps=10)


@pytest.mark.parametrize("name", sorted(set(AGENTS) - {"qec-student"}))  # the student: tests/test_student.py
def test_resume_is_exact(name):
    """Two iterations, save, two more == load into a fresh agent on a fresh env, two more."""
    small = {"dqn": dict(learning_starts=10, batch_size=8)}.get(name, {})
    agent = AGENTS[name](make_envs(name), seed=3, **small)
    for _ in range(2):
        agent.learn_iteration()
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    expected = [agent.learn_iteration() for _ in range(2)]
    resumed = AGENTS[name](make_envs(name), seed=99, **small)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert [resumed.learn_iteration() for _ in range(2)] == expected
    assert resumed.global_step == agent.global_step
    for key, value in agent.state_dict().items():
        if key in ("model", "q_network"):
            for name_, tensor in value.items():
                assert torch.equal(tensor, resumed.state_dict()[key][name_])
    obs = resumed.rollout.obs
    assert torch.equal(agent.act(obs), resumed.act(obs))


def test_hyperparameters_are_resolved_and_json_serialisable():
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, n_chests=3, max_steps=10)
    agent = DeepPolicyGradient(envs, hidden_sizes=(32,))
    assert agent.hyperparameters["num_steps"] == 11 and agent.hyperparameters["hidden_sizes"] == [32]
    json.dumps(agent.hyperparameters)


def test_lr_anneal_steps_decays_the_learning_rate_linearly_to_zero():
    envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=4, n_levels=12, alpha_max=1.0, max_steps=2,
                        snap_phases=2)
    agent = DeepPolicyGradient(envs, learning_rate=1e-3, num_steps=2, num_minibatches=1, lr_anneal_steps=32)
    rates = []
    for _ in range(5):
        agent.learn_iteration()   # 8 env steps each; the rate is set from the steps done before it
        rates.append(agent.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3, 0.0])


def test_log_std_final_caps_the_gaussian_log_std_on_a_schedule_and_resume_restores_it():
    """The learned log-std is clamped to a ceiling going linearly from log_std_init to log_std_final;
    a dimension already below it stays as learned; a resumed agent continues exactly."""
    def make_agent(seed: int, **schedule: int) -> DeepPolicyGradient:
        envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=4, n_levels=12, alpha_max=1.0, max_steps=2,
                            snap_phases=2)
        # a large entropy bonus pushes every log-std up, against the ceiling
        return DeepPolicyGradient(envs, seed=seed, num_steps=2, num_minibatches=1, update_epochs=2, ent_coef=1.0,
                                  log_std_init=-1.0, log_std_final=-3.0, **schedule)

    with pytest.raises(ValueError, match="log_std_anneal_steps or lr_anneal_steps"):
        make_agent(0)
    assert make_agent(0, lr_anneal_steps=50).hyperparameters["log_std_anneal_steps"] == 50
    agent = make_agent(0, lr_anneal_steps=64, log_std_anneal_steps=32)
    with torch.no_grad():
        agent.head.log_std[0] = -5.0
    log_stds = []
    for _ in range(3):
        agent.learn_iteration()   # 8 env steps each; the ceiling is set from the steps done before it
        log_stds.append(agent.head.log_std.clone())
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    expected = [agent.learn_iteration() for _ in range(3)]
    log_stds.append(agent.head.log_std.clone())
    resumed = make_agent(7, lr_anneal_steps=64, log_std_anneal_steps=32)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(resumed.head.log_std, log_stds[2])
    assert [resumed.learn_iteration() for _ in range(3)] == expected
    assert torch.equal(resumed.head.log_std, agent.head.log_std)
    # ceilings after 0, 8, 16 and (past the 32 steps of the schedule: held at the end) 40 env steps
    for log_std, ceiling in zip(log_stds, [-1.0, -1.5, -2.0, -3.0]):
        assert log_std[1:].tolist() == pytest.approx([ceiling] * 3, abs=1e-6)   # 2 + 2 SNAP phases
        assert -5.0 <= log_std[0] < -4.5


def test_ent_coef_final_moves_the_entropy_coefficient_on_a_schedule():
    """ent_coef goes linearly to ent_coef_final over ent_anneal_steps env steps (default lr_anneal_steps),
    is logged while it moves, and a larger coefficient keeps the policy broader."""
    def make_agent(**schedule) -> DeepPolicyGradient:
        envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, n_chests=3, max_steps=10)
        return DeepPolicyGradient(envs, seed=0, num_steps=4, **schedule)

    assert make_agent(ent_coef=0.1, ent_coef_final=0.0, lr_anneal_steps=40).hyperparameters["ent_anneal_steps"] == 40
    agent = make_agent(ent_coef=0.1, ent_coef_final=0.02, ent_anneal_steps=16)
    logged = []
    for _ in range(4):
        logged.append(agent.learn_iteration()["charts/ent_coef"])   # set from the 8 env steps done before each
    assert logged == pytest.approx([0.1, 0.06, 0.02, 0.02])
    assert "charts/ent_coef" not in make_agent(ent_coef=0.1).learn_iteration()
    with pytest.raises(ValueError, match="ent_anneal_steps or lr_anneal_steps"):
        make_agent(ent_coef_final=0.0)


def test_simhash_counts_pay_one_over_the_square_root_of_the_visits():
    """β/√n with n the visits of the observation's SimHash code, this batch's included: a repeated observation
    pays β, β/√2, β/√3; a tiny change keeps the code, a distant observation gets its own."""
    counts = SimHashCounts(dim=6, bits=12, seed=0, device=torch.device("cpu"))
    state = torch.tensor([[0.5, -0.3, 0.8, 0.0, 0.1, -0.9]])
    assert counts.bonus(state, 0.3).tolist() == pytest.approx([0.3])
    assert counts.bonus(torch.cat([state, state + 1e-6]), 0.3).tolist() == pytest.approx([0.3 / 3**0.5] * 2)
    assert counts.bonus(-state, 0.3).tolist() == pytest.approx([0.3])  # the opposite signs: every bit flips
    assert int(counts.counts.sum()) == 4 and int((counts.counts > 0).sum()) == 2
    again = SimHashCounts(dim=6, bits=12, seed=0, device=torch.device("cpu"))
    again.load_state_dict(counts.state_dict())
    assert again.bonus(state, 1.0).tolist() == pytest.approx([0.5])
    with pytest.raises(ValueError, match="novelty counts of shape"):
        SimHashCounts(dim=6, bits=8, seed=0, device=torch.device("cpu")).load_state_dict(counts.state_dict())


def test_novelty_bonus_enters_the_update_not_the_logged_returns_and_resumes_exactly():
    """deep-pg with novelty_coef: the bonus is logged and changes the update, the episodes' returns are the
    env's (the same as without a bonus, where the policy is the same before its first update) and the counts
    resume exactly. A Discrete observation space is refused."""
    def make(**options) -> DeepPolicyGradient:
        envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=4, max_steps=8)
        return DeepPolicyGradient(envs, seed=1, num_steps=8, **options)

    plain, curious = make(), make(novelty_coef=0.5, novelty_bits=8)
    first_plain, first_curious = plain.learn_iteration(), curious.learn_iteration()
    assert first_curious["episodic_return"] == first_plain["episodic_return"]
    assert 0 < first_curious["charts/novelty_bonus"] <= 0.5 and first_curious["charts/novelty_codes_seen"] >= 1
    assert "charts/novelty_bonus" not in first_plain
    assert int(curious.novelty.counts.sum()) == 32
    assert any(not torch.equal(a, b) for a, b in zip(plain.model.parameters(), curious.model.parameters()))
    saved = io.BytesIO()
    torch.save(curious.state_dict(), saved)
    expected = curious.learn_iteration()
    resumed = make(novelty_coef=0.5, novelty_bits=8)
    saved.seek(0)
    resumed.load_state_dict(torch.load(saved, weights_only=True))
    assert resumed.learn_iteration() == expected and torch.equal(resumed.novelty.counts, curious.novelty.counts)
    with pytest.raises(ValueError, match="novelty_coef > 0 needs a Box observation space"):
        DeepPolicyGradient(gym.make_vec("physrl/RandomWalker-v0", num_envs=2), novelty_coef=0.1)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(learning_rate=0.0), ValueError, "learning_rate"),
    (dict(learning_rate="fast"), TypeError, "learning_rate"),
    (dict(gae_lambda=1.5), ValueError, "gae_lambda"),
    (dict(network="transformer"), ValueError, "network"),
    (dict(value_baseline=False), ValueError, "gae_lambda"),
    (dict(num_minibatches=10_000), ValueError, "num_minibatches"),
    (dict(hidden_sizes=[64, 0]), ValueError, "hidden_sizes"),
    (dict(clip_coef=-0.1), ValueError, "clip_coef"),
    (dict(num_steps=0), ValueError, "num_steps"),
    (dict(lr_anneal_steps=0), ValueError, "lr_anneal_steps"),
    (dict(log_std_final="small"), TypeError, "log_std_final"),
    (dict(log_std_final=0.0, lr_anneal_steps=100), ValueError, "log_std_final"),   # above log_std_init
    (dict(log_std_final=-3.0, lr_anneal_steps=100), ValueError, "log_std_final"),   # Discrete actions
    (dict(log_std_anneal_steps=100), ValueError, "log_std_anneal_steps"),
    (dict(log_std_final=-3.0, log_std_anneal_steps=0), ValueError, "log_std_anneal_steps"),
    (dict(ent_coef_final=-0.1, lr_anneal_steps=100), ValueError, "ent_coef_final"),
    (dict(ent_anneal_steps=100), ValueError, "ent_anneal_steps"),
    (dict(ent_coef_final=0.0, ent_anneal_steps=0), ValueError, "ent_anneal_steps"),
    (dict(novelty_coef=-0.1), ValueError, "novelty_coef"),
    (dict(novelty_bits=25), ValueError, "novelty_bits"),
])
def test_bad_hyperparameters_name_the_argument(kwargs, error, word):
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, n_chests=3, max_steps=10)
    with pytest.raises(error, match=word):
        DeepPolicyGradient(envs, **kwargs)


def test_tabular_agents_refuse_image_observations_and_bad_choices():
    images = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, n_chests=3)
    with pytest.raises(TypeError, match="Discrete observation"):
        TabularPolicyGradient(images)
    with pytest.raises(TypeError, match="Discrete observation"):
        AGENTS["q-learning"](images)
    walker = gym.make_vec("physrl/RandomWalker-v0", num_envs=2)
    with pytest.raises(ValueError, match="baseline"):
        TabularPolicyGradient(walker, baseline="median")
    with pytest.raises(ValueError, match="epsilon_end"):
        AGENTS["q-learning"](walker, epsilon_end=2.0)


def simulate(layout: MazeLayout, actions: list[int], max_steps: int, delete_chests: bool) -> float:
    chests, here, total = set(layout.chests), tuple(layout.start), 0
    for action in (actions + [0] * max_steps)[:max_steps]:
        step = (here[0] + MOVES[action][0], here[1] + MOVES[action][1])
        here = here if layout.walls[step] else step
        if here in chests:
            total += 1
            if delete_chests:
                chests.discard(here)
    return total


@pytest.mark.parametrize("delete_chests", [True, False])
def test_optimal_plan_achieves_the_optimal_return(delete_chests):
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=30, size=9, n_chests=6, max_steps=25)
    envs.reset(seed=5)
    for i in range(30):
        layout = envs.core.layout(i)
        value, actions = optimal_plan(layout, 25, delete_chests)
        assert value == optimal_return(layout, 25, delete_chests)
        assert len(actions) <= 25 and simulate(layout, actions, 25, delete_chests) == value


def test_maze_baselines_on_the_challenge():
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=20)
    envs.reset(seed=7)
    optimum = np.mean([optimal_return(envs.core.layout(i), 40) for i in range(20)])
    optimal = play_episodes(envs, MazeOptimalPolicy(40), seed=7).mean().item()
    greedy = play_episodes(envs, maze_greedy_policy, seed=7).mean().item()
    rand = play_episodes(envs, random_policy(envs.single_action_space), seed=7).mean().item()
    assert optimal == pytest.approx(optimum)
    assert rand < greedy <= optimal


def test_walker_optimum_policies():
    walker = gym.make_vec("physrl/RandomWalker-v0", num_envs=8)
    assert play_episodes(walker, random_walker_optimum, seed=0).tolist() == [20.0] * 8
    target = gym.make_vec("physrl/WalkerTarget-v0", num_envs=4000)
    mean = play_episodes(target, walker_target_optimum_policy, seed=0).mean().item()
    assert abs(mean - walker_target_optimum()) < 0.3


def test_play_episodes_plays_the_first_episode_of_seed_plus_i_on_sub_env_i():
    returns = play_episodes(gym.make_vec("physrl/WalkerTarget-v0", num_envs=6), walker_target_optimum_policy, seed=40)
    assert returns.dtype == torch.float64 and len(set(returns.tolist())) > 1   # the hidden targets differ
    for i in range(6):
        env = gym.make("physrl/WalkerTarget-v0")
        obs, _ = env.reset(seed=40 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(1 - obs))
            total, done = total + reward, terminated or truncated
        assert returns[i].item() == total


def test_action_mask_keeps_the_policy_off_masked_actions_in_acting_and_updates():
    """DeepPolicyGradient(action_mask=True) on the QEC pairs view never samples a revealing measurement, so no
    episode ends early; its greedy and sampled actions respect the mask; bad uses are refused by name."""
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=16, obs_mode="pairs", max_steps=20)
    agent = DeepPolicyGradient(envs, seed=0, num_steps=21, action_mask=True, ent_coef=0.5)
    for _ in range(3):
        stats = agent.learn_iteration()
        assert stats["episodic_length"] == [20] * 16   # truncated, never terminated by a measurement
    obs, _ = envs.reset(seed=1)
    for _ in range(20):
        mask = envs.core.action_mask(obs)
        for deterministic in (True, False):
            actions = agent.act(obs, deterministic=deterministic)
            assert bool(mask[torch.arange(16), actions].all())
        obs, *_ = envs.step(agent.act(obs, deterministic=False))
    with pytest.raises(ValueError, match="action_mask"):
        DeepPolicyGradient(gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=7, n_chests=3), action_mask=True)
    with pytest.raises(ValueError, match="action_mask"):
        DeepPolicyGradient(gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, obs_mode="measurements"),
                           action_mask=True)
    with pytest.raises(TypeError, match="action_mask"):
        DeepPolicyGradient(envs, action_mask="yes")


def test_average_start_makes_the_greedy_policy_the_mean_of_the_actors_and_resume_restores_it():
    """From average_start on, act(deterministic=True) uses the running mean of the actor's parameters
    over the iterations (Polyak–Ruppert); sampling keeps the current actor; a checkpoint keeps the mean."""
    def make_agent(seed: int) -> DeepPolicyGradient:
        envs = gym.make_vec("physrl/OscillatorStatePrep-v0", num_envs=4, n_levels=20, alpha_max=1.0, max_steps=2,
                            snap_phases=2)
        return DeepPolicyGradient(envs, seed=seed, num_steps=2, num_minibatches=1, update_epochs=2, hidden_sizes=(),
                                  learning_rate=0.05, average_start=16)

    with pytest.raises(ValueError, match="average_start"):
        make_agent(0).__class__(make_agent(0).envs, average_start=-1)
    agent = make_agent(0)
    obs = torch.eye(2)
    snapshots = []
    for _ in range(5):
        agent.learn_iteration()   # 8 env steps each: the average begins with the second iteration (16 steps done)
        snapshots.append([p.detach().clone() for p in agent.actor.parameters()])
    expected = [torch.stack(ps[1:]).mean(0) for ps in zip(*snapshots)]
    for mean, value in zip(agent.average_actor.parameters(), expected):
        torch.testing.assert_close(mean, value)
    assert agent.averaged == 4
    torch.testing.assert_close(agent.act(obs), agent.head.mode(agent.average_actor(obs)))
    assert not torch.allclose(agent.act(obs), agent.head.mode(agent.actor(obs)))
    resumed = make_agent(7)
    resumed.load_state_dict(agent.state_dict())
    torch.testing.assert_close(resumed.act(obs), agent.act(obs))
    assert resumed.averaged == 4

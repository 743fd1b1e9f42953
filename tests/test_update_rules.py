"""Every update rule of the agents on small hand-computed cases.

Each test pins the numbers of one rule (PPO's clipped surrogate, value loss and entropy term, GAE,
reward-to-go, tabular REINFORCE and its baselines, the Q-learning and DQN targets, the target-network
sync, the student's distillation loss, gradient averaging across ranks), so that a one-line slip in
the rule changes a number here instead of only slowing a learning test down.
"""

import math

import gymnasium as gym
import pytest
import torch

import physrl.agents.distributed as distributed
from physrl.agents import DQN, DeepPolicyGradient, QECStudent, QLearning, TabularPolicyGradient
from physrl.agents.deep_pg import whole_episode_returns
from physrl.agents.dqn import ReplayBuffer
from physrl.agents.q_learning import epsilon_greedy
from physrl.agents.schedules import linear_schedule
from physrl.agents.rollout import Batch, Rollout, discounted_returns, gae
from physrl.agents.reference.walker import walker_target_optimum

WALKER = "physrl/RandomWalker-v0"


def make_batch(obs, actions, rewards, terminated, dones, valid, last_obs, **extras) -> Batch:
    """A hand-written batch with leading dims (T, B)."""
    rewards = torch.tensor(rewards, dtype=torch.float32)
    zeros = torch.zeros_like(rewards)
    return Batch(torch.tensor(obs), torch.tensor(actions), rewards, torch.tensor(terminated), torch.tensor(dones),
                 torch.tensor(valid), extras, torch.tensor(last_obs), zeros, zeros.long())


class FixedRollout:
    """Stands in for an agent's Rollout: every collect() returns the same hand-written batch."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def collect(self, num_steps, policy):
        self.num_steps = num_steps
        self.actions = policy(self.batch.obs[0])[0]  # the behaviour policy runs on the first observations
        return self.batch


def set_constant_output(network: torch.nn.Module, values) -> None:
    """Make an MLP output ``values`` for every observation: zero weights, the last bias = values."""
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        network.body[-1].bias.copy_(torch.tensor(values))


# ---------------------------------------------------------------- returns and advantages


def test_reward_to_go_cuts_at_episode_ends_and_bootstraps_after_the_last_step():
    rewards = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    dones = torch.tensor([[False], [False], [True], [False]])
    returns = discounted_returns(rewards, dones, 0.5, torch.tensor([2.0]))
    # t=3: 1 + 0.5·2 = 2; t=2 ends: 1; t=1: 1 + 0.5·1 = 1.5; t=0: 1 + 0.5·1.5 = 1.75
    assert returns[:, 0].tolist() == [1.75, 1.5, 1.0, 2.0]


def test_whole_episode_returns_of_a_one_step_batch():
    batch = make_batch(obs=[[0, 0]], actions=[[1, 1]], rewards=[[1.0, 2.0]], terminated=[[False, False]],
                       dones=[[True, False]], valid=[[True, True]], last_obs=[1, 1])
    batch.episode_returns = torch.tensor([[5.0, 7.0]])
    assert whole_episode_returns(batch).tolist() == [[5.0, 0.0]]


def test_walker_target_optimum_by_hand_with_targets_out_of_reach():
    # T = 3: g = 0 pays 3, g = 1 pays 3, g = 2 pays 2, g = 3 pays 1, g ≥ 4 is never reached
    assert walker_target_optimum(max_steps=3, target_range=10) == pytest.approx(9 / 10)


def test_gae_by_hand_with_a_termination_and_a_truncation():
    """Column 0 ends (terminated) at t=1, column 1 is truncated at t=2: both cut the advantage there."""
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    values = torch.full((4, 2), 0.5)
    dones = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    advantages = gae(rewards, values, dones, torch.tensor([1.0, 3.0]), gamma=0.5, lam=0.5)
    # column 0: δ3 = 4 + 0.5·1 − 0.5 = 4; A2 = (3 + 0.25 − 0.5) + 0.25·4 = 3.75; A1 = 2 − 0.5 = 1.5;
    #           A0 = (1 + 0.25 − 0.5) + 0.25·1.5 = 1.125
    assert advantages[:, 0].tolist() == [1.125, 1.5, 3.75, 4.0]
    # column 1: A3 = 1 + 1.5 − 0.5 = 2; A2 = 1 − 0.5 = 0.5 (cut); A1 = 0.75 + 0.25·0.5 = 0.875;
    #           A0 = 0.75 + 0.25·0.875 = 0.96875
    assert advantages[:, 1].tolist() == [0.96875, 0.875, 0.5, 2.0]


def critic_agent(**kwargs) -> DeepPolicyGradient:
    envs = gym.make_vec(WALKER, num_envs=1, max_steps=3)
    agent = DeepPolicyGradient(envs, seed=0, **kwargs)
    set_constant_output(agent.actor, [0.0, math.log(3.0)])  # π(0) = 1/4, π(1) = 3/4
    if agent.critic is not None:
        set_constant_output(agent.critic, [0.5])  # V = 0.5 everywhere
    return agent


def test_deep_pg_advantages_bootstrap_from_the_critic_and_mask_the_autoreset_step():
    agent = critic_agent(gamma=0.5, gae_lambda=0.5)
    batch = make_batch(obs=[[0], [1], [3]], actions=[[1], [1], [0]], rewards=[[1.0], [2.0], [0.0]],
                       terminated=[[False], [True], [False]], dones=[[False], [True], [False]],
                       valid=[[True], [True], [False]], last_obs=[0], value=torch.full((3, 1), 0.5))
    advantages, targets, mask = agent.advantages(batch)
    # t=2 (autoreset step): 0 + 0.5·0.5 − 0.5 = −0.25; t=1 ends: 2 − 0.5 = 1.5; t=0: 0.75 + 0.25·1.5 = 1.125
    assert advantages[:, 0].tolist() == [1.125, 1.5, -0.25]
    assert targets[:, 0].tolist() == [1.625, 2.0, 0.25]
    assert mask[:, 0].tolist() == [True, True, False]


def test_reinforce_without_critic_uses_reward_to_go_of_complete_episodes_only():
    agent = critic_agent(value_baseline=False, gae_lambda=1.0, gamma=1.0)
    batch = make_batch(obs=[[0], [1], [3], [0]], actions=[[1], [1], [0], [1]], rewards=[[1.0], [2.0], [0.0], [5.0]],
                       terminated=[[False], [False], [False], [False]], dones=[[False], [True], [False], [False]],
                       valid=[[True], [True], [False], [True]], last_obs=[1])
    returns, targets, mask = agent.advantages(batch)
    assert returns[:2, 0].tolist() == [3.0, 2.0]
    assert mask[:, 0].tolist() == [True, True, False, False]  # t=3's episode has not ended: left out


# ---------------------------------------------------------------- PPO losses


def ppo_inputs(ratios, advantages, mask):
    """Observations, actions and old log-probs that give the chosen ratios under π = (1/4, 3/4)."""
    actions = torch.tensor([1, 1, 0, 0, 1])[:len(ratios)]
    log_p = torch.where(actions == 1, math.log(0.75), math.log(0.25))
    old_log_p = log_p - torch.log(torch.tensor(ratios))
    obs = torch.zeros(len(ratios), dtype=torch.int64)
    return obs, actions, old_log_p, torch.tensor(advantages), torch.tensor(mask)


ENTROPY = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))


def test_ppo_clipped_surrogate_value_loss_and_entropy_by_hand():
    agent = critic_agent(clip_coef=0.2, normalize_advantages=False, vf_coef=0.5)
    obs, actions, old_log_p, adv, mask = ppo_inputs([0.5, 1.5, 1.5, 0.5, 3.0], [1.0, 1.0, -1.0, -1.0, 100.0],
                                                    [True, True, True, True, False])
    targets = 0.5 + torch.tensor([1.0, -2.0, 0.0, 3.0, 99.0])
    losses = agent._losses(obs, actions, old_log_p, adv, targets, mask, ent_coef=0.1)
    # per sample min(r·A, clip(r, 0.8, 1.2)·A): 0.5, 1.2, −1.5, −0.8 (the fifth is masked out)
    assert losses["policy_loss"].item() == pytest.approx(-(0.5 + 1.2 - 1.5 - 0.8) / 4, abs=1e-6)
    assert losses["value_loss"].item() == pytest.approx(0.5 * (1 + 4 + 0 + 9) / 4, abs=1e-6)
    assert losses["entropy"].item() == pytest.approx(ENTROPY, abs=1e-6)
    kl = sum((r - 1) - math.log(r) for r in (0.5, 1.5, 1.5, 0.5)) / 4
    assert losses["approx_kl"].item() == pytest.approx(kl, abs=1e-6)
    assert losses["loss"].item() == pytest.approx(0.15 - 0.1 * ENTROPY + 0.5 * 1.75, abs=1e-6)


def test_ppo_gradient_pushes_up_the_probability_of_a_good_action_inside_the_clip_range_only():
    agent = critic_agent(clip_coef=0.2, normalize_advantages=False)
    for ratio, moves in ((1.0, True), (1.5, False)):
        obs, actions, old_log_p, adv, mask = ppo_inputs([ratio], [1.0], [True])
        agent.actor.zero_grad()
        agent._losses(obs, actions, old_log_p, adv, torch.zeros(1), mask, ent_coef=0.0)["policy_loss"].backward()
        gradient = agent.actor.body[-1].bias.grad
        # d(−r·A)/d logit₁ = −r·(1 − π₁) = −ratio/4 inside the range; 0 once r·A is clipped
        assert gradient[1].item() == pytest.approx(-ratio / 4 if moves else 0.0, abs=1e-6)


def test_ppo_diagnostics_clip_fraction_and_first_order_kl():
    agent = critic_agent(clip_coef=0.2, normalize_advantages=False)
    obs, actions, old_log_p, adv, mask = ppo_inputs([1.0, 1.5, 0.9, 3.0], [1.0, 1.0, 1.0, 1.0], [True, True, True, False])
    losses = agent._losses(obs, actions, old_log_p, adv, torch.zeros(4), mask, ent_coef=0.0)
    assert losses["clipfrac"].item() == pytest.approx(1 / 3)  # only r = 1.5 lies outside [0.8, 1.2]
    assert losses["old_approx_kl"].item() == pytest.approx(-(math.log(1.5) + math.log(0.9)) / 3, abs=1e-6)


def test_plain_policy_gradient_surrogate_without_clipping():
    agent = critic_agent(clip_coef=None, normalize_advantages=False)
    obs, actions, old_log_p, adv, mask = ppo_inputs([0.5, 1.5, 1.5, 2.0], [1.0, 1.0, -1.0, 1.0],
                                                    [True, True, True, True])
    losses = agent._losses(obs, actions, old_log_p, adv, torch.zeros(4), mask, ent_coef=0.0)
    assert losses["policy_loss"].item() == pytest.approx(-(0.5 + 1.5 - 1.5 + 2.0) / 4, abs=1e-6)


def test_advantage_normalisation_uses_only_the_masked_samples():
    agent = critic_agent(clip_coef=0.2, normalize_advantages=True)
    obs, actions, old_log_p, adv, mask = ppo_inputs([1.5, 1.5, 1.0], [1.0, 5.0, 100.0], [True, True, False])
    losses = agent._losses(obs, actions, old_log_p, adv, torch.zeros(3), mask, ent_coef=0.0)
    # mean 3, standard deviation 2: normalised advantages −1 and +1: min(−1.5, −1.2) = −1.5 and min(1.5, 1.2) = 1.2
    assert losses["policy_loss"].item() == pytest.approx(-(-1.5 + 1.2) / 2, abs=1e-5)


# ---------------------------------------------------------------- tabular REINFORCE


def two_episode_batch() -> Batch:
    """Env 0: actions 1, 0 with rewards 2, −1; env 1: actions 1, 1 with rewards 1, 1; then the autoreset step."""
    return make_batch(obs=[[0, 0], [1, 1], [2, 2]], actions=[[1, 1], [0, 1], [1, 1]],
                      rewards=[[2.0, 1.0], [-1.0, 1.0], [0.0, 0.0]],
                      terminated=[[False, False], [False, False], [False, False]],
                      dones=[[False, False], [True, True], [False, False]],
                      valid=[[True, True], [True, True], [False, False]], last_obs=[0, 0])


@pytest.mark.parametrize("baseline, theta", [
    # reward-to-go G: env 0 (1, −1), env 1 (2, 1); ∇θ ln π = +1/2 for action 1, −1/2 for action 0 at θ = 0
    ("none", 0.1 * (1 * 0.5 + (-1) * (-0.5) + 2 * 0.5 + 1 * 0.5) / 2),
    # b = mean G = 0.75
    ("batch_mean", 0.1 * (0.25 * 0.5 + (-1.75) * (-0.5) + 1.25 * 0.5 + 0.25 * 0.5) / 2),
    # the running baseline starts at 0, so the first step is the plain one
    ("running_mean", 0.1 * (1 * 0.5 + (-1) * (-0.5) + 2 * 0.5 + 1 * 0.5) / 2),
])
def test_tabular_reinforce_step_by_hand(baseline, theta):
    envs = gym.make_vec(WALKER, num_envs=2, max_steps=2)
    agent = TabularPolicyGradient(envs, learning_rate=0.1, baseline=baseline, baseline_rate=0.1,
                                  ignore_observation=True)
    agent.rollout = FixedRollout(two_episode_batch())
    stats = agent.learn_iteration()
    assert agent.theta.item() == pytest.approx(theta, abs=1e-6)
    # logged loss −Σ (G − b) ln π(a) / episodes at θ = 0 (ln π = −ln 2): Σ (G − b) is 3, or 0 with b = mean G
    advantage_sum = {"none": 3.0, "batch_mean": 0.0, "running_mean": 3.0}[baseline]
    assert stats["losses/policy_loss"] == pytest.approx(advantage_sum * math.log(2) / 2, abs=1e-6)
    if baseline == "running_mean":  # b ← 0.9·0 + 0.1·(mean G over the visits of the one state)
        assert agent.baseline_table.tolist() == pytest.approx([0.1 * 0.75])


def test_tabular_running_baseline_is_used_and_updated_only_where_visited():
    envs = gym.make_vec(WALKER, num_envs=1, max_steps=2)
    agent = TabularPolicyGradient(envs, learning_rate=0.1, baseline="running_mean", baseline_rate=0.5)
    agent.baseline_table = torch.tensor([0.75, 0.5, 0.25])
    agent.rollout = FixedRollout(make_batch(obs=[[0], [2]], actions=[[1], [0]], rewards=[[3.0], [0.0]],
                                            terminated=[[False], [False]], dones=[[True], [False]],
                                            valid=[[True], [False]], last_obs=[0]))
    agent.learn_iteration()
    # one episode, one step from state 0 with G = 3 and b = 0.75: Δθ = 0.1·(3 − 0.75)·(1 − π)
    assert agent.theta[:, 0].tolist() == pytest.approx([0.1 * 2.25 * 0.5, 0.0, 0.0])
    # state 0 visited once: b ← 0.5·0.75 + 0.5·3; states 1 and 2 (the autoreset step) keep theirs
    assert agent.baseline_table.tolist() == pytest.approx([1.875, 0.5, 0.25])


def test_tabular_autoreset_steps_never_contribute():
    """A batch whose autoreset step (t=2) is followed by a one-step episode: that step is complete but invalid."""
    envs = gym.make_vec(WALKER, num_envs=1, max_steps=2)
    agent = TabularPolicyGradient(envs, learning_rate=0.1, ignore_observation=True)
    agent.rollout = FixedRollout(make_batch(obs=[[0], [1], [2], [0]], actions=[[1], [1], [1], [0]],
                                            rewards=[[1.0], [1.0], [5.0], [1.0]],
                                            terminated=[[False], [False], [False], [False]],
                                            dones=[[False], [True], [False], [True]],
                                            valid=[[True], [True], [False], [True]], last_obs=[1]))
    agent.learn_iteration()
    # G = 2, 1 (actions 1), and 1 for the one-step episode's action 0; two episodes
    assert agent.theta.item() == pytest.approx(0.1 * (2 * 0.5 + 1 * 0.5 + 1 * (-0.5)) / 2)


def test_tabular_and_q_learning_behaviour_policies_explore_and_count_every_rank():
    envs = gym.make_vec(WALKER, num_envs=4, max_steps=5)
    for agent in (TabularPolicyGradient(envs), QLearning(envs, epsilon_start=1.0)):
        batches = []
        collect = agent.rollout.collect
        agent.rollout.collect = lambda n, policy: batches.append(collect(n, policy)) or batches[-1]
        agent.world_size = 2  # as if a second rank stepped as many sub-envs
        agent.learn_iteration()
        agent.learn_iteration()
        actions = torch.cat([b.actions.flatten() for b in batches])
        assert set(actions.tolist()) == {0, 1}  # π = 1/2 (θ = 0) and ε = 1 sample both actions
        assert agent.global_step == 2 * 2 * batches[0].rewards.numel()


def test_tabular_policy_can_ignore_an_image_observation():
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=5, n_chests=2, max_steps=4)
    agent = TabularPolicyGradient(envs, ignore_observation=True)
    agent.learn_iteration()
    assert agent.theta.shape == (1, 4) and agent.theta.abs().sum() > 0


def test_tabular_running_baseline_is_kept_per_state():
    envs = gym.make_vec(WALKER, num_envs=2, max_steps=2)
    agent = TabularPolicyGradient(envs, learning_rate=0.1, baseline="running_mean", baseline_rate=0.5)
    agent.rollout = FixedRollout(two_episode_batch())
    agent.learn_iteration()
    # state 0: G = 1, 2 -> mean 1.5; state 1: G = −1, 1 -> mean 0; state 2 (autoreset step only) untouched
    assert agent.baseline_table.tolist() == pytest.approx([0.75, 0.0, 0.0])
    # and θ[s] moved by each state's own steps: state 0 (G 1 and 2, both action 1), state 1 (−1 for action 0, 1 for 1)
    assert agent.theta[:, 0].tolist() == pytest.approx([0.1 * (0.5 + 1.0) / 2, 0.1 * (0.5 + 0.5) / 2, 0.0])


# ---------------------------------------------------------------- Q-learning


def q_learning_agent(**kwargs) -> QLearning:
    envs = gym.make_vec(WALKER, num_envs=1, max_steps=2)  # observations 0, 1, 2
    agent = QLearning(envs, learning_rate=0.5, gamma=0.5, **kwargs)
    agent.q = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 4.0]])
    return agent


@pytest.mark.parametrize("terminated, q_11", [(True, 2 + 0.5 * (1 - 2)), (False, 2 + 0.5 * (1 + 0.5 * 4 - 2))])
def test_q_learning_td_target_reads_the_next_state_and_stops_at_terminations(terminated, q_11):
    agent = q_learning_agent()
    agent.rollout = FixedRollout(make_batch(
        obs=[[0], [1], [2]], actions=[[1], [1], [0]], rewards=[[1.0], [1.0], [0.0]],
        terminated=[[False], [terminated], [False]], dones=[[False], [True], [False]],
        valid=[[True], [True], [False]], last_obs=[0]))
    stats = agent.learn_iteration()
    # t=0: target 1 + 0.5·max Q(1,·) = 2 -> Q(0,1) = 1 + 0.5·(2 − 1); a truncation bootstraps, a termination does not
    assert agent.q.tolist() == [[0.0, 1.5], [0.0, q_11], [0.0, 4.0]]  # the autoreset step t=2 changes nothing
    assert stats["losses/td_error"] == 1.0  # |TD| = 1 on both valid steps


def test_q_learning_reports_its_mean_td_error_and_epsilon_and_reads_observations_from_their_start():
    envs = gym.make_vec(WALKER, num_envs=2, max_steps=2)
    agent = QLearning(envs, learning_rate=0.5, gamma=0.5, epsilon_start=0.0, epsilon_end=0.0)
    agent.q = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 4.0]])
    agent.obs_start = 10  # a Discrete space starting at 10: observations 10, 11, 12
    agent.rollout = FixedRollout(make_batch(
        obs=[[10, 11]], actions=[[1, 1]], rewards=[[1.0, 0.0]], terminated=[[False, False]],
        dones=[[False, False]], valid=[[True, False]], last_obs=[11, 12]))
    stats = agent.learn_iteration()
    assert agent.rollout.actions.tolist() == [1, 1]  # greedy on rows 0 and 1
    # one valid step: target 1 + 0.5·max Q(1,·) = 2, TD error 1; the invalid sub-env (next state 2) changes nothing
    assert agent.q.tolist() == [[0.0, 1.5], [0.0, 2.0], [0.0, 4.0]]
    assert stats["losses/td_error"] == 1.0 and stats["charts/epsilon"] == 0.0


def test_q_learning_targets_take_each_sub_envs_own_next_state():
    envs = gym.make_vec(WALKER, num_envs=2, max_steps=2)
    agent = QLearning(envs, learning_rate=1.0, gamma=0.5)
    agent.q = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 4.0]])
    agent.rollout = FixedRollout(make_batch(
        obs=[[0, 1]], actions=[[0, 0]], rewards=[[0.0, 0.0]], terminated=[[False, False]],
        dones=[[False, False]], valid=[[True, True]], last_obs=[1, 2]))
    stats = agent.learn_iteration()
    assert agent.q[:, 0].tolist() == [0.5 * 2, 0.5 * 4, 0.0]
    assert stats["losses/td_error"] == pytest.approx((1 + 2) / 2)


def test_q_learning_averages_the_td_errors_of_sub_envs_on_the_same_cell():
    envs = gym.make_vec(WALKER, num_envs=2, max_steps=2)
    agent = QLearning(envs, learning_rate=0.5, gamma=0.5)
    agent.q = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 4.0]])
    agent.rollout = FixedRollout(make_batch(
        obs=[[0, 0]], actions=[[1, 1]], rewards=[[1.0, 3.0]], terminated=[[False, False]], dones=[[False, False]],
        valid=[[True, True]], last_obs=[1, 1]))
    agent.learn_iteration()
    # targets 2 and 4, TD errors 1 and 3, mean 2: Q(0,1) = 1 + 0.5·2
    assert agent.q[0, 1].item() == 2.0


def test_linear_schedule_by_hand():
    assert [linear_schedule(1.0, 0.1, 100, step) for step in (0, 50, 100, 200)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


def test_epsilon_greedy_is_greedy_per_row_at_zero_and_uniform_at_one():
    q = torch.tensor([[0.0, 1.0, 0.5], [2.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    generator = torch.Generator().manual_seed(0)
    assert epsilon_greedy(q, 0.0, generator).tolist() == [1, 0, 2]
    drawn = torch.cat([epsilon_greedy(q, 1.0, generator) for _ in range(100)])
    assert torch.bincount(drawn, minlength=3).min() > 60  # 300 draws of 3 actions, every action appears


# ---------------------------------------------------------------- DQN


def test_replay_buffer_is_circular_and_samples_every_slot():
    buffer = ReplayBuffer(3, (), torch.int64, torch.device("cpu"))
    one = make_batch(obs=[[7]], actions=[[1]], rewards=[[1.0]], terminated=[[True]], dones=[[True]],
                     valid=[[True]], last_obs=[8])
    generator = torch.Generator().manual_seed(0)
    buffer.add(one)
    assert buffer.sample(4, generator)[0].tolist() == [7] * 4  # a buffer of one transition samples it
    buffer.add(make_batch(obs=[[1, 2]], actions=[[0, 0]], rewards=[[0.0, 0.0]], terminated=[[False, True]],
                          dones=[[False, True]], valid=[[True, False]], last_obs=[5, 6]))
    buffer.add(make_batch(obs=[[3]], actions=[[1]], rewards=[[2.0]], terminated=[[False]], dones=[[False]],
                          valid=[[True]], last_obs=[4]))
    # slots 0, 1, 2 got 7, 1, 2; the fourth transition overwrote slot 0
    assert buffer.obs.tolist() == [3, 1, 2] and buffer.next_obs.tolist() == [4, 5, 6]
    assert buffer.dones.tolist() == [False, False, True] and buffer.valid.tolist() == [True, True, False]
    assert (buffer.size, buffer.position) == (3, 1)
    assert set(buffer.sample(60, generator)[0].tolist()) == {1, 2, 3}


# ---------------------------------------------------------------- DQN updates


def dqn_agent(online, target, **kwargs) -> DQN:
    envs = gym.make_vec(WALKER, num_envs=4, max_steps=2)
    agent = DQN(envs, **{"gamma": 0.5, "batch_size": 8, "learning_starts": 0, "hidden_sizes": (4,), **kwargs})
    set_constant_output(agent.q_network, online)
    set_constant_output(agent.target_network, target)
    return agent


def dqn_transitions(terminated: bool, reward: float = 1.0, valid: bool = True) -> Batch:
    """Four identical transitions 0 -(action 1)-> 1, so that any sample of the buffer gives the same loss."""
    return make_batch(obs=[[0] * 4], actions=[[1] * 4], rewards=[[reward] * 4], terminated=[[terminated] * 4],
                      dones=[[True] * 4], valid=[[valid] * 4], last_obs=[1] * 4)


@pytest.mark.parametrize("terminated, loss", [
    (True, 0.5 * 0.5**2),            # target r = 1, Q = 0.5
    (False, 0.5 * 0.75**2),          # truncated only: target 1 + 0.5·0.5 = 1.25
])
def test_dqn_target_masks_terminations_only(terminated, loss):
    agent = dqn_agent([0.0, 0.5], [0.0, 0.5])
    agent.buffer.add(dqn_transitions(terminated))
    assert agent._update().item() == pytest.approx(loss, abs=1e-6)


@pytest.mark.parametrize("double_q, loss", [
    (True, 0.5 * 0.5**2),   # a* = argmax online = 0, evaluated by the target: 0 -> target 0.5, Q(0, 1) = 0
    (False, 1.5 - 0.5),     # max target = 2 -> target 0.5 + 0.5·2 = 1.5: Huber |1.5| − 0.5 = 1
])
def test_dqn_double_q_chooses_with_the_online_network_and_evaluates_with_the_target(double_q, loss):
    agent = dqn_agent([1.0, 0.0], [0.0, 2.0], double_q=double_q)
    agent.buffer.add(dqn_transitions(terminated=False, reward=0.5))
    assert agent._update().item() == pytest.approx(loss, abs=1e-6)


def test_dqn_loss_averages_over_the_valid_samples_only():
    agent = dqn_agent([0.0, 0.5], [0.0, 0.5])
    agent.buffer.add(make_batch(obs=[[0] * 4], actions=[[1] * 4], rewards=[[1.0, 1.0, 100.0, 100.0]],
                                terminated=[[True] * 4], dones=[[True] * 4], valid=[[True, True, False, False]],
                                last_obs=[1] * 4))
    assert agent._update().item() == pytest.approx(0.5 * 0.5**2, abs=1e-6)  # the invalid rewards of 100 count nothing


def test_dqn_update_of_a_single_sample_without_gradient_clipping():
    agent = dqn_agent([0.0, 0.5], [0.0, 0.5], batch_size=1, max_grad_norm=None)
    agent.buffer.add(dqn_transitions(terminated=True))
    assert agent._update().item() == pytest.approx(0.5 * 0.5**2, abs=1e-6)


def test_dqn_ignores_invalid_transitions():
    agent = dqn_agent([0.0, 0.5], [0.0, 0.5])
    agent.buffer.add(dqn_transitions(terminated=True, valid=False))
    before = [p.clone() for p in agent.q_network.parameters()]
    assert agent._update().item() == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters()))


def test_dqn_target_network_copies_the_online_network_every_interval():
    agent = dqn_agent([0.0, 0.5], [0.0, 0.5], target_update_interval=2, learning_rate=0.1)
    agent.buffer.add(dqn_transitions(terminated=True, reward=3.0))
    target_before = {k: v.clone() for k, v in agent.target_network.state_dict().items()}
    agent._update()
    online = agent.q_network.state_dict()
    assert all(torch.equal(target_before[k], v) for k, v in agent.target_network.state_dict().items())
    assert any(not torch.equal(target_before[k], online[k]) for k in online)  # the online net has moved
    agent._update()
    online = agent.q_network.state_dict()
    assert all(torch.equal(online[k], v) for k, v in agent.target_network.state_dict().items())
    assert agent.gradient_step == 2


# ---------------------------------------------------------------- the QEC student's distillation


class ConstantTeacher:
    """A teacher whose action probabilities are the same for every observation."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def policy_output(self, view: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(view.shape[0], -1)

    def __call__(self, view: torch.Tensor) -> torch.Tensor:
        return torch.full((view.shape[0],), int(self.logits.argmax()), dtype=torch.int64)


def constant_heads(student, logits, value_bias=None):
    """Make the student's policy the constant softmax(``logits``) and, with ``value_bias``, its value head constant."""
    with torch.no_grad():
        student.model.out.weight.zero_()
        student.model.out.bias.copy_(logits)
        if value_bias is not None:
            student.model.value.weight.zero_()
            student.model.value.bias.fill_(value_bias)


def hand_written_batch(ones):
    """Three steps of two sub-envs with observations ``ones``: column 0 ends at step 1, column 1's step 2 is
    not valid (the advantages of the refinement test are worked out by hand on it)."""
    return make_batch(obs=[ones] * 3, actions=[[0, 1], [1, 0], [2, 3]], rewards=[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]],
                      terminated=[[False, False], [True, False], [False, False]],
                      dones=[[False, False], [True, False], [False, False]],
                      valid=[[True, True], [True, True], [True, False]], last_obs=ones)


@pytest.mark.parametrize("sampled", [True, False])
def test_student_loss_is_the_cross_entropy_with_the_teacher(sampled):
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=3, n_qubits=3, max_steps=4)
    student = QECStudent(envs, seed=0, teacher="unused", num_steps=6, update_epochs=1, teacher_sampled=sampled)
    n = envs.single_action_space.n
    teacher_logits = torch.linspace(-1.0, 2.0, n)
    student.set_teacher(ConstantTeacher(teacher_logits), "pairs")
    student_logits = torch.linspace(1.0, -1.0, n)
    constant_heads(student, student_logits)
    student.global_step = 5
    loss = student.learn_iteration()["losses/imitation"]
    assert student.global_step == 5 + 6 * 3
    log_q = torch.log_softmax(student_logits, 0)
    if sampled:  # distillation: −Σ_a p_teacher(a) ln q(a)
        expected = -(torch.softmax(teacher_logits, 0) * log_q).sum()
    else:  # imitation of the greedy action
        expected = -log_q[teacher_logits.argmax()]
    assert loss == pytest.approx(expected.item(), abs=1e-5)


def test_student_imitation_with_a_critic_warm_up_adds_the_value_loss_by_hand():
    """With ``refine_after`` set, imitation also fits the value head: loss = −mean ln q(a) + ½ mean((V − target)·scale)²,
    on the hand-written batch of the refinement test (γ = 0.5, V = 0.5, so V − target = −A)."""
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, n_qubits=3, max_steps=4)
    student = QECStudent(envs, seed=0, teacher="unused", num_steps=3, update_epochs=1, refine_after=10**6, gamma=0.5)
    n, obs_dim = envs.single_action_space.n, envs.single_observation_space.shape[0]
    student.set_teacher(ConstantTeacher(torch.zeros(n)), "pairs")
    logits = torch.linspace(1.0, -1.0, n)
    constant_heads(student, logits, value_bias=0.25)
    ones = [[1.0] * obs_dim] * 2
    student.rollout = FixedRollout(hand_written_batch(ones))
    logs = student.learn_iteration()
    log_q = torch.log_softmax(logits, 0).tolist()
    advantages = [0.5125, -0.5, 1.75, 0.04984375, 0.63125]  # as in the refinement test
    imitation = -sum(log_q[a] for a in [0, 1, 2, 1, 0]) / 5
    assert logs["losses/imitation"] == pytest.approx(imitation + 0.5 * 0.25 * sum(a * a for a in advantages) / 5,
                                                     abs=1e-6)
    assert logs["losses/agreement"] == pytest.approx(2 / 5)  # the student's greedy action 0 on 2 of 5 valid steps
    assert student.global_step == 6 and student.rollout.num_steps == 3


def test_student_agreement_counts_each_steps_own_greedy_action():
    """The logged agreement compares each valid step's greedy action with the action taken. The GRU is set so
    that its hidden unit 0 is tanh(obs₀) (update gate shut, no recurrence) and the head reads it: greedy
    action 0 where obs₀ = 0 and 2 where obs₀ = 1 (the last step), so the logits differ between steps and the
    hand-written batch's actions agree on 3 of its 5 valid steps."""
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, n_qubits=3, max_steps=4)
    student = QECStudent(envs, seed=0, teacher="unused", num_steps=3, update_epochs=1)
    n, obs_dim = envs.single_action_space.n, envs.single_observation_space.shape[0]
    student.set_teacher(ConstantTeacher(torch.zeros(n)), "pairs")
    cell, hidden = student.model.cell, student.model.hidden_size
    with torch.no_grad():
        for parameter in (*cell.parameters(), student.model.out.weight):
            parameter.zero_()
        cell.bias_ih[hidden:2 * hidden] = -50.0  # update gate z = 0: h' = tanh(W_in x)
        cell.weight_ih[2 * hidden, 0] = 1.0  # hidden unit 0 = tanh(obs₀)
        student.model.out.bias.copy_(torch.linspace(1.0, -1.0, n))
        student.model.out.weight[2, 0] = 10.0  # action 2 wins where obs₀ = 1
    step = [[0.0] + [1.0] * (obs_dim - 1)] * 2
    batch = hand_written_batch(step)
    batch.obs[2, :, 0] = 1.0
    student.rollout = FixedRollout(batch)
    logs = student.learn_iteration()
    assert logs["losses/agreement"] == pytest.approx(3 / 5)  # (0 ✓, 1 ✗), (1 ✗, 0 ✓), (2 ✓, not valid)


# ---------------------------------------------------------------- data parallel


def test_gradient_averaging_weights_each_rank_by_its_samples(monkeypatch):
    """Rank 0 holds gradient (1, 2) of a mean over 2 samples; the other rank (2 ranks in all) (4, 8) over 3 samples."""
    other_rank = torch.tensor([3.0, 3 * 4.0, 3 * 8.0])  # its [weight, weight·gradient]

    def all_reduce(flat):
        flat += other_rank

    monkeypatch.setattr(distributed, "rank_and_world_size", lambda: (0, 2))
    monkeypatch.setattr(distributed.dist, "all_reduce", all_reduce)
    first, second = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    first.grad, second.grad = torch.tensor([1.0]), torch.tensor([2.0])  # two parameters: one flat buffer
    distributed.average_gradients([first, second], torch.tensor(2.0))
    assert [first.grad.item(), second.grad.item()] == pytest.approx([(2 * 1 + 3 * 4) / 5, (2 * 2 + 3 * 8) / 5])


def test_student_refinement_is_one_advantage_actor_critic_step_by_hand():
    """``_refine`` on a hand-written batch: a constant policy π = softmax(b) and a constant value V = 0.5
    (the value head's bias 0.25 over the scale 1 − γ = 0.5), γ = 0.5, λ = 0.95 (fixed)."""
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, n_qubits=3, max_steps=4)
    student = QECStudent(envs, seed=0, teacher="unused", num_steps=3, refine_after=0, gamma=0.5,
                         learning_rate=0.5, refine_learning_rate=1e-3)
    n, obs_dim = envs.single_action_space.n, envs.single_observation_space.shape[0]
    logits = torch.linspace(1.0, -1.0, n)
    constant_heads(student, logits, value_bias=0.25)
    ones = [[1.0] * obs_dim] * 2
    student.rollout = FixedRollout(hand_written_batch(ones))
    student.global_step = 10
    bias_before = student.model.out.bias.detach().clone()
    value_bias_before = student.model.value.bias.item()
    logs = student.learn_iteration()
    # GAE, δ_t = r_t + γ V (1 − d_t) − V, A_t = δ_t + γλ (1 − d_t) A_{t+1}, V = 0.5 and the bootstrap 0.5:
    # column 0: A2 = 2 + 0.25 − 0.5 = 1.75; A1 = 0 − 0.5 = −0.5 (ends); A0 = 0.75 + 0.475·(−0.5) = 0.5125
    # column 1: A2 = −0.25 (not valid, but bootstraps A1); A1 = 0.75 + 0.475·(−0.25) = 0.63125;
    #           A0 = −0.25 + 0.475·0.63125 = 0.04984375
    advantages = [0.5125, -0.5, 1.75, 0.04984375, 0.63125]  # the valid steps
    actions = [0, 1, 2, 1, 0]
    mean = sum(advantages) / 5
    std = math.sqrt(sum((a - mean) ** 2 for a in advantages) / 5)
    normalised = [(a - mean) / (std + 1e-8) for a in advantages]
    log_pi = torch.log_softmax(logits, 0).tolist()
    assert logs["losses/policy_loss"] == pytest.approx(-sum(z * log_pi[a] for z, a in zip(normalised, actions)) / 5,
                                                       abs=1e-6)
    # V − target = −A: 0.5 · mean(((V − target) · scale)²) with scale 0.5
    assert logs["losses/value_loss"] == pytest.approx(0.5 * 0.25 * sum(a * a for a in advantages) / 5, abs=1e-6)
    entropy = -(torch.softmax(logits, 0) * torch.log_softmax(logits, 0)).sum().item()
    assert logs["losses/entropy"] == pytest.approx(entropy, abs=1e-6)
    assert student.global_step == 16 and student.rollout.num_steps == 3
    assert [group["lr"] for group in student.optimizer.param_groups] == [1e-3]
    # Adam's first step moves each parameter by lr · sign(gradient). The policy gradient on the bias of
    # action a is −Σ_{i: a_i = a} Â_i / 5 (the π(a) term sums the normalised advantages to zero), the
    # value gradient on its bias is −scale · mean(A) < 0. (Actions never taken get a gradient of rounding
    # size, which Adam's first step does not scale to lr: they are left out.)
    step = (student.model.out.bias.detach() - bias_before).tolist()
    for a in set(actions):
        chosen = sum(z for z, b in zip(normalised, actions) if b == a)
        assert step[a] == pytest.approx(math.copysign(1e-3, chosen), abs=1e-6)
    assert student.model.value.bias.item() - value_bias_before == pytest.approx(1e-3, abs=1e-6)


def test_student_refinement_with_masking_scores_the_masked_policy():
    """``mask_revealing=True``: the refinement step reads the policy with the revealing measurements of
    each step masked, v tracked from the env's start pairing through the batch's own actions."""
    envs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, n_qubits=3, max_steps=4)
    student = QECStudent(envs, seed=0, teacher="unused", num_steps=3, refine_after=0, mask_revealing=True)
    n, obs_dim = envs.single_action_space.n, envs.single_observation_space.shape[0]
    logits = torch.linspace(1.0, -1.0, n)
    constant_heads(student, logits)
    ones = [[1.0] * obs_dim] * 2
    actions = torch.tensor([[0, 1], [n - 1, 2], [3, n - 2]])
    student.rollout = FixedRollout(make_batch(
        obs=[ones] * 3, actions=actions.tolist(), rewards=[[0.0, 0.0]] * 3, terminated=[[False, False]] * 3,
        dones=[[False, False]] * 3, valid=[[True, True]] * 3, last_obs=ones))
    shift = torch.full((2,), envs.initial_shift)
    entropies = []
    for t in range(3):
        log_p = torch.log_softmax(logits.masked_fill(envs.revealing(shift), -1e9), -1)
        entropies.append(-(log_p.exp() * log_p).sum(-1))
        shift = envs.shift_after(actions[t], shift)
    assert student.learn_iteration()["losses/entropy"] == pytest.approx(torch.stack(entropies).mean().item(), abs=1e-6)
    assert bool(envs.revealing(torch.full((2,), envs.initial_shift)).any())  # the mask is not empty

"""Tabular Q-learning with an ε-greedy behaviour policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces

from physrl.agents.base import Agent
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.agents.schedules import linear_schedule
from physrl.envs.core import VectorEnv
from physrl.envs.validation import check_float, check_int


def epsilon_greedy(q_values: torch.Tensor, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """Greedy actions of ``q_values`` (B, A), replaced by uniform ones with probability ``epsilon``."""
    shape, device = q_values.shape[:1], q_values.device
    random = torch.randint(0, q_values.shape[1], shape, generator=generator, device=device)
    explore = torch.rand(shape, generator=generator, device=device) < epsilon
    return torch.where(explore, random, q_values.argmax(dim=1))


def check_exploration(config: Any) -> None:
    """Check the ε schedule of a hyperparameter dataclass (Q-learning's or DQN's)."""
    check_float("epsilon_start", config.epsilon_start, 0.0, 1.0)
    check_float("epsilon_end", config.epsilon_end, 0.0, 1.0)
    check_int("exploration_steps", config.exploration_steps, 1)


@dataclass
class QLearningConfig(Hyperparameters):
    """Hyperparameters of :class:`QLearning` (``q-learning``)."""

    agent = "q-learning"
    learning_rate: float = param(0.5, "step size α of the TD update, in (0, 1]")
    gamma: float = param(0.95, "discount γ, in [0, 1]")
    epsilon_start: float = param(1.0, "ε of the ε-greedy behaviour at step 0, in [0, 1]")
    epsilon_end: float = param(0.05, "ε after exploration_steps, in [0, 1]")
    exploration_steps: int = param(50_000, "env steps over which ε falls linearly, >= 1")
    initial_value: float = param(0.0, "initial Q(s, a) of every cell (optimism drives exploration)")
    num_steps: int | None = param(None, "steps of every sub-env per iteration (None: one episode cycle, horizon + 1)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_exploration(self)
        check_float("initial_value", self.initial_value)
        if self.num_steps is not None:
            check_int("num_steps", self.num_steps, 1)


class QLearning(Agent):
    """Q-table over a Discrete observation; Q(s,a) ← Q(s,a) + α (r + γ max Q(s',·) − Q(s,a)).

    Each iteration collects ``num_steps`` steps with ε-greedy actions (ε falls linearly from
    ``epsilon_start`` to ``epsilon_end`` over ``exploration_steps`` env steps), then applies the
    updates step by step in the order they happened; sub-envs that hit the same (s, a) on the same
    step contribute their mean TD error. Terminations are not bootstrapped; the time limit is (the
    table does not see the time).
    """

    config_class = QLearningConfig

    def __init__(self, envs: VectorEnv, seed: int = 0, config: QLearningConfig | None = None,
                 **hyperparameters: Any) -> None:
        super().__init__(envs, seed)
        hp = self.configure(config, hyperparameters)
        n_actions = self.discrete_actions()
        obs_space = envs.single_observation_space
        if not isinstance(obs_space, spaces.Discrete):
            raise TypeError(f"QLearning needs a Discrete observation space, got {obs_space}")
        self.obs_start = int(obs_space.start)
        hp.num_steps = self.default_num_steps(hp.num_steps)
        self.q = torch.full((int(obs_space.n), n_actions), hp.initial_value, device=self.device)

    @property
    def epsilon(self) -> float:
        hp = self.config
        return linear_schedule(hp.epsilon_start, hp.epsilon_end, hp.exploration_steps, self.global_step)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        q = self.q[obs.to(self.device).long() - self.obs_start]
        return q.argmax(dim=1) if deterministic else epsilon_greedy(q, self.epsilon, self.generator)

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.config
        epsilon = self.epsilon
        batch = self.rollout.collect(hp.num_steps, lambda obs: (
            epsilon_greedy(self.q[obs.long() - self.obs_start], epsilon, self.generator), {}))
        self.global_step += batch.rewards.numel() * self.world_size
        states, next_states = batch.obs.long() - self.obs_start, batch.next_obs.long() - self.obs_start
        n_actions = self.q.shape[1]
        td_abs = torch.zeros((), device=self.device)
        for t in range(batch.rewards.shape[0]):
            target = batch.rewards[t] + hp.gamma * self.q[next_states[t]].amax(dim=1) * ~batch.terminated[t]
            cell = states[t] * n_actions + batch.actions[t]
            weight = batch.valid[t].to(torch.float32)
            td = (target - self.q.view(-1)[cell]) * weight
            sums = torch.zeros_like(self.q.view(-1)).index_add_(0, cell, td)
            counts = torch.zeros_like(self.q.view(-1)).index_add_(0, cell, weight)
            self.q.view(-1).add_(hp.learning_rate * sums / counts.clamp(min=1))
            td_abs += td.abs().sum()
        valid = batch.valid.sum().clamp(min=1)
        return {**batch.episode_stats(), "losses/td_error": float(td_abs / valid), "charts/epsilon": epsilon}

    def _state(self) -> dict[str, Any]:
        return {"q": self.q.clone()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.q = state["q"].to(self.device)

"""Tabular REINFORCE: a softmax table over a Discrete observation (Marquardt's lecture, §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces

from physrl.agents.base import Agent
from physrl.agents.distributed import average_gradients
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.agents.rollout import discounted_returns, masked_mean
from physrl.envs.core import VectorEnv
from physrl.envs.validation import check_choice, check_float, check_int

BASELINES = ("none", "batch_mean", "running_mean")


@dataclass
class TabularPGConfig(Hyperparameters):
    """Hyperparameters of :class:`TabularPolicyGradient` (``tabular-pg``)."""

    agent = "tabular-pg"
    learning_rate: float = param(0.1, "step size η of the REINFORCE update, > 0")
    optimizer: str = param("sgd", "sgd or adam")
    baseline: str = param("none", "b(s) subtracted from the return: none, batch_mean or running_mean")
    baseline_rate: float = param(0.1, "update rate of the running_mean baseline, in (0, 1]")
    gamma: float = param(1.0, "discount γ, in [0, 1]")
    ignore_observation: bool = param(False, "one state for every observation (the lecture's walker π = σ(θ))")
    num_steps: int | None = param(None, "steps of every sub-env per iteration (None: one episode cycle, horizon + 1)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_choice("optimizer", self.optimizer, ("sgd", "adam"))
        check_choice("baseline", self.baseline, BASELINES)
        check_float("baseline_rate", self.baseline_rate, 0.0, 1.0, low_open=True)
        check_float("gamma", self.gamma, 0.0, 1.0)
        if self.num_steps is not None:
            check_int("num_steps", self.num_steps, 1)


class TabularPolicyGradient(Agent):
    """π(a|s) = softmax(0, θ[s, 0], …, θ[s, A−2]): the logit of action 0 is pinned at 0.

    The table has no redundant direction; with two actions π(1|s) = σ(θ[s]), and with
    ``ignore_observation=True`` there is a single state, so the policy is exactly the lecture's
    sigmoid walker π = σ(θ). Each iteration collects ``num_steps`` steps of every sub-env and
    applies one REINFORCE step on the episodes that ended,

        θ ← θ + η · (1/#episodes) Σ_episodes Σ_t (G_t − b(s_t)) ∇θ ln π(a_t|s_t),

    with reward-to-go G_t and baseline b: ``"none"``, ``"batch_mean"`` (mean reward-to-go of the
    batch) or ``"running_mean"`` (per-state mean, updated with rate ``baseline_rate``). The default
    ``num_steps`` is one episode cycle (horizon + 1 autoreset step), so that a batch of a
    fixed-horizon env holds exactly ``num_envs`` whole episodes, as in the lecture.
    """

    config_class = TabularPGConfig

    def __init__(self, envs: VectorEnv, seed: int = 0, config: TabularPGConfig | None = None,
                 **hyperparameters: Any) -> None:
        super().__init__(envs, seed)
        hp = self.configure(config, hyperparameters)
        n_actions = self.discrete_actions()
        obs_space = envs.single_observation_space
        if not hp.ignore_observation and not isinstance(obs_space, spaces.Discrete):
            raise TypeError(f"TabularPolicyGradient needs a Discrete observation space (or ignore_observation=True), "
                            f"got {obs_space}")
        self.n_states = 1 if hp.ignore_observation else int(obs_space.n)
        self.obs_start = 0 if hp.ignore_observation else int(obs_space.start)
        hp.num_steps = self.default_num_steps(hp.num_steps)
        self.theta = torch.nn.Parameter(torch.zeros(self.n_states, n_actions - 1, device=self.device))
        optimizer_class = torch.optim.SGD if hp.optimizer == "sgd" else torch.optim.Adam
        self.optimizer = optimizer_class([self.theta], lr=hp.learning_rate)
        self.baseline_table = torch.zeros(self.n_states, device=self.device)

    def states(self, obs: torch.Tensor) -> torch.Tensor:
        """Row of the table for each observation."""
        if self.n_states == 1:
            return torch.zeros(obs.shape[0], dtype=torch.int64, device=obs.device)
        return obs.long() - self.obs_start

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        theta = self.theta[states]
        return torch.cat([torch.zeros_like(theta[..., :1]), theta], dim=-1)

    def probabilities(self) -> torch.Tensor:
        """The policy table π(a|s), shape (states, actions)."""
        with torch.no_grad():
            return F.softmax(self.logits(torch.arange(self.n_states, device=self.device)), dim=-1)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        with torch.no_grad():
            logits = self.logits(self.states(obs.to(self.device)))
            if deterministic:
                return logits.argmax(dim=-1)
            return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=self.generator).squeeze(-1)

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.config
        batch = self.rollout.collect(hp.num_steps, lambda obs: (self.act(obs, deterministic=False), {}))
        self.global_step += batch.rewards.numel() * self.world_size
        returns = discounted_returns(batch.rewards, batch.dones, hp.gamma, torch.zeros_like(batch.rewards[0]))
        used = batch.valid & batch.complete
        states = self.states(batch.obs.flatten(0, 1)).view(used.shape)
        if hp.baseline == "batch_mean":
            baseline = masked_mean(returns, used)
        elif hp.baseline == "running_mean":
            baseline = self.baseline_table[states]
        else:
            baseline = 0.0
        log_p = F.log_softmax(self.logits(states), dim=-1).gather(-1, batch.actions[..., None]).squeeze(-1)
        episodes = batch.dones.sum().clamp(min=1)
        loss = -((returns - baseline) * log_p * used).sum() / episodes
        self.optimizer.zero_grad()
        loss.backward()
        average_gradients([self.theta], episodes)
        self.optimizer.step()
        if hp.baseline == "running_mean":
            self._update_baseline(states, returns, used)
        return {**batch.episode_stats(), "losses/policy_loss": float(loss.detach())}

    def _update_baseline(self, states: torch.Tensor, returns: torch.Tensor, used: torch.Tensor) -> None:
        weight = used.to(torch.float32).flatten()
        sums = torch.zeros_like(self.baseline_table).index_add_(0, states.flatten(), returns.flatten() * weight)
        counts = torch.zeros_like(self.baseline_table).index_add_(0, states.flatten(), weight)
        rate = self.config.baseline_rate
        updated = (1 - rate) * self.baseline_table + rate * sums / counts.clamp(min=1)
        self.baseline_table = torch.where(counts > 0, updated, self.baseline_table)

    def _state(self) -> dict[str, Any]:
        return {"theta": self.theta.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "baseline_table": self.baseline_table.clone()}

    def _load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.theta.copy_(state["theta"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline_table = state["baseline_table"].to(self.device)

"""Deep Q-network (Mnih et al. 2015): replay buffer on the device, target network, optional double Q."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from physrl.agents.base import Agent, with_seed
from physrl.agents.distributed import average_gradients
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.agents.networks import NETWORKS, build_network
from physrl.agents.q_learning import check_exploration, epsilon_greedy
from physrl.agents.rollout import Batch
from physrl.agents.schedules import linear_schedule
from physrl.envs.core import VectorEnv
from physrl.envs.validation import check_choice, check_float, check_int, check_sizes


class ReplayBuffer:
    """Circular buffer of transitions, kept as tensors on the device; sampled uniformly."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                 device: torch.device) -> None:
        self.capacity, self.size, self.position = capacity, 0, 0
        self.obs = torch.zeros(capacity, *obs_shape, dtype=obs_dtype, device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.dones = torch.zeros(capacity, dtype=torch.bool, device=device)
        self.valid = torch.zeros(capacity, dtype=torch.bool, device=device)

    def add(self, batch: Batch) -> None:
        """Store every step of ``batch`` (``dones`` = terminations); autoreset steps are stored as invalid."""
        items = (batch.obs, batch.next_obs, batch.actions, batch.rewards, batch.terminated, batch.valid)
        items = [x.flatten(0, 1)[-self.capacity:] for x in items]
        n = items[0].shape[0]
        index = (self.position + torch.arange(n, device=self.obs.device)) % self.capacity
        for store, values in zip((self.obs, self.next_obs, self.actions, self.rewards, self.dones, self.valid), items):
            store[index] = values.to(store.dtype)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.obs.device)
        return (self.obs[index], self.next_obs[index], self.actions[index], self.rewards[index],
                self.dones[index], self.valid[index])

    FIELDS = ("obs", "next_obs", "actions", "rewards", "dones", "valid")

    def state_dict(self) -> dict[str, Any]:
        """The filled part only (the first ``size`` slots, copied so that the rest of the preallocated
        storage is not saved with it): checkpoints grow with the transitions seen, up to ``capacity``."""
        return {"size": self.size, "position": self.position,
                **{name: getattr(self, name)[:self.size].clone() for name in self.FIELDS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"the saved replay buffer holds {size} transitions, more than buffer_size={self.capacity}")
        self.size, self.position = size, int(state["position"])
        for name in self.FIELDS:
            saved = state[name][:size]  # checkpoints written before only the filled part was saved hold it all
            getattr(self, name)[:size] = saved.to(self.obs.device)


@dataclass
class DQNConfig(Hyperparameters):
    """Hyperparameters of :class:`DQN` (``dqn``)."""

    agent = "dqn"
    learning_rate: float = param(1e-3, "Adam step size, > 0")
    buffer_size: int = param(100_000, "transitions the replay buffer holds, >= 1")
    batch_size: int = param(128, "transitions per gradient step, >= 1")
    gamma: float = param(0.95, "discount γ, in [0, 1]")
    learning_starts: int = param(1_000, "transitions in the buffer before the first gradient step, >= 0")
    num_steps: int = param(4, "steps of every sub-env per iteration, >= 1")
    gradient_steps: int = param(4, "gradient steps per iteration, >= 0")
    target_update_interval: int = param(250, "gradient steps between copies of the online network to the target")
    double_q: bool = param(True, "choose a* with the online network (double Q-learning)")
    epsilon_start: float = param(1.0, "ε of the ε-greedy behaviour at step 0, in [0, 1]")
    epsilon_end: float = param(0.05, "ε after exploration_steps, in [0, 1]")
    exploration_steps: int = param(20_000, "env steps over which ε falls linearly, >= 1")
    max_grad_norm: float | None = param(10.0, "gradient norm clip, > 0 (None: no clipping)")
    network: str = param("auto", f"Q-network: {', '.join(NETWORKS)}")
    hidden_sizes: list[int] = param([128, 128], "widths of the hidden layers")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_int("buffer_size", self.buffer_size, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_int("learning_starts", self.learning_starts, 0)
        check_int("num_steps", self.num_steps, 1)
        check_int("gradient_steps", self.gradient_steps, 0)
        check_int("target_update_interval", self.target_update_interval, 1)
        check_exploration(self)
        if self.max_grad_norm is not None:
            check_float("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_choice("network", self.network, NETWORKS)
        check_sizes("hidden_sizes", self.hidden_sizes)


class DQN(Agent):
    """Q-network trained on minibatches from a replay buffer against a periodically copied target.

    Each iteration collects ``num_steps`` ε-greedy steps of every sub-env into the buffer, then
    (once the buffer holds ``learning_starts`` transitions) takes ``gradient_steps`` Adam steps on
    the Huber loss of r + γ Q_target(s', a*) with a* = argmax Q_target (or argmax Q with
    ``double_q``). The target copies the online network every ``target_update_interval`` gradient
    steps. ε falls linearly from ``epsilon_start`` to ``epsilon_end`` over ``exploration_steps``.
    Terminations are not bootstrapped; the time limit is.
    """

    config_class = DQNConfig

    def __init__(self, envs: VectorEnv, seed: int = 0, config: DQNConfig | None = None,
                 **hyperparameters: Any) -> None:
        super().__init__(envs, seed)
        hp = self.configure(config, hyperparameters)
        n_actions = self.discrete_actions()
        obs_space = envs.single_observation_space
        self.q_network = with_seed(self.seed, lambda: build_network(hp.network, obs_space, n_actions,
                                                                    hp.hidden_sizes)).to(self.device)
        self.target_network = copy.deepcopy(self.q_network)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=hp.learning_rate)
        obs_dtype = torch.int64 if obs_space.shape == () else torch.float32
        self.buffer = ReplayBuffer(hp.buffer_size, obs_space.shape, obs_dtype, self.device)
        self.gradient_step = 0

    @property
    def epsilon(self) -> float:
        hp = self.config
        return linear_schedule(hp.epsilon_start, hp.epsilon_end, hp.exploration_steps, self.global_step)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        with torch.no_grad():
            q = self.q_network(obs.to(self.device))
        return q.argmax(dim=1) if deterministic else epsilon_greedy(q, self.epsilon, self.generator)

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.config
        epsilon = self.epsilon
        batch = self.rollout.collect(hp.num_steps, lambda obs: (self.act(obs, deterministic=False), {}))
        self.global_step += batch.rewards.numel() * self.world_size
        self.buffer.add(batch)
        stats = {**batch.episode_stats(), "charts/epsilon": epsilon}
        if self.buffer.size < max(hp.learning_starts, 1) or hp.gradient_steps == 0:
            return stats
        total = torch.zeros((), device=self.device)
        for _ in range(hp.gradient_steps):
            total += self._update()
        return {**stats, "losses/td_loss": float(total) / hp.gradient_steps}

    def _update(self) -> torch.Tensor:
        hp = self.config
        obs, next_obs, actions, rewards, dones, valid = self.buffer.sample(hp.batch_size, self.generator)
        with torch.no_grad():
            next_target = self.target_network(next_obs)
            chooser = self.q_network(next_obs) if hp.double_q else next_target
            best = next_target.gather(1, chooser.argmax(dim=1, keepdim=True)).squeeze(1)
            target = rewards + hp.gamma * best * ~dones
        q = self.q_network(obs).gather(1, actions[:, None]).squeeze(1)
        weight = valid.to(torch.float32)
        loss = (F.smooth_l1_loss(q, target, reduction="none") * weight).sum() / weight.sum().clamp(min=1)
        self.optimizer.zero_grad()
        loss.backward()
        average_gradients(self.q_network.parameters(), weight.sum())
        if hp.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), hp.max_grad_norm)
        self.optimizer.step()
        self.gradient_step += 1
        if self.gradient_step % hp.target_update_interval == 0:
            self.target_network.load_state_dict(self.q_network.state_dict())
        return loss.detach()

    def _state(self) -> dict[str, Any]:
        return {"q_network": self.q_network.state_dict(), "target_network": self.target_network.state_dict(),
                "optimizer": self.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "gradient_step": self.gradient_step}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.gradient_step = int(state["gradient_step"])

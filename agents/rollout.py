"""On-device rollout collection for the vector face, returns and advantages (shared by every agent).

The vector face autoresets on the *next* step (Gymnasium's NEXT_STEP mode): the step after an
episode ends ignores its action, returns the reset observation with reward 0 and both flags False.
:class:`Rollout` marks that transition invalid (``Batch.valid``) so that no agent learns from it.
``Batch.dones`` marks every episode end (termination or the time limit): the policy-gradient
agents treat the horizon as part of the task, so a return ends there. ``Batch.terminated`` marks
true terminations only: the value-based agents bootstrap through the time limit, since their
stationary Q-values do not see the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from physrl.envs.core import VectorEnv

#: A policy: a batch of observations (as the vector face returns them) -> a batch of actions.
Policy = Callable[[torch.Tensor], torch.Tensor]
#: What :meth:`Rollout.collect` steps with: ``policy(obs) -> (actions for env.step, tensors to store per step)``.
CollectingPolicy = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Batch:
    """``num_steps`` steps of ``num_envs`` sub-envs; every tensor has leading dims (T, B)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    dones: torch.Tensor
    valid: torch.Tensor
    extras: dict[str, torch.Tensor]
    last_obs: torch.Tensor
    episode_returns: torch.Tensor
    episode_lengths: torch.Tensor

    @property
    def next_obs(self) -> torch.Tensor:
        """The observation after each step (the final observation where an episode ended)."""
        return torch.cat([self.obs[1:], self.last_obs[None]])

    @property
    def complete(self) -> torch.Tensor:
        """Steps whose episode ends within the batch, so that their reward-to-go is exact."""
        return self.dones.flip(0).cummax(0).values.flip(0)

    def episode_stats(self) -> dict[str, list]:
        """Returns and lengths of the episodes that ended in this batch (one host sync)."""
        return {"episodic_return": self.episode_returns[self.dones].tolist(),
                "episodic_length": self.episode_lengths[self.dones].tolist()}


class Rollout:
    """Collects consecutive fixed-length batches from a vector env, carrying episodes across batches.

    The first :meth:`collect` resets the env with ``seed``. With ``keep_starts`` set, after each
    :meth:`collect` ``finished`` holds the first observation and the return of every episode that
    ended in it (for physics metrics of the episodes played, such as the maze's exact optimum; it
    costs one host synchronisation per batch). Its ``state_dict`` includes the env's
    own state (the declared state tensors of its batched core and its random streams), so that a resumed run continues
    exactly where the saved one stopped.
    """

    def __init__(self, envs: VectorEnv, seed: int) -> None:
        if not callable(getattr(envs, "state_dict", None)) or getattr(envs, "metadata", {}).get("autoreset_mode") is None:
            raise TypeError("envs must be a torch vector env (physrl.envs.gym_adapter.make_torch_vec(id, num_envs)), "
                            f"got {type(envs).__name__}")
        if getattr(envs, "array", "torch") != "torch":
            raise TypeError("envs must give torch tensors: make them without array='numpy' (that option is "
                            "for Gymnasium's numpy wrappers)")
        self.envs, self.seed = envs, seed
        n, device = envs.num_envs, envs.device
        self.obs: torch.Tensor | None = None
        self.prev_done = torch.zeros(n, dtype=torch.bool, device=device)
        self.running_return = torch.zeros(n, dtype=torch.float32, device=device)
        self.running_length = torch.zeros(n, dtype=torch.int64, device=device)
        self.keep_starts = False
        self.episode_start: torch.Tensor | None = None
        self.finished: tuple[torch.Tensor, torch.Tensor] | None = None

    def collect(self, num_steps: int, policy: CollectingPolicy) -> Batch:
        """Step every sub-env ``num_steps`` times with ``policy``; no host synchronisation (unless ``keep_starts``)."""
        if self.obs is None:
            self.obs, _ = self.envs.reset(seed=self.seed)
            self.episode_start = self.obs.clone()
        obs_buf, action_buf, extra_bufs = [], [], {}
        rewards, terms, dones, valid, returns, lengths, starts = [], [], [], [], [], [], []
        for _ in range(num_steps):
            obs_buf.append(self.obs)
            valid.append(~self.prev_done)
            actions, extras = policy(self.obs)
            action_buf.append(actions)
            for key, value in extras.items():
                extra_bufs.setdefault(key, []).append(value)
            self.obs, reward, terminated, truncated, _ = self.envs.step(actions)
            if self.keep_starts:  # after an autoreset step the observation is a new episode's first one
                self.episode_start = torch.where(self._expand(~valid[-1]), self.obs, self.episode_start)
                starts.append(self.episode_start)
            done = terminated | truncated
            reward = reward.to(torch.float32)
            self.running_return += reward
            self.running_length += valid[-1]
            rewards.append(reward)
            terms.append(terminated)
            dones.append(done)
            returns.append(self.running_return.clone())
            lengths.append(self.running_length.clone())
            self.running_return.masked_fill_(done, 0.0)
            self.running_length.masked_fill_(done, 0)
            self.prev_done = done
        if self.keep_starts:
            ended = torch.stack(dones)
            self.finished = (torch.stack(starts)[ended], torch.stack(returns)[ended])
        return Batch(torch.stack(obs_buf), torch.stack(action_buf), torch.stack(rewards), torch.stack(terms), torch.stack(dones),
                     torch.stack(valid), {k: torch.stack(v) for k, v in extra_bufs.items()}, self.obs,
                     torch.stack(returns), torch.stack(lengths))

    def _expand(self, done: torch.Tensor) -> torch.Tensor:
        """``done`` (B,) shaped to broadcast against a batch of observations."""
        return done.view(-1, *([1] * (self.obs.dim() - 1)))

    def state_dict(self) -> dict[str, Any]:
        return {"obs": self.obs, "prev_done": self.prev_done, "running_return": self.running_return,
                "running_length": self.running_length, "episode_start": self.episode_start,
                "envs": self.envs.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the rollout and the env; with a different ``num_envs``, or an env whose state cannot be
        saved (a Gymnasium env without a physrl core), the env restarts from ``seed``."""
        if state["envs"]["num_envs"] != self.envs.num_envs or state["obs"] is None or not state["envs"].get("exact", True):
            self.obs = None
            return
        device = self.envs.device
        self.envs.load_state_dict(state["envs"])
        self.obs = state["obs"].to(device)
        self.prev_done = state["prev_done"].to(device)
        self.running_return = state["running_return"].to(device)
        self.running_length = state["running_length"].to(device)
        start = state.get("episode_start")  # absent from checkpoints written before it was kept
        self.episode_start = self.obs.clone() if start is None else start.to(device)


def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float,
                       bootstrap: torch.Tensor) -> torch.Tensor:
    """Reward-to-go G_t = r_t + γ G_{t+1}, cut where an episode ends; ``bootstrap`` (B,) follows the last step."""
    out = torch.empty_like(rewards)
    future = bootstrap
    for t in reversed(range(rewards.shape[0])):
        future = rewards[t] + gamma * future * ~dones[t]
        out[t] = future
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
        gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016); λ = 1 gives reward-to-go minus V."""
    out = torch.empty_like(rewards)
    advantage = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.shape[0])):
        alive = ~dones[t]
        delta = rewards[t] + gamma * next_value * alive - values[t]
        advantage = delta + gamma * lam * alive * advantage
        out[t] = advantage
        next_value = values[t]
    return out


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is true (0 if there are none), without a host sync."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def play_episodes(envs: VectorEnv, policy: Policy, seed: int,
                  on_step: Callable[[], Any] | None = None) -> torch.Tensor:
    """Play one episode on every sub-env under ``policy`` and return each episode's return (float64 (B,)).

    The env is reset with ``seed``, so sub-env ``i`` plays the first episode of seed ``seed + i``; the
    policy's actions (a tensor or anything ``torch.as_tensor`` takes) go to the env's device. ``on_step``
    (e.g. a progress bar's update) is called after every step. This is the one way physrl scores a
    policy: ``physrl evaluate``, the challenge and the tests all play through it.
    """
    obs, _ = envs.reset(seed=seed)
    total = torch.zeros(envs.num_envs, dtype=torch.float64, device=envs.device)
    running = torch.ones(envs.num_envs, dtype=torch.bool, device=envs.device)
    with torch.no_grad():
        while bool(running.any()):
            obs, reward, terminated, truncated, _ = envs.step(torch.as_tensor(policy(obs), device=envs.device))
            total += reward.to(torch.float64) * running
            running &= ~(terminated | truncated)
            if on_step is not None:
                on_step()
    return total

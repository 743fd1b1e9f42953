"""Deep policy gradient: REINFORCE with reward-to-go, learned value baseline, entropy bonus, GAE, PPO clipping."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from physrl.agents.base import Agent, with_seed
from physrl.agents.distributed import average_gradients
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.agents.networks import NETWORKS, build_head, build_network
from physrl.agents.novelty import SimHashCounts
from physrl.agents.rollout import Batch, gae, masked_mean
from physrl.agents.schedules import linear_schedule
from physrl.envs.core import VectorEnv
from physrl.envs.validation import check_choice, check_float, check_int, check_sizes


@dataclass
class DeepPGConfig(Hyperparameters):
    """Hyperparameters of :class:`DeepPolicyGradient` (``deep-pg``); the defaults are PPO's."""

    agent = "deep-pg"
    learning_rate: float = param(5e-4, "Adam step size, > 0")
    num_steps: int | None = param(None, "steps of every sub-env per batch (None: one episode cycle, horizon + 1)")
    gamma: float = param(0.99, "discount γ, in [0, 1]")
    gae_lambda: float = param(0.95, "λ of GAE(λ), in [0, 1] (1.0: reward-to-go minus the value)")
    value_baseline: bool = param(True, "learn a critic as baseline (False: only episodes ending in the batch)")
    reward_to_go: bool = param(True, "weight each step by the return after it (False: the whole episode's)")
    clip_coef: float | None = param(0.2, "PPO's clipping ε, > 0 (None: plain policy gradient)")
    update_epochs: int = param(4, "passes over each batch, >= 1")
    num_minibatches: int = param(4, "minibatches per pass, >= 1 and at most num_steps * num_envs")
    ent_coef: float = param(0.01, "weight of the entropy bonus, >= 0")
    vf_coef: float = param(0.5, "weight of the value loss, >= 0")
    max_grad_norm: float | None = param(0.5, "gradient norm clip, > 0 (None: no clipping)")
    normalize_advantages: bool = param(True, "normalise the advantages of each minibatch")
    network: str = param("auto", f"actor and critic: {', '.join(NETWORKS)}")
    hidden_sizes: list[int] = param([64, 64], "widths of the hidden layers")
    log_std_init: float = param(-0.5, "initial log-std of the Gaussian head (Box actions)")
    lr_anneal_steps: int | None = param(None, "env steps over which the learning rate falls linearly to 0")
    log_std_final: float | None = param(None, "final cap of the Gaussian log-std, at most log_std_init")
    log_std_anneal_steps: int | None = param(None, "env steps of the log-std cap's schedule "
                                                   "(default: lr_anneal_steps)")
    ent_coef_final: float | None = param(None, "ent_coef at the end of its linear schedule, >= 0")
    ent_anneal_steps: int | None = param(None, "env steps of the entropy schedule (default: lr_anneal_steps)")
    action_mask: bool = param(False, "never sample actions the env's action_mask rules out (Discrete)")
    novelty_coef: float = param(0.0, "weight β of a count-based exploration bonus β/√n on each step's reward, >= 0 "
                                     "(0: none; Box observations)")
    novelty_bits: int = param(16, "bits k of the SimHash that counts visits for the bonus, in [1, 24]")
    average_start: int | None = param(None, "env step from which act() uses the running average of the actor")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("learning_rate", self.learning_rate, 0.0, low_open=True)
        if self.num_steps is not None:
            check_int("num_steps", self.num_steps, 1)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if self.clip_coef is not None:
            check_float("clip_coef", self.clip_coef, 0.0, low_open=True)
        check_int("update_epochs", self.update_epochs, 1)
        check_int("num_minibatches", self.num_minibatches, 1)
        check_float("ent_coef", self.ent_coef, 0.0)
        check_float("novelty_coef", self.novelty_coef, 0.0)
        check_int("novelty_bits", self.novelty_bits, 1, 24)
        check_float("vf_coef", self.vf_coef, 0.0)
        if self.max_grad_norm is not None:
            check_float("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_choice("network", self.network, NETWORKS)
        check_sizes("hidden_sizes", self.hidden_sizes)
        check_float("log_std_init", self.log_std_init)
        for name in ("lr_anneal_steps", "log_std_anneal_steps", "ent_anneal_steps"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        if self.log_std_final is not None:
            check_float("log_std_final", self.log_std_final, high=self.log_std_init)
        if self.ent_coef_final is not None:
            check_float("ent_coef_final", self.ent_coef_final, 0.0)
        if self.average_start is not None:
            check_int("average_start", self.average_start, 0)
        if not self.value_baseline and self.gae_lambda != 1.0:
            raise ValueError(f"gae_lambda must be 1.0 without a value baseline (value_baseline=False), "
                             f"got {self.gae_lambda}")
        if not self.reward_to_go and (self.value_baseline or self.gamma != 1.0):
            raise ValueError("reward_to_go=False (whole-episode returns) needs value_baseline=False and gamma=1.0, "
                             f"got value_baseline={self.value_baseline}, gamma={self.gamma}")
        self.log_std_anneal_steps = complete_schedule(self, "log_std_final", "log_std_anneal_steps")
        self.ent_anneal_steps = complete_schedule(self, "ent_coef_final", "ent_anneal_steps")


class DeepPolicyGradient(Agent):
    """Neural policy (and value) network trained by policy gradient on batches of ``num_steps × num_envs``.

    The defaults are the strong configuration, advantage actor-critic with GAE(λ) and PPO's clipped
    objective over ``update_epochs`` passes of ``num_minibatches`` minibatches. Plain REINFORCE
    with reward-to-go and a learned value baseline is ``gae_lambda=1.0, clip_coef=None,
    update_epochs=1, num_minibatches=1``; ``value_baseline=False`` drops the critic too (then only
    episodes that end within the batch are used). ``reward_to_go=False`` (only without the critic, and
    with ``gamma=1``) weights every step by its whole episode's return instead of the return after it,
    as the course's REINFORCE does.

    Networks (``network``): ``"auto"`` (CNN for image observations, MLP otherwise; Discrete
    observations are one-hot encoded), ``"mlp"``, ``"cnn"``, ``"action_map"`` (the course's maze
    network), ``"egocentric"`` (a CNN on the maze centred on the robot), ``"value_prop"`` (a maze
    planner with learned rewards, :class:`~physrl.agents.networks.ValuePropagationNet`), ``"route"`` (the
    chests and path lengths behind each move of the maze robot, read by a learned network,
    :class:`~physrl.agents.networks.RouteNet`). Actor and
    critic are separate networks of the same kind. Discrete actions get a Categorical head; Box
    actions a Gaussian whose mean lies in the box and whose samples are clipped to it.

    ``lr_anneal_steps`` (default None: constant) decays the learning rate linearly from
    ``learning_rate`` to 0 at that many env steps (CleanRL's ``anneal_lr`` with an explicit horizon);
    single-shot ±1 rewards, as in Sivak et al., PRX 12, 011059 (2022), need it to settle the policy.

    ``log_std_final`` (default None: no cap; at most ``log_std_init``) caps the Gaussian head's
    learned log-std (one per action dimension) by a ceiling that decays linearly from ``log_std_init`` to ``log_std_final`` at
    ``log_std_anneal_steps`` env steps (default: ``lr_anneal_steps``) and stays there: after every
    optimiser step the log-std is clamped to the ceiling. Dimensions the policy has already made
    precise stay as learned; the others are forced to explore less as the run goes on, so that the
    mean policy can be tuned more finely than the learned std (which the noise of single-shot
    rewards keeps wide) allows.

    ``ent_coef_final`` (default None: constant ``ent_coef``) moves the entropy coefficient linearly
    from ``ent_coef`` to ``ent_coef_final`` at ``ent_anneal_steps`` env steps (default:
    ``lr_anneal_steps``) and keeps it there: explore broadly first, then settle.

    ``average_start`` (default None: off) makes the deterministic policy (``act``) the running average
    of the actor's parameters over the iterations from that env step on (Polyak–Ruppert averaging,
    Polyak & Juditsky, SIAM J. Control Optim. 30, 838 (1992)), while exploration keeps using the
    current actor. With single-shot ±1 rewards the noisy updates keep the mean policy jittering
    around the optimum; the average cancels that jitter without waiting for the learning rate to
    reach 0.

    ``action_mask=True`` (Discrete actions) never samples an action that the env's
    ``envs.action_mask(obs)`` rules out for that observation (its logit is set to −10⁹ in acting and
    in the update alike), so the policy spends no exploration on moves it can see are useless or
    fatal. ``physrl/QubitErrorCorrection-v0`` with ``obs_mode="pairs"`` provides the mask: no
    measurement of a qubit that carries the logical state.

    ``novelty_coef`` β > 0 (Box observations) adds a count-based exploration bonus β/√n(φ(s')) to every
    step's reward in the update (not to the logged returns), n the visits so far of the SimHash code
    φ (``novelty_bits`` bits) of the observation reached (:mod:`physrl.agents.novelty`; Tang et al.,
    NeurIPS 2017): where the reward gives no gradient towards an unseen kind of state, the bonus does.
    Each rank counts its own visits.
    """

    config_class = DeepPGConfig

    def __init__(self, envs: VectorEnv, seed: int = 0, config: DeepPGConfig | None = None,
                 **hyperparameters: Any) -> None:
        super().__init__(envs, seed)
        hp = self.configure(config, hyperparameters)
        hp.num_steps = self.default_num_steps(hp.num_steps)
        if hp.action_mask:
            self.discrete_actions()
            if not getattr(envs, "masks_actions", False):
                raise ValueError("action_mask=True needs an env that masks actions (masks_actions), such as "
                                 "physrl/QubitErrorCorrection-v0 with obs_mode='pairs'")
        if hp.num_minibatches > hp.num_steps * envs.num_envs:
            raise ValueError(f"num_minibatches must be at most num_steps * num_envs = "
                             f"{hp.num_steps * envs.num_envs}, got {hp.num_minibatches}")
        if hp.log_std_final is not None and not isinstance(envs.single_action_space, spaces.Box):
            raise ValueError(f"log_std_final needs a Box action space (a Gaussian head), got {envs.single_action_space}")
        obs_space = envs.single_observation_space

        def build() -> tuple[nn.Module, nn.Module, nn.Module | None]:
            head = build_head(envs.single_action_space, hp.log_std_init)
            actor = build_network(hp.network, obs_space, head.out_dim, hp.hidden_sizes, out_gain=0.01)
            critic = build_network(hp.network, obs_space, 1, hp.hidden_sizes) if hp.value_baseline else None
            return head, actor, critic

        head, actor, critic = with_seed(self.seed, build)
        self.model = nn.ModuleDict({"head": head, "actor": actor, **({"critic": critic} if critic else {})})
        self.model.to(self.device)
        self.head, self.actor, self.critic = head, actor, critic
        self.average_actor = copy.deepcopy(actor) if hp.average_start is not None else None
        self.averaged = 0  # iterations in the average (``average_start``)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=hp.learning_rate, eps=1e-5)
        self.novelty = None
        if hp.novelty_coef > 0:
            if not isinstance(obs_space, spaces.Box):
                raise ValueError(f"novelty_coef > 0 needs a Box observation space, got {obs_space}")
            self.novelty = SimHashCounts(int(np.prod(obs_space.shape)), hp.novelty_bits, self.seed, self.device)

    def _scheduled(self, start: str, final: str, steps: str) -> float:
        """Hyperparameter ``start`` moved linearly to ``final`` over ``steps`` env steps, at ``global_step``."""
        hp = self.config
        if getattr(hp, final) is None:
            return getattr(hp, start)
        return linear_schedule(getattr(hp, start), getattr(hp, final), getattr(hp, steps), self.global_step)

    def log_std_ceiling(self) -> float:
        """The ceiling of the log-std (``log_std_final`` schedule) at the current ``global_step``."""
        return self._scheduled("log_std_init", "log_std_final", "log_std_anneal_steps")

    def entropy_coefficient(self) -> float:
        """The entropy coefficient (``ent_coef``, or its ``ent_coef_final`` schedule) at the current ``global_step``."""
        return self._scheduled("ent_coef", "ent_coef_final", "ent_anneal_steps")

    def policy_output(self, obs: torch.Tensor, averaged: bool = False) -> torch.Tensor:
        """The actor's output for ``obs`` (the averaged actor's with ``averaged`` once it has begun), with
        the logits of masked actions at −10⁹ (``action_mask``)."""
        out = (self.average_actor if averaged and self.averaged else self.actor)(obs)
        if self.config.action_mask:
            out = out.masked_fill(~self.envs.action_mask(obs), -1e9)
        return out

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        with torch.no_grad():
            out = self.policy_output(obs.to(self.device), averaged=deterministic)
            return self.head.mode(out) if deterministic else self.head.sample(out, self.generator)[0]

    def _explore(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sample actions and keep what the update needs (learning action, log-prob, value)."""
        with torch.no_grad():
            out = self.policy_output(obs)
            env_action, action = self.head.sample(out, self.generator)
            log_p, _ = self.head.log_prob_entropy(out, action)
            extras = {"action": action, "log_prob": log_p}
            if self.critic is not None:
                extras["value"] = self.critic(obs).squeeze(-1)
        return env_action, extras

    def advantages(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(advantages, value targets, mask of steps to learn from), all (T, B)."""
        hp = self.config
        if self.critic is None:
            if hp.reward_to_go:
                zero = torch.zeros_like(batch.rewards)
                returns = gae(batch.rewards, zero, batch.dones, zero[0], hp.gamma, 1.0)
            else:
                returns = whole_episode_returns(batch)
            return returns, returns, batch.valid & batch.complete
        with torch.no_grad():
            last_value = self.critic(batch.last_obs).squeeze(-1)
        values = batch.extras["value"]
        adv = gae(batch.rewards, values, batch.dones, last_value, hp.gamma, hp.gae_lambda)
        return adv, adv + values, batch.valid

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.config
        if hp.lr_anneal_steps is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = linear_schedule(hp.learning_rate, 0.0, hp.lr_anneal_steps, self.global_step)
        ceiling = None if hp.log_std_final is None else self.log_std_ceiling()
        ent_coef = self.entropy_coefficient()
        self._cap_log_std(ceiling)
        batch = self.rollout.collect(hp.num_steps, self._explore)
        self.global_step += batch.rewards.numel() * self.world_size
        if self.novelty is not None:
            steps = batch.rewards.shape
            bonus = self.novelty.bonus(batch.next_obs.reshape(steps.numel(), -1), hp.novelty_coef).view(steps)
            batch = dataclasses.replace(batch, rewards=batch.rewards + bonus)
        adv, targets, mask = self.advantages(batch)
        obs = batch.obs.flatten(0, 1)
        action = batch.extras["action"].flatten(0, 1)
        old_log_p = batch.extras["log_prob"].flatten()
        adv, targets, mask = adv.flatten(), targets.flatten(), mask.flatten()
        n = adv.shape[0]
        size = -(-n // hp.num_minibatches)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(hp.update_epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for start in range(0, n, size):
                index = order[start:start + size]
                losses = self._losses(obs[index], action[index], old_log_p[index], adv[index], targets[index],
                                      mask[index], ent_coef)
                self.optimizer.zero_grad()
                losses["loss"].backward()
                average_gradients(self.model.parameters(), mask[index].sum())
                if hp.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), hp.max_grad_norm)
                self.optimizer.step()
                self._cap_log_std(ceiling)
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value.detach()
        if hp.average_start is not None and self.global_step >= hp.average_start:
            self._update_average()
        updates = hp.update_epochs * -(-n // size)
        logged = {f"losses/{k}": float(v) / updates for k, v in sums.items() if k != "loss"}
        if self.critic is not None:
            explained = explained_variance(batch.extras["value"].flatten(), targets, mask)
            if explained == explained:  # not NaN: the targets varied
                logged["losses/explained_variance"] = explained
        if hp.ent_coef_final is not None:
            logged["charts/ent_coef"] = ent_coef
        if self.novelty is not None:
            logged["charts/novelty_bonus"] = float(bonus.mean())
            logged["charts/novelty_codes_seen"] = int((self.novelty.counts > 0).sum())
        return {**batch.episode_stats(), **logged}

    def _update_average(self) -> None:
        """Add the current actor to the running average of its parameters (``average_start``)."""
        self.averaged += 1
        with torch.no_grad():
            for mean, current in zip(self.average_actor.parameters(), self.actor.parameters()):
                mean += (current - mean) / self.averaged

    def _cap_log_std(self, ceiling: float | None) -> None:
        """Clamp the Gaussian head's log-std to ``ceiling`` (None: leave it)."""
        if ceiling is not None:
            with torch.no_grad():
                self.head.log_std.clamp_(max=ceiling)

    def _losses(self, obs: torch.Tensor, action: torch.Tensor, old_log_p: torch.Tensor, adv: torch.Tensor,
                targets: torch.Tensor, mask: torch.Tensor, ent_coef: float) -> dict[str, torch.Tensor]:
        hp = self.config
        log_p, entropy = self.head.log_prob_entropy(self.policy_output(obs), action)
        if hp.normalize_advantages:
            mean = masked_mean(adv, mask)
            std = masked_mean((adv - mean) ** 2, mask).sqrt()
            adv = (adv - mean) / (std + 1e-8)
        log_ratio = log_p - old_log_p
        ratio = log_ratio.exp()
        surrogate = ratio * adv
        if hp.clip_coef is not None:
            clipped = ratio.clamp(1 - hp.clip_coef, 1 + hp.clip_coef) * adv
            surrogate = torch.minimum(surrogate, clipped)
        # KL(old || new) estimates of Schulman's "Approximating KL divergence" (2020): k1 (old) and k3
        with torch.no_grad():
            out = {"old_approx_kl": masked_mean(-log_ratio, mask), "approx_kl": masked_mean((ratio - 1) - log_ratio, mask)}
            if hp.clip_coef is not None:
                out["clipfrac"] = masked_mean(((ratio - 1).abs() > hp.clip_coef).float(), mask)
        out.update(policy_loss=-masked_mean(surrogate, mask), entropy=masked_mean(entropy, mask))
        loss = out["policy_loss"] - ent_coef * out["entropy"]
        if self.critic is not None:
            out["value_loss"] = 0.5 * masked_mean((self.critic(obs).squeeze(-1) - targets) ** 2, mask)
            loss = loss + hp.vf_coef * out["value_loss"]
        out["loss"] = loss
        return out

    def _state(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.average_actor is not None:
            state.update(average_actor=self.average_actor.state_dict(), averaged=self.averaged)
        if self.novelty is not None:
            state["novelty"] = self.novelty.state_dict()
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.average_actor is not None:
            self.average_actor.load_state_dict(state["average_actor"])
            self.averaged = int(state["averaged"])
        if self.novelty is not None and "novelty" in state:
            self.novelty.load_state_dict(state["novelty"])


def complete_schedule(config: DeepPGConfig, final: str, steps: str) -> int | None:
    """The length ``steps`` of the linear schedule ending at ``final``, which defaults to
    ``lr_anneal_steps``. A clear ValueError names what is missing."""
    final_value, steps_value = getattr(config, final), getattr(config, steps)
    if final_value is None:
        if steps_value is not None:
            raise ValueError(f"{steps}={steps_value} needs {final} (the end of the schedule)")
    elif steps_value is None:
        if config.lr_anneal_steps is None:
            raise ValueError(f"{final}={final_value} needs {steps} or lr_anneal_steps "
                             "(the number of env steps the schedule lasts)")
        return config.lr_anneal_steps
    return steps_value


def explained_variance(values: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(targets − values) / Var(targets) over the masked steps: 1 for a perfect critic, ≤ 0 for
    one no better than a constant (NaN when the targets do not vary)."""
    mean = masked_mean(targets, mask)
    variance = masked_mean((targets - mean) ** 2, mask)
    residual = targets - values
    residual_variance = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    return float(1 - residual_variance / variance) if float(variance) > 0 else float("nan")


def whole_episode_returns(batch: Batch) -> torch.Tensor:
    """(T, B): each step's weight is the return of its whole episode, carried back from the step where it ends."""
    out = torch.zeros_like(batch.rewards)
    following = out[0]
    for t in reversed(range(batch.rewards.shape[0])):
        following = torch.where(batch.dones[t], batch.episode_returns[t], following)
        out[t] = following
    return out

"""The recurrent "student" of Fösel et al., PRX 8, 031084 (2018), §IV: a GRU policy that sees only what
an experiment sees (the last action and the measurement outcomes, ``obs_mode="measurements"``) and
learns by imitating a state-aware "teacher" (a ``deep-pg`` checkpoint trained on ``obs_mode="state"``
or its compact form ``"pairs"``).

Every iteration the teacher acts (greedily, or sampled with ``teacher_sampled=True``) on its view of
the same sub-envs (:meth:`physrl.envs.qec.QubitErrorCorrectionVectorEnv.view` with the teacher's ``obs_mode``), the
student reads their measurement view, and the GRU, unrolled over the batch, is trained by
cross-entropy on the teacher's actions (``update_epochs`` gradient steps per batch of ``num_steps``
steps, the GRU state carried from one batch to the next; the few encoding steps at an episode's
start are rare, and learning them needs many gradient steps per sample; the loss and the accuracy
are logged as ``losses/imitation`` and ``losses/agreement``; ``charts/episodic_return`` is the
teacher's).

Hidden state: the GRU state is reset wherever the observation is all zeros, which the env returns
exactly at an episode's first step. :meth:`QECStudent.act` (used by ``load_policy``) keeps one
hidden state per sub-env of the batch it is called with, so call it once per env step on the same
batch of envs; a batch of another size starts from fresh hidden states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from physrl.agents.base import Agent, with_seed
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.agents.networks import CategoricalHead, init_layer
from physrl.agents.rollout import Batch, gae, masked_mean
from physrl.envs.core import VectorEnv
from physrl.envs.qec import QubitErrorCorrectionVectorEnv
from physrl.envs.validation import check_float, check_int


class RecurrentPolicy(nn.Module):
    """A GRU cell over the observations, then linear layers to the action logits and to a value."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(obs_dim, hidden_size)
        self.out = init_layer(nn.Linear(hidden_size, n_actions), 0.01)
        self.value = init_layer(nn.Linear(hidden_size, 1), 1.0)
        self.hidden_size = hidden_size

    def step(self, obs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, next hidden state) for one step; the hidden state restarts where ``obs`` is all zeros."""
        hidden = hidden * (obs != 0).any(1, keepdim=True)
        hidden = self.cell(obs, hidden)
        return self.out(hidden), hidden

    def unroll(self, obs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (T, B, n_actions) and hidden states (T, B, H) over observations (T, B, obs_dim) from
        ``hidden`` (B, H), and the last hidden state."""
        logits, states = [], []
        for t in range(obs.shape[0]):
            out, hidden = self.step(obs[t], hidden)
            logits.append(out)
            states.append(hidden)
        return torch.stack(logits), torch.stack(states), hidden


@dataclass
class StudentConfig(Hyperparameters):
    """Hyperparameters of :class:`QECStudent` (``qec-student``)."""

    agent = "qec-student"
    teacher: str = param("", "checkpoint file or run folder of the teacher (a policy on obs_mode state or pairs)")
    learning_rate: float = param(3e-3, "Adam step size of imitation, > 0")
    num_steps: int | None = param(50, "steps of every sub-env per batch (None: one episode cycle, horizon + 1)")
    update_epochs: int = param(20, "gradient steps per batch, >= 1")
    hidden_size: int = param(64, "size of the GRU state, >= 1")
    max_grad_norm: float = param(1.0, "gradient norm clip, > 0")
    teacher_sampled: bool = param(False, "the teacher samples; imitate its whole action distribution")
    refine_after: int | None = param(None, "env step from which the student refines itself by policy gradient")
    refine_learning_rate: float = param(1e-4, "Adam step size of the refinement, > 0")
    gamma: float = param(0.995, "discount γ of the refinement, in [0, 1]")
    mask_revealing: bool = param(False, "never measure a qubit that carries the logical X (hadamard=False)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("learning_rate", self.learning_rate, 0.0, low_open=True)
        if self.num_steps is not None:
            check_int("num_steps", self.num_steps, 1)
        check_int("update_epochs", self.update_epochs, 1)
        check_int("hidden_size", self.hidden_size, 1)
        check_float("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        if self.refine_after is not None:
            check_int("refine_after", self.refine_after, 0)
        check_float("refine_learning_rate", self.refine_learning_rate, 0.0, low_open=True)
        check_float("gamma", self.gamma, 0.0, 1.0)


class QECStudent(Agent):
    """GRU student trained by imitation of a teacher checkpoint on ``physrl/QubitErrorCorrection-v0``.

    ``envs`` must use ``obs_mode="measurements"`` (the student's view). The teacher (``teacher``: a
    checkpoint file or run folder of a policy on ``obs_mode="state"`` or ``"pairs"`` with the same
    other options) is loaded by ``physrl train`` and handed over with :meth:`set_teacher` (agents never
    load checkpoints), so that loading a trained student needs no teacher.
    ``teacher_sampled=True`` (a ``deep-pg`` teacher) lets the teacher act by sampling and trains the
    student on the teacher's whole action distribution (cross-entropy with its probabilities, i.e.
    policy distillation) instead of its greedy actions, for a teacher whose strength lies in its
    stochastic policy; evaluate such a student sampled too.

    ``refine_after`` (default None: imitation only) switches to policy-gradient refinement after that
    many env steps: the student then acts itself (sampled) and takes one advantage actor-critic step
    per batch on the env's reward (GAE(λ = 0.95) with discount ``gamma``, a value head on the GRU
    state, learning rate ``refine_learning_rate``), so that what imitation left to chance (a rare
    revealing measurement, which costs the whole recoverable information and ends the episode) is trained away. With
    ``refine_after`` set, the imitation phase also fits the value head to the teacher's returns, so
    that the critic starts warm.

    ``mask_revealing=True`` (``hadamard=False``) never lets the student choose a measurement of a qubit
    that carries the logical X. Which qubits those are depends only on the gates applied (v ↦ M⁻¹v ⊕ M⁻¹0
    under each gate, see :func:`~physrl.envs.kernels.qubit_pairs.pair_permutation`), so the student tracks
    it in software from its own actions, as an experiment knows its own circuit; it is the same rule
    as the teacher's ``action_mask``, which imitation alone only makes rare.
    """

    config_class = StudentConfig

    def __init__(self, envs: VectorEnv, seed: int = 0, config: StudentConfig | None = None,
                 **hyperparameters: Any) -> None:
        super().__init__(envs, seed)
        config = self.configure(config, hyperparameters)
        if not isinstance(envs, QubitErrorCorrectionVectorEnv) or envs.options["obs_mode"] != "measurements":
            raise ValueError("qec-student needs physrl/QubitErrorCorrection-v0 with obs_mode='measurements' "
                             "(its own view); the teacher sees the same envs' state view")
        if config.mask_revealing and envs.options["hadamard"]:
            raise ValueError("mask_revealing=True tracks the pair form's v, so it needs hadamard=False")
        config.num_steps = self.default_num_steps(config.num_steps)
        hidden_size = config.hidden_size
        n_actions = self.discrete_actions()
        obs_dim = int(envs.single_observation_space.shape[0])
        self.model = with_seed(self.seed, lambda: RecurrentPolicy(obs_dim, n_actions, hidden_size)).to(self.device)
        self.head = CategoricalHead(n_actions)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.hidden = torch.zeros(envs.num_envs, hidden_size, device=self.device)
        self._act_hidden = torch.zeros(0, hidden_size, device=self.device)
        self._teacher: Any = None
        self._teacher_view = ""
        self._value_scale = max(1.0 - config.gamma, 1e-3)
        self.shift = torch.full((envs.num_envs,), 0 if envs.options["hadamard"] else envs.initial_shift,
                                dtype=torch.int64, device=self.device)
        self._act_shift = self.shift[:0]

    def needs_teacher(self) -> bool:
        """Whether imitation lies ahead (before ``refine_after`` env steps), so that a teacher is needed."""
        refine_after = self.config.refine_after
        return refine_after is None or self.global_step < refine_after

    def check_ready(self) -> None:
        """Refuse to start a run that will imitate without a teacher (see :meth:`set_teacher`)."""
        if self.needs_teacher():
            self.teacher_policy()

    def teacher_spaces(self, view: str) -> dict[str, spaces.Space]:
        """The observation and action spaces a teacher on ``view`` (its ``obs_mode``) of these envs must have;
        a ``ValueError`` for a view without the state (a teacher needs ``"state"``, ``"pairs"`` or ``"pauli"``)."""
        if view not in ("state", "pairs", "pauli"):
            raise ValueError(f"the teacher was trained on obs_mode={view!r}; a teacher needs "
                             "obs_mode='state', 'pairs' or 'pauli'")
        return {"observation_space": spaces.Box(-1.0, 1.0, (self.envs.view(view).shape[1],), np.float32),
                "action_space": self.envs.single_action_space}

    def set_teacher(self, teacher: Any, view: str) -> None:
        """Hand the student its teacher, which acts on ``view`` (``"state"``, ``"pairs"`` or ``"pauli"``) of the same envs:
        a greedy policy (a batch of observations of that view -> actions), or with ``teacher_sampled`` an
        agent with ``policy_output`` (a ``deep-pg`` agent), whose action probabilities the student learns.
        ``physrl train`` loads the checkpoint named by ``teacher`` and calls this
        (:func:`physrl.training.teacher.attach_teacher`)."""
        self.teacher_spaces(view)
        if self.config.teacher_sampled and not callable(getattr(teacher, "policy_output", None)):
            raise ValueError("teacher_sampled=True needs a teacher with action probabilities (a deep-pg agent)")
        self._teacher, self._teacher_view = teacher, view

    def teacher_policy(self) -> Any:
        """The teacher handed over by :meth:`set_teacher` (a ``ValueError`` if there is none)."""
        if self._teacher is None:
            raise ValueError("qec-student needs a teacher checkpoint: --set teacher=PATH (a deep-pg run on "
                             "obs_mode='state' or 'pairs')")
        return self._teacher

    def _follow_teacher(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The teacher's action on its view of the same sub-envs (``obs`` is the student's view); sampled,
        with the teacher's probabilities as extras, when ``teacher_sampled``."""
        teacher = self.teacher_policy()
        view = self.envs.view(self._teacher_view)
        if not self.config.teacher_sampled:
            return teacher(view), {}
        with torch.no_grad():
            probabilities = torch.softmax(teacher.policy_output(view), dim=-1)
        action = torch.multinomial(probabilities, 1, generator=self.generator).squeeze(1)
        return action, {"teacher_probabilities": probabilities}

    def _explore(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The student's own sampled action (refinement), carrying the GRU state of every sub-env."""
        with torch.no_grad():
            logits, self.hidden = self.model.step(obs, self.hidden)
            logits, shift = self._mask_step(logits, obs, self.shift)
            action = self.head.sample(logits, self.generator)[0]
            self.shift = self._shift_after(action, shift)
            return action, {}

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.config
        if hp.refine_after is not None and self.global_step >= hp.refine_after:
            return self._refine()
        batch = self.rollout.collect(hp.num_steps, self._follow_teacher)
        self.global_step += batch.rewards.numel()
        for _ in range(hp.update_epochs):
            logits, states, last = self.model.unroll(batch.obs, self.hidden)
            logits, shift = self._masked(logits, batch.obs, batch.actions, self.shift)
            if "teacher_probabilities" in batch.extras:  # distillation: cross-entropy with the teacher's policy
                log_q = torch.log_softmax(logits, dim=-1)
                loss = -masked_mean((batch.extras["teacher_probabilities"] * log_q).sum(-1), batch.valid)
            else:
                log_p, _ = self.head.log_prob_entropy(logits, batch.actions)
                loss = -masked_mean(log_p, batch.valid)
            if hp.refine_after is not None:  # warm up the critic on the teacher's returns
                values = self._values(states)
                _, targets = self._advantages(batch, values, last)
                loss = loss + self._value_loss(values, targets, batch.valid)
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), hp.max_grad_norm)
            self.optimizer.step()
        self.hidden = last.detach()
        self.shift = shift
        agreement = masked_mean((logits.argmax(-1) == batch.actions).float(), batch.valid)
        return {**batch.episode_stats(), "losses/imitation": float(loss.detach()), "losses/agreement": float(agreement)}

    def _mask_step(self, logits: torch.Tensor, obs: torch.Tensor, shift: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, A) with revealing measurements at −10⁹ (``mask_revealing``; else as they are) and the
        tracked v (B,), restarted where ``obs`` begins an episode (all zeros)."""
        if not self.config.mask_revealing:
            return logits, shift
        shift = torch.where((obs != 0).any(1), shift, self.envs.initial_shift)
        return logits.masked_fill(self.envs.revealing(shift), -1e9), shift

    def _shift_after(self, actions: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The tracked v after ``actions`` (unchanged without ``mask_revealing``)."""
        return self.envs.shift_after(actions, shift) if self.config.mask_revealing else shift

    def _masked(self, logits: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor,
                shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_mask_step` along a batch: logits (T, B, A), observations (T, B, ·), ``actions`` (T, B) from
        v = ``shift`` (B,); the masked logits and the v after the last action."""
        if not self.config.mask_revealing:
            return logits, shift
        out = []
        for t in range(obs.shape[0]):
            masked, shift = self._mask_step(logits[t], obs[t], shift)
            out.append(masked)
            shift = self._shift_after(actions[t], shift)
        return torch.stack(out), shift

    def _values(self, states: torch.Tensor) -> torch.Tensor:
        """V from GRU states: a linear read-out of the policy's features (no gradient into the GRU, so the
        critic never disturbs the imitated policy) that predicts V·(1 − γ), a number of order one."""
        return self.model.value(states.detach()).squeeze(-1) / self._value_scale

    def _value_loss(self, values: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return 0.5 * masked_mean(((values - targets) * self._value_scale) ** 2, valid)

    def _advantages(self, batch: Batch, values: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE(0.95) advantages and value targets (T, B) of a batch, bootstrapped from the GRU state ``last``
        after it (no gradient)."""
        with torch.no_grad():
            _, following = self.model.step(batch.last_obs, last)
            last_value = self._values(following)
            advantages = gae(batch.rewards, values.detach(), batch.dones, last_value,
                             self.config.gamma, 0.95)
        return advantages, advantages + values.detach()

    def _refine(self) -> dict[str, Any]:
        """One advantage actor-critic step on a batch of the student's own sampled actions."""
        hp = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = hp.refine_learning_rate
        start, start_shift = self.hidden, self.shift
        batch = self.rollout.collect(hp.num_steps, self._explore)
        self.global_step += batch.rewards.numel()
        logits, states, last = self.model.unroll(batch.obs, start)
        logits, _ = self._masked(logits, batch.obs, batch.actions, start_shift)
        values = self._values(states)
        advantages, targets = self._advantages(batch, values, last)
        with torch.no_grad():
            mean = masked_mean(advantages, batch.valid)
            advantages = (advantages - mean) / (masked_mean((advantages - mean) ** 2, batch.valid).sqrt() + 1e-8)
        log_p, entropy = self.head.log_prob_entropy(logits, batch.actions)
        policy_loss = -masked_mean(advantages * log_p, batch.valid)
        value_loss = self._value_loss(values, targets, batch.valid)
        self.optimizer.zero_grad()
        (policy_loss + value_loss).backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), hp.max_grad_norm)
        self.optimizer.step()
        return {**batch.episode_stats(), "losses/policy_loss": float(policy_loss.detach()),
                "losses/value_loss": float(value_loss.detach()),
                "losses/entropy": float(masked_mean(entropy.detach(), batch.valid))}

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions for one step of a batch of sub-envs, carrying each sub-env's hidden state to the next call."""
        obs = obs.to(self.device, torch.float32)
        if self._act_hidden.shape[0] != obs.shape[0]:
            self._act_hidden = torch.zeros(obs.shape[0], self.model.hidden_size, device=self.device)
            self._act_shift = torch.zeros(obs.shape[0], dtype=torch.int64, device=self.device)
        with torch.no_grad():
            logits, self._act_hidden = self.model.step(obs, self._act_hidden)
            logits, shift = self._mask_step(logits, obs, self._act_shift)
            action = self.head.mode(logits) if deterministic else self.head.sample(logits, self.generator)[0]
            self._act_shift = self._shift_after(action, shift)
            return action

    def _state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "hidden": self.hidden,
                "shift": self.shift}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["hidden"].shape == self.hidden.shape:
            self.hidden = state["hidden"].to(self.device)
            self.shift = state["shift"].to(self.device)

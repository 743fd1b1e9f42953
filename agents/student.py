"""The recurrent "student" of Fösel et al., PRX 8, 031084 (2018), §IV: a GRU policy that sees only what
an experiment sees (the last action and the measurement outcomes, ``obs_mode="measurements"``) and
learns by imitating a state-aware "teacher" (a ``deep-pg`` checkpoint trained on ``obs_mode="state"``
or its compact form ``"pairs"``).

Every iteration the teacher acts (greedily, or sampled with ``teacher_sampled=True``) on its view of
the same sub-envs (:meth:`physrl.envs.qec.QubitCore.view` with the teacher's ``obs_mode``), the
student reads their measurement view, and the GRU, unrolled over the batch, is trained by
cross-entropy on the teacher's actions (``update_epochs`` gradient steps per batch of ``num_steps``
steps, the GRU state carried from one batch to the next; the few encoding steps at an episode's start are rare, and learning them needs many
gradient steps per sample; the loss and the accuracy are logged as
``losses/imitation`` and ``losses/agreement``; ``charts/episodic_return`` is the teacher's).

Hidden state: the GRU state is reset wherever the observation is all zeros, which the env returns
exactly at an episode's first step. :meth:`QECStudent.act` (used by ``load_policy``) keeps one
hidden state per sub-env of the batch it is called with, so call it once per env step on the same
batch of envs; a batch of another size starts from fresh hidden states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from physrl.agents.base import Agent, check_float, check_int, with_seed
from physrl.agents.networks import CategoricalHead, init_layer
from physrl.agents.rollout import masked_mean
from physrl.envs.core import VectorEnv
from physrl.envs.qec import QubitCore


class RecurrentPolicy(nn.Module):
    """A GRU cell over the observations, then a linear layer to the action logits."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(obs_dim, hidden_size)
        self.out = init_layer(nn.Linear(hidden_size, n_actions), 0.01)
        self.hidden_size = hidden_size

    def step(self, obs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, next hidden state) for one step; the hidden state restarts where ``obs`` is all zeros."""
        hidden = hidden * (obs != 0).any(1, keepdim=True)
        hidden = self.cell(obs, hidden)
        return self.out(hidden), hidden

    def unroll(self, obs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (T, B, n_actions) over observations (T, B, obs_dim) from ``hidden`` (B, H), and the last hidden state."""
        logits = []
        for t in range(obs.shape[0]):
            out, hidden = self.step(obs[t], hidden)
            logits.append(out)
        return torch.stack(logits), hidden


class QECStudent(Agent):
    """GRU student trained by imitation of a teacher checkpoint on ``physrl/QubitErrorCorrection-v0``.

    ``envs`` must use ``obs_mode="measurements"`` (the student's view); the teacher (``teacher``: a
    checkpoint file or run folder of a policy on ``obs_mode="state"`` or ``"pairs"`` with the same
    other options)
    is loaded at the first :meth:`learn_iteration`, so that loading a trained student needs no teacher.
    ``teacher_sampled=True`` imitates the teacher's sampled actions instead of its greedy ones (for a
    teacher whose strength lies in its stochastic policy); evaluate such a student sampled too.
    """

    def __init__(self, envs: VectorEnv, seed: int = 0, teacher: str = "", learning_rate: float = 3e-3,
                 num_steps: int | None = 50, update_epochs: int = 20, hidden_size: int = 64,
                 max_grad_norm: float = 1.0, teacher_sampled: bool = False) -> None:
        super().__init__(envs, seed)
        core = getattr(envs, "core", None)
        if not isinstance(core, QubitCore) or core.obs_mode != "measurements":
            raise ValueError("qec-student needs physrl/QubitErrorCorrection-v0 with obs_mode='measurements' "
                             "(its own view); the teacher sees the same envs' state view")
        if not isinstance(teacher, str):
            raise TypeError(f"teacher must be the path of a checkpoint (str), got {teacher!r}")
        if not isinstance(teacher_sampled, bool):
            raise TypeError(f"teacher_sampled must be a bool, got {teacher_sampled!r}")
        self.hyperparameters = {
            "teacher": teacher,
            "learning_rate": check_float("learning_rate", learning_rate, 0.0, low_open=True),
            "num_steps": self.default_num_steps(num_steps),
            "update_epochs": check_int("update_epochs", update_epochs, 1),
            "hidden_size": check_int("hidden_size", hidden_size, 1),
            "max_grad_norm": check_float("max_grad_norm", max_grad_norm, 0.0, low_open=True),
            "teacher_sampled": teacher_sampled,
        }
        n_actions = self.discrete_actions()
        obs_dim = int(envs.single_observation_space.shape[0])
        self.model = with_seed(self.seed, lambda: RecurrentPolicy(obs_dim, n_actions, hidden_size)).to(self.device)
        self.head = CategoricalHead(n_actions)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hyperparameters["learning_rate"])
        self.hidden = torch.zeros(envs.num_envs, hidden_size, device=self.device)
        self._act_hidden = torch.zeros(0, hidden_size, device=self.device)
        self._teacher: Any = None
        self._teacher_view = ""

    def teacher_policy(self) -> Any:
        """The teacher as a :class:`physrl.training.checkpoint.Policy` on its own view, greedy unless
        ``teacher_sampled`` (loaded once)."""
        if self._teacher is None:
            from physrl.training.checkpoint import load_checkpoint, load_policy

            path = self.hyperparameters["teacher"]
            if not path:
                raise ValueError("qec-student needs a teacher checkpoint: --set teacher=PATH (a deep-pg run on "
                                 "obs_mode='state' or 'pairs')")
            env_id = "physrl/QubitErrorCorrection-v0"
            view = load_checkpoint(path, env_id)["config"].get("env_kwargs", {}).get("obs_mode", "measurements")
            if view not in ("state", "pairs"):
                raise ValueError(f"the teacher {path!r} was trained on obs_mode={view!r}; a teacher needs "
                                 "obs_mode='state' or 'pairs'")
            core = self.envs.core
            size = core.view(view).shape[1]
            self._teacher = load_policy(path, self.device, env_id=env_id,
                                        deterministic=not self.hyperparameters["teacher_sampled"],
                                        observation_space=spaces.Box(-1.0, 1.0, (size,), np.float32),
                                        action_space=self.envs.single_action_space)
            self._teacher_view = view
        return self._teacher

    def _follow_teacher(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The teacher's action on its view of the same sub-envs (``obs`` is the student's view)."""
        teacher = self.teacher_policy()
        return teacher(self.envs.core.view(self._teacher_view)), {}

    def learn_iteration(self) -> dict[str, Any]:
        hp = self.hyperparameters
        batch = self.rollout.collect(hp["num_steps"], self._follow_teacher)
        self.global_step += batch.rewards.numel()
        for _ in range(hp["update_epochs"]):
            logits, last = self.model.unroll(batch.obs, self.hidden)
            log_p, _ = self.head.log_prob_entropy(logits, batch.actions)
            loss = -masked_mean(log_p, batch.valid)
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), hp["max_grad_norm"])
            self.optimizer.step()
        self.hidden = last.detach()
        agreement = masked_mean((logits.argmax(-1) == batch.actions).float(), batch.valid)
        return {**batch.episode_stats(), "losses/imitation": float(loss.detach()), "losses/agreement": float(agreement)}

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions for one step of a batch of sub-envs, carrying each sub-env's hidden state to the next call."""
        obs = obs.to(self.device, torch.float32)
        if self._act_hidden.shape[0] != obs.shape[0]:
            self._act_hidden = torch.zeros(obs.shape[0], self.model.hidden_size, device=self.device)
        with torch.no_grad():
            logits, self._act_hidden = self.model.step(obs, self._act_hidden)
            return self.head.mode(logits) if deterministic else self.head.sample(logits, self.generator)[0]

    def _state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "hidden": self.hidden}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["hidden"].shape == self.hidden.shape:
            self.hidden = state["hidden"].to(self.device)

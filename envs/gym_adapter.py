"""A torch vector face over Gymnasium's own vectorisation, so that our agents train on any registered
Gymnasium env (``CartPole-v1``, ``Acrobot-v1``, ``Pendulum-v1``, ...), not only on the physrl cores.

:func:`make_torch_vec` is what ``physrl train`` calls: the physrl vector face for ``physrl/`` ids, else
:class:`GymnasiumVectorEnv` around ``gym.make_vec(id, vectorization_mode="sync")``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from physrl.envs import ENVIRONMENTS


def env_options(env_id: str) -> list[str]:
    """The options (keyword arguments) a physrl env accepts: its core's, and ``render_mode``."""
    module, _, vector, _ = ENVIRONMENTS[env_id]
    core_class = getattr(importlib.import_module(f"physrl.envs.{module}"), vector).core_class
    return sorted([name for name in inspect.signature(core_class).parameters if name not in ("num_envs", "device")]
                  + ["render_mode"])


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """A ValueError naming the allowed options when ``kwargs`` holds one that physrl env ``env_id`` lacks."""
    if env_id not in ENVIRONMENTS:
        return
    allowed = env_options(env_id)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {env_id}; allowed: {allowed}")


def make_torch_vec(env_id: str, num_envs: int, device: torch.device | str = "cpu",
                   **kwargs: Any) -> gym.vector.VectorEnv:
    """``num_envs`` sub-envs of ``env_id`` as a torch vector env on ``device`` with next-step autoreset:
    the physrl vector face for our ids, :class:`GymnasiumVectorEnv` for every other registered env."""
    if env_id not in gym.registry:
        physrl_ids = sorted(ENVIRONMENTS)
        raise ValueError(f"env_id must be a registered Gymnasium env such as {physrl_ids} or 'CartPole-v1', "
                         f"got {env_id!r}")
    if env_id in ENVIRONMENTS:
        check_env_kwargs(env_id, kwargs)
        return gym.make_vec(env_id, num_envs=num_envs, device=device, **kwargs)
    return GymnasiumVectorEnv(env_id, num_envs, device, **kwargs)


def _check_space(what: str, space: spaces.Space, env_id: str) -> None:
    if not isinstance(space, (spaces.Discrete, spaces.Box)):
        raise ValueError(f"{env_id} has a {type(space).__name__} {what} space ({space}); physrl agents take "
                         f"Discrete or Box spaces (Gymnasium's FlattenObservation wrapper flattens a Dict or Tuple "
                         f"observation)")


class GymnasiumVectorEnv(gym.vector.VectorEnv):
    """``gym.make_vec(env_id, num_envs, vectorization_mode="sync")`` with torch tensors in and out.

    Observations come as float32 (Box) or int64 (Discrete) tensors on ``device``, rewards as float32,
    the flags as bool tensors; actions may be tensors on any device. Autoreset is Gymnasium's
    NEXT_STEP mode, as on the physrl faces. ``max_steps`` is the registered time limit
    (``max_episode_steps``, None for envs without one). The envs' own state cannot be saved, so a run
    resumed from a checkpoint starts fresh episodes (:meth:`state_dict` says ``exact: False``).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, env_id: str, num_envs: int = 1, device: torch.device | str = "cpu", **kwargs: Any) -> None:
        try:
            self.envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                                     vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP}, **kwargs)
        except TypeError as error:
            raise TypeError(f"env options {sorted(kwargs)} are not accepted by {env_id}: {error}") from None
        _check_space("observation", self.envs.single_observation_space, env_id)
        _check_space("action", self.envs.single_action_space, env_id)
        self.env_id = env_id
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.max_steps = kwargs.get("max_episode_steps", gym.spec(env_id).max_episode_steps)
        self.single_observation_space = self.envs.single_observation_space
        self.single_action_space = self.envs.single_action_space
        self.observation_space = self.envs.observation_space
        self.action_space = self.envs.action_space
        self.render_mode = self.envs.render_mode

    def _observations(self, observations: np.ndarray) -> torch.Tensor:
        dtype = torch.int64 if isinstance(self.single_observation_space, spaces.Discrete) else torch.float32
        return torch.as_tensor(np.asarray(observations), dtype=dtype, device=self.device)

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict | None = None) -> tuple[torch.Tensor, dict]:
        if options and "reset_mask" in options:
            options = {**options, "reset_mask": torch.as_tensor(options["reset_mask"]).cpu().numpy()}
        observations, infos = self.envs.reset(seed=seed, options=options)
        return self._observations(observations), infos

    def step(self, actions: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        actions = torch.as_tensor(actions).detach().cpu().numpy()
        if isinstance(self.single_action_space, spaces.Discrete):
            actions = actions.astype(np.int64)
        else:
            actions = actions.astype(self.single_action_space.dtype)
        observations, rewards, terminated, truncated, infos = self.envs.step(actions)
        return (self._observations(observations),
                torch.as_tensor(np.asarray(rewards), dtype=torch.float32, device=self.device),
                torch.as_tensor(np.asarray(terminated), dtype=torch.bool, device=self.device),
                torch.as_tensor(np.asarray(truncated), dtype=torch.bool, device=self.device), infos)

    def render(self) -> Any:
        return self.envs.render()

    def close_extras(self, **kwargs: Any) -> None:
        self.envs.close()

    def state_dict(self) -> dict[str, Any]:
        """No env state can be saved: ``exact: False`` tells a resumed rollout to start fresh episodes."""
        return {"num_envs": self.num_envs, "exact": False}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_envs"] != self.num_envs:
            raise ValueError(f"state is for num_envs={state['num_envs']}, this env has num_envs={self.num_envs}")

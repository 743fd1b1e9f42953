"""Stable-Baselines3 references (``sb3-ppo``, ``sb3-a2c``, ``sb3-dqn``) on physrl's vector face.

:class:`SB3VecEnv` adapts a physrl vector env (torch tensors, autoreset on the *next* step) to SB3's
``VecEnv`` API (numpy arrays, autoreset in the *same* step, the last observation of a finished episode
in ``infos[i]["terminal_observation"]``). Image observations (C, M, M) in [0, 1] go through
:class:`SmallCNN`: SB3's NatureCNN is built for 84×84 uint8 frames and cannot take a 7×7 or 15×15 maze,
and flattening would throw away the grid's locality. Checkpoints keep only tensors (the policy's and
optimizer's state dicts), never SB3's pickled zip; a policy is loaded by rebuilding it from the config.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"sb3-ppo": PPO, "sb3-a2c": A2C, "sb3-dqn": DQN}

#: our defaults where SB3's own do not suit many small parallel envs; every other constructor argument
#: with a plain default is a hyperparameter too (see :func:`default_hyperparameters`)
TUNED_DEFAULTS: dict[str, dict[str, Any]] = {
    "sb3-ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 2.5e-4, "ent_coef": 0.01},
    "sb3-a2c": {"ent_coef": 0.01},
    "sb3-dqn": {"buffer_size": 100_000, "learning_starts": 1000, "target_update_interval": 1000,
                "exploration_fraction": 0.2, "max_grad_norm": 10.0},
}
#: The policy's shape (hidden layers after the features extractor, and SmallCNN's output size for image observations).
POLICY_DEFAULTS: dict[str, Any] = {"net_arch": [64, 64], "features_dim": 128}
#: constructor arguments that are not hyperparameters (set by the trainer, or not JSON values)
NOT_HYPERPARAMETERS = {"policy", "env", "seed", "device", "verbose", "tensorboard_log", "policy_kwargs",
                       "_init_setup_model", "stats_window_size", "rollout_buffer_class", "rollout_buffer_kwargs",
                       "replay_buffer_class", "replay_buffer_kwargs", "action_noise"}


def default_hyperparameters(agent: str) -> dict[str, Any]:
    """All hyperparameters of an ``sb3-*`` agent with their defaults."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(ALGORITHMS[agent]).parameters.items()
                if name not in NOT_HYPERPARAMETERS
                and isinstance(parameter.default, (bool, int, float, str, type(None)))}
    return {**defaults, **TUNED_DEFAULTS[agent], **POLICY_DEFAULTS}


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over a physrl vector face: numpy in and out, same-step autoreset.

    When sub-env ``i`` finishes, ``step_wait`` returns ``done[i] = True``, the first observation of its
    next episode, and the last observation of the finished one in ``infos[i]["terminal_observation"]``;
    ``infos[i]["TimeLimit.truncated"]`` tells truncation from termination, as SB3's DummyVecEnv does.
    The finished sub-envs are restarted at once (their next episode is the one the vector face would
    have started on the next step), so no action is ever spent on a reset step.
    """

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        self.envs = envs
        self._actions: torch.Tensor | None = None
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    def reset(self) -> np.ndarray:
        seeds = None if self._seeds[0] is None else [int(seed) for seed in self._seeds]
        observations, _ = self.envs.reset(seed=seeds)
        self._reset_seeds()
        return self._numpy(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(actions, device=self.envs.device)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        observations, rewards, terminated, truncated, info = self.envs.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in info.items():
            if not key.startswith("_"):
                for i in info["_" + key].nonzero().flatten().tolist():
                    infos[i][key] = value[i].item() if value[i].dim() == 0 else value[i].cpu().numpy()
        finished = done.nonzero().flatten().tolist()
        if finished:
            last = self._numpy(observations)
            observations, _ = self.envs.reset(options={"reset_mask": done})
            for i, timeout in zip(finished, (truncated & ~terminated)[done].tolist()):
                infos[i]["terminal_observation"] = last[i]
                infos[i]["TimeLimit.truncated"] = timeout
        return (self._numpy(observations), rewards.cpu().numpy().astype(np.float32), done.cpu().numpy(), infos)

    def _numpy(self, observations: torch.Tensor) -> np.ndarray:
        return observations.cpu().numpy().astype(self.observation_space.dtype, copy=False)

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.envs, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise NotImplementedError("SB3VecEnv: the sub-envs of a physrl vector face share one batched core; "
                                  "set attributes on the vector env itself")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        raise NotImplementedError("SB3VecEnv: the sub-envs of a physrl vector face share one batched core; "
                                  "call methods on the vector env itself")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class SmallCNN(BaseFeaturesExtractor):
    """Two 3×3 convolutions (16 and 32 channels, padding 1, ReLU) and a linear layer to ``features_dim``.

    Sized for small grid images such as the maze's (3, M, M) walls/chests/robot planes.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128) -> None:
        super().__init__(observation_space, features_dim)
        channels, height, width = observation_space.shape
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 16, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(32 * height * width, features_dim), torch.nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


def _split(hyperparameters: dict[str, Any], observation_space: spaces.Space) -> tuple[dict[str, Any], dict[str, Any]]:
    """(algorithm kwargs, policy kwargs) from our flat hyperparameter dict."""
    kwargs = {key: value for key, value in hyperparameters.items() if key not in POLICY_DEFAULTS}
    policy_kwargs: dict[str, Any] = {"net_arch": list(hyperparameters["net_arch"])}
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
        policy_kwargs.update(features_extractor_class=SmallCNN,
                             features_extractor_kwargs={"features_dim": int(hyperparameters["features_dim"])})
    return kwargs, policy_kwargs


def make_model(agent: str, envs: gym.vector.VectorEnv, hyperparameters: dict[str, Any], seed: int,
               device: torch.device | str) -> BaseAlgorithm:
    """An SB3 model training on ``envs`` through :class:`SB3VecEnv` (with SB3's VecMonitor for episode stats)."""
    kwargs, policy_kwargs = _split(hyperparameters, envs.single_observation_space)
    try:
        return ALGORITHMS[agent]("MlpPolicy", VecMonitor(SB3VecEnv(envs)), seed=seed, device=device,
                                 policy_kwargs=policy_kwargs, **kwargs)
    except AssertionError as error:  # SB3 checks its hyperparameters with assert statements
        raise ValueError(f"{agent} refused its hyperparameters: {error}") from None


def model_state(model: BaseAlgorithm) -> dict[str, Any]:
    """Tensors and plain values only: policy and optimizer state, and DQN's update counter."""
    return {"policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict(),
            "n_calls": int(getattr(model, "_n_calls", 0))}


def load_model_state(model: BaseAlgorithm, state: dict[str, Any], global_step: int) -> None:
    """Restore :func:`model_state` and the step count (the replay buffer of ``sb3-dqn`` starts empty)."""
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    if hasattr(model, "_n_calls"):
        model._n_calls = state["n_calls"]
    model.num_timesteps = global_step


def load_policy_state(agent: str, envs: gym.vector.VectorEnv, hyperparameters: dict[str, Any], state: dict[str, Any],
                      device: torch.device, deterministic: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Rebuild the SB3 policy of a checkpoint and return observations -> actions (torch, same device)."""
    kwargs, policy_kwargs = _split(hyperparameters, envs.single_observation_space)
    algorithm = ALGORITHMS[agent]
    if issubclass(algorithm, (PPO, A2C)):
        policy_kwargs["use_sde"] = kwargs["use_sde"]
    policy = algorithm.policy_aliases["MlpPolicy"](envs.single_observation_space, envs.single_action_space,
                                                   lambda _: 0.0, **policy_kwargs)
    policy.load_state_dict(state["policy"])
    policy.to(device).set_training_mode(False)

    def act(observations: torch.Tensor) -> torch.Tensor:
        actions, _ = policy.predict(observations.cpu().numpy(), deterministic=deterministic)
        return torch.as_tensor(actions, device=observations.device)
    return act


class _LossForwarder(KVWriter):
    """Forwards SB3's ``train/<name>`` values to TensorBoard as ``losses/<name>``."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        for key, value in key_values.items():
            if key.startswith("train/") and isinstance(value, (int, float, np.number)):
                self.writer.add_scalar("losses/" + key[len("train/"):], float(value), step)

    def close(self) -> None:
        """The writer belongs to the run, which closes it."""


class _RunCallback(BaseCallback):
    """Collects finished episodes, reports them to the run log after each rollout, and stops on request."""

    def __init__(self, log: Callable[[int, dict[str, Any]], None], should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self._log, self._should_stop = log, should_stop
        self._returns: list[float] = []
        self._lengths: list[int] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self._returns.append(float(info["episode"]["r"]))
                self._lengths.append(int(info["episode"]["l"]))
        return not self._should_stop()

    def _on_rollout_end(self) -> None:
        self._log(self.num_timesteps, {"episodic_return": self._returns, "episodic_length": self._lengths})
        self._returns, self._lengths = [], []


def learn(model: BaseAlgorithm, total_steps: int, writer: Any, log: Callable[[int, dict[str, Any]], None],
          should_stop: Callable[[], bool]) -> None:
    """Train ``model`` up to ``total_steps`` env steps (from ``model.num_timesteps``), logging to ``writer``/``log``."""
    model.set_logger(Logger(folder=None, output_formats=[_LossForwarder(writer)]))
    remaining = total_steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=_RunCallback(log, should_stop), log_interval=1, reset_num_timesteps=False)


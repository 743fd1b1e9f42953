"""Stable-Baselines3 references (``sb3-ppo``, ``sb3-a2c``, ``sb3-dqn``) as agents on physrl's vector face.

:class:`SB3Agent` puts an SB3 algorithm behind our agent contract (``learn_iteration``, ``act``,
``state_dict``), so ``physrl train``, checkpoints and ``load_policy`` treat it like our agents. It lives
with the agents because it is one (it reads only the vector face and never imports training);
stable-baselines3 is a dependency of physrl. :class:`SB3VecEnv` adapts a physrl vector env (torch
tensors, autoreset on the *next* step) to SB3's ``VecEnv`` API (numpy arrays, autoreset in the *same*
step, the last observation of a finished episode in ``infos[i]["terminal_observation"]``). Image
observations (C, M, M) in [0, 1] go through :class:`SmallCNN`: SB3's NatureCNN is built for 84×84 uint8
frames and cannot take a 7×7 or 15×15 maze, and flattening would throw away the grid's locality.
Checkpoints keep only tensors (the policy's and optimizer's state dicts), never SB3's pickled zip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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

from physrl.agents.base import Agent
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.envs.rng import MAX_SEED
from physrl.envs.validation import check_int


@dataclass
class SB3Config(Hyperparameters):
    """The policy's shape, shared by the ``sb3-*`` agents; each adds its algorithm's constructor
    arguments (SB3 checks their values itself, and :class:`SB3Agent` turns its refusals into ``ValueError``)."""

    net_arch: list[int] = param([64, 64], "hidden layers after the features extractor")
    features_dim: int = param(128, "output size of SmallCNN, the features extractor of image observations")


@dataclass
class PPOConfig(SB3Config):
    """Hyperparameters of ``sb3-ppo``: SB3's PPO, with our defaults where SB3's suit one env rather than
    many small ones (n_steps, batch_size, n_epochs, learning_rate, ent_coef)."""

    agent = "sb3-ppo"
    learning_rate: float = param(2.5e-4, "Adam step size")
    n_steps: int = param(128, "steps of every sub-env per rollout")
    batch_size: int = param(256, "minibatch size")
    n_epochs: int = param(4, "passes over each rollout")
    gamma: float = param(0.99, "discount γ")
    gae_lambda: float = param(0.95, "λ of GAE(λ)")
    clip_range: float = param(0.2, "PPO's clipping ε")
    clip_range_vf: float | None = param(None, "clipping of the value function (None: none)")
    normalize_advantage: bool = param(True, "normalise the advantages")
    ent_coef: float = param(0.01, "weight of the entropy bonus")
    vf_coef: float = param(0.5, "weight of the value loss")
    max_grad_norm: float = param(0.5, "gradient norm clip")
    use_sde: bool = param(False, "generalised state-dependent exploration (Box actions)")
    sde_sample_freq: int = param(-1, "steps between gSDE noise samples (-1: once per rollout)")
    target_kl: float | None = param(None, "stop an update's epochs early at this KL divergence (None: never)")


@dataclass
class A2CConfig(SB3Config):
    """Hyperparameters of ``sb3-a2c``: SB3's A2C, with ent_coef 0.01."""

    agent = "sb3-a2c"
    learning_rate: float = param(7e-4, "RMSprop step size")
    n_steps: int = param(5, "steps of every sub-env per update")
    gamma: float = param(0.99, "discount γ")
    gae_lambda: float = param(1.0, "λ of GAE(λ)")
    ent_coef: float = param(0.01, "weight of the entropy bonus")
    vf_coef: float = param(0.5, "weight of the value loss")
    max_grad_norm: float = param(0.5, "gradient norm clip")
    rms_prop_eps: float = param(1e-5, "ε of RMSprop")
    use_rms_prop: bool = param(True, "RMSprop (False: Adam)")
    use_sde: bool = param(False, "generalised state-dependent exploration (Box actions)")
    sde_sample_freq: int = param(-1, "steps between gSDE noise samples (-1: once per rollout)")
    normalize_advantage: bool = param(False, "normalise the advantages")


@dataclass
class SB3DQNConfig(SB3Config):
    """Hyperparameters of ``sb3-dqn``: SB3's DQN, with our buffer, start, target and exploration defaults."""

    agent = "sb3-dqn"
    learning_rate: float = param(1e-4, "Adam step size")
    buffer_size: int = param(100_000, "transitions the replay buffer holds")
    learning_starts: int = param(1000, "env steps before the first gradient step")
    batch_size: int = param(32, "transitions per gradient step")
    tau: float = param(1.0, "soft update coefficient of the target (1: hard copy)")
    gamma: float = param(0.99, "discount γ")
    train_freq: int = param(4, "steps of every sub-env between updates")
    gradient_steps: int = param(1, "gradient steps per update")
    optimize_memory_usage: bool = param(False, "SB3's memory-saving replay buffer")
    n_steps: int = param(1, "n of n-step returns")
    target_update_interval: int = param(1000, "env steps between target updates")
    exploration_fraction: float = param(0.2, "fraction of the run over which ε falls")
    exploration_initial_eps: float = param(1.0, "ε at the start")
    exploration_final_eps: float = param(0.05, "ε at the end of exploration_fraction")
    max_grad_norm: float = param(10.0, "gradient norm clip")


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


class _Collector(KVWriter):
    """Keeps SB3's ``train/<name>`` values as ``losses/<name>`` for :meth:`SB3Agent.learn_iteration` to return."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        for key, value in key_values.items():
            if key.startswith("train/") and isinstance(value, (int, float, np.number)):
                self.values["losses/" + key[len("train/"):]] = float(value)

    def close(self) -> None:
        """Nothing to close."""


class _Episodes(BaseCallback):
    """Collects finished episodes and runs SB3's schedules over the run's ``total_steps``."""

    def __init__(self, agent: SB3Agent) -> None:
        super().__init__()
        self.agent = agent
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def _on_training_start(self) -> None:
        if self.agent.total_steps is not None:  # learn() was called for one iteration; schedules span the run
            self.model._total_timesteps = self.agent.total_steps

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(float(info["episode"]["r"]))
                self.lengths.append(int(info["episode"]["l"]))
        return True


class SB3Agent(Agent):
    """An SB3 algorithm (``algorithm``) as a physrl agent.

    One ``learn_iteration`` is one rollout and update of SB3's own ``learn`` loop (the hyperparameter
    ``rollout_steps`` names, of every sub-env), and SB3's schedules (``sb3-dqn``'s ε) run over
    ``total_steps``, the run's budget, so the iterations train as one ``learn(total_steps)`` call. The
    replay buffer of ``sb3-dqn`` is not saved: a resumed run starts a new one.
    """

    algorithm: ClassVar[type[BaseAlgorithm]]
    rollout_steps: ClassVar[str] = "n_steps"

    def __init__(self, envs: gym.vector.VectorEnv, seed: int = 0, config: SB3Config | None = None,
                 **hyperparameters: Any) -> None:
        self.envs, self.device = envs, envs.device
        self.seed = check_int("seed", seed, 0, MAX_SEED)
        config = self.configure(config, hyperparameters)
        kwargs = config.to_dict()
        policy_kwargs: dict[str, Any] = {"net_arch": kwargs.pop("net_arch")}
        features_dim = kwargs.pop("features_dim")
        if isinstance(envs.single_observation_space, spaces.Box) and len(envs.single_observation_space.shape) == 3:
            policy_kwargs.update(features_extractor_class=SmallCNN, features_extractor_kwargs={"features_dim": features_dim})
        try:
            self.model = self.algorithm("MlpPolicy", VecMonitor(SB3VecEnv(envs)), seed=self.seed, device=self.device,
                                        policy_kwargs=policy_kwargs, **kwargs)
        except AssertionError as error:  # SB3 checks its hyperparameters with assert statements
            raise ValueError(f"{config.agent} refused its hyperparameters: {error}") from None
        self._losses = _Collector()
        self.model.set_logger(Logger(folder=None, output_formats=[self._losses]))
        self._episodes = _Episodes(self)

    @property
    def global_step(self) -> int:
        return int(self.model.num_timesteps)

    def learn_iteration(self) -> dict[str, Any]:
        steps = self.envs.num_envs * getattr(self.config, self.rollout_steps)
        self.model.learn(steps, callback=self._episodes, log_interval=1, reset_num_timesteps=False)
        stats = {"episodic_return": self._episodes.returns, "episodic_length": self._episodes.lengths,
                 **self._losses.values}
        self._episodes.returns, self._episodes.lengths, self._losses.values = [], [], {}
        return stats

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        actions, _ = self.model.policy.predict(obs.cpu().numpy(), deterministic=deterministic)
        return torch.as_tensor(actions, device=obs.device)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only: the policy's and optimizer's state, and DQN's update counter."""
        return {"policy": self.model.policy.state_dict(), "optimizer": self.model.policy.optimizer.state_dict(),
                "n_calls": int(getattr(self.model, "_n_calls", 0))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the step count comes from ``state["global_step"]`` where given (the
        trainer passes the checkpoint's)."""
        self.model.policy.load_state_dict(state["policy"])
        self.model.policy.optimizer.load_state_dict(state["optimizer"])
        if hasattr(self.model, "_n_calls"):
            self.model._n_calls = state["n_calls"]
        self.model.num_timesteps = int(state.get("global_step", self.model.num_timesteps))


class SB3PPO(SB3Agent):
    """SB3's PPO (``sb3-ppo``)."""

    algorithm, config_class = PPO, PPOConfig


class SB3A2C(SB3Agent):
    """SB3's A2C (``sb3-a2c``)."""

    algorithm, config_class = A2C, A2CConfig


class SB3DQN(SB3Agent):
    """SB3's DQN (``sb3-dqn``)."""

    algorithm, config_class, rollout_steps = DQN, SB3DQNConfig, "train_freq"

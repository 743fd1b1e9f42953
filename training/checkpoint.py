"""Checkpoints of training runs and :func:`load_policy`, the one way to load a trained policy.

A checkpoint is ``torch.save`` of ``{"format": FORMAT, "config": dict, "global_step": int, "state": dict}``
(the architecture page, docs/architecture.md). It holds only tensors and plain Python values and is
always read back with ``torch.load(..., weights_only=True)``, so loading never runs code from the file.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import torch
from gymnasium import spaces

from physrl.envs.gym_adapter import make_torch_vec

FORMAT = "physrl-checkpoint-1"
CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_KEYS = ("env_id", "env_kwargs", "agent", "hyperparameters", "seed", "num_envs", "total_steps",
               "observation_shape", "observation_space", "action_space")


def space_spec(space: spaces.Space) -> dict[str, Any]:
    """A JSON-serialisable description of a Discrete or Box space, compared when checkpoints are loaded."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": space.low.flatten().tolist(), "high": space.high.flatten().tolist()}
    raise TypeError(f"space must be a Discrete or Box space, got {space}")


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device``; a clear ``ValueError`` for a bad name or a missing CUDA device."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available; use device='cpu'")
    return parsed


def checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/checkpoint.pt`` when ``path`` is a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | os.PathLike, config: dict[str, Any], global_step: int, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a temporary file renamed over ``path``) and return its path."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "config": config, "global_step": int(global_step), "state": state}, temporary)
    os.replace(temporary, path)
    return path


def load_checkpoint(path: str | os.PathLike, env_id: str | None = None,
                    observation_space: spaces.Space | None = None,
                    action_space: spaces.Space | None = None) -> dict[str, Any]:
    """Read a checkpoint (a file or a run folder) and check it against what the caller expects.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a corrupt or non-physrl
    file, or for a checkpoint whose env id, observation space or action space differs from the given ones.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for unreadable or unsafe files
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a physrl checkpoint "
                         f"(it cannot be read with torch.load(weights_only=True)): {first_line(error)}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a physrl checkpoint (expected a dict with format {FORMAT!r})")
    config = checkpoint.get("config")
    missing = [key for key in CONFIG_KEYS if not isinstance(config, dict) or key not in config]
    if missing or not isinstance(checkpoint.get("global_step"), int) or not isinstance(checkpoint.get("state"), dict):
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: it needs config keys {list(CONFIG_KEYS)}, "
                         f"an int global_step and a state dict (missing config keys: {missing})")
    expected = {"env_id": env_id,
                "observation_space": None if observation_space is None else space_spec(observation_space),
                "observation_shape": None if observation_space is None else list(observation_space.shape),
                "action_space": None if action_space is None else space_spec(action_space)}
    for key, value in expected.items():
        if value is not None and config[key] != value:
            raise ValueError(f"checkpoint {str(path)!r} does not match: its {key} is {describe(config[key])}, "
                             f"expected {describe(value)}")
    return checkpoint


def first_line(error: Exception) -> str:
    """The first non-empty line of an error's message (torch's can run to a paragraph), or its type."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def describe(value: Any) -> str:
    """A short text for a :func:`space_spec` (bounds as one number, or their range), else ``repr``."""
    if not isinstance(value, dict) or value.get("type") != "Box":
        return repr(value)

    def bound(values: list[float]) -> str:
        low, high = min(values, default=0.0), max(values, default=0.0)
        return f"{low:g}" if low == high else f"{low:g}..{high:g}"

    return f"Box({bound(value['low'])}, {bound(value['high'])}, {tuple(value['shape'])}, {value['dtype']})"


class LoadedPolicy:
    """A loaded policy: ``policy(obs)`` maps a batch of observations (torch tensor, as the vector face
    returns them) to a batch of actions on the same device. ``config`` is the run's configuration."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], config: dict[str, Any], global_step: int,
                 device: torch.device) -> None:
        self._act = act
        self.config = config
        self.global_step = global_step
        self.device = device

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        observations = torch.as_tensor(observations, device=self.device)
        shape = tuple(self.config["observation_shape"])
        if observations.dim() != len(shape) + 1 or tuple(observations.shape[1:]) != shape:
            parts = ["batch", *map(str, shape)]
            batch = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
            raise ValueError(f"observations must be a batch of shape {batch} for this policy of "
                             f"{self.config['env_id']}, got shape {tuple(observations.shape)}")
        with torch.no_grad():
            return self._act(observations)

    def __repr__(self) -> str:
        return (f"LoadedPolicy(env_id={self.config['env_id']!r}, agent={self.config['agent']!r}, "
                f"global_step={self.global_step}, device={str(self.device)!r})")


def make_envs(config: dict[str, Any], num_envs: int, device: torch.device | str) -> gym.vector.VectorEnv:
    """The torch vector face of the run's env (with its env kwargs) on ``device``: physrl's own, or
    Gymnasium's vectorisation behind :class:`~physrl.envs.gym_adapter.GymnasiumVectorEnv`."""
    return make_torch_vec(config["env_id"], num_envs, device, **config["env_kwargs"])


def restore_agent(checkpoint: dict[str, Any], device: torch.device | str) -> Any:
    """The agent of a loaded checkpoint (:func:`load_checkpoint`) rebuilt on one sub-env of its run's env
    on ``device``, with its trained state; its hyperparameters are read into the agent's dataclass (old
    checkpoints' too: hyperparameters added since take their defaults)."""
    from physrl.agents import ALL_AGENTS

    config = checkpoint["config"]
    if config["agent"] not in ALL_AGENTS:
        raise ValueError(f"checkpoint agent {config['agent']!r} is unknown; allowed: {list(ALL_AGENTS)}")
    agent_class = ALL_AGENTS[config["agent"]]
    hyperparameters = agent_class.config_class.from_dict(config["hyperparameters"])
    with warnings.catch_warnings():  # SB3 warns about batch sizes, which do not matter for acting on one sub-env
        warnings.simplefilter("ignore", UserWarning)
        agent = agent_class(make_envs(config, 1, device), seed=config["seed"], config=hyperparameters)
    state = checkpoint["state"]
    if state.get("policy_only"):  # what export_policy dropped comes from the fresh agent
        state = {**agent.state_dict(), **{k: v for k, v in state.items() if k != "policy_only"}}
    agent.load_state_dict({"global_step": checkpoint["global_step"], **state})
    return agent


#: parts of an agent's state that only training needs (dropped by :func:`export_policy`)
TRAINING_STATE = ("optimizer", "rollout", "generator", "buffer", "ranks", "target_network", "novelty")


def export_policy(checkpoint_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the policy of a checkpoint to ``out`` without what only training
    needs (:data:`TRAINING_STATE`: optimiser, rollout and env state, random generator, replay buffer),
    for scoring and shipping: :func:`load_policy` reads it as the original; ``physrl train --resume``
    refuses it."""
    checkpoint = load_checkpoint(checkpoint_path)
    state = {key: value for key, value in checkpoint["state"].items() if key not in TRAINING_STATE}
    return save_checkpoint(out, checkpoint["config"], checkpoint["global_step"], {**state, "policy_only": True})


def source_commit() -> str:
    """The git commit of the physrl source tree in use (empty outside a git checkout), recorded in
    shipped result files."""
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()


def load_policy(checkpoint_path: str | os.PathLike, device: torch.device | str = "cpu", *,
                deterministic: bool = True, env_id: str | None = None,
                observation_space: spaces.Space | None = None,
                action_space: spaces.Space | None = None) -> LoadedPolicy:
    """Load the policy of a checkpoint (file or run folder) onto ``device``.

    The returned :class:`LoadedPolicy` maps a batch of observations to a batch of actions, greedy
    (``deterministic=True``, the default) or sampled. ``env_id``, ``observation_space`` and
    ``action_space``, when given, must match the checkpoint (see :func:`load_checkpoint`).
    Works for every agent of ``physrl.agents.ALL_AGENTS``, the ``sb3-*`` references included.
    """
    import physrl.envs  # noqa: F401  (registers the environments)

    device = check_device(device)
    checkpoint = load_checkpoint(checkpoint_path, env_id, observation_space, action_space)
    config = checkpoint["config"]
    agent = restore_agent(checkpoint, device)

    def act(observations: torch.Tensor) -> torch.Tensor:
        return agent.act(observations, deterministic=deterministic)
    return LoadedPolicy(act, config, checkpoint["global_step"], device)

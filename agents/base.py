"""What every agent shares: the env, a seeded generator, the rollout collector."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
from gymnasium import spaces

from physrl.envs.core import VectorEnv
from physrl.envs.rng import MAX_SEED
from physrl.envs.validation import check_int

from physrl.agents.distributed import rank_and_world_size
from physrl.agents.hyperparameters import Hyperparameters
from physrl.agents.rollout import Rollout


def with_seed(seed: int, build: Any) -> Any:
    """Call ``build()`` with the global CPU RNG seeded by ``seed``, restoring the RNG afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class Agent:
    """Base class: ``Agent(envs, seed, config=None, **hyperparameters)`` as described on the architecture
    page (docs/architecture.md).

    A subclass names its hyperparameter dataclass in ``config_class``, resolves ``config`` and the keyword
    overrides into ``self.config`` with :meth:`configure` (``self.hyperparameters`` is its dict), and
    implements ``learn_iteration``, ``act`` and the ``_state``/``_load_state`` pair for its own tensors.
    """

    config_class: ClassVar[type[Hyperparameters]] = Hyperparameters
    #: the run's budget of env steps, which ``physrl train`` sets before training (SB3's schedules use it)
    total_steps: int | None = None

    def __init__(self, envs: VectorEnv, seed: int) -> None:
        self.envs = envs
        self.device = envs.device
        self.seed = check_int("seed", seed, 0, MAX_SEED)
        # Data-parallel ranks (agents/distributed.py) share the initial parameters (built from
        # ``seed``), sample with their own generators, and step their own slice of the sub-envs:
        # sub-env i of rank r is seeded with seed + r * num_envs + i, as in one process with all envs.
        rank, self.world_size = rank_and_world_size()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed + rank)
        self.rollout = Rollout(envs, self.seed + rank * envs.num_envs)
        self.global_step = 0

    def configure(self, config: Hyperparameters | Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> Any:
        """``self.config``: the agent's :attr:`config_class` built from ``config`` and ``overrides``."""
        self.config = self.config_class.build(config, overrides)
        return self.config

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The resolved hyperparameters by name (JSON-serialisable), as checkpoints record them."""
        return self.config.to_dict()

    def default_num_steps(self, num_steps: int | None) -> int:
        """Steps per iteration; ``None`` means one episode cycle: the horizon plus the autoreset step."""
        if num_steps is None:
            horizon = getattr(self.envs, "max_steps", None)
            if horizon is None:
                raise ValueError(f"num_steps must be given for an env without a time limit (max_episode_steps), "
                                 f"such as {getattr(self.envs, 'env_id', type(self.envs).__name__)}")
            return horizon + 1
        return check_int("num_steps", num_steps, 1)

    def discrete_actions(self) -> int:
        """The number of actions of a Discrete action space starting at 0 (else TypeError)."""
        space = self.envs.single_action_space
        if not isinstance(space, spaces.Discrete) or int(space.start) != 0:
            raise TypeError(f"{type(self).__name__} needs a Discrete action space starting at 0, got {space}")
        return int(space.n)

    def check_ready(self) -> None:
        """Raise a clear error now if :meth:`learn_iteration` cannot run (``physrl train`` calls it before
        it makes the run folder); by default there is nothing to check."""

    def learn_iteration(self) -> dict[str, Any]:
        """Collect one batch on ``envs`` and update; the returns and lengths of the episodes that ended
        in it (``"episodic_return"``, ``"episodic_length"``) and the ``"losses/<name>"`` values."""
        raise NotImplementedError

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """A batch of actions for a batch of observations as the vector face gives them (greedy, or sampled)."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Parameters, optimiser, generator, rollout and env state: everything an exact resume needs."""
        return {"agent": type(self).__name__, "global_step": self.global_step,
                "generator": self.generator.get_state(), "generator_device": self.device.type, "rollout": self.rollout.state_dict(), **self._state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. Resume is exact on the same device type and ``num_envs``;
        otherwise (e.g. loading a policy for evaluation) the generator and env state are left fresh."""
        if state.get("agent") != type(self).__name__:
            raise ValueError(f"state is from agent {state.get('agent')!r}, not {type(self).__name__!r}")
        self.global_step = int(state["global_step"])
        if state["generator_device"] == self.device.type:
            self.generator.set_state(state["generator"])
        self.rollout.load_state_dict(state["rollout"])
        self._load_state(state)


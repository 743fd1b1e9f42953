"""The batched core and its two faces (the architecture page, docs/architecture.md).

An environment writes its physics once, as a :class:`BatchCore`: state tensors with a leading batch
dimension, advanced for the whole batch at once. :class:`SingleEnv` (a ``gymnasium.Env`` with numpy
observations) and :class:`VectorEnv` (a ``gymnasium.vector.VectorEnv`` with torch tensors on the
core's device) are thin faces over it and contain no physics.
"""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from physrl.envs.rng import MAX_SEED, BatchRandom
from physrl.envs.validation import check_choice, check_int


class BatchCore(ABC):
    """Batched physics of one environment: all state has a leading batch dimension ``num_envs``.

    Subclasses set ``single_observation_space`` and ``single_action_space`` in ``__init__``, name
    their state tensors in :attr:`state_names`, and implement :meth:`reset_envs`, :meth:`observe` and
    :meth:`advance`. Randomness comes only from ``self.rng`` (one independent stream per sub-env); the
    horizon ``max_steps`` is enforced here as truncation.
    """

    render_modes: ClassVar[tuple[str, ...]] = ("ansi",)
    single_observation_space: spaces.Space
    single_action_space: spaces.Space
    #: The names of the core's state tensors besides ``elapsed``: what changes as the sub-envs step
    #: and reset, and all that :meth:`VectorEnv.state_dict` saves of the core (with the random streams).
    #: Everything else is a constant of the options. A core whose state depends on its options
    #: overrides it with a property.
    state_names: ClassVar[tuple[str, ...]] = ()
    #: The largest ``max_steps`` the core accepts, where its state or observation grows with the horizon.
    max_horizon: ClassVar[int | None] = None

    def __init__(self, num_envs: int, device: torch.device | str, max_steps: int) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        self.device = torch.device(device)
        self.max_steps = check_int("max_steps", max_steps, 1, self.max_horizon)
        self.rng = BatchRandom(self.num_envs, self.device)
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    @abstractmethod
    def reset_envs(self, index: torch.Tensor) -> None:
        """Draw fresh initial states for the sub-envs in ``index`` (their streams are already restarted)."""

    @abstractmethod
    def observe(self) -> torch.Tensor:
        """The current observation of every sub-env, as a new tensor (never a view of the state)."""

    @abstractmethod
    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Apply one step of validated actions to every sub-env: (reward, terminated, info).

        ``info`` maps names to tensors with leading dimension ``num_envs``; a key ``"_name"`` holds
        the bool mask of sub-envs for which ``"name"`` is valid (Gymnasium's vector convention).
        """

    #: Whether :meth:`action_mask` rules actions out (a property where the options decide).
    masks_actions: ClassVar[bool] = False

    def action_mask(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, n_actions) bool: the actions allowed for each observation of ``obs``, where :attr:`masks_actions`."""
        raise ValueError(f"{type(self).__name__} has no action_mask (physrl/QubitErrorCorrection-v0 with "
                         "obs_mode='pairs' has one)")

    def render_ansi(self, i: int) -> str:
        """A text picture of sub-env ``i``."""
        raise NotImplementedError

    def render_rgb(self, i: int) -> np.ndarray:
        """An RGB image (H, W, 3) uint8 of sub-env ``i``."""
        raise NotImplementedError

    #: whether the episode picture (:meth:`episode_summary`) shows every step (a strip of frames) or
    #: only the state the episode ended in
    episode_frames: ClassVar[bool] = False

    def episode_summary(self, i: int, frames: list[np.ndarray]) -> dict[str, Any]:
        """What TensorBoard shows of the episode sub-env ``i`` has just ended: tag -> RGB image (H, W, 3)
        uint8 or float scalar. ``frames`` are :meth:`render_rgb` after the reset and after every step when
        :attr:`episode_frames` is true (else empty). The default shows the frames as a strip, or the final
        state; an env adds its own charts (e.g. ``charts/fidelity``) by extending this dict."""
        if "rgb_array" not in self.render_modes:
            return {}
        return {"images/episode": frame_strip(frames) if frames else self.render_rgb(i)}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The state: ``elapsed`` and the tensors named in :attr:`state_names`, by name (not copies)."""
        return {name: getattr(self, name) for name in ("elapsed", *self.state_names)}

    def reset(self, index: torch.Tensor, seeds: torch.Tensor | None = None) -> None:
        """Start a new episode in the sub-envs of ``index``, reseeding them when ``seeds`` is given."""
        self.rng.start_episode(index, seeds)
        self.elapsed[index] = 0
        self.reset_envs(index)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance every sub-env by one step: (reward, terminated, truncated, info)."""
        reward, terminated, info = self.advance(actions)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_steps
        return reward, terminated, truncated, info

    def check_actions(self, actions: Any) -> torch.Tensor:
        """Validate a batch of actions against the action space; raise a clear error otherwise."""
        space = self.single_action_space
        actions = torch.as_tensor(actions, device=self.device)
        expected = (self.num_envs, *space.shape)
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions must have shape {expected} for {space}, got {tuple(actions.shape)}")
        if isinstance(space, spaces.Discrete):
            if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
                raise TypeError(f"actions must be integers for {space}, got dtype {actions.dtype}")
            actions = actions.to(torch.int64)
            low, high = int(space.start), int(space.start + space.n - 1)
            if bool(((actions < low) | (actions > high)).any()):
                bad = actions[(actions < low) | (actions > high)][0].item()
                raise ValueError(f"actions must be in [{low}, {high}] for {space}, got {bad}")
            return actions - low
        if isinstance(space, spaces.Box):
            if not actions.dtype.is_floating_point:
                raise TypeError(f"actions must be floating point for {space}, got dtype {actions.dtype}")
            low = torch.as_tensor(space.low, device=self.device, dtype=actions.dtype)
            high = torch.as_tensor(space.high, device=self.device, dtype=actions.dtype)
            bad = ~torch.isfinite(actions) | (actions < low) | (actions > high)
            if bool(bad.any()):
                raise ValueError(f"actions must be finite and within [{space.low.min()}, {space.high.max()}] "
                                 f"(no clipping is done), got {actions[bad][0].item()}")
            return actions
        raise NotImplementedError(f"no action check for {space}")


def frame_strip(frames: Sequence[np.ndarray], most: int = 12, per_row: int = 6, gap: int = 4) -> np.ndarray:
    """At most ``most`` evenly spaced frames (first and last included) tiled ``per_row`` to a row,
    ``gap`` white pixels apart: one RGB picture of an episode."""
    if not frames:
        raise ValueError("frames must hold at least one RGB frame")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(most, len(frames))).round().astype(int))
    height, width, _ = frames[0].shape
    rows = -(-len(picks) // per_row)
    columns = min(per_row, len(picks))
    image = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for k, index in enumerate(picks):
        r, c = divmod(k, per_row)
        image[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = frames[index]
    return image


def _check_seed(seed: Any) -> int:
    return check_int("seed", seed, 0, MAX_SEED)


def _same(a: Any, b: Any) -> bool:
    """Whether two attribute values are equal (tensors and arrays elementwise)."""
    if isinstance(a, (torch.Tensor, np.ndarray)) or isinstance(b, (torch.Tensor, np.ndarray)):
        return bool(np.array_equal(np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a),
                                   np.asarray(b.cpu() if isinstance(b, torch.Tensor) else b)))
    return a == b


def default_horizon(core_class: type[BatchCore]) -> int:
    """The default ``max_steps`` of a core: the registered ``max_episode_steps`` of its ids."""
    return inspect.signature(core_class).parameters["max_steps"].default


ARRAYS = ("torch", "numpy")


class SingleEnv(gym.Env):
    """The single-env face: a batch of one on the CPU, numpy observations, float rewards, bool flags.

    ``gym.make`` wraps it in ``TimeLimit`` at the registered ``max_episode_steps`` (the default
    ``max_steps``); the core truncates at the same step, so the wrapper agrees with the vector face.
    A longer ``max_steps`` needs ``gym.make(id, max_steps=T, max_episode_steps=T)``: an episode that
    the registered ``TimeLimit`` cuts short is reported by a warning at the next reset.
    """

    core_class: ClassVar[type[BatchCore]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.metadata = {"render_modes": list(cls.core_class.render_modes), "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.core = self.core_class(num_envs=1, device="cpu", **options)
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.core.render_modes)
        self.render_mode = render_mode
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._index = torch.zeros(1, dtype=torch.int64)
        self._needs_reset = True
        self._episode_over = False
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._warn_if_cut_by_time_limit()
        if seed is not None:
            seeds = torch.tensor([_check_seed(seed)])
        elif not self._seeded:
            seeds = torch.tensor([int(self.np_random.integers(MAX_SEED))])
        else:
            seeds = None
        self._seeded = True
        self.core.reset(self._index, seeds)
        self._needs_reset = False
        self._episode_over = False
        return self._observation(), {}

    def _warn_if_cut_by_time_limit(self) -> None:
        """Warn when the running episode stopped at exactly the registered horizon, short of ``max_steps``:
        the mark of ``gym.make``'s ``TimeLimit`` on an env made with a longer ``max_steps`` alone."""
        limit, horizon = default_horizon(self.core_class), self.core.max_steps
        if not self._needs_reset and not self._episode_over and int(self.core.elapsed[0]) == limit < horizon:
            warnings.warn(f"the episode ended after {limit} steps, the registered max_episode_steps, before its "
                          f"max_steps={horizon}: gym.make's TimeLimit cut it; make the env with "
                          f"gym.make(id, max_steps={horizon}, max_episode_steps={horizon})", stacklevel=3)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._needs_reset:
            raise gym.error.ResetNeeded("call reset() before step()")
        try:
            actions = self.core.check_actions(np.asarray(action)[None])
        except (ValueError, TypeError) as error:
            raise type(error)(f"action {action!r} is not valid for {self.action_space}: {error}") from None
        reward, terminated, truncated, info = self.core.step(actions)
        self._episode_over = bool(terminated[0] | truncated[0])
        single_info = {}
        for key, value in info.items():
            if not key.startswith("_") and bool(info.get("_" + key, torch.ones(1, dtype=torch.bool))[0]):
                single_info[key] = value[0].item() if value[0].dim() == 0 else value[0].cpu().numpy()
        return self._observation(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), single_info

    def _observation(self) -> Any:
        obs = self.core.observe()[0]
        if isinstance(self.observation_space, spaces.Discrete):
            return np.int64(obs.item())
        return obs.cpu().numpy().astype(self.observation_space.dtype, copy=True)

    def render(self) -> Any:
        if self.render_mode == "ansi":
            return self.core.render_ansi(0)
        if self.render_mode == "rgb_array":
            return self.core.render_rgb(0)
        return None


class VectorEnv(gym.vector.VectorEnv):
    """The vector face: ``num_envs`` sub-envs as torch tensors on ``device``, autoreset on the next step.

    Sub-env ``i`` of ``reset(seed=s)`` follows exactly the trajectory of a single env reset with
    ``seed=s + i``. Actions are a tensor (or array) with leading dimension ``num_envs``.
    ``array="numpy"`` gives every output as numpy arrays instead (for Gymnasium's numpy vector
    wrappers); ``max_episode_steps`` is Gymnasium's name for the horizon ``max_steps``. Infos,
    ``get_attr``/``call``/``set_attr``, ``np_random_seed`` and ``reset_mask`` follow
    ``gymnasium.vector.SyncVectorEnv`` over the single face.
    """

    core_class: ClassVar[type[BatchCore]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP,
                        "render_modes": list(cls.core_class.render_modes), "render_fps": 4}

    def __init__(self, num_envs: int = 1, device: torch.device | str = "cpu", render_mode: str | None = None,
                 array: str = "torch", max_episode_steps: int | None = None, **options: Any) -> None:
        self.array = check_choice("array", array, ARRAYS)
        if max_episode_steps is not None:
            options["max_steps"] = self._horizon(max_episode_steps, options.get("max_steps"))
        self.core = self.core_class(num_envs=num_envs, device=device, **options)
        given = inspect.signature(self.core_class).bind(num_envs=num_envs, device=device, **options)
        given.apply_defaults()
        #: The env options this face was made with, defaults filled in (``max_steps`` included).
        self.options: dict[str, Any] = {k: v for k, v in given.arguments.items() if k not in ("num_envs", "device")}
        self.num_envs = self.core.num_envs
        self.device = self.core.device
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.core.render_modes)
        self.render_mode = render_mode
        self.single_observation_space = self.core.single_observation_space
        self.single_action_space = self.core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._all = torch.arange(self.num_envs, device=self.device)
        self._autoreset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self._started = False
        self._seeds: np.ndarray | None = None

    def _horizon(self, max_episode_steps: int, max_steps: int | None) -> int:
        """Gymnasium's ``max_episode_steps`` (``gym.make_vec`` passes the registered one) as ``max_steps``."""
        if max_steps is None or max_steps == max_episode_steps:
            return max_episode_steps
        if max_episode_steps == default_horizon(self.core_class):
            return max_steps  # the registered default, passed by gym.make_vec: the explicit max_steps wins
        raise ValueError(f"max_steps={max_steps} and max_episode_steps={max_episode_steps} disagree: "
                         "give the horizon once (max_episode_steps is Gymnasium's name for max_steps)")

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        """The seed each sub-env was last reset with (as ``SyncVectorEnv`` reports them)."""
        if self._seeds is None:
            base = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(2))
            _check_seed(base + self.num_envs - 1)
            self._seeds = np.arange(self.num_envs, dtype=np.int64) + base
        return tuple(int(s) for s in self._seeds)

    def _reset_index(self, options: dict | None) -> torch.Tensor:
        """The sub-envs to reset: all, or ``options["reset_mask"]`` validated as Gymnasium's vector envs do."""
        if not options or "reset_mask" not in options:
            return self._all
        mask = options["reset_mask"]
        if not isinstance(mask, (np.ndarray, torch.Tensor)):
            raise TypeError(f"options['reset_mask'] must be a numpy array or torch tensor of bools, "
                            f"got {type(mask).__name__}")
        if tuple(mask.shape) != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},), got {tuple(mask.shape)}")
        if mask.dtype not in (np.bool_, torch.bool):
            raise TypeError(f"options['reset_mask'] must have a bool dtype, got {mask.dtype}")
        mask = torch.as_tensor(mask, device=self.device)
        if not bool(mask.any()):
            raise ValueError("options['reset_mask'] must contain at least one True value (which sub-envs to reset)")
        return mask.nonzero().squeeze(1)

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict | None = None) -> tuple[torch.Tensor | np.ndarray, dict]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``); ``seed`` is an int or one per env."""
        index = self._reset_index(options)
        if seed is None and not self._started:
            seed = [int(s) for s in self.np_random_seed]
        if seed is None:
            seeds = None
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            all_seeds = np.arange(self.num_envs, dtype=np.int64) + _check_seed(seed)
            _check_seed(int(all_seeds[-1]))
        else:
            all_seeds = np.array([_check_seed(s) for s in seed], dtype=np.int64)
            if len(all_seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} ints, got {len(all_seeds)} seeds")
        if seed is not None:
            seeds = torch.as_tensor(all_seeds, device=self.device)[index]
            if self._seeds is None:
                self._seeds = all_seeds
            self._seeds[index.cpu().numpy()] = all_seeds[index.cpu().numpy()]
        self.core.reset(index, seeds)
        self._autoreset[index] = False
        self._started = True
        return self._output(self.core.observe()), {}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = self.core.check_actions(actions)
        reward, terminated, truncated, info = self.core.step(actions)
        restarted = self._autoreset
        valid = ~restarted
        if bool(restarted.any()):
            self.core.reset(restarted.nonzero().squeeze(1))
            reward = reward.masked_fill(restarted, 0.0)
            terminated = terminated & valid
            truncated = truncated & valid
        self._autoreset = terminated | truncated
        infos = self._infos(info, valid)
        return (self._output(self.core.observe()), self._output(reward), self._output(terminated),
                self._output(truncated), {key: self._output(value) for key, value in infos.items()})

    def _infos(self, info: dict[str, torch.Tensor], valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gymnasium's vector infos, as ``SyncVectorEnv`` builds them from the single faces: a key only
        where some sub-env has it, ``"_key"`` its mask, 0 where the mask is False."""
        names = [key for key in info if not key.startswith("_")]
        if not names:
            return {}
        masks = torch.stack([info.get("_" + key, valid) & valid for key in names])
        present = masks.any(dim=1).tolist()  # one device sync for all keys
        infos: dict[str, torch.Tensor] = {}
        for key, mask, keep in zip(names, masks, present):
            if keep:
                value = info[key]
                infos[key] = value.masked_fill(~mask.view(-1, *([1] * (value.dim() - 1))), 0)
                infos["_" + key] = mask
        return infos

    def _output(self, value: torch.Tensor) -> torch.Tensor | np.ndarray:
        """A batch as the face gives it out: the tensor itself, or a numpy array with ``array="numpy"``."""
        return value.cpu().numpy() if self.array == "numpy" else value

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """The attribute ``name`` of every sub-env, as ``SyncVectorEnv.get_attr`` over the single faces:
        a per-sub-env state tensor gives each sub-env's row (a tensor, or an array with
        ``array="numpy"``), a shared option its value once per sub-env."""
        if name == "np_random_seed":
            return self.np_random_seed
        face = {"observation_space": self.single_observation_space, "action_space": self.single_action_space,
                "render_mode": self.render_mode}
        if name in face:
            return (face[name],) * self.num_envs
        if name.startswith("_") or not hasattr(self.core, name):
            raise AttributeError(f"the sub-envs of {type(self).__name__} have no attribute {name!r}")
        value = getattr(self.core, name)
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == self.num_envs:
            return tuple(self._output(row.clone()) for row in value)
        return (value,) * self.num_envs

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call the method ``name`` of every sub-env (``render``, or a core method taking the sub-env
        index first, such as ``render_ansi``), or get the attribute when it is not callable."""
        if name == "render":
            return self.render(*args, **kwargs) or (None,) * self.num_envs
        method = getattr(self.core, name, None) if not name.startswith("_") else None
        if not callable(method):
            return self.get_attr(name)
        if next(iter(inspect.signature(method).parameters), None) != "i":
            raise AttributeError(f"{name!r} acts on the whole batch, not on one sub-env: call takes 'render' or a "
                                 "core method whose first argument is the sub-env index i")
        return tuple(method(i, *args, **kwargs) for i in range(self.num_envs))

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set ``name`` on every sub-env (one value each, or one for all) as ``SyncVectorEnv.set_attr``.

        A per-sub-env state tensor takes one row per sub-env; a shared option of the batched core
        must get the same value for every sub-env.
        """
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr needs one value per sub-env ({self.num_envs}) or a single value, "
                             f"got {len(values)} values")
        if name == "render_mode":
            for value in values[1:]:
                if value != values[0]:
                    raise ValueError("render_mode is shared by the batched sub-envs: give one value")
            if values[0] is not None:
                check_choice("render_mode", values[0], self.core.render_modes)
            self.render_mode = values[0]
            return
        if name.startswith("_") or not hasattr(self.core, name):
            raise AttributeError(f"the sub-envs of {type(self).__name__} have no attribute {name!r}")
        current = getattr(self.core, name)
        if isinstance(current, torch.Tensor) and current.dim() > 0 and current.shape[0] == self.num_envs:
            rows = torch.stack([torch.as_tensor(v, dtype=current.dtype, device=self.device).reshape(current.shape[1:])
                                for v in values])
            setattr(self.core, name, rows)
            return
        if any(not _same(value, values[0]) for value in values[1:]):
            raise ValueError(f"{name} is shared by the batched sub-envs of one core: give the same value for all")
        setattr(self.core, name, values[0])

    def state_dict(self) -> dict[str, Any]:
        """The core's declared state tensors (:meth:`BatchCore.state_tensors`), its random streams and
        the autoreset flags: enough to continue exactly (used by checkpoints)."""
        return {"num_envs": self.num_envs, "started": self._started, "autoreset": self._autoreset.clone(),
                "core": {k: v.clone() for k, v in self.core.state_tensors().items()},
                "rng": {k: v.clone() for k, v in self.core.rng.state_tensors().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same env options and ``num_envs``; any device).

        Only the declared state tensors are read. A state saved when every tensor attribute was saved
        (constants too) loads the same, and a declared tensor that an older state lacks keeps its value.
        """
        if state["num_envs"] != self.num_envs:
            raise ValueError(f"state is for num_envs={state['num_envs']}, this env has num_envs={self.num_envs}")
        for target, tensors in ((self.core, state["core"]), (self.core.rng, state["rng"])):
            for name in tensors:
                if not hasattr(target, name):
                    raise ValueError(f"state tensor {name!r} is not part of this env (other env options?)")
            for name, current in target.state_tensors().items():
                if name not in tensors:
                    continue
                value = tensors[name]
                if current.shape != value.shape or current.dtype != value.dtype:
                    raise ValueError(f"state tensor {name!r} has shape {tuple(value.shape)} and dtype {value.dtype}, "
                                     f"this env needs {tuple(current.shape)} and {current.dtype} (other env options?)")
                setattr(target, name, value.to(self.device, copy=True))  # never shared with the state given
        self._autoreset = state["autoreset"].to(self.device, copy=True)
        self._started = bool(state["started"])

    # What agents and training read of an env: this surface, never the core (the architecture page,
    # docs/architecture.md). An env's own face adds what only it has (the QEC views, the maze layouts).

    @property
    def max_steps(self) -> int:
        """The horizon, the step after which every episode is truncated."""
        return self.core.max_steps

    @property
    def elapsed(self) -> torch.Tensor:
        """The steps taken so far in each sub-env's current episode, (num_envs,) int64 (a copy)."""
        return self.core.elapsed.clone()

    @property
    def masks_actions(self) -> bool:
        """Whether :meth:`action_mask` rules actions out for this env and its options."""
        return self.core.masks_actions

    def action_mask(self, obs: torch.Tensor) -> torch.Tensor:
        """(num_envs, n_actions) bool: the actions allowed for each observation of ``obs`` as this face
        gives them (where :attr:`masks_actions`; otherwise a ValueError)."""
        return self.core.action_mask(obs)

    def set_random_domain(self, domain: int) -> None:
        """Key every random stream by ``domain`` from the next reset on (:mod:`physrl.envs.rng`): the
        challenge's held-out mazes live in a domain of their own. ``gym.make_vec`` always uses domain 0."""
        self.core.rng.domain = check_int("domain", domain, 0, 2**32 - 1)

    def frame(self, i: int) -> np.ndarray:
        """An RGB picture (H, W, 3) uint8 of sub-env ``i``, whatever the ``render_mode``."""
        return self.core.render_rgb(check_int("i", i, 0, self.num_envs - 1))

    @property
    def episode_frames(self) -> bool:
        """Whether :meth:`episode_summary` shows every step's :meth:`frame` or only the last state."""
        return self.core.episode_frames

    def episode_summary(self, i: int, frames: list[np.ndarray]) -> dict[str, Any]:
        """What TensorBoard shows of the episode sub-env ``i`` has just ended (tag -> RGB image or float),
        from the :meth:`frame` after the reset and after every step when :attr:`episode_frames` (else [])."""
        return self.core.episode_summary(i, frames)

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode == "ansi":
            return tuple(self.core.render_ansi(i) for i in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return tuple(self.core.render_rgb(i) for i in range(self.num_envs))
        return None

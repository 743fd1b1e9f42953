"""The configuration of a training run: :class:`RunConfig`, config files and ``--set KEY=VALUE``.

A run is an env (id and options), an agent with its typed hyperparameters (the agent's dataclass, see
:mod:`physrl.agents.hyperparameters`) and the run's options. ``physrl train``'s flags, a YAML or TOML
file, ``--set`` and :func:`physrl.training.train`'s keywords all resolve into one :class:`RunConfig`;
checkpoints record it (:meth:`RunConfig.to_dict`) and resuming reads it back
(:meth:`RunConfig.from_dict`), including checkpoints written before the dataclasses existed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import yaml

import physrl.envs  # noqa: F401  (registers the environments)
from physrl.agents import ALL_AGENTS
from physrl.agents.hyperparameters import Hyperparameters, param
from physrl.envs.validation import check_int
from physrl.training.checkpoint import check_device

#: sections of a run whose entries ``--set SECTION.NAME=VALUE`` sets one by one
SECTIONS = ("env_kwargs", "hyperparameters")


def hyperparameter_class(agent: str) -> type[Hyperparameters]:
    """The hyperparameter dataclass of an agent, by its command-line name."""
    if agent not in ALL_AGENTS:
        raise ValueError(f"agent must be one of {list(ALL_AGENTS)}, got {agent!r}")
    return ALL_AGENTS[agent].config_class


@dataclasses.dataclass
class RunConfig:
    """One training run. ``hyperparameters`` may be given as a mapping (or None: the defaults) and is
    resolved into the agent's dataclass; every value is checked, with a one-line error naming it."""

    env_id: str = param("", "registered env id: physrl/TreasureMaze-v0, ... or any Gymnasium id such as CartPole-v1")
    agent: str = param("", f"{', '.join(ALL_AGENTS)}")
    env_kwargs: dict = param({}, "env options, as gym.make takes them")
    hyperparameters: Any = param(None, "the agent's hyperparameters (physrl train --agent NAME --help lists them)")
    num_envs: int = param(16, "parallel sub-envs")
    device: str = param("cpu", "torch device of envs and agent")
    total_steps: int = param(100_000, "env steps to train for in total")
    seed: int = param(0, "seed of envs and agent")
    logdir: str = param("runs", "parent folder of run folders")
    init_from: str = param("", "checkpoint or run folder whose trained policy starts this run (a curriculum "
                               "stage on other env options): same agent, network and spaces; its optimiser, "
                               "schedules and step count start afresh")

    def __post_init__(self) -> None:
        if not self.env_id or not self.agent:
            raise ValueError("env_id (--env) and agent (--agent) are required unless resuming (--resume PATH)")
        if self.env_id not in gym.registry:
            physrl_ids = sorted(name for name in gym.registry if name.startswith("physrl/"))
            raise ValueError(f"env_id must be a registered env such as {physrl_ids}, got {self.env_id!r}")
        hyperparameters = hyperparameter_class(self.agent)
        if not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {self.env_kwargs!r}")
        self.hyperparameters = hyperparameters.build(self.hyperparameters)
        self.seed = check_int("seed", self.seed, 0)
        self.num_envs = check_int("num_envs", self.num_envs, 1)
        self.total_steps = check_int("total_steps", self.total_steps, 1)
        self.device = str(check_device(self.device))
        self.logdir = str(self.logdir)
        if isinstance(self.init_from, os.PathLike):
            self.init_from = os.fspath(self.init_from)
        if not isinstance(self.init_from, str):
            raise TypeError(f"init_from must be a checkpoint path (a string or path), got {self.init_from!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from a mapping of field names (a config file's, ``train()``'s keywords); ``env`` is
        accepted for ``env_id``."""
        values = {("env_id" if key == "env" else key): value for key, value in values.items()}
        check_option_names(values)
        return cls(**values)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunConfig:
        """The run a checkpoint's ``config`` record describes (:meth:`to_dict` and the env's spaces), also
        for checkpoints written before the hyperparameter dataclasses (hyperparameters added since then
        take their defaults)."""
        return cls.from_dict({key: value for key, value in record.items() if key in FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """The record of the run in checkpoints and ``config.json`` (JSON values; without ``logdir``, the
        folder that holds the run)."""
        record = dataclasses.asdict(self)
        record["hyperparameters"] = self.hyperparameters.to_dict()
        del record["logdir"]
        return record


FIELDS = tuple(field.name for field in dataclasses.fields(RunConfig))


def check_option_names(values: Mapping[str, Any]) -> None:
    """A ``TypeError`` naming the keys of ``values`` that are not fields of :class:`RunConfig`."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown run option(s) {unknown}; allowed: {list(FIELDS)}")
#: keys of a config file: the fields of :class:`RunConfig`, with ``env`` for ``env_id``
FILE_KEYS = ("env",) + FIELDS[1:]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) run configuration and check its keys (:data:`FILE_KEYS`)."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        with open(path, encoding="utf-8") as file:
            try:
                config = yaml.safe_load(file) or {}
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(error, "problem", None) or str(error).splitlines()[0]
                raise ValueError(f"config file {str(path)!r}{where}: malformed YAML: {problem}") from None
            except UnicodeDecodeError as error:
                raise ValueError(f"config file {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    elif path.suffix == ".toml":
        with open(path, "rb") as file:
            try:
                config = tomllib.load(file)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"config file {str(path)!r}: malformed TOML: {error}") from None
            except UnicodeDecodeError as error:
                raise ValueError(f"config file {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    else:
        raise ValueError(f"config must be a .yaml, .yml or .toml file, got {str(path)!r}")
    if not isinstance(config, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of {list(FILE_KEYS)}, got {config!r}")
    unknown = sorted(set(config) - set(FILE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in config file {str(path)!r}; allowed: {list(FILE_KEYS)} "
                         "(hyperparameters go in a 'hyperparameters' table)")
    for key in SECTIONS:
        if not isinstance(config.get(key, {}), dict):
            raise ValueError(f"{key} in config file {str(path)!r} must be a mapping, got {config[key]!r}")
    return config


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value), the value read as JSON when it is JSON (3e-4, true, [64, 64]), else a string."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"--set takes KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def assign(options: dict[str, Any], key: str, value: Any) -> None:
    """Apply ``--set key=value`` to ``options`` (a mapping of :class:`RunConfig` fields): ``SECTION.NAME``
    sets one entry of ``env_kwargs`` or ``hyperparameters``, a run option's name sets it, and any other
    plain name is a hyperparameter (checked against the agent's when the run is built)."""
    section, dot, name = key.partition(".")
    if dot:
        if section not in SECTIONS or not name:
            raise ValueError(f"--set {key}=...: a dotted KEY must be env_kwargs.NAME or hyperparameters.NAME, "
                             f"got {key!r}")
        options[section] = {**(options.get(section) or {}), name: value}
    elif key in FIELDS and key not in SECTIONS:
        options[key] = value
    else:
        options["hyperparameters"] = {**(options.get("hyperparameters") or {}), key: value}

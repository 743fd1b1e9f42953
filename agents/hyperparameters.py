"""Typed hyperparameters: each agent declares its hyperparameters once, as a dataclass.

A field is ``name: type = param(default, "one-line help")``; the base class converts values to the
declared type where that is lossless (an int for a float, the text "3e-4" of a YAML 1.1 file) and the
subclass's ``__post_init__`` checks ranges and combinations. The command line (``physrl train --set``,
``--help``), config files, checkpoints and the agents' constructors all go through these classes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Mapping, Self

__all__ = ["Hyperparameters", "param"]


def param(default: Any, help: str) -> Any:
    """A dataclass field with ``default`` and a one-line ``help`` (a list or dict default is copied per instance)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def type_name(hint: Any) -> str:
    """``float``, ``int | None``, ``list[int]``: the annotation as one writes it."""
    if isinstance(hint, types.UnionType):
        return " | ".join(type_name(part) for part in typing.get_args(hint))
    if hint is type(None):
        return "None"
    return str(hint) if typing.get_args(hint) else hint.__name__


def _converted(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, ``value`` as ``hint``) where that is lossless, else (False, None)."""
    if value is None:
        return hint is type(None), None
    if hint is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, None
    if hint is int:
        return isinstance(value, int), value
    if hint is float:
        if isinstance(value, (int, float)):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)  # YAML 1.1 reads 3e-4 as a string
            except ValueError:
                return False, None
        return False, None
    if typing.get_origin(hint) is list:
        return isinstance(value, (list, tuple)), list(value) if isinstance(value, (list, tuple)) else None
    return isinstance(value, hint), value


@dataclasses.dataclass
class Hyperparameters:
    """Base of the agents' hyperparameter dataclasses.

    ``agent`` is the agent's command-line name (used in messages). A subclass checks its values in
    ``__post_init__`` after calling ``super().__post_init__()``, which converts them to their types.
    """

    agent: ClassVar[str] = "agent"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value, hint = getattr(self, field.name), hints[field.name]
            for option in typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,):
                ok, converted = _converted(value, option)
                if ok:
                    setattr(self, field.name, converted)
                    break
            else:
                raise TypeError(f"hyperparameter {field.name!r} of {self.agent} must be {type_name(hint)} like its "
                                f"default {self.defaults()[field.name]!r}, got {value!r}")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every hyperparameter's default, by name."""
        return {field.name: field.default_factory() if field.default is dataclasses.MISSING else field.default
                for field in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping (a config file's table, ``--set`` values, a checkpoint's record); a name
        that is not a hyperparameter is refused with the list of allowed ones and their defaults."""
        if not isinstance(values, Mapping):
            raise TypeError(f"hyperparameters of {cls.agent} must be a mapping of names to values, got {values!r}")
        unknown = sorted(set(values) - set(cls.defaults()))
        if unknown:
            allowed = ", ".join(f"{name}={value!r}" for name, value in sorted(cls.defaults().items()))
            raise ValueError(f"unknown hyperparameter(s) {unknown} for agent {cls.agent!r}; allowed (with defaults): "
                             f"{allowed}")
        return cls(**values)

    @classmethod
    def build(cls, config: Hyperparameters | Mapping[str, Any] | None = None, overrides: Mapping[str, Any] = {}) -> Self:
        """A new instance from ``config`` (an instance or a mapping; None: the defaults) with ``overrides``."""
        if isinstance(config, Hyperparameters):
            if not isinstance(config, cls):
                raise TypeError(f"config of {cls.agent} must be a {cls.__name__}, got a {type(config).__name__}")
            config = config.to_dict()
        return cls.from_dict({**(config or {}), **overrides})

    def to_dict(self) -> dict[str, Any]:
        """The values by name (JSON-serialisable), as checkpoints and ``config.json`` record them."""
        return dataclasses.asdict(self)

    @classmethod
    def help_lines(cls) -> list[str]:
        """One line per hyperparameter: name, type, default and help (``physrl train --agent NAME --help``)."""
        hints = typing.get_type_hints(cls)
        rows = [(field.name, type_name(hints[field.name]), repr(cls.defaults()[field.name]), field.metadata["help"])
                for field in dataclasses.fields(cls)]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return ["  " + "  ".join(part.ljust(width) for part, width in zip(row, widths)) + "  " + row[3]
                for row in rows]

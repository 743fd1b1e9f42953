"""The scorer of the maze return challenge of the course, a repeatable competition.

A submission plays ``physrl/TreasureMazeChallenge-v0`` (15×15 mazes, 10 chests deleted when picked
up, 40 steps) on a fixed evaluation set of :data:`EVAL_SIZE` mazes. Its score is its mean return
divided by the mean exact optimum (:func:`physrl.agents.reference.maze.optimal_return`) of the same mazes, so
the exact optimum scores 1.0 by definition.

**Held-out mazes.** Every random stream of a physrl env is keyed by (seed, episode, domain), see
:mod:`physrl.envs.rng`. Environments made by ``gym.make``/``physrl train`` always use domain 0 (the
domain is not an env option, so no config or command line can change it). The evaluation set is
sub-env ``i`` reset with seed ``i`` (episode 0) in the reserved domain :data:`EVAL_DOMAIN`, for
``i < EVAL_SIZE``, so training never draws an evaluation maze (tested in ``tests/test_challenge.py``).
The set's content hash :data:`EVAL_SET_HASH` is checked before every evaluation, so the shipped
optima :data:`EVAL_OPTIMA` always belong to the mazes that are played.

**Submissions.** A checkpoint written by ``physrl train`` (loaded only through
:func:`physrl.training.checkpoint.load_policy`, which never unpickles code), ``builtin:NAME`` for the reference
policies (:data:`BUILTINS`, from :mod:`physrl.agents.reference`), or ``--policy module:function`` for a Python callable that maps a batch
of observations (float tensor (B, 3, 15, 15): walls, chests, robot) to a batch of actions in 0..4.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import physrl.envs  # noqa: F401  (registers the environments)
from physrl.agents.reference.maze import MazeOptimalPolicy, maze_greedy_policy, optimal_return
from physrl.agents.reference.uniform import random_policy
from physrl.agents.rollout import Policy, play_episodes

CHALLENGE_ENV = "physrl/TreasureMazeChallenge-v0"
#: Random-stream domain of the evaluation mazes; training envs use domain 0.
EVAL_DOMAIN = 0xC4A11E
#: Number of mazes in the evaluation set.
EVAL_SIZE = 1000
#: SHA-256 over the per-maze digests (:func:`maze_digests`) of the evaluation set, in order.
EVAL_SET_HASH = "39e76e3a85f4c835e9583ac67508b5c2e6125cec5fe013bc9c24f090e9856c43"
#: Exact optimum of each evaluation maze, one hexadecimal digit per maze (``a`` = 10 chests).
EVAL_OPTIMA = ("7656778776567646666676775678668678587866569666566855867777867566745746557766675868577677568676676665"
               "6865456486856678659667678876777797768765655656877858866764674768678775676677776767666976669657886867"
               "7867757769667777795658676768787768786687757784666758677756778788764555587986555776867767658976476877"
               "6477962556686756776987697777575587887688687859686866367678888776765757747676774567587987787485675767"
               "8677796a65687864886866457686878776956777856787767866775676877776676777777585565777777577667877778777"
               "5676676876767767577757997668768576577785777667578677678757675676876596965565876683776877686766678664"
               "6986888676877769745875775856667886577896776776664886878554777786777775668667787677557866877555855855"
               "7978878766566756666779986879877666666767777667976667777857756877673586875756657656896679658688677676"
               "6779764656666968775786867777676787865577766666768845687577876767779767585667677575887867756669666466"
               "7757667766685657677668676687566766658689588777567857a76665667667678866786565677659767875667676677768")
RESULT_FORMAT = "physrl-challenge-result-1"
#: Reference submissions scored by ``builtin:NAME``: name -> agent description.
BUILTINS = {"random": "uniformly random actions (seed 0)",
            "greedy": "nearest-chest greedy planner",
            "optimum": "exact optimum: plays the optimal plan of every maze"}


@dataclass
class Submission:
    """What is scored: a policy and what the result JSON says about it."""

    name: str
    agent: str
    policy: Policy
    env_steps: int | None = None
    training_command: str | None = None


def maze_digests(walls: torch.Tensor, chests: torch.Tensor, start: torch.Tensor) -> list[str]:
    """SHA-256 hex digest of each maze's content: walls and chests (bool (n, M·M)) and start cell (n,)."""
    walls, chests = np.packbits(walls.cpu().numpy(), axis=1), np.packbits(chests.cpu().numpy(), axis=1)
    return [hashlib.sha256(w.tobytes() + c.tobytes() + int(s).to_bytes(2, "little")).hexdigest()
            for w, c, s in zip(walls, chests, start.tolist())]


def evaluation_envs(count: int = EVAL_SIZE, device: torch.device | str = "cpu") -> tuple[gym.vector.VectorEnv, torch.Tensor]:
    """The first ``count`` evaluation mazes as a freshly reset vector env, and its first observation."""
    if not 1 <= count <= EVAL_SIZE:
        raise ValueError(f"count must be in [1, {EVAL_SIZE}], got {count}")
    envs = gym.make_vec(CHALLENGE_ENV, num_envs=count, device=device)
    envs.set_random_domain(EVAL_DOMAIN)
    obs, _ = envs.reset(seed=0)
    return envs, obs


def evaluation_set_hash(device: torch.device | str = "cpu") -> str:
    """Content hash of the whole evaluation set, generated on ``device``."""
    digests = maze_digests(*evaluation_envs(EVAL_SIZE, device)[0].mazes())
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def evaluation_optima(count: int = EVAL_SIZE) -> np.ndarray:
    """Exact optimum of the first ``count`` evaluation mazes (shipped, see :data:`EVAL_OPTIMA`)."""
    return np.array([int(digit, 16) for digit in EVAL_OPTIMA[:count]], dtype=np.float64)


def exact_optima(count: int = EVAL_SIZE) -> np.ndarray:
    """Recompute the optima of the first ``count`` evaluation mazes (about 10 ms a maze).

    ``"".join(f"{int(o):x}" for o in exact_optima())`` regenerates :data:`EVAL_OPTIMA`.
    """
    envs = evaluation_envs(count)[0]
    return np.array([optimal_return(layout, envs.max_steps) for layout in envs.layouts()], dtype=np.float64)


def play(policy: Policy, count: int = EVAL_SIZE, device: torch.device | str = "cpu",
         progress: bool = False) -> np.ndarray:
    """Return of ``policy`` on each of the first ``count`` evaluation mazes (one episode each), with a
    progress bar over the episode's steps when ``progress``."""
    envs = evaluation_envs(count, device)[0]
    try:
        with tqdm(total=envs.max_steps, desc=f"playing {count} mazes", unit="step", disable=not progress,
                  leave=False) as bar:
            returns = play_episodes(envs, policy, seed=0, on_step=bar.update)  # the same mazes again
    except (TypeError, ValueError) as error:
        raise ValueError(f"the policy must return {count} integer actions in 0..4 "
                         f"(a tensor of shape ({count},)): {error}") from None
    return returns.cpu().numpy()


def builtin_submission(name: str) -> Submission:
    """``builtin:NAME`` reference submissions (:mod:`physrl.agents.reference`)."""
    if name not in BUILTINS:
        raise ValueError(f"builtin submission must be one of {['builtin:' + n for n in BUILTINS]}, "
                         f"got 'builtin:{name}'")
    space = gym.make_vec(CHALLENGE_ENV, num_envs=1).single_action_space
    policy = {"random": lambda: random_policy(space, seed=0), "greedy": lambda: maze_greedy_policy,
              "optimum": lambda: MazeOptimalPolicy(max_steps=40)}[name]()
    return Submission(name, BUILTINS[name], policy, env_steps=0)


def checkpoint_submission(path: str, device: torch.device | str) -> Submission:
    """A checkpoint of ``physrl train`` on the challenge env, loaded only through ``load_policy``."""
    from physrl.training.checkpoint import checkpoint_file, load_policy

    probe = gym.make_vec(CHALLENGE_ENV, num_envs=1)
    try:
        policy = load_policy(path, device, env_id=CHALLENGE_ENV, observation_space=probe.single_observation_space,
                             action_space=probe.single_action_space)
    except FileNotFoundError as error:
        raise ValueError(f"SUBMISSION: {error}") from None
    file = checkpoint_file(path).resolve()
    name = file.parent.name if file.name == "checkpoint.pt" else file.stem
    return Submission(name, policy.config["agent"], policy, policy.global_step, training_command(policy.config))


def python_submission(spec: str) -> Submission:
    """``module:function`` imported from the Python path (and the working directory)."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--policy must look like module:function (e.g. my_policy:act), got {spec!r}")
    print(f"warning: --policy imports {module_name} and runs its code with your permissions; "
          "only use code you trust", file=sys.stderr)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--policy {spec}: cannot import {module_name}: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"--policy {spec}: {module_name} has no callable named {function_name!r}")
    return Submission(spec, f"python callable {spec}", function)


def score_submission(submission: Submission, device: torch.device | str = "cpu", count: int = EVAL_SIZE,
             progress: bool = False) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Score ``submission`` on the first ``count`` evaluation mazes: (result, returns, optima).

    The score is the ratio of mean return to mean optimum; its standard error is that of a ratio
    estimator on paired samples (zero for the optimum itself).
    """
    found = evaluation_set_hash(device)
    if found != EVAL_SET_HASH:
        raise RuntimeError(f"the evaluation set has changed (hash {found}, expected {EVAL_SET_HASH}): the maze "
                           "generator or the random streams differ from those the challenge was fixed with")
    optima = evaluation_optima(count)
    returns = play(submission.policy, count, device, progress)
    ratio = float(returns.mean() / optima.mean())
    stderr, ratio_stderr = (float(np.std(x, ddof=1) / math.sqrt(count)) if count > 1 else 0.0
                            for x in (returns, (returns - ratio * optima) / optima.mean()))
    result = {"format": RESULT_FORMAT, "name": submission.name, "agent": submission.agent,
              "score": ratio, "score_stderr": ratio_stderr,
              "mean_return": float(returns.mean()), "stderr": stderr, "mean_optimum": float(optima.mean()),
              "mazes": count, "env_steps": submission.env_steps, "device": str(torch.device(device)),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "physrl_version": version("physrl"), "evaluation_set": EVAL_SET_HASH,
              "training_command": submission.training_command}
    return result, returns, optima


def write_result(result: dict[str, Any], returns: np.ndarray, optima: np.ndarray, out: Path) -> Path:
    """Write ``NAME.json`` and the per-maze returns ``NAME.returns.csv`` into ``out``; return the JSON path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", result["name"]).strip("_") or "submission"
    with open(out / f"{stem}.returns.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["maze", "return", "optimum"])
        writer.writerows((i, f"{r:g}", f"{o:g}") for i, (r, o) in enumerate(zip(returns, optima)))
    path = out / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def training_command(config: dict[str, Any]) -> str:
    """A ``physrl train`` command line that reproduces the run of a checkpoint's ``config``."""
    from physrl.training.config import hyperparameter_class

    defaults = hyperparameter_class(config["agent"]).defaults()
    parts = ["physrl train", "--env", config["env_id"], "--agent", config["agent"], "--seed", str(config["seed"]),
             "--num-envs", str(config["num_envs"]), "--total-steps", str(config["total_steps"])]
    if config["env_kwargs"]:
        parts += ["--env-kwargs", shlex.quote(json.dumps(config["env_kwargs"]))]
    for key, value in config["hyperparameters"].items():
        if key not in defaults or json.dumps(value) != json.dumps(defaults[key], default=str):
            parts += ["--set", shlex.quote(f"{key}={json.dumps(value)}")]
    return " ".join(parts)

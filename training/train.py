"""``physrl train``: train an agent on a registered env, with TensorBoard logs, checkpoints and resume.

Every run writes ``{logdir}/{env}__{agent}__{seed}__{timestamp}/`` holding ``checkpoint.pt``,
``config.json`` and TensorBoard events: ``charts/episodic_return``, ``charts/episodic_length``,
``charts/SPS``, ``charts/learning_rate``, the agent's ``losses/*``, a picture of one greedy episode of
the current policy with the env's own charts (``images/episode``, ``charts/*``: see
``BatchCore.episode_summary``) every ``picture_every`` seconds, on the treasure maze the return over
the exact optimum of the training episodes (``charts/optimum_ratio``, see :mod:`physrl.training.maze_log`),
for envs whose rewards are measurements (the oscillator) the single shots taken so far (``charts/shots``),
on the qubit memory with each picture the greedy policy's T_eff/T_dec over 256 episodes
(``charts/t_eff_over_t_dec``, see :mod:`physrl.training.qec_log`),
and the hyperparameters as a text table and in TensorBoard's HPARAMS tab with ``hparams/final_return``.
SIGINT or SIGTERM stops after the current iteration, saves a checkpoint and exits; ``--resume``
continues that run at the same step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

import physrl.envs  # noqa: F401  (registers the environments)
from physrl.agents import ALL_AGENTS
from physrl.agents.distributed import (any_rank, broadcast, gather_to_rank0, join_from_environment,
                                       leave_process_group, rank_and_world_size)
from physrl.agents.hyperparameters import Hyperparameters
from physrl.envs.core import VectorEnv
from physrl.envs.oscillator import OscillatorStatePrepVectorEnv
from physrl.envs.validation import check_float
from physrl.training.checkpoint import (CHECKPOINT_NAME, TRAINING_STATE, checkpoint_file, first_line, load_checkpoint,
                                        make_envs, save_checkpoint, space_spec)
from physrl.training.config import (FIELDS, RunConfig, assign, check_option_names, hyperparameter_class,
                                    parse_assignment, read_config_file)
from physrl.training.maze_log import MazeOptimumLog
from physrl.training.qec_log import QecLifetimeLog
from physrl.training.teacher import attach_teacher

#: agents that train data-parallel under torchrun (their updates are gradient steps), and the parts
#: of their state that differ between ranks (stored per rank in the checkpoint)
DISTRIBUTED_AGENTS = {"tabular-pg", "deep-pg", "dqn"}
RANK_STATE = ("rollout", "generator", "buffer", "baseline_table")
RUN_FIELDS = {field.name: field for field in dataclasses.fields(RunConfig)}
CHECKPOINT_EVERY = 600.0  # seconds between the checkpoints written during training
PICTURE_EVERY = 300.0  # seconds between the episode pictures (also after the first iteration and at the end)
#: Seed of the pictured episode: always the same one, so the pictures compare along a run.
PICTURE_SEED = 1_000_000


class StopSignal:
    """While active, the first SIGINT/SIGTERM only sets ``signum`` (the loop then saves and stops);
    a second one raises ``KeyboardInterrupt``. Outside the main thread no handler is installed."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\nphysrl train: {signal.Signals(signum).name} received, saving a checkpoint after this iteration "
              "(send it again to abort without saving)", file=sys.stderr, flush=True)

    def requested(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class RunLog:
    """TensorBoard writer and progress bar of one run (the bar shows the mean of the last 100 returns)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int, progress: bool,
                 write: bool = True) -> None:
        self.writer = SummaryWriter(str(run_dir)) if write else None
        if start_step == 0 and write:
            rows = {key: config[key] for key in ("env_id", "agent", "seed", "num_envs", "total_steps", "env_kwargs")}
            rows.update(config["hyperparameters"])
            table = "\n".join(f"|{key}|{json.dumps(value)}|" for key, value in rows.items())
            self.writer.add_text("hyperparameters", "|parameter|value|\n|-|-|\n" + table)
        self.bar = tqdm(total=config["total_steps"], initial=start_step, unit="step", disable=not progress,
                        dynamic_ncols=True, desc=f"{config['agent']} on {config['env_id']}")
        self.recent: deque[float] = deque(maxlen=100)
        self.start_step, self.start_time = start_step, time.perf_counter()

    def log_summary(self, step: int, summary: dict[str, Any]) -> None:
        """Write an episode summary (tag -> RGB image (H, W, 3) uint8 or number) at env step ``step``."""
        if self.writer is None:
            return
        for tag, value in summary.items():
            if isinstance(value, np.ndarray):
                self.writer.add_image(tag, value, step, dataformats="HWC")
            else:
                self.writer.add_scalar(tag, float(value), step)

    def log_hparams(self, config: dict[str, Any]) -> None:
        """The run's options and hyperparameters in TensorBoard's HPARAMS tab, with ``hparams/final_return``
        (the mean of the last 100 episodic returns; NaN when no episode ended)."""
        if self.writer is None:
            return
        rows = {key: config[key] for key in ("env_id", "agent", "seed", "num_envs", "total_steps")}
        rows.update(config["hyperparameters"])
        rows = {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
                for key, value in rows.items()}
        final = sum(self.recent) / len(self.recent) if self.recent else float("nan")
        for event in hparams(rows, {"hparams/final_return": final}):
            self.writer.file_writer.add_summary(event)
        self.writer.add_scalar("hparams/final_return", final, self.bar.n)

    def log(self, step: int, stats: dict[str, Any]) -> None:
        """Record one iteration's stats (the agents' ``learn_iteration`` dict) at env step ``step``."""
        if self.writer is None:
            return
        returns, lengths = stats.get("episodic_return", []), stats.get("episodic_length", [])
        if len(returns):
            self.writer.add_scalar("charts/episodic_return", sum(returns) / len(returns), step)
            self.writer.add_scalar("charts/episodic_length", sum(lengths) / max(len(lengths), 1), step)
            self.recent.extend(float(value) for value in returns)
        for key, value in stats.items():
            if "/" in key and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        elapsed = time.perf_counter() - self.start_time
        self.writer.add_scalar("charts/SPS", (step - self.start_step) / max(elapsed, 1e-9), step)
        self.bar.update(min(step, self.bar.total) - self.bar.n)
        if self.recent:
            self.bar.set_postfix(ret=f"{sum(self.recent) / len(self.recent):.3g}", refresh=False)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _new_run_dir(logdir: str | Path, env_id: str, agent: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / f"{env_id.replace('/', '-')}__{agent}__{seed}__{stamp}"
    run_dir, suffix = base, 1
    while True:
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            suffix += 1
            run_dir = base.with_name(f"{base.name}-{suffix}")


def _resume_config(resume: str | Path, given: dict[str, Any]) -> tuple[RunConfig, Any]:
    """The checkpoint's run and checkpoint; options given with ``resume`` must agree with the run's
    (only ``total_steps`` and ``device`` may change)."""
    checkpoint = load_checkpoint(resume, given.get("env_id"))
    changes = {key: given[key] for key in ("total_steps", "device") if key in given}
    config = RunConfig.from_record({**checkpoint["config"], **changes})
    record = config.to_dict()
    for key, value in given.items():
        if key == "hyperparameters":
            value = value.to_dict() if isinstance(value, Hyperparameters) else dict(value)
            resolved = config.hyperparameters.build(config.hyperparameters, value).to_dict()
            differing = {name: resolved[name] for name in value if resolved[name] != record[key][name]}
            if differing:
                raise ValueError(f"resume continues the run as it was: hyperparameters {differing} differ from the "
                                 f"checkpoint's {record[key]}")
        elif key not in ("total_steps", "device", "logdir") and value != record[key]:
            raise ValueError(f"resume continues the run as it was: {key} is {record[key]!r} in the checkpoint, "
                             f"got {value!r} (only total_steps and device may change)")
    return config, checkpoint


@dataclass
class Run:
    """A prepared run: its config, the record a checkpoint keeps of it (the config and the env's spaces),
    envs, learner, folder and start step."""

    config: RunConfig
    record: dict[str, Any]
    envs: gym.vector.VectorEnv
    learner: Any
    run_dir: Path
    start_step: int


def prepare(env_id: str | None = None, agent: str | None = None, *, config: RunConfig | None = None,
            resume: str | Path | None = None, **options: Any) -> Run:
    """Check the options, build envs and learner (restored from ``resume``), create or reuse the run folder.

    ``options`` are fields of :class:`~physrl.training.config.RunConfig` (``num_envs``, ``hyperparameters``,
    ...); they override ``config``. None stands for not given.
    """
    given = {key: value for key, value in {"env_id": env_id, "agent": agent, **options}.items() if value is not None}
    check_option_names(given)
    if resume is not None:
        if config is not None:
            raise ValueError("config and resume exclude each other: resume continues the checkpoint's run")
        config, checkpoint = _resume_config(resume, given)
        if checkpoint["state"].get("policy_only"):
            raise ValueError(f"cannot resume {str(resume)!r}: it is a policy-only checkpoint (export_policy) "
                             "without optimiser and env state; resume from the run's own checkpoint.pt")
    else:
        base = {} if config is None else {name: getattr(config, name) for name in FIELDS}
        config, checkpoint = RunConfig.from_dict({**base, **given}), None

    rank, world_size, local_device = join_from_environment(config.device)
    if world_size > 1:
        if config.agent not in DISTRIBUTED_AGENTS:
            raise ValueError(f"agent must be one of {sorted(DISTRIBUTED_AGENTS)} under torchrun "
                             f"(gradient-based agents of ours), got {config.agent!r}")
        if config.num_envs % world_size:
            raise ValueError(f"num_envs ({config.num_envs}) must be divisible by the number of ranks ({world_size})")
        if checkpoint is not None:
            ranks = checkpoint["state"].get("ranks")
            if ranks is None or len(ranks) != world_size:
                raise ValueError(f"cannot resume on {world_size} ranks: the checkpoint was written by "
                                 f"{1 if ranks is None else len(ranks)}")
    if checkpoint is not None and "ranks" in checkpoint["state"]:
        checkpoint["state"].update(checkpoint["state"]["ranks"][rank])
    envs = make_envs(config.to_dict(), config.num_envs // world_size, local_device)
    spaces = {"observation_shape": list(envs.single_observation_space.shape),
              "observation_space": space_spec(envs.single_observation_space),
              "action_space": space_spec(envs.single_action_space)}
    changed = [key for key, value in spaces.items() if checkpoint is not None and checkpoint["config"][key] != value]
    if changed:
        raise ValueError(f"cannot resume: the env's {changed} differ from the checkpoint's")
    name = config.agent
    try:
        learner = ALL_AGENTS[name](envs, seed=config.seed, config=config.hyperparameters)
    except (ValueError, TypeError) as error:
        envs.close()
        raise type(error)(f"agent {name!r} cannot train on {config.env_id} (observation space "
                          f"{envs.single_observation_space}, action space {envs.single_action_space}): "
                          f"{error}") from None
    config.hyperparameters = learner.config  # resolved against the env (num_steps: the horizon + 1, ...)
    if checkpoint is None:
        start_step = 0
        if config.init_from:
            _start_from_policy(learner, config, spaces)
    else:
        start_step = checkpoint["global_step"]
        if config.total_steps <= start_step and "total_steps" in given:
            raise ValueError(f"total_steps ({config.total_steps}) must be above the step the run has reached "
                             f"({start_step}) to continue it")
        learner.load_state_dict({"global_step": start_step, **checkpoint["state"]})
        if learner.global_step != start_step:
            raise RuntimeError(f"agent {name!r} restored global_step {learner.global_step}, "
                               f"the checkpoint says {start_step}")
    attach_teacher(learner).check_ready()
    if checkpoint is None:
        run_dir = broadcast(_new_run_dir(config.logdir, config.env_id, name, config.seed) if rank == 0 else None)
    else:
        run_dir = checkpoint_file(resume).parent
    record = {**config.to_dict(), **spaces}
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    return Run(config, record, envs, learner, run_dir, start_step)


def _start_from_policy(learner: Any, config: RunConfig, spaces: dict[str, Any]) -> None:
    """Load the trained policy of ``config.init_from`` into a fresh ``learner`` (a curriculum stage): the
    agent's state without what only training keeps (optimiser, rollout, replay buffer, random stream)."""
    source = load_checkpoint(config.init_from)
    if source["config"]["agent"] != config.agent:
        raise ValueError(f"init_from {config.init_from!r} holds a {source['config']['agent']!r} policy, "
                         f"this run trains {config.agent!r}")
    changed = [key for key, value in spaces.items() if source["config"][key] != value]
    if changed:
        raise ValueError(f"init_from {config.init_from!r}: the env's {changed} differ from the checkpoint's "
                         "(a curriculum stage may change env options, not the observation or action spaces)")
    trained = {key: value for key, value in source["state"].items()
               if key not in TRAINING_STATE or key == "target_network"}
    trained.pop("policy_only", None)
    try:
        learner.load_state_dict({**learner.state_dict(), **trained, "global_step": 0})
    except (RuntimeError, KeyError, ValueError) as error:
        raise ValueError(f"init_from {config.init_from!r}: its policy does not fit this run's agent "
                         f"(other network hyperparameters?): {first_line(error)}") from None


def check_seconds(name: str, seconds: float) -> float:
    """``seconds`` if it is a finite number >= 0, else a one-line error naming the argument."""
    return check_float(name, seconds, 0.0, unit="seconds")


def episode_summary(config: dict[str, Any], act: Any, device: torch.device | str) -> dict[str, Any]:
    """Play one greedy episode of ``act`` on a fresh sub-env of the run's env (seed :data:`PICTURE_SEED`)
    and return the env's ``episode_summary`` (tag -> picture or number); ``{}`` for envs without one."""
    envs = make_envs(config, 1, device)
    try:
        face = envs.unwrapped
        if not isinstance(face, VectorEnv):
            return {}
        obs, _ = envs.reset(seed=PICTURE_SEED)
        frames = [face.frame(0)] if face.episode_frames else []
        with torch.no_grad():
            while True:
                obs, _, terminated, truncated, _ = envs.step(act(obs))
                if face.episode_frames:
                    frames.append(face.frame(0))
                if bool(terminated[0] | truncated[0]):
                    return face.episode_summary(0, frames)
    finally:
        envs.close()


def save_run(run: Run) -> tuple[int, dict[str, Any]]:
    """Write the learner's checkpoint (on rank 0, with every rank's RNG state); return (step, state)."""
    rank, world_size = rank_and_world_size()
    step, state = run.learner.global_step, run.learner.state_dict()
    if world_size > 1:
        ranks = gather_to_rank0({key: state[key] for key in RANK_STATE if key in state})
        state = {**state, "ranks": ranks}
    if rank == 0:
        save_checkpoint(run.run_dir / CHECKPOINT_NAME, run.record, step, state)
    return step, state


def execute(run: Run, progress: bool = True, checkpoint_every: float = CHECKPOINT_EVERY,
            picture_every: float = PICTURE_EVERY) -> int | None:
    """Train until ``total_steps`` or a stop signal, then save the checkpoint; return the signal (or None).

    It also saves a checkpoint every ``checkpoint_every`` seconds (decided together on all ranks), so a
    run killed without a signal (out of memory, a lost machine) loses at most that much, and logs a
    picture of one greedy episode after the first iteration, every ``picture_every`` seconds (0: never)
    and at the end.
    """
    record, learner = run.record, run.learner
    rank, world_size = rank_and_world_size()
    check_seconds("checkpoint_every", checkpoint_every)
    check_seconds("picture_every", picture_every)
    learner.total_steps = run.config.total_steps

    def picture() -> None:
        if rank == 0 and picture_every > 0:
            summary = episode_summary(record, learner.act, learner.device)
            if lifetime is not None:
                summary.update(lifetime.stats())
            log.log_summary(learner.global_step, summary)
    with StopSignal() as stop:
        log = RunLog(run.run_dir, record, run.start_step, progress and rank == 0, write=rank == 0)
        try:
            saved, pictured = time.monotonic(), None
            optimum = MazeOptimumLog(run.envs, learner) if MazeOptimumLog.applies(run.envs, learner) else None
            counts_shots = isinstance(run.envs, OscillatorStatePrepVectorEnv)  # rewards from measurements
            lifetime = QecLifetimeLog(record, learner) if QecLifetimeLog.applies(run.envs, learner) else None
            while learner.global_step < run.config.total_steps and not any_rank(stop.requested()):
                stats = learner.learn_iteration()
                optimizer = getattr(learner, "optimizer", None)
                if optimizer is not None:
                    stats["charts/learning_rate"] = float(optimizer.param_groups[0]["lr"])
                if optimum is not None and rank == 0:
                    stats.update(optimum.stats())
                if counts_shots:
                    stats["charts/shots"] = run.envs.shots * world_size
                log.log(learner.global_step, stats)
                if pictured is None or time.monotonic() - pictured >= picture_every:
                    picture()
                    pictured = time.monotonic()
                if any_rank(time.monotonic() - saved >= checkpoint_every):
                    save_run(run)
                    saved = time.monotonic()
            step, _ = save_run(run)
            picture()
            log.log_hparams(record)
        finally:
            log.close()
            run.envs.close()
    if stop.signum is not None:
        print(f"physrl train: stopped at step {step}; continue with: physrl train --resume {run.run_dir}",
              file=sys.stderr)
    return stop.signum


def train(env_id: str | None = None, agent: str | None = None, *, config: RunConfig | None = None,
          resume: str | Path | None = None, progress: bool = True, checkpoint_every: float = CHECKPOINT_EVERY,
          picture_every: float = PICTURE_EVERY, **options: Any) -> Path:
    """Train ``agent`` on ``env_id`` and return the run folder (with ``checkpoint.pt`` and ``config.json``).

    ``options`` are the other fields of :class:`~physrl.training.config.RunConfig`, with its defaults
    (``num_envs=16, device="cpu", total_steps=100_000, seed=0, logdir="runs"``), ``env_kwargs`` and
    ``hyperparameters`` (a mapping, checked against the agent's dataclass: an unknown name raises
    ``ValueError`` listing the allowed ones, or the dataclass itself); they override ``config``, a whole
    :class:`~physrl.training.config.RunConfig`. ``resume`` (a checkpoint or run folder) continues that
    run in its folder at its global step; with it only ``total_steps`` (to train longer) and ``device``
    may differ from the run's. A SIGINT/SIGTERM during training saves the checkpoint and returns early;
    a checkpoint is also saved every ``checkpoint_every`` seconds (default 600), and a picture of one
    greedy episode is logged every ``picture_every`` seconds (default 300; 0: never).
    """
    check_seconds("checkpoint_every", checkpoint_every)
    check_seconds("picture_every", picture_every)
    run = prepare(env_id, agent, config=config, resume=resume, **options)
    execute(run, progress, checkpoint_every, picture_every)
    return run.run_dir


EPILOG = """\
examples:
  physrl train --env physrl/TreasureMazeChallenge-v0 --agent deep-pg --num-envs 64 --total-steps 200000
  physrl train --env physrl/TreasureMaze-v0 --env-kwargs '{"size": 7, "n_chests": 3}' --agent sb3-ppo --set n_steps=64
  physrl train --env CartPole-v1 --agent deep-pg --total-steps 100000     (any registered Gymnasium env)
  physrl train --config run.yaml --set learning_rate=1e-3 --set env_kwargs.size=7 --set seed=3
  physrl train --agent deep-pg --help     (the agent's hyperparameters: type, default, help)
  physrl train --resume runs/physrl-TreasureMaze-v0__dqn__0__20250101-120000 --total-steps 400000

A config file (YAML or TOML) may hold env, agent, num_envs, device, total_steps, seed, logdir,
env_kwargs and hyperparameters (a mapping); the flags override it, and --set overrides both:
--set NAME=VALUE sets a run option or a hyperparameter, --set env_kwargs.NAME=VALUE one env option,
--set hyperparameters.NAME=VALUE one hyperparameter. An unknown hyperparameter name is refused with
the list of allowed names and their defaults.
Ctrl-C or SIGTERM saves a checkpoint and exits (status 128 + signal number); --resume continues.
"""


#: run options that are flags of their own (--num-envs N, ...), with the defaults and help of RunConfig
RUN_FLAGS = ("num_envs", "device", "total_steps", "seed", "logdir", "init_from")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("-h", "--help", action="store_true", dest="show_help",  # replaces argparse's (cli.py)
                        help="show this help (with --agent NAME: that agent's hyperparameters) and exit")
    parser.add_argument("--env", metavar="ID", help=RUN_FIELDS["env_id"].metadata["help"])
    parser.add_argument("--agent", metavar="NAME", help=RUN_FIELDS["agent"].metadata["help"])
    for name in RUN_FLAGS:
        field = RUN_FIELDS[name]
        metavar = "PATH" if name == "init_from" else name.split("_")[-1].upper()
        parser.add_argument("--" + name.replace("_", "-"), type=int if field.type == "int" else str,
                            metavar=metavar, help=f"{field.metadata['help']} (default {field.default})")
    parser.add_argument("--config", metavar="FILE", help="YAML or TOML file with run options and hyperparameters")
    parser.add_argument("--resume", metavar="PATH", help="checkpoint.pt or run folder to continue")
    parser.add_argument("--env-kwargs", metavar="JSON", help='env options as a JSON object, e.g. \'{"size": 7}\'')
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="set a hyperparameter, a run option, env_kwargs.NAME or hyperparameters.NAME "
                             "(repeatable); VALUE is read as JSON when it is JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--checkpoint-every", type=float, default=CHECKPOINT_EVERY, metavar="SECONDS",
                        help=f"save a checkpoint this often during training (default {CHECKPOINT_EVERY:.0f})")
    parser.add_argument("--picture-every", type=float, default=PICTURE_EVERY, metavar="SECONDS",
                        help=f"log a picture of one greedy episode to TensorBoard this often (default "
                             f"{PICTURE_EVERY:.0f}, plus after the first iteration and at the end; 0: never)")
    parser.set_defaults(format_help=parser.format_help)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`prepare`: the config file, overridden by the flags, then by ``--set``."""
    options = read_config_file(args.config) if args.config else {}
    if "env" in options:
        options["env_id"] = options.pop("env")
    if args.env_kwargs is not None:
        try:
            given = json.loads(args.env_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}: {error}") from None
        if not isinstance(given, dict):
            raise ValueError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
        options["env_kwargs"] = {**(options.get("env_kwargs") or {}), **given}
    flags = {"env_id": args.env, "agent": args.agent, **{name: getattr(args, name) for name in RUN_FLAGS}}
    options.update({key: value for key, value in flags.items() if value is not None})
    for text in args.assignments:
        assign(options, *parse_assignment(text))
    return {**options, "resume": args.resume}


def help_text(args: argparse.Namespace) -> str:
    """``physrl train --help``, and with an agent (``--agent`` or the config file's) its hyperparameters."""
    agent = args.agent or (read_config_file(args.config).get("agent") if args.config else None)
    if agent is None:
        return args.format_help()
    hyperparameters = hyperparameter_class(agent)
    return (f"{args.format_help()}\nhyperparameters of {agent} (--set NAME=VALUE; {hyperparameters.__name__}):\n"
            + "\n".join(hyperparameters.help_lines()) + "\n")


def run(args: argparse.Namespace) -> int:
    """``physrl train``; under torchrun every rank leaves the process group before it returns, on every
    path (see :func:`physrl.agents.distributed.leave_process_group`)."""
    if args.show_help:
        try:
            print(help_text(args), end="")
        except (ValueError, TypeError) as error:
            print(f"physrl train: error: {error}", file=sys.stderr)
            return 2
        return 0
    finished = False
    try:
        try:
            check_seconds("checkpoint_every", args.checkpoint_every)
            check_seconds("picture_every", args.picture_every)
            prepared = prepare(**options_from_args(args))
        except (ValueError, TypeError, FileNotFoundError) as error:
            print(f"physrl train: error: {error}", file=sys.stderr)
            return 2
        try:
            signum = execute(prepared, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
                             picture_every=args.picture_every)
        except KeyboardInterrupt:
            print(f"physrl train: aborted without saving; the last checkpoint (if any) is in {prepared.run_dir}",
                  file=sys.stderr)
            return 128 + signal.SIGINT
        finished = True
    finally:
        rank = rank_and_world_size()[0]
        leave_process_group(synchronize=finished)  # the barrier only where every rank got here
    if rank == 0:
        print(prepared.run_dir)
    return 0 if signum is None else 128 + signum

"""``physrl bench``: env-steps per second of the vector faces against what a user would otherwise run
(``physrl bench envs``), and training steps per second of our agent against SB3 (``physrl bench train``).

Every measurement warms up first, then steps with random actions (generated on the device for the
vector face) for a fixed wall-clock budget. Steps in which a sub-env only autoresets (Gymnasium's
NEXT_STEP mode) are not counted. Every measurement is bounded in time (``--timeout``; one that runs
over is reported as skipped), and Gymnasium's async vector env starts its workers from a fork server
(never by forking a process whose torch threads may hold locks). Prints a table, or one JSON object
per line with ``--json``, and the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import multiprocessing
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterator, TextIO

import gymnasium as gym
import numpy as np
import torch

import physrl.envs  # noqa: F401  (registers the environments)
from physrl.envs import ENVIRONMENTS
from physrl.training.checkpoint import check_device

SIZES = [1, 64, 1024, 4096, 16384, 65536]
QUICK_SIZES = [1, 64, 1024]
#: Beyond these sizes the single-env alternatives take minutes to build (sync) or one process per env (async).
MAX_SYNC, MAX_ASYNC = 4096, 64
#: The reference loop of QuTiP operations of each quantum env (env id -> module under physrl.training.bench).
QUTIP_LOOPS = {"physrl/QubitErrorCorrection-v0": "qutip_qec", "physrl/OscillatorStatePrep-v0": "qutip_oscillator"}
TIMEOUT = 120.0  # seconds one measurement may take, building its envs included
#: start method of the async workers: a fork server that has imported torch (fast starts), so no
#: worker is forked from a process whose torch/OpenMP threads may hold a lock (the child then hangs)
ASYNC_CONTEXT = "forkserver"
FORKSERVER_PRELOAD = ["torch", "gymnasium", "physrl.envs"]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block after ``seconds`` of wall time (SIGALRM; in the main thread only,
    elsewhere the block runs unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_action_sampler(space: gym.Space, num_envs: int, device: torch.device) -> Callable[[], torch.Tensor]:
    generator = torch.Generator(device=device).manual_seed(0)
    if isinstance(space, gym.spaces.Discrete):
        return lambda: torch.randint(int(space.start), int(space.start + space.n), (num_envs,),
                                     device=device, generator=generator)
    low = torch.as_tensor(space.low, device=device)
    width = torch.as_tensor(space.high - space.low, device=device)
    return lambda: low + width * torch.rand((num_envs, *space.shape), device=device, generator=generator)


def time_loop(step: Callable[[], Any], seconds: float, device: torch.device, warmup: int = 3) -> tuple[float, int]:
    """Run ``step`` (returning the number of counted env-steps) for ``seconds``; return (steps/s, calls)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    counted, calls = 0, 0
    start = time.perf_counter()
    while True:
        counted = counted + step()
        calls += 1
        if calls % 4 == 0 and time.perf_counter() - start > seconds:
            break
    synchronize(device)
    elapsed = time.perf_counter() - start
    return float(counted) / elapsed, calls


def bench_vector(env_id: str, num_envs: int, device: torch.device, seconds: float) -> dict:
    envs = gym.make_vec(env_id, num_envs=num_envs, device=device)
    envs.reset(seed=0)
    sample = device_action_sampler(envs.single_action_space, num_envs, device)
    done = torch.zeros(num_envs, dtype=torch.bool, device=device)

    def step() -> torch.Tensor:
        nonlocal done
        counted = (~done).sum()
        _, _, terminated, truncated, _ = envs.step(sample())
        done = terminated | truncated
        return counted

    rate, _ = time_loop(step, seconds, device)
    core_state = envs.state_dict()["core"]
    return {"steps_per_s": rate, "bytes_per_env": sum(t.numel() * t.element_size() for t in core_state.values()) / num_envs}


def bench_gymnasium(env_id: str, num_envs: int, mode: str, seconds: float) -> dict:
    vector_kwargs = {}
    if mode == "async":
        multiprocessing.get_context(ASYNC_CONTEXT).set_forkserver_preload(FORKSERVER_PRELOAD)
        vector_kwargs = {"context": ASYNC_CONTEXT}
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    done = np.zeros(num_envs, dtype=bool)

    def step() -> int:
        nonlocal done
        counted = int((~done).sum())
        _, _, terminated, truncated, _ = envs.step(envs.action_space.sample())
        done = terminated | truncated
        return counted

    try:
        rate, _ = time_loop(step, seconds, torch.device("cpu"), warmup=1)
    except BaseException:
        if mode == "async":
            envs.close(terminate=True)  # a worker that timed out is not waited for
        else:
            envs.close()
        raise
    envs.close()
    return {"steps_per_s": rate, "bytes_per_env": None}


def bench_qutip(env_id: str, num_envs: int, seconds: float) -> dict:
    module = importlib.import_module(f"physrl.training.bench.{QUTIP_LOOPS[env_id]}")
    steps = max(2, int(seconds * 200 / num_envs))
    return {"steps_per_s": module.qutip_steps_per_second(num_envs=num_envs, steps=steps, seed=0),
            "bytes_per_env": None}


def out_of_memory(error: RuntimeError) -> bool:
    """Whether ``error`` is a failed allocation (CUDA's OutOfMemoryError or the CPU allocator's)."""
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def measurements(env_ids: list[str], sizes: list[int], devices: list[torch.device], impls: list[str],
                 seconds: float, timeout: float = TIMEOUT) -> Iterator[dict]:
    """Yield one record per (env, impl, num_envs, device), then the ratios against the alternatives.
    A measurement that fails to allocate or runs past ``timeout`` seconds is yielded as skipped."""
    for env_id in env_ids:
        rates: dict[tuple[str, str, int], float] = {}
        for num_envs in sizes:
            runs: list[tuple[str, str, Callable[[], dict]]] = []
            for device in devices:
                if "vector" in impls:
                    runs.append(("vector", device.type, lambda d=device: bench_vector(env_id, num_envs, d, seconds)))
            if "sync" in impls and num_envs <= MAX_SYNC:
                runs.append(("sync", "cpu", lambda: bench_gymnasium(env_id, num_envs, "sync", seconds)))
            if "async" in impls and num_envs <= MAX_ASYNC:
                runs.append(("async", "cpu", lambda: bench_gymnasium(env_id, num_envs, "async", seconds)))
            if "qutip" in impls and env_id in QUTIP_LOOPS and num_envs <= MAX_ASYNC:
                runs.append(("qutip", "cpu", lambda: bench_qutip(env_id, num_envs, seconds)))
            for impl, device_name, run in runs:
                try:
                    with time_limit(timeout):
                        result = run()
                except (RuntimeError, TimeoutError) as error:
                    if not isinstance(error, TimeoutError) and not out_of_memory(error):
                        raise
                    yield {"env": env_id, "impl": impl, "num_envs": num_envs, "device": device_name,
                           "steps_per_s": None, "bytes_per_env": None,
                           "skipped": str(error) if isinstance(error, TimeoutError) else "out of memory"}
                    continue
                rates[impl, device_name, num_envs] = result["steps_per_s"]
                yield {"env": env_id, "impl": impl, "num_envs": num_envs, "device": device_name, **result}
        for (impl, device_name, num_envs), rate in rates.items():
            if impl != "vector":
                continue
            for other in ("sync", "async", "qutip"):
                if (other, "cpu", num_envs) in rates:
                    yield {"env": env_id, "ratio": f"vector[{device_name}] / {other}", "num_envs": num_envs,
                           "value": rate / rates[other, "cpu", num_envs]}


def bench_train(env_id: str, num_envs: int, total_steps: int, device: str, seed: int,
                episodes: int, hyperparameters: dict | None = None, progress: bool = False) -> Iterator[dict]:
    """End-to-end training steps per second of our DeepPolicyGradient and of sb3-ppo on the same env,
    device and env steps, and the return each reached: sb3-ppo with its defaults, ours with
    ``hyperparameters`` (default: its defaults too)."""
    from physrl.training.checkpoint import load_checkpoint
    from physrl.training.evaluate import evaluate
    from physrl.training.train import train

    rates = {}
    with tempfile.TemporaryDirectory() as logdir:
        for agent in ("deep-pg", "sb3-ppo"):
            start = time.perf_counter()
            ours = hyperparameters if agent == "deep-pg" else None
            run_dir = train(env_id, agent, num_envs=num_envs, device=device, total_steps=total_steps, seed=seed,
                            logdir=logdir, progress=progress, hyperparameters=ours, picture_every=0)
            seconds = time.perf_counter() - start
            steps = load_checkpoint(run_dir)["global_step"]
            result = evaluate(run_dir, episodes=episodes, device=device, progress=progress)
            rates[agent] = steps / seconds
            yield {"bench": "train", "env": env_id, "agent": agent, "num_envs": num_envs, "device": device,
                   **({"hyperparameters": ours} if ours else {}),
                   "env_steps": steps, "seconds": seconds, "steps_per_s": rates[agent],
                   "mean_return": result["mean"], "stderr": result["stderr"],
                   **({"ratio_to_optimum": result["ratio"]} if "ratio" in result else {})}
    yield {"bench": "train", "env": env_id, "ratio": "deep-pg / sb3-ppo", "value": rates["deep-pg"] / rates["sb3-ppo"]}


def table_row(record: dict) -> str:
    """One line of the human-readable table for a record of :func:`measurements` or :func:`bench_train`."""
    if "ratio" in record:
        size = f"{record['num_envs']:>9}" if "num_envs" in record else " " * 9
        return f"{record['env']:<34} {record['ratio']:<30} {size} {record['value']:>12.3g}x"
    if record.get("bench") == "train":
        return (f"{record['env']:<34} {record['agent']:<8} {record['device']:<7} {record['num_envs']:>9} "
                f"{record['steps_per_s']:>12,.0f} {record['env_steps']:>10} {record['seconds']:>9.1f} "
                f"{record['mean_return']:>9.4g} ± {record['stderr']:.2g}")
    rate = "-" if record["steps_per_s"] is None else f"{record['steps_per_s']:,.0f}"
    memory = "-" if record["bytes_per_env"] is None else f"{record['bytes_per_env']:,.0f}"
    return (f"{record['env']:<34} {record['impl']:<8} {record['device']:<7} {record['num_envs']:>9} {rate:>14} "
            f"{memory:>10}  {record.get('skipped', '')}".rstrip())


TABLE_HEADERS = {
    "envs": f"{'env':<34} {'impl':<8} {'device':<7} {'num_envs':>9} {'env-steps/s':>14} {'bytes/env':>10}",
    "train": f"{'env':<34} {'agent':<8} {'device':<7} {'num_envs':>9} {'env-steps/s':>12} {'env steps':>10} "
             f"{'seconds':>9} {'return':>9}",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=["envs", "train"], default="envs",
                        help="envs: env-steps/s of every implementation; train: training SPS of deep-pg vs sb3-ppo")
    parser.add_argument("--env", action="append", dest="envs", metavar="ID",
                        help="env id to measure (repeatable; default: every registered physrl env)")
    parser.add_argument("--num-envs", type=int, nargs="+", metavar="N",
                        help=f"batch sizes (default {SIZES}, --quick {QUICK_SIZES})")
    parser.add_argument("--device", action="append", dest="devices", metavar="D",
                        help="device for the vector face (repeatable; default cpu, plus cuda when available)")
    parser.add_argument("--impl", nargs="+", choices=["vector", "sync", "async", "qutip"],
                        default=["vector", "sync", "async", "qutip"], help="implementations to measure")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per measurement (default 1)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
                        help=f"envs: a measurement taking longer is reported as skipped (default {TIMEOUT:g})")
    parser.add_argument("--quick", action="store_true", help="small sizes and budgets, for CI")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="print one JSON object per line instead of the table; with PATH also write them there")
    parser.add_argument("--total-steps", type=int, default=200_000, metavar="S",
                        help="train: env steps of each training run (default 200000, --quick 5000)")
    parser.add_argument("--episodes", type=int, default=500, metavar="N",
                        help="train: evaluation episodes of each trained policy (default 500)")
    parser.add_argument("--config", metavar="FILE",
                        help="train: a physrl train config whose deep-pg hyperparameters (and env and num_envs, "
                             "unless given) are measured instead of the defaults")


def records_from_args(args: argparse.Namespace) -> Iterator[dict]:
    """Check the options (a ValueError names a bad one) and return the measurements they ask for."""
    known = sorted(ENVIRONMENTS)
    for env_id in args.envs or []:
        if env_id not in ENVIRONMENTS:
            raise ValueError(f"--env must be one of {known}, got {env_id!r}")
    sizes = args.num_envs or (QUICK_SIZES if args.quick else SIZES)
    if any(n < 1 for n in sizes):
        raise ValueError(f"--num-envs must be positive, got {sizes}")
    devices = [check_device(d) for d in (args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]))]
    seconds = min(args.seconds, 0.2) if args.quick else args.seconds
    if not seconds > 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout}")
    if args.what == "train":
        steps = min(args.total_steps, 5000) if args.quick else args.total_steps
        from physrl.training.train import read_config_file
        recipe = read_config_file(args.config) if args.config else {}
        if recipe.get("agent", "deep-pg") != "deep-pg":
            raise ValueError(f"--config must be a deep-pg config, got agent {recipe['agent']!r}")
        return (record for env_id in (args.envs or [recipe.get("env", "physrl/TreasureMazeChallenge-v0")])
                for device in devices for num_envs in (args.num_envs or [recipe.get("num_envs", 64)])
                for record in bench_train(env_id, num_envs, steps, str(device), 0, args.episodes,
                                          recipe.get("hyperparameters"), progress=True))
    return measurements(args.envs or list(ENVIRONMENTS), sizes, devices, args.impl, seconds, args.timeout)


def run(args: argparse.Namespace) -> int:
    try:
        records = records_from_args(args)
    except ValueError as error:
        print(f"physrl bench: error: {error}", file=sys.stderr)
        return 2
    out: TextIO | None = open(args.json, "w") if args.json not in (None, "-") else None
    if args.json is None:
        print(TABLE_HEADERS[args.what], flush=True)
    try:
        for record in records:
            line = json.dumps(record)
            print(line if args.json is not None else table_row(record), flush=True)
            if out:
                out.write(line + "\n")
    finally:
        if out:
            out.close()
    return 0

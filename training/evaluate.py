"""``physrl evaluate``: mean return ± standard error of a checkpoint's policy on fresh episodes.

Episode ``j`` is the first episode of a sub-env seeded with ``seed + j``, so every checkpoint evaluated
with the same seed meets the same episodes (on maze envs: the same mazes). On maze envs the exact
optimum of those mazes (:func:`physrl.agents.reference.maze.optimal_return`) and the ratio of the means
are reported too.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from physrl.agents.reference.maze import optimal_return
from physrl.agents.rollout import play_episodes
from physrl.envs.maze import TreasureMazeVectorEnv
from physrl.envs.validation import check_int
from physrl.training.checkpoint import load_policy, make_envs

#: default evaluation seed, far from the seeds 0, 1, ... that training runs use
EVAL_SEED = 1_000_000
#: sub-envs run side by side at most
CHUNK = 1024


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def evaluate(checkpoint: str | Path, episodes: int = 100, seed: int = EVAL_SEED, device: str = "cpu",
             deterministic: bool = True, progress: bool = False) -> dict[str, Any]:
    """Run ``episodes`` episodes of the checkpoint's policy on its env (with the run's env kwargs).

    Returns ``{"episodes", "mean", "stderr", "returns"}`` and, on maze envs, ``"optimum_mean"``,
    ``"optimum_stderr"`` and ``"ratio"`` (mean return / mean optimum of the same mazes).
    ``progress`` shows a bar over the episodes (and the optima) on stderr.
    """
    episodes = check_int("episodes", episodes, 1)
    seed = check_int("seed", seed, 0)
    policy = load_policy(checkpoint, device, deterministic=deterministic)
    returns: list[float] = []
    optima: list[float] = []
    bar = tqdm(total=episodes, desc="evaluating", unit="episode", disable=not progress, leave=False)
    for start in range(0, episodes, CHUNK):
        count = min(CHUNK, episodes - start)
        envs = make_envs(policy.config, count, device)
        mazes = envs.unwrapped
        if isinstance(mazes, TreasureMazeVectorEnv):  # the mazes that the same seeds draw below
            envs.reset(seed=seed + start)
            optima.extend(float(optimal_return(layout, mazes.max_steps, mazes.options["delete_chests"]))
                          for layout in tqdm(mazes.layouts(), desc="exact optima", unit="maze", disable=not progress,
                                             leave=False))
        returns.extend(play_episodes(envs, policy, seed + start).tolist())
        bar.update(count)
        envs.close()
    bar.close()
    mean, stderr = _mean_stderr(returns)
    result: dict[str, Any] = {"episodes": episodes, "mean": mean, "stderr": stderr, "returns": returns}
    if optima:
        optimum_mean, optimum_stderr = _mean_stderr(optima)
        result.update(optimum_mean=optimum_mean, optimum_stderr=optimum_stderr,
                      ratio=mean / optimum_mean if optimum_mean else float("nan"))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint.pt or run folder")
    parser.add_argument("--episodes", type=int, default=100, metavar="N", help="episodes to run (default 100)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED, metavar="K",
                        help=f"episode j uses seed K + j (default {EVAL_SEED})")
    parser.add_argument("--device", default="cpu", metavar="D", help="torch device (default cpu)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the greedy one")


def run(args: argparse.Namespace) -> int:
    try:
        result = evaluate(args.checkpoint, args.episodes, args.seed, args.device, not args.stochastic, progress=True)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"physrl evaluate: error: {error}", file=sys.stderr)
        return 2
    print(f"return: {result['mean']:.4g} ± {result['stderr']:.2g} (mean ± standard error, "
          f"{result['episodes']} episodes, seeds {args.seed}..{args.seed + result['episodes'] - 1})")
    if "ratio" in result:
        print(f"exact optimum of the same mazes: {result['optimum_mean']:.4g} ± {result['optimum_stderr']:.2g}; "
              f"ratio {result['ratio']:.3f}")
    return 0

"""Ship a trained oscillator run as a small JSON result anyone can replay (results/oscillator/fock-{n}.json).

The file holds the mean (deterministic) policy's T actions in the env's own units [−1, 1], their
exact fidelity, the single-shot measurements the training used, and the gradient optimal-control
fidelity for the same target and settings (:func:`physrl.agents.reference.oscillator.optimal_fidelity`)
with its actions, so that both figures are re-derived by replaying the actions through
``gym.make(env_id, **env_kwargs, reward_mode="fidelity")``::

    python -m physrl.training.oscillator_results RUN_DIR results/oscillator/fock-3.json \\
        --command "physrl train --config training/configs/oscillator_fock.yaml --env-kwargs '{\\"n\\": 3}'"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from physrl.agents.reference.oscillator import optimal_fidelity
from physrl.training.checkpoint import load_checkpoint, load_policy, source_commit

#: env steps per single-shot measurement: T = 5 control steps and the vector face's autoreset step
STEPS_PER_SHOT = 6
ENV_KEYS = ("control", "n", "n_levels", "alpha_max", "snap_phases", "max_steps")


def replay_fidelity(env_id: str, env_kwargs: dict[str, Any], actions: np.ndarray) -> float:
    """Exact fidelity of the action sequence (T, action size) replayed on a fresh single env."""
    env = gym.make(env_id, **env_kwargs, reward_mode="fidelity")
    env.reset(seed=0)
    for action in np.asarray(actions, dtype=np.float32):
        _, _, terminated, truncated, info = env.step(action)
    if not truncated or terminated:
        raise ValueError(f"{len(actions)} actions do not make one episode of {env_id} with {env_kwargs}")
    return float(info["fidelity"])


def mean_policy_actions(run_dir: str | Path) -> tuple[np.ndarray, dict[str, Any], int]:
    """(actions (T, action size) of the run's greedy policy, the run's config, its global step)."""
    checkpoint = load_checkpoint(run_dir)
    config = checkpoint["config"]
    policy = load_policy(run_dir)
    env = gym.make_vec(config["env_id"], num_envs=1, **config["env_kwargs"])
    obs, _ = env.reset(seed=0)
    actions = []
    with torch.no_grad():
        for _ in range(env.unwrapped.max_steps):
            action = policy(obs)
            actions.append(np.asarray(action[0].cpu(), dtype=np.float32))
            obs, *_ = env.step(action)
    return np.stack(actions), config, int(checkpoint["global_step"])


def export_result(run_dir: str | Path, path: str | Path, command: str, limit_restarts: int = 16) -> dict[str, Any]:
    """Write the result of the run in ``run_dir`` to ``path`` (JSON) and return it."""
    actions, config, global_step = mean_policy_actions(run_dir)
    env_kwargs = {key: config["env_kwargs"][key] for key in ENV_KEYS if key in config["env_kwargs"]}
    env_kwargs.setdefault("control", "snap_displacement")
    limit_options = {key: value for key, value in env_kwargs.items() if key != "n"}
    limit = optimal_fidelity(env_kwargs.get("n", 1), restarts=limit_restarts, iterations=500, polish=3,
                             polish_iterations=300, seed=0, **limit_options)
    commit = source_commit()
    result = {
        "env_id": config["env_id"],
        "env_kwargs": env_kwargs,
        "actions": actions.tolist(),
        "fidelity": replay_fidelity(config["env_id"], env_kwargs, actions),
        "shots": global_step // STEPS_PER_SHOT,
        "env_steps": global_step,
        "seed": config["seed"],
        "agent": config["agent"],
        "hyperparameters": config["hyperparameters"],
        "command": command,
        "commit": commit,
        "limit_fidelity": limit.fidelity,
        "limit_actions": limit.actions.tolist(),
        "limit_command": f"optimal_fidelity({env_kwargs.get('n', 1)}, restarts={limit_restarts}, iterations=500, "
                         f"polish=3, polish_iterations=300, seed=0, **{limit_options})",
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="run folder (or checkpoint) of an OscillatorStatePrep training run")
    parser.add_argument("path", help="the JSON file to write")
    parser.add_argument("--command", required=True, help="the command that trained the run (recorded)")
    args = parser.parse_args(argv)
    result = export_result(args.run_dir, args.path, args.command)
    print(f"{args.path}: F = {result['fidelity']:.5f} with {result['shots']} shots, limit {result['limit_fidelity']:.6f}")


if __name__ == "__main__":
    main()

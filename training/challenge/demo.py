"""``make demo``: train ``DeepPolicyGradient`` on the maze challenge on CPU, score it, picture a rollout.

Run as ``python -m physrl.training.challenge.demo``. It trains through :func:`physrl.training.train` (progress
bar, TensorBoard logs in ``runs/``), then plays the trained agent, the random policy, the greedy
planner and the exact optimum on the first :data:`HELD_OUT` mazes of the challenge's evaluation set
(never seen in training) and saves a strip of frames of one trained rollout next to the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib import image

from physrl.agents.rollout import Policy
from physrl.training.challenge.scorer import (CHALLENGE_ENV, builtin_submission, checkpoint_submission,
                                              evaluation_envs, score_submission)
from physrl.training.train import train

#: Number of evaluation mazes the demo plays.
HELD_OUT = 200
TOTAL_STEPS = 120_000
NUM_ENVS = 32
HYPERPARAMETERS = {"network": "value_prop", "num_steps": 64}
FRAME_EVERY = 5


def rollout_strip(policy: Policy, maze: int, every: int = FRAME_EVERY) -> np.ndarray:
    """Frames of ``policy`` on evaluation maze ``maze``, one every ``every`` steps, side by side."""
    envs, obs = evaluation_envs(maze + 1)
    frames, step, done = [envs.frame(maze)], 0, False
    with torch.no_grad():
        while not done:
            obs, _, terminated, truncated, _ = envs.step(policy(obs))
            step, done = step + 1, bool(terminated[maze] | truncated[maze])
            if done or step % every == 0:
                frames.append(envs.frame(maze))
    gap = np.full((frames[0].shape[0], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([part for frame in frames for part in (frame, gap)][:-1], axis=1)


def main() -> None:
    run_dir = train(CHALLENGE_ENV, "deep-pg", num_envs=NUM_ENVS, total_steps=TOTAL_STEPS, seed=0,
                    hyperparameters=HYPERPARAMETERS)
    trained = checkpoint_submission(str(run_dir), "cpu")
    submissions = [trained] + [builtin_submission(name) for name in ("random", "greedy", "optimum")]
    print(f"\nMean return on the first {HELD_OUT} mazes of the challenge's evaluation set (never used in training):\n")
    print("| policy | mean return ± s.e. | ratio to optimum |\n|---|---|---|")
    for submission in submissions:
        result, returns, _ = score_submission(submission, count=HELD_OUT)
        if submission is trained:
            best = int(np.argmax(returns))
        label = f"deep-pg, {trained.env_steps:,} steps" if submission is trained else submission.name
        print(f"| {label} | {result['mean_return']:.2f} ± {result['stderr']:.2f} | {result['score']:.3f} |")
    picture = Path(run_dir) / "rollout.png"
    image.imsave(picture, rollout_strip(trained.policy, best))
    print(f"\nThe trained agent on its best held-out maze (#{best}, a frame every {FRAME_EVERY} steps): {picture}")
    print(f"TensorBoard: .venv/bin/tensorboard --logdir runs   (this run: {run_dir}), then open http://localhost:6006")


if __name__ == "__main__":
    main()

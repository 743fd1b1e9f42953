"""DQN checkpoints hold only the filled part of the replay buffer, and resume exactly from it."""

import torch

from physrl.training import train
from physrl.training.checkpoint import load_checkpoint
from test_training import assert_same

CHALLENGE = "physrl/TreasureMazeChallenge-v0"


def test_short_dqn_run_on_the_challenge_leaves_a_small_checkpoint_and_resumes_exactly(tmp_path):
    # the default buffer_size=100_000 preallocates 540 MB of image observations; 640 steps fill 640 slots
    options = {"num_envs": 4, "hyperparameters": {"learning_starts": 64, "batch_size": 16},
               "progress": False, "picture_every": 0}
    straight = train(CHALLENGE, "dqn", total_steps=640, logdir=tmp_path / "straight", **options)
    split = train(CHALLENGE, "dqn", total_steps=320, logdir=tmp_path / "split", **options)
    assert (split / "checkpoint.pt").stat().st_size < 5_000_000
    buffer = load_checkpoint(split)["state"]["buffer"]
    assert buffer["size"] == 320 and buffer["obs"].shape == (320, 3, 15, 15)
    train(resume=split, total_steps=640, progress=False, picture_every=0)
    assert (split / "checkpoint.pt").stat().st_size < 50_000_000 / 5
    expected, resumed = load_checkpoint(straight), load_checkpoint(split)
    assert resumed["global_step"] == expected["global_step"] == 640
    assert_same(resumed["state"], expected["state"])
    assert bool(torch.any(expected["state"]["buffer"]["obs"] != 0))

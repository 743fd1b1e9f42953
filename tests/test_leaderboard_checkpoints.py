"""Every checkpoint shipped in leaderboard/checkpoints/ still plays as its leaderboard entry says."""

import csv
import json
import pathlib

import numpy as np
import pytest

from physrl.training.challenge.scorer import CHALLENGE_ENV, EVAL_SIZE, checkpoint_submission, play

LEADERBOARD = pathlib.Path(__file__).resolve().parents[1] / "leaderboard"
SHIPPED = sorted((LEADERBOARD / "checkpoints").glob("*.pt"))


def test_a_learned_policy_beats_the_greedy_planner():
    assert SHIPPED, "no checkpoint in leaderboard/checkpoints"
    greedy = json.loads((LEADERBOARD / "greedy.json").read_text())["score"]
    best = max(json.loads((LEADERBOARD / f"{path.stem}.json").read_text())["score"] for path in SHIPPED)
    assert best > greedy and best >= 0.90


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_checkpoint_replays_its_returns_on_the_first_evaluation_mazes(path):
    result = json.loads((LEADERBOARD / f"{path.stem}.json").read_text())
    assert result["mazes"] == EVAL_SIZE and result["command"].startswith(
        f"physrl challenge evaluate leaderboard/checkpoints/{path.name}")
    assert path.stat().st_size < 2_000_000
    submission = checkpoint_submission(str(path), "cpu")
    assert submission.env_steps == result["env_steps"] and submission.policy.config["env_id"] == CHALLENGE_ENV
    with open(LEADERBOARD / f"{path.stem}.returns.csv") as file:
        stored = np.array([float(row["return"]) for row in csv.DictReader(file)])
    assert len(stored) == EVAL_SIZE and stored.mean() == pytest.approx(result["mean_return"])
    assert np.array_equal(play(submission.policy, 20), stored[:20])

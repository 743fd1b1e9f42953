"""The challenge scorer's figures on a few mazes, recomputed from the per-maze returns it reports."""

import argparse
import math

import numpy as np
import pytest
import torch

from physrl.training.challenge.command import evaluate_command
from physrl.training.challenge.scorer import builtin_submission, score_submission


@pytest.mark.parametrize("name", ["greedy", "random"])
def test_score_and_standard_errors_follow_from_the_returns(name):
    result, returns, optima = score_submission(builtin_submission(name), count=8)
    assert returns.shape == optima.shape == (8,)
    ratio = returns.mean() / optima.mean()
    assert result["score"] == pytest.approx(ratio)
    assert result["mean_return"] == pytest.approx(returns.mean()) and result["mean_optimum"] == pytest.approx(optima.mean())
    assert result["stderr"] == pytest.approx(np.std(returns, ddof=1) / math.sqrt(8))
    paired = (returns - ratio * optima) / optima.mean()  # the ratio estimator's linearisation
    assert result["score_stderr"] == pytest.approx(np.std(paired, ddof=1) / math.sqrt(8))
    assert result["mazes"] == 8 and result["device"] == str(torch.device("cpu"))
    assert result["date"].endswith("+00:00") and result["physrl_version"]


def test_a_single_maze_has_no_standard_error():
    result, _, _ = score_submission(builtin_submission("greedy"), count=1)
    assert result["stderr"] == 0.0 and result["score_stderr"] == 0.0


def test_the_recorded_evaluation_command_reproduces_the_arguments():
    def command(**kwargs):
        return evaluate_command(argparse.Namespace(**{"submission": None, "policy": None, "name": None,
                                                      "device": "cpu", **kwargs}))

    assert command(submission="builtin:greedy") == "physrl challenge evaluate builtin:greedy"
    assert command(policy="mine.py", name="my agent", device="cuda") == \
        "physrl challenge evaluate --policy mine.py --name 'my agent' --device cuda"
    assert command(submission="run/checkpoint.pt", name="plain") == \
        "physrl challenge evaluate run/checkpoint.pt --name plain"


def test_two_mazes_have_a_standard_error():
    result, returns, _ = score_submission(builtin_submission("random"), count=2)
    assert result["stderr"] == pytest.approx(np.std(returns, ddof=1) / math.sqrt(2))

"""CUDA: training and the Gymnasium adapter on the GPU (run by ``make gpu-check``), and the check's skip path."""

import os
import subprocess
import sys

import gymnasium as gym
import pytest
import torch
from conftest import cuda

from physrl.envs.gym_adapter import make_torch_vec
from physrl.training import load_policy, train
from physrl.training.bench.gpu_check import markdown_table

SMALL_MAZE = {"size": 7, "n_chests": 3, "max_steps": 15}


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("agent", ["deep-pg", "dqn"])
def test_training_on_cuda_gives_a_policy_that_acts_the_same_on_the_cpu(agent, tmp_path):
    run_dir = train("physrl/TreasureMaze-v0", agent, num_envs=64, total_steps=2048, device="cuda",
                    env_kwargs=SMALL_MAZE, logdir=tmp_path, progress=False,
                    hyperparameters={"learning_starts": 256} if agent == "dqn" else {})
    observations, _ = gym.make_vec("physrl/TreasureMaze-v0", num_envs=32, device="cuda", **SMALL_MAZE).reset(seed=0)
    on_gpu = load_policy(run_dir, "cuda")(observations)
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), load_policy(run_dir, "cpu")(observations.cpu()))


@cuda
@pytest.mark.cuda
def test_gymnasium_adapter_gives_cuda_tensors():
    envs = make_torch_vec("CartPole-v1", 4, "cuda")
    obs, _ = envs.reset(seed=0)
    obs, reward, terminated, truncated, _ = envs.step(torch.zeros(4, dtype=torch.int64, device="cuda"))
    assert {t.device.type for t in (obs, reward, terminated, truncated)} == {"cuda"}


def test_gpu_check_without_cuda_skips_cleanly(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-m", "physrl.training.bench.gpu_check", "--out", str(tmp_path / "gpu.md")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gpu-check: skipped, no CUDA device here (torch.cuda.is_available() is False)"
    assert not (tmp_path / "gpu.md").exists()


def test_gpu_check_report_is_a_markdown_table():
    envs = [{"env": "physrl/TreasureMaze-v0", "impl": "vector", "num_envs": 1_000_000, "device": "cuda",
             "steps_per_s": 2.5e9, "bytes_per_env": 310.0},
            {"env": "physrl/QubitErrorCorrection-v0", "impl": "vector", "num_envs": 1_000_000, "device": "cuda",
             "steps_per_s": None, "bytes_per_env": None, "skipped": "out of memory"}]
    runs = [{"bench": "train", "env": "physrl/TreasureMazeChallenge-v0", "agent": "deep-pg", "num_envs": 64,
             "device": "cuda", "env_steps": 200_000, "seconds": 10.0, "steps_per_s": 20_000.0, "mean_return": 4.5,
             "stderr": 0.1},
            {"bench": "train", "env": "physrl/TreasureMazeChallenge-v0", "ratio": "deep-pg / sb3-ppo", "value": 3.0}]
    report = markdown_table("NVIDIA H200", envs, runs, "2 passed")
    assert report.splitlines()[0] == "## GPU check on NVIDIA H200"
    assert "| physrl/TreasureMaze-v0 | 1,000,000 | 2,500,000,000 | 310 |" in report
    assert "| physrl/QubitErrorCorrection-v0 | 1,000,000 | skipped: out of memory |  |" in report
    assert "| physrl/TreasureMazeChallenge-v0 | deep-pg | 64 | 200,000 | 20,000 | 4.5 ± 0.1 |" in report
    assert "| deep-pg / sb3-ppo | | | 3x |" in report and "CUDA tests (`pytest -m cuda`): 2 passed" in report

"""Mistakes a user makes get a one-line error that says what is wrong, never a traceback or a silent run."""

import gymnasium as gym
import pytest
import torch

from physrl.training import load_policy, train
from physrl.training.checkpoint import load_checkpoint
from physrl.training.cli import main

WALKER = "physrl/RandomWalker-v0"
MAZE = "physrl/TreasureMaze-v0"
SMALL_MAZE = {"size": 7, "n_chests": 3, "max_steps": 15}


def one_line_error(capsys, command: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith(f"physrl {command}: error: ") and error.count("\n") == 1, error
    return error


def test_malformed_yaml_and_toml_name_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("env: physrl/RandomWalker-v0\nagent: deep-pg\n  seed: 3\n")  # indented by mistake
    assert main(["train", "--config", str(path), "--logdir", str(tmp_path / "runs")]) == 2
    error = one_line_error(capsys, "train")
    assert f"config file {str(path)!r}, line 3, column 7: malformed YAML: mapping values are not allowed" in error
    path = tmp_path / "run.toml"
    path.write_text('env = "physrl/RandomWalker-v0"\nagent = deep-pg\n')
    assert main(["train", "--config", str(path), "--logdir", str(tmp_path / "runs")]) == 2
    assert f"config file {str(path)!r}: malformed TOML: Invalid value (at line 2" in one_line_error(capsys, "train")
    assert not (tmp_path / "runs").exists()


def test_unknown_env_option_names_the_allowed_ones(tmp_path, capsys):
    assert main(["train", "--env", MAZE, "--agent", "deep-pg", "--env-kwargs", '{"sizee": 7}',
                 "--logdir", str(tmp_path)]) == 2
    error = one_line_error(capsys, "train")
    assert "unknown option(s) ['sizee'] for physrl/TreasureMaze-v0; allowed: [" in error
    assert "'size'" in error and "'n_chests'" in error and "'max_steps'" in error


def test_student_without_teacher_is_refused_before_a_run_folder_is_made(tmp_path, capsys):
    assert main(["train", "--env", "physrl/QubitErrorCorrection-v0", "--agent", "qec-student",
                 "--total-steps", "100", "--logdir", str(tmp_path)]) == 2
    assert "qec-student needs a teacher checkpoint: --set teacher=PATH" in one_line_error(capsys, "train")
    assert list(tmp_path.iterdir()) == []


def test_sb3_hyperparameter_assertions_become_one_line_errors(tmp_path, capsys):
    assert main(["train", "--env", MAZE, "--agent", "sb3-ppo", "--set", "n_steps=-5", "--logdir", str(tmp_path)]) == 2
    error = one_line_error(capsys, "train")
    assert "sb3-ppo refused its hyperparameters:" in error and "n_steps=-5" in error
    assert list(tmp_path.iterdir()) == []


def test_resume_with_total_steps_at_or_below_the_reached_step_is_refused(tmp_path, capsys):
    run_dir = train(WALKER, "tabular-pg", num_envs=4, total_steps=200, logdir=tmp_path, progress=False)
    reached = load_checkpoint(run_dir)["global_step"]
    for total in (reached - 100, reached):
        assert main(["train", "--resume", str(run_dir), "--total-steps", str(total)]) == 2
        assert (f"total_steps ({total}) must be above the step the run has reached ({reached})"
                in one_line_error(capsys, "train"))
    assert load_checkpoint(run_dir)["global_step"] == reached
    assert main(["train", "--resume", str(run_dir), "--total-steps", str(reached + 100), "--no-progress"]) == 0


def test_policy_refuses_observations_of_the_wrong_shape(tmp_path):
    run_dir = train(MAZE, "deep-pg", num_envs=2, total_steps=32, env_kwargs=SMALL_MAZE, logdir=tmp_path,
                    progress=False, picture_every=0)
    policy = load_policy(run_dir)
    envs = gym.make_vec(MAZE, num_envs=3, **SMALL_MAZE)
    observations, _ = envs.reset(seed=0)
    assert policy(observations).shape == (3,)
    with pytest.raises(ValueError, match=r"observations must be a batch of shape \(batch, 3, 7, 7\) for this "
                                         r"policy of physrl/TreasureMaze-v0, got shape \(3, 7, 7\)"):
        policy(observations[0])
    bigger, _ = gym.make_vec(MAZE, num_envs=2, size=9).reset(seed=0)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 9, 9\)"):
        policy(bigger)
    walker = load_policy(train(WALKER, "tabular-pg", num_envs=2, total_steps=40, logdir=tmp_path, progress=False))
    assert walker(torch.zeros(4, dtype=torch.int64)).shape == (4,)
    with pytest.raises(ValueError, match=r"shape \(batch,\) .* got shape \(4, 1\)"):
        walker(torch.zeros(4, 1, dtype=torch.int64))


def test_space_mismatch_message_is_short(tmp_path):
    run_dir = train("physrl/QubitErrorCorrection-v0", "deep-pg", num_envs=2, total_steps=32,
                    env_kwargs={"obs_mode": "state"}, logdir=tmp_path, progress=False, picture_every=0)
    other = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=1, obs_mode="measurements")
    with pytest.raises(ValueError) as caught:
        load_policy(run_dir, observation_space=other.single_observation_space)
    message = str(caught.value)
    assert len(message) < 400 and "\n" not in message
    assert "its observation_space is Box(-1, 1, (" in message and "float32)" in message

"""physrl train / evaluate, checkpoints, load_policy, TensorBoard logs and the SB3 references."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import physrl.agents
from physrl.training import load_policy, train
from physrl.training.checkpoint import TRAINING_STATE, load_checkpoint
from physrl.training.cli import main
from physrl.training.evaluate import evaluate
from physrl.training.train import prepare
from physrl.agents.sb3 import SB3VecEnv

WALKER = "physrl/RandomWalker-v0"
MAZE = "physrl/TreasureMaze-v0"
SMALL_MAZE = {"size": 7, "n_chests": 3, "max_steps": 15}


def scalar_tags(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


# --- the SB3 VecEnv adapter ---------------------------------------------------------------------------------

def test_sb3_vecenv_matches_single_envs_with_same_step_autoreset():
    num_envs, seed, options = 3, 5, {"size": 5, "n_chests": 1, "max_steps": 8}
    venv = SB3VecEnv(gym.make_vec(MAZE, num_envs=num_envs, **options))
    singles = [gym.make(MAZE, **options) for _ in range(num_envs)]
    venv.seed(seed)
    observations = venv.reset()
    assert isinstance(observations, np.ndarray) and observations.shape == (num_envs, 3, 5, 5)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(observations[i], env.reset(seed=seed + i)[0])
    rng = np.random.default_rng(0)
    finished = {"terminated": 0, "truncated": 0}
    for _ in range(100):
        actions = rng.integers(0, 5, num_envs)
        observations, rewards, dones, infos = venv.step(actions)
        assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == num_envs
        for i, env in enumerate(singles):
            single_obs, reward, terminated, truncated, _ = env.step(actions[i])
            assert rewards[i] == reward and dones[i] == (terminated or truncated)
            if dones[i]:
                np.testing.assert_array_equal(infos[i]["terminal_observation"], single_obs)
                assert infos[i]["TimeLimit.truncated"] == (truncated and not terminated)
                finished["truncated" if infos[i]["TimeLimit.truncated"] else "terminated"] += 1
                single_obs, _ = env.reset()
            else:
                assert "terminal_observation" not in infos[i]
            np.testing.assert_array_equal(observations[i], single_obs)
    assert finished["truncated"] > 0 and finished["terminated"] > 0


# --- train: TensorBoard, checkpoints, resume --------------------------------------------------------------

def test_short_run_writes_tensorboard_checkpoint_and_config(tmp_path):
    run_dir = train(WALKER, "tabular-pg", num_envs=8, total_steps=2000, logdir=tmp_path, progress=False)
    assert run_dir.parent == tmp_path and run_dir.name.startswith("physrl-RandomWalker-v0__tabular-pg__0__")
    tags = scalar_tags(run_dir)
    for tag in ("charts/episodic_return", "charts/episodic_length", "charts/SPS"):
        assert tag in tags, tags.keys()
    assert any(tag.startswith("losses/") for tag in tags)
    assert all(abs(value) <= 20 for _, value in tags["charts/episodic_return"])
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    config = json.loads((run_dir / "config.json").read_text())
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint["config"] == config and checkpoint["global_step"] >= 2000
    assert config["env_id"] == WALKER and config["action_space"] == {"type": "Discrete", "n": 2, "start": 0}
    policy = load_policy(run_dir / "checkpoint.pt")
    actions = policy(torch.zeros(5, dtype=torch.int64))
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1}


def test_sigint_saves_checkpoint_and_resume_continues_the_step_count(tmp_path, monkeypatch):
    agent_class = physrl.agents.AGENTS["tabular-pg"]
    original = agent_class.learn_iteration
    first_steps, resuming = [], False

    def learn_iteration(self):
        first_steps.append(self.global_step)
        if len(first_steps) == 3 and not resuming:
            os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag; the loop then saves and stops
        return original(self)

    monkeypatch.setattr(agent_class, "learn_iteration", learn_iteration)
    handler = signal.getsignal(signal.SIGINT)
    run_dir = train(WALKER, "tabular-pg", num_envs=4, total_steps=10**7, logdir=tmp_path, progress=False)
    saved = load_checkpoint(run_dir)["global_step"]
    assert len(first_steps) == 3 and 0 < saved < 10**7
    first_steps.clear()
    resuming = True
    assert signal.getsignal(signal.SIGINT) is handler
    resumed = train(resume=run_dir, total_steps=saved + 200, progress=False)
    assert resumed == run_dir and sorted(tmp_path.iterdir()) == [run_dir]
    assert first_steps[0] == saved and load_checkpoint(run_dir)["global_step"] >= saved + 200
    assert json.loads((run_dir / "config.json").read_text())["total_steps"] == saved + 200
    steps = [step for step, _ in scalar_tags(run_dir)["charts/SPS"]]
    assert max(steps) >= saved + 200


def test_a_run_killed_without_a_signal_keeps_its_last_periodic_checkpoint(tmp_path, monkeypatch):
    agent_class = physrl.agents.AGENTS["tabular-pg"]
    original = agent_class.learn_iteration
    steps = []

    def learn_iteration(self):
        if len(steps) == 3:
            raise MemoryError("killed")  # stands for SIGKILL: no handler runs, nothing is saved on the way out
        steps.append(self.global_step)
        return original(self)

    monkeypatch.setattr(agent_class, "learn_iteration", learn_iteration)
    with pytest.raises(MemoryError):
        train(WALKER, "tabular-pg", num_envs=4, total_steps=10**7, logdir=tmp_path, progress=False,
              checkpoint_every=0)
    run_dir, = tmp_path.iterdir()
    saved = load_checkpoint(run_dir)["global_step"]
    assert saved > steps[-1] > 0  # the checkpoint after the third iteration
    with pytest.raises(ValueError, match="checkpoint_every"):
        train(WALKER, "tabular-pg", num_envs=4, total_steps=100, logdir=tmp_path, checkpoint_every=-1.0)
    assert main(["train", "--env", WALKER, "--agent", "tabular-pg", "--checkpoint-every", "nan",
                 "--logdir", str(tmp_path)]) == 2


def test_sigterm_to_cli_saves_and_resume_continues(tmp_path):
    command = [sys.executable, "-m", "physrl.training.cli", "train", "--env", WALKER, "--agent", "sb3-a2c",
               "--num-envs", "4", "--total-steps", "100000000", "--logdir", str(tmp_path), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*/events.out.tfevents.*")):  # the writer exists once the handler is installed
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    run_dir = Path(stdout.strip().splitlines()[-1])
    saved = load_checkpoint(run_dir)["global_step"]
    assert "--resume" in stderr and 0 < saved < 10**8
    assert main(["train", "--resume", str(run_dir), "--total-steps", str(saved + 100), "--no-progress"]) == 0
    assert load_checkpoint(run_dir)["global_step"] >= saved + 100


def test_checkpoints_from_other_envs_and_foreign_files_are_refused(tmp_path):
    run_dir = train(WALKER, "sb3-a2c", num_envs=2, total_steps=40, logdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="env_id is 'physrl/RandomWalker-v0', expected 'physrl/TreasureMaze-v0'"):
        load_policy(run_dir, env_id=MAZE)
    maze = gym.make(MAZE)
    with pytest.raises(ValueError, match="observation_space"):
        load_policy(run_dir, observation_space=maze.observation_space)
    with pytest.raises(ValueError, match="action_space"):
        load_checkpoint(run_dir, action_space=maze.action_space)
    with pytest.raises(ValueError, match="env_id"):
        train(MAZE, resume=run_dir, progress=False)
    with pytest.raises(ValueError, match="seed is 0 in the checkpoint, got 3"):
        train(resume=run_dir, seed=3, progress=False)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt or not a physrl checkpoint"):
        load_policy(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a physrl checkpoint"):
        load_policy(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "physrl-checkpoint-1", "object": gym.spaces.Discrete(2)}, pickled)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(pickled)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.pt")


# --- configuration ------------------------------------------------------------------------------------------

CONFIGS = {
    "run.yaml": "env: physrl/RandomWalker-v0\nagent: sb3-a2c\nnum_envs: 2\ntotal_steps: 30\nseed: 4\n"
                "hyperparameters:\n  learning_rate: 3e-4\n  n_steps: 3\n",
    "run.toml": 'env = "physrl/RandomWalker-v0"\nagent = "sb3-a2c"\nnum_envs = 2\ntotal_steps = 30\nseed = 4\n'
                "[hyperparameters]\nlearning_rate = 3e-4\nn_steps = 3\n",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_file_yaml_and_toml_with_command_line_overrides(name, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(CONFIGS[name])
    assert main(["train", "--config", str(path), "--logdir", str(tmp_path), "--set", "gamma=0.9", "--no-progress"]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    config = json.loads((run_dir / "config.json").read_text())
    assert run_dir.name.startswith("physrl-RandomWalker-v0__sb3-a2c__4__")
    assert (config["num_envs"], config["seed"], config["total_steps"]) == (2, 4, 30)
    hyperparameters = config["hyperparameters"]
    assert (hyperparameters["learning_rate"], hyperparameters["n_steps"], hyperparameters["gamma"]) == (3e-4, 3, 0.9)


def test_unknown_keys_and_bad_values_are_refused(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("env: physrl/RandomWalker-v0\nagent: sb3-a2c\nlearnig_rate: 0.1\n")
    assert main(["train", "--config", str(path), "--logdir", str(tmp_path)]) == 2
    assert "unknown key(s) ['learnig_rate']" in capsys.readouterr().err
    assert main(["train", "--env", WALKER, "--agent", "sb3-a2c", "--set", "learnig_rate=0.1",
                 "--logdir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "unknown hyperparameter(s) ['learnig_rate']" in error and "learning_rate=0.0007" in error
    with pytest.raises(TypeError, match="n_steps"):
        train(WALKER, "sb3-a2c", hyperparameters={"n_steps": "many"}, logdir=tmp_path)
    with pytest.raises(ValueError, match="agent must be one of"):
        train(WALKER, "sb3-sac", logdir=tmp_path)
    with pytest.raises(ValueError, match="env_id must be a registered env"):
        train("physrl/NoSuchEnv-v0", "sb3-a2c", logdir=tmp_path)
    with pytest.raises(ValueError, match="num_envs must be >= 1, got 0"):
        train(WALKER, "sb3-a2c", num_envs=0, logdir=tmp_path)
    assert list(tmp_path.iterdir()) == [path]  # nothing was created by refused runs


# --- SB3 references -----------------------------------------------------------------------------------------

SB3_RUNS = {"sb3-ppo": {"n_steps": 64, "batch_size": 64},
            "sb3-a2c": {},
            "sb3-dqn": {"learning_starts": 64, "buffer_size": 1000}}


@pytest.mark.parametrize("agent", sorted(SB3_RUNS))
def test_sb3_agents_train_and_load_policy(agent, tmp_path, capsys):
    run_dir = train(MAZE, agent, num_envs=4, total_steps=400, env_kwargs=SMALL_MAZE,
                    hyperparameters=SB3_RUNS[agent], logdir=tmp_path, progress=False)
    tags = scalar_tags(run_dir)
    assert "charts/episodic_return" in tags and any(tag.startswith("losses/") for tag in tags)
    checkpoint = load_checkpoint(run_dir, env_id=MAZE)
    assert checkpoint["global_step"] >= 400 and set(checkpoint["state"]) == {"policy", "optimizer", "n_calls"}
    assert not list(run_dir.glob("*.zip"))
    policy = load_policy(run_dir / "checkpoint.pt")
    envs = gym.make_vec(MAZE, num_envs=6, **SMALL_MAZE)
    observations, _ = envs.reset(seed=0)
    actions = policy(observations)
    assert isinstance(actions, torch.Tensor) and actions.shape == (6,)
    assert torch.equal(actions, policy(observations)) and bool(((actions >= 0) & (actions < 5)).all())
    envs.step(actions)
    assert main(["evaluate", "--checkpoint", str(run_dir), "--episodes", "6"]) == 0
    output = capsys.readouterr().out
    assert "return:" in output and "exact optimum" in output and "ratio" in output


def test_evaluate_reports_the_exact_optimum_of_the_same_mazes(tmp_path):
    run_dir = train(MAZE, "sb3-a2c", num_envs=2, total_steps=20, env_kwargs=SMALL_MAZE, logdir=tmp_path,
                    progress=False)
    result = evaluate(run_dir, episodes=8, seed=11)
    assert result["episodes"] == len(result["returns"]) == 8
    assert 0 <= result["mean"] <= result["optimum_mean"] <= SMALL_MAZE["n_chests"]
    assert result == evaluate(run_dir, episodes=8, seed=11)
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate(run_dir, episodes=0)


# --- our agents through the same trainer ----------------------------------------------------------------------

OUR_RUNS = {"tabular-pg": (WALKER, {}, {}), "q-learning": ("physrl/WalkerTarget-v0", {}, {}),
            "deep-pg": (MAZE, SMALL_MAZE, {}), "dqn": (MAZE, SMALL_MAZE, {"learning_starts": 8, "buffer_size": 256})}


@pytest.mark.parametrize("agent", sorted(OUR_RUNS))
def test_our_agents_checkpoint_load_policy_and_resume(agent, tmp_path):
    env_id, env_kwargs, hyperparameters = OUR_RUNS[agent]
    run_dir = train(env_id, agent, num_envs=2, total_steps=32, env_kwargs=env_kwargs,
                    hyperparameters=hyperparameters, logdir=tmp_path, progress=False)
    saved = load_checkpoint(run_dir, env_id=env_id)["global_step"]
    policy = load_policy(run_dir)
    envs = gym.make_vec(env_id, num_envs=3, **env_kwargs)
    observations, _ = envs.reset(seed=1)
    actions = policy(observations)
    assert actions.shape == (3,) and torch.equal(actions, policy(observations))
    envs.step(actions)
    train(resume=run_dir, total_steps=saved + 32, progress=False)
    assert load_checkpoint(run_dir)["global_step"] >= saved + 32


@pytest.mark.parametrize("agent", sorted(OUR_RUNS))
def test_resumed_run_equals_uninterrupted_run(agent, tmp_path):
    options = {"num_envs": 4, "hyperparameters": {"learning_starts": 16} if agent == "dqn" else {}, "progress": False}
    straight = train("physrl/WalkerTarget-v0", agent, total_steps=800, logdir=tmp_path / "a", **options)
    split = train("physrl/WalkerTarget-v0", agent, total_steps=400, logdir=tmp_path / "b", **options)
    train(resume=split, total_steps=800, progress=False)
    expected, resumed = load_checkpoint(straight), load_checkpoint(split)
    assert resumed["global_step"] == expected["global_step"]
    assert_same(resumed["state"], expected["state"])


@pytest.mark.parametrize("agent", sorted(OUR_RUNS))
def test_init_from_starts_a_new_run_from_a_trained_policy(agent, tmp_path):
    """A curriculum stage: the new run starts at step 0 with the first run's trained policy (what
    export_policy keeps, and a DQN's target network) but this run's fresh optimiser and random stream."""
    env_id, env_kwargs, hyperparameters = OUR_RUNS[agent]
    options = {"num_envs": 2, "total_steps": 64, "env_kwargs": env_kwargs, "hyperparameters": hyperparameters}
    first = train(env_id, agent, logdir=tmp_path / "a", progress=False, **options)
    trained = load_checkpoint(first)["state"]
    started = prepare(env_id, agent, seed=1, logdir=tmp_path / "b", init_from=str(first), **options)
    fresh = prepare(env_id, agent, seed=1, logdir=tmp_path / "c", **options)
    state, fresh_state = started.learner.state_dict(), fresh.learner.state_dict()
    assert started.start_step == 0 and started.learner.global_step == 0
    assert started.record["init_from"] == str(first) and fresh.record["init_from"] == ""
    policy_keys = [key for key in trained if key not in (*TRAINING_STATE, "global_step") or key == "target_network"]
    for key in policy_keys:
        assert_same(state[key], trained[key], key)
    assert any(not equal_states(fresh_state[key], trained[key]) for key in policy_keys)  # training changed it
    for key in set(TRAINING_STATE) & set(state) - {"target_network"}:
        assert_same(state[key], fresh_state[key], key)
    for run in (started, fresh):
        run.envs.close()


def test_a_qec_curriculum_moves_a_policy_from_bit_flips_to_dephasing(tmp_path):
    """Stage 1 on bit flips, stage 2 on dephasing (same spaces: Hadamards in both); the second run trains,
    records init_from and its own env options, and resumes without reloading the first run's policy."""
    qec = "physrl/QubitErrorCorrection-v0"
    options = {"num_envs": 4, "total_steps": 200, "hyperparameters": {"num_steps": 25}, "progress": False}
    first = train(qec, "deep-pg", env_kwargs={"noise": "bitflip", "hadamard": True}, logdir=tmp_path / "a", **options)
    second = train(qec, "deep-pg", env_kwargs={"noise": "dephasing", "hadamard": True}, init_from=first,  # a Path
                   logdir=tmp_path / "b", **options)
    record = json.loads((second / "config.json").read_text())
    assert record["init_from"] == str(first) and record["env_kwargs"] == {"noise": "dephasing", "hadamard": True}
    saved = load_checkpoint(second)["global_step"]
    assert saved == 200
    train(resume=second, total_steps=300, progress=False)
    assert load_checkpoint(second)["global_step"] == 300


def test_init_from_refuses_other_agents_spaces_and_networks(tmp_path):
    qec = "physrl/QubitErrorCorrection-v0"
    options = {"num_envs": 2, "total_steps": 50, "hyperparameters": {"num_steps": 25}, "logdir": tmp_path}
    first = train(qec, "deep-pg", progress=False, **options)
    with pytest.raises(ValueError, match=r"init_from .* holds a 'deep-pg' policy, this run trains 'dqn'"):
        prepare(qec, "dqn", num_envs=2, logdir=tmp_path, init_from=str(first))
    with pytest.raises(ValueError, match=r"init_from .*observation_shape.*not the observation or action spaces"):
        prepare(qec, "deep-pg", env_kwargs={"hadamard": True}, init_from=str(first), **options)
    with pytest.raises(ValueError, match=r"init_from .*does not fit this run's agent \(other network hyperparameters\?\): "):
        prepare(qec, "deep-pg", init_from=str(first), **{**options, "hyperparameters": {"hidden_sizes": [8]}})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare(qec, "deep-pg", init_from=str(tmp_path / "nothing"), **options)
    with pytest.raises(TypeError, match="init_from must be a checkpoint path"):
        prepare(qec, "deep-pg", init_from=3, **options)


def equal_states(value, expected) -> bool:
    try:
        assert_same(value, expected)
    except AssertionError:
        return False
    return True


def assert_same(value, expected, where="state"):
    """Nested dicts/lists of tensors and plain values are equal."""
    if isinstance(expected, dict):
        assert value.keys() == expected.keys(), where
        for key in expected:
            assert_same(value[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(value) == len(expected), where
        for i, (item, expected_item) in enumerate(zip(value, expected)):
            assert_same(item, expected_item, f"{where}[{i}]")
    elif isinstance(expected, torch.Tensor):
        assert torch.equal(value, expected), where
    else:
        assert value == expected, where

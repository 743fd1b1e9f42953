"""Typed configuration: the agents' hyperparameter dataclasses, RunConfig, config files, --set and --help."""

import dataclasses
import inspect
from pathlib import Path

import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.vec_env import VecMonitor

from physrl.agents import AGENTS, ALL_AGENTS, SB3_AGENTS, DeepPolicyGradient
from physrl.agents.deep_pg import DeepPGConfig
from physrl.agents.sb3 import SB3VecEnv
from physrl.envs.gym_adapter import make_torch_vec
from physrl.training.checkpoint import load_checkpoint
from physrl.training.cli import build_parser, main
from physrl.training.config import RunConfig, read_config_file
from physrl.training.train import options_from_args, prepare, train

ROOT = Path(__file__).resolve().parents[1]
WALKER, MAZE = "physrl/RandomWalker-v0", "physrl/TreasureMaze-v0"

#: the keyword defaults of the agents' constructors before the dataclasses (commit b041222)
OLD_DEFAULTS = {
    "tabular-pg": {"learning_rate": 0.1, "optimizer": "sgd", "baseline": "none", "baseline_rate": 0.1, "gamma": 1.0,
                   "ignore_observation": False, "num_steps": None},
    "deep-pg": {"learning_rate": 0.0005, "num_steps": None, "gamma": 0.99, "gae_lambda": 0.95, "value_baseline": True,
                "reward_to_go": True, "clip_coef": 0.2, "update_epochs": 4, "num_minibatches": 4, "ent_coef": 0.01,
                "vf_coef": 0.5, "max_grad_norm": 0.5, "normalize_advantages": True, "network": "auto",
                "hidden_sizes": [64, 64], "log_std_init": -0.5, "lr_anneal_steps": None, "log_std_final": None,
                "log_std_anneal_steps": None, "ent_coef_final": None, "ent_anneal_steps": None, "action_mask": False,
                "average_start": None},
    "q-learning": {"learning_rate": 0.5, "gamma": 0.95, "epsilon_start": 1.0, "epsilon_end": 0.05,
                   "exploration_steps": 50000, "initial_value": 0.0, "num_steps": None},
    "dqn": {"learning_rate": 0.001, "buffer_size": 100000, "batch_size": 128, "gamma": 0.95, "learning_starts": 1000,
            "num_steps": 4, "gradient_steps": 4, "target_update_interval": 250, "double_q": True, "epsilon_start": 1.0,
            "epsilon_end": 0.05, "exploration_steps": 20000, "max_grad_norm": 10.0, "network": "auto",
            "hidden_sizes": [128, 128]},
    "qec-student": {"teacher": "", "learning_rate": 0.003, "num_steps": 50, "update_epochs": 20, "hidden_size": 64,
                    "max_grad_norm": 1.0, "teacher_sampled": False, "refine_after": None,
                    "refine_learning_rate": 0.0001, "gamma": 0.995, "mask_revealing": False},
}
#: hyperparameters added since, whose defaults leave the agent as it was (no exploration bonus)
ADDED_SINCE = {"deep-pg": {"novelty_coef": 0.0, "novelty_bits": 16}}
#: where the sb3-* defaults differ from SB3's own (as before the dataclasses), and the policy's shape
SB3_TUNED = {
    "sb3-ppo": (PPO, {"n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 2.5e-4, "ent_coef": 0.01}),
    "sb3-a2c": (A2C, {"ent_coef": 0.01}),
    "sb3-dqn": (DQN, {"buffer_size": 100_000, "learning_starts": 1000, "target_update_interval": 1000,
                      "exploration_fraction": 0.2, "max_grad_norm": 10.0}),
}
SB3_SET_BY_US = {"policy", "env", "seed", "device", "verbose", "tensorboard_log", "policy_kwargs", "_init_setup_model",
                 "stats_window_size", "rollout_buffer_class", "rollout_buffer_kwargs", "replay_buffer_class",
                 "replay_buffer_kwargs", "action_noise"}


@pytest.mark.parametrize("agent", sorted(OLD_DEFAULTS))
def test_dataclass_defaults_equal_the_old_constructor_defaults(agent):
    expected = {**OLD_DEFAULTS[agent], **ADDED_SINCE.get(agent, {})}
    assert AGENTS[agent].config_class.defaults() == expected
    assert AGENTS[agent].config_class().to_dict() == expected


@pytest.mark.parametrize("agent", sorted(SB3_TUNED))
def test_sb3_dataclasses_hold_every_plain_sb3_argument_with_its_default(agent):
    algorithm, tuned = SB3_TUNED[agent]
    sb3_defaults = {name: parameter.default for name, parameter in inspect.signature(algorithm).parameters.items()
                    if name not in SB3_SET_BY_US and isinstance(parameter.default, (bool, int, float, str, type(None)))}
    expected = {**sb3_defaults, **tuned, "net_arch": [64, 64], "features_dim": 128}
    assert SB3_AGENTS[agent].config_class.defaults() == expected


@pytest.mark.parametrize("agent", sorted(ALL_AGENTS))
def test_help_of_an_agent_lists_every_hyperparameter_with_type_default_and_help(agent, capsys):
    assert main(["train", "--agent", agent, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    config_class = ALL_AGENTS[agent].config_class
    assert f"hyperparameters of {agent} (--set NAME=VALUE; {config_class.__name__}):" in lines
    hints = {field.name: field for field in dataclasses.fields(config_class)}
    defaults = config_class.defaults()
    for name, field in hints.items():
        row = next(line for line in lines if line.split()[:1] == [name])
        assert repr(defaults[name]) in row and field.metadata["help"] in row, row
    assert lines[0].startswith("usage: physrl train")


def test_help_finds_the_agent_after_it_or_in_the_config_file(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("env: physrl/RandomWalker-v0\nagent: dqn\n")
    assert main(["train", "--help", "--config", str(path)]) == 0
    assert "hyperparameters of dqn" in capsys.readouterr().out
    assert main(["train", "-h"]) == 0
    assert "hyperparameters of" not in capsys.readouterr().out
    assert main(["train", "--agent", "sb3-sac", "--help"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "agent must be one of" in error


def options(*argv):
    return options_from_args(build_parser().parse_args(["train", *argv]))


def test_set_takes_nested_keys_run_options_and_plain_hyperparameters(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("env: physrl/TreasureMaze-v0\nagent: deep-pg\nseed: 1\nenv_kwargs: {size: 7, n_chests: 2}\n"
                    "hyperparameters: {gamma: 0.5, ent_coef: 0.1}\n")
    given = options("--config", str(path), "--seed", "2", "--set", "env_kwargs.size=5", "--set", "seed=3",
                    "--set", "hyperparameters.learning_rate=1e-3", "--set", "gamma=0.9", "--set", "num_envs=2",
                    "--set", "env_kwargs.max_steps=9")
    assert given == {"env_id": MAZE, "agent": "deep-pg", "seed": 3, "num_envs": 2, "resume": None,
                     "env_kwargs": {"size": 5, "n_chests": 2, "max_steps": 9},
                     "hyperparameters": {"gamma": 0.9, "ent_coef": 0.1, "learning_rate": 1e-3}}
    config = RunConfig.from_dict({key: value for key, value in given.items() if key != "resume"})
    assert isinstance(config.hyperparameters, DeepPGConfig)
    assert (config.hyperparameters.gamma, config.hyperparameters.learning_rate, config.seed) == (0.9, 1e-3, 3)
    for bad in ("env.size=5", "hyperparameters.=1", "seed.x=1"):
        with pytest.raises(ValueError, match="a dotted KEY must be env_kwargs.NAME or hyperparameters.NAME"):
            options("--env", MAZE, "--agent", "dqn", "--set", f"{bad}")


def one_line_cli_error(capsys, *argv) -> str:
    assert main(["train", *argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("physrl train: error: ")
    return error[len("physrl train: error: "):].strip()


@pytest.mark.parametrize("value, message", [
    (-1, "learning_rate must be a finite number > 0, got -1.0"),
    ("abc", "hyperparameter 'learning_rate' of deep-pg must be float like its default 0.0005, got 'abc'"),
])
def test_a_bad_value_gives_the_same_one_line_error_from_every_source(value, message, tmp_path, capsys):
    """A config file, --set NAME, --set hyperparameters.NAME, train(), the agent and its dataclass."""
    text = value if isinstance(value, int) else f'"{value}"'
    path = tmp_path / "run.yaml"
    path.write_text(f"env: {WALKER}\nagent: deep-pg\nhyperparameters: {{learning_rate: {text}}}\n")
    errors = [one_line_cli_error(capsys, "--config", str(path), "--logdir", str(tmp_path)),
              one_line_cli_error(capsys, "--env", WALKER, "--agent", "deep-pg", "--set", f"learning_rate={text}",
                                 "--logdir", str(tmp_path)),
              one_line_cli_error(capsys, "--env", WALKER, "--agent", "deep-pg", "--logdir", str(tmp_path),
                                 "--set", f"hyperparameters.learning_rate={text}")]
    for build in (lambda: train(WALKER, "deep-pg", hyperparameters={"learning_rate": value}, logdir=tmp_path),
                  lambda: DeepPolicyGradient(make_torch_vec(WALKER, 2), learning_rate=value),
                  lambda: DeepPGConfig(learning_rate=value)):
        with pytest.raises((ValueError, TypeError)) as error:
            build()
        errors.append(str(error.value))
    assert errors == [message] * 6
    assert list(tmp_path.iterdir()) == [path]


def test_run_options_are_checked_by_name():
    with pytest.raises(TypeError, match=r"unknown run option\(s\) \['num_env'\]"):
        RunConfig.from_dict({"env": WALKER, "agent": "dqn", "num_env": 4})
    with pytest.raises(ValueError, match="env_id \\(--env\\) and agent \\(--agent\\) are required"):
        RunConfig(agent="dqn")
    with pytest.raises(TypeError, match="config of deep-pg must be a DeepPGConfig"):
        RunConfig(WALKER, "deep-pg", hyperparameters=AGENTS["dqn"].config_class())


def test_file_to_run_config_to_checkpoint_and_back(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(f'env = "{WALKER}"\nagent = "tabular-pg"\nnum_envs = 2\ntotal_steps = 40\nseed = 5\n'
                    f'logdir = "{tmp_path / "runs"}"\n[env_kwargs]\nmax_steps = 7\n'
                    '[hyperparameters]\nlearning_rate = 0.25\nbaseline = "batch_mean"\n')
    run = prepare(**options("--config", str(path)))
    config = run.config
    assert config == RunConfig.from_dict({**read_config_file(path),
                                          "hyperparameters": {"learning_rate": 0.25, "baseline": "batch_mean",
                                                              "num_steps": 8}})
    run.envs.close()
    run_dir = train(config=config, progress=False)
    restored = RunConfig.from_record(load_checkpoint(run_dir)["config"])
    assert restored == dataclasses.replace(config, logdir="runs")
    assert restored.hyperparameters.num_steps == 8 and restored.env_kwargs == {"max_steps": 7}
    with pytest.raises(ValueError, match=r"hyperparameters \{'learning_rate': 0.5\} differ"):
        train(resume=run_dir, hyperparameters={"learning_rate": 0.5}, progress=False)
    with pytest.raises(TypeError, match=r"unknown run option\(s\) \['num_env'\]"):
        train(resume=run_dir, num_env=4, progress=False)
    with pytest.raises(ValueError, match="config and resume exclude each other"):
        train(config=config, resume=run_dir, progress=False)


SHIPPED = ["results/qec/teacher.pt", "results/qec/teacher_correlated.pt", "results/qec/student.pt",
           "leaderboard/checkpoints/deep-pg-route.pt"]


@pytest.mark.parametrize("path", SHIPPED)
def test_records_of_shipped_checkpoints_become_run_configs(path):
    record = load_checkpoint(ROOT / path)["config"]
    config = RunConfig.from_record(record)
    assert isinstance(config.hyperparameters, AGENTS[record["agent"]].config_class)
    hyperparameters = {**config.hyperparameters.defaults(), **record["hyperparameters"]}
    assert config.to_dict() == {**{key: record[key] for key in ("env_id", "env_kwargs", "agent", "seed", "num_envs",
                                                                "total_steps", "device")},
                                "hyperparameters": hyperparameters, "init_from": ""}  # runs from scratch


@pytest.mark.parametrize("path", sorted((ROOT / "training" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_files_resolve_into_run_configs(path):
    values = read_config_file(path)
    config = RunConfig.from_dict(values)
    assert config.agent == values["agent"] and config.env_kwargs == values.get("env_kwargs", {})
    resolved = config.hyperparameters.to_dict()
    assert {name: resolved[name] for name in values.get("hyperparameters", {})} == values.get("hyperparameters", {})


SB3_RUNS = [("sb3-ppo", {"n_steps": 8, "batch_size": 16}, 8),  # steps of every sub-env per iteration
            ("sb3-dqn", {"learning_starts": 8, "buffer_size": 64, "batch_size": 8, "exploration_fraction": 1.0}, 4)]


@pytest.mark.parametrize("name, overrides, steps_per_iteration", SB3_RUNS)
def test_sb3_iterations_train_as_one_sb3_learn_call(name, overrides, steps_per_iteration):
    """One learn_iteration per rollout, with SB3's schedules (DQN's ε) over the run's total_steps, gives
    the weights SB3's own learn(total_steps) gives."""
    agent = SB3_AGENTS[name](make_torch_vec(WALKER, 2), seed=4, **overrides)
    agent.total_steps = 6 * 2 * steps_per_iteration
    while agent.global_step < agent.total_steps:
        stats = agent.learn_iteration()
        assert set(stats) >= {"episodic_return", "episodic_length"}
    kwargs = agent.config.to_dict()
    policy_kwargs = {"net_arch": kwargs.pop("net_arch")}
    del kwargs["features_dim"]
    model = agent.algorithm("MlpPolicy", VecMonitor(SB3VecEnv(make_torch_vec(WALKER, 2))), seed=4,
                            policy_kwargs=policy_kwargs, **kwargs)
    model.learn(agent.total_steps)
    assert agent.global_step == model.num_timesteps == agent.total_steps
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(agent.model.policy.state_dict()[name], tensor), name

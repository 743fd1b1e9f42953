"""``load_checkpoint`` refuses every malformed or mismatched checkpoint with a ValueError that says what
is wrong, one check at a time (each would let a bad file through if its condition slipped)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from physrl.training import load_policy
from physrl.agents import TabularPolicyGradient
from physrl.training.checkpoint import (CONFIG_KEYS, FORMAT, export_policy, load_checkpoint, make_envs, restore_agent,
                                       save_checkpoint, space_spec)

OBSERVATION = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACTION = spaces.Discrete(4)


def config(**changes) -> dict:
    base = {"env_id": "physrl/RandomWalker-v0", "env_kwargs": {}, "agent": "tabular-pg", "hyperparameters": {},
            "seed": 0, "num_envs": 1, "total_steps": 1, "observation_shape": [3],
            "observation_space": space_spec(OBSERVATION), "action_space": space_spec(ACTION)}
    return {**base, **changes}


def written(tmp_path, content) -> str:
    path = tmp_path / "checkpoint.pt"
    torch.save(content, path)
    return str(path)


class Payload:
    """Not a tensor, dict or number: torch.load(weights_only=True) refuses to unpickle it."""


def test_a_well_formed_checkpoint_loads_and_matches_its_spaces(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", config(), 7, {"theta": torch.zeros(2)})
    checkpoint = load_checkpoint(path, "physrl/RandomWalker-v0", OBSERVATION, ACTION)
    assert checkpoint["global_step"] == 7 and checkpoint["format"] == FORMAT
    assert torch.equal(checkpoint["state"]["theta"], torch.zeros(2))


@pytest.mark.parametrize("content", [[1, 2], {"format": "other"}, {"config": config()}])
def test_what_is_not_a_physrl_checkpoint_is_refused(tmp_path, content):
    with pytest.raises(ValueError, match="is not a physrl checkpoint"):
        load_checkpoint(written(tmp_path, content))


def test_pickled_objects_are_never_unpickled(tmp_path):
    path = written(tmp_path, {"format": FORMAT, "config": config(), "global_step": 0, "state": {"x": Payload()}})
    with pytest.raises(ValueError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        load_checkpoint(path)


@pytest.mark.parametrize("checkpoint, missing", [
    ({"config": {k: v for k, v in config().items() if k != "agent"}, "global_step": 0, "state": {}}, "['agent']"),
    ({"config": "not a dict", "global_step": 0, "state": {}}, str(list(CONFIG_KEYS))),
    ({"config": config(), "global_step": "0", "state": {}}, "[]"),
    ({"config": config(), "global_step": 0, "state": [1]}, "[]"),
    ({"config": config(), "state": {}}, "[]"),
])
def test_incomplete_checkpoints_are_refused_naming_the_missing_keys(tmp_path, checkpoint, missing):
    path = written(tmp_path, {"format": FORMAT, **checkpoint})
    with pytest.raises(ValueError, match="is incomplete") as error:
        load_checkpoint(path)
    assert f"(missing config keys: {missing})" in str(error.value)


@pytest.mark.parametrize("stored, expected, key", [
    (config(), {"env_id": "physrl/TreasureMaze-v0"}, "env_id"),
    (config(), {"observation_space": spaces.Box(-1.0, 1.0, (4,), np.float32)}, "observation_space"),
    (config(observation_shape=[99]), {"observation_space": OBSERVATION}, "observation_shape"),
    (config(), {"action_space": spaces.Discrete(5)}, "action_space"),
])
def test_a_checkpoint_of_another_env_or_other_spaces_is_refused(tmp_path, stored, expected, key):
    path = save_checkpoint(tmp_path / "checkpoint.pt", stored, 0, {})
    with pytest.raises(ValueError, match=f"does not match: its {key} is"):
        load_checkpoint(path, **expected)


@pytest.mark.parametrize("expected, key", [({"env_id": "physrl/TreasureMaze-v0"}, "env_id"),
                                           ({"observation_space": spaces.Box(-1.0, 1.0, (4,), np.float32)},
                                            "observation_space"),
                                           ({"action_space": spaces.Discrete(5)}, "action_space")])
def test_load_policy_checks_the_env_and_spaces_it_is_given(tmp_path, expected, key):
    path = save_checkpoint(tmp_path / "checkpoint.pt", config(), 0, {})
    with pytest.raises(ValueError, match=f"does not match: its {key} is"):
        load_policy(path, **expected)


def test_a_policy_only_export_samples_from_the_runs_seed(tmp_path):
    """An export drops the random generator; the restored agent's comes from the run's seed (7 here), so a
    sampled policy acts as a fresh agent of that run would, not as one of seed 0."""
    run = config(seed=7)
    agent = TabularPolicyGradient(make_envs(run, 1, "cpu"), seed=7)
    agent.generator.manual_seed(123)  # the generator's state at the end of training, not shipped
    path = save_checkpoint(tmp_path / "checkpoint.pt", run, 0, agent.state_dict())
    restored = restore_agent(load_checkpoint(export_policy(path, tmp_path / "policy.pt")), "cpu")
    fresh = TabularPolicyGradient(make_envs(run, 1, "cpu"), seed=7)
    assert torch.equal(restored.generator.get_state(), fresh.generator.get_state())


def test_load_policy_samples_when_asked_and_is_greedy_by_default(tmp_path):
    """A fresh tabular policy is uniform over the walker's two moves: sampled (``deterministic=False``) it takes
    both on 64 copies of one observation; greedy it takes the same move on all of them."""
    envs = make_envs(config(), 64, "cpu")
    run = config(observation_shape=list(envs.single_observation_space.shape),
                 observation_space=space_spec(envs.single_observation_space),
                 action_space=space_spec(envs.single_action_space))
    agent = TabularPolicyGradient(make_envs(run, 1, "cpu"), seed=0)
    path = save_checkpoint(tmp_path / "checkpoint.pt", run, 0, agent.state_dict())
    observations = envs.reset(seed=0)[0][:1].expand(64, *envs.single_observation_space.shape)
    assert len(set(load_policy(path, deterministic=False)(observations).tolist())) == 2
    assert len(set(load_policy(path)(observations).tolist())) == 1

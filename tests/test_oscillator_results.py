"""Every shipped oscillator result (results/oscillator/fock-*.json) replays to its recorded fidelities."""

from pathlib import Path
import json

import numpy as np
import pytest
import torch

from physrl.envs.kernels.oscillator import population
from physrl.envs.oscillator import OscillatorCore
from physrl.training.oscillator_results import replay_fidelity

RESULTS = sorted((Path(__file__).parent.parent / "results" / "oscillator").glob("fock-*.json"))
KEYS = {"env_id", "env_kwargs", "actions", "fidelity", "shots", "seed", "command", "commit", "limit_fidelity",
        "limit_actions"}


def test_results_are_shipped():
    assert [int(path.stem.split("-")[1]) for path in RESULTS], "no results/oscillator/fock-*.json"


@pytest.mark.parametrize("path", RESULTS, ids=[path.stem for path in RESULTS])
def test_result_replays_to_its_fidelity_and_limit(path):
    result = json.loads(path.read_text())
    assert KEYS <= set(result)
    n = int(path.stem.split("-")[1])
    kwargs = result["env_kwargs"]
    assert kwargs["n"] == n and kwargs["max_steps"] == 5
    assert {"control", "n_levels", "alpha_max", "snap_phases"} <= set(kwargs)
    actions = np.array(result["actions"], dtype=np.float32)
    assert actions.shape == (5, 2 + kwargs["snap_phases"]) and np.abs(actions).max() <= 1
    assert replay_fidelity(result["env_id"], kwargs, actions) == pytest.approx(result["fidelity"], abs=1e-9)
    limit = replay_fidelity(result["env_id"], kwargs, np.array(result["limit_actions"], dtype=np.float32))
    assert limit == pytest.approx(result["limit_fidelity"], abs=1e-9)
    assert result["fidelity"] <= limit
    assert 0 < result["shots"] <= 4_000_000
    core = OscillatorCore(1, reward_mode="fidelity", **kwargs)   # the state stays inside the truncated space
    for t in range(1, 6):
        assert float(population(core.prepare(torch.as_tensor(actions[None, :t], dtype=torch.float64)),
                                core.top_levels)[0]) < 1e-6

import json
import pathlib
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.agents.reference.maze import maze_greedy_policy, optimal_return
from physrl.envs.maze import MazeCore
from physrl.training.challenge import scorer as challenge
from physrl.training.challenge.scorer import (CHALLENGE_ENV, EVAL_DOMAIN, EVAL_SIZE, builtin_submission,
                                              evaluation_envs, evaluation_optima, maze_digests, score_submission)
from physrl.training import train
from physrl.training.checkpoint import save_checkpoint, space_spec
from physrl.training.cli import main

#: Content hash of the 1000 evaluation mazes. Changing it changes the challenge: old results stop counting.
EVALUATION_SET_HASH = "39e76e3a85f4c835e9583ac67508b5c2e6125cec5fe013bc9c24f090e9856c43"
LEADERBOARD = pathlib.Path(__file__).resolve().parents[1] / "leaderboard"


def test_the_evaluation_set_is_fixed():
    assert challenge.EVAL_SET_HASH == EVALUATION_SET_HASH
    assert challenge.evaluation_set_hash() == EVALUATION_SET_HASH
    core = evaluation_envs()[0].core
    digests = maze_digests(core.walls, core.chests, core.start_cell)
    assert len(set(digests)) == EVAL_SIZE
    first = evaluation_envs(7)[0].core  # a prefix of the set is the same mazes, whatever the batch
    assert maze_digests(first.walls, first.chests, first.start_cell) == digests[:7]


def test_shipped_optima_are_the_exact_optima():
    assert len(challenge.EVAL_OPTIMA) == EVAL_SIZE
    np.testing.assert_array_equal(challenge.exact_optima(60), evaluation_optima(60))


def test_evaluation_domain_is_not_reachable_from_env_options():
    assert EVAL_DOMAIN != 0
    assert gym.make_vec(CHALLENGE_ENV, num_envs=2).core.rng.domain == 0
    assert gym.make(CHALLENGE_ENV).unwrapped.core.rng.domain == 0
    with pytest.raises(TypeError, match="domain"):
        gym.make_vec(CHALLENGE_ENV, num_envs=2, domain=EVAL_DOMAIN)


def record_mazes(monkeypatch) -> set[str]:
    """Collect the content digest of every maze that any MazeCore draws from now on."""
    seen: set[str] = set()
    reset_envs = MazeCore.reset_envs

    def recording(self, index):
        reset_envs(self, index)
        seen.update(maze_digests(self.walls[index], self.chests[index], self.start_cell[index]))
    monkeypatch.setattr(MazeCore, "reset_envs", recording)
    return seen


def evaluation_digests() -> set[str]:
    core = evaluation_envs()[0].core
    return set(maze_digests(core.walls, core.chests, core.start_cell))


def test_training_streams_never_draw_an_evaluation_maze(monkeypatch):
    evaluation = evaluation_digests()
    seen = record_mazes(monkeypatch)
    for seed in (0, 100, 500, 123456):  # seeds 0..699 are evaluation seeds, here in the training domain
        envs = gym.make_vec(CHALLENGE_ENV, num_envs=100)
        envs.reset(seed=seed)
        actions = torch.Generator().manual_seed(seed)
        for _ in range(10 * 41):  # ten episodes of every sub-env (plus autoreset steps)
            envs.step(torch.randint(0, 5, (100,), generator=actions))
    assert len(seen) > 4000
    assert not seen & evaluation


TRAIN = ["train", "--env", CHALLENGE_ENV, "--agent", "deep-pg", "--num-envs", "64", "--no-progress",
         "--set", "network=\"mlp\"", "--set", "num_steps=41", "--set", "update_epochs=1", "--set", "num_minibatches=1"]
TRAIN_STEPS = 3 * 64 * 41  # three updates: 192 episodes and 64 first mazes


def test_physrl_train_never_draws_an_evaluation_maze(tmp_path, monkeypatch, capsys):
    evaluation = evaluation_digests()
    seen = record_mazes(monkeypatch)
    for seed in (0, 100, 999):  # seeds of evaluation mazes, here in the training domain
        assert main([*TRAIN, "--seed", str(seed), "--total-steps", str(TRAIN_STEPS), "--logdir", str(tmp_path)]) == 0
    assert len(seen) > 3 * 250
    assert not seen & evaluation
    run_dir = pathlib.Path(capsys.readouterr().out.split()[-1])
    result, returns, _ = score_submission(challenge.checkpoint_submission(str(run_dir), "cpu"), count=20)
    assert result["agent"] == "deep-pg" and result["env_steps"] == TRAIN_STEPS and len(returns) == 20
    assert result["training_command"].startswith(f"physrl train --env {CHALLENGE_ENV} --agent deep-pg --seed 999")


def test_physrl_train_cannot_select_the_evaluation_domain(tmp_path, capsys):
    kwargs = json.dumps({"domain": EVAL_DOMAIN})
    assert main([*TRAIN, "--env-kwargs", kwargs, "--total-steps", "100", "--logdir", str(tmp_path)]) == 2
    assert "domain" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def play_single(policy, maze: int) -> float:
    """Return of ``policy`` on evaluation maze ``maze``, played on the single-env face."""
    env = gym.make(CHALLENGE_ENV)
    env.unwrapped.core.rng.domain = EVAL_DOMAIN
    obs, _ = env.reset(seed=maze)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(int(policy(torch.as_tensor(obs)[None])[0]))
        total, done = total + reward, terminated or truncated
    return total


def test_greedy_reference_matches_the_greedy_planner_played_maze_by_maze():
    result, returns, optima = score_submission(builtin_submission("greedy"), count=16)
    expected = [play_single(maze_greedy_policy, i) for i in range(16)]
    np.testing.assert_array_equal(returns, expected)
    assert np.all(returns <= optima)
    assert result["score"] == pytest.approx(np.mean(expected) / np.mean(optima))


def test_optimum_reference_plays_the_exact_optimum_and_scores_one():
    core = evaluation_envs(30)[0].core
    result, returns, optima = score_submission(builtin_submission("optimum"), count=30)
    np.testing.assert_array_equal(returns, [optimal_return(core.layout(i), 40) for i in range(30)])
    np.testing.assert_array_equal(returns, optima)
    assert result["score"] == 1.0 and result["score_stderr"] == 0.0


def test_random_reference_is_reproducible_and_far_below_greedy():
    first, returns, _ = score_submission(builtin_submission("random"), count=200)
    second, again, _ = score_submission(builtin_submission("random"), count=200)
    np.testing.assert_array_equal(returns, again)
    assert 0 < first["score"] < 0.2


def test_unknown_builtin_names_the_allowed_ones(capsys):
    assert main(["challenge", "evaluate", "builtin:best"]) == 2
    assert "builtin:greedy" in capsys.readouterr().err


def challenge_config(**changes) -> dict:
    envs = gym.make_vec(CHALLENGE_ENV, num_envs=1)
    config = {"env_id": CHALLENGE_ENV, "env_kwargs": {}, "agent": "deep-pg", "hyperparameters": {}, "seed": 0,
              "num_envs": 1, "total_steps": 0, "observation_shape": [3, 15, 15],
              "observation_space": space_spec(envs.single_observation_space),
              "action_space": space_spec(envs.single_action_space)}
    return {**config, **changes}


def refusal(path, capsys) -> str:
    assert main(["challenge", "evaluate", str(path), "--out", str(path.parent / "out")]) == 2
    assert not (path.parent / "out").exists()
    return capsys.readouterr().err


def test_checkpoint_of_another_env_is_refused(tmp_path, capsys):
    maze = gym.make_vec("physrl/TreasureMaze-v0", num_envs=1)
    config = challenge_config(env_id="physrl/TreasureMaze-v0", observation_shape=[3, 11, 11],
                              observation_space=space_spec(maze.single_observation_space))
    path = save_checkpoint(tmp_path / "checkpoint.pt", config, 0, {})
    assert f"env_id is 'physrl/TreasureMaze-v0', expected '{CHALLENGE_ENV}'" in refusal(path, capsys)


def test_checkpoint_with_another_observation_shape_is_refused(tmp_path, capsys):
    small = gym.spaces.Box(0.0, 1.0, (3, 11, 11), np.float32)
    config = challenge_config(observation_space=space_spec(small))
    path = save_checkpoint(tmp_path / "checkpoint.pt", config, 0, {})
    assert "observation_space" in refusal(path, capsys)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncated"])
def test_corrupt_checkpoint_is_refused(tmp_path, capsys, content):
    path = tmp_path / "checkpoint.pt"
    if content == "truncated":
        save_checkpoint(path, challenge_config(), 0, {"weights": torch.zeros(1000)})
        content = path.read_bytes()[:500]
    path.write_bytes(content)
    assert "corrupt or not a physrl checkpoint" in refusal(path, capsys)


def test_missing_checkpoint_is_refused(tmp_path, capsys):
    assert "does not exist" in refusal(tmp_path / "checkpoint.pt", capsys)


def test_checkpoint_with_tampered_weights_is_refused(tmp_path, capsys):
    run_dir = train(CHALLENGE_ENV, "deep-pg", num_envs=4, total_steps=4 * 41, logdir=tmp_path, progress=False,
                    hyperparameters={"network": "mlp", "num_steps": 41, "update_epochs": 1, "num_minibatches": 1})
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    weights = checkpoint["state"]["model"]
    name = next(key for key, value in weights.items() if value.dim() == 2)
    weights[name] = torch.zeros(3, 3)
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    assert "size mismatch" in refusal(run_dir / "checkpoint.pt", capsys)


class Payload:
    """Unpickling this object opens (so creates) ``marker``."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_malicious_pickle_in_a_checkpoint_is_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "physrl-checkpoint-1", "config": challenge_config(), "global_step": 0,
                "state": {"payload": Payload(marker)}}, path)
    assert "corrupt or not a physrl checkpoint" in refusal(path, capsys)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


POLICY_MODULE = '''
import torch

def act(observations):
    """Always step right."""
    return torch.full((observations.shape[0],), 2)
'''


def test_python_policy_runs_end_to_end_after_a_warning(tmp_path, monkeypatch, capsys):
    (tmp_path / "always_right_policy.py").write_text(POLICY_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scorer adds the working directory
    assert main(["challenge", "evaluate", "--policy", "always_right_policy:act", "--out", "results"]) == 0
    assert "runs its code" in capsys.readouterr().err
    result = json.loads((tmp_path / "results" / "always_right_policy_act.json").read_text())
    rows = (tmp_path / "results" / "always_right_policy_act.returns.csv").read_text().splitlines()
    assert rows[0] == "maze,return,optimum" and len(rows) == EVAL_SIZE + 1
    returns = np.array([float(row.split(",")[1]) for row in rows[1:]])
    right = lambda obs: torch.full((obs.shape[0],), 2)  # noqa: E731
    np.testing.assert_array_equal(returns[:10], [play_single(right, i) for i in range(10)])
    assert result["mean_return"] == pytest.approx(returns.mean())
    assert result["score"] == pytest.approx(returns.mean() / evaluation_optima().mean())
    assert result["evaluation_set"] == EVALUATION_SET_HASH and result["mazes"] == EVAL_SIZE
    assert result["env_steps"] is None and result["command"] == "physrl challenge evaluate --policy always_right_policy:act"


@pytest.mark.parametrize("argv, message", [
    (["--policy", "no_colon"], "module:function"),
    (["--policy", "json:no_such_function"], "no callable named 'no_such_function'"),
    (["--policy", "no_such_module_here:act"], "cannot import no_such_module_here"),
    ([], "exactly one of SUBMISSION"),
    (["builtin:random", "--policy", "json:loads"], "exactly one of SUBMISSION"),
])
def test_bad_submission_arguments_are_refused_clearly(argv, message, capsys):
    assert main(["challenge", "evaluate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_policy_returning_bad_actions_is_refused_clearly():
    with pytest.raises(ValueError, match=r"policy must return 5 integer actions"):
        challenge.play(lambda obs: torch.zeros(3, dtype=torch.int64), count=5)
    with pytest.raises(ValueError, match=r"policy must return 5 integer actions"):
        challenge.play(lambda obs: torch.full((5,), 7), count=5)


def test_leaderboard_sorts_by_score_and_skips_foreign_files(tmp_path, capsys):
    for name in ("random", "optimum"):
        challenge.write_result(*score_submission(builtin_submission(name), count=50), tmp_path)
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    assert main(["challenge", "leaderboard", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert rows[0].startswith("| 1 | optimum |") and "1.000 ± 0.000" in rows[0]
    assert rows[1].startswith("| 2 | random |")
    assert "skipping" in captured.err and "notes.json" in captured.err


def test_repository_leaderboard_is_current_and_reproducible():
    results = {path.stem: json.loads(path.read_text()) for path in LEADERBOARD.glob("*.json")}
    assert {"random", "greedy", "optimum"} <= set(results)
    for result in results.values():
        assert result["evaluation_set"] == EVALUATION_SET_HASH and result["mazes"] == EVAL_SIZE
        assert result["command"].startswith("physrl challenge evaluate ")
    assert results["optimum"]["score"] == 1.0
    assert results["random"]["mean_return"] == pytest.approx(score_submission(builtin_submission("random"))[0]["mean_return"])
    assert results["random"]["score"] < results["greedy"]["score"] < 1.0

"""Long commands show a progress bar on stderr (tqdm), and nothing of it on stdout."""

from physrl.agents.reference.maze import maze_greedy_policy
from physrl.training import train
from physrl.training.challenge.scorer import play
from physrl.training.cli import main


def test_evaluate_and_challenge_show_progress_on_stderr(tmp_path, capsys):
    run_dir = train("physrl/TreasureMaze-v0", "deep-pg", num_envs=2, total_steps=32, logdir=tmp_path,
                    env_kwargs={"size": 7, "n_chests": 3, "max_steps": 15}, progress=False, picture_every=0)
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run_dir), "--episodes", "4"]) == 0
    captured = capsys.readouterr()
    assert "evaluating:" in captured.err and "0/4" in captured.err and "exact optima" in captured.err
    assert "evaluating" not in captured.out and captured.out.startswith("return:")
    returns = play(maze_greedy_policy, count=3, progress=True)
    assert len(returns) == 3 and "playing 3 mazes" in capsys.readouterr().err

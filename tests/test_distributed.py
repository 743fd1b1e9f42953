"""Data-parallel training under torchrun: two gloo ranks on the CPU."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import json, sys
    import torch, torch.distributed as dist
    from physrl.agents.distributed import average_gradients, leave_process_group, rank_and_world_size
    from physrl.training.train import execute, prepare

    logdir, out = sys.argv[1], sys.argv[2]
    options = dict(num_envs=8, seed=3, env_kwargs={"size": 7, "n_chests": 3, "max_steps": 15},
                   hyperparameters={"num_steps": 16}, logdir=logdir)

    def parameters(learner):
        flat = torch.cat([p.detach().flatten() for p in learner.model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    run = prepare("physrl/TreasureMaze-v0", "deep-pg", total_steps=8 * 16 * 3, **options)
    execute(run, progress=False)
    first = {"identical": parameters(run.learner), "step": run.learner.global_step, "dir": str(run.run_dir),
             "local_envs": run.envs.num_envs}
    resumed = prepare(resume=run.run_dir, total_steps=8 * 16 * 5)
    start = resumed.learner.global_step
    execute(resumed, progress=False)
    second = {"identical": parameters(resumed.learner), "start": start, "step": resumed.learner.global_step}

    # One gradient step on a batch split over the ranks equals the step on the whole batch in one process.
    rank, world_size = rank_and_world_size()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x, y = torch.randn(10, 4), torch.randn(10, 2)
    mask = torch.tensor([1, 1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=torch.bool)
    part = slice(0, 3) if rank == 0 else slice(3, 10)  # unequal shares of valid samples
    def loss(rows):
        return ((model(x[rows]) - y[rows]) ** 2).sum(1)[mask[rows]].mean()
    loss(part).backward()
    average_gradients(model.parameters(), mask[part].sum())
    distributed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    loss(slice(0, 10)).backward()
    gradient = all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(distributed, model.parameters()))
    if rank == 0:
        json.dump({"first": first, "second": second, "gradient": gradient}, open(out, "w"))
    # every rank leaves together, as `physrl train` does: the exit hook of join_from_environment leaves without a
    # barrier (for ranks that stop on an error), and a rank whose peer tears the gloo group down first aborts
    # at random ("terminate called without an active exception"; one fresh-clone run in two at load 3)
    leave_process_group()
''')


@pytest.mark.slow
def test_two_gloo_ranks_train_resume_and_match_one_process(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--standalone", str(script), str(tmp_path / "runs"), str(out)],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    first, second = report["first"], report["second"]
    assert first["identical"] and second["identical"], "parameters must stay identical across ranks"
    assert first["local_envs"] == 4, "each rank steps its own half of the sub-envs"
    assert first["step"] == 8 * 16 * 3 and second["start"] == first["step"] and second["step"] == 8 * 16 * 5
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1, f"one run folder, written by rank 0: {run_dirs}"
    events = list(run_dirs[0].glob("events.out.tfevents.*"))
    assert len(events) == 2, "one event file per phase (first run, resume), none from rank 1"
    assert len({name.name.split(".")[-2] for name in events}) == 1, "all written by the same process"
    assert (run_dirs[0] / "checkpoint.pt").exists()
    assert report["gradient"], "the all-reduced gradient equals the gradient on the whole batch"


@pytest.mark.slow
def test_ranks_refused_after_joining_leave_the_group_and_exit_cleanly(tmp_path):
    """An error after the ranks joined (num_envs not divisible by the ranks) ends both with the one-line error,
    never with the abort of a process that exits holding a live gloo group."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                             "-m", "physrl.training.cli", "train", "--env", "physrl/RandomWalker-v0",
                             "--agent", "deep-pg", "--num-envs", "3", "--logdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env=env)
    output = result.stdout + result.stderr
    assert output.count("physrl train: error: num_envs (3) must be divisible by the number of ranks (2)") == 2
    assert "terminate called" not in output and "SIGABRT" not in output, output[-3000:]

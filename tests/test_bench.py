"""``physrl bench`` prints a table (or one JSON object per measurement with ``--json``) and the ratios
measured in the same run; no measurement runs unbounded."""

import json

import pytest

from physrl.training.bench import throughput as bench
from physrl.training.cli import main


def test_bench_envs_quick_records_and_ratios(tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    assert main(["bench", "envs", "--quick", "--env", "physrl/TreasureMaze-v0", "--num-envs", "1", "16",
                 "--impl", "vector", "sync", "--seconds", "0.05", "--json", str(out)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [json.loads(line) for line in out.read_text().splitlines()]
    records = [r for r in printed if "impl" in r]
    assert {(r["impl"], r["num_envs"]) for r in records} == {("vector", 1), ("sync", 1), ("vector", 16), ("sync", 16)}
    for record in records:
        assert set(record) >= {"env", "impl", "num_envs", "device", "steps_per_s", "bytes_per_env"}
        assert record["steps_per_s"] > 0
    ratios = {r["num_envs"]: r["value"] for r in printed if "ratio" in r}
    assert set(ratios) == {1, 16}
    rate = {(r["impl"], r["num_envs"]): r["steps_per_s"] for r in records}
    assert ratios[16] == rate["vector", 16] / rate["sync", 16]


def test_a_size_that_does_not_fit_in_memory_is_skipped_and_other_errors_are_raised(monkeypatch):
    def allocate(env_id, num_envs, device, seconds):
        if num_envs > 16:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return {"steps_per_s": 1.0, "bytes_per_env": 8.0}

    monkeypatch.setattr(bench, "bench_vector", allocate)
    records = list(bench.measurements(["physrl/RandomWalker-v0"], [16, 65536], [bench.torch.device("cpu")],
                                      ["vector"], 0.01))
    assert [r.get("skipped") for r in records] == [None, "out of memory"]
    monkeypatch.setattr(bench, "bench_vector", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        list(bench.measurements(["physrl/RandomWalker-v0"], [16], [bench.torch.device("cpu")], ["vector"], 0.01))


def test_bench_train_quick_compares_with_sb3(capsys):
    assert main(["bench", "train", "--quick", "--env", "physrl/RandomWalker-v0", "--num-envs", "4",
                 "--episodes", "8", "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    runs = {r["agent"]: r for r in printed if "agent" in r}
    assert set(runs) == {"deep-pg", "sb3-ppo"}
    assert all(r["env_steps"] >= 5000 and r["steps_per_s"] > 0 for r in runs.values())
    ratio = next(r for r in printed if "ratio" in r)
    assert ratio["value"] == runs["deep-pg"]["steps_per_s"] / runs["sb3-ppo"]["steps_per_s"]


def test_bench_envs_prints_a_table_by_default(capsys):
    assert main(["bench", "envs", "--quick", "--env", "physrl/RandomWalker-v0", "--num-envs", "4",
                 "--impl", "vector", "sync", "--seconds", "0.02"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["env", "impl", "device", "num_envs", "env-steps/s", "bytes/env"]
    assert [line.split()[:4] for line in lines[1:3]] == [["physrl/RandomWalker-v0", "vector", "cpu", "4"],
                                                          ["physrl/RandomWalker-v0", "sync", "cpu", "4"]]
    assert lines[3].split()[:4] == ["physrl/RandomWalker-v0", "vector[cpu]", "/", "sync"]
    assert lines[3].endswith("x") and len(lines) == 4


def test_a_measurement_past_its_timeout_is_skipped_and_the_next_one_runs(monkeypatch):
    import time

    def slow(env_id, num_envs, device, seconds):
        if num_envs == 1:
            time.sleep(30)
        return {"steps_per_s": 1.0, "bytes_per_env": 8.0}

    monkeypatch.setattr(bench, "bench_vector", slow)
    records = list(bench.measurements(["physrl/RandomWalker-v0"], [1, 2], [bench.torch.device("cpu")], ["vector"],
                                      0.01, timeout=0.3))
    assert [r.get("skipped") for r in records] == ["timed out after 0.3 s", None]


def test_async_workers_start_from_a_fork_server_after_torch_threads_ran(monkeypatch):
    """Forking a process whose OpenMP threads ran can hang the child; the fork server never does that."""
    contexts = []
    make_vec = bench.gym.make_vec

    def recording(*args, **kwargs):
        contexts.append(kwargs.get("vector_kwargs", {}).get("context"))
        return make_vec(*args, **kwargs)

    monkeypatch.setattr(bench.gym, "make_vec", recording)
    threads = bench.torch.get_num_threads()
    bench.torch.set_num_threads(2)
    try:
        bench.torch.ones(256, 256) @ bench.torch.ones(256, 256)  # the intra-op thread pool has run
        records = list(bench.measurements(["physrl/RandomWalker-v0"], [2], [bench.torch.device("cpu")], ["async"],
                                          0.02, timeout=120))
    finally:
        bench.torch.set_num_threads(threads)
    assert contexts == ["forkserver"]
    assert records[0]["impl"] == "async" and records[0]["steps_per_s"] > 0


def test_bad_bench_options_are_one_line_errors(capsys):
    assert main(["bench", "--env", "physrl/Nope-v0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("physrl bench: error: --env must be one of [") and error.count("\n") == 1
    assert main(["bench", "--device", "abacus"]) == 2
    assert capsys.readouterr().err.startswith("physrl bench: error: device must be a torch device")


def test_bench_train_measures_the_recipe_of_a_config(capsys, tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("env: physrl/RandomWalker-v0\nagent: deep-pg\nnum_envs: 4\n"
                      "hyperparameters:\n  hidden_sizes: [8]\n  update_epochs: 1\n")
    assert main(["bench", "train", "--quick", "--config", str(config), "--episodes", "8", "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    runs = {r["agent"]: r for r in printed if "agent" in r}
    assert runs["deep-pg"]["hyperparameters"] == {"hidden_sizes": [8], "update_epochs": 1}
    assert runs["deep-pg"]["env"] == "physrl/RandomWalker-v0" and runs["deep-pg"]["num_envs"] == 4
    assert "hyperparameters" not in runs["sb3-ppo"]
    config.write_text("agent: dqn\n")
    assert main(["bench", "train", "--quick", "--config", str(config)]) == 2
    assert "--config must be a deep-pg config" in capsys.readouterr().err

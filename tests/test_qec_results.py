"""The shipped QEC policies (results/qec/*.pt, *.json): they load with load_policy, carry everything needed to
rebuild their env, and a cheaper run of the same estimator re-derives their lifetime."""

import json
from pathlib import Path

import pytest

from physrl.agents.reference.qec import effective_lifetime
from physrl.training import load_policy, train
from physrl.training.qec_results import export_result

RESULTS = Path(__file__).resolve().parents[1] / "results" / "qec"


@pytest.mark.parametrize("name, obs_mode", [("teacher", "pairs"), ("teacher_seed1", "pairs"), ("teacher_seed2", "pairs"),
                                             ("teacher_reduced", "pairs"), ("student", "measurements")])
def test_shipped_policy_re_derives_its_greedy_lifetime(name, obs_mode):
    """512 of the 4096 episodes the figure was measured on (the same seeds), greedy: within 3 standard errors
    of this smaller sample (its spread about the full-sample figure), and far above the passive code (2.8)."""
    result = json.loads((RESULTS / f"{name}.json").read_text())
    assert result["env_kwargs"].get("obs_mode", "measurements") == obs_mode and result["estimator"]["seed"] == 0
    policy = load_policy(RESULTS / f"{name}.pt", deterministic=True)
    assert policy.config["env_kwargs"] == result["env_kwargs"]
    ratio, error = effective_lifetime(result["env_kwargs"], lambda envs: policy, num_envs=512, seed=0)
    shipped = result["t_eff_over_t_dec"]["greedy"]
    assert abs(ratio - shipped) < 3 * error, (ratio, error, shipped)
    assert ratio > 10.0
    assert result["env_steps"] > 0 and result["command"].startswith("physrl train") and len(result["commit"]) == 40


def test_export_result_writes_a_loadable_policy_and_its_figures(tmp_path):
    run = train("physrl/QubitErrorCorrection-v0", "deep-pg", num_envs=8, total_steps=8 * 16,
                env_kwargs={"n_qubits": 3, "max_steps": 16, "obs_mode": "pairs", "action_memory": 2},
                hyperparameters={"num_steps": 16, "action_mask": True}, logdir=tmp_path, progress=False)
    result = export_result(run, tmp_path / "qec" / "small.pt", command="physrl train ...", num_envs=32)
    saved = json.loads((tmp_path / "qec" / "small.json").read_text())
    assert saved == json.loads(json.dumps(result)) and saved["env_kwargs"]["action_memory"] == 2
    figures = saved["t_eff_over_t_dec"]
    assert figures["greedy"] > 0 and figures["sampled_error"] >= 0 and saved["env_steps"] == 128
    assert (tmp_path / "qec" / "small.pt").stat().st_size < 200_000
    policy = load_policy(tmp_path / "qec" / "small.pt", deterministic=True)
    ratio, _ = effective_lifetime(saved["env_kwargs"], lambda envs: policy, num_envs=32)
    assert ratio == pytest.approx(figures["greedy"], rel=1e-9)


def test_export_result_records_the_stages_of_a_curriculum(tmp_path):
    """A run started from another's policy (init_from) ships the earlier stage's env options and steps, and
    counts them in env_steps."""
    options = {"num_envs": 4, "total_steps": 4 * 16, "hyperparameters": {"num_steps": 16}, "logdir": tmp_path,
               "progress": False}
    small = {"n_qubits": 3, "max_steps": 16, "hadamard": True}
    first = train("physrl/QubitErrorCorrection-v0", "deep-pg", env_kwargs={**small, "noise": "bitflip"}, **options)
    second = train("physrl/QubitErrorCorrection-v0", "deep-pg", env_kwargs={**small, "noise": "dephasing"},
                   init_from=str(first), **{**options, "total_steps": 8 * 16})
    result = export_result(second, tmp_path / "qec" / "staged.pt", command="physrl train ...", num_envs=32)
    assert result["env_kwargs"]["noise"] == "dephasing" and result["env_steps"] == 4 * 16 + 8 * 16
    [stage] = result["curriculum"]
    assert stage["env_kwargs"] == {**small, "noise": "bitflip"} and stage["env_steps"] == 4 * 16
    assert stage["hyperparameters"]["num_steps"] == 16 and stage["seed"] == 0 and stage["num_envs"] == 4


def test_shipped_dephasing_teacher_found_the_phase_flip_encoding():
    """Under dephasing with Hadamards the greedy teacher (trained with the count-based bonus) puts two clean
    qubits in |+⟩, copies the logical qubit's X-basis state onto them with cnot(k, 0) and then only flips
    qubit 0 (R_Q-neutral): the passive phase-flip code, R_Q(200) as that code's 0.886 in every episode (no
    measurement: deterministic), T_eff/T_dec re-derived exactly from 64 episodes."""
    result = json.loads((RESULTS / "teacher_dephasing.json").read_text())
    assert result["env_kwargs"]["noise"] == "dephasing" and result["env_kwargs"]["hadamard"] is True
    assert result["hyperparameters"]["novelty_coef"] > 0 and result["env_steps"] > 0
    policy = load_policy(RESULTS / "teacher_dephasing.pt", deterministic=True)
    ratio, error = effective_lifetime(result["env_kwargs"], lambda envs: policy, num_envs=64, seed=0)
    assert ratio == pytest.approx(result["t_eff_over_t_dec"]["greedy"], rel=1e-9) and error < 1e-9
    assert 2.5 < ratio < 3.5
    circuit = result["greedy_circuit"]
    hadamards = {int(name[2]) for name in circuit[:8] if name.startswith("h(")}
    copies = {int(name[5]) for name in circuit[:8] if name.startswith("cnot(") and name.endswith(",0)")}
    assert len(hadamards) == 2 and hadamards == copies and 0 not in hadamards
    assert not any(name.startswith("measure") for name in circuit)


def test_shipped_correlated_noise_teacher_found_a_decoherence_free_encoding():
    """Under collective dephasing the greedy teacher encodes into states with equal numbers of 1s and then
    idles: R_Q stays constant (T_eff/T_dec in the thousands, error 0 as no episode measures)."""
    result = json.loads((RESULTS / "teacher_correlated.json").read_text())
    assert result["env_kwargs"]["noise"] == "correlated" and result["t_eff_over_t_dec"]["greedy"] > 1000
    policy = load_policy(RESULTS / "teacher_correlated.pt", deterministic=True)
    ratio, error = effective_lifetime(result["env_kwargs"], lambda envs: policy, num_envs=16, seed=0)
    assert ratio > 1000 and error < 1e-6
    assert all(name == "idle" for name in result["greedy_circuit"][3:])


@pytest.mark.parametrize("name, re_derived", [
    ("lifetimes", {"teacher_greedy", "repetition_code", "repetition_schedule"}),
    ("lifetimes_steady", {"teacher_greedy", "repetition_code"}),
    ("lifetimes_seed1", {"teacher_greedy"}),
    ("lifetimes_steady_seed1", {"teacher_greedy"}),
    ("lifetimes_seed2", {"teacher_greedy"}),
    ("lifetimes_steady_seed2", {"teacher_greedy"}),
    ("lifetimes_reduced", {"teacher_greedy", "hand_written"}),
    ("lifetimes_dephasing", {"teacher_greedy", "hand_written"})])
def test_lifetime_comparison_re_derives_its_figures(name, re_derived):
    """results/qec/lifetimes*.json: a teacher and the repetition code on disjoint seed blocks. The mean and its
    error follow from the per-seed figures; the first eighth of seed 1's episodes re-derives seed 1's figure
    within 3 standard errors of that smaller sample (not for the schedule's 128 800-step episodes, whose rare
    logical errors leave 16 groups of 8 too few for an honest error)."""
    from physrl.training.qec_results import compared_policies, seed_mean

    result = json.loads((RESULTS / f"{name}.json").read_text())
    estimator = result["estimator"]
    factories = compared_policies(Path(__file__).resolve().parents[1] / result["teacher"], result.get("code", "bitflip"))
    assert "teacher_greedy" in result["policies"] and set(result["policies"]) <= set(factories)
    assert len(result["commit"]) == 40
    for policy_name, measured in result["policies"].items():
        assert len(measured["seeds"]) >= 4 and measured["seeds"] == list(range(len(measured["seeds"])))
        assert seed_mean(measured["figures"]) == pytest.approx({"mean": measured["mean"], "error": measured["error"]})
        options, factory = factories[policy_name]
        assert options == measured["env_kwargs"]
        if policy_name not in re_derived:
            continue
        eighth = estimator["num_envs"] // 8  # seed 8 of blocks of num_envs/8 = the first eighth of seed 1
        ratio, error = effective_lifetime(options, factory, num_envs=eighth, seed=8, steps=estimator["steps"],
                                          fit_from=estimator["fit_from"])
        # (+ 1e-9: a policy that never measures has the same R_Q in every episode, and no spread)
        assert abs(ratio - measured["figures"][1]) < 3 * error + 1e-9, (policy_name, ratio, error, measured["figures"][1])


def test_compare_refuses_an_unknown_policy_name(tmp_path):
    from physrl.training.qec_results import compare_lifetimes

    with pytest.raises(ValueError, match="policies must be among"):
        compare_lifetimes(tmp_path / "out.json", RESULTS / "teacher.pt", 2, 8, None, 1, "...", ["surface_code"])
    assert not (tmp_path / "out.json").exists()

"""Ship a trained QEC policy as a small checkpoint and a JSON of its lifetime (results/qec/NAME.{pt,json}).

The checkpoint keeps only the policy (:func:`~physrl.training.checkpoint.export_policy`), so that
``load_policy("results/qec/teacher.pt", deterministic=True)`` rebuilds it; the JSON holds the run's
``env_kwargs`` (obs_mode, action_memory and the device), T_eff/T_dec of the greedy and the sampled
policy with their errors (:func:`physrl.agents.reference.qec.effective_lifetime`, Fösel et al., PRX 8, 031084 (2018)),
``seed``, ``env_steps``, ``command`` and ``commit``::

    python -m physrl.training.qec_results RUN_DIR results/qec/teacher.pt \\
        --command "physrl train --config training/configs/qec_teacher_memory.yaml"

``compare`` measures the shipped teacher and the repetition code on disjoint blocks of episodes (seeds
0 … K−1 of the estimator) and writes each figure, their mean and its standard error::

    python -m physrl.training.qec_results compare results/qec/lifetimes.json --seeds 8
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from physrl.agents.reference.qec import (HAND_WRITTEN_CODES, RepetitionCodePolicy, ScheduledPolicy,
                                         effective_lifetime)
from physrl.envs.qec import QubitErrorCorrectionVectorEnv
from physrl.training.checkpoint import export_policy, load_checkpoint, load_policy, source_commit


def lifetime(path: str | Path, deterministic: bool, num_envs: int, seed: int = 0) -> tuple[float, float]:
    """T_eff/T_dec (and its error) of the policy in ``path`` on its own env options, greedy or sampled."""
    config = load_checkpoint(path)["config"]
    return effective_lifetime(config["env_kwargs"], lambda envs: load_policy(path, deterministic=deterministic),
                              num_envs=num_envs, seed=seed)


def save_circuit(path: str | Path, out: str | Path, steps: int = 60, seed: int = 0) -> list[str]:
    """Draw the first ``steps`` actions of one greedy episode of the policy in ``path`` (the env's
    ``rgb_array`` circuit: one row per qubit, CNOT control dark, target and X red, H blue, measurement
    green for 0 / black for 1) to ``out`` (PNG); return the actions' names with outcomes."""
    config = load_checkpoint(path)["config"]
    envs = QubitErrorCorrectionVectorEnv(num_envs=1, **{**config["env_kwargs"], "max_steps": steps})
    policy = load_policy(path, deterministic=True)
    obs, _ = envs.reset(seed=seed)
    for _ in range(steps - 1):  # the last step would truncate and reset the record
        obs, *_ = envs.step(policy(obs))
    plt.imsave(out, envs.frame(0))
    return [envs.action_names[a] + (f"->{m}" if m >= 0 else "")
            for a, m in envs.history[0, :steps - 1].tolist()]


def export_result(run_dir: str | Path, path: str | Path, command: str, num_envs: int = 4096,
                  seed: int = 0) -> dict[str, Any]:
    """Write the policy of ``run_dir`` to ``path`` (.pt), its figures to the .json and a picture of its greedy
    circuit to the .png beside it; return the JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_policy(run_dir, path)
    checkpoint = load_checkpoint(path)
    config = checkpoint["config"]
    greedy, greedy_error = lifetime(path, True, num_envs, seed)
    sampled, sampled_error = lifetime(path, False, num_envs, seed)
    circuit = save_circuit(path, path.with_suffix(".png"))
    commit = source_commit()
    result = {
        "env_id": config["env_id"], "env_kwargs": config["env_kwargs"], "agent": config["agent"],
        "hyperparameters": config["hyperparameters"],
        "t_eff_over_t_dec": {"greedy": greedy, "greedy_error": greedy_error,
                             "sampled": sampled, "sampled_error": sampled_error},
        "estimator": {"function": "physrl.agents.reference.qec.effective_lifetime", "num_envs": num_envs, "seed": seed,
                      "steps": config["env_kwargs"].get("max_steps", 200)},
        "greedy_circuit": circuit,
        "seed": config["seed"], "env_steps": int(checkpoint["global_step"]), "command": command, "commit": commit,
        "torch": torch.__version__,
    }
    stages = curriculum(config)
    if stages:
        result["curriculum"] = stages
        result["env_steps"] += sum(stage["env_steps"] for stage in stages)
    path.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def curriculum(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier stages of a run started with ``init_from`` (a checkpoint's ``config``), first stage first:
    the env options, hyperparameters, seed and env steps of each (``env_steps`` of a result counts them all)."""
    if not config.get("init_from"):
        return []
    earlier = load_checkpoint(config["init_from"])
    stage = {key: earlier["config"][key] for key in ("env_kwargs", "hyperparameters", "seed", "num_envs")}
    return [*curriculum(earlier["config"]), {**stage, "env_steps": int(earlier["global_step"])}]


def compared_policies(teacher: str | Path, code: str = "bitflip") -> dict[str, tuple[dict[str, Any], Callable]]:
    """The policies of a ``results/qec/lifetimes*.json``: name -> (env options, policy factory): the greedy policy
    of the ``teacher`` checkpoint and the scenario's hand-written code ``code`` (a key of
    :data:`~physrl.agents.reference.qec.HAND_WRITTEN_CODES`): for ``"bitflip"`` the repetition code and its
    schedule without corrections, otherwise the code's schedule as ``hand_written``."""
    if code not in HAND_WRITTEN_CODES:
        raise ValueError(f"code must be one of {sorted(HAND_WRITTEN_CODES)}, got {code!r}")
    options, prefix, cycle = HAND_WRITTEN_CODES[code]
    schedule = (options, lambda envs: ScheduledPolicy(envs, prefix, cycle))
    teacher_policy = (load_checkpoint(teacher)["config"]["env_kwargs"], lambda envs: load_policy(teacher, deterministic=True))
    if code == "bitflip":
        return {"teacher_greedy": teacher_policy, "repetition_code": ({}, RepetitionCodePolicy),
                "repetition_schedule": schedule}
    return {"teacher_greedy": teacher_policy, "hand_written": schedule}


def lifetime_over_seeds(env_options: dict[str, Any], policy_factory: Callable, seeds: list[int], num_envs: int,
                        steps: int | None = None, fit_from: int = 1) -> dict[str, Any]:
    """T_eff/T_dec by :func:`~physrl.agents.reference.qec.effective_lifetime` on each of ``seeds`` (disjoint blocks of
    ``num_envs`` episodes), their mean and its standard error (the spread over seeds / √len(seeds))."""
    figures = [effective_lifetime(env_options, policy_factory, num_envs=num_envs, steps=steps, seed=seed,
                                  fit_from=fit_from) for seed in seeds]
    return {"seeds": list(seeds), "figures": [f for f, _ in figures], "errors": [e for _, e in figures],
            **seed_mean([f for f, _ in figures])}


def seed_mean(figures: list[float]) -> dict[str, float]:
    """``{"mean": ..., "error": ...}``: the mean of independent figures and its standard error."""
    return {"mean": float(np.mean(figures)), "error": float(np.std(figures, ddof=1) / math.sqrt(len(figures)))}


def compare_lifetimes(out: str | Path, teacher: str | Path, seeds: int, num_envs: int, steps: int | None,
                      fit_from: int, command: str, names: list[str] | None = None, code: str = "bitflip"
                      ) -> dict[str, Any]:
    """Measure the policies ``names`` (default all) of :func:`compared_policies` on seeds 0 … ``seeds`` − 1 and
    write ``out`` (JSON)."""
    result = {"estimator": {"function": "physrl.agents.reference.qec.effective_lifetime", "num_envs": num_envs,
                            "steps": steps or 200, "fit_from": fit_from},
              "teacher": str(teacher), "code": code, "policies": {}, "command": command,
              "commit": source_commit(), "torch": torch.__version__}
    policies = compared_policies(teacher, code)
    unknown = set(names or ()) - set(policies)
    if unknown:
        raise ValueError(f"policies must be among {sorted(policies)}, got {sorted(unknown)}")
    for name, (options, factory) in policies.items():
        if names and name not in names:
            continue
        result["policies"][name] = {"env_kwargs": options,
                                    **lifetime_over_seeds(options, factory, list(range(seeds)), num_envs, steps, fit_from)}
        print(name, result["policies"][name]["mean"], result["policies"][name]["error"], flush=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    return result


def compare_main(argv: list[str]) -> None:
    """``python -m physrl.training.qec_results compare OUT [--teacher PT] [--seeds K] ...``"""
    parser = argparse.ArgumentParser(prog="python -m physrl.training.qec_results compare",
                                     description="T_eff/T_dec of the teacher and the repetition code over disjoint seeds")
    parser.add_argument("out", help="the .json to write")
    parser.add_argument("--teacher", default="results/qec/teacher.pt")
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0 ... K-1, each a disjoint block of episodes")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=None, help="episode length (default the env's 200)")
    parser.add_argument("--fit-from", type=int, default=1)
    parser.add_argument("--code", default="bitflip", help="the scenario's hand-written code, a key of "
                                                          "HAND_WRITTEN_CODES (default bitflip)")
    parser.add_argument("--policies", nargs="+", help="only these (default: teacher_greedy and the code's: "
                                                       "repetition_code, repetition_schedule for bitflip, else "
                                                       "hand_written)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python -m physrl.training.qec_results compare " + " ".join(argv)
    compare_lifetimes(args.out, args.teacher, args.seeds, args.num_envs, args.steps, args.fit_from, command,
                      args.policies, args.code)


def main() -> None:
    if sys.argv[1:2] == ["compare"]:
        compare_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("path", help="the .pt to write (the .json goes beside it)")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(export_result(args.run_dir, args.path, args.command, args.num_envs, args.seed)["t_eff_over_t_dec"]))


if __name__ == "__main__":
    main()

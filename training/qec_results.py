"""Ship a trained QEC policy as a small checkpoint and a JSON of its lifetime (results/qec/NAME.{pt,json}).

The checkpoint keeps only the policy (:func:`~physrl.training.checkpoint.export_policy`), so that
``load_policy("results/qec/teacher.pt", deterministic=True)`` rebuilds it; the JSON holds the run's
``env_kwargs`` (obs_mode, action_memory and the device), T_eff/T_dec of the greedy and the sampled
policy with their errors (:func:`physrl.agents.reference.qec.effective_lifetime`, Fösel et al., PRX 8, 031084 (2018)),
``seed``, ``env_steps``, ``command`` and ``commit``::

    python -m physrl.training.qec_results RUN_DIR results/qec/teacher.pt \\
        --command "physrl train --config training/configs/qec_teacher_memory.yaml"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from physrl.agents.reference.qec import effective_lifetime
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
    path.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
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

"""``make gpu-check``: verify a CUDA machine end to end, or say there is none and exit 0.

On a CUDA device it runs, in order: the CUDA tests (``pytest -m cuda``: every env's vector face on
CUDA against single envs, training on CUDA), ``physrl bench envs --device cuda`` for every env at
1k to 1M sub-envs, and ``physrl bench train --device cuda`` (deep-pg against sb3-ppo, 64 envs of the maze challenge, as on
the CPU); it writes the
figures as a Markdown table (default ``gpu-check.md``) for the performance page
(docs/results/performance.md), headed by the GPU's name. Exit status 1 when the tests fail.

    python -m physrl.training.bench.gpu_check [--out gpu-check.md] [--seconds 1] [--total-steps 200000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

#: sub-envs per env in the CUDA throughput table
GPU_SIZES = [1_000, 10_000, 100_000, 1_000_000]
ROOT = Path(__file__).resolve().parents[1]


def markdown_table(gpu: str, env_records: list[dict[str, Any]], train_records: list[dict[str, Any]],
                   tests: str) -> str:
    """The gpu-check report: the tests' summary line, env-steps/s of each env at each size, training runs."""
    lines = [f"## GPU check on {gpu}", "", f"CUDA tests (`pytest -m cuda`): {tests}", "",
             "| env | num_envs | env-steps/s | bytes/env |", "|-|-:|-:|-:|"]
    for record in env_records:
        if "impl" not in record:
            continue
        rate = "skipped: " + record["skipped"] if record.get("skipped") else f"{record['steps_per_s']:,.0f}"
        memory = "" if record.get("bytes_per_env") is None else f"{record['bytes_per_env']:,.0f}"
        lines.append(f"| {record['env']} | {record['num_envs']:,} | {rate} | {memory} |")
    lines += ["", "| env | agent | num_envs | env steps | env-steps/s | mean return |", "|-|-|-:|-:|-:|-:|"]
    for record in train_records:
        if "agent" in record:
            lines.append(f"| {record['env']} | {record['agent']} | {record['num_envs']} | {record['env_steps']:,} | "
                         f"{record['steps_per_s']:,.0f} | {record['mean_return']:.4g} ± {record['stderr']:.2g} |")
        elif "ratio" in record:
            lines.append(f"| {record['env']} | {record['ratio']} | | | {record['value']:.3g}x | |")
    return "\n".join(lines) + "\n"


def run_cuda_tests() -> tuple[int, str]:
    """``pytest -m cuda`` in a subprocess: (exit status, its summary line)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, capture_output=True, text=True)
    print(result.stdout[-3000:], result.stderr[-3000:], sep="", flush=True)
    summary = next((line for line in reversed(result.stdout.splitlines()) if line.strip()), "no output")
    return result.returncode, summary.strip("= ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m physrl.training.bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.md"), help="Markdown report (default gpu-check.md)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per throughput measurement")
    parser.add_argument("--total-steps", type=int, default=200_000, help="env steps of each training run")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu-check: skipped, no CUDA device here (torch.cuda.is_available() is False)")
        return 0
    from physrl.envs import ENVIRONMENTS
    from physrl.training.bench.throughput import bench_train, measurements

    gpu = torch.cuda.get_device_name(0)
    print(f"gpu-check on {gpu}", flush=True)
    status, tests = run_cuda_tests()
    device = torch.device("cuda")
    env_records = []
    for record in measurements(list(ENVIRONMENTS), GPU_SIZES, [device], ["vector"], args.seconds):
        print(record, flush=True)
        env_records.append(record)
    train_records = []
    for record in bench_train("physrl/TreasureMazeChallenge-v0", 64, args.total_steps, "cuda", 0, 500):
        print(record, flush=True)
        train_records.append(record)
    args.out.write_text(markdown_table(gpu, env_records, train_records, tests))
    print(f"gpu-check: wrote {args.out}; CUDA tests: {tests}")
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())

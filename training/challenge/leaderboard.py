"""The challenge's leaderboard: the result files of a folder ranked by score, as a markdown table
(``physrl challenge leaderboard``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from physrl.training.challenge.scorer import EVAL_SET_HASH, RESULT_FORMAT


def read_results(folder: Path) -> list[dict[str, Any]]:
    """The challenge results (``*.json``) of ``folder`` for the current evaluation set, best score first."""
    if not folder.is_dir():
        raise ValueError(f"DIR must be a folder of challenge result JSONs, got {str(folder)!r}")
    results = []
    for path in sorted(folder.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(result, dict) or result.get("format") != RESULT_FORMAT:
            print(f"warning: skipping {path}: not a {RESULT_FORMAT} file", file=sys.stderr)
        elif result.get("evaluation_set") != EVAL_SET_HASH:
            print(f"warning: skipping {path}: scored on another evaluation set", file=sys.stderr)
        else:
            results.append(result)
    return sorted(results, key=lambda r: -r["score"])


def leaderboard_markdown(results: list[dict[str, Any]]) -> str:
    """A markdown table of ``results`` in the given order."""
    lines = ["| # | name | agent | score | mean return | env steps | command |",
             "|---|------|-------|-------|-------------|-----------|---------|"]
    for rank, r in enumerate(results, 1):
        steps = "–" if r["env_steps"] is None else f"{r['env_steps']:,}"
        command = f"`{r['command']}`" if r.get("command") else ""
        if r.get("training_command"):
            command = f"`{r['training_command']}` then {command}"
        lines.append(f"| {rank} | {r['name']} | {r['agent']} | {r['score']:.3f} ± {r['score_stderr']:.3f} | "
                     f"{r['mean_return']:.2f} ± {r['stderr']:.2f} | {steps} | {command} |")
    return "\n".join(lines) + "\n"

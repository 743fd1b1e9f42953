"""``physrl challenge``: ``evaluate`` scores a submission and writes its result files, ``leaderboard``
prints a folder of them ranked by score."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from physrl.training.challenge.leaderboard import leaderboard_markdown, read_results
from physrl.training.challenge.scorer import (BUILTINS, CHALLENGE_ENV, EVAL_SIZE, Submission, builtin_submission,
                                              checkpoint_submission, python_submission, score_submission,
                                              write_result)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (f"The maze return challenge on {CHALLENGE_ENV}: a submission plays {EVAL_SIZE} "
                          "held-out mazes; its score is its mean return over the mean exact optimum.")
    commands = parser.add_subparsers(dest="challenge_command", required=True, metavar="ACTION")
    evaluate_parser = commands.add_parser(
        "evaluate", help="score a submission and write NAME.json and NAME.returns.csv",
        description="Score a submission: a checkpoint.pt of `physrl train`, builtin:NAME "
                    f"({', '.join(BUILTINS)}), or a Python callable given with --policy.")
    evaluate_parser.add_argument("submission", nargs="?", metavar="SUBMISSION",
                                 help="checkpoint.pt (or its run folder) or builtin:NAME")
    evaluate_parser.add_argument("--policy", metavar="MODULE:FUNCTION",
                                 help="score a Python callable instead (runs its code!): it maps observations "
                                      "(float tensor (B, 3, 15, 15)) to actions (B,) in 0..4")
    evaluate_parser.add_argument("--name", help="name on the leaderboard (default: derived from the submission)")
    evaluate_parser.add_argument("--device", default="cpu", help="torch device to play on (default: cpu)")
    evaluate_parser.add_argument("--out", default="challenge_results", type=Path,
                                 help="folder for the result JSON and CSV (default: challenge_results)")
    leaderboard_parser = commands.add_parser(
        "leaderboard", help="print the result JSONs of a folder as a markdown table sorted by score")
    leaderboard_parser.add_argument("folder", nargs="?", default="leaderboard", type=Path, metavar="DIR",
                                    help="folder of result JSONs (default: leaderboard)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.challenge_command == "leaderboard":
            print(leaderboard_markdown(read_results(args.folder)), end="")
            return 0
        submission = load_submission(args.submission, args.policy, args.device)
        if args.name:
            submission.name = args.name
        result, returns, optima = score_submission(submission, args.device, progress=True)
    except (ValueError, RuntimeError) as error:
        print(f"physrl challenge: error: {error}", file=sys.stderr)
        return 2
    result["command"] = evaluate_command(args)
    path = write_result(result, returns, optima, args.out)
    print(f"{result['name']}: mean return {result['mean_return']:.3f} ± {result['stderr']:.3f} "
          f"(exact optimum {result['mean_optimum']:.3f}) -> score {result['score']:.4f} ± {result['score_stderr']:.4f}")
    print(f"wrote {path} and the per-maze returns next to it")
    return 0


def load_submission(submission: str | None, policy: str | None, device: str) -> Submission:
    """The submission named on the command line (exactly one of SUBMISSION and --policy)."""
    if (submission is None) == (policy is None):
        raise ValueError("give exactly one of SUBMISSION (a checkpoint or builtin:NAME) and --policy MODULE:FUNCTION")
    if policy is not None:
        return python_submission(policy)
    if submission.startswith("builtin:"):
        return builtin_submission(submission.removeprefix("builtin:"))
    return checkpoint_submission(submission, device)


def evaluate_command(args: argparse.Namespace) -> str:
    """The command line that reproduces an evaluation (without --out)."""
    parts = ["physrl challenge evaluate"]
    parts += [args.submission] if args.submission else ["--policy", args.policy]
    if args.name:
        parts += ["--name", repr(args.name) if " " in args.name else args.name]
    if args.device != "cpu":
        parts += ["--device", args.device]
    return " ".join(parts)

"""The ``physrl`` command line: ``physrl train | evaluate | bench | challenge`` (see ``physrl --help``)."""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module under physrl.training that defines add_arguments(parser) and run(args), help)
COMMANDS = {
    "train": ("train", "train an agent on a registered env, with TensorBoard logs and checkpoints"),
    "evaluate": ("evaluate", "evaluate a checkpoint: mean return ± standard error"),
    "bench": ("bench.throughput", "measure env-steps per second of the vector faces against the alternatives"),
    "challenge": ("challenge.command", "score and rank submissions to the maze return challenge"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physrl",
        description="Reinforcement learning on physics environments. Start with\n"
                    "  physrl train --env physrl/TreasureMazeChallenge-v0 --agent deep-pg\n"
                    "and open the printed run folder with `tensorboard --logdir runs`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        # "resolve": a subcommand may define its own -h/--help (train's lists an agent's hyperparameters)
        sub = commands.add_parser(name, help=help_text, description=help_text, conflict_handler="resolve")
        sub.set_defaults(module=module)
        importlib.import_module(f"physrl.training.{module}").add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return importlib.import_module(f"physrl.training.{args.module}").run(args) or 0


if __name__ == "__main__":
    sys.exit(main())

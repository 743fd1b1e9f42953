"""physrl training: command line, training loops, logging, checkpoints, benchmarks.

>>> from physrl.training import train, load_policy
>>> run_dir = train("physrl/TreasureMaze-v0", "deep-pg", total_steps=50_000)
>>> policy = load_policy(run_dir / "checkpoint.pt")   # batch of observations -> batch of actions
"""

from physrl.training.checkpoint import load_policy
from physrl.training.config import RunConfig
from physrl.training.train import train

__all__ = ["RunConfig", "load_policy", "train"]

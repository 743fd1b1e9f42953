"""The linear schedule every agent uses for a hyperparameter that moves with the env steps done
(ε of ε-greedy, the learning rate, the entropy coefficient, the log-std ceiling)."""

from __future__ import annotations


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then ``end``."""
    return end + (start - end) * max(0.0, 1.0 - step / duration)

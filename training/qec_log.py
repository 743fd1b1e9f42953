"""``charts/t_eff_over_t_dec`` during ``physrl train`` on the qubit memory: a running lifetime estimate.

Each time the run logs its greedy episode picture (``--picture-every``; the qubit core adds that
episode's final R_Q as ``charts/recoverable_information``), the greedy policy also plays
``num_envs`` episodes with seeds 0 … num_envs − 1 (the first episodes of the shipped estimates) and
the run logs their T_eff/T_dec by :func:`physrl.agents.reference.qec.effective_lifetime`, the estimator of the
results page (Fösel et al., PRX 8, 031084 (2018)). Greedy actions draw no random numbers, so the
training run is the same with or without it.
"""

from __future__ import annotations

import math
from typing import Any

from physrl.agents.student import QECStudent
from physrl.agents.reference.qec import effective_lifetime
from physrl.envs.qec import QubitErrorCorrectionVectorEnv


class QecLifetimeLog:
    """The greedy T_eff/T_dec of one learner on the run's qubit-memory env options."""

    def __init__(self, config: dict[str, Any], learner: Any, num_envs: int = 256) -> None:
        self.env_kwargs, self.learner, self.num_envs = dict(config["env_kwargs"]), learner, num_envs

    @classmethod
    def applies(cls, envs: Any, learner: Any) -> bool:
        """True for a feed-forward learner of ours on the qubit memory (a recurrent one, such as the
        student, keeps its memory across ``act`` calls and would need a fresh state per episode)."""
        return isinstance(envs, QubitErrorCorrectionVectorEnv) and not isinstance(learner, QECStudent)

    def stats(self) -> dict[str, float]:
        """``{"charts/t_eff_over_t_dec": ...}`` of the greedy policy (empty where R_Q did not decay)."""
        def greedy(obs):
            return self.learner.act(obs).cpu()
        ratio, _ = effective_lifetime(self.env_kwargs, lambda envs: greedy, num_envs=self.num_envs)
        return {"charts/t_eff_over_t_dec": ratio} if math.isfinite(ratio) else {}

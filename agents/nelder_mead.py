"""Nelder–Mead on the exact fidelity of an oscillator control sequence (the baseline of Sivak et al.).

Sivak et al., PRX 12, 011059 (2022), compare their model-free PPO agent with a Nelder–Mead search
that is given the exact fidelity of the T-step SNAP + displacement sequence, and report F = 0.821
for |5⟩. :func:`nelder_mead_fidelity` does the same on ``physrl/OscillatorStatePrep-v0``'s own
simulation (the same kernels), with scipy's bounded Nelder–Mead and random restarts in the box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from physrl.envs.validation import check_int
from physrl.envs.oscillator import OscillatorCore


def sequence_fidelity(core: OscillatorCore, actions: np.ndarray) -> float:
    """Exact fidelity of the T actions (T, action size) applied to the initial state by ``core``."""
    with torch.no_grad():
        return float(core.fidelity(core.prepare(torch.as_tensor(actions, dtype=torch.float64)[None]))[0])


def nelder_mead_fidelity(target_n: int, restarts: int = 10, seed: int = 0, max_evaluations: int = 20000,
                         shots_per_evaluation: int | None = None, **env_options: Any) -> tuple[float, np.ndarray]:
    """Best exact fidelity for the Fock state |target_n⟩ over ``restarts`` Nelder–Mead runs.

    Each run starts from uniform random actions in the box [−1, 1] and may use ``max_evaluations``
    fidelity evaluations. ``env_options`` are OscillatorStatePrep options (``n_levels``, ``max_steps``,
    ``snap_phases``, ``alpha_max``, ``control``). Returns (best fidelity, its actions (T, action size)).

    ``shots_per_evaluation`` (default None: the exact F, which no experiment measures) makes each
    evaluation what an experiment gets from that many single-shot "is it |n⟩?" measurements: the
    fraction of successes, drawn as Binomial(shots, F) / shots (the env's ``"fock"`` reward is a
    Bernoulli(F) shot). The search then uses ``restarts × max_evaluations × shots_per_evaluation`` shots;
    the returned fidelity is always the exact F of each run's final point (the best over the runs).
    """
    restarts = check_int("restarts", restarts, 1)
    max_evaluations = check_int("max_evaluations", max_evaluations, 1)
    core = OscillatorCore(1, "cpu", target="fock", n=target_n, reward_mode="fidelity", **env_options)
    shape = (core.max_steps, core.single_action_space.shape[0])
    if shots_per_evaluation is not None:
        shots_per_evaluation = check_int("shots_per_evaluation", shots_per_evaluation, 1)
    rng = np.random.default_rng(check_int("seed", seed, 0))

    def infidelity(x: np.ndarray) -> float:
        fidelity = sequence_fidelity(core, x.reshape(shape))
        if shots_per_evaluation is not None:
            fidelity = rng.binomial(shots_per_evaluation, min(max(fidelity, 0.0), 1.0)) / shots_per_evaluation
        return 1.0 - fidelity

    best_fidelity, best_actions = -1.0, np.zeros(shape)
    for _ in range(restarts):
        start = rng.uniform(-1.0, 1.0, size=shape).ravel()
        result = minimize(infidelity, start, method="Nelder-Mead", bounds=[(-1.0, 1.0)] * start.size,
                          options={"maxfev": max_evaluations, "xatol": 1e-8, "fatol": 1e-12})
        fidelity = sequence_fidelity(core, result.x.reshape(shape))
        if fidelity > best_fidelity:
            best_fidelity, best_actions = fidelity, result.x.reshape(shape)
    return best_fidelity, best_actions

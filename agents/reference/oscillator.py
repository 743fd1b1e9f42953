"""Known answers of the oscillator's state preparation (:mod:`physrl.envs.oscillator`): the fidelity a
control sequence can reach, by gradient optimal control (:func:`optimal_fidelity`) and by Nelder–Mead
(:func:`nelder_mead_fidelity`). Neither is a learning agent: both are given the exact fidelity
F = |⟨target|ψ(a)⟩|² of the whole T-step sequence a (T × action size), computed by the environment's
own kernels (:meth:`physrl.envs.oscillator.OscillatorStatePrepVectorEnv.sequence_fidelity`; no second copy
of the physics).

**Gradient optimal control** follows F's gradient, by autograd, as in GRAPE-style optimal control
(Khaneja et al., J. Magn. Reson. 172, 296 (2005)) applied to SNAP + displacement sequences (Fösel,
Krastanov, Marquardt & Jiang, arXiv:2004.14256 (2020); Kudra et al., PRX Quantum 3, 030301 (2022)). Its
best F is the ceiling against which the single-shot RL agents and Nelder–Mead of Sivak et al., PRX 12,
011059 (2022) are read. The actions stay in the env's box: displacement components are a = tanh(x), and
every angle (SNAP phases θ = πa, the ECD qubit rotation θ = πa₂, φ = πa₃) is periodic, so a = x wrapped
into [−1, 1). Many random starts are optimised at once with Adam (one batch), then the best few are
polished one at a time with L-BFGS.

**Nelder–Mead** is the baseline of Sivak et al., who compare their model-free PPO agent with a
Nelder–Mead search given the exact fidelity of the sequence and report F = 0.821 for |5⟩; here with
scipy's bounded Nelder–Mead and random restarts in the box.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.optimize import minimize

from physrl.envs.oscillator import OscillatorStatePrepVectorEnv
from physrl.envs.validation import check_int


class ControlResult(NamedTuple):
    """The best sequence found: its exact ``fidelity`` and ``actions`` (T, action size) float32 in [−1, 1]."""

    fidelity: float
    actions: np.ndarray


def actions_from_parameters(x: torch.Tensor) -> torch.Tensor:
    """Unconstrained parameters (..., A) -> actions in [−1, 1]: tanh for the displacement (the first
    two components), wrapping for the periodic angles (the rest)."""
    return torch.cat([torch.tanh(x[..., :2]), torch.remainder(x[..., 2:] + 1, 2) - 1], dim=-1)


def fidelity_envs(target_n: int, **env_options: Any) -> OscillatorStatePrepVectorEnv:
    """The env whose exact fidelity is optimised: |target_n⟩ with ``env_options``, on the CPU."""
    return OscillatorStatePrepVectorEnv(num_envs=1, target="fock", n=target_n, reward_mode="fidelity", **env_options)


def sequence_infidelity(envs: OscillatorStatePrepVectorEnv, actions: torch.Tensor) -> torch.Tensor:
    """1 − F of each action sequence (B, T, A), differentiable (F exact, in complex128)."""
    return 1 - envs.sequence_fidelity(actions)


def optimal_fidelity(target_n: int, restarts: int = 32, iterations: int = 1500, polish: int = 4, seed: int = 0,
                     learning_rate: float = 0.05, polish_iterations: int = 500, **env_options: Any) -> ControlResult:
    """Best exact fidelity for the Fock state |target_n⟩ by gradient ascent through the env's kernels.

    ``restarts`` uniformly random sequences in the box are optimised together by Adam for
    ``iterations`` steps (learning rate decaying exponentially from ``learning_rate`` to 1/100 of it),
    then the ``polish`` best are refined by L-BFGS (up to ``polish_iterations`` iterations each). ``env_options`` are OscillatorStatePrep options
    (``control``, ``n_levels``, ``max_steps``, ``snap_phases``, ``alpha_max``). The returned fidelity is
    that of the returned float32 actions, as the env replays them.
    """
    restarts = check_int("restarts", restarts, 1)
    iterations = check_int("iterations", iterations, 0)
    polish = check_int("polish", polish, 0, restarts)
    polish_iterations = check_int("polish_iterations", polish_iterations, 1)
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
    envs = fidelity_envs(target_n, **env_options)
    shape = (envs.max_steps, envs.single_action_space.shape[0])
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    start = 2 * torch.rand(restarts, *shape, generator=generator, dtype=torch.float64) - 1
    x = torch.cat([torch.atanh(0.9 * start[..., :2]), start[..., 2:]], dim=-1).requires_grad_()
    optimizer = torch.optim.Adam([x], lr=learning_rate)
    decay = 0.01 ** (1 / max(iterations, 1))
    for _ in range(iterations):
        optimizer.zero_grad()
        sequence_infidelity(envs, actions_from_parameters(x)).sum().backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] *= decay
    with torch.no_grad():
        order = sequence_infidelity(envs, actions_from_parameters(x)).argsort()
    candidates = [x[i].detach().clone() for i in order[:max(polish, 1)]]
    for i in range(polish):
        candidates[i] = lbfgs_polish(envs, candidates[i], polish_iterations)
    results = [score_actions(envs, actions_from_parameters(c)) for c in candidates]
    return max(results, key=lambda result: result.fidelity)


def lbfgs_polish(envs: OscillatorStatePrepVectorEnv, x: torch.Tensor, max_iterations: int = 500) -> torch.Tensor:
    """Refine one parameter set (T, A) by L-BFGS with a strong-Wolfe line search on 1 − F."""
    x = x.clone().requires_grad_()
    optimizer = torch.optim.LBFGS([x], lr=1, max_iter=max_iterations, tolerance_grad=1e-14,
                                  tolerance_change=1e-16, history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = sequence_infidelity(envs, actions_from_parameters(x[None]))[0]
        loss.backward()
        return loss

    optimizer.step(closure)
    return x.detach()


def score_actions(envs: OscillatorStatePrepVectorEnv, actions: torch.Tensor) -> ControlResult:
    """The result for actions (T, A): rounded to float32 as the env's action space holds them, then scored."""
    rounded = actions.detach().to(torch.float32).clamp(-1, 1)
    with torch.no_grad():
        fidelity = 1 - float(sequence_infidelity(envs, rounded[None].to(torch.float64))[0])
    return ControlResult(fidelity, rounded.numpy())


def sequence_fidelity(envs: OscillatorStatePrepVectorEnv, actions: np.ndarray) -> float:
    """Exact fidelity of the T actions (T, action size) applied to the initial state by ``envs``."""
    with torch.no_grad():
        return float(envs.sequence_fidelity(torch.as_tensor(actions, dtype=torch.float64)[None])[0])


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
    envs = fidelity_envs(target_n, **env_options)
    shape = (envs.max_steps, envs.single_action_space.shape[0])
    if shots_per_evaluation is not None:
        shots_per_evaluation = check_int("shots_per_evaluation", shots_per_evaluation, 1)
    rng = np.random.default_rng(check_int("seed", seed, 0))

    def infidelity(x: np.ndarray) -> float:
        fidelity = sequence_fidelity(envs, x.reshape(shape))
        if shots_per_evaluation is not None:
            fidelity = rng.binomial(shots_per_evaluation, min(max(fidelity, 0.0), 1.0)) / shots_per_evaluation
        return 1.0 - fidelity

    best_fidelity, best_actions = -1.0, np.zeros(shape)
    for _ in range(restarts):
        start = rng.uniform(-1.0, 1.0, size=shape).ravel()
        result = minimize(infidelity, start, method="Nelder-Mead", bounds=[(-1.0, 1.0)] * start.size,
                          options={"maxfev": max_evaluations, "xatol": 1e-8, "fatol": 1e-12})
        fidelity = sequence_fidelity(envs, result.x.reshape(shape))
        if fidelity > best_fidelity:
            best_fidelity, best_actions = fidelity, result.x.reshape(shape)
    return best_fidelity, best_actions

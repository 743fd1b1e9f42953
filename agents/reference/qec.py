"""Known answers of the quantum memory (:mod:`physrl.envs.qec`; Fösel et al., PRX 8, 031084 (2018)): the
reference policies (:func:`idle_policy`, :class:`RepetitionCodePolicy`, the hand-written schedules
:data:`HAND_WRITTEN_CODES` played by :class:`ScheduledPolicy`) and the figure of merit
:func:`effective_lifetime` that scores them and the learned teachers and students.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from physrl.envs.qec import QubitErrorCorrectionVectorEnv


def idle_policy(envs: QubitErrorCorrectionVectorEnv) -> Callable[[torch.Tensor], torch.Tensor]:
    """The unprotected memory: always ``idle``."""
    index = envs.action_index("idle")
    return lambda obs: torch.full((obs.shape[0],), index, dtype=torch.int64, device=obs.device)


class RepetitionCodePolicy:
    """The hand-written 3-qubit bit-flip repetition code with qubit 3 as the syndrome ancilla.

    Encode: cnot(0,1), cnot(0,2). Then repeat: cnot(0,3), cnot(1,3), measure(3) (parity of qubits
    0,1); cnot(1,3), cnot(2,3), measure(3) (parity of 1,2); X on the qubit the two parities point to
    (one extra step, skipped when both parities are even).
    The ancilla is never reset: its value is the last outcome, tracked in software, so a parity is
    the new outcome XOR the previous one. Neither that nor the X corrections change R_Q (a unitary
    known from the record leaves every ‖Σᵢ nᵢ δρᵢ‖₁ as it is): only the measurement schedule, one
    parity every three steps, sets the lifetime; a correction step only costs one step of noise. Works on a batch of ``"measurements"`` observations
    (a new episode is recognised by its all-zero last-action one-hot).
    """

    CYCLE = ("cnot(0,3)", "cnot(1,3)", "measure(3)", "cnot(1,3)", "cnot(2,3)", "measure(3)")

    def __init__(self, envs: QubitErrorCorrectionVectorEnv) -> None:
        if envs.options["obs_mode"] != "measurements" or envs.options["n_qubits"] < 4:
            raise ValueError("the repetition code needs obs_mode='measurements' and n_qubits >= 4")
        self.n_actions = envs.single_action_space.n
        self.encode = torch.tensor([envs.action_index(a) for a in ("cnot(0,1)", "cnot(0,2)")], device=envs.device)
        self.cycle = torch.tensor([envs.action_index(a) for a in self.CYCLE], device=envs.device)
        self.flips = torch.tensor([envs.action_index(a) for a in ("idle", "x(2)", "x(0)", "x(1)")], device=envs.device)  # by syndrome
        self.phase = torch.zeros(envs.num_envs, dtype=torch.int64, device=envs.device)
        self.ancilla = torch.zeros_like(self.phase)
        self.first = torch.zeros_like(self.phase)
        self.parity = torch.zeros_like(self.phase)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        new = obs[:, :self.n_actions].sum(1) == 0
        self.phase[new], self.ancilla[new] = 0, 0
        outcome = (obs[:, self.n_actions + 3] < 0).to(torch.int64)  # last outcome of the ancilla
        # phase p is the action about to be taken: 0,1 encode; 2..7 the cycle; 8 the correction
        after_measure = (self.phase == 5) | (self.phase == 8)
        self.parity = torch.where(after_measure, outcome ^ self.ancilla, self.parity)
        self.first = torch.where(self.phase == 5, self.parity, self.first)
        self.ancilla = torch.where(after_measure, outcome, self.ancilla)
        syndrome = self.first * 2 + self.parity  # 0 none, 1 qubit 2, 2 qubit 0, 3 qubit 1
        quiet = (self.phase == 8) & (syndrome == 0)  # nothing to correct: start the next cycle at once
        self.phase = torch.where(quiet, torch.full_like(self.phase, 2), self.phase)
        cycle = self.cycle[(self.phase - 2).clamp(0, 5)]
        actions = torch.where(self.phase < 2, self.encode[self.phase.clamp(max=1)], cycle)
        actions = torch.where(self.phase == 8, self.flips[syndrome], actions)
        self.phase = torch.where(self.phase == 8, torch.full_like(self.phase, 2), self.phase + 1)
        return actions


class ScheduledPolicy:
    """An open-loop circuit: the actions ``prefix`` (encoding), then ``cycle`` repeated, by name, one per
    step of the episode (read from the env's step counter, so it works on any ``obs_mode``).

    Corrections are not needed for R_Q: a unitary fixed by the measurement record leaves every
    ‖Σᵢ nᵢ δρᵢ‖₁ unchanged, so the measurement schedule alone sets the lifetime (the decoder is classical
    post-processing). The scenarios' hand-written codes (:data:`HAND_WRITTEN_CODES`) are such schedules.
    """

    def __init__(self, envs: QubitErrorCorrectionVectorEnv, prefix: tuple[str, ...], cycle: tuple[str, ...]) -> None:
        if not cycle:
            raise ValueError("cycle must name at least one action")
        self.envs = envs
        self.prefix = torch.tensor([envs.action_index(a) for a in prefix], dtype=torch.int64, device=envs.device)
        self.cycle = torch.tensor([envs.action_index(a) for a in cycle], dtype=torch.int64, device=envs.device)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        t = self.envs.elapsed
        in_cycle = self.cycle[(t - len(self.prefix)).clamp(min=0) % len(self.cycle)]
        if len(self.prefix) == 0:
            return in_cycle
        return torch.where(t < len(self.prefix), self.prefix[t.clamp(max=len(self.prefix) - 1)], in_cycle)


#: The best hand-written schedule we have for each scenario of the results page: env options, encoding, cycle.
HAND_WRITTEN_CODES: dict[str, tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]] = {
    # bit flips: the 3-qubit repetition code, parities 0⊕1 and 1⊕2 alternately onto ancilla 3
    "bitflip": ({}, ("cnot(0,1)", "cnot(0,2)"),
                ("cnot(0,3)", "cnot(1,3)", "measure(3)", "cnot(1,3)", "cnot(2,3)", "measure(3)")),
    # the same on the reduced device: couplings [0,1],[0,2],[0,3],[1,3],[2,3], only qubit 3 measurable
    "reduced": ({"connectivity": [[0, 1], [0, 2], [0, 3], [1, 3], [2, 3]], "measurable": [3]},
                ("cnot(0,1)", "cnot(0,2)"),
                ("cnot(0,3)", "cnot(1,3)", "measure(3)", "cnot(1,3)", "cnot(2,3)", "measure(3)")),
    # collective dephasing: a|01⟩ + b|10⟩ is decoherence-free (equal numbers of 1s), then nothing to do
    "correlated": ({"noise": "correlated"}, ("x(1)", "cnot(0,1)"), ("idle",)),
    # independent dephasing: the phase-flip code, the repetition code in the Hadamard frame; the
    # X-parities X₀X₁ and X₁X₂ are measured through ancilla 3 in |±⟩ (phase kickback of cnot(3, q))
    "dephasing": ({"noise": "dephasing", "hadamard": True},
                  ("cnot(0,1)", "cnot(0,2)", "h(0)", "h(1)", "h(2)"),
                  ("h(3)", "cnot(3,0)", "cnot(3,1)", "h(3)", "measure(3)",
                   "h(3)", "cnot(3,1)", "cnot(3,2)", "h(3)", "measure(3)")),
}


def effective_lifetime(env_options: dict[str, Any], policy_factory: Callable[[QubitErrorCorrectionVectorEnv], Callable],
                       num_envs: int = 4096, steps: int | None = None, seed: int = 0,
                       groups: int = 16, fit_from: int = 1) -> tuple[float, float]:
    """T_eff / T_dec of a policy, with its standard error, from one batch of rollouts (Fösel et al. 2018).

    Runs ``num_envs`` episodes of ``steps`` steps (default ``max_steps``) from reset and fits the
    decay rate of E[R_Q(t)] = A e^(−2t/T_eff): a least-squares line y(t) = c + 2t/T_eff through
    y(t) = −ln mean R_Q(t), t = ``fit_from`` … steps. The intercept c absorbs the one-off loss of
    encoding: qubit 0 is alone during the first step and two-fold during the second, so every code
    starts with c ≈ 4Δt/T_dec, which a fit through the origin would charge to the rate (over 200
    steps it turns the repetition code's 26.9 into 18.7). Idle has c = 0 exactly and T_eff/T_dec = 1.
    A code's decay rate also settles only after a transient (the repetition code: 26.9 ± 2.9 over
    200 steps from t = 1, 24.7 ± 0.2 over 800 steps from ``fit_from=200``).
    A terminated episode counts as R_Q = 0 from then on. The error is the spread of the same
    estimate over ``groups`` disjoint groups of episodes, divided by √groups. Episode k of ``seed``
    s has seed s·``num_envs`` + k, so different ``seed`` values give independent repeats.
    """
    options = dict(env_options)
    if steps is not None:
        options["max_steps"] = steps
    envs = QubitErrorCorrectionVectorEnv(num_envs=num_envs, **options)
    policy = policy_factory(envs)
    horizon = envs.max_steps
    if not 1 <= fit_from < horizon:
        raise ValueError(f"fit_from must be in [1, {horizon - 1}] (the steps of the episodes), got {fit_from}")
    obs, _ = envs.reset(seed=seed * num_envs)
    alive = torch.ones(num_envs, dtype=torch.bool)
    trace = torch.zeros(horizon, num_envs, dtype=torch.float64)
    for t in range(horizon):
        obs, _, terminated, _, info = envs.step(policy(obs))
        if "recoverable_information" in info:  # absent on a step where every sub-env restarts
            trace[t] = torch.where(alive, info["recoverable_information"].cpu(), 0.0)
        alive &= ~terminated.cpu()
    trace = trace[fit_from - 1:]
    time = torch.arange(fit_from, horizon + 1, dtype=torch.float64)

    def ratio(block: torch.Tensor) -> float:
        y = -torch.log(block.mean(1).clamp_min(1e-300))
        centred = time - time.mean()
        slope = float((centred * (y - y.mean())).sum() / (centred * centred).sum())
        return 2.0 / slope / envs.options["t_dec"] if slope > 0 else math.inf

    estimate = ratio(trace)
    parts = [ratio(block) for block in trace.chunk(groups, dim=1)]
    error = float(np.std(parts, ddof=1) / math.sqrt(len(parts)))
    return estimate, error

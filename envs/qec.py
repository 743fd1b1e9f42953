"""A quantum memory protected by feedback: T. Fösel, P. Tighineanu, T. Weiss, F. Marquardt,
*Reinforcement Learning with Neural Networks for Quantum Feedback*, PRX 8, 031084 (2018).

:class:`QubitErrorCorrectionEnv` (``physrl/QubitErrorCorrection-v0``) documents the task. This module
also holds its batched core (dense and pair form); the reference policies and the figure of merit
(:func:`~physrl.agents.reference.qec.effective_lifetime`) are in :mod:`physrl.agents.reference.qec`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from physrl.envs.core import BatchCore, SingleEnv, VectorEnv
from physrl.envs.validation import check_bool, check_choice, check_float, check_int
from physrl.envs.kernels import qubit_pairs as P, qubits as K, recoverable_information as R

NOISES = ("bitflip", "dephasing", "bitflip+dephasing", "correlated")
CONNECTIVITIES = ("all", "chain")
OBS_MODES = ("measurements", "state", "pairs", "pauli")
#: R̂_Q at or below this counts as "the logical information is gone" (ε of :func:`step_reward`).
REVEALED = 1e-3
#: Most Newton iterations of the warm-started R_Q search after every step (dense matrices, ``hadamard=True``);
#: it stops as soon as every state has converged, and is bracketed by a grid (kernels' ``_minimise``).
WARM_ITERATIONS = 16
#: Newton iterations of the warm-started closed-form R_Q search in pair form (``hadamard=False``).
PAIR_ITERATIONS = 2
#: The longest horizon (each sub-env keeps the record of its episode, max_steps × 2 integers).
MAX_STEPS = 100_000


def step_reward(averaged: torch.Tensor, recoverable: torch.Tensor, measured: torch.Tensor, t_dec: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(reward, revealed) of a step from R̂_Q(t+1) ``averaged``, R_Q(t) ``recoverable`` and whether it
    measured (all (B,)): r = min(1, R̂/ε) + (R̂ − R) T_dec/2 (Eq. (6) of Fösel et al. for R̂ ≥ ε, continuous
    below), revealed = a measurement took R̂ to ε or below from R > ε (module docstring)."""
    reward = (averaged / REVEALED).clamp(max=1.0) + (averaged - recoverable) * (t_dec / 2.0)
    revealed = measured & (averaged <= REVEALED) & (recoverable > REVEALED)
    return reward, revealed


def initial_channel(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """ρ₀, δρx, δρy, δρz (4, d, d) at t = 0: (1, σx, σy, σz)/2 on qubit 0 ⊗ |0…0⟩⟨0…0| on the others."""
    d, one = 2**n, 2 ** (n - 1)
    out = torch.zeros(4, d, d, dtype=torch.complex128, device=device)
    out[0, 0, 0] = out[0, one, one] = 0.5
    out[1, 0, one] = out[1, one, 0] = 0.5
    out[2, 0, one], out[2, one, 0] = -0.5j, 0.5j
    out[3, 0, 0], out[3, one, one] = 0.5, -0.5
    return out


def cnot_pairs(n_qubits: int, connectivity: Any) -> tuple[tuple[int, int], ...]:
    """The (control, target) pairs that ``connectivity`` allows, in (control, target) order; a clear error otherwise."""
    message = (f"connectivity must be one of {list(CONNECTIVITIES)} or a list of distinct (control, target) "
               f"pairs of different qubits in [0, {n_qubits - 1}], got {connectivity!r}")
    if isinstance(connectivity, str):
        if connectivity not in CONNECTIVITIES:
            raise ValueError(message)
        return tuple((c, t) for c in range(n_qubits) for t in range(n_qubits)
                     if c != t and (connectivity == "all" or abs(c - t) == 1))
    try:
        pairs = [tuple(pair) for pair in connectivity]
    except TypeError:
        raise ValueError(message) from None
    valid = all(len(pair) == 2 and all(isinstance(q, (int, np.integer)) and not isinstance(q, bool)
                                      and 0 <= q < n_qubits for q in pair) and pair[0] != pair[1] for pair in pairs)
    if not pairs or not valid or len(set(pairs)) != len(pairs):
        raise ValueError(message)
    return tuple(sorted((int(c), int(t)) for c, t in pairs))


def action_table(n_qubits: int, connectivity: Any, hadamard: bool, measurable: tuple[int, ...]) -> list[tuple]:
    """The actions as (name, kind, qubits) in index order: idle, cnots, x, h, measure."""
    table: list[tuple] = [("idle", "idle", ())]
    table += [(f"cnot({c},{t})", "cnot", (c, t)) for c, t in cnot_pairs(n_qubits, connectivity)]
    table += [(f"x({q})", "x", (q,)) for q in range(n_qubits)]
    if hadamard:
        table += [(f"h({q})", "h", (q,)) for q in range(n_qubits)]
    table += [(f"measure({q})", "measure", (q,)) for q in measurable]
    return table


class QubitCore(BatchCore):
    """Batched channel matrices, R_Q and the measurement record of every sub-env.

    Without Hadamards every gate (X, CNOT) and every bit flip is an affine permutation a ↦ Ma ⊕ c of
    the basis over GF(2)ⁿ, dephasing rescales entries and a measurement masks them. The four
    matrices start supported on the 2×2 block {|0…0⟩, |10…0⟩}, so they stay block diagonal in the
    pairs {a, a⊕v} with one common v = M e₀ per sub-env (the logical X on the register's basis). The
    core then keeps only those 2ⁿ⁻¹ blocks (``pairs`` (B, 4, 4, 2ⁿ⁻¹), Pauli coordinates of each block,
    see :func:`~physrl.envs.kernels.qubit_pairs.to_pairs`) and ``shift`` v (B,), and R_Q has a closed-form
    trace norm. With ``hadamard=True`` it keeps the dense matrices ``dense`` (B, 4, d, d) complex128; under
    Pauli noise (every ``noise`` but ``"correlated"``) they are in pair form in a Clifford ``frame`` (B, d, d)
    (:func:`~physrl.envs.kernels.qubit_pairs.frame_pairs`), which R_Q reads with the same closed form.
    :attr:`rho` gives the dense matrices either way.
    """

    render_modes = ("ansi", "rgb_array")
    max_horizon = MAX_STEPS

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", n_qubits: int = 4,
                 noise: str = "bitflip", t_dec: float = 1200.0, connectivity: Any = "all", hadamard: bool = False,
                 measurable: tuple[int, ...] | list[int] | None = None, obs_mode: str = "measurements",
                 max_steps: int = 200, action_memory: int = 0) -> None:
        super().__init__(num_envs, device, max_steps)
        self.n_qubits = n = check_int("n_qubits", n_qubits, 2, 6)
        self.noise = check_choice("noise", noise, NOISES)
        self.t_dec = check_float("t_dec", t_dec, 0.0, low_open=True, unit="steps")
        self.cnot_pairs = cnot_pairs(n, connectivity)
        self.connectivity = connectivity if isinstance(connectivity, str) else [list(p) for p in self.cnot_pairs]
        self.hadamard = check_bool("hadamard", hadamard)
        if measurable is None:
            measurable = tuple(range(n))
        if isinstance(measurable, (str, bytes)) or not hasattr(measurable, "__iter__"):
            raise TypeError(f"measurable must be a list of distinct qubits in [0, {n - 1}], got {measurable!r}")
        measurable = tuple(check_int("measurable qubit", q, 0, n - 1) for q in measurable)
        if len(set(measurable)) != len(measurable):
            raise ValueError(f"measurable must list distinct qubits in [0, {n - 1}], got {measurable}")
        self.measurable = measurable
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        if obs_mode == "pairs" and self.hadamard:
            raise ValueError("obs_mode='pairs' needs hadamard=False (a Hadamard leaves the pair form); "
                             "use obs_mode='state'")
        self.action_memory = check_int("action_memory", action_memory, 0, 16)
        self.dim = d = 2**n
        table = action_table(n, self.connectivity, self.hadamard, measurable)
        self.action_names: tuple[str, ...] = tuple(name for name, _, _ in table)
        self.single_action_space = spaces.Discrete(len(table))
        size = {"measurements": len(table) + n, "state": 8 * d * d, "pairs": 16 * d + n, "pauli": 4 * d * d}[obs_mode]
        size += self.action_memory * len(table)
        self.single_observation_space = spaces.Box(-1.0, 1.0, (size,), np.float32)

        dev = self.device
        identity = torch.arange(d, device=dev)
        perms, h_qubit, m_qubit = [], [], []
        for _, kind, qubits in table:
            perms.append(K.cnot_permutation(n, *qubits, dev) if kind == "cnot"
                         else K.x_permutation(n, qubits[0], dev) if kind == "x" else identity)
            h_qubit.append(qubits[0] if kind == "h" else -1)
            m_qubit.append(qubits[0] if kind == "measure" else -1)
        self._perms = torch.stack(perms)
        self._is_perm = torch.tensor([kind in ("cnot", "x") for _, kind, _ in table], device=dev)
        self._h_qubit = torch.tensor(h_qubit, device=dev)
        self._m_qubit = torch.tensor(m_qubit, device=dev)
        bits = (torch.arange(d, device=dev)[None, :] >> torch.arange(n - 1, -1, -1, device=dev)[:, None]) & 1
        # the parts of a matrix that a Z_q measurement keeps: entries with a_q = b_q, Pauli strings with 1 or Z on q
        self._kept_entries = (bits[:, :, None] == bits[:, None, :]).flatten(1).to(torch.float64)  # (n, d²)
        self._kept_paulis = ((K.pauli_labels(n, dev) % 3) == 0).T.to(torch.float64)  # (n, 4ⁿ)
        decay = math.exp(-2.0 / self.t_dec)
        self._flip_probability = (1.0 - decay) / 2  # bit flip p = (1 − e^(−2Δt/T_dec))/2 per step
        if noise == "correlated":
            self._factor = K.collective_dephasing_factor(n, decay, dev)
        else:
            self._factor = K.dephasing_factor(n, decay, dev)
        self._initial = initial_channel(n, dev)
        self.pair_form = not self.hadamard
        if self.pair_form:
            self.initial_shift = 1 << (n - 1)
            self._initial_pairs = P.to_pairs(self._initial[None], torch.tensor([self.initial_shift], device=dev), n)[0]
            gates = [P.pair_permutation(n, tuple(p.tolist()), dev) for p in perms]
            flips = [P.pair_permutation(n, tuple(K.x_permutation(n, q).tolist()), dev) for q in range(n)]
            rep = P.pair_representatives(n, dev)
            # how each action (gate_*) and each qubit's bit flip (flip_*) moves the pairs, indexed by v
            self._gate_shift = torch.stack([g[0] for g in gates])
            self._gate_source = torch.stack([g[1] for g in gates])
            self._gate_sign = torch.stack([g[2] for g in gates])
            self._flip_source = torch.stack([f[1] for f in flips])
            self._flip_sign = torch.stack([f[2] for f in flips])
            self._pair_dephasing = self._factor[rep, rep ^ torch.arange(d, device=dev)[:, None]]
            self._slot, self._partner = P.pair_slots(n, dev)
            carried = (torch.arange(d, device=dev)[:, None] >> (n - 1 - self._m_qubit.clamp(min=0))[None, :]) & 1
            self._reveals = (self._m_qubit >= 0)[None, :] & (carried == 1)  # (d, n_actions), indexed by v
            self.pairs = self._initial_pairs.expand(self.num_envs, -1, -1, -1).clone()
            self.shift = torch.full((self.num_envs,), self.initial_shift, dtype=torch.int64, device=dev)
        else:
            self.dense = self._initial.expand(self.num_envs, -1, -1, -1).clone()
        self.framed = not self.pair_form and noise != "correlated"
        if self.framed:
            self.frame = torch.eye(d, dtype=torch.complex128, device=dev).expand(self.num_envs, -1, -1).clone()
        self.recoverable = torch.ones(self.num_envs, dtype=torch.float64, device=dev)
        self.direction = torch.zeros(self.num_envs, 3, dtype=torch.float64, device=dev)
        self.last_action = torch.full((self.num_envs,), -1, dtype=torch.int64, device=dev)
        self.last_outcome = torch.zeros(self.num_envs, n, dtype=torch.float32, device=dev)
        self.history = torch.full((self.num_envs, self.max_steps, 2), -1, dtype=torch.int64, device=dev)
        self.recent = torch.full((self.num_envs, self.action_memory), -1, dtype=torch.int64, device=dev)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The channel (``pairs`` and ``shift`` in pair form, else ``dense``, and its Clifford ``frame``), the
        last R_Q and its minimiser, the last action and outcomes, the episode's record and the recent actions."""
        channel = ("pairs", "shift") if self.pair_form else ("dense", "frame") if self.framed else ("dense",)
        return (*channel, "recoverable", "direction", "last_action", "last_outcome", "history", "recent")

    # ------------------------------------------------------------------ names
    def action_index(self, name: str) -> int:
        """Index of the action called ``name`` (e.g. ``"cnot(0,3)"``); a clear ValueError otherwise."""
        compact = re.sub(r"\s+", "", str(name)).lower()
        if compact in self.action_names:
            return self.action_names.index(compact)
        match = re.fullmatch(r"(cnot|x|h|measure)\((\d+)(?:,(\d+))?\)", compact)
        if match is None:
            raise ValueError(f"unknown action name {name!r}; the actions are {list(self.action_names)}")
        kind, qubits = match.group(1), [int(g) for g in match.groups()[1:] if g is not None]
        if any(q >= self.n_qubits for q in qubits):
            raise ValueError(f"action {name!r} names a qubit outside [0, {self.n_qubits - 1}] (n_qubits={self.n_qubits})")
        if kind == "cnot" and len(qubits) == 2 and qubits[0] != qubits[1]:
            coupled = ("only neighbouring qubits |c - t| = 1 are coupled" if self.connectivity == "chain"
                       else f"the coupled (control, target) pairs are {[list(p) for p in self.cnot_pairs]}")
            raise ValueError(f"action {name!r} is not allowed by connectivity={self.connectivity!r} ({coupled})")
        if kind == "h":
            raise ValueError(f"action {name!r} needs hadamard=True")
        if kind == "measure":
            raise ValueError(f"action {name!r} is not available: measurable={list(self.measurable)}")
        raise ValueError(f"unknown action name {name!r}; the actions are {list(self.action_names)}")

    # ------------------------------------------------------------------ physics
    @property
    def rho(self) -> torch.Tensor:
        """ρ₀, δρx, δρy, δρz of every sub-env (B, 4, d, d) complex128 (rebuilt from the pair form if any)."""
        return P.from_pairs(self.pairs, self.shift, self.n_qubits) if self.pair_form else self.dense

    def reset_envs(self, index: torch.Tensor) -> None:
        if self.pair_form:
            self.pairs[index] = self._initial_pairs
            self.shift[index] = self.initial_shift
        else:
            self.dense[index] = self._initial
        if self.framed:
            self.frame[index] = torch.eye(self.dim, dtype=torch.complex128, device=self.device)
        self.recoverable[index] = 1.0
        self.direction[index] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=self.device)
        self.last_action[index] = -1
        self.last_outcome[index] = 0.0
        self.history[index] = -1
        self.recent[index] = -1

    def apply_noise(self, rho: torch.Tensor) -> torch.Tensor:
        """The noise of one time step on every qubit of dense matrices (module docstring of the kernels)."""
        if self.noise in ("bitflip", "bitflip+dephasing"):
            rho = K.bit_flip(rho, self._flip_probability, self.n_qubits)
        if self.noise != "bitflip":
            rho = K.dephase(rho, self._factor)
        return rho

    def observe(self) -> torch.Tensor:
        return self.view(self.obs_mode)

    def view(self, obs_mode: str) -> torch.Tensor:
        """The observation of the current state in ``obs_mode``, whatever this core's own ``obs_mode`` is,
        followed by the memory of recent actions (:meth:`memory_view`) when ``action_memory`` > 0."""
        views = {"measurements": self.measurement_view, "state": self.state_view, "pairs": self.pairs_view,
                 "pauli": self.pauli_view}
        view = views[check_choice("obs_mode", obs_mode, OBS_MODES)]()
        return torch.cat([view, self.memory_view()], dim=1) if self.action_memory else view

    def memory_view(self) -> torch.Tensor:
        """The last ``action_memory`` actions, most recent first, one-hot each (B, action_memory · n_actions);
        all zeros for the steps before the episode began. A state-aware policy sees the channel, which after
        a parity check barely depends on which parity it was (the states differ by error probabilities of
        order Δt/T_dec); the memory tells it, so that a Markov policy can alternate checks deterministically."""
        n_actions = self.single_action_space.n
        onehot = torch.zeros(self.num_envs, self.action_memory, n_actions, dtype=torch.float32, device=self.device)
        done = self.recent >= 0
        onehot[done] = torch.nn.functional.one_hot(self.recent[done], n_actions).to(torch.float32)
        return onehot.flatten(1)

    def state_view(self) -> torch.Tensor:
        """The teacher's observation (``obs_mode="state"``) of the current state, whatever ``obs_mode`` is."""
        flat = torch.view_as_real(self.rho).permute(0, 4, 1, 2, 3).reshape(self.num_envs, -1)
        return flat.clamp(-1.0, 1.0).to(torch.float32)

    def pauli_view(self) -> torch.Tensor:
        """The teacher's observation in the Pauli basis (``obs_mode="pauli"``), whatever ``obs_mode`` is:
        Tr(P ρ₀), Tr(P δρx), Tr(P δρy), Tr(P δρz) for the 4ⁿ Pauli strings P (:func:`~physrl.envs.kernels.qubits.pauli_basis`),
        4·4ⁿ real numbers in [−1, 1]. CNOTs and Hadamards permute these coordinates (with signs) and Pauli noise
        damps them one by one, so a code and its syndromes show as a few large entries in any frame.
        |Tr(P ρ)| ≤ ‖ρ‖₁ ≤ 1 for all four matrices, so no clipping is needed."""
        return K.pauli_coefficients(self.rho, self.n_qubits).flatten(1).to(torch.float32)

    def pairs_view(self) -> torch.Tensor:
        """The teacher's compact observation (``obs_mode="pairs"``, needs ``hadamard=False``).

        Row a of every channel matrix is zero except at columns a and a⊕v, so for every basis state a
        (in index order) and every matrix (ρ₀, δρx, δρy, δρz) it lists the Pauli coordinates
        (c₀, c_x, c_y, c_z) of the block {a, a⊕v} seen from a (a first), then the n bits of v, the
        qubits that carry the logical X (1 if set). 16·2ⁿ + n numbers instead of 8·4ⁿ.
        """
        if not self.pair_form:
            raise ValueError("the pairs view needs hadamard=False (a Hadamard leaves the pair form)")
        slot, partner = self._slot[self.shift], self._partner[self.shift]  # (B, d)
        coords = self.pairs.gather(3, slot[:, None, None, :].expand(-1, 4, 4, -1))  # (B, 4, 4, d)
        flip = torch.ones_like(coords)
        flip[:, :, 2:] = torch.where(partner, -1.0, 1.0)[:, None, None, :].to(coords.dtype)
        bits = (self.shift[:, None] >> torch.arange(self.n_qubits - 1, -1, -1, device=self.device)) & 1
        flat = (coords * flip).permute(0, 3, 1, 2).reshape(self.num_envs, -1)
        return torch.cat([flat.clamp(-1.0, 1.0).to(torch.float32), bits.to(torch.float32)], dim=1)

    @property
    def masks_actions(self) -> bool:
        """:meth:`action_mask` reads the ``"pairs"``, ``"state"`` or ``"pauli"`` observation."""
        return self.obs_mode in ("pairs", "state", "pauli")

    def action_mask(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, n_actions) bool: False for the measurements that would reveal the logical state and end the
        episode, True for every other action. A state-aware policy can use it
        (``DeepPolicyGradient(action_mask=True)``) so as never to try those measurements.

        ``"pairs"``: ``measure(q)`` reveals where qubit q carries the logical X (bit q of v set). ``"state"``
        and ``"pauli"`` (any device, Hadamards too): the measurement's average map δρ ↦ (δρ + Z_q δρ Z_q)/2 keeps the part of
        δρ_k with a_q = b_q; ``measure(q)`` is ruled out where that part holds less than a quarter of
        ‖δρ_k‖² for some k ∈ {x, y, z}. For a Pauli mixture of a stabiliser code (independent bit flips and
        dephasing) the part is all of δρ_k where Z_q is ± a stabiliser, half where Z_q anticommutes with one (a
        random outcome that reveals nothing), and none where Z_q acts as a logical Pauli that anticommutes with
        σ̄_k: exactly the revealing measurements. Collective dephasing with Hadamards leaves that form; the
        rule then also rules out a few measurements that reveal nothing.
        """
        if self.obs_mode in ("state", "pauli"):
            return self._kept_mask(obs)
        if self.obs_mode != "pairs":
            raise ValueError(f"action_mask reads obs_mode='pairs', 'state' or 'pauli', got obs_mode={self.obs_mode!r}")
        weights = 1 << torch.arange(self.n_qubits - 1, -1, -1, device=obs.device)
        bits = obs[:, 16 * self.dim:16 * self.dim + self.n_qubits]
        shift = ((bits > 0.5).long() * weights).sum(1)
        return ~self.revealing(shift)

    def _kept_mask(self, obs: torch.Tensor) -> torch.Tensor:
        """:meth:`action_mask` of the ``"state"`` (real, then imaginary parts of ρ₀, δρx, δρy, δρz) or the
        ``"pauli"`` observation: the part of each ‖δρ_k‖² that a Z_q measurement keeps (both bases are orthogonal)."""
        d = self.dim
        if self.obs_mode == "state":
            weight = obs[:, :8 * d * d].reshape(-1, 2, 4, d * d)[:, :, 1:].to(torch.float64).square().sum(1)
            kept_table = self._kept_entries
        else:
            weight = obs[:, :4 * d * d].reshape(-1, 4, d * d)[:, 1:].to(torch.float64).square()
            kept_table = self._kept_paulis
        total = weight.sum(-1)  # (B, 3)
        kept = torch.einsum("bkm,qm->bqk", weight, kept_table)  # (B, n, 3)
        revealing = ((kept < total[:, None, :] / 4) & (total[:, None, :] > 1e-12)).any(-1)  # (B, n)
        return ~(revealing[:, self._m_qubit.clamp(min=0)] & (self._m_qubit >= 0))

    def revealing(self, shift: torch.Tensor) -> torch.Tensor:
        """(B, n_actions) bool: the measurements that would reveal the logical state when the logical X
        sits on the qubits of v = ``shift`` (B,) (pair form): measure(q) with bit q of v set."""
        return self._reveals[shift]

    def shift_after(self, actions: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """v after ``actions`` (B,) from v = ``shift`` (B,): it depends only on the gates (pair form)."""
        return self._gate_shift[actions, shift]

    def measurement_view(self) -> torch.Tensor:
        """The student's observation (``obs_mode="measurements"``) of the current state, whatever ``obs_mode`` is.

        Right after a reset it is all zeros (no last action, nothing measured): that marks an episode's start.
        """
        onehot = torch.zeros(self.num_envs, self.single_action_space.n, dtype=torch.float32, device=self.device)
        started = self.last_action >= 0
        onehot[started, self.last_action[started]] = 1.0
        return torch.cat([onehot, self.last_outcome], dim=1)

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        m_qubit = self._m_qubit[actions]
        uniform = self.rng.uniform(None, ())
        step = self._step_pairs if self.pair_form else self._step_dense
        outcome, averaged, new_recoverable, new_direction = step(actions, m_qubit, uniform)
        reward, terminated = step_reward(averaged, self.recoverable, m_qubit >= 0, self.t_dec)
        self.recoverable, self.direction = new_recoverable, new_direction
        self.last_action = actions.clone()
        if self.action_memory:
            self.recent = torch.cat([actions[:, None], self.recent[:, :-1]], dim=1)
        measured = outcome >= 0
        self.last_outcome[measured, m_qubit[measured]] = 1.0 - 2.0 * outcome[measured].to(torch.float32)
        slot = self.elapsed.clamp(max=self.max_steps - 1)
        rows = torch.arange(self.num_envs, device=self.device)
        self.history[rows, slot] = torch.stack([actions, outcome], dim=1)
        info = {"recoverable_information": new_recoverable.clone(), "outcome": outcome}
        return reward.to(torch.float32), terminated, info

    def _step_pairs(self, actions: torch.Tensor, m_qubit: torch.Tensor, uniform: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise, gate and measurement in pair form: (outcome, R̂_Q, R_Q, minimiser).

        One batched R_Q search covers every sub-env's state (outcome 0 where it measures) and the
        outcome-1 branch of the sub-envs that measure.
        """
        n, shift, pairs = self.n_qubits, self.shift, self.pairs
        if self.noise in ("bitflip", "bitflip+dephasing"):
            source, sign = self._flip_source[:, shift], self._flip_sign[:, shift]
            for q in range(n):
                pairs = torch.lerp(pairs, P.permute_pairs(pairs, source[q], sign[q]), self._flip_probability)
        if self.noise != "bitflip":
            factor = self._pair_dephasing[shift][:, None, None]
            pairs = torch.cat([pairs[:, :, :1], pairs[:, :, 1:3] * factor, pairs[:, :, 3:]], 2)
        pairs = P.permute_pairs(pairs, self._gate_source[actions, shift], self._gate_sign[actions, shift])
        self.shift = shift = self._gate_shift[actions, shift]
        hit = (m_qubit >= 0).nonzero().squeeze(1)
        bit_rep, bit_partner = P.pair_bits(shift[hit], n, m_qubit[hit])
        branches = [P.project_pairs(pairs[hit], bit_rep == m, bit_partner == m) for m in (0, 1)]
        pairs = pairs.index_copy(0, hit, branches[0])
        value, direction = R.recoverable_information_pairs(torch.cat([pairs[:, 1:], branches[1][:, 1:]]),
                                                           torch.cat([self.direction, self.direction[hit]]),
                                                           PAIR_ITERATIONS)
        value, value1 = value.split([self.num_envs, len(hit)])
        direction, direction1 = direction.split([self.num_envs, len(hit)])
        probability = [b[:, 0, 0].sum(-1) for b in branches]  # Tr Π_m ρ₀ Π_m = Σ_k c₀
        got = uniform[hit] >= probability[0]
        norm = torch.where(got, probability[1], probability[0]).clamp_min(1e-300)
        chosen = torch.where(got[:, None, None, None], branches[1], branches[0]) / norm[:, None, None, None]
        self.pairs = pairs.index_copy(0, hit, chosen)
        outcome = torch.full_like(m_qubit, -1).index_copy(0, hit, got.to(torch.int64))
        recoverable = value.index_copy(0, hit, torch.where(got, value1, value[hit]) / norm)
        new_direction = direction.index_copy(0, hit, torch.where(got[:, None], direction1, direction[hit]))
        return outcome, value.index_add(0, hit, value1), recoverable, new_direction

    def _step_dense(self, actions: torch.Tensor, m_qubit: torch.Tensor, uniform: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise, gate and measurement on the dense matrices (``hadamard=True``): (outcome, R̂_Q, R_Q, minimiser)."""
        n = self.n_qubits
        rho = self.apply_noise(self.dense)
        if bool(self._is_perm[actions].any()):
            rho = K.permute(rho, self._perms[actions])
            if self.framed:
                self.frame = K.permute_rows(self.frame, self._perms[actions])
        h_qubit = self._h_qubit[actions]
        for q in range(n):
            hit = (h_qubit == q).nonzero().squeeze(1)
            if len(hit):
                rho[hit] = K.hadamard(rho[hit], n, q)
                if self.framed:
                    self.frame[hit] = K.one_qubit_left(self.frame[hit], K.hadamard_matrix(self.device), n, q)
        outcome = torch.full((self.num_envs,), -1, dtype=torch.int64, device=self.device)
        averaged = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        new_recoverable = torch.zeros_like(averaged)
        new_direction = self.direction.clone()
        quiet = (m_qubit < 0).nonzero().squeeze(1)
        if len(quiet):
            value, direction = self._recoverable(rho[quiet, 1:], quiet, self.direction[quiet])
            averaged[quiet], new_recoverable[quiet], new_direction[quiet] = value, value, direction
        for q in self.measurable:
            hit = (m_qubit == q).nonzero().squeeze(1)
            if len(hit):
                self._measure(rho, hit, q, uniform[hit], outcome, averaged, new_recoverable, new_direction)
        self.dense = rho
        return outcome, averaged, new_recoverable, new_direction

    def _measure(self, rho: torch.Tensor, hit: torch.Tensor, q: int, uniform: torch.Tensor, outcome: torch.Tensor,
                 averaged: torch.Tensor, new_recoverable: torch.Tensor, new_direction: torch.Tensor) -> None:
        """Z measurement of qubit ``q`` in the sub-envs ``hit``: both branches' R_Q, Born sampling, projection."""
        n = self.n_qubits
        sub = rho[hit]
        if self.framed:
            self.frame[hit] = P.frame_after_measurement(self.frame[hit], n, q)
        branch_values, branch_directions, probabilities = [], [], []
        for m in (0, 1):
            if self.framed:
                block = K.project(sub, n, q, m)
            else:  # the outcome's subspace alone: eigendecompositions of half the size
                keep = K.outcome_indices(n, q, m, self.device)
                block = sub[:, :, keep][:, :, :, keep]
            probabilities.append(torch.diagonal(block[:, 0], dim1=-2, dim2=-1).real.sum(-1))
            value, direction = self._recoverable(block[:, 1:], hit, self.direction[hit])
            branch_values.append(value)
            branch_directions.append(direction)
        got = (uniform >= probabilities[0]).to(torch.int64)
        chosen = got.bool()
        probability = torch.where(chosen, probabilities[1], probabilities[0]).clamp_min(1e-300)
        rho[hit] = K.project(sub, n, q, got) / probability[:, None, None, None]
        averaged[hit] = branch_values[0] + branch_values[1]
        new_recoverable[hit] = torch.where(chosen, branch_values[1], branch_values[0]) / probability
        new_direction[hit] = torch.where(chosen[:, None], branch_directions[1], branch_directions[0])
        outcome[hit] = got

    def _recoverable(self, delta: torch.Tensor, index: torch.Tensor, start: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """R_Q and its minimiser for δρx, δρy, δρz (b, 3, d, d) of the sub-envs ``index`` (dense path): in
        their Clifford frames with the closed-form block norm, or by eigendecompositions (correlated noise)."""
        if self.framed:
            blocks = P.frame_pairs(delta, self.frame[index], self.n_qubits)
            return R.recoverable_information_pairs(blocks, start, WARM_ITERATIONS, bracket=True)
        return R.recoverable_information(delta, start, WARM_ITERATIONS)

    # ------------------------------------------------------------------ rendering
    def episode_summary(self, i: int, frames: list[np.ndarray]) -> dict[str, Any]:
        """The circuit of sub-env ``i``'s episode and its recoverable quantum information at the end
        (``charts/recoverable_information``, the R_Q of Fösel et al. 2018; at most 10⁻³ after a reveal): for
        training runs, that of one greedy episode, an evaluation only."""
        return {**super().episode_summary(i, frames), "charts/recoverable_information": float(self.recoverable[i])}

    def render_ansi(self, i: int) -> str:
        steps = int(self.elapsed[i])
        lines = [f"n_qubits={self.n_qubits} noise={self.noise} t={steps} R_Q={float(self.recoverable[i]):.6f}"]
        record = self.history[i, :steps].tolist()
        words = []
        for action, result in record:
            words.append(self.action_names[action] + (f"->{result}" if result >= 0 else ""))
        lines += [" ".join(words[k:k + 8]) for k in range(0, len(words), 8)]
        return "\n".join(lines) + "\n"

    def render_rgb(self, i: int) -> np.ndarray:
        """The circuit so far: one row per qubit, one column per step (CNOT control dark, target and X red,
        H blue, measurement green for 0 / black for 1), scaled ×6."""
        n, steps = self.n_qubits, self.max_steps
        image = np.full((2 * n + 1, steps, 3), 245, dtype=np.uint8)
        image[1:2 * n:2] = (200, 200, 200)
        for t, (action, result) in enumerate(self.history[i].tolist()):
            if action < 0:
                break
            name = self.action_names[action]
            qubits = [int(v) for v in re.findall(r"\d+", name)]
            if name.startswith("cnot"):
                c, tg = qubits
                lo, hi = sorted((c, tg))
                image[2 * lo + 1:2 * hi + 2, t] = (120, 120, 120)
                image[2 * c + 1, t] = (20, 20, 20)
                image[2 * tg + 1, t] = (220, 40, 40)
            elif name.startswith("x"):
                image[2 * qubits[0] + 1, t] = (220, 40, 40)
            elif name.startswith("h"):
                image[2 * qubits[0] + 1, t] = (40, 90, 220)
            elif name.startswith("measure"):
                image[2 * qubits[0] + 1, t] = (30, 170, 60) if result == 0 else (0, 0, 0)
        return np.repeat(np.repeat(image, 6, axis=0), 6, axis=1)


class _ActionTable:
    """The readable action table of the core, on both faces."""

    core: QubitCore

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.core.action_names

    def action_index(self, name: str) -> int:
        """Index of the action called ``name``; ValueError naming the reason otherwise."""
        return self.core.action_index(name)


class QubitErrorCorrectionEnv(_ActionTable, SingleEnv):
    r"""``physrl/QubitErrorCorrection-v0``: keep a logical qubit alive with gates and measurements.

    Description:
        A quantum memory protected by feedback, after Fösel et al. (2018). n qubits suffer noise;
        qubit 0 holds an unknown logical state, the others start in |0⟩. The agent applies one gate
        or measurement per time step Δt and is rewarded for keeping the logical information
        recoverable. The environment tracks the whole logical channel exactly: four 2ⁿ×2ⁿ matrices
        ρ₀ (the image of the maximally mixed input) and δρx, δρy, δρz, so that logical Bloch vector
        n ends up as ρ₀ + Σᵢ nᵢ δρᵢ (paper §II). Idling earns about 0 per step, perfect protection 1;
        the hand-written repetition code (:class:`~physrl.agents.reference.qec.RepetitionCodePolicy`) keeps the information about
        27 times longer than idling (26.9 ± 2.9) (:func:`~physrl.agents.reference.qec.effective_lifetime`).

    Action Space:
        ``Discrete(K)``, the table ``env.unwrapped.action_names``: ``idle``; ``cnot(c,t)`` for the
        pairs allowed by ``connectivity``; ``x(q)`` for every qubit; ``h(q)`` for every qubit when
        ``hadamard=True``; ``measure(q)`` (projective Z) for every qubit in ``measurable``. With the
        defaults K = 21. ``env.unwrapped.action_index("cnot(0,3)")`` looks a name up and raises a
        ValueError saying why when the device rules the action out.

    Observation Space:
        ``Box`` float32, 1-D. ``obs_mode="measurements"`` (the student's view, default): one-hot of the
        last action (all zero right after reset) followed by the last outcome of every qubit as its Z
        eigenvalue (+1 for 0, −1 for 1, 0 if never measured). ``"state"`` (the teacher's view): real
        and imaginary parts of the four channel matrices, flattened (8·4ⁿ numbers in [−1, 1]).
        ``"pairs"`` (needs ``hadamard=False``): the same matrices compactly, 16·2ⁿ + n numbers (below).
        ``"pauli"``: the same matrices in the Pauli basis, Tr(P ρ) for the 4ⁿ Pauli strings (4·4ⁿ numbers).
        ``core.view(obs_mode)`` gives any view of the current state whatever the env's own mode.
        ``action_memory`` = k appends the last k actions, most recent first, one-hot each (zeros
        before the episode's first steps), to whichever view: a memory for Markov policies.
        On the ``"pairs"``, ``"state"`` and ``"pauli"`` views ``envs.action_mask(obs)`` lists the actions that do
        not reveal the logical state (every action but the measurements of qubits that carry it), for
        ``deep-pg --set action_mask=true``.

    Rewards:
        With R_Q the recoverable quantum information and R̂_Q(t+1) its average over the outcomes of
        this step's measurement (the plain R_Q(t+1) when nothing is measured), the paper's reward
        (Eq. (6)) is r = 1 + (R̂_Q(t+1) − R_Q(t))/(2Δt/T_dec): idling with bit flips earns ≈ 0 per
        step, perfect protection 1, and the sum telescopes to steps − (1 − R_Q(end)) T_dec/2. Near lost
        information we use (:func:`step_reward`), with ε = 10⁻³ (``REVEALED``),

        .. math::

            r_t = \min\Big(1, \frac{\hat R_Q(t+1)}{\varepsilon}\Big)
                  + \frac{\hat R_Q(t+1) - R_Q(t)}{2\Delta t / T_\mathrm{dec}} ,

        which is Eq. (6) wherever R̂_Q(t+1) ≥ ε, continuous in R̂_Q everywhere, and fades the "1 +"
        out below ε (a memory with nothing left to protect earns nothing for idling). A measurement
        that takes R̂_Q to ε or below from R_Q(t) > ε revealed the logical state: it pays
        ≈ −R_Q(t) T_dec/2, never more than an almost-complete reveal just above ε, and ends the
        episode. The paper states Eq. (6); this threshold rule is ours (an earlier version paid −0.1
        for a complete reveal, 5000 times less than an almost-complete one, and ended the episode on
        any measurement once R̂_Q ≤ ε). ``info["recoverable_information"]`` is R_Q after the step,
        ``info["outcome"]`` the measured bit (−1 when nothing was measured).

    Starting State:
        Qubit 0 holds the logical state (ρ₀ = ½ on the block {|0…0⟩, |10…0⟩}, δρᵢ = σᵢ/2 on it), the
        other qubits |0⟩; R_Q = 1.

    Episode End:
        Terminated only by a measurement that reveals the logical state (takes R̂_Q from above ε to ε or
        below); truncated after ``max_steps``
        steps (the registered ``max_episode_steps``).

    Arguments:
        n_qubits (int): 2–6 qubits (default 4).
        noise (str): ``"bitflip"`` (default), ``"dephasing"``, ``"bitflip+dephasing"`` (X and Z flips
            independently) or ``"correlated"`` (a common Gaussian phase field along z on all qubits:
            ρ_ab ← e^(−2Δt/T_dec·(k_a − k_b)²), k = number of 1s; |01⟩ and |10⟩ are decoherence-free).
        t_dec (float): T_dec in steps (default 1200); flip probability p = (1 − e^(−2Δt/T_dec))/2 per
            qubit and step.
        connectivity (str | list): ``"all"`` (CNOT on every ordered pair, default), ``"chain"``
            (neighbours only), or a list of (control, target) pairs, the couplings of a given device,
            e.g. ``[[0,1],[0,2],[0,3],[1,3],[2,3]]``.
        hadamard (bool): add the ``h(q)`` actions, needed against dephasing (default False).
        measurable (list[int] | None): the qubits that may be measured (default all).
        obs_mode (str): ``"measurements"``, ``"state"``, ``"pairs"`` or ``"pauli"``.
        action_memory (int): 0–16 last actions appended to the observation (default 0).
        max_steps (int): the horizon, at most 100 000 (default 200).
        render_mode (str | None): ``"ansi"`` (the action timeline with outcomes) or ``"rgb_array"``
            (the circuit so far).

    Physics:
        *Step.* First the noise of the interval Δt acts on every qubit, then the action. A measurement
        draws outcome m with probability p_m = Tr(Π_m ρ₀); all four matrices are projected and divided
        by p_m. For independent flips, dephasing and the correlated noise an idle memory keeps
        R_Q(t) = e^(−2t/T_dec) (with ``"bitflip+dephasing"`` the y component decays twice as fast).

        *Recoverable quantum information*, the worst-case distinguishability of
        opposite logical states after the channel:

        .. math::

            R_Q = \min_{|\mathbf n| = 1} \Big\| \sum_i n_i\, \delta\rho_i \Big\|_1 .

        *Pair form.* Without Hadamards every gate (X, CNOT) and every bit flip is an affine
        permutation a ↦ Ma ⊕ c of the basis over GF(2)ⁿ; dephasing rescales entries and a Z
        measurement masks them. The four matrices start on the 2×2 block {|0…0⟩, |10…0⟩}, so they
        stay block diagonal in the 2ⁿ⁻¹ pairs {a, a⊕v}, with one v = M e₀ per sub-env (where the gates
        have moved the logical X). The core keeps only those blocks as Pauli coordinates
        ½(c₀ 1 + c·σ); a block's trace norm is max(|c₀|, ‖c‖), so R_Q = min over n of
        Σ_k max(|t_k·n|, ‖W_k n‖) needs no eigendecomposition: two warm-started trust-region Newton
        steps on the sphere per step (:func:`~physrl.envs.kernels.recoverable_information.recoverable_information_pairs`).
        With ``hadamard=True`` the core keeps the dense complex128 matrices. Under Pauli noise (every
        ``noise`` but ``"correlated"``) they are still in pair form, in a Clifford frame U that follows
        the gates (Gottesman–Knill): U†ρU is block diagonal in the pairs {a, a⊕e₀}, and U changes at a
        measurement only where U†Z_qU anticommutes with some Z_j, j ≥ 1
        (:func:`~physrl.envs.kernels.qubit_pairs.measurement_frame_change`), so R_Q keeps the closed
        form; under collective dephasing R_Q needs eigendecompositions. Either way the warm-started
        search runs until it has converged (at most 16 Newton steps) and is bracketed by a 48-direction
        grid: where a grid direction comes within 5% of the warm value, the best grid directions are
        refined too (a warm start can sit in a basin that is no longer the lowest after a measurement).

        *The* ``"pairs"`` *view.* Row a of every channel matrix is zero except at columns a and a⊕v,
        so the view lists, for every basis state a and every matrix, the Pauli coordinates
        (c₀, c_x, c_y, c_z) of the block {a, a⊕v} seen from a, then the n bits of v (1 where the qubit
        carries the logical X: measuring it would reveal the logical state). On this view
        ``core.action_mask(obs)`` is False for exactly those measurements.

        *Figure of merit.* :func:`~physrl.agents.reference.qec.effective_lifetime` fits −ln E[R_Q(t)] = c + 2t/T_eff over batched
        rollouts and returns T_eff/T_dec (idle: exactly 1). The free intercept c absorbs the one-off
        cost of encoding (qubit 0 is alone during the first step, shared by two qubits during the
        second: c ≈ 4Δt/T_dec), which a fit through the origin would charge to the rate.

    References:
        T. Fösel, P. Tighineanu, T. Weiss, F. Marquardt, *Reinforcement Learning with Neural Networks
        for Quantum Feedback*, Phys. Rev. X 8, 031084 (2018).

    Version History:
        v0: bit-flip, dephasing and correlated noise, device connectivity, the measurement, state and
        pairs views.
    """

    core_class = QubitCore


class QubitErrorCorrectionVectorEnv(_ActionTable, VectorEnv):
    """Vector face of :class:`QubitErrorCorrectionEnv` (same arguments, plus ``num_envs`` and ``device``).

    Besides the common surface it gives the other views of the same sub-envs (a student and its
    teacher see one state in two ``obs_mode``), the episode's record, and the pair form's logical-X
    bookkeeping v (``hadamard=False``), with which a policy on measurements can tell which
    measurements would reveal the logical state.
    """

    core_class = QubitCore

    def view(self, obs_mode: str) -> torch.Tensor:
        """The current observation of every sub-env in ``obs_mode``, whatever the env's own ``obs_mode`` is."""
        return self.core.view(obs_mode)

    @property
    def history(self) -> torch.Tensor:
        """Each step's action and measurement outcome (−1 for none) in the current episode, (num_envs,
        max_steps, 2) int64, −1 for the steps not taken yet (a copy)."""
        return self.core.history.clone()

    @property
    def initial_shift(self) -> int:
        """v at the start of every episode (pair form), 2ⁿ⁻¹ (the logical X sits on qubit 0)."""
        if not self.core.pair_form:
            raise ValueError("v exists in the pair form only, which needs hadamard=False")
        return self.core.initial_shift

    def revealing(self, shift: torch.Tensor) -> torch.Tensor:
        """(B, n_actions) bool: the measurements that would reveal the logical state at v = ``shift`` (B,)."""
        return self.core.revealing(shift)

    def shift_after(self, actions: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """v after ``actions`` (B,) from v = ``shift`` (B,): it depends only on the gates."""
        return self.core.shift_after(actions, shift)

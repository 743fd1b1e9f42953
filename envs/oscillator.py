"""Preparing non-classical oscillator states: V. V. Sivak et al., *Model-Free Quantum Control with
Reinforcement Learning*, PRX 12, 011059 (2022).

:class:`OscillatorStatePrepEnv` (``physrl/OscillatorStatePrep-v0``) documents the task; its batched
core is here, the exact kernels in :mod:`physrl.envs.kernels.oscillator` and
:mod:`physrl.envs.kernels.wigner`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from physrl.envs.core import BatchCore, SingleEnv, VectorEnv
from physrl.envs.kernels.oscillator import (FockSpace, echoed_conditional_displacement, measure_number,
                                            measure_parity, measure_qubit, population, rotate_qubit)
from physrl.envs.kernels.wigner import displaced_parity, wigner
from physrl.envs.validation import check_bool, check_choice, check_float, check_int

CONTROLS = ("snap_displacement", "ecd")
REWARD_MODES = ("fock", "wigner", "fidelity")
SNAP_ALPHA_MAX = 3.0
ECD_ALPHA_MAX = 1.5
TRUNCATION_TOLERANCE = 1e-6
CAT_AMPLITUDE = 2.0
WIGNER_GRID = 81
RENDER_EXTENT = 6.0
#: Limits of the size options (N×N matrices, a one-hot observation of the step, M points per reward).
MAX_LEVELS = 1000
MAX_STEPS = 1000
MAX_WIGNER_SAMPLES = 10_000


def cat_state(n_levels: int, amplitude: float = CAT_AMPLITUDE) -> np.ndarray:
    """Even cat (|β⟩ + |−β⟩), normalised in the truncated space: amplitudes ∝ β^k/√k! for even k."""
    k = np.arange(n_levels)
    log_magnitude = k * math.log(amplitude) - 0.5 * np.array([math.lgamma(i + 1) for i in k])
    ket = np.where(k % 2 == 0, np.exp(log_magnitude - log_magnitude.max()), 0.0)
    return ket / np.linalg.norm(ket)


def target_ket(target: Any, n_levels: int, n: int | None) -> np.ndarray:
    """The target as a normalised complex ket of ``n_levels`` amplitudes (``target`` of :class:`OscillatorStatePrepEnv`)."""
    if isinstance(target, str):
        check_choice("target", target, ("fock", "cat"))
        if target == "cat":
            if n is not None:
                raise ValueError("n is only used with target='fock'")
            return cat_state(n_levels).astype(np.complex128)
        n = check_int("n", 1 if n is None else n, 0, n_levels - 1)
        ket = np.zeros(n_levels, dtype=np.complex128)
        ket[n] = 1.0
        return ket
    if n is not None:
        raise ValueError("n is only used with target='fock'")
    if hasattr(target, "full") and hasattr(target, "isket"):
        if not target.isket:
            raise ValueError(f"target must be a ket, got a qutip.Qobj of type {target.type}")
        target = target.full()
    try:
        ket = np.asarray(target, dtype=np.complex128)
    except (TypeError, ValueError):
        raise TypeError(f"target must be 'fock', 'cat', an array or a qutip ket, got {type(target).__name__}") from None
    if ket.ndim == 2 and ket.shape[1] == 1:
        ket = ket[:, 0]
    if ket.shape != (n_levels,):
        raise ValueError(f"target ket must have shape ({n_levels},) or ({n_levels}, 1) for n_levels={n_levels}, "
                         f"got {ket.shape}")
    if not np.isfinite(ket).all():
        raise ValueError("target ket must be finite")
    norm = float(np.linalg.norm(ket))
    if abs(norm - 1.0) > 1e-8:
        raise ValueError(f"target ket must be normalised (norm 1 within 1e-8), got norm {norm}")
    return ket


class OscillatorCore(BatchCore):
    """Batched oscillator state preparation: one ket per sub-env, exact single-shot rewards."""

    render_modes = ("rgb_array",)
    state_names = ("psi", "outcome", "top_population", "shots")
    max_horizon = MAX_STEPS

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", control: str = "snap_displacement",
                 n_levels: int = 80, max_steps: int = 5, snap_phases: int | None = None, alpha_max: float | None = None,
                 target: Any = "fock", n: int | None = None, reward_mode: str = "fock", wigner_samples: int = 1,
                 feedback: bool = False, n_steps: int | None = None) -> None:
        if n_steps is not None:
            warnings.warn("the oscillator option n_steps is deprecated, use max_steps (the horizon of every "
                          "physrl env)", DeprecationWarning, stacklevel=2)
            max_steps = n_steps
        super().__init__(num_envs, device, max_steps)
        self.control = check_choice("control", control, CONTROLS)
        self.n_levels = check_int("n_levels", n_levels, 2, MAX_LEVELS)
        if control == "ecd" and snap_phases is not None:
            raise ValueError("snap_phases is only used with control='snap_displacement'")
        self.snap_phases = check_int("snap_phases", 10 if snap_phases is None else snap_phases, 1, self.n_levels)
        if alpha_max is None:
            alpha_max = ECD_ALPHA_MAX if control == "ecd" else SNAP_ALPHA_MAX
        self.alpha_max = check_float("alpha_max", alpha_max, 0.0, low_open=True)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        if reward_mode == "fock" and not (isinstance(target, str) and target == "fock"):
            raise ValueError("reward_mode='fock' measures a photon number, so it needs target='fock'; "
                             "use reward_mode='wigner' or 'fidelity' for other targets")
        self.wigner_samples = check_int("wigner_samples", wigner_samples, 1, MAX_WIGNER_SAMPLES)
        self.feedback = check_bool("feedback", feedback)
        ket = target_ket(target, self.n_levels, n)
        self.n = int(np.argmax(np.abs(ket)))  # the Fock level measured by reward_mode="fock"
        self.space = FockSpace(self.n_levels, self.device)
        self.target = torch.as_tensor(ket, device=self.device)
        self.qubit = control == "ecd"
        self.state_shape = (2, self.n_levels) if self.qubit else (self.n_levels,)
        self.psi = torch.zeros(self.num_envs, *self.state_shape, dtype=torch.complex128, device=self.device)
        self.outcome = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        top = torch.zeros(self.n_levels, dtype=torch.bool, device=self.device)
        top[-2:] = True
        self.top_levels = top
        self.top_population = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        #: single-shot measurements taken so far by all sub-envs (one per episode with reward_mode="fock",
        #: ``wigner_samples`` with "wigner", none with the "fidelity" oracle); saved with the env's state
        self.shots = torch.zeros((), dtype=torch.int64, device=self.device)
        self.truncation_warned = False
        self._setup_wigner_reward()
        steps = self.max_steps
        action_size = 4 if self.qubit else 2 + self.snap_phases
        self.single_action_space = spaces.Box(-1.0, 1.0, (action_size,), np.float32)
        if self.feedback:
            low = np.r_[np.zeros(steps), -1.0].astype(np.float32)
            self.single_observation_space = spaces.Box(low, np.ones(steps + 1, np.float32), dtype=np.float32)
        else:
            self.single_observation_space = spaces.Box(0.0, 1.0, (steps,), np.float32)

    def _setup_wigner_reward(self) -> None:
        """The phase-space grid, the target's Wigner signs and the sampling distribution ∝ |W_t|."""
        if self.reward_mode != "wigner":
            return
        support = np.nonzero(np.abs(self.target.cpu().numpy()) ** 2 > 1e-12)[0].max()
        extent = math.sqrt(2) * (math.sqrt(support) + 3.0)
        axis = torch.linspace(-extent, extent, WIGNER_GRID, dtype=torch.float64, device=self.device)
        #: grid points α = (x + i y)/√2 of the Wigner reward, flattened (G,)
        self.grid = torch.complex(axis[None, :].expand(WIGNER_GRID, -1), axis[:, None].expand(-1, WIGNER_GRID))
        self.grid = self.grid.flatten() / math.sqrt(2)
        target_w = wigner(self.target[None], axis, axis)[0].flatten()
        self.grid_sign = torch.sign(target_w)
        self.grid_cdf = torch.cumsum(target_w.abs(), 0) / target_w.abs().sum()
        self.grid_target_w = target_w

    def reset_envs(self, index: torch.Tensor) -> None:
        self.psi[index] = 0
        if self.qubit:
            self.psi[index, 0, 0] = 1
        else:
            self.psi[index, 0] = 1
        self.outcome[index] = 0
        self.top_population[index] = 0

    def observe(self) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(self.elapsed.clamp(max=self.max_steps), self.max_steps + 1)
        obs = onehot[:, :self.max_steps].to(torch.float32)
        if self.feedback:
            obs = torch.cat([obs, self.outcome[:, None]], dim=1)
        return obs

    def apply(self, psi: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One control step on the kets ``psi`` for validated actions (B, action size)."""
        a = actions.to(torch.float64)
        alpha = self.alpha_max * torch.complex(a[:, 0], a[:, 1])
        if self.qubit:
            psi = rotate_qubit(psi, math.pi * a[:, 2], math.pi * a[:, 3])
            return echoed_conditional_displacement(self.space, psi, alpha)
        return self.space.displaced_snap(psi, alpha, math.pi * a[:, 2:])

    def prepare(self, actions: torch.Tensor) -> torch.Tensor:
        """The kets prepared from the initial state (vacuum, with ECD |g, 0⟩) by action sequences
        ``actions`` (B, T, action size) in env units, without touching the envs' own state.
        Differentiable in ``actions`` (the same kernels as :meth:`apply`; the vector face's
        :meth:`OscillatorStatePrepVectorEnv.sequence_fidelity`)."""
        psi = torch.zeros(actions.shape[0], *self.state_shape, dtype=torch.complex128, device=self.device)
        psi[(slice(None),) + (0,) * len(self.state_shape)] = 1
        for t in range(actions.shape[1]):
            psi = self.apply(psi, actions[:, t])
        return psi

    def fidelity(self, psi: torch.Tensor) -> torch.Tensor:
        """F = |⟨target|ψ⟩|² (with ECD the target is |g⟩ ⊗ |target⟩)."""
        osc = psi[:, 0] if self.qubit else psi
        return (osc @ self.target.conj()).abs().square()

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        self.psi = self.apply(self.psi, actions)
        if self.feedback:
            u = self.rng.uniform(None)
            if self.qubit:
                excited, self.psi = measure_qubit(self.psi, u)
                self.outcome = 1.0 - 2.0 * excited.to(torch.float32)
            else:
                even, self.psi = measure_parity(self.psi, u)
                self.outcome = 2.0 * even.to(torch.float32) - 1.0
        fidelity = self.fidelity(self.psi)
        last = self.elapsed == self.max_steps - 1
        reward = torch.where(last, self.measure_reward(fidelity), 0.0).to(torch.float32)
        self.shots += last.sum() * self.shots_per_episode()
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.top_population = torch.maximum(self.top_population, population(self.psi, self.top_levels))
        if not self.truncation_warned and bool(last.any()):
            self.warn_truncation(self.top_population[last].max())
        info = {"fidelity": fidelity, "_fidelity": last, "top_population": self.top_population.clone()}
        return reward, terminated, info

    def warn_truncation(self, worst: torch.Tensor) -> None:
        """Warn once if an episode's state has reached the top Fock levels (the simulation is then wrong)."""
        if float(worst) > TRUNCATION_TOLERANCE:
            self.truncation_warned = True
            warnings.warn(f"the state reached the truncation edge: the population of the top two of "
                          f"n_levels={self.n_levels} Fock levels was {float(worst):.2g} > {TRUNCATION_TOLERANCE} "
                          f"in an episode (alpha_max={self.alpha_max}), so its simulation is not the "
                          "oscillator's; raise n_levels or lower alpha_max", RuntimeWarning, stacklevel=2)

    def shots_per_episode(self) -> int:
        """Single-shot measurements behind one episode's reward: 1 ("fock"), ``wigner_samples`` ("wigner"),
        0 ("fidelity", an oracle no experiment has)."""
        return {"fock": 1, "wigner": self.wigner_samples, "fidelity": 0}[self.reward_mode]

    def measure_reward(self, fidelity: torch.Tensor) -> torch.Tensor:
        """The single-shot reward of every sub-env's current state (used at the last step)."""
        if self.reward_mode == "fidelity":
            return fidelity
        if self.reward_mode == "fock":
            u = self.rng.uniform(None, (2,))
            psi = self.psi
            success = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
            if self.qubit:
                excited, psi = measure_qubit(psi, u[:, 0])
                success = ~excited
            found, _ = measure_number(psi, self.n, u[:, 1])
            return torch.where(success & found, 1.0, -1.0).to(torch.float64)
        u = self.rng.uniform(None, (2, self.wigner_samples))
        index = torch.searchsorted(self.grid_cdf, u[:, 0].contiguous(), right=True).clamp(max=len(self.grid_cdf) - 1)
        parity = displaced_parity(self.psi, self.grid[index])
        shot = torch.where(u[:, 1] < (1 + parity) / 2, 1.0, -1.0)
        return (self.grid_sign[index] * shot).mean(1)

    def episode_summary(self, i: int, frames: list[np.ndarray]) -> dict[str, Any]:
        """The Wigner picture of sub-env ``i``'s final state and its exact fidelity (``charts/fidelity``):
        for training runs, the fidelity of the greedy (mean) policy's sequence, an evaluation only."""
        return {**super().episode_summary(i, frames), "charts/fidelity": float(self.fidelity(self.psi[i:i + 1])[0])}

    def wigner_image(self, i: int, pixels: int = 64) -> np.ndarray:
        """W of sub-env ``i`` on x, y ∈ [−6, 6] (rows: y from top to bottom = high to low)."""
        axis = torch.linspace(-RENDER_EXTENT, RENDER_EXTENT, pixels, dtype=torch.float64, device=self.device)
        return wigner(self.psi[i:i + 1], axis, axis.flip(0))[0].cpu().numpy()

    def render_rgb(self, i: int) -> np.ndarray:
        w = np.clip(self.wigner_image(i) * math.pi, -1.0, 1.0)[..., None]
        white = np.ones(3)
        red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.8])
        colour = np.where(w >= 0, white + w * (red - white), white - w * (blue - white))
        image = (255 * colour).round().astype(np.uint8)
        return np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)


class OscillatorStatePrepEnv(SingleEnv):
    r"""``physrl/OscillatorStatePrep-v0``: prepare a Fock or cat state from vacuum, rewarded by single shots.

    Description:
        A harmonic oscillator truncated at N = ``n_levels`` Fock levels starts in vacuum and is driven
        for T = ``max_steps`` steps of SNAP + displacement (or of ECD with a qubit); the agent then
        earns a single-shot reward for the prepared state, as in the experiment of Sivak et al. (2022).
        The observation is only the step index, so a policy is an open-loop sequence of T actions.
        ``info["fidelity"]`` reports the exact fidelity at the last step for evaluation.

    Action Space:
        ``Box(-1, 1, (2 + S,), float32)`` with S = ``snap_phases`` for SNAP + displacement: α = α_max
        (a₀ + i a₁) and θ_k = π a_{2+k} (θ_k = 0 for k ≥ S). With ``control="ecd"``: ``Box(-1, 1, (4,))``,
        β = α_max (a₀ + i a₁), qubit rotation angles θ = π a₂, φ = π a₃. Actions outside the box are
        refused, never clipped.

    Observation Space:
        ``Box(0, 1, (T,), float32)``: the index of the next step, one-hot (all zeros after the last
        step). ``feedback=True`` appends the outcome (+1/−1, 0 before the first step) of a measurement
        made after every step, which collapses the state: the photon-number parity (+1 even) with
        SNAP + displacement, the qubit (+1 = |g⟩) with ECD.

    Rewards:
        Only at the last step (0 before), from single-shot measurements of the prepared state |ψ⟩,
        F = |⟨target|ψ⟩|²:

        * ``"fock"`` (needs ``target="fock"``): +1 if the measurement "is the oscillator in |n⟩?" (with
          ECD: the qubit in |g⟩ *and* n photons) succeeds, −1 otherwise; E[r] = 2F − 1.
        * ``"wigner"``: M = ``wigner_samples`` phase-space points x_j are drawn from an 81 × 81 grid
          with probability |W_t(x_j)| / Σ|W_t|, and at each a displaced-parity outcome s_j = ±1 is
          measured, P(+1) = (1 + π W_ψ(x_j)) / 2 (W in QuTiP's convention). The reward is
          (1/M) Σ_j sign(W_t(x_j)) s_j, whose expectation is π Σ W_t W_ψ / Σ |W_t| ≈ F / (2 ∫|W_t|).
        * ``"fidelity"``: F itself (an oracle, for evaluation).

    Starting State:
        The vacuum |0⟩ (with ECD, |g, 0⟩).

    Episode End:
        Never terminated; truncated after ``max_steps`` steps (the registered ``max_episode_steps``),
        whose last step carries the reward.

    Arguments:
        control (str): ``"snap_displacement"`` (default) or ``"ecd"`` (qubit ⊗ oscillator).
        n_levels (int): N, the Fock levels, at most 1000 (default 80; see Physics for why).
        max_steps (int): T, the number of control steps, at most 1000 (default 5). The old name
            ``n_steps`` is still accepted with a DeprecationWarning.
        snap_phases (int | None): S ≤ N, the SNAP phases (default 10; SNAP + displacement only).
        alpha_max (float | None): the scale of α (or β), > 0 (default 3.0 for SNAP + displacement,
            1.5 for ECD; see Physics).
        target (str | numpy.ndarray | qutip.Qobj): ``"fock"`` (with ``n``), ``"cat"`` (the even cat of
            amplitude 2, normalised in the truncated space) or a normalised ket of N amplitudes.
        n (int | None): the Fock level of ``target="fock"`` (default 1).
        reward_mode (str): ``"fock"`` (default), ``"wigner"`` or ``"fidelity"``.
        wigner_samples (int): M, the phase-space points per ``"wigner"`` reward, at most 10 000 (default 1).
        feedback (bool): measure after every step and observe the outcome (default False).
        render_mode (str | None): ``"rgb_array"`` draws the Wigner function of the current (reduced
            oscillator) state on x, y ∈ [−6, 6], red > 0, blue < 0.

    Physics:
        One step of SNAP + displacement applies

        .. math::

            U = D(\alpha)^\dagger\, \mathrm{SNAP}(\theta)\, D(\alpha), \qquad
            \mathrm{SNAP}(\theta) = \sum_k e^{i\theta_k} |k\rangle\langle k|,

        (paper Fig. 1). With ECD a step applies the qubit rotation
        R(θ, φ) = exp(−iθ/2 (cos φ σx + sin φ σy)) and then the echoed conditional displacement

        .. math::

            \mathrm{ECD}(\beta) = D(\beta/2)\, |e\rangle\langle g| + D(-\beta/2)\, |g\rangle\langle e|

        (Eickbusch et al. 2022); the target is then |g⟩ ⊗ |target⟩.

        *Simulation.* Exact kets in complex128 (:mod:`physrl.envs.kernels.oscillator`, :mod:`physrl.envs.kernels.wigner`): D(α) from the
        quadrature a + a† diagonalised once (no matrix exponential; equal to ``qutip.displace`` to
        1e-14), the Wigner function exact for the truncated ket from normalised Laguerre functions
        (equal to ``qutip.wigner`` to 1e-15), Born-sampled number, parity and qubit measurements from
        the env's seeded streams.

        *Why 80 levels.* At the corners |α| = α_max √2 of the action box, one step from vacuum already
        puts 3·10⁻³ of the population in the top two of 40 levels, where the truncated displacement is
        wrong. U − I maps any state into span{D(−α)|k⟩, k < S}, so T steps add at most
        (2T ‖P_top D(−α) Π_{<S}‖)² to the top-two population; this bound is largest at the corners
        and is 4·10⁻⁹ at N = 80 (56 at N = 40), so with the defaults the truncation is safe for every
        action (tested). ECD moves each qubit branch by up to |β|/2 ≤ α_max/√2 per step, so T steps
        reach amplitudes up to T α_max/√2: with α_max = 3 that is 10.6 (mean photon number 112, far
        above 80 levels), hence the ECD default α_max = 1.5 (amplitude ≤ 5.3; 4096 random sequences at
        the corners of the box stay below 1e-14, tested). ``info["top_population"]`` reports the largest
        top-two population after any step of the episode so far; an episode that ends above 10⁻⁶
        raises a RuntimeWarning (once per env), since its simulation is then not the oscillator's.

    References:
        V. V. Sivak, A. Eickbusch, H. Liu, B. Royer, I. Tsioutsios, M. H. Devoret, *Model-Free Quantum
        Control with Reinforcement Learning*, Phys. Rev. X 12, 011059 (2022).
        A. Eickbusch et al., *Fast universal control of an oscillator with weak dispersive coupling to a
        qubit*, Nat. Phys. 18, 1464 (2022).

    Version History:
        v0: SNAP + displacement and ECD control, Fock, Wigner and fidelity rewards; the horizon option
        renamed from ``n_steps`` to ``max_steps`` (the old name is deprecated).
    """

    core_class = OscillatorCore


class OscillatorStatePrepVectorEnv(VectorEnv):
    """Vector face of :class:`OscillatorStatePrepEnv` (same arguments, plus ``num_envs`` and ``device``)."""

    core_class = OscillatorCore

    @property
    def target(self) -> np.ndarray:
        """The target ket of N amplitudes (complex128), normalised (the oscillator's, without the qubit)."""
        return self.core.target.cpu().numpy().copy()

    @property
    def alpha_max(self) -> float:
        """The scale of α (or β) the actions are multiplied by (the option, or its default for the control)."""
        return self.core.alpha_max

    @property
    def shots(self) -> int:
        """The single-shot measurements behind the rewards so far, all sub-envs together (as an
        experiment would count them: one per episode with ``reward_mode="fock"``, ``wigner_samples``
        with ``"wigner"``, none with the ``"fidelity"`` oracle)."""
        return int(self.core.shots)

    def sequence_fidelity(self, actions: torch.Tensor) -> torch.Tensor:
        """F = |⟨target|ψ⟩|² (B,) of the states that action sequences ``actions`` (B, T, action size), in
        env units, prepare from the initial state, computed exactly and differentiably by the env's own
        kernels without touching its sub-envs (what gradient optimal control and Nelder–Mead are given)."""
        return self.core.fidelity(self.core.prepare(actions))

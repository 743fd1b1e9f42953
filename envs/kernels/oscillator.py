"""Batched kernels for a harmonic oscillator truncated at N Fock levels, optionally ⊗ a qubit.

Used by ``physrl/OscillatorStatePrep-v0`` (V. V. Sivak et al., *Model-Free Quantum Control with
Reinforcement Learning*, PRX 12, 011059 (2022)). States are kets with a leading batch dimension:
``(B, N)`` for the oscillator alone, ``(B, 2, N)`` for qubit ⊗ oscillator (qubit index 0 = |g⟩,
1 = |e⟩). Everything is torch, complex128 by default (complex64 is fine on a GPU), with no Python
loop over the batch. Every kernel is tested against QuTiP.

**Displacement.** D(α) = exp(α a† − α* a) of the *truncated* a, which is what ``qutip.displace``
computes. With α = r e^{iφ}, R(φ) = e^{iφ a†a} and T = diag(i^k) one has exactly, also in the
truncated space, α a† − α* a = R T (−i r X) T† R† with X = a + a† (real, symmetric, tridiagonal).
Diagonalising X = Q diag(ξ) Qᵀ once gives

    D(α) = P Q diag(e^{−i r ξ}) Qᵀ P*,   P = diag((i e^{iφ})^k),

so a batch of displacements costs two matrix-vector products per ket (with the real Q) and no
matrix exponential. A SNAP + displacement step D(α)† SNAP(θ) D(α) = P Q diag(e^{i r ξ}) Qᵀ SNAP(θ)
Q diag(e^{−i r ξ}) Qᵀ P* needs the phase factors only once (P commutes with SNAP).
The result equals ``qutip.displace`` to rounding everywhere. Both are the truncated operator: it
agrees with the true displacement only while the state stays away from the top levels, which the
environment reports (``top_population``).

The Wigner function of these kets is in :mod:`physrl.envs.kernels.wigner`.
"""

from __future__ import annotations

import math

import torch


class FockSpace:
    """The N-level oscillator on one device and dtype: the quadrature X = a + a† diagonalised once."""

    def __init__(self, n_levels: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex128) -> None:
        if dtype not in (torch.complex64, torch.complex128):
            raise TypeError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        self.n_levels = int(n_levels)
        self.device = torch.device(device)
        self.dtype = dtype
        self.real_dtype = torch.float32 if dtype == torch.complex64 else torch.float64
        root = torch.arange(1, self.n_levels, dtype=torch.float64).sqrt()
        quadrature = torch.diag(root, 1) + torch.diag(root, -1)
        xi, q = torch.linalg.eigh(quadrature)
        self.xi = xi.to(self.device, self.real_dtype)
        self.q = q.to(self.device, self.real_dtype)
        self.levels = torch.arange(self.n_levels, device=self.device, dtype=self.real_dtype)

    def _factors(self, psi: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The diagonals of P and diag(e^{−i r ξ}) for ``alpha`` (B,), shaped to multiply ``psi`` (B, ..., N)."""
        alpha = alpha.to(self.device, self.dtype)
        rotate = torch.polar(torch.ones_like(self.levels), self.levels * (alpha.angle()[:, None].to(self.real_dtype)
                                                                          + math.pi / 2))
        spread = torch.polar(torch.ones_like(self.xi), -alpha.abs()[:, None].to(self.real_dtype) * self.xi)
        shape = (psi.shape[0],) + (1,) * (psi.dim() - 2) + (self.n_levels,)
        return rotate.view(shape), spread.view(shape)

    def displace(self, psi: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """D(α_b) applied to the kets ``psi`` (B, ..., N) for complex ``alpha`` (B,)."""
        rotate, spread = self._factors(psi, alpha)
        out = real_matmul(psi * rotate.conj(), self.q)
        return real_matmul(out * spread, self.q.T) * rotate

    def displaced_snap(self, psi: torch.Tensor, alpha: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """D(α)† SNAP(θ) D(α) on kets (B, ..., N): the control step of Sivak et al. (Fig. 1 of PRX 12, 011059)."""
        rotate, spread = self._factors(psi, alpha)
        out = real_matmul(real_matmul(psi * rotate.conj(), self.q) * spread, self.q.T)
        out = real_matmul(snap(out, theta), self.q)
        return real_matmul(out * spread.conj(), self.q.T) * rotate

    def displacement_matrix(self, alpha: torch.Tensor) -> torch.Tensor:
        """The matrices D(α_b), shape (B, N, N) (for checks; the environment only applies them)."""
        eye = torch.eye(self.n_levels, dtype=self.dtype, device=self.device)
        columns = self.displace(eye.expand(len(alpha), -1, -1), alpha)
        return columns.transpose(1, 2)


def real_matmul(z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """z @ m for complex ``z`` and real ``m``: two real products, half the work of a complex one."""
    return torch.complex(z.real @ m, z.imag @ m)


def snap(psi: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """SNAP(θ) = Σ_k e^{iθ_k}|k⟩⟨k| (Heeres et al., PRL 115, 137002 (2015)) on kets (B, ..., N).

    ``theta`` (B, S) holds the first S phases; θ_k = 0 for k ≥ S.
    """
    count = theta.shape[1]
    factor = torch.polar(torch.ones_like(theta), theta).to(psi.dtype)
    out = psi.clone()
    out[..., :count] *= factor.view((psi.shape[0],) + (1,) * (psi.dim() - 2) + (count,))
    return out


def rotate_qubit(psi: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """R(θ, φ) = exp(−i θ/2 (cos φ σx + sin φ σy)) on the qubit of kets (B, 2, N)."""
    c = torch.cos(theta / 2).to(psi.dtype)[:, None]
    s = torch.sin(theta / 2).to(psi.dtype)[:, None]
    up = torch.polar(torch.ones_like(phi), phi).to(psi.dtype)[:, None]
    g, e = psi[:, 0], psi[:, 1]
    return torch.stack([c * g - 1j * s * up.conj() * e, c * e - 1j * s * up * g], dim=1)


def echoed_conditional_displacement(space: FockSpace, psi: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """ECD(β) = D(β/2)|e⟩⟨g| + D(−β/2)|g⟩⟨e| on kets (B, 2, N).

    The echoed conditional displacement of Eickbusch et al., Nat. Phys. 18, 1464 (2022), Eq. (1): a
    conditional displacement ±β/2 followed by the echo π pulse that swaps |g⟩ and |e⟩.
    """
    half = beta / 2
    moved = space.displace(torch.stack([psi[:, 1], psi[:, 0]], dim=1).reshape(-1, space.n_levels),
                           torch.stack([-half, half], dim=1).reshape(-1))
    return moved.view_as(psi)


def _collapse(psi: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Project the kets onto the levels where ``keep`` (B, ..., N) is true and renormalise."""
    kept = psi * keep
    norm = kept.abs().square().flatten(1).sum(1).sqrt().clamp_min(torch.finfo(norm_dtype(psi)).tiny)
    return kept / norm.view((-1,) + (1,) * (psi.dim() - 1))


def norm_dtype(psi: torch.Tensor) -> torch.dtype:
    """The real dtype matching the complex dtype of ``psi``."""
    return torch.float32 if psi.dtype == torch.complex64 else torch.float64


def population(psi: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Σ_k |ψ_k|² over the Fock ``levels`` (a bool mask (N,) or (B, N)), summed over the qubit: (B,)."""
    weights = psi.abs().square()
    if psi.dim() == 3:
        weights = weights.sum(1)
    return (weights * levels).sum(-1)


def _measure_levels(psi: torch.Tensor, levels: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projective measurement "are the Fock levels in ``levels`` (bool (N,)) occupied?": the outcome is
    true with Born probability Σ_{k ∈ levels} |ψ_k|² (true iff u < p), kets projected and renormalised."""
    outcome = uniform < population(psi, levels)
    keep = outcome[:, None] == levels[None, :]
    if psi.dim() == 3:
        keep = keep[:, None, :]
    return outcome, _collapse(psi, keep)


def measure_number(psi: torch.Tensor, n: int, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Photon-number-selective measurement "is the oscillator in |n⟩?" with Born sampling.

    Returns (outcome, post-measurement kets): outcome is true with probability p_n = Σ |ψ_{·,n}|²
    (``uniform`` (B,) in [0, 1), true iff u < p_n), and the kets are projected and renormalised.
    """
    levels = torch.zeros(psi.shape[-1], dtype=torch.bool, device=psi.device)
    levels[n] = True
    return _measure_levels(psi, levels, uniform)


def measure_parity(psi: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Photon-number parity measurement (Sun et al., Nature 511, 444 (2014)) with Born sampling.

    Returns (even, post-measurement kets): even is true with probability Σ_{k even} |ψ_k|².
    """
    return _measure_levels(psi, torch.arange(psi.shape[-1], device=psi.device) % 2 == 0, uniform)


def measure_qubit(psi: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """σz measurement of the qubit of kets (B, 2, N): (excited, post-measurement kets), Born-sampled."""
    excited = uniform >= psi[:, 0].abs().square().sum(-1)
    keep = torch.stack([~excited, excited], dim=1)[:, :, None]
    return excited, _collapse(psi, keep)

"""Batched n-qubit density-matrix kernels: gates, noise and Z measurements (complex128 on the CPU by default).

States are tensors ``(..., d, d)`` with ``d = 2**n``; any leading dimensions (the batch, and the
axis of the four channel matrices ρ₀, δρx, δρy, δρz of Fösel et al., PRX 8, 031084 (2018), §II)
are carried along. Basis index ``a`` has qubit 0 as its most significant bit, as in
``qutip.tensor(q0, q1, ...)``; bit value 0 is |0⟩ (Z = +1).

Gates that permute the basis (X, CNOT) are index gathers; one-qubit unitaries (H) act on a reshaped
axis. Noise, once per time step on every qubit, with ``decay = 1 − 2p = e^(−2Δt/T_dec)``:

* ``bit_flip``: X on each qubit with probability p (independently), one index flip per qubit.
* ``dephase``: Z on each qubit with probability p (independently): ρ_ab ← decay^popcount(a⊕b) ρ_ab.
* ``collective_dephase`` (the "correlated" noise): every qubit feels the same fluctuating field
  along z, i.e. a random phase e^(−iφK) with K = Σⱼ |1⟩⟨1|ⱼ and Gaussian φ (variance 4Δt/T_dec),
  so ρ_ab ← decay^((k_a − k_b)²), k = number of 1s. One qubit alone dephases at T_dec, while states
  with equal k (e.g. |01⟩, |10⟩) form a decoherence-free subspace.

The same channels on block-diagonal matrices are in :mod:`physrl.envs.kernels.qubit_pairs`; the
recoverable quantum information in :mod:`physrl.envs.kernels.recoverable_information`.
"""

from __future__ import annotations

import functools
import math

import torch

HADAMARD = ((1 / math.sqrt(2), 1 / math.sqrt(2)), (1 / math.sqrt(2), -1 / math.sqrt(2)))


def _bit(index: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """Value of qubit ``q`` in basis index ``index`` of an ``n``-qubit register."""
    return (index >> (n - 1 - q)) & 1


@functools.lru_cache(maxsize=None)
def x_permutation(n: int, q: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Basis permutation of X on qubit ``q``: a → a ⊕ e_q."""
    index = torch.arange(2**n, device=device)
    return index ^ (1 << (n - 1 - q))


@functools.lru_cache(maxsize=None)
def cnot_permutation(n: int, control: int, target: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Basis permutation of CNOT(control → target): flip the target bit where the control bit is 1."""
    index = torch.arange(2**n, device=device)
    return index ^ (_bit(index, n, control) << (n - 1 - target))


def pauli_labels(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The labels i_q (4ⁿ, n) of the Pauli strings σ_{i₀} ⊗ … ⊗ σ_{iₙ₋₁} (σ₀..₃ = 1, X, Y, Z) in the order of
    :func:`pauli_basis`: string index Σ_q i_q 4^(n−1−q) (qubit 0 most significant)."""
    index = torch.arange(4**n, device=device)[:, None]
    return index // 4 ** torch.arange(n - 1, -1, -1, device=device) % 4


@functools.lru_cache(maxsize=None)
def pauli_basis(n: int, device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4ⁿ Pauli strings as matrices (4ⁿ, d, d) complex128, in the order of :func:`pauli_labels`, and
    their labels (4ⁿ, n)."""
    sigma = torch.tensor([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
                         dtype=torch.complex128, device=device)
    strings = sigma
    for _ in range(n - 1):
        strings = torch.einsum("axy,buv->abxuyv", strings, sigma).reshape(len(strings) * 4, *(2 * strings.shape[-1],) * 2)
    return strings, pauli_labels(n, device)


def pauli_coefficients(rho: torch.Tensor, n: int) -> torch.Tensor:
    """Tr(P ρ) for every Pauli string P of :func:`pauli_basis` (..., 4ⁿ), real (ρ Hermitian): ρ = Σ_P Tr(Pρ) P / 2ⁿ."""
    strings, _ = pauli_basis(n, rho.device)
    return torch.einsum("pxy,...yx->...p", strings, rho).real


def permute(rho: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """U ρ U† for the permutation unitary U|perm[a]⟩ = |a⟩ (an involution for X and CNOT).

    ``perm`` is ``(d,)`` for one gate on every state, or ``(B, d)`` for one gate per batch element
    of ``rho`` shaped ``(B, ..., d, d)``.
    """
    d = rho.shape[-1]
    if perm.dim() == 1:
        return rho[..., perm, :][..., perm]
    shape = (perm.shape[0],) + (1,) * (rho.dim() - 3)
    rows = perm.view(*shape, d, 1).expand(rho.shape)
    cols = perm.view(*shape, 1, d).expand(rho.shape)
    return rho.gather(-2, rows).gather(-1, cols)


def permute_rows(matrix: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """U M for the permutation unitary of :func:`permute`, one gate per batch element (``perm`` (B, d),
    ``matrix`` (B, d, d))."""
    return matrix.gather(-2, perm[:, :, None].expand(matrix.shape))


def one_qubit_left(matrix: torch.Tensor, unitary: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """U_q M for a 2×2 ``unitary`` acting on qubit ``q`` (left multiplication only)."""
    d, left, right = 2**n, 2**q, 2 ** (n - 1 - q)
    batch = matrix.shape[:-2]
    out = torch.einsum("ij,...ajbc->...aibc", unitary.to(matrix.dtype), matrix.reshape(*batch, left, 2, right, d))
    return out.reshape(matrix.shape)


def apply_one_qubit(rho: torch.Tensor, unitary: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """U_q ρ U_q† for a 2×2 ``unitary`` acting on qubit ``q``."""
    return one_qubit_left(one_qubit_left(rho, unitary, n, q).mH, unitary, n, q).mH.resolve_conj()


def hadamard(rho: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """Hadamard on qubit ``q``."""
    return apply_one_qubit(rho, hadamard_matrix(rho.device), n, q)


def hadamard_matrix(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 2×2 Hadamard (float64)."""
    return torch.tensor(HADAMARD, dtype=torch.float64, device=device)


def _popcount(x: torch.Tensor, n: int) -> torch.Tensor:
    return sum((x >> k) & 1 for k in range(n))


def dephasing_factor(n: int, decay: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """F_ab = decay^popcount(a⊕b): independent Z flips, probability (1 − decay)/2 on every qubit."""
    index = torch.arange(2**n, device=device)
    return torch.tensor(decay, dtype=torch.float64, device=device) ** _popcount(index[:, None] ^ index[None, :], n)


def collective_dephasing_factor(n: int, decay: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """F_ab = decay^((k_a − k_b)²), k = number of 1s: a common Gaussian phase field on all qubits."""
    ones = _popcount(torch.arange(2**n, device=device), n)
    return torch.tensor(decay, dtype=torch.float64, device=device) ** ((ones[:, None] - ones[None, :]) ** 2)


def dephase(rho: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Elementwise dephasing channel ρ_ab ← F_ab ρ_ab (F from :func:`dephasing_factor` or the collective one)."""
    return torch.view_as_complex(torch.view_as_real(rho) * factor.unsqueeze(-1))


def bit_flip(rho: torch.Tensor, probability: float, n: int) -> torch.Tensor:
    """Independent X flips on every qubit: ρ ← (1 − p) ρ + p X_q ρ X_q for q = 0 … n−1.

    X_q ρ X_q exchanges the entries (a, b) ↔ (a⊕e_q, b⊕e_q): each flip mixes the quarters of the
    matrix with bit q of row and column equal to (0, 0) ↔ (1, 1) and (0, 1) ↔ (1, 0), in place on a copy.
    """
    out = rho.clone()
    real = torch.view_as_real(out)
    for q in range(n):
        left, right = 2**q, 2 ** (n - 1 - q)
        view = real.view(*rho.shape[:-2], left, 2, right, left, 2, right, 2)
        for row, col in ((0, 0), (0, 1)):
            first = view.select(-3, col).select(-5, row)
            second = view.select(-3, 1 - col).select(-5, 1 - row)
            change = (second - first).mul_(probability)
            first.add_(change)
            second.sub_(change)
    return out


def z_probability(rho0: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """Probability Tr(|0⟩⟨0|_q ρ₀) of outcome 0 for a Z measurement of qubit ``q`` (real, batched)."""
    diagonal = torch.diagonal(rho0, dim1=-2, dim2=-1).real
    zero = _bit(torch.arange(2**n, device=rho0.device), n, q) == 0
    return diagonal[..., zero].sum(-1)


@functools.lru_cache(maxsize=None)
def outcome_indices(n: int, q: int, outcome: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Basis indices whose qubit ``q`` has value ``outcome`` (the support of the projector Π_outcome)."""
    index = torch.arange(2**n, device=device)
    return index[_bit(index, n, q) == outcome]


def project(rho: torch.Tensor, n: int, q: int, outcome: torch.Tensor | int) -> torch.Tensor:
    """Π_m ρ Π_m (unnormalised) for a Z measurement of qubit ``q`` with outcome(s) ``m``.

    ``outcome`` is an int, or a tensor ``(B,)`` with one outcome per batch element.
    """
    index = torch.arange(2**n, device=rho.device)
    keep = _bit(index, n, q) == torch.as_tensor(outcome, device=rho.device).reshape(-1, *(1,) * (rho.dim() - 3), 1)
    if not torch.is_tensor(outcome):
        keep = keep.reshape(2**n)
    mask = keep.unsqueeze(-1) & keep.unsqueeze(-2)
    return rho * mask

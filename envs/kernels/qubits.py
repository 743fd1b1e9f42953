"""Batched n-qubit density-matrix kernels (complex128 on the CPU by default).

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

The recoverable quantum information R_Q = min over unit n of ‖Σᵢ nᵢ δρᵢ‖₁ (Fösel et al., Eq. (4))
is :func:`recoverable_information`.
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


def apply_one_qubit(rho: torch.Tensor, unitary: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """U_q ρ U_q† for a 2×2 ``unitary`` acting on qubit ``q``."""
    d, left, right = 2**n, 2**q, 2 ** (n - 1 - q)
    batch = rho.shape[:-2]
    u = unitary.to(rho.dtype)
    out = torch.einsum("ij,...ajbc->...aibc", u, rho.reshape(*batch, left, 2, right, d))
    out = torch.einsum("...caib,ji->...cajb", out.reshape(*batch, d, left, 2, right), u.conj())
    return out.reshape(rho.shape)


def hadamard(rho: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """Hadamard on qubit ``q``."""
    return apply_one_qubit(rho, torch.tensor(HADAMARD, dtype=torch.float64, device=rho.device), n, q)


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


@functools.lru_cache(maxsize=None)
def _flip_indices(n: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """For each qubit q, the flattened index map ab → (a⊕e_q)(b⊕e_q) of X_q ρ X_q."""
    index = torch.arange(2**n, device=device)
    out = []
    for q in range(n):
        flipped = index ^ (1 << (n - 1 - q))
        out.append((flipped[:, None] * 2**n + flipped[None, :]).flatten())
    return tuple(out)


def bit_flip(rho: torch.Tensor, probability: float, n: int) -> torch.Tensor:
    """Independent X flips on every qubit: ρ ← (1 − p) ρ + p X_q ρ X_q for q = 0 … n−1."""
    flat = torch.view_as_real(rho).flatten(-3, -2)  # (..., d², 2), real arithmetic is faster
    for index in _flip_indices(n, rho.device):
        flat = flat.mul(1 - probability).add_(flat.index_select(-2, index), alpha=probability)
    return torch.view_as_complex(flat.reshape(*rho.shape, 2))


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


# ---------------------------------------------------------------- recoverable quantum information

def fibonacci_half_sphere(points: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``points`` nearly uniform unit vectors (points, 3) with z > 0 (a Fibonacci lattice)."""
    k = torch.arange(points, dtype=torch.float64, device=device)
    z = 1 - (k + 0.5) / points
    phi = k * math.pi * (3 - math.sqrt(5))
    r = torch.sqrt(1 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)


def trace_norm_along(delta: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """‖Σᵢ nᵢ δρᵢ‖₁ for ``delta`` (B, 3, d, d) and directions (B, 3) or (B, K, 3) → (B,) or (B, K)."""
    single = direction.dim() == 2
    n = direction[:, None] if single else direction
    a = torch.einsum("bki,bixy->bkxy", n.to(delta.dtype), delta)
    value = torch.linalg.eigvalsh(a).abs().sum(-1)
    return value[:, 0] if single else value


def _newton_terms(delta: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f(n) = ‖A(n)‖₁, its gradient and Hessian in R³ from one eigendecomposition of A(n) = Σ nᵢ δρᵢ.

    With A = Σ_k λ_k |k⟩⟨k| and s_k = sign λ_k: ∂ᵢf = Σ_k s_k ⟨k|δρᵢ|k⟩ and
    ∂ᵢ∂ⱼf = Σ_{k,l} (s_k − s_l)/(λ_k − λ_l) Re(⟨k|δρᵢ|l⟩⟨l|δρⱼ|k⟩) (first-order perturbation theory).
    Eigenvalues below 1e-12 ‖A‖ count as zero (s = 0).
    """
    a = torch.einsum("bi,bixy->bxy", n.to(delta.dtype), delta)
    lam, vec = torch.linalg.eigh(a)
    scale = lam.abs().amax(-1, keepdim=True)
    sign = torch.where(lam.abs() > 1e-12 * scale, torch.sign(lam), torch.zeros_like(lam))
    f = lam.abs().sum(-1)
    m = vec.mH.unsqueeze(1) @ delta @ vec.unsqueeze(1)  # (B, 3, d, d) in the eigenbasis
    grad = (torch.diagonal(m, dim1=-2, dim2=-1).real * sign[:, None]).sum(-1)
    ds = sign[:, :, None] - sign[:, None, :]
    dl = lam[:, :, None] - lam[:, None, :]
    weight = torch.where(ds != 0, ds / torch.where(ds != 0, dl, torch.ones_like(dl)), torch.zeros_like(dl))
    parts = torch.view_as_real(m).flatten(2)  # (B, 3, 2d²): Re and Im of ⟨k|δρᵢ|l⟩
    weighted = parts * weight.unsqueeze(-1).expand(-1, -1, -1, 2).flatten(1)[:, None]
    return f, grad, weighted @ parts.mT


def _tangent_basis(n: torch.Tensor) -> torch.Tensor:
    """Two orthonormal vectors (B, 3, 2) perpendicular to the unit vectors ``n`` (B, 3)."""
    axis = torch.zeros_like(n).scatter_(1, n.abs().argmin(1, keepdim=True), 1.0)
    e1 = torch.linalg.cross(n, axis)
    e1 = e1 / e1.norm(dim=1, keepdim=True)
    return torch.stack([e1, torch.linalg.cross(n, e1)], dim=2)


#: Batch chunk size of :func:`recoverable_information`.
CHUNK = 256


def recoverable_information(delta: torch.Tensor, start: torch.Tensor | None = None, iterations: int = 8,
                            grid: int = 48, refine: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """R_Q = min over unit n of ‖Σᵢ nᵢ δρᵢ‖₁ (Fösel et al., PRX 8, 031084, Eq. (4)), batched.

    ``delta`` is (B, 3, d, d) Hermitian. Returns (R_Q (B,) float64, the minimising unit n (B, 3)).

    Start points: the minimiser of the Frobenius norm (smallest eigenvector of the Gram matrix
    Re Tr δρᵢδρⱼ), plus either ``start`` (B, 3) (a warm start, e.g. the previous step's minimiser;
    only the better of the two is refined) or ``grid`` directions of a Fibonacci half sphere (f is
    even), of which the ``refine`` best are refined. Each is refined by ``iterations`` Riemannian
    Newton steps on the sphere — f is 1-homogeneous, so its Hessian on the sphere is P H P − f P —
    inside a trust region that shrinks whenever a step fails to lower f. The value returned is f at
    a point actually evaluated (an upper bound of the exact minimum). Large batches are processed in
    chunks of ``CHUNK`` (the small per-state matrices then stay in cache).
    """
    batch = delta.shape[0]
    if batch > CHUNK:
        starts = [None] * len(range(0, batch, CHUNK)) if start is None else start.split(CHUNK)
        parts = [recoverable_information(d, s, iterations, grid, refine) for d, s in zip(delta.split(CHUNK), starts)]
        return torch.cat([v for v, _ in parts]), torch.cat([n for _, n in parts])
    real = delta.real.to(torch.float64)
    imag = delta.imag.to(torch.float64) if delta.is_complex() else torch.zeros_like(real)
    gram = torch.einsum("bixy,bjxy->bij", real, real) + torch.einsum("bixy,bjxy->bij", imag, imag)
    candidates = [torch.linalg.eigh(gram)[1][:, :, 0:1].mT]
    if start is not None:
        candidates.append((start.to(torch.float64) / start.norm(dim=1, keepdim=True).clamp_min(1e-300))[:, None])
        refine = 1
    else:
        candidates.append(fibonacci_half_sphere(grid, delta.device).expand(batch, -1, -1))
    directions = torch.cat(candidates, dim=1)
    values = trace_norm_along(delta, directions)
    best = values.topk(min(refine, directions.shape[1]), dim=1, largest=False).indices
    n = directions.gather(1, best[:, :, None].expand(-1, -1, 3)).flatten(0, 1)
    many = delta.repeat_interleave(best.shape[1], dim=0)
    value, n = _newton(many, n, iterations)
    value, pick = value.view(batch, -1).min(1)
    return value, n.view(batch, -1, 3)[torch.arange(batch, device=delta.device), pick]


def _newton(delta: torch.Tensor, n: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trust-region Riemannian Newton descent of ‖Σᵢ nᵢ δρᵢ‖₁ on the unit sphere from ``n`` (B, 3)."""
    f, grad, hess = _newton_terms(delta, n)
    radius = torch.full_like(f, 0.5)
    eye = torch.eye(2, dtype=torch.float64, device=delta.device)
    for _ in range(iterations):
        basis = _tangent_basis(n)
        g = (basis * grad[:, :, None]).sum(1)
        h = basis.mT @ hess @ basis - f[:, None, None] * eye
        shift = (-torch.linalg.eigvalsh(h)[:, 0]).clamp_min(0.0) + 1e-10 * f.clamp_min(1e-12)
        step = -torch.linalg.solve(h + shift[:, None, None] * eye, g.unsqueeze(-1)).squeeze(-1)
        step = step * (radius / step.norm(dim=1).clamp_min(1e-300)).clamp(max=1.0)[:, None]
        length = step.norm(dim=1)
        trial = n + (basis @ step.unsqueeze(-1)).squeeze(-1)
        trial = trial / trial.norm(dim=1, keepdim=True)
        f_trial, grad_trial, hess_trial = _newton_terms(delta, trial)
        better = f_trial < f
        n = torch.where(better[:, None], trial, n)
        f = torch.where(better, f_trial, f)
        grad = torch.where(better[:, None], grad_trial, grad)
        hess = torch.where(better[:, None, None], hess_trial, hess)
        radius = torch.where(better, torch.maximum(2 * length, radius).clamp(max=0.5), length / 4)
    return f, n


def brute_force_recoverable_information(delta: torch.Tensor, points: int = 20000) -> torch.Tensor:
    """min of ‖Σᵢ nᵢ δρᵢ‖₁ over a Fibonacci grid of ``points`` directions on the half sphere (for tests)."""
    grid = fibonacci_half_sphere(points, delta.device)
    out = [trace_norm_along(delta, chunk.expand(delta.shape[0], -1, -1)).amin(1) for chunk in grid.split(2000)]
    return torch.stack(out, 1).amin(1)

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

**Pair form.** X, CNOT and the bit flips are affine permutations of the basis over GF(2)ⁿ, dephasing
rescales entries and Z measurements mask them, so matrices supported on the 2×2 blocks of the pairs
{a, a⊕v} (one v per batch element) stay so, with v moved by the gates (:func:`pair_permutation`).
The channel of a logical qubit stored in qubit 0 starts like that (v = e₀). :func:`to_pairs` keeps
the 2ⁿ⁻¹ blocks as Pauli coordinates; :func:`recoverable_information_pairs` then needs no
eigendecomposition (a 2×2 block ½(c₀ + c·σ) has trace norm max(|c₀|, ‖c‖)).
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


# ---------------------------------------------------------------- pair form

def _pair_slot(a: int, v: int) -> tuple[int, bool]:
    """Slot of basis index ``a`` among the pairs {r, r⊕v} (representative r: bit top(v) clear) and
    whether ``a`` is the partner r⊕v."""
    top = v.bit_length() - 1
    partner = bool((a >> top) & 1)
    rep = a ^ v if partner else a
    return ((rep >> (top + 1)) << top) | (rep & ((1 << top) - 1)), partner


@functools.lru_cache(maxsize=None)
def pair_representatives(n: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """(d, d/2): row v ≥ 1 lists, ascending, the representatives r (bit top(v) clear) of the pairs {r, r⊕v}."""
    index = torch.arange(2**n)
    rows = [index[: 2 ** (n - 1)]]  # v = 0 never occurs; a placeholder
    rows += [index[(index & (1 << (v.bit_length() - 1))) == 0] for v in range(1, 2**n)]
    return torch.stack(rows).to(device)


@functools.lru_cache(maxsize=None)
def pair_slots(n: int, device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    """(d, d) tables indexed by [v, a]: the slot of the pair {r, r⊕v} that holds basis index a, and
    whether a is that pair's partner r⊕v (row v = 0 is a placeholder)."""
    d = 2**n
    slots = [[_pair_slot(a, v) if v else (0, False) for a in range(d)] for v in range(d)]
    slot = torch.tensor([[k for k, _ in row] for row in slots], device=device)
    partner = torch.tensor([[p for _, p in row] for row in slots], device=device)
    return slot, partner


@functools.lru_cache(maxsize=None)
def pair_permutation(n: int, perm: tuple[int, ...],
                     device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How an affine basis permutation (X, CNOT: ρ'_ab = ρ_{perm[a] perm[b]}) acts on the pair form.

    Pairs {a, a⊕v} go to pairs {a', a'⊕v'} with v' = perm⁻¹(v) ⊕ perm⁻¹(0). Returns, indexed by the
    old v: v' (d,), the old slot feeding each new slot (d, d/2), and the signs (d, 4, d/2) of the
    Pauli coordinates (c₀, c_x, c_y, c_z) on arrival: a block whose new representative is the old
    partner is conjugated by X, which flips c_y and c_z.
    """
    d = 2**n
    inverse = [0] * d
    for a, p in enumerate(perm):
        inverse[p] = a
    reps = pair_representatives(n).tolist()
    shift, source = [0] * d, [[0] * (d // 2) for _ in range(d)]
    sign = torch.ones(d, 4, d // 2, dtype=torch.float64)
    for v in range(1, d):
        shift[v] = inverse[v] ^ inverse[0]
        for k, a in enumerate(reps[shift[v]]):
            source[v][k], swapped = _pair_slot(perm[a], v)
            if swapped:
                sign[v, 2:, k] = -1.0
    return torch.tensor(shift, device=device), torch.tensor(source, device=device), sign.to(device)


def to_pairs(rho: torch.Tensor, shift: torch.Tensor, n: int) -> torch.Tensor:
    """Pair form (B, M, 4, d/2) of Hermitian matrices ρ (B, M, d, d) that vanish outside the 2×2 blocks {r, r⊕v}.

    Block k on (r_k, r_k ⊕ v), v = ``shift`` (B,), written in Pauli coordinates
    ½(c₀ 1 + c_x X + c_y Y + c_z Z): c₀ = α + γ, c_x = 2 Re β, c_y = −2 Im β, c_z = α − γ with
    α = ρ[r, r], γ = ρ[r⊕v, r⊕v], β = ρ[r, r⊕v]. Its trace is c₀, its trace norm max(|c₀|, ‖c‖).
    """
    d = 2**n
    rep = pair_representatives(n, rho.device)[shift]
    partner = rep ^ shift[:, None]
    index = torch.cat([rep * (d + 1), partner * (d + 1), rep * d + partner], 1)  # (B, 3h)
    flat = torch.view_as_real(rho).flatten(-3, -2)  # (B, M, d², 2)
    picked = flat.gather(2, index[:, None, :, None].expand(-1, rho.shape[1], -1, 2))
    alpha, gamma, beta = picked.chunk(3, dim=2)
    return torch.stack([alpha[..., 0] + gamma[..., 0], 2 * beta[..., 0], -2 * beta[..., 1],
                        alpha[..., 0] - gamma[..., 0]], 2)


def from_pairs(pairs: torch.Tensor, shift: torch.Tensor, n: int) -> torch.Tensor:
    """The dense Hermitian matrices (B, M, d, d) complex128 of a pair form (inverse of :func:`to_pairs`)."""
    d = 2**n
    batch, mats = pairs.shape[:2]
    rep = pair_representatives(n, pairs.device)[shift]
    partner = rep ^ shift[:, None]
    c0, cx, cy, cz = pairs.unbind(2)
    zero = torch.zeros_like(c0)
    index = torch.cat([rep * (d + 1), partner * (d + 1), rep * d + partner, partner * d + rep], 1)
    values = torch.stack([torch.cat([(c0 + cz) / 2, (c0 - cz) / 2, cx / 2, cx / 2], -1),
                          torch.cat([zero, zero, -cy / 2, cy / 2], -1)], -1)
    out = torch.zeros(batch, mats, d * d, 2, dtype=pairs.dtype, device=pairs.device)
    out.scatter_(2, index[:, None, :, None].expand(-1, mats, -1, 2), values)
    return torch.view_as_complex(out).view(batch, mats, d, d)


def permute_pairs(pairs: torch.Tensor, source: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Move the blocks (B, M, 4, h) to new slots: slot k takes old slot ``source`` (B, h), times ``sign`` (B, 4, h)."""
    return pairs.gather(-1, source[:, None, None, :].expand_as(pairs)) * sign[:, None]


def pair_bits(shift: torch.Tensor, n: int, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bit ``q`` (B,) of every pair's representative and of its partner, each (B, h)."""
    rep = pair_representatives(n, shift.device)[shift]
    bit = (n - 1 - q)[:, None]
    return (rep >> bit) & 1, ((rep ^ shift[:, None]) >> bit) & 1


def project_pairs(pairs: torch.Tensor, keep_rep: torch.Tensor, keep_partner: torch.Tensor) -> torch.Tensor:
    """Π ρ Π in pair form for a projector Π diagonal in the basis that keeps the representatives where
    ``keep_rep`` and the partners where ``keep_partner`` (both (B, h) bool): α, γ and β = ρ[r, r⊕v]
    survive where their row and column do (a projector that cuts a pair reveals the logical state)."""
    c0, cx, cy, cz = pairs.unbind(2)
    rep, partner = keep_rep[:, None], keep_partner[:, None]
    alpha, gamma, both = (c0 + cz) / 2 * rep, (c0 - cz) / 2 * partner, rep & partner
    return torch.stack([alpha + gamma, cx * both, cy * both, alpha - gamma], 2)


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


class _DenseNorm:
    """f(n) = ‖Σᵢ nᵢ δρᵢ‖₁ for dense Hermitian δρᵢ (B, 3, d, d), through eigendecompositions."""

    def __init__(self, delta: torch.Tensor) -> None:
        self.delta = delta

    def along(self, directions: torch.Tensor) -> torch.Tensor:
        return trace_norm_along(self.delta, directions)

    def gram(self) -> torch.Tensor:
        """Re Tr δρᵢδρⱼ (B, 3, 3): ‖A(n)‖₂² = nᵀ (gram) n."""
        real = torch.view_as_real(self.delta).flatten(2) if self.delta.is_complex() else self.delta.flatten(2)
        return real @ real.mT

    def repeat(self, times: int) -> "_DenseNorm":
        return _DenseNorm(self.delta.repeat_interleave(times, dim=0))

    def select(self, index: torch.Tensor) -> "_DenseNorm":
        return _DenseNorm(self.delta[index])

    def terms(self, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f(n), its gradient and Hessian in R³ from one eigendecomposition of A(n) = Σ nᵢ δρᵢ.

        With A = Σ_k λ_k |k⟩⟨k| and s_k = sign λ_k: ∂ᵢf = Σ_k s_k ⟨k|δρᵢ|k⟩ and
        ∂ᵢ∂ⱼf = Σ_{k,l} (s_k − s_l)/(λ_k − λ_l) Re(⟨k|δρᵢ|l⟩⟨l|δρⱼ|k⟩) (first-order perturbation theory).
        Eigenvalues below 1e-12 ‖A‖ count as zero (s = 0).
        """
        delta = self.delta
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


class _PairNorm:
    """f(n) = ‖Σᵢ nᵢ δρᵢ‖₁ for block-diagonal δρᵢ in pair form, in closed form.

    A 2×2 Hermitian block ½(c₀ 1 + c·σ) has eigenvalues (c₀ ± ‖c‖)/2, so its trace norm is
    max(|c₀|, ‖c‖). With the coordinates linear in n: f(n) = Σ_k max(|t_k·n|, ‖W_k n‖), t_k = c₀ of
    block k of (δρx, δρy, δρz), W_k its 3×3 matrix of c. Stored as t (B, 3, h) and G_k = W_kᵀ W_k
    (B, 3, 3, h), the pair index last. No eigendecomposition is needed.
    """

    def __init__(self, t: torch.Tensor, g: torch.Tensor) -> None:
        self.t, self.g = t, g

    @classmethod
    def of(cls, blocks: torch.Tensor) -> "_PairNorm":
        """From the pair form (B, 3, 4, h) of δρx, δρy, δρz (:func:`to_pairs`)."""
        w = blocks[:, :, 1:]  # (B, i, c, h)
        return cls(blocks[:, :, 0], (w[:, :, None] * w[:, None]).sum(3))

    def along(self, directions: torch.Tensor) -> torch.Tensor:
        single = directions.dim() == 2
        n = directions[:, None] if single else directions
        trace = (n @ self.t).abs()  # (B, K, h)
        spread = ((n[..., :, None] * n[..., None, :]).flatten(-2) @ self.g.flatten(1, 2)).clamp_min(0).sqrt()
        value = torch.maximum(trace, spread).sum(-1)
        return value[:, 0] if single else value

    def gram(self) -> torch.Tensor:
        """‖A(n)‖₂² = Σ_k ((t_k·n)² + ‖W_k n‖²)/2 = nᵀ (gram) n (Frobenius norm)."""
        return 0.5 * (self.t @ self.t.mT + self.g.sum(-1))

    def repeat(self, times: int) -> "_PairNorm":
        return _PairNorm(self.t.repeat_interleave(times, dim=0), self.g.repeat_interleave(times, dim=0))

    def select(self, index: torch.Tensor) -> "_PairNorm":
        return _PairNorm(self.t[index], self.g[index])

    def terms(self, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f(n), gradient and Hessian: ∇‖Wn‖ = u = Gn/‖Wn‖, ∇²‖Wn‖ = (G − u uᵀ)/‖Wn‖; |t·n| is linear."""
        trace = (self.t * n[:, :, None]).sum(1)  # (B, h)
        gn = (self.g * n[:, None, :, None]).sum(2)  # (B, 3, h)
        spread = (gn * n[:, :, None]).sum(1).clamp_min(0).sqrt()
        by_trace = trace.abs() >= spread
        f = torch.where(by_trace, trace.abs(), spread).sum(1)
        inverse = torch.where(by_trace | (spread <= 0), 0.0, 1 / spread.clamp_min(1e-300))
        u = gn * inverse[:, None]
        grad = (self.t * torch.where(by_trace, trace.sign(), 0.0)[:, None]).sum(-1) + u.sum(-1)
        hess = (self.g.flatten(1, 2) @ inverse[:, :, None]).view(-1, 3, 3) - (u * inverse[:, None]) @ u.mT
        return f, grad, hess


def _tangent_basis(n: torch.Tensor) -> torch.Tensor:
    """Two orthonormal vectors (B, 3, 2) perpendicular to the unit vectors ``n`` (B, 3)."""
    axis = torch.zeros_like(n).scatter_(1, n.abs().argmin(1, keepdim=True), 1.0)
    e1 = torch.linalg.cross(n, axis)
    e1 = e1 / e1.norm(dim=1, keepdim=True)
    return torch.stack([e1, torch.linalg.cross(n, e1)], dim=2)


#: Batch chunk size of :func:`recoverable_information` (dense matrices).
CHUNK = 256


def recoverable_information(delta: torch.Tensor, start: torch.Tensor | None = None, iterations: int = 8,
                            grid: int = 48, refine: int = 4, bracket: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """R_Q = min over unit n of ‖Σᵢ nᵢ δρᵢ‖₁ (Fösel et al., PRX 8, 031084, Eq. (4)), batched.

    ``delta`` is (B, 3, d, d) Hermitian. Returns (R_Q (B,) float64, the minimising unit n (B, 3)).

    Start points: the minimiser of the Frobenius norm (smallest eigenvector of the Gram matrix
    Re Tr δρᵢδρⱼ), plus either ``start`` (B, 3) (a warm start, e.g. the previous step's minimiser;
    only the better of the two is refined, then bracketed by the grid, see :func:`_minimise`) or
    ``grid`` directions of a Fibonacci half sphere (f is even), of which the ``refine`` best are
    refined. Each is refined by ``iterations`` Riemannian
    Newton steps on the sphere — f is 1-homogeneous, so its Hessian on the sphere is P H P − f P —
    inside a trust region that shrinks whenever a step fails to lower f. The value returned is f at
    a point actually evaluated (an upper bound of the exact minimum). Large batches are processed in
    chunks of ``CHUNK`` (the small per-state matrices then stay in cache).
    """
    batch = delta.shape[0]
    if batch > CHUNK:
        starts = [None] * len(range(0, batch, CHUNK)) if start is None else start.split(CHUNK)
        parts = [recoverable_information(d, s, iterations, grid, refine, bracket)
                 for d, s in zip(delta.split(CHUNK), starts)]
        return torch.cat([v for v, _ in parts]), torch.cat([n for _, n in parts])
    return _minimise(_DenseNorm(delta), start, iterations, grid, refine, bracket)


def recoverable_information_pairs(blocks: torch.Tensor, start: torch.Tensor | None = None, iterations: int = 8,
                                  grid: int = 48, refine: int = 4, bracket: bool = False
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """R_Q as :func:`recoverable_information`, for δρx, δρy, δρz in pair form (B, 3, 4, h) (:func:`to_pairs`).

    Same search, with the closed-form trace norm of 2×2 blocks (``_PairNorm``) instead of
    eigendecompositions: a few hundred flops per state and Newton step.
    """
    return _minimise(_PairNorm.of(blocks), start, iterations, grid, refine, bracket)


#: A Newton search has converged once its step (or its trust radius) is below this many radians.
CONVERGED = 1e-7
#: Newton iterations of the cold search from the grid when :func:`_minimise` brackets a warm start.
COLD_ITERATIONS = 8
#: A warm start is re-checked from the grid when some grid direction lies within this factor of its value.
BRACKET = 1.05
#: How many grid directions the bracketing cold search refines.
COLD_REFINE = 2


def _minimise(norm: _DenseNorm | _PairNorm, start: torch.Tensor | None, iterations: int, grid: int,
              refine: int, bracket: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Start points and Newton refinement of :func:`recoverable_information` for any trace-norm model.

    Cold (``start`` None): the ``refine`` best of the Frobenius minimiser and the ``grid`` directions
    are refined by ``iterations`` Newton steps. Warm: the better of ``start`` and the Frobenius
    minimiser is refined by ``iterations`` steps, and, with ``bracket``, the result is checked against the grid: where some
    grid direction has f below ``BRACKET`` × the warm value (another basin may be lower: after a
    measurement, or when noise moves the global minimum to another basin), the cold search runs
    too (``COLD_ITERATIONS`` steps) and the lower of the two values is kept.
    """
    gram = norm.gram()
    batch, device = gram.shape[0], gram.device
    frobenius = torch.linalg.eigh(gram)[1][:, :, 0:1].mT
    if start is not None:
        warm = (start.to(torch.float64) / start.norm(dim=1, keepdim=True).clamp_min(1e-300))[:, None]
        candidates = torch.cat([frobenius, warm], 1)
        value, n = _refine_best(norm, candidates, norm.along(candidates), 1, iterations)
        if not bracket:
            return value, n
    cold = torch.cat([frobenius, fibonacci_half_sphere(grid, device).expand(batch, -1, -1)], dim=1)
    cold_values = norm.along(cold)
    if start is None:
        return _refine_best(norm, cold, cold_values, refine, iterations)
    suspect = (cold_values.amin(1) < BRACKET * value).nonzero().squeeze(1)
    if len(suspect):
        cold_value, cold_n = _refine_best(norm.select(suspect), cold[suspect], cold_values[suspect], COLD_REFINE,
                                          COLD_ITERATIONS)
        lower = cold_value < value[suspect]
        value = value.index_copy(0, suspect, torch.where(lower, cold_value, value[suspect]))
        n = n.index_copy(0, suspect, torch.where(lower[:, None], cold_n, n[suspect]))
    return value, n


def _refine_best(norm: _DenseNorm | _PairNorm, directions: torch.Tensor, values: torch.Tensor, refine: int,
                 iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton-refine the ``refine`` lowest of ``directions`` (B, K, 3) (f = ``values`` (B, K)); the best result."""
    batch = directions.shape[0]
    best = values.topk(min(refine, directions.shape[1]), dim=1, largest=False).indices
    n = directions.gather(1, best[:, :, None].expand(-1, -1, 3)).flatten(0, 1)
    value, n = _newton(norm.repeat(best.shape[1]) if best.shape[1] > 1 else norm, n, iterations)
    value, pick = value.view(batch, -1).min(1)
    return value, n.view(batch, -1, 3)[torch.arange(batch, device=directions.device), pick]


def _newton(norm: _DenseNorm | _PairNorm, n: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trust-region Riemannian Newton descent of f = ``norm`` on the unit sphere from ``n`` (B, 3).

    The 2×2 tangent systems are solved in closed form: the shift σ = max(0, −λ_min) + 10⁻¹⁰ f makes
    H + σ1 positive definite, and the step is −(H + σ1)⁻¹ g, cut to the trust radius. ``iterations``
    is a cap: the loop stops early once every state has converged (its Newton step or its trust
    radius below ``CONVERGED`` radians).
    """
    f, grad, hess = norm.terms(n)
    radius = torch.full_like(f, 0.5)
    for _ in range(iterations):
        basis = _tangent_basis(n)
        g = (basis * grad[:, :, None]).sum(1)
        h = basis.mT @ hess @ basis
        h00, h01, h11 = h[:, 0, 0] - f, h[:, 0, 1], h[:, 1, 1] - f
        lowest = (h00 + h11) / 2 - torch.sqrt(((h00 - h11) / 2) ** 2 + h01**2)
        shift = (-lowest).clamp_min(0.0) + 1e-10 * f.clamp_min(1e-12)
        a, c = h00 + shift, h11 + shift
        det = (a * c - h01**2).clamp_min(1e-300)
        step = -torch.stack([c * g[:, 0] - h01 * g[:, 1], a * g[:, 1] - h01 * g[:, 0]], 1) / det[:, None]
        step = step * (radius / step.norm(dim=1).clamp_min(1e-300)).clamp(max=1.0)[:, None]
        length = step.norm(dim=1)
        trial = n + (basis @ step.unsqueeze(-1)).squeeze(-1)
        trial = trial / trial.norm(dim=1, keepdim=True)
        f_trial, grad_trial, hess_trial = norm.terms(trial)
        better = f_trial < f
        n = torch.where(better[:, None], trial, n)
        f = torch.where(better, f_trial, f)
        grad = torch.where(better[:, None], grad_trial, grad)
        hess = torch.where(better[:, None, None], hess_trial, hess)
        radius = torch.where(better, torch.maximum(2 * length, radius).clamp(max=0.5), length / 10)
        if bool(((length < CONVERGED) | (radius < CONVERGED)).all()):
            break
    return f, n


def brute_force_recoverable_information(delta: torch.Tensor, points: int = 20000) -> torch.Tensor:
    """min of ‖Σᵢ nᵢ δρᵢ‖₁ over a Fibonacci grid of ``points`` directions on the half sphere (for tests)."""
    grid = fibonacci_half_sphere(points, delta.device)
    out = [trace_norm_along(delta, chunk.expand(delta.shape[0], -1, -1)).amin(1) for chunk in grid.split(2000)]
    return torch.stack(out, 1).amin(1)

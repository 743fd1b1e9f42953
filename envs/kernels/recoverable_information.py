"""The recoverable quantum information R_Q = min over unit n of ‖Σᵢ nᵢ δρᵢ‖₁ (Fösel et al.,
PRX 8, 031084 (2018), Eq. (4)), batched: a Riemannian trust-region Newton search on the sphere, for
dense matrices (:func:`recoverable_information`, through eigendecompositions) and for the pair form
(:func:`recoverable_information_pairs`, in closed form).
"""

from __future__ import annotations

import math

import torch


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
        """From the pair form (B, 3, 4, h) of δρx, δρy, δρz (:func:`~physrl.envs.kernels.qubit_pairs.to_pairs`)."""
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
    """R_Q as :func:`recoverable_information`, for δρx, δρy, δρz in pair form (B, 3, 4, h)
    (:func:`~physrl.envs.kernels.qubit_pairs.to_pairs`).

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
    is a cap: a state stops once it has converged (its Newton step or its trust radius below
    ``CONVERGED`` radians), and the loop once every state has.
    """
    f, grad, hess = norm.terms(n)
    radius = torch.full_like(f, 0.5)
    active = torch.arange(len(f), device=f.device)
    for _ in range(iterations):
        na, fa, ra = n[active], f[active], radius[active]
        basis = _tangent_basis(na)
        g = (basis * grad[active][:, :, None]).sum(1)
        h = basis.mT @ hess[active] @ basis
        h00, h01, h11 = h[:, 0, 0] - fa, h[:, 0, 1], h[:, 1, 1] - fa
        lowest = (h00 + h11) / 2 - torch.sqrt(((h00 - h11) / 2) ** 2 + h01**2)
        shift = (-lowest).clamp_min(0.0) + 1e-10 * fa.clamp_min(1e-12)
        a, c = h00 + shift, h11 + shift
        det = (a * c - h01**2).clamp_min(1e-300)
        step = -torch.stack([c * g[:, 0] - h01 * g[:, 1], a * g[:, 1] - h01 * g[:, 0]], 1) / det[:, None]
        step = step * (ra / step.norm(dim=1).clamp_min(1e-300)).clamp(max=1.0)[:, None]
        length = step.norm(dim=1)
        trial = na + (basis @ step.unsqueeze(-1)).squeeze(-1)
        trial = trial / trial.norm(dim=1, keepdim=True)
        f_trial, grad_trial, hess_trial = norm.terms(trial)
        better = f_trial < fa
        n = n.index_copy(0, active, torch.where(better[:, None], trial, na))
        f = f.index_copy(0, active, torch.where(better, f_trial, fa))
        grad = grad.index_copy(0, active, torch.where(better[:, None], grad_trial, grad[active]))
        hess = hess.index_copy(0, active, torch.where(better[:, None, None], hess_trial, hess[active]))
        ra = torch.where(better, torch.maximum(2 * length, ra).clamp(max=0.5), length / 10)
        radius = radius.index_copy(0, active, ra)
        going = ((length >= CONVERGED) & (ra >= CONVERGED)).nonzero().squeeze(1)
        if len(going) == 0:
            break
        if len(going) < len(active):
            active, norm = active[going], norm.select(going)
    return f, n

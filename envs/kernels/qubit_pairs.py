"""The pair form of n-qubit channel matrices (Fösel et al., PRX 8, 031084 (2018), §II).

X, CNOT and the bit flips are affine permutations of the basis over GF(2)ⁿ, dephasing rescales
entries and Z measurements mask them, so matrices supported on the 2×2 blocks of the pairs
{a, a⊕v} (one v per batch element) stay so, with v moved by the gates (:func:`pair_permutation`).
The channel of a logical qubit stored in qubit 0 starts like that (v = e₀). :func:`to_pairs` keeps
the 2ⁿ⁻¹ blocks as Pauli coordinates; R_Q then needs no eigendecomposition (a 2×2 block
½(c₀ + c·σ) has trace norm max(|c₀|, ‖c‖); see
:func:`~physrl.envs.kernels.recoverable_information.recoverable_information_pairs`). The basis
convention is that of :mod:`physrl.envs.kernels.qubits` (qubit 0 the most significant bit). With
Hadamards the matrices stay in pair form (v = e₀) in a Clifford frame (the end of this module).
"""

from __future__ import annotations

import functools

import torch

from physrl.envs.kernels import qubits as K


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


# ------------------------------------------------------------------ Clifford frames
# A Hadamard leaves the pair form of the register's basis, but Clifford gates and Pauli noise keep it in a
# moving frame (the Gottesman–Knill theorem; Gottesman, arXiv:quant-ph/9807006): ρ = U ρ' U† with ρ'
# block diagonal in the pairs {a, a ⊕ e₀}, e₀ the bit of qubit 0 (the logical qubit, next to a record of
# the other qubits' errors, whose reference stabilisers are Z₁ … Z_{n−1}). The frame U follows the gates
# (U ← G U); Pauli noise leaves it alone (U† E U is a Pauli, which moves pairs to pairs); a Z_q measurement
# changes it only where U† Z_q U anticommutes with a reference stabiliser (:func:`measurement_frame_change`).

def pauli_parts(pauli: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bit masks (x, z) (B,) of Pauli matrices (B, d, d) ∝ X^x Z^z, with (X^x Z^z)_ab = δ_{a, b⊕x} (−1)^{z·b}.

    Row a holds its one entry at column a ⊕ x, and the entry of row 2ᵏ over that of row 0 is (−1)^{z_k}.
    """
    d = pauli.shape[-1]
    x = pauli[:, 0].abs().argmax(-1)
    powers = 1 << torch.arange(d.bit_length() - 1, device=pauli.device)
    first = pauli[:, 0].gather(1, x[:, None])  # (B, 1)
    rows = pauli[:, powers].gather(2, (powers[None, :] ^ x[:, None])[:, :, None]).squeeze(2)  # (B, log d)
    z = (((rows * first.conj()).real < 0).long() * powers).sum(1)
    return x, z


@functools.lru_cache(maxsize=None)
def _gate(n: int, kind: str, j: int, k: int = -1) -> torch.Tensor:
    """A Clifford gate (d, d) complex128 on qubit j (the control) and k: "cnot", "cz", "s" = diag(1, i) or "h"."""
    eye = torch.eye(2**n, dtype=torch.complex128)
    if kind == "cnot":
        return eye[K.cnot_permutation(n, j, k)]
    if kind == "h":
        return K.one_qubit_left(eye, K.hadamard_matrix(), n, j)
    index = torch.arange(2**n)
    bit_j = K._bit(index, n, j)
    phase = torch.where(bit_j == 1, 1j, 1.0) if kind == "s" else 1.0 - 2.0 * bit_j * K._bit(index, n, k)
    return torch.diag(phase.to(torch.complex128))


def measurement_frame_change(pauli: torch.Tensor, n: int) -> torch.Tensor | None:
    """A Clifford W (d, d) with W P W† = ±Z_j and W Z_k Z_j^{x_k} W† = Z_k for k ∉ {0, j}, for a Pauli
    P ∝ X^x Z^z (d, d) (a measured Z_q seen in the frame) that anticommutes with some reference stabiliser
    Z_j, j ≥ 1 (the highest such j); None where it commutes with all of them (a stabiliser or a logical
    operator: the projection keeps pairs).

    After the measurement the state's stabilisers are ±P and Z_k Z_j^{x_k}, which W maps back to the
    reference ones, so W ρ' W† is in pair form again (the frame becomes U W†). Gates: CNOT(j → k) clears
    P's other X parts, S_j turns its Y_j into X_j, CZ(j, k) clears its other Z parts, H_j makes X_j a Z_j.
    """
    x, _ = pauli_parts(pauli[None])
    record = int(x) & ((1 << (n - 1)) - 1)
    if record == 0:
        return None
    j = n - 1 - (record & -record).bit_length() + 1
    w = torch.eye(2**n, dtype=torch.complex128, device=pauli.device)
    for k in range(n):
        if k != j and (int(x) >> (n - 1 - k)) & 1:
            w = _gate(n, "cnot", j, k).to(pauli.device) @ w
    _, z = pauli_parts((w @ pauli @ w.mH)[None])
    gates = [_gate(n, "s", j)] if (int(z) >> (n - 1 - j)) & 1 else []
    gates += [_gate(n, "cz", j, k) for k in range(n) if k != j and (int(z) >> (n - 1 - k)) & 1]
    for gate in [*gates, _gate(n, "h", j)]:
        w = gate.to(pauli.device) @ w
    return w


def frame_after_measurement(frame: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """The Clifford frames (B, d, d) after a Z_q measurement (either outcome): U W† where W is
    :func:`measurement_frame_change` of U† Z_q U, unchanged where that is None."""
    sign = 1.0 - 2.0 * K._bit(torch.arange(2**n, device=frame.device), n, q).to(frame.dtype)
    paulis = (frame.mH * sign) @ frame
    x, _ = pauli_parts(paulis)
    out = frame.clone()
    for i in ((x & ((1 << (n - 1)) - 1)) != 0).nonzero().squeeze(1).tolist():
        out[i] = frame[i] @ measurement_frame_change(paulis[i], n).mH
    return out


def frame_pairs(rho: torch.Tensor, frame: torch.Tensor, n: int) -> torch.Tensor:
    """Pair form (B, M, 4, d/2) of matrices ρ (B, M, d, d) seen in their Clifford frames (B, d, d): U† ρ U."""
    shift = torch.full((rho.shape[0],), 1 << (n - 1), dtype=torch.int64, device=rho.device)
    return to_pairs(frame.mH[:, None] @ rho @ frame[:, None], shift, n)

"""Batched qubit kernels against QuTiP on random states (complex128, 1e-10), and R_Q accuracy."""

import math

import numpy as np
import pytest
import qutip
import scipy.optimize
import torch

from physrl.envs.kernels import qubit_pairs as P, qubits as K, recoverable_information as R

from qubit_oracle import brute_force_recoverable_information

N = 3
I2, X, Z = qutip.qeye(2), qutip.sigmax(), qutip.sigmaz()
P0, P1 = qutip.basis(2, 0).proj(), qutip.basis(2, 1).proj()


def on(op: qutip.Qobj, q: int, n: int = N) -> qutip.Qobj:
    return qutip.tensor(*[op if k == q else I2 for k in range(n)])


def random_batch(seed: int, batch: int = 3, n: int = N) -> tuple[list[list[qutip.Qobj]], torch.Tensor]:
    """``batch`` × (one density matrix and three Hermitian matrices), as QuTiP objects and one tensor."""
    dims = [2] * n
    objects = [[qutip.rand_dm(dims, seed=seed + 10 * b)] + [qutip.rand_herm(dims, seed=seed + 10 * b + k)
                                                            for k in (1, 2, 3)] for b in range(batch)]
    tensor = torch.tensor(np.array([[o.full() for o in four] for four in objects]))
    return objects, tensor


def assert_matches(tensor: torch.Tensor, objects: list[list[qutip.Qobj]]) -> None:
    expected = np.array([[o.full() for o in four] for four in objects])
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("q", range(N))
def test_x_and_hadamard_match_qutip(q):
    objects, rho = random_batch(q)
    x, h = on(X, q), on(qutip.Qobj(np.array(K.HADAMARD)), q)
    assert_matches(K.permute(rho, K.x_permutation(N, q)), [[x * o * x for o in four] for four in objects])
    assert_matches(K.hadamard(rho, N, q), [[h * o * h.dag() for o in four] for four in objects])


def test_pauli_coefficients_match_qutip_expectation_values():
    """Tr(P ρ) for every Pauli string, index Σ_q i_q 4^(N−1−q) with (1, X, Y, Z) = 0..3, as QuTiP's expect."""
    objects, rho = random_batch(5)
    coefficients = K.pauli_coefficients(rho, N)
    _, labels = K.pauli_basis(N)
    sigma = [I2, X, qutip.sigmay(), Z]
    assert coefficients.shape == (3, 4, 4**N) and labels.shape == (4**N, N)
    for index in (0, 1, 6, 27, 39, 63):
        digits = [index // 4 ** (N - 1 - q) % 4 for q in range(N)]
        assert labels[index].tolist() == digits
        string = qutip.tensor(*[sigma[i] for i in digits])
        expected = [[qutip.expect(string, o) if k == 0 else (string * o).tr().real for k, o in enumerate(four)]
                    for four in objects]
        np.testing.assert_allclose(coefficients[:, :, index].numpy(), expected, rtol=0, atol=1e-12)


def test_every_cnot_matches_qutip():
    objects, rho = random_batch(7)
    for c in range(N):
        for t in range(N):
            if c != t:
                u = qutip.tensor(*[P0 if k == c else I2 for k in range(N)]) + \
                    qutip.tensor(*[P1 if k == c else X if k == t else I2 for k in range(N)])
                assert_matches(K.permute(rho, K.cnot_permutation(N, c, t)), [[u * o * u.dag() for o in four]
                                                                              for four in objects])


def test_per_element_permutations_apply_one_gate_per_batch_element():
    _, rho = random_batch(3)
    perms = torch.stack([K.x_permutation(N, 0), K.cnot_permutation(N, 2, 1), torch.arange(2**N)])
    out = K.permute(rho, perms)
    for b in range(3):
        torch.testing.assert_close(out[b], K.permute(rho[b], perms[b]), rtol=0, atol=0)


def kraus_channel(objects, kraus_per_qubit):
    """Apply the one-qubit Kraus operators on every qubit in turn, with QuTiP."""
    out = []
    for four in objects:
        mats = list(four)
        for q in range(N):
            mats = [sum(on(k, q) * m * on(k, q).dag() for k in kraus_per_qubit) for m in mats]
        out.append(mats)
    return out


@pytest.mark.parametrize("p", [0.0, 0.013, 0.5])
def test_bit_flip_and_dephasing_match_qutip_kraus_channels(p):
    objects, rho = random_batch(11)
    flips = [math.sqrt(1 - p) * I2, math.sqrt(p) * X]
    phases = [math.sqrt(1 - p) * I2, math.sqrt(p) * Z]
    assert_matches(K.bit_flip(rho, p, N), kraus_channel(objects, flips))
    assert_matches(K.dephase(rho, K.dephasing_factor(N, 1 - 2 * p)), kraus_channel(objects, phases))


def test_collective_dephasing_matches_a_qutip_lindblad_propagator():
    """ρ_ab ← decay^((k_a − k_b)²) is the Lindblad evolution with L = √γ Σⱼ|1⟩⟨1|ⱼ for time 1, γ = −2 ln decay."""
    objects, rho = random_batch(5)
    decay = math.exp(-2 / 37)
    excitations = sum(on(P1, q) for q in range(N))
    propagator = (qutip.liouvillian(None, [math.sqrt(-2 * math.log(decay)) * excitations])).expm()
    expected = [[qutip.vector_to_operator(propagator * qutip.operator_to_vector(o)) for o in four]
                for four in objects]
    assert_matches(K.dephase(rho, K.collective_dephasing_factor(N, decay)), expected)


@pytest.mark.parametrize("q", range(N))
def test_measurement_probability_and_projection_match_qutip(q):
    objects, rho = random_batch(20 + q)
    probability = K.z_probability(rho[:, 0], N, q)
    expected = [qutip.expect(on(P0, q), four[0]) for four in objects]
    np.testing.assert_allclose(probability.numpy(), expected, rtol=0, atol=1e-12)
    for m, projector in ((0, on(P0, q)), (1, on(P1, q))):
        assert_matches(K.project(rho, N, q, m), [[projector * o * projector for o in four] for four in objects])
    outcomes = torch.tensor([1, 0, 1])
    mixed = K.project(rho, N, q, outcomes)
    for b, m in enumerate(outcomes.tolist()):
        torch.testing.assert_close(mixed[b], K.project(rho[b], N, q, m), rtol=0, atol=0)


def test_kernels_keep_the_leading_shape_and_dtype():
    _, rho = random_batch(1)
    for out in (K.bit_flip(rho, 0.1, N), K.hadamard(rho, N, 1), K.dephase(rho, K.dephasing_factor(N, 0.9))):
        assert out.shape == rho.shape and out.dtype == torch.complex128


def test_gates_act_alike_on_any_number_of_leading_dims():
    """One state (d, d), a batch (B, d, d) and a batch of channel matrices (B, 4, d, d) give the same matrices."""
    _, rho = random_batch(5)
    perm = torch.stack([K.x_permutation(N, 0), K.cnot_permutation(N, 1, 2), K.x_permutation(N, 2)])
    for gate in (lambda r: K.hadamard(r, N, 1), lambda r: K.bit_flip(r, 0.1, N)):
        whole = gate(rho)
        torch.testing.assert_close(gate(rho[:, 0]), whole[:, 0], rtol=0, atol=0)
        torch.testing.assert_close(gate(rho[0, 2]), whole[0, 2], rtol=0, atol=0)
    whole = K.permute(rho, perm)
    torch.testing.assert_close(K.permute(rho[:, 1], perm), whole[:, 1], rtol=0, atol=0)
    for b in range(3):
        torch.testing.assert_close(K.permute(rho[b, 1], perm[b]), whole[b, 1], rtol=0, atol=0)


def random_channel_deltas(seed: int, n: int = 3) -> torch.Tensor:
    """δρᵢ = E(σᵢ/2 ⊗ |0…0⟩⟨0…0|) for a random Kraus channel E (QuTiP), shape (3, d, d)."""
    kraus = qutip.rand_kraus_map([2] * n, seed=seed)
    rest = qutip.tensor(*[P0] * (n - 1))
    return torch.tensor(np.array([sum(k * qutip.tensor(s / 2, rest) * k.dag() for k in kraus).full()
                                  for s in (qutip.sigmax(), qutip.sigmay(), qutip.sigmaz())]))


def test_recoverable_information_matches_a_fine_brute_force_grid():
    deltas = torch.stack([random_channel_deltas(seed) for seed in range(12)])
    value, direction = R.recoverable_information(deltas)
    grid = brute_force_recoverable_information(deltas, 20000)
    assert float((value - grid).abs().max()) < 1e-3
    assert torch.allclose(direction.norm(dim=1), torch.ones(12, dtype=torch.float64))
    np.testing.assert_allclose(value.numpy(), R.trace_norm_along(deltas, direction).numpy(), rtol=0, atol=1e-12)


def test_recoverable_information_of_known_channels():
    """Identity channel: 1; a qubit with Bloch map diag(a, b, c): min(|a|, |b|, |c|); a Z-revealed qubit: 0."""
    sigma = [qutip.sigmax().full() / 2, qutip.sigmay().full() / 2, qutip.sigmaz().full() / 2]
    base = torch.tensor(np.array(sigma))
    scaled = base * torch.tensor([0.9, 0.4, 0.7], dtype=torch.float64)[:, None, None]
    revealed = base * torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)[:, None, None]
    value, _ = R.recoverable_information(torch.stack([base, scaled, revealed]))
    np.testing.assert_allclose(value.numpy(), [1.0, 0.4, 0.0], rtol=0, atol=1e-12)
    warm, _ = R.recoverable_information(torch.stack([scaled]), start=torch.tensor([[1.0, 0.0, 0.0]]))
    assert float(warm[0]) == pytest.approx(0.4, abs=1e-12)


def random_pair_form(seed: int, batch: int = 4, n: int = N,
                     scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four Hermitian matrices per batch element, block diagonal on the pairs {a, a⊕v} of a random v ≠ 0:
    (dense (B, 4, d, d), v (B,), pair form (B, 4, 4, d/2))."""
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, 2**n, (batch,), generator=generator)
    pairs = scale * torch.randn(batch, 4, 4, 2 ** (n - 1), generator=generator, dtype=torch.float64)
    return P.from_pairs(pairs, shift, n), shift, pairs


def test_pair_form_holds_the_two_by_two_blocks():
    rho, shift, pairs = random_pair_form(0)
    torch.testing.assert_close(P.to_pairs(rho, shift, N), pairs, rtol=0, atol=1e-15)
    assert torch.equal(rho, rho.mH)
    index = torch.arange(2**N)
    for b in range(len(shift)):
        outside = (index[:, None] != index[None, :]) & ((index[:, None] ^ index[None, :]) != shift[b])
        assert not rho[b][:, outside].any()
    # trace c₀ and trace norm max(|c₀|, ‖c‖) of every block, from the dense matrices
    for k, a in enumerate(P.pair_representatives(N)[shift[0]].tolist()):
        pair = [a, a ^ int(shift[0])]
        block = rho[0, 1][pair][:, pair]
        c = pairs[0, 1, :, k]
        assert float(torch.diagonal(block).real.sum()) == pytest.approx(float(c[0]), abs=1e-14)
        norm = float(torch.linalg.eigvalsh(block).abs().sum())
        assert norm == pytest.approx(max(abs(float(c[0])), float(c[1:].norm())), abs=1e-14)


def assert_every_gate_in_pair_form_matches_its_dense_permutation(rho, shift, pairs):
    """Each X and CNOT applied to ``pairs`` (pairing ``shift``) equals the dense permutation of ``rho``."""
    perms = [K.x_permutation(N, q) for q in range(N)]
    perms += [K.cnot_permutation(N, c, t) for c in range(N) for t in range(N) if c != t]
    for perm in perms:
        new_shift, source, sign = P.pair_permutation(N, tuple(perm.tolist()))
        moved = P.permute_pairs(pairs, source[shift], sign[shift])
        torch.testing.assert_close(P.from_pairs(moved, new_shift[shift], N), K.permute(rho, perm), rtol=0, atol=1e-15)


def test_gates_and_flips_in_pair_form_match_the_dense_permutations():
    rho, shift, pairs = random_pair_form(1, batch=8)
    assert_every_gate_in_pair_form_matches_its_dense_permutation(rho, shift, pairs)


def test_gates_in_pair_form_match_the_dense_permutations_for_every_pairing():
    """Every v = 1 … d−1 (a random draw of eight may miss some, e.g. every v with top bit 1)."""
    shift = torch.arange(1, 2**N)
    pairs = torch.randn(len(shift), 4, 4, 2 ** (N - 1), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    rho = P.from_pairs(pairs, shift, N)
    torch.testing.assert_close(P.to_pairs(rho, shift, N), pairs, rtol=0, atol=1e-15)
    assert_every_gate_in_pair_form_matches_its_dense_permutation(rho, shift, pairs)


@pytest.mark.parametrize("q", range(N))
def test_projections_in_pair_form_match_the_dense_kernel(q):
    rho, shift, pairs = random_pair_form(2 + q, batch=8)
    rep, partner = P.pair_bits(shift, N, torch.full_like(shift, q))
    for m in (0, 1):
        projected = P.project_pairs(pairs, rep == m, partner == m)
        torch.testing.assert_close(P.from_pairs(projected, shift, N), K.project(rho, N, q, m), rtol=0, atol=1e-15)


def test_left_multiplications_match_qutip():
    """U_q M (Hadamard on each qubit) and the permutation unitary of a CNOT times M, M not Hermitian."""
    matrix = torch.randn(2, 2**N, 2**N, dtype=torch.complex128, generator=torch.Generator().manual_seed(6))
    h = qutip.Qobj(np.array(K.HADAMARD))
    for q in range(N):
        expected = [(on(h, q) * qutip.Qobj(m.numpy(), dims=[[2] * N] * 2)).full() for m in matrix]
        np.testing.assert_allclose(K.one_qubit_left(matrix, K.hadamard_matrix(), N, q).numpy(), expected, atol=1e-12)
    cnot = qutip.Qobj(np.eye(2**N)[K.cnot_permutation(N, 0, 2).numpy()], dims=[[2] * N] * 2)
    expected = [(cnot * qutip.Qobj(m.numpy(), dims=[[2] * N] * 2)).full() for m in matrix]
    perm = K.cnot_permutation(N, 0, 2).expand(2, -1)
    np.testing.assert_allclose(K.permute_rows(matrix, perm).numpy(), expected, atol=1e-15)
    rho = matrix + matrix.mH
    torch.testing.assert_close(K.permute_rows(K.permute_rows(rho, perm).mH, perm).mH, K.permute(rho, perm))


def test_pauli_parts_read_every_pauli_string_with_any_phase():
    """(x, z) of c·σ for all 4^N strings and c ∈ {±1, ±i}: X or Y on qubit q sets bit q of x, Z or Y that of z."""
    strings, labels = K.pauli_basis(N)
    weights = 1 << torch.arange(N - 1, -1, -1)
    for phase in (1, -1, 1j, -1j):
        x, z = P.pauli_parts(phase * strings)
        assert torch.equal(x, (((labels == 1) | (labels == 2)).long() * weights).sum(1))
        assert torch.equal(z, (((labels == 3) | (labels == 2)).long() * weights).sum(1))


def random_clifford(seed: int, n: int = N, gates: int = 24) -> torch.Tensor:
    """A random Clifford unitary (d, d): a product of CNOTs, Hadamards and S = diag(1, i) gates."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.eye(2**n, dtype=torch.complex128)
    s = torch.tensor([[1, 0], [0, 1j]], dtype=torch.complex128)
    for _ in range(gates):
        a, b = torch.randperm(n, generator=generator)[:2].tolist()
        kind = int(torch.randint(0, 3, (), generator=generator))
        if kind == 0:
            u = K.permute_rows(u[None], K.cnot_permutation(n, a, b)[None])[0]
        else:
            u = K.one_qubit_left(u, K.hadamard_matrix() if kind == 1 else s, n, a)
    return u


def z_on(q: int, n: int = N) -> torch.Tensor:
    return torch.diag(1.0 - 2.0 * ((torch.arange(2**n) >> (n - 1 - q)) & 1)).to(torch.complex128)


def test_measurement_frame_change_takes_the_measured_pauli_to_a_reference_stabiliser():
    """For P = U† Z_q U (U a random Clifford): None exactly where P commutes with Z₁ … Z_{N−1}; otherwise a
    unitary W with W P W† = ±Z_j for the highest j with x_j = 1, and W Z_k Z_j^{x_k} W† = Z_k for k ∉ {0, j}."""
    changed = kept = 0
    for seed in range(60):
        u, q = random_clifford(seed), seed % N
        pauli = u.mH @ z_on(q) @ u
        x, _ = P.pauli_parts(pauli[None])
        anticommuting = [k for k in range(1, N) if (int(x) >> (N - 1 - k)) & 1]
        w = P.measurement_frame_change(pauli, N)
        if not anticommuting:
            assert w is None
            kept += 1
            continue
        changed += 1
        j = anticommuting[-1]
        torch.testing.assert_close(w @ w.mH, torch.eye(2**N, dtype=torch.complex128))
        image = w @ pauli @ w.mH
        sign = image[0, 0].real
        assert abs(sign) == pytest.approx(1.0) and image.imag.abs().max() < 1e-12
        torch.testing.assert_close(image, sign * z_on(j), rtol=0, atol=1e-12)
        for k in set(range(1, N)) - {j}:
            stabiliser = z_on(k) @ z_on(j) if k in anticommuting else z_on(k)
            torch.testing.assert_close(w @ stabiliser @ w.mH, z_on(k), rtol=0, atol=1e-12)
    assert changed > 10 and kept > 10


def test_a_measurement_in_a_clifford_frame_leaves_matrices_in_pair_form():
    """ρ = U ρ' U† with ρ' block diagonal on the pairs {a, a ⊕ e₀} (any blocks) and U a random Clifford: after
    Π_m ρ Π_m for a Z_q measurement, the new frame (:func:`frame_after_measurement`) sees pair form again,
    with nothing outside the blocks. Without the frame change the anticommuting cases would not be."""
    batch, d = 24, 2**N
    frames = torch.stack([random_clifford(100 + b) for b in range(batch)])
    shift = torch.full((batch,), d // 2)
    pairs = torch.randn(batch, 4, 4, d // 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    rho = frames[:, None] @ P.from_pairs(pairs, shift, N) @ frames.mH[:, None]
    torch.testing.assert_close(P.frame_pairs(rho, frames, N), pairs, rtol=0, atol=1e-13)
    lost = 0
    for q in range(N):
        new_frames = P.frame_after_measurement(frames, N, q)
        for m in (0, 1):
            projected = K.project(rho, N, q, m)
            seen = new_frames.mH[:, None] @ projected @ new_frames[:, None]
            torch.testing.assert_close(P.from_pairs(P.frame_pairs(projected, new_frames, N), shift, N), seen,
                                       rtol=0, atol=1e-13)
            stale = frames.mH[:, None] @ projected @ frames[:, None]
            lost += int(((stale - P.from_pairs(P.to_pairs(stale, shift, N), shift, N)).abs() > 1e-6).any())
    assert lost > 0


def test_closed_form_recoverable_information_matches_a_fine_brute_force_grid():
    """Random traceless blocks (as in the env: every block of δρᵢ is traceless until a measurement cuts the
    pairs, which reveals the state) with R_Q ~ 1: within 1e-3 of a 20 000-point grid, never worse than it,
    equal to the eigendecomposition value at the returned direction and to the dense search."""
    _, shift, pairs = random_pair_form(7, batch=12, scale=0.15)
    pairs[:, :, 0] = 0.0
    rho = P.from_pairs(pairs, shift, N)
    value, direction = R.recoverable_information_pairs(pairs[:, 1:])
    grid = brute_force_recoverable_information(rho[:, 1:], 20000)
    assert float((value - grid).abs().max()) < 1e-3 and bool((value <= grid + 1e-12).all())
    np.testing.assert_allclose(value.numpy(), R.trace_norm_along(rho[:, 1:], direction).numpy(), rtol=0, atol=1e-12)
    dense, _ = R.recoverable_information(rho[:, 1:])
    np.testing.assert_allclose(value.numpy(), dense.numpy(), rtol=0, atol=1e-8)


def test_bit_flips_leave_the_input_untouched():
    _, rho = random_batch(4)
    before = rho.clone()
    K.bit_flip(rho, 0.2, N)
    assert torch.equal(rho, before)


def test_measurement_probability_takes_any_leading_dims():
    _, rho = random_batch(2)  # (3, 4, d, d): batch and the four channel matrices
    probability = K.z_probability(rho, N, 1)
    assert probability.shape == (3, 4)
    for b in range(3):
        for m in range(4):
            assert probability[b, m].item() == pytest.approx(K.z_probability(rho[b, m][None], N, 1).item(), abs=1e-15)


def sphere_minimum(delta: np.ndarray, seed: int) -> float:
    """min over unit n of ‖Σᵢ nᵢ δᵢ‖₁ (numpy eigenvalues, independent of the kernels): the best of 4000
    random directions, then Nelder–Mead in spherical angles to 1e-12 rad."""
    def value(n: np.ndarray) -> float:
        return float(np.abs(np.linalg.eigvalsh(np.tensordot(n, delta, 1))).sum())

    def of_angles(angles: np.ndarray) -> float:
        t, p = angles
        return value(np.array([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)]))

    directions = np.random.default_rng(seed).normal(size=(4000, 3))
    best = min(directions / np.linalg.norm(directions, axis=1, keepdims=True), key=value)
    start = [math.acos(best[2]), math.atan2(best[1], best[0])]
    result = scipy.optimize.minimize(of_angles, start, method="Nelder-Mead",
                                     options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 4000})
    return float(result.fun)


def test_recoverable_information_is_the_sphere_minimum_to_1e_9():
    """Dense searches (cold, and warm from a poor start, bracketed by the grid) and the closed-form pair
    search (cold, and warm from near its answer) against an independent minimisation, on traceless pair
    blocks (smooth minima, as in the env before a measurement): the Newton refinement converges, it
    does not stop near the 1e-3 of the grid tests. (On random full-rank channels the minimum sits where
    an eigenvalue of Σ nᵢ δρᵢ crosses zero, a kink where Newton converges slowly: the cold dense search
    ends up to 3e-4 above it there, which the grid tests allow.)"""
    _, shift, pairs = random_pair_form(8, batch=6, scale=0.15)
    pairs[:, :, 0] = 0.0
    blocks = P.from_pairs(pairs, shift, N)[:, 1:]
    expected = [sphere_minimum(delta.numpy(), seed) for seed, delta in enumerate(blocks)]
    poor_start = torch.tensor([[1.0, 0.0, 0.0]] * 6, dtype=torch.float64)
    cold, direction = R.recoverable_information_pairs(pairs[:, 1:])
    near = direction + 1e-3 * torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for found in (R.recoverable_information(blocks)[0], R.recoverable_information(blocks, start=poor_start)[0],
                  cold, R.recoverable_information_pairs(pairs[:, 1:], start=near)[0],
                  R.recoverable_information_pairs(pairs[:, 1:], start=near, bracket=True)[0]):
        np.testing.assert_allclose(found.numpy(), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("form", ["dense", "pairs"])
def test_trace_norm_gradient_and_hessian_equal_finite_differences(form):
    """f(n) = ‖Σᵢ nᵢ δρᵢ‖₁, its gradient and Hessian (``terms``) at random n, against central differences
    of f and of the gradient (h = 1e-6 and 1e-5), and f against the eigenvalues at the same n."""
    if form == "dense":
        norm = R._DenseNorm(torch.stack([random_channel_deltas(seed) for seed in range(50, 54)]))
    else:
        _, shift, pairs = random_pair_form(9, batch=4)
        norm = R._PairNorm.of(pairs[:, 1:])
    n = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    f, grad, hess = norm.terms(n)
    np.testing.assert_allclose(f.numpy(), norm.along(n).numpy(), rtol=0, atol=1e-12)
    for j in range(3):
        step = torch.zeros(3, dtype=torch.float64)
        step[j] = 1e-6
        slope = (norm.along(n + step) - norm.along(n - step)) / 2e-6
        np.testing.assert_allclose(grad[:, j].numpy(), slope.numpy(), rtol=0, atol=1e-7)
        step[j] = 1e-5
        curvature = (norm.terms(n + step)[1] - norm.terms(n - step)[1]) / 2e-5
        np.testing.assert_allclose(hess[:, :, j].numpy(), curvature.numpy(), rtol=0, atol=1e-5)
    # the Gram matrix: ‖Σᵢ nᵢ δρᵢ‖₂² = nᵀ G n
    dense = norm.delta if form == "dense" else P.from_pairs(pairs, shift, N)[:, 1:]
    frobenius = torch.einsum("bi,bixy->bxy", n.to(dense.dtype), dense).abs().square().sum((-2, -1))
    np.testing.assert_allclose(torch.einsum("bi,bij,bj->b", n, norm.gram(), n).numpy(), frobenius.numpy(),
                               rtol=1e-12, atol=0)


def test_gram_matrix_of_real_symmetric_matrices_equals_that_of_their_complex_form():
    """Real δρᵢ (no σ_y part) take the real branch of the Gram matrix. (The Newton terms need complex δρᵢ.)"""
    real = torch.stack([random_channel_deltas(seed) for seed in range(60, 63)]).real.contiguous()
    real = (real + real.mT) / 2
    np.testing.assert_allclose(R._DenseNorm(real).gram().numpy(), R._DenseNorm(real.to(torch.complex128)).gram().numpy(),
                               rtol=0, atol=1e-15)


def test_large_batches_are_searched_in_chunks_with_their_own_starts():
    """A batch above ``CHUNK`` (cold, and warm from one start per state) gives what its pieces give alone."""
    _, shift, pairs = random_pair_form(10, batch=R.CHUNK + 20, scale=0.15)
    pairs[:, :, 0] = 0.0
    blocks = P.from_pairs(pairs, shift, N)[:, 1:]
    starts = torch.randn(len(blocks), 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for start in (None, starts):
        value, direction = R.recoverable_information(blocks, start)
        head = R.recoverable_information(blocks[:R.CHUNK], None if start is None else start[:R.CHUNK])
        tail = R.recoverable_information(blocks[R.CHUNK:], None if start is None else start[R.CHUNK:])
        torch.testing.assert_close(value, torch.cat([head[0], tail[0]]), rtol=0, atol=0)
        torch.testing.assert_close(direction, torch.cat([head[1], tail[1]]), rtol=0, atol=0)


def traceless_pairs(seed: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """δρx, δρy, δρz with traceless random blocks (as in the env before a measurement): pair form (B, 3, 4, d/2)
    and dense (B, 3, d, d)."""
    _, shift, pairs = random_pair_form(seed, batch=batch, scale=0.15)
    pairs[:, :, 0] = 0.0
    return pairs[:, 1:], P.from_pairs(pairs, shift, N)[:, 1:]


def test_a_warm_start_near_the_minimiser_converges_where_a_cold_search_with_the_same_budget_cannot():
    """Two Newton steps from 1e-3 rad of the minimiser reach it to 1e-12 (quadratic convergence); the cold
    search with two steps stops up to 1e-6 above it on some state (dense and pair form, unbracketed)."""
    pairs, dense = traceless_pairs(12, batch=6)
    best, direction = R.recoverable_information_pairs(pairs, iterations=30)
    near = direction + 1e-3 * torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for search, blocks in ((R.recoverable_information_pairs, pairs), (R.recoverable_information, dense)):
        warm, _ = search(blocks, start=near, iterations=2, bracket=False)
        cold, _ = search(blocks, iterations=2, bracket=False)
        np.testing.assert_allclose(warm.numpy(), best.numpy(), rtol=0, atol=1e-12)
        assert float((cold - best).max()) > 1e-9


def test_the_length_of_a_warm_start_does_not_matter():
    """A warm start of norm 1/2 (exactly representable) gives the same result, bit for bit, as its unit vector."""
    pairs, dense = traceless_pairs(13, batch=4)
    unit = torch.nn.functional.normalize(torch.randn(4, 3, generator=torch.Generator().manual_seed(4),
                                                     dtype=torch.float64), dim=1)
    for search, blocks in ((R.recoverable_information_pairs, pairs), (R.recoverable_information, dense)):
        for bracket in (False, True):
            expected = search(blocks, start=unit, iterations=1, bracket=bracket)
            found = search(blocks, start=unit / 2, iterations=1, bracket=bracket)
            assert torch.equal(found[0], expected[0]) and torch.equal(found[1], expected[1])


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_a_warm_start_in_the_wrong_basin_is_rescued_by_the_bracket(scale):
    """A case with two basins: from this poor start the Newton search ends in a local minimum 0.0435·scale
    above the global one (0.7555·scale). Bracketed (the dense search's default), the grid holds a direction
    within 5 % of it, so the cold search runs and finds the global minimum; unbracketed (the pair
    search's default), the local minimum is returned. At scale 10 R_Q ~ 8 (the threshold scales with R_Q)."""
    pairs, dense = traceless_pairs(19, batch=1)
    pairs, dense = scale * pairs, scale * dense
    poor = torch.tensor([[-0.6031420019576359, 1.4079760553664558, -0.24923021105966917]], dtype=torch.float64)
    best, _ = R.recoverable_information_pairs(pairs, iterations=30, grid=400, refine=20)
    assert float(best) == pytest.approx(0.7555092275994038 * scale, abs=1e-12 * scale)
    for rescued in (R.recoverable_information(dense, start=poor)[0],
                    R.recoverable_information_pairs(pairs, start=poor, bracket=True)[0]):
        assert float(rescued) == pytest.approx(float(best), abs=1e-12 * scale)
    for trapped in (R.recoverable_information(dense, start=poor, bracket=False)[0],
                    R.recoverable_information_pairs(pairs, start=poor)[0]):
        assert float(trapped - best) == pytest.approx(0.0434951476 * scale, abs=1e-9 * scale)


def test_a_chunked_unbracketed_search_equals_its_pieces():
    """``bracket=False`` reaches every chunk of a batch above ``CHUNK`` (from poor random starts, where the
    bracket would change some results)."""
    _, dense = traceless_pairs(10, batch=R.CHUNK + 20)
    starts = torch.randn(len(dense), 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    value, direction = R.recoverable_information(dense, starts, iterations=2, bracket=False)
    head = R.recoverable_information(dense[:R.CHUNK], starts[:R.CHUNK], iterations=2, bracket=False)
    tail = R.recoverable_information(dense[R.CHUNK:], starts[R.CHUNK:], iterations=2, bracket=False)
    assert torch.equal(value, torch.cat([head[0], tail[0]])) and torch.equal(direction, torch.cat([head[1], tail[1]]))
    bracketed, _ = R.recoverable_information(dense, starts, iterations=2)
    assert bool((bracketed != value).any())


@pytest.mark.parametrize("scale", [1.0, 1e-6])
def test_one_newton_step_is_the_shifted_step_cut_to_the_trust_radius(scale):
    """One iteration of the search from random points, against the step worked out from its specification
    with numpy: on the tangent plane (any orthonormal basis) g = ∇f, H = P ∇²f P − f P; σ = max(0, −λ_min(H)) +
    1e-10 f; step −(H + σ1)⁻¹ g cut to length 0.5; the normalised trial point kept if f is lower there.
    At scale 1e-6 (f ~ 1e-6) the shift must scale with f."""
    pairs, _ = traceless_pairs(11, batch=16)
    norm = R._PairNorm.of(scale * pairs)
    start = torch.nn.functional.normalize(torch.randn(16, 3, generator=torch.Generator().manual_seed(5),
                                                      dtype=torch.float64), dim=1)
    _, found = R._newton(norm, start, 1)
    f, grad, hess = (x.numpy() for x in norm.terms(start))
    trials = []
    for b, n in enumerate(start.numpy()):
        basis = np.linalg.svd(n[None])[2][1:].T  # (3, 2): orthonormal, perpendicular to n
        g, h = basis.T @ grad[b], basis.T @ hess[b] @ basis - f[b] * np.eye(2)
        sigma = max(0.0, -np.linalg.eigvalsh(h)[0]) + 1e-10 * f[b]
        step = -np.linalg.solve(h + sigma * np.eye(2), g)
        step *= min(1.0, 0.5 / np.linalg.norm(step))
        trials.append((n + basis @ step) / np.linalg.norm(n + basis @ step))
    trials = torch.tensor(np.array(trials))
    lower = norm.along(trials) < torch.tensor(f)
    expected = torch.where(lower[:, None], trials, start)
    np.testing.assert_allclose(found.numpy(), expected.numpy(), rtol=0, atol=1e-9)


def test_each_state_of_a_batch_is_searched_as_if_alone():
    """Four Newton iterations on a batch of 16 states (random starts, some steps rejected) give each state what
    it gets searched alone: the trust radius and the step are per state."""
    pairs, _ = traceless_pairs(11, batch=16)
    norm = R._PairNorm.of(pairs)
    start = torch.nn.functional.normalize(torch.randn(16, 3, generator=torch.Generator().manual_seed(5),
                                                      dtype=torch.float64), dim=1)
    value, direction = R._newton(norm, start, 4)
    for b in range(16):
        alone = R._newton(norm.select(torch.tensor([b])), start[b:b + 1], 4)
        np.testing.assert_allclose(value[b:b + 1].numpy(), alone[0].numpy(), rtol=0, atol=1e-14)
        np.testing.assert_allclose(direction[b:b + 1].numpy(), alone[1].numpy(), rtol=0, atol=1e-12)


def test_each_state_is_bracketed_against_its_own_grid_values():
    """A bracketed warm search (one Newton step from 0.05 rad of the minimiser) on 8 states gives each state what it
    gets searched alone: whether the cold search runs depends on that state's grid values only (state 3, 4e-6 above
    its minimum, has no grid direction within 5 % of its value; state 0, at half scale, has the batch's lowest)."""
    pairs, _ = traceless_pairs(5, batch=8)
    pairs[0] *= 0.5
    _, direction = R.recoverable_information_pairs(pairs, iterations=30)
    start = direction + 0.05 * torch.randn(8, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    value, found = R.recoverable_information_pairs(pairs, start, iterations=1, bracket=True)
    for b in range(8):
        alone = R.recoverable_information_pairs(pairs[b:b + 1], start[b:b + 1], iterations=1, bracket=True)
        # (the cold search stops once all of its states have converged: agreement to rounding, not bit for bit)
        np.testing.assert_allclose(value[b:b + 1].numpy(), alone[0].numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(found[b:b + 1].numpy(), alone[1].numpy(), rtol=0, atol=1e-6)


def test_an_unbracketed_warm_search_refines_only_the_better_start():
    """One Newton search per state: from this start (lower f than the Frobenius minimiser, in another basin) the
    unbracketed warm search ends 1.095e-4 above the global minimum, which the Frobenius minimiser would have led to."""
    pairs, _ = traceless_pairs(4, batch=1)
    start = torch.tensor([[-0.13904804305038776, -0.030074486181145842, -0.9898288574318278]], dtype=torch.float64)
    best, _ = R.recoverable_information_pairs(pairs, iterations=30, grid=400, refine=20)
    trapped, _ = R.recoverable_information_pairs(pairs, start)
    assert float(trapped - best) == pytest.approx(1.095e-4, abs=1e-7)

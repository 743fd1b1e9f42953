"""The oscillator kernels against QuTiP on random inputs (complex128, to 1e-10)."""

import math

import numpy as np
import pytest
import qutip as qt
import torch

from physrl.envs.kernels.oscillator import (FockSpace, echoed_conditional_displacement, measure_number,
                                            measure_parity, measure_qubit, rotate_qubit, snap)
from physrl.envs.kernels.wigner import displaced_parity, wigner

N = 30
TOL = 1e-10


def random_kets(rng: np.random.Generator, count: int, levels: int, support: int | None = None) -> np.ndarray:
    support = levels if support is None else support
    kets = np.zeros((count, levels), dtype=np.complex128)
    kets[:, :support] = rng.normal(size=(count, support)) + 1j * rng.normal(size=(count, support))
    return kets / np.linalg.norm(kets, axis=1, keepdims=True)


def test_displacement_matrix_equals_qutip_displace():
    rng = np.random.default_rng(1)
    alphas = rng.normal(size=8) * 1.5 + 1j * rng.normal(size=8) * 1.5
    alphas[0] = 0.0
    ours = FockSpace(N).displacement_matrix(torch.as_tensor(alphas)).numpy()
    for alpha, matrix in zip(alphas, ours):
        np.testing.assert_allclose(matrix, qt.displace(N, alpha).full(), atol=TOL, rtol=0)


def test_displaced_kets_equal_qutip_and_the_coherent_state_away_from_the_edge():
    rng = np.random.default_rng(2)
    alphas = rng.uniform(-1.5, 1.5, 6) + 1j * rng.uniform(-1.5, 1.5, 6)
    kets = random_kets(rng, 6, N, support=5)
    moved = FockSpace(N).displace(torch.as_tensor(kets), torch.as_tensor(alphas)).numpy()
    for alpha, ket, out in zip(alphas, kets, moved):
        np.testing.assert_allclose(out, (qt.displace(N, alpha) * qt.Qobj(ket)).full().ravel(), atol=TOL, rtol=0)
    vacuum = np.zeros((6, N), dtype=np.complex128)
    vacuum[:, 0] = 1
    coherent = FockSpace(N).displace(torch.as_tensor(vacuum), torch.as_tensor(alphas)).numpy()
    for alpha, out in zip(alphas, coherent):
        np.testing.assert_allclose(out, qt.coherent(N, alpha, method="analytic").full().ravel(), atol=TOL, rtol=0)


def test_displacement_applies_to_each_qubit_branch():
    rng = np.random.default_rng(3)
    kets = random_kets(rng, 4, 2 * N, support=2 * N).reshape(4, 2, N)
    alphas = rng.normal(size=4) + 1j * rng.normal(size=4)
    moved = FockSpace(N).displace(torch.as_tensor(kets), torch.as_tensor(alphas)).numpy()
    for alpha, ket, out in zip(alphas, kets, moved):
        expected = qt.tensor(qt.qeye(2), qt.displace(N, alpha)) * qt.Qobj(ket.ravel(), dims=[[2, N], [1, 1]])
        np.testing.assert_allclose(out.ravel(), expected.full().ravel(), atol=TOL, rtol=0)


def test_snap_equals_the_diagonal_operator():
    rng = np.random.default_rng(4)
    kets = random_kets(rng, 5, N)
    theta = rng.uniform(-math.pi, math.pi, (5, 7))
    out = snap(torch.as_tensor(kets), torch.as_tensor(theta)).numpy()
    for phases, ket, result in zip(theta, kets, out):
        full = np.zeros(N)
        full[:7] = phases
        operator = qt.qdiags(np.exp(1j * full), 0)
        np.testing.assert_allclose(result, (operator * qt.Qobj(ket)).full().ravel(), atol=TOL, rtol=0)


def test_displaced_snap_equals_qutip_operators():
    """One control step D(α)† SNAP(θ) D(α) = D(−α) SNAP(θ) D(α), with qutip.displace and a diagonal SNAP."""
    rng = np.random.default_rng(5)
    kets = random_kets(rng, 5, N, support=8)
    alphas = rng.normal(size=5) + 1j * rng.normal(size=5)
    theta = rng.uniform(-math.pi, math.pi, (5, 6))
    out = FockSpace(N).displaced_snap(torch.as_tensor(kets), torch.as_tensor(alphas), torch.as_tensor(theta)).numpy()
    for alpha, phases, ket, result in zip(alphas, theta, kets, out):
        full = np.zeros(N)
        full[:6] = phases
        step = qt.displace(N, -alpha) * qt.qdiags(np.exp(1j * full), 0) * qt.displace(N, alpha)
        np.testing.assert_allclose(result, (step * qt.Qobj(ket)).full().ravel(), atol=TOL, rtol=0)


def qubit_ket(ket: np.ndarray) -> qt.Qobj:
    return qt.Qobj(ket.ravel(), dims=[[2, N], [1, 1]])


def test_qubit_rotation_equals_qutip():
    rng = np.random.default_rng(5)
    kets = random_kets(rng, 5, 2 * N).reshape(5, 2, N)
    theta, phi = rng.uniform(-math.pi, math.pi, 5), rng.uniform(-math.pi, math.pi, 5)
    out = rotate_qubit(torch.as_tensor(kets), torch.as_tensor(theta), torch.as_tensor(phi)).numpy()
    for t, p, ket, result in zip(theta, phi, kets, out):
        generator = math.cos(p) * qt.sigmax() + math.sin(p) * qt.sigmay()
        rotation = qt.tensor((-0.5j * t * generator).expm(), qt.qeye(N))
        np.testing.assert_allclose(result.ravel(), (rotation * qubit_ket(ket)).full().ravel(), atol=TOL, rtol=0)


def test_echoed_conditional_displacement_equals_qutip():
    rng = np.random.default_rng(6)
    kets = np.zeros((5, 2, N), dtype=np.complex128)
    kets[:, :, :5] = random_kets(rng, 5, 10).reshape(5, 2, 5)
    betas = rng.uniform(-2, 2, 5) + 1j * rng.uniform(-2, 2, 5)
    out = echoed_conditional_displacement(FockSpace(N), torch.as_tensor(kets), torch.as_tensor(betas)).numpy()
    g, e = qt.basis(2, 0), qt.basis(2, 1)
    for beta, ket, result in zip(betas, kets, out):
        operator = qt.tensor(e * g.dag(), qt.displace(N, beta / 2)) + qt.tensor(g * e.dag(), qt.displace(N, -beta / 2))
        np.testing.assert_allclose(result.ravel(), (operator * qubit_ket(ket)).full().ravel(), atol=TOL, rtol=0)


def test_wigner_equals_qutip_for_full_support_kets():
    rng = np.random.default_rng(7)
    kets = random_kets(rng, 3, N)
    xvec, yvec = np.linspace(-6, 6, 25), np.linspace(-5, 5.5, 19)
    ours = wigner(torch.as_tensor(kets), torch.as_tensor(xvec), torch.as_tensor(yvec)).numpy()
    for ket, w in zip(kets, ours):
        np.testing.assert_allclose(w, qt.wigner(qt.Qobj(ket), xvec, yvec), atol=TOL, rtol=0)


def test_wigner_of_a_qubit_oscillator_ket_is_that_of_the_reduced_state():
    rng = np.random.default_rng(8)
    ket = random_kets(rng, 1, 2 * N).reshape(1, 2, N)
    xvec = np.linspace(-4, 4, 9)
    ours = wigner(torch.as_tensor(ket), torch.as_tensor(xvec), torch.as_tensor(xvec))[0].numpy()
    reduced = qubit_ket(ket[0]).ptrace(1)
    np.testing.assert_allclose(ours, qt.wigner(reduced, xvec, xvec), atol=TOL, rtol=0)


def test_displaced_parity_is_pi_times_wigner_at_each_envs_own_points():
    rng = np.random.default_rng(9)
    kets = random_kets(rng, 4, N, support=12)
    alphas = rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3))
    ours = displaced_parity(torch.as_tensor(kets), torch.as_tensor(alphas)).numpy()
    for ket, points, values in zip(kets, alphas, ours):
        for alpha, value in zip(points, values):
            x, y = math.sqrt(2) * alpha.real, math.sqrt(2) * alpha.imag
            assert value == pytest.approx(math.pi * qt.wigner(qt.Qobj(ket), [x], [y])[0, 0], abs=TOL)


def born_frequency(measure, ket: torch.Tensor, count: int, seed: int) -> tuple[float, torch.Tensor]:
    uniforms = torch.as_tensor(np.random.default_rng(seed).random(count))
    outcome, after = measure(ket.expand(count, *ket.shape[1:]), uniforms)
    return outcome.double().mean().item(), after


def test_number_parity_and_qubit_measurements_follow_born_and_collapse():
    rng = np.random.default_rng(10)
    ket = torch.as_tensor(random_kets(rng, 1, N, support=6))
    probs = ket.abs().square()[0]
    count = 20000
    for measure, p, kept in [(lambda k, u: measure_number(k, 2, u), probs[2], [2]),
                             (measure_parity, probs[0::2].sum(), list(range(0, N, 2)))]:
        frequency, after = born_frequency(measure, ket, count, 0)
        p = float(p)
        assert abs(frequency - p) < 4 * math.sqrt(p * (1 - p) / count)
        outcome, after = measure(ket, torch.tensor([0.0]))
        assert bool(outcome[0])
        np.testing.assert_allclose(after[0, kept].numpy(), (ket[0, kept] / ket[0, kept].norm()).numpy(), atol=TOL)
        assert after.norm().item() == pytest.approx(1.0, abs=TOL)
    joint = torch.as_tensor(random_kets(rng, 1, 2 * N, support=2 * N).reshape(1, 2, N))
    p_excited = float(joint[0, 1].norm() ** 2)
    frequency, after = born_frequency(measure_qubit, joint, count, 1)
    assert abs(frequency - p_excited) < 4 * math.sqrt(p_excited * (1 - p_excited) / count)
    excited, after = measure_qubit(joint, torch.tensor([0.0]))
    assert not bool(excited[0]) and after[0, 1].abs().max().item() == 0.0
    assert after.norm().item() == pytest.approx(1.0, abs=TOL)


def test_parity_of_qubit_oscillator_kets_sums_both_qubit_branches_and_keeps_both():
    rng = np.random.default_rng(11)
    joint = torch.as_tensor(random_kets(rng, 1, 2 * N).reshape(1, 2, N))
    p_even = float(joint[0, :, 0::2].abs().square().sum())
    even, after = measure_parity(joint, torch.tensor([0.5 * p_even]))
    assert bool(even[0]) and after[0, :, 1::2].abs().max().item() == 0.0
    np.testing.assert_allclose(after[0, :, 0::2].numpy(), (joint[0, :, 0::2] / math.sqrt(p_even)).numpy(), atol=TOL)
    odd, _ = measure_parity(joint, torch.tensor([p_even + 0.5 * (1 - p_even)]))
    assert not bool(odd[0])


def test_a_measurement_never_collapses_onto_an_outcome_of_probability_zero():
    """u ∈ [0, 1): the qubit is excited iff u ≥ p_g, so a ket in |e⟩ reads excited even at u = 0."""
    excited_ket = torch.zeros(1, 2, N, dtype=torch.complex128)
    excited_ket[0, 1, 3] = 1.0
    excited, after = measure_qubit(excited_ket, torch.tensor([0.0]))
    assert bool(excited[0]) and torch.equal(after, excited_ket)
    vacuum = torch.zeros(1, N, dtype=torch.complex128)
    vacuum[0, 0] = 1.0
    # the levels are occupied iff u < p: never at p = 0 (even at u = 0), always at p = 1
    for outcome, after, expected in [(*measure_number(vacuum, 2, torch.tensor([0.0])), False),
                                     (*measure_number(vacuum, 0, torch.tensor([0.999])), True),
                                     (*measure_parity(vacuum, torch.tensor([0.999])), True)]:
        assert bool(outcome[0]) == expected and torch.equal(after, vacuum)


def test_qubit_rotation_keeps_the_dtype_of_the_kets():
    kets = torch.as_tensor(random_kets(np.random.default_rng(12), 2, 2 * N).reshape(2, 2, N)).to(torch.complex64)
    angles = torch.tensor([0.3, -1.2], dtype=torch.float64)
    assert rotate_qubit(kets, angles, angles).dtype == torch.complex64


def test_wigner_grid_is_taken_in_the_precision_of_the_kets():
    """A complex64 ket gives the same float32 Wigner function for a float64 or a float32 grid."""
    ket = torch.as_tensor(random_kets(np.random.default_rng(13), 1, 8)).to(torch.complex64)
    grid = np.linspace(-2.0, 2.0, 7)
    w64 = wigner(ket, torch.as_tensor(grid), torch.as_tensor(grid))
    w32 = wigner(ket, torch.as_tensor(grid, dtype=torch.float32), torch.as_tensor(grid, dtype=torch.float32))
    assert w64.dtype == torch.float32 and torch.equal(w64, w32)


def test_snap_acts_on_both_qubit_branches_of_qubit_oscillator_kets():
    kets = torch.as_tensor(random_kets(np.random.default_rng(14), 3, 2 * N).reshape(3, 2, N))
    theta = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.2, -0.7], [0.0, 3.0, 1.0]], dtype=torch.float64)
    joint = snap(kets, theta)
    for branch in (0, 1):
        torch.testing.assert_close(joint[:, branch], snap(kets[:, branch], theta), rtol=0, atol=0)


def test_single_precision_fock_space_displaces_in_single_precision():
    kets = torch.as_tensor(random_kets(np.random.default_rng(15), 2, N, support=8))
    alpha = torch.tensor([0.4 + 0.3j, -0.8j], dtype=torch.complex128)
    single = FockSpace(N, dtype=torch.complex64)
    out = single.displace(kets.to(torch.complex64), alpha)
    assert out.dtype == torch.complex64 and single.dtype == torch.complex64
    torch.testing.assert_close(out.to(torch.complex128), FockSpace(N).displace(kets, alpha), rtol=0, atol=1e-5)

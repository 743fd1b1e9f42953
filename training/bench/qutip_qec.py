"""A plain loop of QuTiP operations doing QubitErrorCorrection-v0's steps (the comparison of ``physrl bench``).

Every env step, one env after another as a QuTiP user would write it: the noise as sums of Kraus
products (``qutip.tensor`` operators) on each of the four channel matrices, the gate as a ``Qobj``
unitary or the measurement as projectors with Born sampling, then R_Q by minimising
``Qobj.norm("tr")`` of Σᵢ nᵢ δρᵢ over the sphere with ``scipy.optimize.minimize`` (Nelder–Mead on
the two angles, warm-started at the previous minimiser), and the reward of Fösel et al., PRX 8,
031084 (2018), Eq. (6).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import qutip as qt
import torch
from scipy.optimize import minimize

from physrl.envs.validation import check_int
from physrl.envs.qec import QubitErrorCorrectionVectorEnv, initial_channel, step_reward


def _on(op: qt.Qobj, qubit: int, n: int) -> qt.Qobj:
    return qt.tensor(*[op if k == qubit else qt.qeye(2) for k in range(n)])


def _recoverable(deltas: list[qt.Qobj], angles: np.ndarray) -> tuple[float, np.ndarray]:
    def norm(x: np.ndarray) -> float:
        n = (math.sin(x[0]) * math.cos(x[1]), math.sin(x[0]) * math.sin(x[1]), math.cos(x[0]))
        return (n[0] * deltas[0] + n[1] * deltas[1] + n[2] * deltas[2]).norm("tr")

    result = minimize(norm, angles, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    return float(result.fun), result.x


def qutip_steps_per_second(num_envs: int, steps: int, seed: int = 0, **env_options: Any) -> float:
    """Env steps per second of the QuTiP loop: ``steps`` uniformly random actions in each of ``num_envs`` envs."""
    num_envs, steps = check_int("num_envs", num_envs, 1), check_int("steps", steps, 1)
    envs = QubitErrorCorrectionVectorEnv(num_envs=1, **env_options)
    n, t_dec, noise = envs.options["n_qubits"], float(envs.options["t_dec"]), envs.options["noise"]
    p = (1 - math.exp(-2 / t_dec)) / 2
    identity = qt.tensor(*[qt.qeye(2)] * n)
    kraus = []
    if noise in ("bitflip", "bitflip+dephasing"):
        kraus = [[(1 - p, identity), (p, _on(qt.sigmax(), q, n))] for q in range(n)]
    if noise in ("dephasing", "bitflip+dephasing"):
        kraus += [[(1 - p, identity), (p, _on(qt.sigmaz(), q, n))] for q in range(n)]
    excitations = sum(_on(qt.basis(2, 1).proj(), q, n) for q in range(n))
    collective = (qt.liouvillian(None, [math.sqrt(4 / t_dec) * excitations])).expm() \
        if noise == "correlated" else None
    p0, p1 = qt.basis(2, 0).proj(), qt.basis(2, 1).proj()
    unitaries, projectors = [], []
    for name in envs.action_names:
        qubits = [int(v) for v in name[name.find("(") + 1:-1].split(",")] if "(" in name else []
        projectors.append((_on(p0, qubits[0], n), _on(p1, qubits[0], n)) if name.startswith("measure") else None)
        if name.startswith("cnot"):
            c, t = qubits
            unitaries.append(_on(p0, c, n) + qt.tensor(*[p1 if k == c else qt.sigmax() if k == t else qt.qeye(2)
                                                         for k in range(n)]))
        elif name.startswith("x"):
            unitaries.append(_on(qt.sigmax(), qubits[0], n))
        elif name.startswith("h"):
            unitaries.append(_on(qt.Qobj([[1, 1], [1, -1]]) / math.sqrt(2), qubits[0], n))
        else:
            unitaries.append(None)
    dims = [[2] * n, [2] * n]
    start = [qt.Qobj(m.numpy(), dims=dims) for m in initial_channel(n)]
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, len(envs.action_names), size=(steps, num_envs))
    uniforms = rng.random((steps, num_envs))
    states = [list(start) for _ in range(num_envs)]
    recoverable = [1.0] * num_envs
    angles = [np.zeros(2) for _ in range(num_envs)]
    returns = [0.0] * num_envs
    begin = time.perf_counter()
    for t in range(steps):
        for i in range(num_envs):
            mats = states[i]
            for channel in kraus:
                mats = [sum(w * k * m * k.dag() for w, k in channel) for m in mats]
            if collective is not None:
                mats = [qt.vector_to_operator(collective * qt.operator_to_vector(m)) for m in mats]
            action = actions[t, i]
            if unitaries[action] is not None:
                u = unitaries[action]
                mats = [u * m * u.dag() for m in mats]
            if projectors[action] is None:
                averaged, angles[i] = _recoverable(mats[1:], angles[i])
                new = averaged
            else:
                branches = [[pr * m * pr for m in mats] for pr in projectors[action]]
                results = [_recoverable(b[1:], angles[i]) for b in branches]
                averaged = results[0][0] + results[1][0]
                probability0 = qt.expect(projectors[action][0], mats[0])
                m = int(uniforms[t, i] >= probability0)
                weight = max(probability0 if m == 0 else 1 - probability0, 1e-300)
                mats = [b / weight for b in branches[m]]
                new, angles[i] = results[m][0] / weight, results[m][1]
            reward, revealed = step_reward(torch.tensor([averaged]), torch.tensor([recoverable[i]]),
                                           torch.tensor([projectors[action] is not None]), t_dec)
            terminated = bool(revealed)
            returns[i] += float(reward)
            states[i], recoverable[i] = mats, new
            if terminated or (t + 1) % envs.max_steps == 0:
                states[i], recoverable[i], angles[i], returns[i] = list(start), 1.0, np.zeros(2), 0.0
    return num_envs * steps / (time.perf_counter() - begin)

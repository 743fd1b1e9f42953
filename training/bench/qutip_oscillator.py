"""A plain loop of QuTiP operations doing OscillatorStatePrep-v0's steps (the comparison of ``physrl bench``).

Every env step builds D(α) with ``qutip.displace`` (a matrix exponential) and SNAP(θ) as a diagonal
``Qobj`` (or, with ``control="ecd"``, the qubit rotation and the echoed conditional displacement as
tensor products), applies U to the ket, and at the last step of an episode computes the fidelity
and draws the single-shot ``"fock"`` reward, one env after another, as a QuTiP user would write it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import qutip as qt

from physrl.envs.validation import check_int
from physrl.envs.oscillator import OscillatorStatePrepVectorEnv


def qutip_steps_per_second(num_envs: int, steps: int, seed: int = 0, **env_options: Any) -> float:
    """Env steps per second of the QuTiP loop: ``steps`` steps of each of ``num_envs`` envs.

    ``env_options`` are the environment's (validated by it); ``reward_mode="wigner"`` is not supported.
    """
    num_envs, steps = check_int("num_envs", num_envs, 1), check_int("steps", steps, 1)
    envs = OscillatorStatePrepVectorEnv(num_envs=1, **env_options)
    reward_mode, qubit = envs.options["reward_mode"], envs.options["control"] == "ecd"
    if reward_mode == "wigner":
        raise ValueError("reward_mode='wigner' is not supported by the QuTiP loop; use 'fock' or 'fidelity'")
    n_levels, horizon, alpha_max = envs.options["n_levels"], envs.max_steps, envs.alpha_max
    action_size = envs.single_action_space.shape[0]
    target = qt.Qobj(envs.target)
    g, e = qt.basis(2, 0), qt.basis(2, 1)
    if qubit:
        target = qt.tensor(g, target)
        start = qt.tensor(g, qt.basis(n_levels, 0))
    else:
        start = qt.basis(n_levels, 0)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps, num_envs, action_size))
    kets = [start] * num_envs
    begin = time.perf_counter()
    for t in range(steps):
        for i in range(num_envs):
            a = actions[t, i]
            alpha = alpha_max * complex(a[0], a[1])
            if qubit:
                axis = math.cos(math.pi * a[3]) * qt.sigmax() + math.sin(math.pi * a[3]) * qt.sigmay()
                rotation = qt.tensor((-0.5j * math.pi * a[2] * axis).expm(), qt.qeye(n_levels))
                ecd = (qt.tensor(e * g.dag(), qt.displace(n_levels, alpha / 2))
                       + qt.tensor(g * e.dag(), qt.displace(n_levels, -alpha / 2)))
                kets[i] = ecd * (rotation * kets[i])
            else:
                phases = np.zeros(n_levels)
                phases[:action_size - 2] = math.pi * a[2:]  # the SNAP phases follow the displacement
                displace = qt.displace(n_levels, alpha)
                kets[i] = displace.dag() * (qt.qdiags(np.exp(1j * phases), 0) * (displace * kets[i]))
            if (t + 1) % horizon == 0:
                fidelity = abs(target.overlap(kets[i])) ** 2
                if reward_mode == "fock":
                    _ = 1.0 if rng.random() < fidelity else -1.0
                kets[i] = start
    return num_envs * steps / (time.perf_counter() - begin)

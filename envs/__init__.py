"""physrl environments. Importing this package registers every environment under ``physrl/``.

>>> import gymnasium as gym, physrl.envs
>>> env = gym.make("physrl/TreasureMaze-v0")
>>> envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=4096, device="cpu")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

#: id -> (module, single-env class, vector class, default kwargs). The horizon is not among the
#: kwargs: every id registers its core's default ``max_steps`` as ``max_episode_steps``.
ENVIRONMENTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "physrl/RandomWalker-v0": ("walker", "RandomWalkerEnv", "RandomWalkerVectorEnv", {}),
    "physrl/WalkerTarget-v0": ("walker", "WalkerTargetEnv", "WalkerTargetVectorEnv", {}),
    "physrl/TreasureMaze-v0": ("maze", "TreasureMazeEnv", "TreasureMazeVectorEnv", {}),
    "physrl/OscillatorStatePrep-v0": ("oscillator", "OscillatorStatePrepEnv", "OscillatorStatePrepVectorEnv", {}),
    "physrl/TreasureMazeChallenge-v0": ("maze", "TreasureMazeEnv", "TreasureMazeVectorEnv",
                                        {"size": 15, "n_chests": 10, "delete_chests": True,
                                         "obs_mode": "image", "fixed_maze": False, "wall_penalty": 0.0}),
    "physrl/QubitErrorCorrection-v0": ("qec", "QubitErrorCorrectionEnv", "QubitErrorCorrectionVectorEnv", {}),
}


def register_all() -> None:
    """Register every physrl environment with Gymnasium (idempotent).

    The spec carries the horizon as ``max_episode_steps`` (Gymnasium's convention, as CartPole):
    ``gym.make`` adds ``TimeLimit`` at that step, ``gym.make_vec`` passes it to the vector face as
    its horizon, and the batched core truncates at the same step (its ``max_steps`` option).
    """
    from importlib import import_module

    from physrl.envs.core import default_horizon

    for env_id, (module, single, vector, kwargs) in ENVIRONMENTS.items():
        if env_id in gym.registry:
            continue
        core_class = getattr(import_module(f"physrl.envs.{module}"), single).core_class
        gym.register(env_id, entry_point=f"physrl.envs.{module}:{single}",
                     vector_entry_point=f"physrl.envs.{module}:{vector}", kwargs=dict(kwargs),
                     max_episode_steps=default_horizon(core_class))


register_all()

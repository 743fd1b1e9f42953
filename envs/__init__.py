"""physrl environments. Importing this package registers every environment under ``physrl/``.

>>> import gymnasium as gym, physrl.envs
>>> env = gym.make("physrl/TreasureMaze-v0")
>>> envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=4096, device="cpu")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

#: id -> (module, single-env class, vector class, default kwargs)
ENVIRONMENTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "physrl/RandomWalker-v0": ("walker", "RandomWalkerEnv", "RandomWalkerVectorEnv", {}),
    "physrl/WalkerTarget-v0": ("walker", "WalkerTargetEnv", "WalkerTargetVectorEnv", {}),
    "physrl/TreasureMaze-v0": ("maze", "TreasureMazeEnv", "TreasureMazeVectorEnv", {}),
    "physrl/OscillatorStatePrep-v0": ("oscillator", "OscillatorStatePrepEnv", "OscillatorStatePrepVectorEnv", {}),
    "physrl/TreasureMazeChallenge-v0": ("maze", "TreasureMazeEnv", "TreasureMazeVectorEnv",
                                        {"size": 15, "n_chests": 10, "max_steps": 40, "delete_chests": True,
                                         "obs_mode": "image", "fixed_maze": False, "wall_penalty": 0.0}),
    "physrl/QubitErrorCorrection-v0": ("qec", "QubitErrorCorrectionEnv", "QubitErrorCorrectionVectorEnv", {}),
}


def register_all() -> None:
    """Register every physrl environment with Gymnasium (idempotent).

    The horizon is an environment option (``max_steps``), enforced
    by the batched core as truncation, so no ``max_episode_steps`` is registered: the single and
    vector faces then truncate at exactly the same step.
    """
    for env_id, (module, single, vector, kwargs) in ENVIRONMENTS.items():
        if env_id in gym.registry:
            continue
        gym.register(env_id, entry_point=f"physrl.envs.{module}:{single}",
                     vector_entry_point=f"physrl.envs.{module}:{vector}", kwargs=dict(kwargs))


register_all()

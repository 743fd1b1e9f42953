import os

import gymnasium as gym
import pytest
import torch

import physrl.envs  # noqa: F401  (registers the environments)

os.environ.setdefault("PHYSRL_SMALL_BUDGET", "1")
torch.set_num_threads(1)

PHYSRL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("physrl/"))

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

"""The uniformly random policy of any env with a Discrete or bounded Box action space."""

from __future__ import annotations

import torch
from gymnasium import spaces

from physrl.agents.rollout import Policy

def random_policy(action_space: spaces.Space, seed: int = 0) -> Policy:
    """Uniformly random actions from the single-env ``action_space`` (Discrete or bounded Box)."""
    generators: dict[torch.device, torch.Generator] = {}

    def policy(obs: torch.Tensor) -> torch.Tensor:
        if obs.device not in generators:
            generators[obs.device] = torch.Generator(device=obs.device).manual_seed(seed)
        generator, n = generators[obs.device], obs.shape[0]
        if isinstance(action_space, spaces.Discrete):
            low = int(action_space.start)
            return torch.randint(low, low + int(action_space.n), (n,), generator=generator, device=obs.device)
        if isinstance(action_space, spaces.Box):
            low = torch.as_tensor(action_space.low, dtype=torch.float32, device=obs.device)
            high = torch.as_tensor(action_space.high, dtype=torch.float32, device=obs.device)
            u = torch.rand((n, *action_space.shape), generator=generator, device=obs.device)
            return low + (high - low) * u
        raise TypeError(f"random_policy needs a Discrete or Box action space, got {action_space}")

    return policy

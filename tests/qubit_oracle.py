"""A slow, plain oracle for R_Q used by the tests: the minimum over a dense grid of directions."""

import torch

from physrl.envs.kernels.recoverable_information import fibonacci_half_sphere, trace_norm_along


def brute_force_recoverable_information(delta: torch.Tensor, points: int = 20000) -> torch.Tensor:
    """min of ‖Σᵢ nᵢ δρᵢ‖₁ over a Fibonacci grid of ``points`` directions on the half sphere (the tests' oracle)."""
    grid = fibonacci_half_sphere(points, delta.device)
    out = [trace_norm_along(delta, chunk.expand(delta.shape[0], -1, -1)).amin(1) for chunk in grid.split(2000)]
    return torch.stack(out, 1).amin(1)

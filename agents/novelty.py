"""A count-based exploration bonus: H. Tang et al., *#Exploration: A Study of Count-Based Exploration for
Deep Reinforcement Learning*, NeurIPS 2017. Observations are counted by their SimHash
φ(s) = sign(A s) ∈ {0, 1}ᵏ (A a fixed Gaussian k × dim matrix), and reaching s pays β/√n(φ(s)).

Nearby observations share a code, so a continuous state that only drifts (the QEC channel under noise)
keeps its count, while a new kind of state (another code, another frame) starts at n = 1.
"""

from __future__ import annotations

from typing import Any

import torch


class SimHashCounts:
    """Visit counts of observations (``dim`` numbers each) by their ``bits``-bit SimHash."""

    def __init__(self, dim: int, bits: int, seed: int, device: torch.device) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.projection = torch.randn(dim, bits, generator=generator, dtype=torch.float64).to(device)
        self.weights = (1 << torch.arange(bits, device=device)).to(torch.int64)
        self.counts = torch.zeros(2**bits, dtype=torch.float64, device=device)

    def codes(self, obs: torch.Tensor) -> torch.Tensor:
        """φ(s) as integers in [0, 2ᵏ) for a batch of observations (N, dim)."""
        signs = (obs.to(torch.float64) @ self.projection) > 0
        return (signs.to(torch.int64) * self.weights).sum(-1)

    def bonus(self, obs: torch.Tensor, coef: float) -> torch.Tensor:
        """Count every observation of the batch ``obs`` (N, dim), then return β/√n(φ(s)) for each (N,) float32."""
        codes = self.codes(obs)
        self.counts.index_add_(0, codes, torch.ones(len(codes), dtype=torch.float64, device=codes.device))
        return (coef / self.counts[codes].sqrt()).to(torch.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"projection": self.projection.clone(), "counts": self.counts.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["counts"].shape != self.counts.shape or state["projection"].shape != self.projection.shape:
            raise ValueError(f"novelty counts of shape {tuple(state['counts'].shape)} and projection "
                             f"{tuple(state['projection'].shape)} do not fit this agent's "
                             f"{tuple(self.counts.shape)} and {tuple(self.projection.shape)}")
        self.projection = state["projection"].to(self.projection.device, copy=True)
        self.counts = state["counts"].to(self.counts.device, copy=True)

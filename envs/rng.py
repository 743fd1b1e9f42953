"""Counter-based random numbers for batched environments.

Every sub-environment owns an independent stream keyed by ``(seed, episode, domain)``. A draw is a
hash of the key, a per-environment counter and the element index, so that

* sub-environment ``i`` of a vector env seeded with ``s + i`` draws exactly the numbers that a
  single env seeded with ``s + i`` draws (the single-vs-vector equivalence of the architecture page);
* the numbers are the same on every device (integer arithmetic only);
* every episode starts a fresh stream, so work done on a step that autoreset discards never shifts
  the numbers of the next episode.

The hash is Wellons' ``lowbias32`` integer hash, evaluated in int64 with products split so that no
intermediate exceeds 2**49 (torch has no unsigned 32-bit multiply on every device).
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
MAX_SEED = 2**63 - 1


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for int64 tensors holding values in [0, 2**32)."""
    low, high = x & 0xFFFF, x >> 16
    return (low * c + ((high * (c & 0xFFFF)) << 16)) & MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """Wellons' lowbias32 hash on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class BatchRandom:
    """One independent random stream per sub-environment, advanced together or by index."""

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", domain: int = 0) -> None:
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.domain = domain
        zeros = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.seed = zeros.clone()
        self.episode = zeros.clone()
        self.key = torch.zeros(num_envs, 2, dtype=torch.int64, device=self.device)
        self.counter = zeros.clone()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The streams' state: seeds, episode counts, keys and counters, by name (not copies)."""
        return {"seed": self.seed, "episode": self.episode, "key": self.key, "counter": self.counter}

    def start_episode(self, index: torch.Tensor, seeds: torch.Tensor | None = None) -> None:
        """Begin a new episode for the envs in ``index``: reseed them, or advance their episode count."""
        if seeds is None:
            self.episode[index] += 1
        else:
            self.seed[index] = seeds.to(self.device, torch.int64)
            self.episode[index] = 0
        seed, episode = self.seed[index], self.episode[index]
        k0 = hash32(hash32((seed & MASK32) ^ 0x5BD1E995) ^ ((seed >> 32) & MASK32))
        k0 = hash32(k0 ^ self.domain)
        k1 = hash32(hash32(k0 ^ (episode & MASK32)) ^ ((episode >> 32) & MASK32) ^ 0x68E31DA4)
        self.key[index] = torch.stack([k0, k1], dim=1)
        self.counter[index] = 0

    def bits(self, index: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniform 32-bit integers of shape ``(len(index), *shape)``; advances those envs' counters."""
        if index is None:
            key, counter = self.key, self.counter
            self.counter = counter + 1
        else:
            key, counter = self.key[index], self.counter[index]
            self.counter[index] = counter + 1
        base = hash32(key[:, 0] ^ hash32(counter ^ key[:, 1]))
        size = 1
        for s in shape:
            size *= s
        element = hash32(torch.arange(size, device=self.device, dtype=torch.int64) ^ 0x27D4EB2F)
        return hash32(base[:, None] ^ element[None, :]).reshape(len(base), *shape)

    def uniform(self, index: torch.Tensor | None, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Uniform numbers in [0, 1) of shape ``(len(index), *shape)``; 24 random bits in float32, 32 otherwise."""
        bits = self.bits(index, shape)
        if dtype == torch.float32:
            return (bits >> 8).to(dtype) * (1.0 / 2**24)
        return bits.to(dtype) * (1.0 / 2**32)

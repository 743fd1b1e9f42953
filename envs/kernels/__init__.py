"""Quantum simulation kernels shared by the quantum environments (batched torch, validated against QuTiP)."""

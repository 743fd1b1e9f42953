"""Benchmarks: :mod:`~physrl.training.bench.throughput` is ``physrl bench`` (env and training steps per
second against the alternatives), the QuTiP reference loops it compares with
(:mod:`~physrl.training.bench.qutip_qec`, :mod:`~physrl.training.bench.qutip_oscillator`), and
:mod:`~physrl.training.bench.gpu_check` is ``make gpu-check``.
"""

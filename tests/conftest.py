import os
import sys
import threading

import gymnasium as gym
import pytest
import torch
import tqdm

import physrl.envs  # noqa: F401  (registers the environments)

os.environ.setdefault("PHYSRL_SMALL_BUDGET", "1")
torch.set_num_threads(1)

PHYSRL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("physrl/"))

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under mutation testing, give tqdm a lock private to each process and no monitor thread: its
    default lock is a multiprocessing semaphore shared by every forked mutant worker, so one worker
    killed at its time limit while holding it hangs every later worker that draws a progress bar."""
    if "MUTANT_UNDER_TEST" in os.environ:
        tqdm.tqdm.monitor_interval = 0
        tqdm.tqdm.set_lock(threading.RLock())


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under mutation testing (``make mutate``, docs/development.md) empty the package's ``functools``
    caches (the qubit kernels' permutation and pair tables) before every test: a mutant's tests run in
    a process forked after a clean run, whose caches hold results of the unmutated code, and the
    coverage run must see every test that builds a table, not only the first."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    for name, module in list(sys.modules.items()):
        if name.startswith("physrl"):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()

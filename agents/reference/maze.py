"""Known answers of the treasure maze (:mod:`physrl.envs.maze`): the exact optimum of a maze
(:func:`optimal_return`, :func:`optimal_plan`, and :class:`MazeOptimalPolicy`, which plays it) and the
nearest-chest planner (:func:`maze_greedy_policy`).

The optimum belongs here rather than in the env: the env only simulates (and exposes each maze's
:class:`~physrl.envs.maze.MazeLayout`); finding the best walk through a layout is planning, an agent's
work, which the challenge's scorer, ``physrl evaluate`` and the training charts read.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from physrl.envs.maze import MOVES, MazeLayout
from physrl.envs.validation import check_int


def bfs_distances(walls: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Shortest walking distance from ``source`` to every cell (−1 where unreachable)."""
    rows, cols = walls.shape
    dist = np.full(walls.shape, -1, dtype=np.int64)
    dist[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES[1:]:
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols and not walls[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def optimal_return(layout: MazeLayout, max_steps: int, delete_chests: bool = True) -> int:
    """Exact maximum return from ``layout.start`` within ``max_steps`` steps (no wall penalty).

    With deleted chests: the largest set of chests that some visiting order collects in time,
    by breadth-first distances and dynamic programming over chest subsets (Held–Karp):
    ``best[S, j]`` = fewest steps that collect exactly the chests S, ending on chest j. Without
    deletion every step ending on a chest pays, so the optimum walks to the nearest chest (d steps)
    and stays: T − d + 1. :func:`optimal_plan` also gives the actions that achieve it.
    """
    return optimal_plan(layout, max_steps, delete_chests)[0]


def optimal_plan(layout: MazeLayout, max_steps: int, delete_chests: bool = True) -> tuple[int, list[int]]:
    """The exact maximum return (as :func:`optimal_return`) and a list of actions that achieves it.

    The actions walk shortest paths between the chests in the optimal visiting order (ties go to
    the first action in :data:`~physrl.envs.maze.MOVES`); they stop at the last chest, after which staying is optimal.
    """
    max_steps = check_int("max_steps", max_steps, 0)
    points = [tuple(layout.start)] + [tuple(c) for c in layout.chests]
    maps = [bfs_distances(layout.walls, p) for p in points]
    dist = np.array([[m[q] for q in points] for m in maps], dtype=np.int64)
    dist[dist < 0] = max_steps + 1
    n = len(points) - 1
    if n == 0:
        return 0, []
    if not delete_chests:
        nearest = int(dist[0, 1:].argmin())
        value = max(0, max_steps - int(dist[0, 1 + nearest]) + 1)
        return value, _walk(layout.walls, maps, [0, 1 + nearest]) if value else []
    too_far = max_steps + 1
    between = dist[1:, 1:]
    best = np.full((1 << n, n), too_far, dtype=np.int64)
    best[1 << np.arange(n), np.arange(n)] = dist[0, 1:]
    came_from = np.full((1 << n, n), -1, dtype=np.int64)
    collected, final = 0, (0, -1)
    for subset in range(1, 1 << n):
        steps = best[subset]
        if steps.min() > max_steps:
            continue
        size = bin(subset).count("1")
        if size > collected:
            collected, final = size, (subset, int(steps.argmin()))
        totals = steps[:, None] + between
        previous, reach = totals.argmin(axis=0), totals.min(axis=0)
        for k in range(n):
            bit = 1 << k
            if not subset & bit and reach[k] < best[subset | bit, k]:
                best[subset | bit, k] = reach[k]
                came_from[subset | bit, k] = previous[k]
    order: list[int] = []
    subset, last = final
    while last >= 0:
        order.append(last)
        subset, last = subset & ~(1 << last), came_from[subset, last]
    return collected, _walk(layout.walls, maps, [0] + [1 + k for k in reversed(order)])


def _walk(walls: np.ndarray, maps: list[np.ndarray], stops: list[int]) -> list[int]:
    """Actions along shortest paths through the points ``stops`` (indices into the distance ``maps``)."""
    actions: list[int] = []
    here = tuple(int(v) for v in np.argwhere(maps[stops[0]] == 0)[0])
    for stop in stops[1:]:
        to_go = maps[stop]
        while to_go[here] > 0:
            for action, (dr, dc) in enumerate(MOVES[1:], start=1):
                step = (here[0] + dr, here[1] + dc)
                if not walls[step] and to_go[step] == to_go[here] - 1:
                    actions.append(action)
                    here = step
                    break
    return actions


def maze_greedy_policy(observations: torch.Tensor) -> torch.Tensor:
    """The nearest-chest planner on image observations (B, 3, M, M): step along a shortest path.

    Distances to the nearest chest come from a batched breadth-first relaxation over the free
    cells; ties go to the first action in :data:`~physrl.envs.maze.MOVES`; with no chest left the robot stays.
    """
    walls, chests, robot = observations[:, 0] > 0.5, observations[:, 1] > 0.5, observations[:, 2] > 0.5
    far = walls.shape[1] * walls.shape[2]
    dist = torch.where(chests, 0, far).to(torch.int64)
    dist = dist.masked_fill(walls, far)
    for step in range(far):
        padded = F.pad(dist, (1, 1, 1, 1), value=far)
        neighbours = torch.stack([padded[:, :-2, 1:-1], padded[:, 1:-1, 2:], padded[:, 2:, 1:-1],
                                  padded[:, 1:-1, :-2]]).amin(0)
        relaxed = torch.minimum(dist, neighbours + 1).masked_fill(walls, far)
        if step % 8 == 7 and torch.equal(relaxed, dist):
            break
        dist = relaxed
    padded = F.pad(dist, (1, 1, 1, 1), value=far)
    options = torch.stack([padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 1:-1, 2:],
                           padded[:, 2:, 1:-1], padded[:, 1:-1, :-2]], dim=1)
    cell = robot.flatten(1).to(torch.float32).argmax(dim=1)
    at_robot = options.flatten(2).gather(2, cell[:, None, None].expand(-1, len(MOVES), 1)).squeeze(2)
    return at_robot.argmin(dim=1)


class MazeOptimalPolicy:
    """The exact optimum of the treasure maze as a policy on image observations (B, 3, M, M).

    The first time it sees a state it plans ``max_steps`` steps ahead with :func:`optimal_plan`
    (so it must first see each episode at its start) and remembers the states along the plan;
    later steps of the episode replay the plan.
    """

    def __init__(self, max_steps: int, delete_chests: bool = True) -> None:
        self.max_steps, self.delete_chests = max_steps, delete_chests
        self.plans: dict[bytes, int] = {}

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        planes = obs.detach().cpu().numpy() > 0.5
        actions = [self._action(p) for p in planes]
        return torch.tensor(actions, dtype=torch.int64, device=obs.device)

    def _action(self, planes: np.ndarray) -> int:
        key = planes.tobytes()
        if key not in self.plans:
            self._plan(planes)
        return self.plans[key]

    def _plan(self, planes: np.ndarray) -> None:
        walls, chests, robot = planes
        start = tuple(int(v) for v in np.argwhere(robot)[0])
        layout = MazeLayout(walls, [tuple(int(v) for v in c) for c in np.argwhere(chests)], start)
        _, actions = optimal_plan(layout, self.max_steps, self.delete_chests)
        state = planes.copy()
        for action in actions + [0]:
            self.plans[state.tobytes()] = action
            r, c = np.argwhere(state[2])[0]
            dr, dc = MOVES[action]
            state[2, r, c] = False
            state[2, r + dr, c + dc] = True
            if self.delete_chests:
                state[1, r + dr, c + dc] = False

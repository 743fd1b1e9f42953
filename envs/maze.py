"""The treasure maze of Marquardt's course *Machine Learning for Physicists*.

:class:`TreasureMazeEnv` (``physrl/TreasureMaze-v0`` and the challenge's
``physrl/TreasureMazeChallenge-v0``) documents the task. This module also holds its batched core and
the maze generator; the exact optimum and the nearest-chest planner are known answers of
:mod:`physrl.agents.reference.maze`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from physrl.envs.core import BatchCore, SingleEnv, VectorEnv
from physrl.envs.validation import check_bool, check_choice, check_float, check_int
from physrl.envs.rng import BatchRandom

#: The moves (d_row, d_col) of the actions 0..4.
MOVES: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (0, 1), (1, 0), (0, -1))
ACTION_NAMES: tuple[str, ...] = ("stay", "up", "right", "down", "left")
OBS_MODES = ("image", "position")
#: The largest maze side M (the image observation and the state grow as M²).
MAX_SIZE = 101


@dataclass
class MazeLayout:
    """A maze as plain numpy/python data: walls (bool M×M), chests still present, start cell."""

    walls: np.ndarray
    chests: list[tuple[int, int]]
    start: tuple[int, int]


def free_cell_count(size: int) -> int:
    """Number of free cells of every generated maze of side ``size`` (a spanning tree of R² rooms)."""
    rooms = (size - 1) // 2
    return 2 * rooms * rooms - 1


def sidewinder_walls(coins: torch.Tensor, keys: torch.Tensor, size: int) -> torch.Tensor:
    """Carve one perfect maze per batch element.

    ``coins`` (bool, n×R×R) says which rooms join their east neighbour; ``keys`` (random 32-bit
    integers, n×R×R) choose the room of each run that opens north (largest key, ties broken by column).
    """
    n, rooms = coins.shape[0], (size - 1) // 2
    walls = torch.ones(n, size, size, dtype=torch.bool, device=coins.device)
    walls[:, 1::2, 1::2] = False
    east = coins.clone()
    east[:, 0, :] = True
    east[:, :, -1] = False
    walls[:, 1::2, 2:size - 1:2] &= ~east[:, :, :-1]
    run_end = (~east).to(torch.int64)
    run = torch.cumsum(run_end, dim=2) - run_end
    group = torch.arange(n * rooms, device=coins.device).view(n, rooms, 1) * rooms + run
    keys = keys * rooms + torch.arange(rooms, device=keys.device)
    best = torch.full((n * rooms * rooms,), -1, dtype=keys.dtype, device=keys.device)
    best = best.scatter_reduce(0, group.flatten(), keys.flatten(), "amax")
    north = keys == best[group]
    walls[:, 2:size - 1:2, 1::2] &= ~north[:, 1:, :]
    return walls


class MazeCore(BatchCore):
    """Batched treasure maze: walls, chests and robot position for every sub-env."""

    render_modes = ("ansi", "rgb_array")
    episode_frames = True  # TensorBoard's episode picture: a strip of the robot's moves

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", size: int = 11, n_chests: int = 10,
                 max_steps: int = 40, delete_chests: bool = True, wall_penalty: float = 0.0,
                 obs_mode: str = "image", fixed_maze: bool = False, maze_seed: int | None = None,
                 start: tuple[int, int] | None = None) -> None:
        super().__init__(num_envs, device, max_steps)
        self.size = check_int("size", size, 5, MAX_SIZE)
        if size % 2 == 0:
            raise ValueError(f"size must be odd (walls on even rows/columns, rooms on odd ones), got {size}")
        self.n_chests = check_int("n_chests", n_chests, 1)
        if n_chests > free_cell_count(size) - 1:
            raise ValueError(f"n_chests must be at most {free_cell_count(size) - 1} (free cells of a {size}x{size} "
                             f"maze minus the start), got {n_chests}")
        self.delete_chests = check_bool("delete_chests", delete_chests)
        self.wall_penalty = check_float("wall_penalty", wall_penalty, 0.0)
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        self.fixed_maze = check_bool("fixed_maze", fixed_maze)
        if maze_seed is not None and not fixed_maze:
            raise ValueError("maze_seed is only used with fixed_maze=True")
        if start is not None:
            start = tuple(start) if isinstance(start, (tuple, list, np.ndarray)) else (start,)
            if (len(start) != 2 or any(not isinstance(c, (int, np.integer)) or isinstance(c, (bool, np.bool_)) or c % 2 == 0 or not 0 < c < size
                                       for c in start)):
                raise ValueError(f"start must be a room cell (row, col) with odd coordinates in [1, {size - 2}], "
                                 f"got {start}")
        self.start = start
        cells = size * size
        if obs_mode == "image":
            self.single_observation_space = spaces.Box(0.0, 1.0, (3, size, size), np.float32)
        else:
            self.single_observation_space = spaces.Discrete(cells)
        self.single_action_space = spaces.Discrete(len(MOVES))
        self._delta = torch.tensor([dr * size + dc for dr, dc in MOVES], device=self.device)
        self.walls = torch.ones(self.num_envs, cells, dtype=torch.bool, device=self.device)
        self.chests = torch.zeros(self.num_envs, cells, dtype=torch.bool, device=self.device)
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.start_cell = self.position.clone()
        if fixed_maze:
            self.maze_walls = self.walls.clone()
            self.maze_chests = self.chests.clone()
            if maze_seed is not None:
                stream = BatchRandom(1, self.device)
                stream.start_episode(torch.zeros(1, dtype=torch.int64, device=self.device),
                                     torch.tensor([check_int("maze_seed", maze_seed, 0)]))
                walls, chests, _ = self._draw_mazes(stream, None)
                self.maze_walls[:], self.maze_chests[:] = walls, chests
        self._maze_seed = maze_seed

    @property
    def state_names(self) -> tuple[str, ...]:
        """The maze, chests and robot of every sub-env; with ``fixed_maze`` also the maze kept for it."""
        fixed = ("maze_walls", "maze_chests") if self.fixed_maze else ()
        return ("walls", "chests", "position", "start_cell", *fixed)

    def _draw_mazes(self, stream: BatchRandom, index: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """New walls, chests and start for the sub-envs in ``index`` from ``stream``."""
        rooms, cells = (self.size - 1) // 2, self.size * self.size
        bits = stream.bits(index, (2 * rooms * rooms + cells,))
        coins, keys = bits[:, :2 * rooms * rooms].view(-1, 2, rooms, rooms).unbind(1)
        walls = sidewinder_walls(coins < 2**31, keys, self.size).flatten(1)
        chests, start = self._place(bits[:, -cells:], walls, torch.zeros_like(walls), self.n_chests)
        return walls, chests, start

    def _place(self, keys: torch.Tensor, walls: torch.Tensor, occupied: torch.Tensor, n_chests: int):
        """Choose a start and ``n_chests`` chests on distinct free, unoccupied cells.

        ``keys`` are random 32-bit integers; the cells with the smallest keys win, ties broken by
        cell index so that the choice is unique on every device.
        """
        cells = keys.shape[1]
        keys = keys * cells + torch.arange(cells, device=keys.device)
        keys = keys.masked_fill(walls | occupied, 2**62)
        if self.start is not None:
            keys[:, self.start[0] * self.size + self.start[1]] = -1
        chosen = torch.topk(keys, n_chests + 1, dim=1, largest=False, sorted=True).indices
        chests = torch.zeros_like(walls).scatter_(1, chosen[:, 1:], True)
        return chests, chosen[:, 0]

    def reset_envs(self, index: torch.Tensor) -> None:
        if not self.fixed_maze:
            walls, chests, start = self._draw_mazes(self.rng, index)
        else:
            if self._maze_seed is None:
                fresh = index[self.rng.episode[index] == 0]
                if len(fresh):
                    walls, chests, _ = self._draw_mazes(self.rng, fresh)
                    self.maze_walls[fresh], self.maze_chests[fresh] = walls, chests
            walls, chests = self.maze_walls[index], self.maze_chests[index]
            keys = self.rng.bits(index, (self.size * self.size,))
            _, start = self._place(keys, walls, chests, 0)
        self.walls[index], self.chests[index] = walls, chests
        self.position[index], self.start_cell[index] = start, start

    def observe(self) -> torch.Tensor:
        if self.obs_mode == "position":
            return self.position.clone()
        planes = torch.zeros(self.num_envs, 3, self.size * self.size, device=self.device)
        planes[:, 0] = self.walls
        planes[:, 1] = self.chests
        planes[:, 2].scatter_(1, self.position[:, None], 1.0)
        return planes.view(self.num_envs, 3, self.size, self.size)

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        target = self.position + self._delta[actions]
        blocked = self.walls.gather(1, target[:, None]).squeeze(1)
        self.position = torch.where(blocked, self.position, target)
        here = self.position[:, None]
        reward = self.chests.gather(1, here).squeeze(1).to(torch.float32)
        if self.delete_chests:
            self.chests.scatter_(1, here, False)
            terminated = ~self.chests.any(dim=1)
        else:
            terminated = torch.zeros_like(blocked)
        if self.wall_penalty:
            reward = reward - self.wall_penalty * blocked.to(torch.float32)
        return reward, terminated, {}

    def layout(self, i: int = 0) -> MazeLayout:
        """Walls, the chests still present and the episode's start cell of sub-env ``i``."""
        walls = self.walls[i].view(self.size, self.size).cpu().numpy().copy()
        chests = [divmod(int(c), self.size) for c in self.chests[i].nonzero().flatten().tolist()]
        return MazeLayout(walls, chests, divmod(int(self.start_cell[i]), self.size))

    def render_ansi(self, i: int) -> str:
        grid = np.where(self.walls[i].view(self.size, self.size).cpu().numpy(), "#", ".")
        grid[self.chests[i].view(self.size, self.size).cpu().numpy()] = "$"
        grid[divmod(int(self.position[i]), self.size)] = "R"
        return "\n".join("".join(row) for row in grid) + f"\nt={int(self.elapsed[i])}\n"

    def render_rgb(self, i: int) -> np.ndarray:
        return maze_image(self.layout(i), divmod(int(self.position[i]), self.size))


def maze_image(layout: MazeLayout, robot: tuple[int, int] | None = None, cell: int = 12) -> np.ndarray:
    """An RGB picture (uint8) of a maze: walls dark, chests gold, robot blue."""
    size = layout.walls.shape[0]
    image = np.full((size, size, 3), 235, dtype=np.uint8)
    image[layout.walls] = (40, 40, 60)
    for r, c in layout.chests:
        image[r, c] = (230, 170, 20)
    if robot is not None:
        image[robot] = (30, 90, 220)
    return np.repeat(np.repeat(image, cell, axis=0), cell, axis=1)


class TreasureMazeEnv(SingleEnv):
    r"""``physrl/TreasureMaze-v0``: a robot collects treasure chests in a random maze within T steps.

    Description:
        The homework task of Marquardt's course. A robot walks an M×M grid (M odd, ≥ 5) with a wall
        border and collects K treasure chests within T steps. Every episode draws a new maze unless
        ``fixed_maze=True``. ``physrl/TreasureMazeChallenge-v0`` is this class with the challenge's
        options fixed (M = 15, K = 10, T = 40, chests deleted, image observations, a new maze every
        episode, no wall penalty); it is scored on held-out mazes by ``physrl challenge``.
        ``env.unwrapped.layout`` gives the walls, the chests still present and the start cell.

    Action Space:
        ``Discrete(5)``, the moves :data:`MOVES`: 0 stay, 1 up, 2 right, 3 down, 4 left. A move into a
        wall leaves the robot in place.

    Observation Space:
        ``obs_mode="image"`` (default): ``Box(0, 1, (3, M, M), float32)``, the planes walls, chests,
        robot. ``obs_mode="position"``: ``Discrete(M²)``, the robot's cell ``row * M + col`` (for
        tabular agents on a fixed maze).

    Rewards:
        +1 for a step that ends on a chest; with ``delete_chests`` the chest then disappears,
        otherwise it pays again on every step that ends there. A move into a wall costs
        ``wall_penalty``.

    Starting State:
        A uniformly random free cell (or ``start``); the K chests on a uniformly random set of
        distinct other free cells.

    Episode End:
        Terminated when the last chest is collected (with ``delete_chests``); truncated after
        ``max_steps`` steps (the registered ``max_episode_steps``).

    Arguments:
        size (int): M, odd, in [5, 101] (default 11).
        n_chests (int): K, at most 2R² − 2 with R = (M − 1)/2 (default 10).
        max_steps (int): T, the horizon (default 40).
        delete_chests (bool): a chest pays once and disappears (default True).
        wall_penalty (float): the cost of bumping into a wall, ≥ 0 (default 0).
        obs_mode (str): ``"image"`` or ``"position"`` (default ``"image"``).
        fixed_maze (bool): keep the walls and chests of the first seeded reset (or of ``maze_seed``)
            and draw only a new start on later resets (default False).
        maze_seed (int | None): with ``fixed_maze``, the seed of the one maze shared by every sub-env.
        start (tuple[int, int] | None): a fixed start cell (odd row and column) instead of a random one.
        render_mode (str | None): ``"ansi"`` (``#`` wall, ``$`` chest, ``R`` robot) or ``"rgb_array"``.

    Physics:
        *Maze generator* (ours, batched on the device): rooms sit at the cells with odd row and
        column, everything else starts as wall. The sidewinder algorithm carves a perfect maze, a
        spanning tree of the R² rooms: the top row of rooms is one corridor; in every other row each
        room joins its east neighbour with probability ½, and every maximal run of joined rooms opens
        one passage north from a uniformly chosen member of the run. So all 2R² − 1 free cells are
        connected (tested over 1000 seeds). All draws come from the env's seeded stream, so a seed
        fixes the maze.

        *Exact optimum* (:func:`~physrl.agents.reference.maze.optimal_return`, no wall penalty): with deleted chests, the largest
        set of chests some visiting order collects within T steps, from breadth-first distances and
        the Held–Karp dynamic programme best[S, j] = fewest steps that collect exactly the chests S
        and end on chest j; without deletion, walking to the nearest chest (d steps) and staying,
        T − d + 1. :func:`~physrl.agents.reference.maze.optimal_plan` also gives the actions. The challenge's score is a mean
        return divided by the mean of this optimum over the same mazes.

    References:
        Florian Marquardt, *Machine Learning for Physicists*, lecture and homework on reinforcement
        learning (the treasure maze).

    Version History:
        v0: the course's maze, our generator.
    """

    core_class = MazeCore

    @property
    def layout(self) -> MazeLayout:
        """Walls (bool M×M), the chests still present, and this episode's start cell."""
        return self.core.layout(0)


class TreasureMazeVectorEnv(VectorEnv):
    """Vector face of :class:`TreasureMazeEnv` (same arguments, plus ``num_envs`` and ``device``)."""

    core_class = MazeCore

    def layouts(self) -> list[MazeLayout]:
        """The maze of every sub-env: walls (bool M×M), the chests still present, this episode's start cell."""
        return [self.core.layout(i) for i in range(self.num_envs)]

    def mazes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same as tensors: walls and chests still present, bool (num_envs, M·M) with cell index
        row·M + column, and the start cells (num_envs,) (copies)."""
        return self.core.walls.clone(), self.core.chests.clone(), self.core.start_cell.clone()

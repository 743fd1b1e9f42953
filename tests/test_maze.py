import gymnasium as gym
import numpy as np
import pytest
import torch

from physrl.agents.reference.maze import bfs_distances, maze_greedy_policy, optimal_return
from physrl.envs.maze import MOVES, MazeLayout, free_cell_count


def corridor(length: int) -> np.ndarray:
    """A 3-row strip: wall border around one free row of ``length`` cells."""
    walls = np.ones((3, length + 2), dtype=bool)
    walls[1, 1:-1] = False
    return walls


def open_room(size: int) -> np.ndarray:
    walls = np.ones((size, size), dtype=bool)
    walls[1:-1, 1:-1] = False
    return walls


@pytest.mark.parametrize("layout, max_steps, expected", [
    (MazeLayout(corridor(9), [(1, 3), (1, 5), (1, 9)], (1, 1)), 8, 3),   # all on the way right
    (MazeLayout(corridor(9), [(1, 3), (1, 5), (1, 9)], (1, 1)), 7, 2),   # the last one is one step too far
    (MazeLayout(corridor(9), [(1, 1), (1, 9)], (1, 5)), 4, 1),           # one end or the other
    (MazeLayout(corridor(9), [(1, 1), (1, 9)], (1, 5)), 12, 2),          # 4 there, 8 back across
    (MazeLayout(corridor(9), [(1, 1), (1, 9)], (1, 5)), 11, 1),
    (MazeLayout(open_room(5), [(1, 1), (1, 3), (3, 1), (3, 3)], (2, 2)), 8, 4),  # 2 to a corner, 2 between
    (MazeLayout(open_room(5), [(1, 1), (1, 3), (3, 1), (3, 3)], (2, 2)), 7, 3),
    (MazeLayout(open_room(5), [(1, 1), (1, 3), (3, 1), (3, 3)], (2, 2)), 5, 2),
    (MazeLayout(open_room(5), [], (2, 2)), 10, 0),
])
def test_optimal_return_on_hand_built_layouts(layout, max_steps, expected):
    assert optimal_return(layout, max_steps) == expected


def test_optimal_return_without_deletion_sits_on_the_nearest_chest():
    layout = MazeLayout(corridor(9), [(1, 4), (1, 9)], (1, 1))
    assert optimal_return(layout, 10, delete_chests=False) == 10 - 3 + 1


def test_unreachable_chest_is_never_counted():
    walls = corridor(9)
    walls[1, 5] = True
    assert optimal_return(MazeLayout(walls, [(1, 3), (1, 7)], (1, 1)), 30) == 1


def test_generated_mazes_are_connected_with_distinct_chests_on_free_cells():
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=1000)
    envs.reset(seed=0)
    core = envs.core
    sizes = set()
    for i in range(1000):
        layout = core.layout(i)
        free = ~layout.walls
        assert free.sum() == free_cell_count(15)
        assert layout.walls[0].all() and layout.walls[-1].all() and layout.walls[:, 0].all() and layout.walls[:, -1].all()
        assert (bfs_distances(layout.walls, layout.start)[free] >= 0).all(), "every free cell is reachable"
        assert len(set(layout.chests)) == 10 and layout.start not in layout.chests
        assert all(free[c] for c in layout.chests)
        sizes.add(layout.walls.tobytes())
    assert len(sizes) == 1000, "every seed draws a different maze"


def test_same_seed_same_maze_and_new_maze_each_episode():
    env = gym.make("physrl/TreasureMaze-v0")
    env.reset(seed=4)
    first = env.unwrapped.layout
    env.reset()
    second = env.unwrapped.layout
    env.reset(seed=4)
    again = env.unwrapped.layout
    assert not np.array_equal(first.walls, second.walls)
    assert np.array_equal(first.walls, again.walls) and first.chests == again.chests and first.start == again.start


def test_fixed_maze_keeps_walls_and_chests():
    env = gym.make("physrl/TreasureMaze-v0", fixed_maze=True, maze_seed=3, obs_mode="position")
    env.reset(seed=1)
    first = env.unwrapped.layout
    for seed in [2, None, 9]:
        env.reset(seed=seed)
        assert np.array_equal(env.unwrapped.layout.walls, first.walls) and env.unwrapped.layout.chests == first.chests
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=3, fixed_maze=True, maze_seed=3, obs_mode="position")
    envs.reset(seed=50)
    assert all(envs.core.layout(i).chests == first.chests for i in range(3))


def test_greedy_never_beats_the_optimum_on_500_mazes():
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=500)
    obs, _ = envs.reset(seed=123)
    core = envs.core
    optimum = np.array([optimal_return(core.layout(i), 40) for i in range(500)])
    total = torch.zeros(500)
    finished = torch.zeros(500, dtype=torch.bool)
    for _ in range(40):
        obs, reward, terminated, truncated, _ = envs.step(maze_greedy_policy(obs))
        total += reward * ~finished
        finished |= terminated | truncated
    assert bool(finished.all())
    assert (total.numpy() <= optimum).all()
    assert total.mean() > 0.6 * optimum.mean(), "the greedy planner is a strong yardstick"


def make_line_maze(**options):
    """An 11x11 maze with a chest one step right of a fixed start, and the env positioned there."""
    env = gym.make("physrl/TreasureMaze-v0", start=(1, 1), **options).unwrapped
    env.reset(seed=0)
    core = env.core
    core.walls[0] = torch.as_tensor(open_room(11)).flatten()
    core.chests[0] = False
    core.chests[0, 1 * 11 + 2] = True
    return env, core


def test_reward_rules_with_deletion_and_termination():
    env, core = make_line_maze(n_chests=1)
    _, reward, terminated, _, _ = env.step(2)
    assert reward == 1.0 and terminated and not core.chests[0].any()


def test_reward_rules_without_deletion_pay_every_step_there():
    env, core = make_line_maze(delete_chests=False)
    rewards = [env.step(a)[1] for a in (2, 0, 0, 4, 2)]
    assert rewards == [1.0, 1.0, 1.0, 0.0, 1.0]


def test_wall_penalty_and_blocked_move():
    env, core = make_line_maze(wall_penalty=0.5)
    obs, reward, *_ = env.step(1)  # up into the border wall
    assert reward == -0.5 and env.layout.start == (1, 1) and obs[2, 1, 1] == 1.0
    obs, reward, *_ = env.step(3)  # down: free
    assert reward == 0.0 and obs[2, 2, 1] == 1.0


def test_truncation_after_max_steps():
    env = gym.make("physrl/TreasureMaze-v0", max_steps=3)
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_moves_table():
    assert MOVES == ((0, 0), (-1, 0), (0, 1), (1, 0), (0, -1))


@pytest.mark.parametrize("options, error, word", [
    ({"size": 10}, ValueError, "size"),
    ({"size": 3}, ValueError, "size"),
    ({"n_chests": 60}, ValueError, "n_chests"),
    ({"obs_mode": "pixels"}, ValueError, "obs_mode"),
    ({"start": (2, 2)}, ValueError, "start"),
    ({"wall_penalty": float("nan")}, ValueError, "wall_penalty"),
    ({"size": 11.0}, TypeError, "size"),
])
def test_bad_options_raise_clear_errors(options, error, word):
    with pytest.raises(error, match=word):
        gym.make("physrl/TreasureMaze-v0", **options)


def test_renders():
    env = gym.make("physrl/TreasureMaze-v0", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert text.count("R") == 1 and text.count("$") == 10
    env = gym.make("physrl/TreasureMaze-v0", render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (11 * 12, 11 * 12, 3)

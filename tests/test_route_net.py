"""The maze route features (RouteNet) against breadth-first search on the challenge mazes."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from physrl.agents.networks import RouteNet, build_network, route_features
from physrl.agents.reference.maze import bfs_distances
from physrl.envs.maze import MOVES


def brute_force_features(walls: np.ndarray, chests: list[tuple[int, int]], robot: tuple[int, int],
                         horizon: int) -> np.ndarray:
    """(4, 2·horizon) from explicit paths: the branch of a cell is the first move of its (unique) path."""
    from_robot = bfs_distances(walls, robot)
    out = np.zeros((4, 2 * horizon))
    for move, (dr, dc) in enumerate(MOVES[1:]):
        start = (robot[0] + dr, robot[1] + dc)
        if walls[start]:
            continue
        from_start = bfs_distances(walls, start)
        branch = (from_start >= 0) & (from_start == from_robot - 1)
        mine = [c for c in chests if branch[c]]
        for k in range(1, horizon + 1):
            reached = [c for c in mine if from_robot[c] <= k]
            on_paths = np.zeros_like(walls)
            for c in reached:
                to_chest = bfs_distances(walls, c)
                on_paths |= branch & (from_robot + to_chest == from_robot[c])
            out[move, k - 1] = len(reached) / 4
            out[move, horizon + k - 1] = on_paths.sum() / 16
    return out


@pytest.mark.parametrize("horizon", [40, 7])
def test_route_features_count_chests_and_path_cells_behind_each_move(horizon):
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=6)
    obs, _ = envs.reset(seed=3)
    for _ in range(5):  # move away from the start so that several branches hold chests
        obs, *_ = envs.step(torch.randint(1, 5, (6,), generator=torch.Generator().manual_seed(1)))
    features = route_features(obs, horizon)
    for i in range(6):
        walls = obs[i, 0].numpy() > 0.5
        chests = [tuple(c) for c in torch.nonzero(obs[i, 1]).tolist()]
        robot = tuple(torch.nonzero(obs[i, 2])[0].tolist())
        expected = brute_force_features(walls, chests, robot, horizon)
        assert np.allclose(features[i].numpy(), expected), i
    assert features[:, :, horizon - 1].sum().item() > 0


@pytest.mark.parametrize("kind", ["route", "route_ring"])
@torch.no_grad()
def test_route_net_gives_one_logit_per_move_from_a_rule_shared_by_the_moves(kind):
    space = spaces.Box(0.0, 1.0, (3, 15, 15))
    actor, critic = (build_network(kind, space, out, (16,)) for out in (5, 1))
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=4)
    obs, _ = envs.reset(seed=0)
    logits = actor(obs)
    assert logits.shape == (4, 5) and critic(obs).shape == (4, 1)
    # rotating the maze by a quarter turn rotates the moves: the same rule for every direction
    turned = torch.rot90(obs, 1, dims=(2, 3))     # counter-clockwise: what lay right lies up, ...
    assert torch.allclose(actor(turned)[:, [0, 4, 1, 2, 3]], logits, atol=1e-5)
    with pytest.raises(ValueError, match="route.*image"):
        build_network("route", spaces.Box(0.0, 1.0, (4,)), 5, (8,))
    with pytest.raises(ValueError, match="horizon"):
        RouteNet(space, 5, (8,), horizon=0)
    with pytest.raises(ValueError, match="context"):
        RouteNet(space, 5, (8,), context="max")


@torch.no_grad()
def test_actor_and_critic_share_the_features_of_one_tensor_but_never_stale_ones():
    space = spaces.Box(0.0, 1.0, (3, 15, 15))
    actor, critic = (build_network("route", space, out, (16,)) for out in (5, 1))
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=3)
    obs, _ = envs.reset(seed=2)
    first = actor.features(obs)
    assert critic.features(obs) is first                       # computed once for both
    assert actor.features(obs.clone()) is not first            # another tensor: computed again
    assert torch.equal(actor.features(obs.clone()), first)
    obs[:, 1] = 0.0                                            # changed in place: no chest left
    assert actor.features(obs)[:, :, :40].sum() == 0


def test_an_exported_policy_is_small_plays_as_the_original_and_cannot_be_resumed(tmp_path):
    from physrl.training import train
    from physrl.training.checkpoint import export_policy, load_policy

    run = train("physrl/TreasureMazeChallenge-v0", "deep-pg", num_envs=4, total_steps=64, logdir=tmp_path,
                progress=False, hyperparameters={"network": "route", "num_steps": 16, "hidden_sizes": [8]})
    exported = export_policy(run, tmp_path / "policy.pt")
    assert exported.stat().st_size < (run / "checkpoint.pt").stat().st_size / 2
    envs = gym.make_vec("physrl/TreasureMazeChallenge-v0", num_envs=8)
    obs, _ = envs.reset(seed=5)
    original, shipped = load_policy(run), load_policy(exported)
    assert shipped.global_step == original.global_step == 64
    assert torch.equal(shipped(obs), original(obs))
    with pytest.raises(ValueError, match="policy-only"):
        train(resume=exported, total_steps=128, progress=False)

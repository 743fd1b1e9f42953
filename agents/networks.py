"""Networks and action distributions shared by the deep agents.

* :class:`MLP` — for Discrete observations (one-hot encoded) and flat Box observations;
* :class:`CNN` — for image observations (C, H, W), e.g. the maze's (3, M, M) planes;
* :class:`Egocentric` + :class:`CNN` — the maze seen from the robot: the image shifted so that the
  robot sits at the centre of a (2M−1)² window (outside the maze counts as wall);
* :class:`ActionMapNet` — the course's maze network: four 3×3 convolutions of 10 channels with elu,
  a final 3×3 convolution to one channel per output, read at the robot's cell;
* :class:`ValuePropagationNet` — a maze planner with learned rewards: values spread from rewarding
  cells along free paths (max-propagation, Nardelli et al. 2019), read around the robot;
* :class:`RouteNet` — for each first move of the maze robot, how many chests lie within k steps
  behind it and how many cells a walk to them covers (:func:`route_features`), read by a learned network;
* :class:`CategoricalHead` / :class:`GaussianHead` — sampling with a ``torch.Generator``, log-probs,
  entropies; the Gaussian's mean is squashed into the action box and samples are clipped to it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from physrl.envs.validation import check_choice, check_int
from physrl.envs.maze import MOVES

#: The network kinds of the ``network`` hyperparameter.
NETWORKS = ("auto", "mlp", "cnn", "action_map", "egocentric", "value_prop", "route", "route_ring")


def init_layer(layer: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights with ``gain``, zero bias."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """Fully connected tanh network; a Discrete observation (B,) of ints is one-hot encoded first."""

    def __init__(self, observation_space: spaces.Space, out_dim: int, hidden_sizes: Sequence[int],
                 out_gain: float = 1.0) -> None:
        super().__init__()
        if isinstance(observation_space, spaces.Discrete):
            self.one_hot, in_dim = int(observation_space.n), int(observation_space.n)
        else:
            self.one_hot, in_dim = 0, int(np.prod(observation_space.shape))
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [init_layer(nn.Linear(in_dim, width)), nn.Tanh()]
            in_dim = width
        layers.append(init_layer(nn.Linear(in_dim, out_dim), out_gain))
        self.body = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            x = F.one_hot(obs.long(), self.one_hot).to(torch.float32)
        else:
            x = obs.flatten(1).to(torch.float32)
        return self.body(x)


class CNN(nn.Module):
    """Three 3×3 convolutions (the last two with stride 2), then a hidden layer of ``hidden_sizes[0]``."""

    def __init__(self, observation_space: spaces.Box, out_dim: int, hidden_sizes: Sequence[int],
                 out_gain: float = 1.0, channels: Sequence[int] = (32, 64, 64)) -> None:
        super().__init__()
        c, h, w = observation_space.shape
        convs: list[nn.Module] = []
        for i, width in enumerate(channels):
            convs += [init_layer(nn.Conv2d(c, width, 3, stride=1 if i == 0 else 2, padding=1)), nn.ReLU()]
            c = width
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *observation_space.shape)).shape[1]
        hidden = hidden_sizes[0] if hidden_sizes else 256
        self.head = nn.Sequential(init_layer(nn.Linear(flat, hidden)), nn.ReLU(),
                                  init_layer(nn.Linear(hidden, out_dim), out_gain))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(obs.to(torch.float32)))


class ActionMapNet(nn.Module):
    """The course's convolutional "action map": one output map per action, read at the robot's cell.

    The robot's cell is the argmax of observation channel ``robot_channel`` (2 for the maze).
    """

    def __init__(self, observation_space: spaces.Box, out_dim: int, out_gain: float = 1.0,
                 channels: int = 10, layers: int = 4, robot_channel: int = 2) -> None:
        super().__init__()
        c = observation_space.shape[0]
        convs: list[nn.Module] = []
        for _ in range(layers):
            convs += [init_layer(nn.Conv2d(c, channels, 3, padding=1), 1.0), nn.ELU()]
            c = channels
        convs.append(init_layer(nn.Conv2d(c, out_dim, 3, padding=1), out_gain))
        self.convs = nn.Sequential(*convs)
        self.robot_channel = robot_channel

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        maps = self.convs(obs.to(torch.float32)).flatten(2)
        cell = obs[:, self.robot_channel].flatten(1).argmax(dim=1)
        return maps.gather(2, cell[:, None, None].expand(-1, maps.shape[1], 1)).squeeze(2)


class ValuePropagationNet(nn.Module):
    """Max-propagation value network (MVProp: Nardelli et al., "Value Propagation Networks", ICLR 2019).

    Two convolutions of the image give every free cell a reward r ∈ (0, 1) and a propagation
    factor p ∈ (0, 1) (both 0 on walls, channel ``wall_channel``). Starting from v = r,
    ``iterations`` rounds of

        v(s) ← max(v(s), max over the four neighbours s' of r(s) + p(s) · (v(s') − r(s)))

    carry the value of a rewarding cell along free paths, decaying by p per step (so log v falls
    linearly with the distance when p is uniform). With ``out_dim`` equal to the number of maze moves
    (stay, up, right, down, left) the output is one logit per move from a small network shared by
    the moves, fed with log v (relative to the robot's cell), r and "free" at the cell the move
    leads to; otherwise (a critic) a network over those features of all five cells and the mean
    reward of the maze.
    """

    def __init__(self, observation_space: spaces.Box, out_dim: int, hidden_sizes: Sequence[int],
                 out_gain: float = 1.0, channels: int = 16, iterations: int | None = None,
                 robot_channel: int = 2, wall_channel: int = 0) -> None:
        super().__init__()
        c, h, w = observation_space.shape
        self.embed = nn.Sequential(init_layer(nn.Conv2d(c, channels, 3, padding=1)), nn.ELU(),
                                   init_layer(nn.Conv2d(channels, 2, 1), 1.0))
        self.iterations = 2 * max(h, w) if iterations is None else iterations
        self.robot_channel, self.wall_channel = robot_channel, wall_channel
        self.per_move = out_dim == len(MOVES)
        hidden = hidden_sizes[0] if hidden_sizes else 64
        in_dim = 3 if self.per_move else 3 * len(MOVES) + 1
        self.head = nn.Sequential(init_layer(nn.Linear(in_dim, hidden)), nn.ELU(),
                                  init_layer(nn.Linear(hidden, 1 if self.per_move else out_dim), out_gain))

    def propagate(self, reward: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        """The values v (B, H, W) after ``iterations`` rounds of max-propagation."""
        value = reward
        for _ in range(self.iterations):
            padded = F.pad(value, (1, 1, 1, 1))
            neighbours = torch.maximum(torch.maximum(padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]),
                                       torch.maximum(padded[:, 1:-1, 2:], padded[:, 1:-1, :-2]))
            value = torch.maximum(value, reward + spread * (neighbours - reward))
        return value

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.to(torch.float32)
        b, _, h, w = obs.shape
        free = 1.0 - obs[:, self.wall_channel]
        reward, spread = (torch.sigmoid(self.embed(obs)) * free[:, None]).unbind(1)
        value = self.propagate(reward, spread)
        maps = F.pad(torch.stack([value, reward, free], dim=1), (1, 1, 1, 1))  # outside: a wall
        maps = torch.cat([maps[:, :1].clamp_min(1e-6).log(), maps[:, 1:]], dim=1)
        cell = obs[:, self.robot_channel].flatten(1).argmax(dim=1)
        rows, cols = cell // w + 1, cell % w + 1
        batch = torch.arange(b, device=obs.device)
        around = torch.stack([maps[batch, :, rows + dr, cols + dc] for dr, dc in MOVES], dim=1)
        around[:, :, 0] -= around[:, :1, 0].clone()
        if self.per_move:
            return self.head(around).squeeze(-1)
        return self.head(torch.cat([around.flatten(1), reward.mean((1, 2))[:, None]], dim=1))


class _Shifter:
    """The four neighbours (up, right, down, left) of every cell of (B, H, W) grids, ``fill`` outside.

    One padded buffer is reused: only its interior is rewritten on each call.
    """

    def __init__(self, like: torch.Tensor, fill: float) -> None:
        self.padded = F.pad(torch.zeros_like(like), (1, 1, 1, 1), value=fill)

    def __call__(self, grid: torch.Tensor) -> list[torch.Tensor]:
        padded = self.padded
        padded[:, 1:-1, 1:-1] = grid
        return [padded[:, :-2, 1:-1], padded[:, 1:-1, 2:], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2]]


def route_features(obs: torch.Tensor, horizon: int, robot_channel: int = 2, wall_channel: int = 0,
                   chest_channel: int = 1) -> torch.Tensor:
    """What lies behind each first move of the robot: (B, 4, 2·horizon) for the moves up, right, down, left.

    Walking distances d(s) from the robot (up to ``horizon``; farther cells do not count) split the
    free cells into *branches*: a cell belongs to branch m when a shortest path to it starts with
    move m (on a perfect maze, a tree, exactly one). For k = 1 … horizon the features of branch m are

    * ``chests[k]``: the chests of the branch within k steps of the robot, over 4;
    * ``cover[k]``: the cells of the branch on the paths to those chests, over 16; a walk that
      collects them all and comes back takes 2·cover[k] steps, one that ends at the farthest
      2·cover[k] − k.

    Together they trace, per branch, how many chests a walk of a given length collects, counting the
    way back out of dead ends: the quantity a nearest-chest rule ignores. The distances come from
    the breadth-first relaxation of :func:`physrl.agents.reference.maze.maze_greedy_policy`; a cell's *downstream*
    chest distance (the nearest chest behind it, seen from the robot) is relaxed the same way
    against the neighbours one step farther out. Nothing here is learned; no gradient flows.
    """
    with torch.no_grad():
        obs = obs.to(torch.float32)
        walls, chests = obs[:, wall_channel] > 0.5, obs[:, chest_channel] > 0.5
        b, h, w = walls.shape
        far = float(horizon + 1)
        cell = obs[:, robot_channel].flatten(1).argmax(dim=1)
        dist = torch.full((b, h * w), far, device=obs.device)
        dist.scatter_(1, cell[:, None], 0.0)
        dist, blocked = dist.view(b, h, w), walls.to(torch.float32) * far
        far_outside, none_outside = _Shifter(dist, far), _Shifter(dist, 0.0)
        for _ in range(horizon):
            up, right, down, left = far_outside(dist)
            nearest = torch.minimum(torch.minimum(up, down), torch.minimum(right, left))
            dist = torch.minimum(dist, nearest + 1).maximum(blocked)
        near = [n.clone() for n in far_outside(dist)]
        # branch of every cell, 1 … 4 for the moves up … left (0: none): the robot's neighbours start
        # their own (the robot lies opposite the move that reaches them), a cell inherits its parent's
        # (ties, absent from perfect mazes, go to the last move)
        branch = sum((move + 1) * ((dist == 1) & (near[back] == 0)).to(torch.float32)
                     for move, back in enumerate((2, 3, 0, 1)))
        parents = [((n == dist - 1) & (dist >= 2)).to(torch.float32) for n in near]
        for _ in range(horizon - 1):
            inherited = [n * p for n, p in zip(none_outside(branch), parents)]
            branch = torch.maximum(torch.maximum(branch, torch.maximum(inherited[0], inherited[1])),
                                   torch.maximum(inherited[2], inherited[3]))
        chest_dist = torch.where(chests & (dist <= horizon), dist, far)
        beyond = [torch.where((n == dist + 1) & (dist < far), 0.0, far) for n in near]  # not a child: far
        downstream = chest_dist
        for _ in range(horizon):
            up, right, down, left = (n.maximum(x) for n, x in zip(far_outside(downstream), beyond))
            downstream = torch.minimum(downstream, torch.minimum(torch.minimum(up, down), torch.minimum(right, left)))
        branch = F.one_hot(branch.flatten(1).long(), 5)[:, :, 1:].transpose(1, 2).to(torch.float32)  # (B, 4, HW)
        bins = int(far) + 1
        chest_hist = F.one_hot(chest_dist.flatten(1).long(), bins).to(torch.float32)[:, :, 1:]  # (B, HW, far)
        cover_hist = F.one_hot(downstream.flatten(1).long(), bins).to(torch.float32)[:, :, 1:]
        chest_count = torch.einsum("bmc,bck->bmk", branch, chest_hist).cumsum(2)[:, :, :horizon] / 4
        cover_count = torch.einsum("bmc,bck->bmk", branch, cover_hist).cumsum(2)[:, :, :horizon] / 16
        return torch.cat([chest_count, cover_count], dim=2)


class RouteNet(nn.Module):
    """Which way to walk, from how many chests each first move leads to and how far apart they lie.

    :func:`route_features` describes, for each of the four moves, the chests within k steps behind
    it and the cells a walk to them covers (k = 1 … ``horizon``), a fixed breadth-first computation
    on the observation. The learned part reads them: with ``out_dim`` equal to the number of maze
    moves one logit per move from a network shared by the moves (the same rule for every direction),
    fed with what ``context`` says: ``"sum"`` that move's features, a "blocked" flag, a "stay" flag
    and the features summed over all four moves; ``"ring"`` the features and blocked flags of all four
    moves in clockwise order starting with its own (so each move sees every other one, and a quarter
    turn of the maze turns the logits with it), with a learned constant logit for staying. Otherwise
    (a critic) a network over the features of all four moves. The maze's time limit is not observed;
    ``horizon`` (default 40, the challenge's) bounds the distances that count.
    """

    def __init__(self, observation_space: spaces.Box, out_dim: int, hidden_sizes: Sequence[int],
                 out_gain: float = 1.0, horizon: int = 40, robot_channel: int = 2, wall_channel: int = 0,
                 chest_channel: int = 1, context: str = "sum") -> None:
        super().__init__()
        self.horizon = check_int("horizon", horizon, 1)
        self.context = check_choice("context", context, ("sum", "ring"))
        self.channels = (robot_channel, wall_channel, chest_channel)
        self.per_move = out_dim == len(MOVES)
        features = 2 * horizon
        hidden = list(hidden_sizes) or [64]
        if not self.per_move:
            in_dim = 4 * (features + 1)
        else:
            in_dim = 2 * features + 2 if context == "sum" else 4 * (features + 1)
            if context == "ring":
                self.stay = nn.Parameter(torch.zeros(1))
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [init_layer(nn.Linear(in_dim, width)), nn.Tanh()]
            in_dim = width
        layers.append(init_layer(nn.Linear(in_dim, 1 if self.per_move else out_dim), out_gain))
        self.head = nn.Sequential(*layers)

    #: the last observation batch, its version and its features: an actor and a critic that read the
    #: same tensor (as the policy gradient's do) compute the features once
    _last: tuple[torch.Tensor, int, tuple, torch.Tensor] | None = None

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """:func:`route_features` of ``obs`` (B, 4, 2·horizon), reused when called again on the same tensor."""
        key = (self.horizon, self.channels)
        last = RouteNet._last
        if last is not None and last[0] is obs and last[1] == obs._version and last[2] == key:
            return last[3]
        features = route_features(obs, self.horizon, *self.channels)
        RouteNet._last = (obs, obs._version, key, features)
        return features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        robot, wall, _ = self.channels
        features = self.features(obs)                                               # (B, 4, F)
        b = features.shape[0]
        cell = obs[:, robot].flatten(1).argmax(dim=1)
        walls = F.pad(obs[:, wall].to(torch.float32), (1, 1, 1, 1), value=1.0)
        rows, cols = cell // obs.shape[-1] + 1, cell % obs.shape[-1] + 1
        batch = torch.arange(b, device=obs.device)
        blocked = torch.stack([walls[batch, rows + dr, cols + dc] for dr, dc in MOVES[1:]], dim=1)  # (B, 4)
        with_flags = torch.cat([features, blocked[:, :, None]], dim=2)               # (B, 4, F + 1)
        if not self.per_move:
            return self.head(with_flags.flatten(1))
        if self.context == "ring":
            ring = torch.stack([with_flags.roll(-turn, dims=1) for turn in range(4)], dim=2).flatten(2)
            return torch.cat([self.stay.expand(b, 1), self.head(ring).squeeze(-1)], dim=1)
        moves = torch.cat([torch.zeros_like(features[:, :1]), features], dim=1)   # stay first, as in MOVES
        flags = torch.zeros(b, len(MOVES), 2, device=obs.device)
        flags[:, 0, 1] = 1.0
        flags[:, 1:, 0] = blocked
        total = features.sum(1, keepdim=True).expand(-1, len(MOVES), -1)
        return self.head(torch.cat([moves, flags, total], dim=2)).squeeze(-1)


class Egocentric(nn.Module):
    """Shift image observations (B, C, M, M) so the robot (argmax of ``robot_channel``) is at the centre.

    The output (B, C − 1, 2M − 1, 2M − 1) drops the robot plane; channel ``wall_channel`` is 1
    outside the maze, the others 0.
    """

    def __init__(self, observation_space: spaces.Box, robot_channel: int = 2, wall_channel: int = 0) -> None:
        super().__init__()
        c, h, w = observation_space.shape
        self.robot_channel, self.wall_channel = robot_channel, wall_channel
        self.keep = [i for i in range(c) if i != robot_channel]
        self.shape = (c - 1, 2 * h - 1, 2 * w - 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b, _, h, w = obs.shape
        planes = obs[:, self.keep].to(torch.float32)
        padded = F.pad(planes, (w - 1, w - 1, h - 1, h - 1))
        padded[:, self.keep.index(self.wall_channel)] = F.pad(planes[:, self.keep.index(self.wall_channel)],
                                                               (w - 1, w - 1, h - 1, h - 1), value=1.0)
        cell = obs[:, self.robot_channel].flatten(1).argmax(dim=1)
        rows = (cell // w)[:, None] + torch.arange(2 * h - 1, device=obs.device)
        cols = (cell % w)[:, None] + torch.arange(2 * w - 1, device=obs.device)
        batch = torch.arange(b, device=obs.device)[:, None, None]
        return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def build_network(kind: str, observation_space: spaces.Space, out_dim: int, hidden_sizes: Sequence[int],
                  out_gain: float = 1.0) -> nn.Module:
    """A network of ``kind`` (one of :data:`NETWORKS`) from ``observation_space`` to ``out_dim`` outputs.

    ``"auto"`` picks the CNN for image observations (a Box of rank 3) and the MLP otherwise.
    """
    if kind not in NETWORKS:
        raise ValueError(f"network must be one of {list(NETWORKS)}, got {kind!r}")
    is_image = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3
    if kind == "auto":
        kind = "cnn" if is_image else "mlp"
    if kind in ("cnn", "action_map", "egocentric", "value_prop", "route", "route_ring") and not is_image:
        raise ValueError(f"network={kind!r} needs image observations (C, H, W), got {observation_space}")
    if kind == "mlp" and not isinstance(observation_space, (spaces.Discrete, spaces.Box)):
        raise TypeError(f"network='mlp' needs a Discrete or Box observation space, got {observation_space}")
    if kind == "cnn":
        return CNN(observation_space, out_dim, hidden_sizes, out_gain)
    if kind == "action_map":
        return ActionMapNet(observation_space, out_dim, out_gain)
    if kind == "value_prop":
        return ValuePropagationNet(observation_space, out_dim, hidden_sizes, out_gain)
    if kind in ("route", "route_ring"):
        return RouteNet(observation_space, out_dim, hidden_sizes, out_gain,
                        context="ring" if kind == "route_ring" else "sum")
    if kind == "egocentric":
        view = Egocentric(observation_space)
        return nn.Sequential(view, CNN(spaces.Box(0.0, 1.0, view.shape), out_dim, hidden_sizes, out_gain))
    return MLP(observation_space, out_dim, hidden_sizes, out_gain)


class CategoricalHead(nn.Module):
    """Categorical distribution over ``n`` actions from logits."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.out_dim = n

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(action for the env, action to learn from) — the same for a Categorical."""
        action = torch.multinomial(F.softmax(out, dim=-1), 1, generator=generator).squeeze(-1)
        return action, action

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=-1)

    def log_prob_entropy(self, out: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = F.log_softmax(out, dim=-1)
        return log_p.gather(-1, action.long()[..., None]).squeeze(-1), -(log_p.exp() * log_p).sum(-1)


class GaussianHead(nn.Module):
    """Diagonal Gaussian for a Box action space: mean = box centre + half-width · tanh(output).

    Samples are clipped to the box before they reach the env (never an invalid action); the
    log-probability is that of the unclipped sample, which is what the policy gradient needs.
    """

    def __init__(self, space: spaces.Box, log_std_init: float) -> None:
        super().__init__()
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"the Gaussian head needs a bounded Box action space, got {space}")
        self.shape = space.shape
        self.out_dim = int(np.prod(space.shape))
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32).flatten())
        self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32).flatten())
        self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return (self.high + self.low) / 2 + (self.high - self.low) / 2 * torch.tanh(out)

    def _to_env(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(flat, self.low), self.high).view(-1, *self.shape)

    def sample(self, out: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        raw = self._mean(out) + self.log_std.exp() * noise
        return self._to_env(raw), raw

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return self._to_env(self._mean(out))

    def log_prob_entropy(self, out: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        std = self.log_std.exp()
        z = (action - self._mean(out)) / std
        log_p = (-0.5 * z * z - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        entropy = (self.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum().expand(log_p.shape)
        return log_p, entropy


def build_head(action_space: spaces.Space, log_std_init: float) -> CategoricalHead | GaussianHead:
    """Categorical head for Discrete actions, Gaussian head for Box actions."""
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got {action_space}")
        return CategoricalHead(int(action_space.n))
    if isinstance(action_space, spaces.Box):
        return GaussianHead(action_space, log_std_init)
    raise TypeError(f"the action space must be Discrete or Box, got {action_space}")

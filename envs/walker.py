"""The random walkers of the policy-gradient lecture (F. Marquardt, *Machine Learning for Physicists*).

:class:`RandomWalkerEnv` (``physrl/RandomWalker-v0``) and :class:`WalkerTargetEnv`
(``physrl/WalkerTarget-v0``) document the two tasks; their batched cores are here too. Their optimal
policies and the exact optimum of the second are in :mod:`physrl.agents.reference.walker`.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from physrl.envs.core import BatchCore, SingleEnv, VectorEnv
from physrl.envs.validation import check_int


CELL = 16
LINE, WALKER, TARGET = (200, 200, 200), (30, 90, 220), (230, 170, 20)


def line_image(cells: range, walker: int, target: int | None = None) -> np.ndarray:
    """An RGB picture (uint8, one 16×16 square per site) of the line: sites grey, the target gold,
    the walker a blue dot (drawn over the target when it stands on it)."""
    image = np.full((3 * CELL, len(cells) * CELL, 3), 255, dtype=np.uint8)
    image[CELL + CELL // 2 - 1:CELL + CELL // 2 + 1] = LINE
    for site in cells:
        x = (site - cells.start) * CELL
        image[CELL + 4:2 * CELL - 4, x + CELL // 2 - 1:x + CELL // 2 + 1] = LINE
    if target is not None:
        x = (target - cells.start) * CELL
        image[CELL:2 * CELL, x:x + CELL] = TARGET
    x = (walker - cells.start) * CELL
    image[CELL + 3:2 * CELL - 3, x + 3:x + CELL - 3] = WALKER
    return image


class WalkerCore(BatchCore):
    """Batched ±1 random walk; observation = time step, reward = displacement."""

    render_modes = ("ansi", "rgb_array")
    state_names = ("position",)

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", max_steps: int = 20) -> None:
        super().__init__(num_envs, device, max_steps)
        self.single_observation_space = spaces.Discrete(self.max_steps + 1)
        self.single_action_space = spaces.Discrete(2)
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def reset_envs(self, index: torch.Tensor) -> None:
        self.position[index] = 0

    def observe(self) -> torch.Tensor:
        return self.elapsed.clone()

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        displacement = 2 * actions - 1
        self.position = self.position + displacement
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return displacement.to(torch.float32), terminated, {"position": self.position.clone()}

    def render_ansi(self, i: int) -> str:
        return f"t={int(self.elapsed[i])} x={int(self.position[i])}"

    def render_rgb(self, i: int) -> np.ndarray:
        """The sites −T … T with the walker (it can reach any of them in T steps)."""
        return line_image(range(-self.max_steps, self.max_steps + 1), int(self.position[i]))


class WalkerTargetCore(BatchCore):
    """Batched walker with a hidden target; observation = on target (0/1)."""

    render_modes = ("ansi", "rgb_array")
    state_names = ("position", "target")

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", max_steps: int = 20,
                 target_range: int = 10) -> None:
        super().__init__(num_envs, device, max_steps)
        self.target_range = check_int("target_range", target_range, 1)
        self.single_observation_space = spaces.Discrete(2)
        self.single_action_space = spaces.Discrete(2)
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.target = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def reset_envs(self, index: torch.Tensor) -> None:
        self.position[index] = 0
        self.target[index] = self.rng.bits(index, ()) % self.target_range

    def observe(self) -> torch.Tensor:
        return (self.position == self.target).to(torch.int64)

    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        self.position = self.position + actions
        reward = (self.position == self.target).to(torch.float32)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return reward, terminated, {"position": self.position.clone(), "target": self.target.clone()}

    def render_ansi(self, i: int) -> str:
        cells = ["."] * max(int(self.position[i]), int(self.target[i]), 0) + ["."]
        cells[int(self.target[i])] = "T"
        cells[int(self.position[i])] = "W" if self.position[i] != self.target[i] else "*"
        return f"t={int(self.elapsed[i])} " + "".join(cells)

    def render_rgb(self, i: int) -> np.ndarray:
        """The sites 0 … max(T, target_range − 1) with the target and the walker."""
        last = max(self.max_steps, self.target_range - 1)
        return line_image(range(0, last + 1), int(self.position[i]), int(self.target[i]))


class RandomWalkerEnv(SingleEnv):
    r"""``physrl/RandomWalker-v0``: T steps of ±1; the return is the final position.

    Description:
        The random walker of the policy-gradient lecture (Marquardt, Les Houches 2019 lecture notes,
        §3.1.3). A walker starts at x = 0 and takes T = ``max_steps`` steps of ±1; the return is its
        final position x(T) = 2N₊ − T. The task is the smallest one on which REINFORCE can be done by
        hand: a stateless policy π = σ(θ) for the step +1 has a closed-form expected return and
        update, which the tests and the first notebook check.

    Action Space:
        ``Discrete(2)``: 0 steps to x − 1, 1 steps to x + 1.

    Observation Space:
        ``Discrete(T + 1)``: the time step t (the walker sees the clock, not its position).

    Rewards:
        The displacement of the step, −1 or +1, so the return is x(T).

    Starting State:
        x = 0, t = 0.

    Episode End:
        Never terminated; truncated after ``max_steps`` steps (the registered ``max_episode_steps``).

    Arguments:
        max_steps (int): T, the horizon (default 20).
        render_mode (str | None): ``"ansi"`` prints ``t=… x=…``; ``"rgb_array"`` draws the line and the walker.

    Physics:
        With the stateless policy π = σ(θ) for +1, the expected return and the trajectory-averaged
        REINFORCE update with learning rate η are

        .. math::

            \mathbb{E}[R] = T(2\pi - 1), \qquad
            \delta\theta = \eta\, \mathbb{E}\Big[R \sum_t \partial_\theta \ln \pi(a_t)\Big]
                         = 2\eta T \pi(1 - \pi).

    References:
        Florian Marquardt, *Machine Learning for Physicists*, Les Houches 2019 lecture notes, §3.1.3.

    Version History:
        v0: the lecture's walker.
    """

    core_class = WalkerCore


class RandomWalkerVectorEnv(VectorEnv):
    """Vector face of :class:`RandomWalkerEnv` (same arguments, plus ``num_envs`` and ``device``)."""

    core_class = WalkerCore


class WalkerTargetEnv(SingleEnv):
    r"""``physrl/WalkerTarget-v0``: find a hidden target by staying or moving right.

    Description:
        The lecture's "second-simplest" example. A target sits at a hidden position g, uniform in
        {0, …, ``target_range`` − 1}; the walker starts at 0, may stay or move right, and observes
        only whether it is on the target. The best policy moves while off the target and stays on
        it; its expected return is :func:`~physrl.agents.reference.walker.walker_target_optimum` (16.4 for the defaults).

    Action Space:
        ``Discrete(2)``: 0 stays, 1 moves right by one.

    Observation Space:
        ``Discrete(2)``: 1 if the walker is on the target, else 0.

    Rewards:
        +1 for every step that *ends* on the target, else 0.

    Starting State:
        Walker at 0; target g drawn uniformly from {0, …, ``target_range`` − 1}.

    Episode End:
        Never terminated; truncated after ``max_steps`` steps (the registered ``max_episode_steps``).

    Arguments:
        max_steps (int): T, the horizon (default 20).
        target_range (int): the number of target positions (default 10).
        render_mode (str | None): ``"ansi"`` draws the line with the walker ``W`` and the target ``T``;
            ``"rgb_array"`` the same as a picture.

    Physics:
        A target at g > 0 is reached at the end of step g and pays on the steps g, …, T; g = 0 pays
        T times. The optimal expected return is therefore

        .. math::

            R^* = \frac{1}{G}\Big(T + \sum_{g=1}^{G-1} \max(0, T - g + 1)\Big),

        with G = ``target_range`` (R* = 16.4 for T = 20, G = 10).

    References:
        Florian Marquardt, *Machine Learning for Physicists*, lecture on policy gradients.

    Version History:
        v0: the lecture's task.
    """

    core_class = WalkerTargetCore


class WalkerTargetVectorEnv(VectorEnv):
    """Vector face of :class:`WalkerTargetEnv` (same arguments, plus ``num_envs`` and ``device``)."""

    core_class = WalkerTargetCore

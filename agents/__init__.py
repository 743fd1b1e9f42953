"""physrl from-scratch agents and baseline policies.

Every agent is built as ``Agent(envs, seed=0, **hyperparameters)`` on a physrl vector env and
trained by calling ``learn_iteration()`` repeatedly (the agent contract of the architecture page, docs/architecture.md).
"""

from physrl.agents.deep_pg import DeepPolicyGradient
from physrl.agents.dqn import DQN
from physrl.agents.q_learning import QLearning
from physrl.agents.sb3 import SB3A2C, SB3DQN, SB3PPO
from physrl.agents.student import QECStudent
from physrl.agents.tabular_pg import TabularPolicyGradient

#: CLI name -> agent class of our from-scratch agents.
AGENTS: dict[str, type] = {
    "tabular-pg": TabularPolicyGradient,
    "deep-pg": DeepPolicyGradient,
    "q-learning": QLearning,
    "dqn": DQN,
    "qec-student": QECStudent,
}
#: CLI name -> agent class of the Stable-Baselines3 references (:mod:`physrl.agents.sb3`).
SB3_AGENTS: dict[str, type] = {"sb3-ppo": SB3PPO, "sb3-a2c": SB3A2C, "sb3-dqn": SB3DQN}
#: Every agent ``physrl train --agent`` takes: ours, then the references.
ALL_AGENTS: dict[str, type] = {**AGENTS, **SB3_AGENTS}

__all__ = ["AGENTS", "ALL_AGENTS", "DQN", "DeepPolicyGradient", "QECStudent", "QLearning", "SB3A2C", "SB3DQN", "SB3PPO",
           "SB3_AGENTS", "TabularPolicyGradient"]

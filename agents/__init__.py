"""physrl from-scratch agents and baseline policies.

Every agent is built as ``Agent(envs, seed=0, **hyperparameters)`` on a physrl vector env and
trained by calling ``learn_iteration()`` repeatedly (the agent contract of the architecture page, docs/architecture.md).
"""

from physrl.agents.deep_pg import DeepPolicyGradient
from physrl.agents.dqn import DQN
from physrl.agents.q_learning import QLearning
from physrl.agents.student import QECStudent
from physrl.agents.tabular_pg import TabularPolicyGradient

#: CLI name -> agent class.
AGENTS: dict[str, type] = {
    "tabular-pg": TabularPolicyGradient,
    "deep-pg": DeepPolicyGradient,
    "q-learning": QLearning,
    "dqn": DQN,
    "qec-student": QECStudent,
}

__all__ = ["AGENTS", "DQN", "DeepPolicyGradient", "QECStudent", "QLearning", "TabularPolicyGradient"]

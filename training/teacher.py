"""The QEC student's teacher: ``teacher=PATH`` resolved into a loaded policy and handed to the student.

Loading checkpoints is training's job, so the student (:class:`physrl.agents.student.QECStudent`) only
receives what this module loads: the teacher's greedy policy, or with ``teacher_sampled`` its ``deep-pg``
agent, on the teacher's own view (``obs_mode``) of the student's envs.
"""

from __future__ import annotations

from typing import Any

from physrl.agents.student import QECStudent
from physrl.training.checkpoint import load_checkpoint, load_policy, restore_agent

QEC = "physrl/QubitErrorCorrection-v0"


def attach_teacher(learner: Any) -> Any:
    """Load the teacher checkpoint named by a :class:`~physrl.agents.student.QECStudent`'s ``teacher`` into it
    when imitation lies ahead and one is named (a student without one refuses to start by itself); other
    learners are left as they are. Returns ``learner``."""
    path = learner.config.teacher if isinstance(learner, QECStudent) else ""
    if not path or not learner.needs_teacher():
        return learner
    view = load_checkpoint(path, QEC)["config"]["env_kwargs"].get("obs_mode", "measurements")
    try:
        expected = learner.teacher_spaces(view)
    except ValueError as error:
        raise ValueError(f"teacher {path!r}: {error}") from None
    if learner.config.teacher_sampled:
        checkpoint = load_checkpoint(path, QEC, **expected)
        if checkpoint["config"]["agent"] != "deep-pg":
            raise ValueError(f"teacher_sampled=True needs a deep-pg teacher (its action probabilities), "
                             f"got {checkpoint['config']['agent']!r}")
        teacher = restore_agent(checkpoint, learner.device)
    else:
        teacher = load_policy(path, learner.device, env_id=QEC, **expected)
    learner.set_teacher(teacher, view)
    return learner

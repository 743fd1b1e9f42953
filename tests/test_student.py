"""The recurrent QEC student (agents/student.py): imitation of a teacher checkpoint, physrl train, load_policy."""

import io

import gymnasium as gym
import pytest
import torch

from physrl.agents import AGENTS, QECStudent
from physrl.agents.rollout import play_episodes
from physrl.training import load_policy, train
from physrl.training.checkpoint import load_checkpoint
from physrl.training.teacher import attach_teacher

QEC = "physrl/QubitErrorCorrection-v0"
SMALL = {"n_qubits": 3, "max_steps": 20}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A briefly trained deep-pg teacher on the state view of a small memory (what matters is that it is a policy)."""
    return train(QEC, "deep-pg", num_envs=16, total_steps=16 * 21 * 2, env_kwargs={**SMALL, "obs_mode": "state"},
                 logdir=tmp_path_factory.mktemp("teacher"), progress=False)


def test_student_imitates_its_teacher(teacher):
    student = attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=16, **SMALL), seed=0, teacher=str(teacher)))
    stats = [student.learn_iteration() for _ in range(15)]
    assert stats[-1]["losses/imitation"] < 0.5 * stats[0]["losses/imitation"]
    teacher_policy = load_policy(teacher)
    reference = play_episodes(gym.make_vec(QEC, num_envs=64, obs_mode="state", **SMALL), teacher_policy, seed=10**6)
    imitated = play_episodes(gym.make_vec(QEC, num_envs=64, **SMALL), student.act, seed=10**6)
    assert float(imitated.mean()) >= float(reference.mean()) - 0.2 * abs(float(reference.mean()))


def test_physrl_train_student_end_to_end_and_load_policy(teacher, tmp_path):
    run_dir = train(QEC, "qec-student", num_envs=4, total_steps=4 * 21 * 2, env_kwargs=SMALL,
                    hyperparameters={"teacher": str(teacher)}, logdir=tmp_path, progress=False)
    assert load_checkpoint(run_dir, env_id=QEC)["config"]["hyperparameters"]["teacher"] == str(teacher)
    policy = load_policy(run_dir)
    envs = gym.make_vec(QEC, num_envs=3, **SMALL)
    obs, _ = envs.reset(seed=1)
    for _ in range(5):
        actions = policy(obs)
        assert actions.shape == (3,)
        obs, *_ = envs.step(actions)


def test_hidden_state_restarts_on_the_first_observation_of_an_episode(teacher):
    student = attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL), teacher=str(teacher)))
    student.learn_iteration()
    envs = gym.make_vec(QEC, num_envs=2, **SMALL)
    obs, _ = envs.reset(seed=0)
    first = student.model.step(obs, torch.zeros(2, student.model.hidden_size))[0].argmax(-1)
    for _ in range(3):
        obs, *_ = envs.step(student.act(obs))
    assert torch.equal(student.act(torch.zeros_like(obs)), first)


def test_resume_is_exact_and_errors_are_clear(teacher, tmp_path):
    def make():
        return attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=4, **SMALL), seed=3, teacher=str(teacher),
                                         update_epochs=2))

    agent = make()
    agent.learn_iteration()
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    expected = [agent.learn_iteration() for _ in range(2)]
    buffer.seek(0)
    resumed = make()
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert [resumed.learn_iteration() for _ in range(2)] == expected
    assert AGENTS["qec-student"] is QECStudent
    with pytest.raises(ValueError, match="obs_mode='measurements'"):
        QECStudent(gym.make_vec(QEC, num_envs=2, obs_mode="state", **SMALL), teacher=str(teacher))
    with pytest.raises(ValueError, match="teacher checkpoint"):
        QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL)).learn_iteration()
    with pytest.raises(ValueError, match="does not match"):
        attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=2, n_qubits=4, max_steps=20), teacher=str(teacher)))


def test_student_follows_a_teacher_on_the_pairs_view_and_refuses_a_blind_one(tmp_path):
    """The teacher's view is read from its checkpoint: obs_mode 'pairs' works; a teacher that saw only
    measurements is refused by name."""
    pairs_teacher = train(QEC, "deep-pg", num_envs=8, total_steps=8 * 21, env_kwargs={**SMALL, "obs_mode": "pairs"},
                          logdir=tmp_path / "pairs", progress=False)
    student = attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=8, **SMALL), seed=0, teacher=str(pairs_teacher)))
    student.learn_iteration()
    envs = gym.make_vec(QEC, num_envs=8, obs_mode="pairs", **SMALL)
    obs, _ = envs.reset(seed=0)
    assert torch.equal(student.teacher_policy()(obs), load_policy(pairs_teacher)(obs))
    sampling = attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=8, **SMALL), teacher=str(pairs_teacher),
                                         teacher_sampled=True))
    wide = gym.make_vec(QEC, num_envs=256, obs_mode="pairs", **SMALL).reset(seed=0)[0]
    greedy = load_policy(pairs_teacher)(wide)
    assert torch.equal(sampling.teacher_policy().act(wide), greedy)   # the same teacher
    sampled, extras = sampling._follow_teacher(torch.zeros(8, 1))
    assert sampled.shape == (8,) and torch.allclose(extras["teacher_probabilities"].sum(-1), torch.ones(8))
    assert "losses/imitation" in sampling.learn_iteration()
    with pytest.raises(TypeError, match="teacher_sampled"):
        QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL), teacher=str(pairs_teacher), teacher_sampled="yes")
    blind = train(QEC, "deep-pg", num_envs=4, total_steps=4 * 21, env_kwargs=SMALL, logdir=tmp_path / "blind",
                  progress=False)
    with pytest.raises(ValueError, match="obs_mode='state', 'pairs' or 'pauli'"):
        attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL), teacher=str(blind)))


def test_policy_gradient_refinement_teaches_the_student_to_avoid_revealing_measurements(teacher):
    """After refine_after env steps the student acts itself and learns from the reward: from a fresh GRU
    (refine_after=0), episodes that a revealing measurement cut short grow longer; the switch is logged."""
    envs = gym.make_vec(QEC, num_envs=32, n_qubits=3, max_steps=20)
    student = QECStudent(envs, seed=0, refine_after=0, num_steps=21, refine_learning_rate=3e-3)
    lengths = []
    for _ in range(80):
        stats = student.learn_iteration()
        assert "losses/policy_loss" in stats and "losses/imitation" not in stats
        lengths.append(sum(stats["episodic_length"]) / len(stats["episodic_length"]))
    assert sum(lengths[-10:]) > 1.5 * sum(lengths[:10])
    switching = attach_teacher(QECStudent(gym.make_vec(QEC, num_envs=4, **SMALL), teacher=str(teacher),
                                          refine_after=4 * 21))
    assert "losses/imitation" in switching.learn_iteration()
    assert "losses/policy_loss" in switching.learn_iteration()
    with pytest.raises(ValueError, match="refine_after"):
        QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL), refine_after=-1)
    with pytest.raises(ValueError, match="gamma"):
        QECStudent(gym.make_vec(QEC, num_envs=2, **SMALL), gamma=1.5)


def test_mask_revealing_tracks_the_logical_x_from_the_students_own_gates(teacher):
    """The student's software copy of v (which qubits carry the logical X) follows the core's through
    gates and episode boundaries, and a masked student never makes a revealing measurement."""
    envs = gym.make_vec(QEC, num_envs=16, **SMALL)
    student = attach_teacher(QECStudent(envs, seed=0, teacher=str(teacher), mask_revealing=True, num_steps=13))
    for _ in range(4):   # 52 steps: across two episode boundaries
        student.learn_iteration()
        assert torch.equal(student.shift, envs.core.shift)
    fresh = QECStudent(gym.make_vec(QEC, num_envs=64, **SMALL), seed=1, mask_revealing=True)
    play = gym.make_vec(QEC, num_envs=64, **SMALL)
    obs, _ = play.reset(seed=0)
    for _ in range(20):   # an untrained GRU samples measurements often, but never a revealing one
        obs, reward, terminated, truncated, _ = play.step(fresh.act(obs, deterministic=False))
        assert not bool(terminated.any())
    with pytest.raises(ValueError, match="hadamard=False"):
        QECStudent(gym.make_vec(QEC, num_envs=2, hadamard=True, **SMALL), mask_revealing=True)

"""What ``physrl train`` shows in TensorBoard: the episode picture, CleanRL's loss keys, the learning rate
and the HPARAMS tab."""

import io
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from physrl.agents.deep_pg import DeepPolicyGradient, explained_variance
from physrl.envs.core import frame_strip
from physrl.training import load_policy, train
from physrl.training.checkpoint import load_checkpoint
from physrl.training.train import episode_summary

MAZE = "physrl/TreasureMaze-v0"
SMALL_MAZE = {"size": 7, "n_chests": 3, "max_steps": 15}


def events(run_dir):
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_deep_pg_run_logs_episode_picture_cleanrl_keys_learning_rate_and_hparams(tmp_path):
    run_dir = train(MAZE, "deep-pg", num_envs=4, total_steps=300, env_kwargs=SMALL_MAZE, logdir=tmp_path,
                    hyperparameters={"learning_rate": 1e-3, "lr_anneal_steps": 600}, progress=False)
    logged = events(run_dir)
    scalars = logged.Tags()["scalars"]
    for tag in ("losses/clipfrac", "losses/explained_variance", "losses/old_approx_kl", "losses/approx_kl",
                "charts/learning_rate", "hparams/final_return"):
        assert tag in scalars, tag
    rates = [event.value for event in logged.Scalars("charts/learning_rate")]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] < rates[0]  # the annealed rate, as used
    assert all(0 <= event.value <= 1 for event in logged.Scalars("losses/clipfrac"))
    # one picture after the first iteration and one at the end; the last is the final policy's episode
    pictures = logged.Images("images/episode")
    assert len(pictures) == 2
    last = np.asarray(Image.open(io.BytesIO(pictures[-1].encoded_image_string)).convert("RGB"))
    policy = load_policy(run_dir)
    expected = episode_summary(policy.config, policy, "cpu")["images/episode"]
    np.testing.assert_array_equal(last, expected)
    content = logged.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    names = {info.name for info in experiment.hparam_infos}
    assert {"learning_rate", "lr_anneal_steps", "env_id", "num_envs", "hidden_sizes"} <= names
    assert [info.name.tag for info in experiment.metric_infos] == ["hparams/final_return"]


def test_oscillator_shots_are_logged_and_continue_after_an_interrupted_run_resumes(tmp_path, monkeypatch):
    original, calls = DeepPolicyGradient.learn_iteration, []

    def learn_iteration(self):
        calls.append(self.global_step)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the run saves after this iteration and stops
        return original(self)

    monkeypatch.setattr(DeepPolicyGradient, "learn_iteration", learn_iteration)
    # 4 envs, episodes of 2 control steps + the autoreset step: each iteration of 3 steps ends 4 episodes
    run_dir = train("physrl/OscillatorStatePrep-v0", "deep-pg", num_envs=4, total_steps=10**6, logdir=tmp_path,
                    env_kwargs={"n": 1, "n_levels": 30, "alpha_max": 1.0, "max_steps": 2}, progress=False, picture_every=0,
                    hyperparameters={"num_steps": 3, "hidden_sizes": []})
    assert load_checkpoint(run_dir)["global_step"] == 36
    train(resume=run_dir, total_steps=60, progress=False, picture_every=0)
    shots = [(event.step, event.value) for event in events(run_dir).Scalars("charts/shots")]
    assert shots == [(12 * k, 4 * k) for k in range(1, 6)]


def test_picture_every_zero_logs_no_picture(tmp_path):
    run_dir = train(MAZE, "deep-pg", num_envs=2, total_steps=40, env_kwargs=SMALL_MAZE, logdir=tmp_path,
                    progress=False, picture_every=0)
    assert events(run_dir).Tags()["images"] == []
    with pytest.raises(ValueError, match="picture_every must be a finite number of seconds >= 0"):
        train(MAZE, "deep-pg", logdir=tmp_path, picture_every=-1)


def test_env_summary_hook_adds_its_own_charts(tmp_path, monkeypatch):
    """A science env extends ``episode_summary`` with its own scalars; they reach TensorBoard as logged."""
    from physrl.envs.maze import MazeCore

    original = MazeCore.episode_summary

    def with_chests(self, i, frames):
        return {**original(self, i, frames), "charts/chests_left": float(self.chests[i].sum())}

    monkeypatch.setattr(MazeCore, "episode_summary", with_chests)
    run_dir = train(MAZE, "deep-pg", num_envs=2, total_steps=40, env_kwargs=SMALL_MAZE, logdir=tmp_path,
                    progress=False)
    values = [event.value for event in events(run_dir).Scalars("charts/chests_left")]
    assert len(values) == 2 and all(0 <= value <= SMALL_MAZE["n_chests"] for value in values)


def test_frame_strip_keeps_first_and_last_frames_in_order():
    frames = [np.full((2, 3, 3), k, dtype=np.uint8) for k in range(20)]
    strip = frame_strip(frames, most=4, per_row=2, gap=1)
    assert strip.shape == (2 * 2 + 1, 2 * 3 + 1, 3)
    assert strip[0, 0, 0] == 0 and strip[-1, -1, 0] == 19 and strip[0, 4, 0] < strip[3, 0, 0]
    assert (strip[2, :, :] == 255).all()  # the gap between rows
    with pytest.raises(ValueError, match="frames must hold at least one"):
        frame_strip([])


def test_explained_variance_of_perfect_constant_and_masked_critics():
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    everywhere = torch.ones(4, dtype=torch.bool)
    assert explained_variance(targets, targets, everywhere) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 9.0), targets, everywhere) == pytest.approx(0.0)
    assert explained_variance(torch.zeros(4), targets, everywhere) == pytest.approx(0.0)  # an offset is not variance
    masked = torch.tensor([True, True, False, False])
    assert explained_variance(torch.tensor([1.0, 2.0, 0.0, 0.0]), targets, masked) == pytest.approx(1.0)
    assert np.isnan(explained_variance(targets, torch.ones(4), everywhere))


def test_qec_run_logs_recoverable_information_and_the_greedy_lifetime(tmp_path):
    """On the qubit memory each picture brings R_Q at the end of the greedy episode and T_eff/T_dec of the
    greedy policy over 256 episodes, both as the final policy gives them from its checkpoint."""
    from physrl.agents.reference.qec import effective_lifetime

    env_kwargs = {"n_qubits": 3, "max_steps": 16, "obs_mode": "pairs", "action_memory": 2}
    run_dir = train("physrl/QubitErrorCorrection-v0", "deep-pg", num_envs=8, total_steps=8 * 16 * 2,
                    env_kwargs=env_kwargs, hyperparameters={"num_steps": 16, "action_mask": True},
                    logdir=tmp_path, progress=False)
    logged = events(run_dir)
    recoverable = [event.value for event in logged.Scalars("charts/recoverable_information")]
    lifetimes = [event.value for event in logged.Scalars("charts/t_eff_over_t_dec")]
    assert len(recoverable) == len(lifetimes) == 2 and all(0 <= value <= 1 for value in recoverable)
    policy = load_policy(run_dir)
    summary = episode_summary(policy.config, policy, "cpu")
    assert recoverable[-1] == pytest.approx(summary["charts/recoverable_information"], rel=1e-6)
    ratio, _ = effective_lifetime(env_kwargs, lambda envs: policy, num_envs=256)
    assert lifetimes[-1] == pytest.approx(ratio, rel=1e-6) and ratio > 0

"""What Gymnasium and Stable-Baselines3 users type from habit, on every physrl id.

SB3's string-id one-liners, the horizon as Gymnasium's ``max_episode_steps``, Gymnasium's vector
wrappers (numpy output and the array-conversion wrappers), and the ``VectorEnv`` surface compared
with a real ``SyncVectorEnv`` over the single face.
"""

import inspect
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeAwareObservation, TimeLimit
from gymnasium.wrappers.vector import (ArrayConversion, DictInfoToList, FlattenObservation, NormalizeObservation,
                                       NormalizeReward, NumpyToTorch, RecordEpisodeStatistics)
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from conftest import PHYSRL_IDS, cuda

HORIZON = 3  # a short horizon: episodes end, and autoresets happen, within a few steps


def actions_for(space: gym.Space, num_envs: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=num_envs)
    return rng.uniform(space.low, space.high, size=(num_envs, *space.shape)).astype(space.dtype)


# 1. SB3 string ids and rgb_array rendering


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_every_env_renders_rgb_array_on_both_faces(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8 and image.min() < image.max()
    vector = gym.make_vec(env_id, num_envs=2, render_mode="rgb_array")
    vector.reset(seed=0)
    np.testing.assert_array_equal(vector.render()[0], image)


@pytest.mark.parametrize("env_id", ["physrl/RandomWalker-v0", "physrl/WalkerTarget-v0"])
def test_walker_picture_shows_the_walker_where_it_is(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    blue = np.array([30, 90, 220])

    def walker_column() -> float:
        return float(np.nonzero((env.render() == blue).all(axis=2))[1].mean())

    before = walker_column()
    env.step(1)  # one site to the right (16 pixels)
    assert walker_column() - before == pytest.approx(16)


def test_unsupported_render_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="render_mode must be one of"):
        gym.make("physrl/RandomWalker-v0", render_mode="rgb")


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_sb3_one_liners_on_string_ids(env_id):
    model = PPO("MlpPolicy", env_id, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=8)
    assert model.num_timesteps == 8
    if isinstance(model.action_space, gym.spaces.Discrete):
        dqn = DQN("MlpPolicy", env_id, buffer_size=64, learning_starts=4, train_freq=4, seed=0, device="cpu")
        dqn.learn(total_timesteps=8)
        assert dqn.num_timesteps == 8
    else:  # SB3's own refusal: DQN needs a discrete action space
        with pytest.raises(AssertionError, match="Discrete"):
            DQN("MlpPolicy", env_id, device="cpu")
    vec_env = make_vec_env(env_id, n_envs=2, seed=0)
    assert vec_env.get_attr("render_mode") == ["rgb_array", "rgb_array"]
    obs = vec_env.reset()
    assert obs.shape[0] == 2
    vec_env.step(np.stack([vec_env.action_space.sample() for _ in range(2)]))


# 2. Horizon the Gymnasium way


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_spec_carries_the_horizon_and_the_single_face_gets_time_limit(env_id):
    core_class = gym.make(env_id).unwrapped.core_class
    assert gym.spec(env_id).max_episode_steps == inspect.signature(core_class).parameters["max_steps"].default
    env = gym.make(env_id)
    assert isinstance(env, TimeLimit) and env.spec.max_episode_steps == env.unwrapped.core.max_steps
    timed = TimeAwareObservation(gym.make(env_id))
    obs, _ = timed.reset(seed=0)
    obs, *_ = timed.step(timed.action_space.sample())
    assert obs["time"] == 1 if isinstance(obs, dict) else obs[-1] == 1


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_both_faces_truncate_at_max_episode_steps(env_id):
    vector = gym.make_vec(env_id, num_envs=2, max_episode_steps=HORIZON)
    assert vector.get_attr("max_steps") == (HORIZON, HORIZON)
    single = gym.make(env_id, max_steps=HORIZON)
    vector.reset(seed=0)
    single.reset(seed=0)
    rng = np.random.default_rng(0)
    ended_early = np.zeros(2, bool)  # QEC may terminate before the horizon
    for step in range(1, HORIZON + 1):
        actions = actions_for(vector.single_action_space, 2, rng)
        terminated, truncated = (x.numpy() for x in vector.step(torch.as_tensor(actions))[2:4])
        if not ended_early[0]:
            assert (terminated[0], truncated[0]) == single.step(actions[0])[2:4]
        np.testing.assert_array_equal(truncated, (step == HORIZON) & ~ended_early)
        ended_early |= terminated


def test_conflicting_horizons_are_refused():
    with pytest.raises(ValueError, match="max_steps=3 and max_episode_steps=4 disagree"):
        gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, max_steps=3, max_episode_steps=4)
    # the registered default passed by gym.make_vec yields to an explicit max_steps
    assert gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, max_steps=3).get_attr("max_steps") == (3, 3)


# 3. Gymnasium's vector wrappers


def run(envs: gym.vector.VectorEnv, steps: int, seed: int = 0) -> list:
    """Random steps through (wrapped) vector envs: the list of step results."""
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    results = []
    for _ in range(steps):
        results.append(envs.step(actions_for(envs.unwrapped.single_action_space, envs.num_envs, rng)))
    return results


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_numpy_output_runs_gymnasiums_vector_wrappers(env_id):
    def make():
        return gym.make_vec(env_id, num_envs=3, array="numpy", max_episode_steps=HORIZON)

    plain = run(make(), 2 * HORIZON + 1)
    assert all(isinstance(x, np.ndarray) for x in plain[0][:4])
    stats = run(RecordEpisodeStatistics(make()), 2 * HORIZON + 1)
    returns, finished = np.zeros(3), 0
    for (_, reward, terminated, truncated, _), (*_, info) in zip(plain, stats, strict=True):
        returns += reward
        done = terminated | truncated
        np.testing.assert_array_equal(info.get("_episode", np.zeros(3, bool)), done)
        if done.any():
            np.testing.assert_allclose(info["episode"]["r"][done], returns[done], rtol=1e-5)
            finished += int(done.sum())
        returns[done] = 0.0
    assert finished >= 3
    observations = np.stack([result[0] for result in run(NormalizeObservation(make()), 4)])
    assert np.isfinite(observations).all() and observations.dtype == np.float32
    rewards = np.stack([result[1] for result in run(NormalizeReward(make()), 4)])
    assert np.isfinite(rewards).all()
    listed = run(DictInfoToList(make()), HORIZON + 1)
    assert all(isinstance(result[4], list) and len(result[4]) == 3 for result in listed)
    flat = FlattenObservation(make())
    obs = run(flat, 1)[0][0]
    assert obs.shape == (3, gym.spaces.flatdim(flat.unwrapped.single_observation_space))


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_array_conversion_wrappers_both_ways(env_id):
    # torch face -> numpy for Gymnasium's wrappers -> back to torch for a torch agent
    envs = gym.make_vec(env_id, num_envs=2, max_episode_steps=HORIZON)
    wrapped = NumpyToTorch(RecordEpisodeStatistics(ArrayConversion(envs, env_xp=torch, target_xp=np)))
    obs, _ = wrapped.reset(seed=0)
    assert isinstance(obs, torch.Tensor)
    rng = np.random.default_rng(0)
    for _ in range(HORIZON):
        obs, reward, terminated, truncated, info = wrapped.step(
            torch.as_tensor(actions_for(envs.single_action_space, 2, rng)))
        if bool((terminated | truncated).any()):
            break
    assert isinstance(reward, torch.Tensor) and isinstance(info["episode"]["r"], torch.Tensor)
    assert torch.equal(info["_episode"], terminated | truncated)
    # numpy face -> torch
    torch_obs, _ = NumpyToTorch(gym.make_vec(env_id, num_envs=2, array="numpy")).reset(seed=0)
    np.testing.assert_allclose(torch_obs.numpy(), gym.make_vec(env_id, num_envs=2).reset(seed=0)[0].numpy())


def test_unknown_array_option_is_refused():
    with pytest.raises(ValueError, match="array must be one of"):
        gym.make_vec("physrl/RandomWalker-v0", num_envs=2, array="jax")


# 4. The VectorEnv surface against SyncVectorEnv over the single face


def sync_and_vector(env_id: str, num_envs: int = 3, device: str = "cpu",
                    **options) -> tuple[gym.vector.VectorEnv, gym.vector.VectorEnv]:
    sync = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, max_steps=HORIZON, **options)] * num_envs)
    vector = gym.make_vec(env_id, num_envs=num_envs, device=device, array="numpy", max_episode_steps=HORIZON,
                          **options)
    return sync, vector


def assert_same_infos(expected: dict, got: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key], dtype=np.float64), np.asarray(expected[key], dtype=np.float64),
                                   rtol=1e-6, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[cuda, pytest.mark.cuda])])
@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_steps_and_infos_match_sync_vector_env_key_for_key(env_id, device):
    sync, vector = sync_and_vector(env_id, device=device)
    for envs in (sync, vector):
        envs.reset(seed=42)
    assert sync.np_random_seed == vector.np_random_seed == vector.get_attr("np_random_seed") == (42, 43, 44)
    rng = np.random.default_rng(1)
    for _ in range(2 * HORIZON + 2):  # includes the autoreset steps
        actions = actions_for(vector.single_action_space, 3, rng)
        expected, got = sync.step(actions), vector.step(actions)
        for a, b in zip(expected[:4], got[:4], strict=True):
            np.testing.assert_allclose(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64), rtol=1e-6,
                                       atol=1e-6)
        assert_same_infos(expected[4], got[4])


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_get_attr_call_and_set_attr_follow_sync_vector_env(env_id):
    sync, vector = sync_and_vector(env_id, render_mode="rgb_array")
    for name in ("render_mode", "observation_space", "action_space"):
        assert vector.get_attr(name) == sync.get_attr(name)
    sync.reset(seed=5)
    vector.reset(seed=5)
    for expected, got in zip(sync.call("render"), vector.call("render"), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert vector.call("max_steps") == (HORIZON,) * 3  # not callable: the attribute, as SyncVectorEnv does
    assert [image.shape for image in vector.call("render_rgb")] == [image.shape for image in sync.call("render")]
    with pytest.raises(AttributeError, match="acts on the whole batch"):
        vector.call("observe")
    vector.set_attr("render_mode", None)
    assert vector.get_attr("render_mode") == (None,) * 3 and vector.render() is None
    elapsed = vector.get_attr("elapsed")
    assert [int(e) for e in elapsed] == [0, 0, 0]
    vector.set_attr("elapsed", [1, 2, 0])
    assert [int(e) for e in vector.get_attr("elapsed")] == [1, 2, 0]
    with pytest.raises(ValueError, match="one value per sub-env"):
        vector.set_attr("elapsed", [1, 2])
    with pytest.raises(ValueError, match="shared by the batched sub-envs"):
        vector.set_attr("max_steps", [3, 4, 3])
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vector.get_attr("nope")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[cuda, pytest.mark.cuda])])
@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_reset_mask_is_validated_and_matches_sync_vector_env(env_id, device):
    sync, vector = sync_and_vector(env_id, device=device)
    rng = np.random.default_rng(0)
    for envs in (sync, vector):
        envs.reset(seed=7)
    actions = actions_for(vector.single_action_space, 3, rng)
    sync.step(actions)
    vector.step(actions)
    mask = np.array([True, False, True])
    expected, _ = sync.reset(seed=70, options={"reset_mask": mask})
    got, _ = vector.reset(seed=70, options={"reset_mask": mask})
    np.testing.assert_allclose(got, expected)
    assert vector.np_random_seed == sync.np_random_seed == (70, 8, 72)
    for bad, error, match in [(np.zeros(3, bool), ValueError, "at least one True"),
                              (np.ones(3, int), TypeError, "bool dtype"),
                              (np.ones(3), TypeError, "bool dtype"),
                              ([True, True, True], TypeError, "numpy array or torch tensor"),
                              (np.ones(2, bool), ValueError, r"shape \(3,\)")]:
        with pytest.raises(error, match=match):
            vector.reset(options={"reset_mask": bad})


def test_a_longer_single_face_horizon_cut_by_the_registered_time_limit_is_reported():
    env = gym.make("physrl/RandomWalker-v0", max_steps=30)  # registered max_episode_steps: 20
    env.reset(seed=0)
    truncated = [env.step(1)[3] for _ in range(20)]
    assert truncated[-1] and not any(truncated[:-1])
    with pytest.warns(UserWarning, match=r"gym.make\(id, max_steps=30, max_episode_steps=30\)"):
        env.reset()
    env = gym.make("physrl/RandomWalker-v0", max_steps=30, max_episode_steps=30)
    env.reset(seed=0)
    assert [env.step(1)[3] for _ in range(30)] == [False] * 29 + [True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset()


def test_agents_refuse_the_numpy_output():
    from physrl.agents import AGENTS

    with pytest.raises(TypeError, match="without array='numpy'"):
        AGENTS["tabular-pg"](gym.make_vec("physrl/WalkerTarget-v0", num_envs=2, array="numpy"))

"""Conformance of every registered physrl environment (new ids join automatically)."""

import inspect
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from conftest import PHYSRL_IDS, cuda


def random_actions(space: gym.Space, count: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=count)
    return rng.uniform(space.low, space.high, size=(count, *space.shape)).astype(space.dtype)


def rollout(env: gym.Env, seed: int, steps: int) -> list:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for action in random_actions(env.action_space, steps, rng):
        obs, reward, terminated, truncated, _ = env.step(action)
        trace.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            trace.append(env.reset()[0])
    return trace


def assert_same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_gymnasium_checker_without_warnings(env_id):
    for render_mode in [None, *gym.make(env_id).unwrapped.metadata["render_modes"]]:
        env = gym.make(env_id, render_mode=render_mode).unwrapped
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gym_check_env(env, skip_render_check=render_mode is None)


# SB3's checker advises uint8 images of at least 36x36 pixels for its default CnnPolicy whenever an
# observation is 3-D. The maze's (3, M, M) float planes are deliberate (the course's observation), so
# exactly that advice is allowed; every other warning fails the test.
SB3_IMAGE_ADVICE = r"(?s).*(is an image but|minimal resolution for an image)"


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_sb3_checker_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=SB3_IMAGE_ADVICE)
        sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_fixed_seed_gives_the_same_50_steps(env_id):
    first, second = rollout(gym.make(env_id), 3, 50), rollout(gym.make(env_id), 3, 50)
    for a, b in zip(first, second, strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_pickle_round_trip_continues_identically(env_id):
    env = gym.make(env_id)
    env.reset(seed=11)
    rng = np.random.default_rng(0)
    for action in random_actions(env.action_space, 5, rng):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    for action in random_actions(env.action_space, 20, rng):
        assert_same(env.step(action)[:4], clone.step(action)[:4])


STATE_CASES = [(env_id, {}) for env_id in PHYSRL_IDS] + [
    ("physrl/TreasureMaze-v0", {"fixed_maze": True}), ("physrl/QubitErrorCorrection-v0", {"hadamard": True}),
    ("physrl/OscillatorStatePrep-v0", {"control": "ecd", "reward_mode": "wigner"})]


@pytest.mark.parametrize("env_id, options", STATE_CASES)
def test_vector_state_dict_is_the_declared_state_and_continues_exactly(env_id, options):
    """state_dict saves the core's declared state tensors and nothing else; a fresh env that loads it,
    or a state in the older form that held every tensor attribute (constants too), steps on exactly
    as the saved env, through autoresets."""
    def make():
        return gym.make_vec(env_id, num_envs=3, max_steps=4, **options)

    rng = np.random.default_rng(0)
    envs = make()
    envs.reset(seed=3)
    for _ in range(6):
        envs.step(torch.as_tensor(random_actions(envs.single_action_space, 3, rng)))
    state = envs.state_dict()
    core = envs.core
    assert set(state["core"]) == {"elapsed", *core.state_names}
    every_tensor = {k: v.clone() for k, v in vars(core).items() if isinstance(v, torch.Tensor)}
    older = dict(state, core=every_tensor)
    restored, from_older = make(), make()
    restored.load_state_dict(state)
    from_older.load_state_dict(older)
    for _ in range(10):
        actions = torch.as_tensor(random_actions(envs.single_action_space, 3, rng))
        expected = envs.step(actions)[:4]
        for other in (restored, from_older):
            for a, b in zip(expected, other.step(actions)[:4], strict=True):
                assert torch.equal(a, b)


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_the_public_surface_of_the_vector_face(env_id):
    """What agents and training read instead of the core: the options with their defaults, the horizon,
    the steps taken (a copy), the action mask's absence or presence, and a picture of one sub-env."""
    envs = gym.make_vec(env_id, num_envs=3, max_steps=4)
    defaults = inspect.signature(envs.core_class).parameters
    assert set(envs.options) == set(defaults) - {"num_envs", "device"}
    assert envs.options["max_steps"] == envs.max_steps == 4
    assert all(envs.options[name] == p.default for name, p in defaults.items() if name not in
               ("num_envs", "device", "max_steps") and name not in gym.spec(env_id).kwargs)
    envs.reset(seed=0)
    space = envs.single_action_space
    for _ in range(2):  # the first action (stay, idle, ...) ends no episode early
        envs.step(torch.full((3, *space.shape), space.start if hasattr(space, "start") else 0.0))
    elapsed = envs.elapsed
    assert elapsed.tolist() == [2, 2, 2]
    elapsed += 1
    assert envs.elapsed.tolist() == [2, 2, 2]
    if not envs.masks_actions:
        with pytest.raises(ValueError, match="action_mask"):
            envs.action_mask(envs.reset(seed=0)[0])
    if "rgb_array" in envs.metadata["render_modes"]:
        picture = envs.frame(2)
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
        with pytest.raises(ValueError, match="i must be in"):
            envs.frame(3)


def test_a_state_of_other_env_options_is_refused():
    dense = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2, hadamard=True)
    dense.reset(seed=0)
    pairs = gym.make_vec("physrl/QubitErrorCorrection-v0", num_envs=2)
    with pytest.raises(ValueError, match="state tensor 'dense' is not part of this env"):
        pairs.load_state_dict(dense.state_dict())


def compare_single_and_vector(env_id: str, num_envs: int, device: str, steps: int = 200, seed: int = 100) -> None:
    """N single envs (seeds seed+i, reset by hand one step after each episode end) against the vector face."""
    singles = [gym.make(env_id) for _ in range(num_envs)]
    vector = gym.make_vec(env_id, num_envs=num_envs, device=device)
    assert vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    rng = np.random.default_rng(seed)
    obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    assert isinstance(obs, torch.Tensor) and obs.device.type == torch.device(device).type
    np.testing.assert_allclose(obs.cpu().numpy(), np.stack(single_obs), rtol=1e-6, atol=1e-6)
    done = [False] * num_envs
    resets = 0
    for _ in range(steps):
        actions = random_actions(vector.single_action_space, num_envs, rng)
        obs, reward, terminated, truncated, _ = vector.step(torch.as_tensor(actions, device=device))
        for i, env in enumerate(singles):
            if done[i]:
                expected = (env.reset()[0], 0.0, False, False)
                resets += 1
            else:
                expected = env.step(actions[i])[:4]
            np.testing.assert_allclose(obs[i].cpu().numpy(), expected[0], rtol=1e-6, atol=1e-6)
            assert float(reward[i]) == pytest.approx(expected[1], rel=1e-6, abs=1e-6)
            assert (bool(terminated[i]), bool(truncated[i])) == (expected[2], expected[3])
            done[i] = expected[2] or expected[3]
    assert resets > 0, "the comparison must include autoreset steps"


@pytest.mark.parametrize("num_envs", [1, 7, 64])
@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_vector_face_equals_single_envs(env_id, num_envs):
    compare_single_and_vector(env_id, num_envs, "cpu")


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_vector_face_on_cuda_equals_single_envs(env_id):
    compare_single_and_vector(env_id, 64, "cuda")


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_step_before_reset_raises(env_id):
    with pytest.raises(gym.error.ResetNeeded):
        gym.make(env_id).unwrapped.step(gym.make(env_id).action_space.sample())
    vector = gym.make_vec(env_id, num_envs=2)
    with pytest.raises(gym.error.ResetNeeded):
        vector.step(torch.as_tensor(random_actions(vector.single_action_space, 2, np.random.default_rng(0))))


@pytest.mark.parametrize("env_id", PHYSRL_IDS)
def test_bad_actions_raise_clear_errors(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    space = env.action_space
    outside = space.n + space.start if isinstance(space, gym.spaces.Discrete) else space.high + 1.0
    with pytest.raises(ValueError, match="action"):
        env.step(outside)
    vector = gym.make_vec(env_id, num_envs=3)
    vector.reset(seed=0)
    good = torch.as_tensor(random_actions(vector.single_action_space, 3, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="shape"):
        vector.step(good[:2])
    nan_batch = torch.full(good.shape, float("nan"))
    error = TypeError if isinstance(space, gym.spaces.Discrete) else ValueError
    with pytest.raises(error, match="actions"):
        vector.step(nan_batch)

"""Property-based bad input (Hypothesis): options, actions, ``--set``, config files and checkpoints.

Whatever it is given, the code either works — and then what it accepted was valid and what it returns
is finite and inside its space — or raises a one-line ``ValueError``/``TypeError`` that names the
argument. Never another exception, a NaN, or a silent clip or coercion.

Every property runs a fixed number of examples (``max_examples`` below, derandomised, so CI sees the
same inputs every run); the counts are listed on the development page (docs/development.md).
"""

import importlib
import inspect
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import physrl.envs as physrl_envs
from physrl.training import load_policy
from physrl.training.checkpoint import load_checkpoint
from physrl.training.cli import build_parser
from physrl.training.train import options_from_args, prepare, read_config_file, train

EXAMPLES = {"options": 60, "actions": 60, "set": 40, "config": 40, "bytes": 40, "truncated": 30}


def examples(name: str) -> settings:
    return settings(max_examples=EXAMPLES[name], deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def core_class(env_id: str):
    module, single, _, _ = physrl_envs.ENVIRONMENTS[env_id]
    return getattr(importlib.import_module(f"physrl.envs.{module}"), single)


def option_defaults(env_id: str) -> dict:
    parameters = inspect.signature(core_class(env_id).core_class.__init__).parameters
    return {k: p.default for k, p in parameters.items() if k not in ("self", "num_envs", "device", "n_steps")}


ENV_IDS = sorted(physrl_envs.ENVIRONMENTS)
WORDS = ["fock", "cat", "image", "position", "bitflip", "dephasing", "correlated", "bitflip+dephasing", "chain",
         "all", "ecd", "snap_displacement", "wigner", "fidelity", "measurements", "state", "pairs", "", "x"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 24), st.sampled_from([0, -1, 2**31, 0.5, 1e-300]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=4),
    st.lists(st.integers(-1, 6), max_size=4), st.tuples(st.integers(-1, 12), st.integers(-1, 12)),
    st.just(np.float32("nan")), st.just(np.int64(3)), st.just(np.bool_(True)))


def is_one_line_naming(error: Exception, names) -> bool:
    text = str(error)
    return "\n" not in text and any(name in text for name in names)


def accepted_type(default, value) -> bool:
    """The type the option's default says it takes (bool, int, float); None: no rule from the default."""
    if isinstance(default, bool):
        return isinstance(value, (bool, np.bool_))
    if isinstance(default, int):
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(default, float):
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return True


def check_running(env, steps: int = 3) -> None:
    """Reset and step with valid actions: observations in the space and finite, rewards finite."""
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(steps):
        assert env.observation_space.contains(obs), obs
        assert np.isfinite(np.asarray(obs, dtype=np.float64)).all()
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert math.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_options_build_a_working_env_or_raise_a_clear_error(env_id):
    defaults = option_defaults(env_id)
    registered = physrl_envs.ENVIRONMENTS[env_id][3]
    keys = sorted(defaults) + ["colour"]

    @examples("options")
    @given(st.dictionaries(st.sampled_from(keys), VALUES, max_size=3))
    def run(options):
        if env_id.startswith("physrl/Oscillator"):  # keep the simulation small: a size option is not what is tested
            options.setdefault("n_levels", 12)
            options.setdefault("snap_phases", None if options.get("control") == "ecd" else 2)
            if options["snap_phases"] is None:
                del options["snap_phases"]
        kwargs = {**registered, **options}
        try:
            env = core_class(env_id)(**kwargs)
        except (ValueError, TypeError) as error:
            assert is_one_line_naming(error, list(options) + ["target", "n_levels", "start", "measurable"]), error
            return
        for key, value in options.items():
            assert key in defaults, f"unknown option {key!r} was accepted"
            assert accepted_type(defaults[key], value), f"{key}={value!r} accepted (default {defaults[key]!r})"
        check_running(env)

    run()


def valid_action(space: spaces.Space, action) -> bool:
    """What the action space allows, decided without the env: right kind, shape, finite, inside the bounds."""
    array = np.asarray(action) if not isinstance(action, str) else None
    if array is None or array.dtype == object:
        return False
    if isinstance(space, spaces.Discrete):
        return (array.dtype.kind in "iu" and array.shape == () and space.start <= array <= space.start + space.n - 1)
    return (array.dtype.kind == "f" and array.shape == space.shape and bool(np.isfinite(array).all())
            and bool(((array >= space.low) & (array <= space.high)).all()))


def actions_for(space: spaces.Space):
    """Valid actions and every kind of wrong one: types, shapes, dtypes, NaN/inf, out of range, bools."""
    if isinstance(space, spaces.Discrete):
        n = int(space.n)
        good = st.integers(0, n - 1)
        return st.one_of(good, good.map(np.int64), good.map(np.uint8), st.integers(-3, n + 3), st.booleans(),
                         st.floats(allow_nan=True), good.map(float), good.map(lambda a: np.array([a])),
                         good.map(str), st.none(), st.just(np.int64(2**40)), good.map(lambda a: [a, a]))
    shape = space.shape
    elements = st.floats(-1.0, 1.0, width=32)
    good = st.lists(elements, min_size=shape[0], max_size=shape[0]).map(lambda v: np.array(v, dtype=np.float32))
    return st.one_of(good, good.map(lambda a: a.astype(np.float64)), good.map(lambda a: a * 1.5),
                     good.map(lambda a: np.where(a > 0.5, np.nan, a)), good.map(lambda a: np.where(a > 0.5, np.inf, a)),
                     good.map(lambda a: a[:-1]), good.map(lambda a: a[None]), good.map(lambda a: a.astype(np.int64)),
                     good.map(lambda a: a > 0), good.map(list), st.floats(), st.none(), st.just("0.5"))


SMALL = {"physrl/OscillatorStatePrep-v0": {"n_levels": 12, "snap_phases": 2, "alpha_max": 0.5}}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_actions_step_or_raise_a_clear_error_and_never_clip(env_id):
    env = core_class(env_id)(**{**physrl_envs.ENVIRONMENTS[env_id][3], **SMALL.get(env_id, {})})
    env.reset(seed=0)

    @examples("actions")
    @given(actions_for(env.action_space))
    def run(action):
        valid = valid_action(env.action_space, action)
        try:
            obs, reward, terminated, truncated, _ = env.step(action)
        except (ValueError, TypeError) as error:
            assert not valid, f"valid action {action!r} refused: {error}"
            assert is_one_line_naming(error, ["action"]), error
            return
        assert valid, f"invalid action {action!r} was accepted"
        assert env.observation_space.contains(obs) and math.isfinite(reward)
        if terminated or truncated:
            env.reset()

    run()


def test_random_batched_actions_on_the_vector_face():
    envs = gym.make_vec("physrl/TreasureMaze-v0", num_envs=2, size=5, n_chests=2)
    envs.reset(seed=0)

    @examples("actions")
    @given(st.one_of(st.lists(st.integers(-2, 6), min_size=0, max_size=3).map(np.array),
                     st.lists(st.floats(allow_nan=True), min_size=2, max_size=2).map(np.array),
                     st.lists(st.booleans(), min_size=2, max_size=2).map(np.array),
                     st.lists(st.integers(0, 4), min_size=2, max_size=2).map(torch.tensor)))
    def run(actions):
        array = np.asarray(actions)
        valid = array.dtype.kind in "iu" and array.shape == (2,) and bool(((array >= 0) & (array <= 4)).all())
        try:
            envs.step(actions)
        except (ValueError, TypeError) as error:
            assert not valid and is_one_line_naming(error, ["actions"]), error
            return
        assert valid, f"invalid actions {actions!r} accepted"

    run()


# ---------------------------------------------------------------- command line, config files, checkpoints

AGENT_KEYS = {"tabular-pg": ["learning_rate", "baseline", "gamma", "ignore_observation", "num_steps"],
              "q-learning": ["learning_rate", "gamma", "epsilon_start", "exploration_steps", "initial_value"],
              "deep-pg": ["learning_rate", "clip_coef", "hidden_sizes", "network", "gae_lambda", "update_epochs"],
              "dqn": ["buffer_size", "batch_size", "double_q", "target_update_interval", "max_grad_norm"]}
ENV_FOR = {"tabular-pg": "physrl/RandomWalker-v0", "q-learning": "physrl/WalkerTarget-v0",
           "deep-pg": "physrl/RandomWalker-v0", "dqn": "physrl/RandomWalker-v0"}
TEXT_VALUES = st.one_of(st.sampled_from(["0", "-1", "0.5", "1e-3", "nan", "NaN", "Infinity", "-Infinity", "true",
                                         "null", "[64, 64]", "[]", "[0]", "[-3]", "\"adam\"", "sgd", "batch_mean",
                                         "1e309", "{}", "mlp", "3", "2.5", "[1.5]", "[true]"]),
                        st.text(max_size=5))


@pytest.mark.parametrize("agent", sorted(AGENT_KEYS))
def test_set_on_the_command_line_builds_the_agent_or_raises_a_clear_error(agent, tmp_path):
    parser = build_parser()

    @examples("set")
    @given(st.sampled_from(AGENT_KEYS[agent] + ["no_such_key", ""]), TEXT_VALUES)
    def run(key, value):
        args = parser.parse_args(["train", "--env", ENV_FOR[agent], "--agent", agent, "--num-envs", "2",
                                  "--logdir", str(tmp_path), "--set", f"{key}={value}"])
        try:
            options = options_from_args(args)
            run = prepare(**options)
        except (ValueError, TypeError) as error:
            assert is_one_line_naming(error, [key or "KEY=VALUE"]), error
            return
        hyperparameters = run.learner.hyperparameters
        assert key in hyperparameters
        for name, number in hyperparameters.items():
            if isinstance(number, float):
                assert math.isfinite(number), f"{name}={number} accepted"

    run()


CONFIG_KEYS = ["env", "agent", "num_envs", "total_steps", "seed", "device", "env_kwargs", "hyperparameters", "speed"]


@examples("config")
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), VALUES.filter(lambda v: not isinstance(v, np.generic)),
                       max_size=4),
       st.sampled_from([".yaml", ".toml"]))
def test_config_files_with_random_contents_build_a_run_or_raise_a_clear_error(tmp_path_factory, config, suffix):
    folder = tmp_path_factory.mktemp("config")
    path = folder / f"run{suffix}"
    config = {"env": "physrl/RandomWalker-v0", "agent": "tabular-pg", **config}
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(config))
    else:
        try:
            import tomli_w
        except ImportError:
            tomli_w = None
        assume(tomli_w is not None)
        path.write_bytes(tomli_w.dumps({k: v for k, v in config.items() if v is not None}).encode())
    args = build_parser().parse_args(["train", "--config", str(path), "--logdir", str(folder)])
    try:
        prepare(**options_from_args(args))
    except (ValueError, TypeError) as error:
        assert "\n" not in str(error), error


@examples("bytes")
@given(st.binary(max_size=200), st.sampled_from([".yaml", ".toml", ".yml"]))
def test_config_files_of_random_bytes_raise_a_clear_error(tmp_path_factory, content, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"run{suffix}"
    path.write_bytes(content)
    try:
        config = read_config_file(path)
    except (ValueError, TypeError) as error:
        assert "\n" not in str(error) and "config" in str(error), error
        return
    assert isinstance(config, dict)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    run_dir = train("physrl/WalkerTarget-v0", "q-learning", num_envs=2, total_steps=44,
                    logdir=tmp_path_factory.mktemp("run"), progress=False)
    return run_dir / "checkpoint.pt"


@examples("bytes")
@given(st.binary(max_size=300))
def test_checkpoints_of_random_bytes_are_refused_clearly(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("checkpoint") / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        load_policy(path)
    assert "\n" not in str(error.value) and "checkpoint" in str(error.value)


@examples("truncated")
@given(st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_checkpoints_are_refused_clearly(checkpoint, tmp_path_factory, fraction):
    content = checkpoint.read_bytes()
    path = tmp_path_factory.mktemp("truncated") / "checkpoint.pt"
    path.write_bytes(content[:int(fraction * len(content))])
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value) and "checkpoint" in str(error.value)


@pytest.mark.parametrize("env_id, option, value", [
    ("physrl/OscillatorStatePrep-v0", "n_levels", 10**6), ("physrl/OscillatorStatePrep-v0", "max_steps", 10**6),
    ("physrl/OscillatorStatePrep-v0", "wigner_samples", 10**6), ("physrl/TreasureMaze-v0", "size", 10**6 + 1),
    ("physrl/QubitErrorCorrection-v0", "max_steps", 10**9)])
def test_size_options_above_their_documented_limit_are_refused_before_anything_is_allocated(env_id, option, value):
    with pytest.raises(ValueError, match=rf"^{option} must be in \[\d+, \d+\], got {value}$"):
        gym.make_vec(env_id, num_envs=1, **{option: value})

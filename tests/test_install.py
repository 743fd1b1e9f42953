"""The package installs without -e: the wheel maps envs/, agents/, training/ into physrl.* only."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_wheel_installs_the_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel = next((tmp_path / "dist").glob("physrl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "physrl/envs/__init__.py" in names and "physrl/agents/__init__.py" in names
    assert "physrl/training/cli.py" in names and "physrl/envs/kernels/__init__.py" in names
    assert not any(name.split("/")[0] in {"envs", "agents", "training", "tests"} for name in names)
    assert not any(name.startswith("physrl/__init__") for name in names), "physrl is a namespace package"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    code = ("import gymnasium as gym, physrl.envs, physrl.training.cli; "
            "assert physrl.envs.__file__.startswith(%r); "
            "env = gym.make('physrl/TreasureMazeChallenge-v0'); print(env.reset(seed=0)[0].shape)") % str(target)
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 15, 15)"

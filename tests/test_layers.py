"""The layers import one way only, envs < agents < training (the architecture page, docs/architecture.md):
no module imports a layer above its own, at the top of the file or inside a function."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["envs", "agents", "training"]


def physrl_imports(path: Path) -> set[str]:
    """The physrl modules that a source file imports anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "physrl":
            names |= {f"physrl.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name.startswith("physrl.")}


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_a_layer_above_its_own(layer):
    above = [f"physrl.{name}" for name in LAYERS[LAYERS.index(layer) + 1:]]
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files
    upward = {str(path.relative_to(ROOT)): sorted(name for name in physrl_imports(path)
                                                   if any(name == a or name.startswith(a + ".") for a in above))
              for path in files}
    assert {path: names for path, names in upward.items() if names} == {}


def test_the_import_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "module.py"
    source.write_text("def f():\n    from physrl.training.checkpoint import load_policy\n    from physrl import agents\n")
    assert physrl_imports(source) == {"physrl.training.checkpoint", "physrl.agents"}

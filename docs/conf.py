"""Sphinx configuration of the physrl documentation site (MyST Markdown pages, autodoc of the package).

Built by ``make docs`` (warnings are errors) and by ``tests/test_docs.py``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

project = "physrl"
author = "the physrl authors"
copyright = "the physrl authors, MIT licence"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "exclude-members": "core_class"}
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
#: The sections of an environment's docstring, in Gymnasium's order (rendered as headed blocks).
napoleon_custom_sections = ["Description", "Action Space", "Observation Space", "Rewards", "Starting State",
                            "Episode End", "Physics", "References", "Version History"]

# Names from other libraries in signatures are not cross-linked (the build reaches no network, so no
# intersphinx); every reference to physrl's own objects must resolve.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|np|numpy|gym|gymnasium|spaces|nn|qutip|argparse|collections|typing|abc|pathlib|os"
               r"|optim|F|dataclasses|enum|types|stable_baselines3|tensorboard|scipy)(\..*)?"),
    (r"py:.*", r"(.*\.)?_[A-Za-z]\w*"),  # private helpers are not in the API reference
    (r"py:.*", r"(Any|Callable|Sequence|Iterable|Iterator|Mapping|ClassVar|Path|Tensor|Generator|Module"
               r"|Space|Box|Discrete|Parameter|Namespace|ArgumentParser|Policy|CollectingPolicy|Batch|T)"),
]

html_theme = "alabaster"
html_title = "physrl"


class _EmptyGlob(logging.Filter):
    """Drop only Sphinx's "toctree glob pattern ... didn't match any documents" warning.

    The index includes ``results/*`` and ``guide/*`` by glob so that the site builds whether or not a
    page has been written yet; Sphinx gives that warning no type, so ``suppress_warnings`` cannot
    select it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "didn't match any documents" not in str(record.msg)


_CODE_OR_ROLE = re.compile(r"(``.+?``|:\w+:`[^`]+`|`[^`]+`_?)")


def escape_bars(app, what, name, obj, options, lines: list[str]) -> None:
    """Let docstrings write kets and norms as plain text: |ψ⟩, ⟨n|ψ⟩, |W_t| are not reST substitutions.

    Every ``|`` outside inline code, roles and ``.. math::`` blocks is escaped before reST parses it.
    """
    in_math, math_indent = False, 0
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if in_math and line.strip() and indent <= math_indent:
            in_math = False
        if line.lstrip().startswith(".. math::"):
            in_math, math_indent = True, indent
            continue
        if in_math or "|" not in line:
            continue
        parts = _CODE_OR_ROLE.split(line)
        lines[i] = "".join(part if k % 2 else part.replace("|", "\\|") for k, part in enumerate(parts))


ROOT = Path(__file__).resolve().parents[1]
#: API page -> (package folder, its modules in reading order; modules not named follow alphabetically).
API_PAGES = {
    "api/envs": ("envs", ["core", "validation", "rng", "gym_adapter", "walker", "maze", "qec", "oscillator"]),
    "api/kernels": ("envs/kernels", ["qubits", "qubit_pairs", "recoverable_information", "oscillator",
                                       "wigner"]),
    "api/agents": ("agents", ["base", "hyperparameters", "rollout", "schedules", "networks", "tabular_pg",
                              "deep_pg", "q_learning", "dqn", "student", "sb3", "distributed"]),
    "api/reference": ("agents/reference", ["walker", "maze", "qec", "oscillator", "uniform"]),
    "api/training": ("training", ["train", "checkpoint", "evaluate"]),
    "api/challenge": ("training/challenge", ["scorer", "leaderboard", "command", "demo"]),
    "api/bench": ("training/bench", ["throughput", "qutip_qec", "qutip_oscillator", "gpu_check"]),
}
MODULES_MARKER = "<!-- physrl-api-modules -->"


def api_sections(folder: str, order: list[str]) -> str:
    """One autodoc section per module of ``folder``, so that every module is in the API reference.

    The environment classes are left out here: they have their own pages (envs/*.md).
    """
    from physrl.envs import ENVIRONMENTS

    faces: dict[str, list[str]] = {}
    for module, single, vector, _ in ENVIRONMENTS.values():
        faces.setdefault(module, []).extend(name for name in (single, vector) if name not in faces.get(module, []))
    names = sorted(p.stem for p in (ROOT / folder).glob("*.py") if p.stem != "__init__")
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    package = "physrl." + folder.replace("/", ".")
    sections = []
    for name in names:
        options = f"   :exclude-members: {', '.join(faces[name])}\n" if folder == "envs" and name in faces else ""
        sections.append(f"## `{package}.{name}`\n\n```{{eval-rst}}\n.. automodule:: {package}.{name}\n{options}```\n")
    return "\n".join(sections)


def add_api_sections(app, docname: str, source: list[str]) -> None:
    if docname in API_PAGES:
        source[0] = source[0].replace(MODULES_MARKER, api_sections(*API_PAGES[docname]))


def setup(app) -> None:
    app.connect("source-read", add_api_sections)
    app.connect("autodoc-process-docstring", escape_bars)
    # Napoleon reads the first line of a ``#:`` comment as "type: text"; our constants' comments are
    # plain sentences, so napoleon formats only modules, classes, functions and methods.
    from sphinx.ext.napoleon import _process_docstring
    for listener in list(app.events.listeners["autodoc-process-docstring"]):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)

    def napoleon_except_data(app, what, name, obj, options, lines):
        if what not in ("data", "attribute"):
            _process_docstring(app, what, name, obj, options, lines)

    app.connect("autodoc-process-docstring", napoleon_except_data)
    for handler in logging.getLogger("sphinx").handlers:
        handler.filters.insert(0, _EmptyGlob())

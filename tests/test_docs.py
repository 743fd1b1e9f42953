"""The documentation cannot rot: the Sphinx site builds with warnings as errors, and every Python
block of README.md and docs/**/*.md runs.

Snippets run per file, in order, in one namespace, as a reader follows a page from top to bottom
(a block may use the names of the blocks above it on the same page). They run in a temporary working
directory that links the repository's folders and files (so that ``results/...`` paths read as from
the repository root) while the run folders they write land in the temporary directory. Only fences opened with exactly ```` ```python ```` run;
a page that shows Python it does not mean to run (output, a session transcript) uses another
fence, such as ```` ```text ````.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, source) of every ```python block of a Markdown text."""
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


def test_python_blocks_are_found():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (9, "y = x\n")]


def page_param(page: Path):
    """A page's test; the results pages recompute their figures (tens of seconds), so they count as slow."""
    marks = [pytest.mark.slow] if "results" in page.relative_to(ROOT).parts else []
    return pytest.param(page, id=str(page.relative_to(ROOT)), marks=marks)


@pytest.mark.parametrize("page", [page_param(p) for p in PAGES if python_blocks(p.read_text())])
def test_python_blocks_run(page, tmp_path, monkeypatch):
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name != "runs":
            (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__main__"}
    for line, source in python_blocks(page.read_text()):
        code = compile(source, f"{page.relative_to(ROOT)}:{line}", "exec")
        exec(code, namespace)  # noqa: S102 (the documentation's own examples)


def test_site_builds_without_warnings(tmp_path):
    """`make docs` in a temporary folder: MyST pages and autodoc, nitpicky, warnings are errors."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html",
                             str(ROOT / "docs"), str(tmp_path / "html")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-5000:]


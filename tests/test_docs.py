"""The docs build strictly, and every example in docs/examples/ runs.

An example whose name ends in `_slow.py` loads the embedded model and is marked `slow`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
# openai_*.py need an OpenAI-compatible server: tests/models/test_openai.py runs them against
# its in-process one. dbos_*.py need PostgreSQL: tests/test_durable_dbos.py runs them.
RUNNABLE = [path for path in EXAMPLES if not path.name.startswith(("openai_", "dbos_"))]


def _example_params() -> list[object]:
    params: list[object] = []
    for path in RUNNABLE:
        marks = [pytest.mark.slow] if path.stem.endswith("_slow") else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", _example_params())
def test_docs_example_runs(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:agentlib"},
    )
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout}\n{result.stderr}"


def test_every_example_is_used_by_a_docs_page() -> None:
    pages = "\n".join(page.read_text() for page in (ROOT / "docs").rglob("*.md"))
    unused = [
        p.name
        for p in EXAMPLES
        if f"docs/examples/{p.name}" not in pages and p.name != "readme_slow.py"
    ]
    assert unused == []


def test_readme_example_is_the_tested_example() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    example = (ROOT / "docs" / "examples" / "readme_slow.py").read_text()
    assert block.strip() in example


def test_docs_build_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in result.stderr.splitlines() if re.search(r"WARNING|ERROR", line)]
    assert result.returncode == 0, "\n".join(warnings) or result.stderr

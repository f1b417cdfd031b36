from __future__ import annotations

import json
import subprocess
import sys

import agentlib

HEAVY = [
    "gradio",
    "torch",
    "llama_cpp",
    "sentence_transformers",
    "sqlalchemy",
    "duckdb",
    "ddgs",
    "networkx",
    "openai",
    "outlines",
    "transformers",
    "jsonschema",
]


def test_import_agentlib_loads_no_heavy_dependency() -> None:
    code = (
        "import json, sys; import agentlib; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == []


def test_all_is_sorted_and_complete() -> None:
    assert agentlib.__all__ == sorted(agentlib.__all__)
    for name in agentlib.__all__:
        assert getattr(agentlib, name) is not None, name
    public = {
        name
        for name, value in vars(agentlib).items()
        if not name.startswith("_") and not isinstance(value, type(agentlib))
    }
    public -= {"annotations", "TYPE_CHECKING", "Any"}
    assert public <= set(agentlib.__all__)
    assert len(agentlib.__all__) <= 50


def test_bare_tools_package_is_not_importable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import tools"], capture_output=True, text=True, cwd="/"
    )
    assert result.returncode != 0 and "No module named 'tools'" in result.stderr
    import agentlib.tools

    assert agentlib.tools.__name__ == "agentlib.tools"

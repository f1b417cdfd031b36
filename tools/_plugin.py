"""The built-in tools' entry in the catalogue: the same `register` a plugin package writes.

`agentlib.catalogue.default_catalogue()` calls `register` first, then every installed plugin's
(entry-point group `agentlib.plugins`), so `agentlib run --tools` and the demos list ours and
theirs the same way. Each factory imports its family only when it builds the tool.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import tempfile
import threading
from pathlib import Path

from agentlib import ConfigurationError, Tool, Toolset
from agentlib.catalogue import Catalogue, ToolSpec

__all__ = ["register", "sample_music_store"]

_sample_lock = threading.Lock()
_sample: list[Path] = []


def _installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except (ImportError, ValueError):
        return False


def sample_music_store() -> Path:
    """The sample music-store SQLite file, created once per process in a temporary folder."""
    with _sample_lock:
        if not _sample:
            from .sql import create_music_store

            folder = Path(tempfile.mkdtemp(prefix="agentlib-music-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = folder / "music_store.db"
            create_music_store(path)
            _sample.append(path)
        return _sample[0]


def _calculator(argument: str | None) -> Tool | Toolset:
    from .calculator import calculator

    return calculator


def _python(argument: str | None) -> Tool | Toolset:
    from .python import PythonInterpreter

    return PythonInterpreter()


def _web(argument: str | None) -> Tool | Toolset:
    from .web import WebTools

    return WebTools()


def _sql(argument: str | None) -> Tool | Toolset:
    from .sql import SQLDatabase

    if argument is None:
        return SQLDatabase(f"sqlite:///{sample_music_store()}", timeout=5.0)
    if not argument:
        raise ConfigurationError(
            "--tools sql:<url> needs a database URL, e.g. sql:sqlite:///music.db "
            "(or plain `sql` for the sample music store)"
        )
    return SQLDatabase(argument)


def _cypher(argument: str | None) -> Tool | Toolset:
    from .cypher import GraphDatabase, load_sample_graph

    return GraphDatabase(load_sample_graph(), max_rows=50, timeout=10.0)


def register(catalogue: Catalogue) -> None:
    """Add the built-in tools."""
    catalogue.add_tool(
        ToolSpec(
            name="calculator",
            factory=_calculator,
            description="calculator (arithmetic)",
        )
    )
    catalogue.add_tool(
        ToolSpec(
            name="python",
            factory=_python,
            description="python (a sandboxed, stateful interpreter)",
        )
    )
    catalogue.add_tool(
        ToolSpec(
            name="web",
            factory=_web,
            description="web (search and fetch pages; needs the `web` extra)",
            available=lambda: _installed("ddgs", "trafilatura", "httpx"),
        )
    )
    catalogue.add_tool(
        ToolSpec(
            name="sql",
            factory=_sql,
            description="SQL (read-only; plain `sql` is the sample music store)",
            argument="<sqlalchemy url>",
            available=lambda: _installed("sqlalchemy", "sqlglot"),
        )
    )
    catalogue.add_tool(
        ToolSpec(
            name="cypher",
            factory=_cypher,
            description="graph (Cypher over the sample movie graph)",
            available=lambda: _installed("networkx", "grandcypher"),
        )
    )

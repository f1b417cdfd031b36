"""`LadybugBackend`: openCypher on an embedded database that the NetworkX graph is loaded into.

ladybug (the maintained fork of the Kùzu embedded graph database, MIT) implements Cypher with
its own type system: nodes live in typed tables, a table per label, and a few rules differ from
openCypher. Measured on the openCypher TCK (benchmarks/cypher_tck.md), the differences are
translated on the validated tokens (`_ladybug_translate.py`) or refused with a message:

- a node has one table, so each distinct label set gets one: `(n:A:B)` becomes the union of
  the tables whose nodes carry both labels, `n:A` in an expression a test on `label(n)`, and
  `labels(n)` a lookup of its table's labels; `type(r)` is `label(r)` and `id(x)` the key
  the graph was loaded with;
- openCypher never matches one relationship twice in a MATCH; the engine does, so every pair
  of relationships in a MATCH gets an `id(a) <> id(b)` condition, and variable-length
  relationships use its TRAIL semantics (no relationship repeated);
- `WITH ... ORDER BY` needs SKIP or LIMIT there: `SKIP 0` is added;
- column names are the RETURN items as written (the engine names `count(*)` COUNT_STAR());
- refused: a literal list mixing integers and floats (the engine would turn the integers into
  floats), list indexing and slicing and `substring()` (the engine counts from 1),
  `x IN [..., null]` (false, not null), `toString()` (six decimals for floats),
  `properties()`/`keys()` (they would show the hidden key and absent properties), a
  variable-length relationship together with other relationships in one MATCH, an undirected
  relationship on a graph with self-loops (counted twice).
"""

from __future__ import annotations

from typing import Any, Literal

from agentlib import ConfigurationError, ToolError
from agentlib._optional import optional_imports

from ._backend import QueryResult, rows_as_dicts
from ._ladybug_translate import translate_for_ladybug
from ._pattern import CypherStatement
from ._process import QueryWorker
from ._render import render
from ._schema import GraphSchema, schema_from_networkx
from ._syntax import tokenize, validate_read_only
from ._worker import LadybugGraph, PlanError, plan_tables

__all__ = ["LadybugBackend"]


def _import_ladybug() -> None:
    with optional_imports("graph", feature="LadybugBackend"):
        import ladybug  # noqa: F401


class LadybugBackend:
    """Runs openCypher on the NetworkX graph loaded into an embedded ladybug database.

    The graph is copied into an in-memory database (in the worker process by default, so a
    query that outlives its timeout is stopped by killing the process); the NetworkX graph
    stays the source of truth and is not changed.

    Args:
        graph: A NetworkX `MultiDiGraph` or `DiGraph` with labels in `__labels__`.
        isolation: `process` loads the graph and runs queries in a child process that is killed
            on timeout; `none` runs them in this process with no timeout (trusted queries).
        memory_limit: Bytes of memory the engine may use for the graph and a query (its
            buffer pool); a query that needs more fails with the engine's message.

    Raises:
        MissingExtraError: ladybug is not installed (`pip install "agentlib-typed[graph]"`).
        ConfigurationError: A property mixes value types within one label or relationship
            type (the engine stores one type per property), or a relationship has no type.
    """

    supports_parameters = True

    def __init__(
        self,
        graph: Any,
        *,
        isolation: Literal["process", "none"] = "process",
        memory_limit: int = 1 << 30,
    ) -> None:
        _import_ladybug()
        self._schema = schema_from_networkx(graph)
        try:
            self._plan = plan_tables(graph)
        except PlanError as exc:
            raise ConfigurationError(str(exc)) from exc
        self._graph = graph
        self._memory_limit = memory_limit
        self._worker = (
            QueryWorker("ladybug", (graph, self._plan, memory_limit))
            if isolation == "process"
            else None
        )
        self._local: LadybugGraph | None = None

    def schema(self) -> GraphSchema:
        """The schema extracted from the graph when the backend was made."""
        return self._schema

    def run(
        self, statement: CypherStatement, *, max_rows: int, timeout: float | None
    ) -> QueryResult:
        """Validate, translate and run the statement.

        Raises:
            ToolError: The query writes, uses what the engine cannot run with Cypher's meaning,
                failed in the engine, or took longer than `timeout`.
        """
        tokens = tokenize(statement.text)
        validate_read_only(tokens)
        query = translate_for_ladybug(tokens, statement.text, self._plan)
        options = {
            "parameters": dict(statement.parameters),
            "columns": statement.columns if statement.columns is not None else query.columns,
            "limit": max_rows + 1,
        }
        if self._worker is not None and timeout is not None:
            outcome = self._worker.run(query.text, options, timeout=timeout)
        else:
            if self._local is None:
                self._local = LadybugGraph(self._graph, self._plan, memory_limit=self._memory_limit)
            outcome = self._local.run(query.text, **options)  # type: ignore[arg-type]
        status, columns, rows = outcome
        if status != "ok":
            raise ToolError(f"the embedded engine could not run the query: {rows}")
        return QueryResult(
            query=render(tokens),
            columns=list(columns),
            rows=rows_as_dicts(columns, rows[:max_rows]),
            truncated=len(rows) > max_rows,
        )

    def close(self) -> None:
        """Stop the worker process."""
        if self._worker is not None:
            self._worker.close()

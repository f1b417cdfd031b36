"""Where validated Cypher runs: the backend protocol and the result every backend returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ._pattern import CypherStatement
from ._schema import GraphSchema

__all__ = ["CypherBackend", "QueryResult", "rows_as_dicts"]


class QueryResult(BaseModel):
    """The rows a query returned (at most the row limit) and the query that ran."""

    query: str
    """The validated query text, rebuilt from its tokens (grand-cypher shows its dialect)."""
    columns: list[str]
    """Column names, in RETURN order."""
    rows: list[dict[str, Any]]
    """One mapping per row, column name to value; nodes are `{labels, properties}` and
    relationships `{type, properties}`."""
    truncated: bool = False
    """Whether more rows matched than the row limit allowed."""


@runtime_checkable
class CypherBackend(Protocol):
    """Where validated queries run: an embedded engine over NetworkX, or a Neo4j server."""

    @property
    def supports_parameters(self) -> bool:
        """Whether `$name` parameters reach the engine (otherwise values are quoted inline)."""
        ...

    def schema(self) -> GraphSchema:
        """Describe the graph."""
        ...

    def run(
        self, statement: CypherStatement, *, max_rows: int, timeout: float | None
    ) -> QueryResult:
        """Run one validated read-only statement; return at most `max_rows` rows.

        Raises:
            ToolError: The engine refused the query, failed, or took longer than `timeout`.
        """
        ...

    def close(self) -> None:
        """Release processes or connections."""
        ...


def rows_as_dicts(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=False)) for row in rows]

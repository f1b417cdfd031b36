"""`GraphDatabase`: a property graph as tools (describe, run read-only Cypher, match a pattern)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel

from agentlib import ConfigurationError, Tool, ToolError, Toolset, tool
from agentlib._optional import optional_imports

from ._backend import CypherBackend, QueryResult
from ._grand import GrandCypherBackend
from ._ladybug import LadybugBackend
from ._pattern import CypherStatement, GraphPattern, compile_pattern, pattern_model
from ._render import render
from ._schema import GraphSchema
from ._syntax import Token, check_names, return_columns, tokenize, validate_read_only

with optional_imports("graph", feature="agentlib.tools.cypher"):
    import networkx as nx

__all__ = ["GraphDatabase"]

_MAX_QUERY_LENGTH = 4000


class GraphDatabase(Toolset):
    """A property graph as tools: describe the schema, run read-only Cypher, match a pattern.

    Args:
        graph: A NetworkX `MultiDiGraph`/`DiGraph` (loaded into the embedded engine,
            `LadybugBackend`), or any `CypherBackend` such as `GrandCypherBackend` or
            `Neo4jBackend`.
        max_rows: The most rows a query returns; the result says when more matched.
        timeout: Seconds a query may run before it is stopped; `None` runs embedded-engine
            queries in this process without a limit (trusted queries only).
        allow_cypher: Offer the `run_cypher` tool (free Cypher for strong models).
        allow_pattern: Offer the `find_pattern` tool (a structured pattern whose names are
            enums of the schema, for constrained decoding and small models).
        max_query_length: The longest query text accepted, in characters.

    Example:
        ```python
        database = GraphDatabase(load_sample_graph())
        result = database.run('MATCH (m:Movie) WHERE m.released = 1999 RETURN m.title')
        ```
    """

    def __init__(
        self,
        graph: Any,
        *,
        max_rows: int = 100,
        timeout: float | None = 10.0,
        allow_cypher: bool = True,
        allow_pattern: bool = True,
        max_query_length: int = _MAX_QUERY_LENGTH,
    ) -> None:
        if max_rows < 1:
            raise ConfigurationError("max_rows must be at least 1")
        if isinstance(graph, CypherBackend):
            self.backend: CypherBackend = graph
        elif isinstance(graph, nx.Graph):
            self.backend = LadybugBackend(
                graph, isolation="process" if timeout is not None else "none"
            )
        else:
            raise ConfigurationError(
                f"GraphDatabase needs a NetworkX graph or a CypherBackend, not "
                f"{type(graph).__name__}"
            )
        self.max_rows = max_rows
        self.timeout = timeout
        self.max_query_length = max_query_length
        self.schema: GraphSchema = self.backend.schema()
        """The graph's schema."""
        self.pattern_model: type[GraphPattern] = pattern_model(self.schema)
        """The `GraphPattern` subclass with this graph's names as enums."""
        extra: list[Tool] = [self._pattern_tool()] if allow_pattern else []
        super().__init__(extra)
        self._allow_cypher = allow_cypher

    @property
    def tools(self) -> list[Tool]:
        """`describe_graph`, then `run_cypher` and `find_pattern` as configured."""
        found = super().tools
        if not self._allow_cypher:
            found = [item for item in found if item.name != "run_cypher"]
        return found

    def describe(self) -> str:
        """The schema as text, with notes on what the engine supports."""
        text = str(self.schema.describe())
        if isinstance(self.backend, LadybugBackend):
            text += (
                "\nEngine notes: openCypher; numbers in one list are all integers or all floats; "
                "no list indexing (x[0]), keys(), properties(), substring() or toString()."
            )
        if isinstance(self.backend, GrandCypherBackend):
            text += (
                "\nEngine notes (grand-cypher): write every relationship with its arrow; "
                "different node variables always match different nodes; use parentheses when "
                "mixing AND and OR; no OPTIONAL MATCH, WITH, UNWIND or CASE; aggregates: "
                "COUNT(x), SUM, AVG, MIN, MAX, COLLECT."
            )
        return text

    def check(self, query: str) -> CypherStatement:
        """Validate a query without running it and return it as a statement.

        Raises:
            ToolError: The query writes, calls procedures, names something that does not
                exist, or is malformed; the message says what to change.
        """
        if len(query) > self.max_query_length:
            raise ToolError(
                f"the query is {len(query)} characters long; the limit is {self.max_query_length}"
            )
        tokens = tokenize(query)
        info = validate_read_only(tokens)
        check_names(
            info,
            labels=self.schema.label_names,
            relationship_types=self.schema.relationship_types,
            properties=self.schema.property_names,
        )
        if any(token.kind == "parameter" for token in tokens):
            raise ToolError("write values as literals: this tool takes no $parameters")
        # What runs is the text rebuilt from the validated tokens (comments dropped, strings
        # re-quoted), never the caller's text: no lexer difference can hide a clause.
        columns = return_columns(tokens, query) if _has_return(tokens) else None
        return CypherStatement(text=render(tokens), columns=columns)

    def compile(self, pattern: GraphPattern | Mapping[str, Any]) -> CypherStatement:
        """Compile a structured pattern for this database's engine, then validate it.

        Raises:
            ToolError: The pattern does not fit the schema.
        """
        try:
            value = self.pattern_model.model_validate(
                pattern.model_dump() if isinstance(pattern, BaseModel) else pattern
            )
        except pydantic.ValidationError as exc:
            raise ToolError(f"invalid pattern: {_first_error(exc)}") from exc
        compiled = compile_pattern(value, parameters=self.backend.supports_parameters)
        tokens = tokenize(compiled.text)
        check_names(
            validate_read_only(tokens),
            labels=self.schema.label_names,
            relationship_types=self.schema.relationship_types,
            properties=self.schema.property_names,
        )
        return CypherStatement(
            text=render(tokens), parameters=compiled.parameters, pattern=compiled.pattern
        )

    def execute(self, statement: CypherStatement) -> QueryResult:
        """Run a statement that came from `check` or `compile`."""
        return self.backend.run(statement, max_rows=self.max_rows, timeout=self.timeout)

    def run(self, query: str) -> QueryResult:
        """Validate and run one read-only Cypher query (synchronously)."""
        return self.execute(self.check(query))

    async def arun(self, query: str) -> QueryResult:
        """Validate and run one read-only Cypher query in a worker thread."""
        return await asyncio.to_thread(self.run, query)

    def run_pattern(self, pattern: GraphPattern | Mapping[str, Any]) -> QueryResult:
        """Compile, validate and run a structured pattern."""
        return self.execute(self.compile(pattern))

    @tool
    def describe_graph(self) -> str:
        """Describe the graph: node labels, relationship types with direction, properties."""
        return self.describe()

    @tool
    def run_cypher(self, query: str) -> QueryResult:
        """Run one read-only Cypher query (MATCH ... WHERE ... RETURN ...) and return its rows.

        Args:
            query: One Cypher query using only labels, relationship types and properties from
                describe_graph; no CREATE, MERGE, SET, DELETE or CALL.
        """
        return self.run(query)

    def _pattern_tool(self) -> Tool:
        database = self

        def find_pattern(pattern: Any) -> QueryResult:
            return database.run_pattern(pattern)

        find_pattern.__annotations__ = {"pattern": self.pattern_model, "return": QueryResult}
        find_pattern.__doc__ = (
            "Find a path pattern in the graph and return the chosen columns.\n\n"
            "Args:\n    pattern: The nodes and relationships to match (labels and types from "
            "the schema), conditions that must all hold, columns to return, order and limit.\n"
        )
        return Tool(find_pattern)

    def for_run(self) -> GraphDatabase:
        """Share this database (and its worker process) across runs."""
        return self

    async def aclose(self) -> None:
        """Stop the worker process or close the driver the backend created."""
        await asyncio.to_thread(self.backend.close)

    def close(self) -> None:
        """Synchronous `aclose`."""
        self.backend.close()


def _has_return(tokens: list[Token]) -> bool:
    return any(token.upper == "RETURN" for token in tokens)


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])

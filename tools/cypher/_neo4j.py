"""`Neo4jBackend`: the same validated queries on a Neo4j-compatible server (official driver)."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from agentlib import ConfigurationError, ToolError
from agentlib._optional import optional_imports

from ._backend import QueryResult, rows_as_dicts
from ._pattern import CypherStatement
from ._render import render
from ._schema import GraphSchema, LabelInfo, PropertyInfo, RelationshipInfo, type_name
from ._syntax import tokenize, validate_read_only

__all__ = ["Neo4jBackend"]


def _import_neo4j() -> Any:
    with optional_imports("neo4j", feature="Neo4jBackend"):
        import neo4j
    return neo4j


_NEO4J_LABELS = "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS count"
_NEO4J_NODE_PROPERTIES = (
    "MATCH (n) WITH n LIMIT $sample UNWIND labels(n) AS label UNWIND keys(n) AS key "
    "RETURN label, key, collect(n[key])[..3] AS examples, count(*) AS count"
)
_NEO4J_RELATIONSHIPS = (
    "MATCH (a)-[r]->(b) WITH a, r, b LIMIT $sample UNWIND labels(a) AS source "
    "UNWIND labels(b) AS target RETURN source, type(r) AS type, target, count(*) AS count"
)
_NEO4J_RELATIONSHIP_PROPERTIES = (
    "MATCH ()-[r]->() WITH r LIMIT $sample UNWIND keys(r) AS key "
    "RETURN type(r) AS type, key, collect(r[key])[..3] AS examples, count(*) AS count"
)
_NEO4J_COUNTS = (
    "CALL { MATCH (n) RETURN count(n) AS nodes } CALL { MATCH ()-[r]->() RETURN count(r) AS "
    "relationships } RETURN nodes, relationships"
)


class Neo4jBackend:
    """Runs validated queries on a Neo4j-compatible server through the official driver.

    Sessions are opened in read mode (`default_access_mode=READ`) and every query runs in a
    read transaction with its timeout; values travel as driver parameters. The validator
    still refuses writes first: read mode is the second lock, not the only one.

    Args:
        driver: A `neo4j.Driver` you built (wrapped, and closed by you); or give `uri`.
        uri: Server address, like `neo4j://localhost:7687`, when no driver is given.
        auth: `(user, password)` for `uri`.
        database: The database name; the server's default when `None`.
        schema_sample: How many nodes and relationships the schema description samples.

    Raises:
        MissingExtraError: The `neo4j` package is not installed.
    """

    supports_parameters = True

    def __init__(
        self,
        driver: Any = None,
        *,
        uri: str | None = None,
        auth: tuple[str, str] | None = None,
        database: str | None = None,
        schema_sample: int = 10_000,
    ) -> None:
        self._neo4j = _import_neo4j()
        if driver is None:
            if uri is None:
                raise ConfigurationError("Neo4jBackend needs a driver or a uri")
            driver = self._neo4j.GraphDatabase.driver(uri, auth=auth)
            self._owns_driver = True
        else:
            self._owns_driver = False
        self._driver = driver
        self._database = database
        self._schema_sample = schema_sample
        self._schema: GraphSchema | None = None

    def _read(
        self, text: str, parameters: Mapping[str, Any], *, limit: int | None, timeout: float | None
    ) -> tuple[list[str], list[list[Any]]]:
        neo4j = self._neo4j

        def work(transaction: Any) -> tuple[list[str], list[list[Any]]]:
            result = transaction.run(text, dict(parameters))
            keys = list(result.keys())
            rows: list[list[Any]] = []
            for record in result:
                if limit is not None and len(rows) >= limit:
                    break
                rows.append([_neo4j_value(record[key]) for key in keys])
            return keys, rows

        unit = neo4j.unit_of_work(timeout=timeout)(work) if timeout else work
        with self._driver.session(
            database=self._database, default_access_mode=neo4j.READ_ACCESS
        ) as session:
            try:
                return typing.cast(tuple[list[str], list[list[Any]]], session.execute_read(unit))
            except neo4j.exceptions.Neo4jError as exc:
                raise ToolError(f"the server refused the query: {exc.message}") from exc

    def schema(self) -> GraphSchema:
        """Describe the graph from sampled nodes and relationships (cached)."""
        if self._schema is None:
            self._schema = _neo4j_schema(self._read, self._schema_sample)
        return self._schema

    def run(
        self, statement: CypherStatement, *, max_rows: int, timeout: float | None
    ) -> QueryResult:
        """Run the statement with its parameters in a read transaction.

        Raises:
            ToolError: The server refused or failed the query.
        """
        # The server gets the text rebuilt from validated tokens, whoever built the statement.
        tokens = tokenize(statement.text)
        validate_read_only(tokens)
        text = render(tokens)
        columns, rows = self._read(text, statement.parameters, limit=max_rows + 1, timeout=timeout)
        return QueryResult(
            query=text,
            columns=columns,
            rows=rows_as_dicts(columns, rows[:max_rows]),
            truncated=len(rows) > max_rows,
        )

    def close(self) -> None:
        """Close the driver if this backend created it."""
        if self._owns_driver:
            self._driver.close()


def _neo4j_value(value: Any) -> Any:
    labels = getattr(value, "labels", None)
    if labels is not None and hasattr(value, "items"):
        return {"labels": sorted(labels), "properties": dict(value.items())}
    kind = getattr(value, "type", None)
    if isinstance(kind, str) and hasattr(value, "items"):
        return {"type": kind, "properties": dict(value.items())}
    if isinstance(value, list):
        return [_neo4j_value(item) for item in value]
    return value


def _property(name: str, examples: list[Any], count: int) -> PropertyInfo:
    types = tuple(dict.fromkeys(type_name(value) for value in examples))
    return PropertyInfo(name=name, types=types, count=count, examples=tuple(examples))


def _neo4j_schema(read: Any, sample: int) -> GraphSchema:
    def rows(text: str) -> list[list[Any]]:
        return typing.cast(
            list[list[Any]], read(text, {"sample": sample}, limit=None, timeout=60)[1]
        )

    properties: dict[str, list[PropertyInfo]] = {}
    for label, key, examples, count in sorted(rows(_NEO4J_NODE_PROPERTIES)):
        properties.setdefault(label, []).append(_property(key, examples, count))
    labels = tuple(
        LabelInfo(name=label, count=count, properties=tuple(properties.get(label, ())))
        for label, count in sorted(rows(_NEO4J_LABELS))
    )
    relationship_properties: dict[str, list[PropertyInfo]] = {}
    for kind, key, examples, count in sorted(rows(_NEO4J_RELATIONSHIP_PROPERTIES)):
        relationship_properties.setdefault(kind, []).append(_property(key, examples, count))
    relationships = tuple(
        RelationshipInfo(
            type=kind,
            source=source,
            target=target,
            count=count,
            properties=tuple(relationship_properties.get(kind, ())),
        )
        for source, kind, target, count in sorted(rows(_NEO4J_RELATIONSHIPS), key=lambda r: r[1])
    )
    counts = rows(_NEO4J_COUNTS)
    nodes, edges = counts[0] if counts else (0, 0)
    return GraphSchema(
        labels=labels, relationships=relationships, node_count=nodes, relationship_count=edges
    )

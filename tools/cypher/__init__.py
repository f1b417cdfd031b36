"""Graph questions in Cypher: schema description, query construction, read-only execution.

`GraphDatabase(graph)` wraps a NetworkX `MultiDiGraph` (or `DiGraph`) as a toolset the agent
uses to describe the graph, run one read-only Cypher query, or fill in a structured pattern
whose labels, relationship types and properties are enums of the real schema. Queries run on
grand-cypher, in a worker process that is killed on timeout; a `Neo4jBackend` sends the same
validated queries to a Neo4j-compatible server through the official driver.

Every query, written by a model or compiled from a pattern, goes through one validator: one
statement, read clauses only (MATCH, OPTIONAL MATCH, WHERE, RETURN, WITH, ORDER BY, SKIP,
LIMIT, UNWIND of literals), labels, types and properties that exist. Values are never spliced
raw: they become driver parameters, or are quoted by this library for grand-cypher.

What this module does not do: write to a graph, run procedures, or promise Cypher's exact
semantics on grand-cypher (see the docs page for the differences it refuses or documents).
"""

from __future__ import annotations

import asyncio
import csv
import json
import typing
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import pydantic
from pydantic import AfterValidator, BaseModel

from agentlib import (
    ConfigurationError,
    Model,
    Tool,
    ToolError,
    Toolset,
    agenerate,
    tool,
)
from agentlib._optional import optional_imports

from ._grand import QueryWorker, run_in_process, translate
from ._pattern import (
    CypherStatement,
    GraphPattern,
    PatternCondition,
    PatternNode,
    PatternOrder,
    PatternReturn,
    PatternStep,
    compile_pattern,
    pattern_model,
)
from ._schema import (
    LABELS,
    GraphSchema,
    LabelInfo,
    PropertyInfo,
    RelationshipInfo,
    schema_from_networkx,
)
from ._syntax import check_names, quote_literal, tokenize, validate_read_only

with optional_imports("graph", feature="agentlib.tools.cypher"):
    import networkx as nx

__all__ = [
    "CypherBackend",
    "CypherStatement",
    "GrandCypherBackend",
    "GraphDatabase",
    "GraphPattern",
    "GraphSchema",
    "LabelInfo",
    "Neo4jBackend",
    "PatternCondition",
    "PatternNode",
    "PatternOrder",
    "PatternReturn",
    "PatternStep",
    "PropertyInfo",
    "QueryResult",
    "RelationshipInfo",
    "atext_to_cypher",
    "compile_pattern",
    "graph_from_edge_list",
    "graph_from_records",
    "load_sample_graph",
    "pattern_model",
    "quote_literal",
    "text_to_cypher",
]

_MAX_QUERY_LENGTH = 4000


class QueryResult(BaseModel):
    """The rows a query returned (at most the row limit) and the query that ran."""

    query: str
    """The query text as it ran (normalised for the engine)."""
    columns: list[str]
    """Column names, in RETURN order."""
    rows: list[dict[str, Any]]
    """One mapping per row, column name to value; nodes are `{labels, properties}` and
    relationships `{type, properties}`."""
    truncated: bool = False
    """Whether more rows matched than the row limit allowed."""


@runtime_checkable
class CypherBackend(Protocol):
    """Where validated queries run: grand-cypher over NetworkX, or a Neo4j server."""

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


def _rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=False)) for row in rows]


class GrandCypherBackend:
    """Runs queries with grand-cypher on a NetworkX graph, in a worker process by default.

    Args:
        graph: A NetworkX `MultiDiGraph` or `DiGraph` with labels in `__labels__` (build one
            with `graph_from_records` or `graph_from_edge_list`).
        isolation: `process` runs each query in a child process holding a copy of the graph,
            killed when a query outlives its timeout; `none` runs in this process with no
            timeout (only for trusted queries: a pattern can take exponential time).
    """

    supports_parameters = False

    def __init__(self, graph: Any, *, isolation: Literal["process", "none"] = "process") -> None:
        self._graph = graph
        self._schema = schema_from_networkx(graph)
        self._isolation = isolation
        self._worker = QueryWorker(graph) if isolation == "process" else None

    def schema(self) -> GraphSchema:
        """The schema extracted from the graph when the backend was made."""
        return self._schema

    def run(
        self, statement: CypherStatement, *, max_rows: int, timeout: float | None
    ) -> QueryResult:
        """Translate the statement to grand-cypher's dialect and run it.

        Raises:
            ToolError: grand-cypher cannot run it correctly, it failed, or it timed out.
        """
        if statement.parameters:
            raise ToolError("grand-cypher has no parameters: quote values with quote_literal")
        tokens = tokenize(statement.text)
        info = validate_read_only(tokens)
        query = translate(tokens, info, max_rows=max_rows, directions=self._schema.directions())
        if self._worker is not None and timeout is not None:
            columns, rows = self._worker.run(query, timeout=timeout)
        else:
            columns, rows = run_in_process(self._graph, query)
        rows = rows[query.skip :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return QueryResult(
            query=query.text,
            columns=columns,
            rows=_rows(columns, rows[:max_rows]),
            truncated=len(rows) > max_rows,
        )

    def close(self) -> None:
        """Stop the worker process."""
        if self._worker is not None:
            self._worker.close()


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
        columns, rows = self._read(
            statement.text, statement.parameters, limit=max_rows + 1, timeout=timeout
        )
        return QueryResult(
            query=statement.text,
            columns=columns,
            rows=_rows(columns, rows[:max_rows]),
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


def _neo4j_schema(read: Any, sample: int) -> GraphSchema:
    def rows(text: str) -> list[list[Any]]:
        return typing.cast(
            list[list[Any]], read(text, {"sample": sample}, limit=None, timeout=60)[1]
        )

    properties: dict[str, list[PropertyInfo]] = {}
    for label, key, examples, count in rows(_NEO4J_NODE_PROPERTIES):
        types = tuple(dict.fromkeys(type(v).__name__.upper() for v in examples))
        properties.setdefault(label, []).append(
            PropertyInfo(name=key, types=types, count=count, examples=tuple(examples))
        )
    labels = tuple(
        LabelInfo(name=label, count=count, properties=tuple(properties.get(label, ())))
        for label, count in sorted(rows(_NEO4J_LABELS))
    )
    relationships = tuple(
        RelationshipInfo(type=kind, source=source, target=target, count=count)
        for source, kind, target, count in sorted(rows(_NEO4J_RELATIONSHIPS), key=lambda r: r[1])
    )
    counts = rows(_NEO4J_COUNTS)
    nodes, edges = counts[0] if counts else (0, 0)
    return GraphSchema(
        labels=labels, relationships=relationships, node_count=nodes, relationship_count=edges
    )


class GraphDatabase(Toolset):
    """A property graph as tools: describe the schema, run read-only Cypher, match a pattern.

    Args:
        graph: A NetworkX `MultiDiGraph`/`DiGraph` (run with grand-cypher), or any
            `CypherBackend` such as `Neo4jBackend`.
        max_rows: The most rows a query returns; the result says when more matched.
        timeout: Seconds a query may run before it is stopped; `None` runs grand-cypher
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
            self.backend = GrandCypherBackend(
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
        return CypherStatement(text=query)

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
        statement = compile_pattern(value, parameters=self.backend.supports_parameters)
        tokens = tokenize(statement.text)
        check_names(
            validate_read_only(tokens),
            labels=self.schema.label_names,
            relationship_types=self.schema.relationship_types,
            properties=self.schema.property_names,
        )
        return statement

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


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


# ---- graphs from records and edge lists ---------------------------------------------------


def _labels(value: Any, where: str) -> set[str]:
    if value is None:
        return set()
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{where}: labels must be non-empty strings, got {item!r}")
    return set(items)


def _properties(record: Mapping[str, Any], reserved: Iterable[str]) -> dict[str, Any]:
    if "properties" in record:
        properties = record["properties"] or {}
        if not isinstance(properties, Mapping):
            raise ConfigurationError("'properties' must be a mapping of names to values")
        return {str(key): value for key, value in properties.items()}
    skip = set(reserved)
    return {str(key): value for key, value in record.items() if key not in skip}


def graph_from_records(
    nodes: Iterable[Mapping[str, Any]],
    relationships: Iterable[Mapping[str, Any]] = (),
) -> nx.MultiDiGraph:
    """Build a graph from node and relationship records, in grand-cypher's conventions.

    Args:
        nodes: Each `{"id": ..., "labels": [...] or "label": "...", "properties": {...}}`;
            without `properties`, every other key is a property.
        relationships: Each `{"source": id, "target": id, "type": "...", "properties": {...}}`
            (same rule for properties).

    Raises:
        ConfigurationError: A record lacks its id, type or endpoints, or names an unknown node.
    """
    graph = nx.MultiDiGraph()
    for position, record in enumerate(nodes):
        if "id" not in record:
            raise ConfigurationError(f"node record {position} has no 'id'")
        labels = _labels(record.get("labels", record.get("label")), f"node {record['id']!r}")
        properties = _properties(record, ("id", "labels", "label"))
        graph.add_node(record["id"], **{LABELS: labels}, **properties)
    for position, record in enumerate(relationships):
        missing = [key for key in ("source", "target", "type") if key not in record]
        if missing:
            raise ConfigurationError(f"relationship record {position} has no {missing[0]!r}")
        for end in ("source", "target"):
            if record[end] not in graph:
                raise ConfigurationError(
                    f"relationship record {position} refers to unknown node {record[end]!r}"
                )
        kind = _labels(record["type"], f"relationship {position}")
        properties = _properties(record, ("source", "target", "type"))
        graph.add_edge(record["source"], record["target"], **{LABELS: kind}, **properties)
    return graph


def _number_or_text(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            continue
    return value


def _read_edge_rows(source: str | Path | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if not isinstance(source, (str, Path)):
        return list(source)
    path = Path(source)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {key: _number_or_text(value) for key, value in row.items() if value != ""}
                for row in csv.DictReader(handle)
            ]
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ConfigurationError(f"{path} must hold a JSON list of edge objects")
        return data
    raise ConfigurationError(f"cannot read {path}: use a .csv or .json edge list")


def graph_from_edge_list(
    source: str | Path | Iterable[Mapping[str, Any]],
    *,
    relationship_type: str = "RELATED_TO",
    source_label: str = "Node",
    target_label: str | None = None,
    source_column: str = "source",
    target_column: str = "target",
    type_column: str = "type",
    node_property: str = "name",
) -> nx.MultiDiGraph:
    """Build a graph from an edge list: a CSV file, a JSON list of objects, or rows in memory.

    Each row is one relationship from `source_column` to `target_column`; the end nodes are
    made once per distinct value, stored in `node_property`. A `type_column` value sets the
    relationship type (else `relationship_type`); other columns become relationship
    properties (CSV numbers are converted to int or float).

    Args:
        source: The `.csv`/`.json` path, or an iterable of mappings.
        relationship_type: The type for rows without a `type_column` value.
        source_label: The label of source nodes.
        target_label: The label of target nodes; `source_label` when `None`.
        source_column: The column naming the source node.
        target_column: The column naming the target node.
        type_column: The optional column with each row's relationship type.
        node_property: The node property that holds the source/target value.

    Raises:
        ConfigurationError: A row lacks its source or target, or the file type is unknown.
    """
    target_label = target_label or source_label
    graph = nx.MultiDiGraph()
    reserved = {source_column, target_column, type_column}
    for position, row in enumerate(_read_edge_rows(source)):
        if source_column not in row or target_column not in row:
            raise ConfigurationError(
                f"edge row {position} needs '{source_column}' and '{target_column}' values"
            )
        ends = []
        for column, label in ((source_column, source_label), (target_column, target_label)):
            node = f"{label}:{row[column]}"
            if node not in graph:
                graph.add_node(node, **{LABELS: {label}, node_property: row[column]})
            else:
                graph.nodes[node][LABELS].add(label)
            ends.append(node)
        kind = str(row.get(type_column) or relationship_type)
        properties = {key: value for key, value in row.items() if key not in reserved}
        graph.add_edge(ends[0], ends[1], **{LABELS: {kind}}, **properties)
    return graph


def load_sample_graph() -> nx.MultiDiGraph:
    """The sample movies graph: 46 movies, 121 people, 13 genres and critics' reviews.

    Labels `Movie` (title, released, runtime), `Person` (name, born), `Genre` (name);
    relationships `ACTED_IN` (roles), `DIRECTED`, `IN_GENRE`, `REVIEWED` (rating, summary)
    and `FOLLOWS`. Generated by `tools/data/make_movies.py`.
    """
    text = resources.files("agentlib.tools").joinpath("data/movies.json").read_text("utf-8")
    data = json.loads(text)
    return graph_from_records(data["nodes"], data["relationships"])


# ---- construction from a question ---------------------------------------------------------

_PATTERN_INSTRUCTIONS = """\
You turn a question about a property graph into a structured graph pattern.
Use only the labels, relationship types (in their direction) and properties of this schema:

{schema}

Match the path in `start` and `steps`, filter with `conditions` (all must hold), return the
columns that answer the question, and set `order_by` and `limit` when the question asks for
the top or first items."""

_CYPHER_INSTRUCTIONS = """\
You turn a question about a property graph into one read-only Cypher query.
Use only the labels, relationship types (in their direction) and properties of this schema:

{schema}

Write a single MATCH ... WHERE ... RETURN ... query (ORDER BY, LIMIT allowed). Never write
CREATE, MERGE, SET, DELETE, REMOVE or CALL."""


def _database(graph: Any) -> GraphDatabase:
    if isinstance(graph, GraphDatabase):
        return graph
    return GraphDatabase(graph, timeout=None, allow_cypher=False)


async def atext_to_cypher(
    model: Model,
    graph: Any,
    question: str,
    *,
    mode: Literal["pattern", "cypher"] = "pattern",
    retries: int = 2,
    max_tokens: int | None = None,
) -> CypherStatement:
    """Turn a question into a validated Cypher statement for `graph`.

    In `pattern` mode the model fills in `GraphDatabase.pattern_model` (names are enums of the
    schema, so constrained decoding cannot invent them) and the library writes the Cypher. In
    `cypher` mode the model writes Cypher text, which must pass the same validator; each
    rejection is shown to the model for another try.

    Args:
        model: Any `Model`.
        graph: A NetworkX graph, a `GraphDatabase`, or a `CypherBackend`.
        question: The question in natural language.
        mode: `pattern` (structured, for any model) or `cypher` (free text, strong models).
        retries: Extra attempts after an invalid reply.
        max_tokens: The generation limit per attempt.

    Raises:
        ModelOutputError: No valid pattern or query after the retries.
    """
    database = _database(graph)
    if mode == "pattern":
        instructions = _PATTERN_INSTRUCTIONS.format(schema=database.describe())
        pattern = await agenerate(
            model,
            database.pattern_model,
            question,
            instructions=instructions,
            retries=retries,
            max_tokens=max_tokens,
        )
        return database.compile(pattern)

    def check(query: str) -> str:
        try:
            database.check(query)
        except ToolError as exc:
            raise ValueError(str(exc)) from exc
        return query

    answer_model = pydantic.create_model(
        "CypherQuery", query=(Annotated[str, AfterValidator(check)], ...)
    )
    instructions = _CYPHER_INSTRUCTIONS.format(schema=database.describe())
    answer = await agenerate(
        model,
        answer_model,
        question,
        instructions=instructions,
        retries=retries,
        max_tokens=max_tokens,
    )
    return database.check(answer.query)  # type: ignore[attr-defined]


def text_to_cypher(
    model: Model,
    graph: Any,
    question: str,
    *,
    mode: Literal["pattern", "cypher"] = "pattern",
    retries: int = 2,
    max_tokens: int | None = None,
) -> CypherStatement:
    """Synchronous `atext_to_cypher`."""
    return asyncio.run(
        atext_to_cypher(model, graph, question, mode=mode, retries=retries, max_tokens=max_tokens)
    )

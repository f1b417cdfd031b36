"""Runs queries on the embedded engines (ladybug, grand-cypher), here or in a killable process.

Pattern matching can take exponential time, and a thread cannot be stopped, so by default
`agentlib.tools.cypher` sends each query to a child process (`python -P <this file>`: run as a
script, so it does not import agentlib) that holds a copy of the graph; on timeout the parent
kills it and starts a fresh one for the next query. Frames on stdin/stdout are an 8-byte length
followed by a pickle; only the parent writes requests, so the child trusts what it reads.

The ladybug engine (an embedded openCypher database, the Kùzu fork) gets the NetworkX graph
loaded into an in-memory database at start-up, following a `TablePlan` the parent made with
`plan_tables` (one node table per distinct label set, one relationship table per type, one
typed column per property), so the query clock starts only once the graph is loaded.

This module imports nothing from agentlib, so the worker starts in about 0.3 s.
"""

from __future__ import annotations

import decimal
import pickle
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = [
    "LadybugGraph",
    "PlanError",
    "TablePlan",
    "execute",
    "plan_tables",
    "read_frame",
    "write_frame",
]

_HEADER = struct.Struct(">Q")

Outcome = tuple[str, Any, Any]
"""`("ok", columns, rows)` or `("error", kind, message)`."""


def write_frame(stream: IO[bytes], value: object) -> None:
    """Write one length-prefixed pickle to `stream`."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """Read one frame written by `write_frame`; raises `EOFError` when the stream ends."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the stream ended")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the stream ended inside a frame")
    return pickle.loads(data)


def _plain(value: Any, relationship: bool = False) -> Any:
    """Turn grand-cypher's values into JSON-able ones; hide the `__labels__` convention."""
    if isinstance(value, dict):
        if "__labels__" in value:
            labels = sorted(value.get("__labels__") or ())
            properties = {
                str(key): _plain(item) for key, item in value.items() if key != "__labels__"
            }
            if relationship:
                return {"type": labels[0] if labels else None, "properties": properties}
            return {"labels": labels, "properties": properties}
        return {str(key): _plain(item, relationship) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [_plain(item, relationship) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def execute(
    graph: Any,
    query: str,
    *,
    limit: int | None,
    relationship_variables: frozenset[str] = frozenset(),
    column_order: tuple[str, ...] = (),
) -> Outcome:
    """Run one query with grand-cypher and return plain columns and rows, or an error.

    Args:
        graph: The NetworkX graph.
        query: Text already translated to grand-cypher's dialect.
        limit: The engine's default row limit (it stops matching early when there is no
            ORDER BY); `None` for no limit.
        relationship_variables: Variables bound to relationships, rendered as `{type, ...}`.
        column_order: The RETURN items' column names in query order (grand-cypher's result
            dict does not keep it).
    """
    from grandcypher import GrandCypher
    from lark.exceptions import UnexpectedInput

    try:
        result = GrandCypher(graph, limit=limit).run(query)
    except UnexpectedInput as exc:
        column = getattr(exc, "column", "?")
        context = exc.get_context(query, span=24).splitlines()[0].strip()
        return ("error", "parse", f"at column {column} (near {context!r})")
    except RecursionError:
        return ("error", "engine", "the query is nested too deeply")
    except Exception as exc:  # grand-cypher raises many types; each becomes a message
        return ("error", "engine", f"{type(exc).__name__}: {exc}")
    rank = {name: index for index, name in enumerate(column_order)}
    columns = sorted((str(key) for key in result), key=lambda key: rank.get(key, len(rank)))
    by_name = {str(key): values for key, values in result.items()}
    count = max((len(values) for values in by_name.values()), default=0)
    rows = [
        [
            _plain(
                by_name[column][row] if row < len(by_name[column]) else None,
                relationship=column in relationship_variables,
            )
            for column in columns
        ]
        for row in range(count)
    ]
    return ("ok", columns, rows)


# ---- ladybug ---------------------------------------------------------------------------------

LABELS = "__labels__"
KEY = "__id"
"""The hidden key column every table has (the node's or edge's position in the graph)."""
UNLABELLED = "_unlabelled"
NOTHING = "_nothing"
NO_RELATIONSHIP = "_no_relationship"
_KINDS = {bool: "BOOL", int: "INT64", float: "DOUBLE", str: "STRING"}


class PlanError(ValueError):
    """The graph has a property the engine cannot store with its meaning intact."""


@dataclass(slots=True)
class TablePlan:
    """How a NetworkX graph becomes ladybug tables."""

    node_tables: dict[frozenset[str], str] = field(default_factory=dict)
    """Each distinct label set and its table."""
    table_labels: dict[str, list[str]] = field(default_factory=dict)
    """Each node table and the labels its nodes carry (sorted)."""
    node_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each node table's property columns and their types."""
    relationship_pairs: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """Each relationship type and its (source table, target table) pairs."""
    relationship_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each relationship type's property columns and their types."""
    self_loop_types: set[str] = field(default_factory=set)
    """Relationship types with a relationship from a node to itself."""

    def tables_with(self, labels: Iterable[str]) -> list[str]:
        """The node tables whose nodes carry all of `labels`."""
        wanted = set(labels)
        return sorted(
            table
            for table, have in self.table_labels.items()
            if wanted <= set(have) and table != NOTHING
        )


def _kind(value: Any) -> str:
    if isinstance(value, list):
        kinds = {_kind(item) for item in value}
        if len(kinds) > 1:
            raise PlanError(f"a list mixes {' and '.join(sorted(kinds))} values")
        return (kinds.pop() if kinds else "") + "[]"
    kind = _KINDS.get(type(value))
    if kind is None:
        raise PlanError(f"{type(value).__name__} values have no Cypher property type")
    return kind


def _column_types(items: Iterable[dict[str, Any]], where: str) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for data in items:
        for key, value in data.items():
            if key == LABELS or value is None:
                continue
            try:
                found.setdefault(str(key), set()).add(_kind(value))
            except PlanError as exc:
                raise PlanError(f"property {key!r} of {where}: {exc}") from None
    columns: dict[str, str] = {}
    for key, kinds in found.items():
        typed = {kind for kind in kinds if kind != "[]"}  # an empty list fits any list type
        if len(typed) > 1:
            raise PlanError(
                f"property {key!r} of {where} holds {' and '.join(sorted(typed))} values; the "
                "embedded engine stores one type per property (convert the values, or use "
                "GrandCypherBackend)"
            )
        columns[key] = typed.pop() if typed else "STRING[]"
    return columns


def _labels(data: dict[str, Any]) -> frozenset[str]:
    value = data.get(LABELS) or ()
    return frozenset([value] if isinstance(value, str) else (str(item) for item in value))


def _table_name(labels: frozenset[str], taken: set[str]) -> str:
    if not labels:
        base = UNLABELLED
    elif len(labels) == 1:
        base = next(iter(labels))
    else:
        base = "_" + "_".join(sorted(labels))
    name, number = base, 1
    while name.lower() in taken:
        number += 1
        name = f"{base}_{number}"
    taken.add(name.lower())
    return name


def plan_tables(graph: Any) -> TablePlan:
    """Plan the tables for `graph` (a NetworkX `MultiDiGraph` or `DiGraph`).

    Raises:
        PlanError: A property mixes types within one label set or relationship type.
    """
    plan = TablePlan()
    types = {kind for _, _, data in graph.edges(data=True) for kind in _labels(data)}
    taken = {kind.lower() for kind in types} | {NOTHING.lower(), NO_RELATIONSHIP.lower()}
    # Always-empty tables: what a pattern with labels no node has matches, and the engine's
    # answer to MATCH (n) / ()-[r]->() on a graph without nodes or relationships.
    plan.table_labels[NOTHING] = []
    plan.node_columns[NOTHING] = {}
    plan.relationship_pairs[NO_RELATIONSHIP] = {(NOTHING, NOTHING)}
    plan.relationship_columns[NO_RELATIONSHIP] = {}
    by_table: dict[str, list[dict[str, Any]]] = {}
    for _, data in graph.nodes(data=True):
        labels = _labels(data)
        if labels not in plan.node_tables:
            table = _table_name(labels, taken)
            plan.node_tables[labels] = table
            plan.table_labels[table] = sorted(labels)
        by_table.setdefault(plan.node_tables[labels], []).append(data)
    for table, items in by_table.items():
        plan.node_columns[table] = _column_types(items, f":{':'.join(plan.table_labels[table])}")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for source, target, data in graph.edges(data=True):
        kinds = _labels(data)
        if len(kinds) != 1:
            raise PlanError(
                f"the relationship {source!r}->{target!r} has {len(kinds)} types; give each "
                "relationship exactly one type"
            )
        kind = next(iter(kinds))
        pair = (
            plan.node_tables[_labels(graph.nodes[source])],
            plan.node_tables[_labels(graph.nodes[target])],
        )
        plan.relationship_pairs.setdefault(kind, set()).add(pair)
        if source == target:
            plan.self_loop_types.add(kind)
        by_type.setdefault(kind, []).append(data)
    for kind, items in by_type.items():
        plan.relationship_columns[kind] = _column_types(items, f"[:{kind}]")
    _widen(plan.node_columns)
    _widen(plan.relationship_columns)
    return plan


def _widen(columns: dict[str, dict[str, str]]) -> None:
    """Give every table each property whose type agrees everywhere (absent reads as null)."""
    seen: dict[str, set[str]] = {}
    for table_columns in columns.values():
        for key, kind in table_columns.items():
            seen.setdefault(key, set()).add(kind)
    shared = {key: kinds.pop() for key, kinds in seen.items() if len(kinds) == 1}
    for table_columns in columns.values():
        for key, kind in shared.items():
            table_columns.setdefault(key, kind)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _assignments(columns: dict[str, str]) -> str:
    # Cast each value: the engine types a parameter's struct field from its values, so a
    # column that starts with nulls would otherwise be read as STRING.
    typed = {KEY: "INT64", **columns}
    return ", ".join(
        f"{_quote(key)}: CAST(row.{_quote(key)} AS {kind})" for key, kind in typed.items()
    )


class LadybugGraph:
    """A NetworkX graph loaded into an in-memory ladybug database, and queries on it."""

    def __init__(self, graph: Any, plan: TablePlan, *, memory_limit: int = 1 << 30) -> None:
        import ladybug

        self.plan = plan
        # The buffer pool bounds the memory a query can take (the engine's default is 80 % of
        # the machine); past it the query fails with the engine's message.
        self.database = ladybug.Database(":memory:", buffer_pool_size=memory_limit)
        self.connection = ladybug.Connection(self.database)
        self._create_tables()
        self._load(graph)

    def _create_tables(self) -> None:
        plan = self.plan
        for table, columns in plan.node_columns.items():
            fields = "".join(f", {_quote(key)} {kind}" for key, kind in columns.items())
            self.connection.execute(
                f"CREATE NODE TABLE {_quote(table)}({KEY} INT64 PRIMARY KEY{fields})"
            )
        for kind, pairs in plan.relationship_pairs.items():
            ends = ", ".join(f"FROM {_quote(a)} TO {_quote(b)}" for a, b in sorted(pairs))
            columns = plan.relationship_columns[kind]
            fields = "".join(f", {_quote(key)} {kind}" for key, kind in columns.items())
            self.connection.execute(f"CREATE REL TABLE {_quote(kind)}({ends}, {KEY} INT64{fields})")

    def _load(self, graph: Any) -> None:
        plan = self.plan
        index: dict[Any, tuple[str, int]] = {}
        rows: dict[str, list[dict[str, Any]]] = {}
        for number, (node, data) in enumerate(graph.nodes(data=True)):
            table = plan.node_tables[_labels(data)]
            index[node] = (table, number)
            row = {key: data.get(key) for key in plan.node_columns[table]}
            rows.setdefault(table, []).append({KEY: number, **row})
        for table, items in rows.items():
            assign = _assignments(plan.node_columns[table])
            self._unwind(f"UNWIND $rows AS row CREATE (:{_quote(table)} {{{assign}}})", items)
        edges: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for number, (source, target, data) in enumerate(graph.edges(data=True)):
            kind = next(iter(_labels(data)))
            (source_table, source_id), (target_table, target_id) = index[source], index[target]
            row = {key: data.get(key) for key in plan.relationship_columns[kind]}
            edges.setdefault((kind, source_table, target_table), []).append(
                {"s": source_id, "t": target_id, KEY: number, **row}
            )
        for (kind, source_table, target_table), items in edges.items():
            assign = _assignments(plan.relationship_columns[kind])
            self._unwind(
                f"UNWIND $rows AS row MATCH (a:{_quote(source_table)} {{{KEY}: row.s}}), "
                f"(b:{_quote(target_table)} {{{KEY}: row.t}}) "
                f"CREATE (a)-[:{_quote(kind)} {{{assign}}}]->(b)",
                items,
            )

    def _unwind(self, text: str, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 1000):
            self.connection.execute(text, {"rows": rows[start : start + 1000]})

    def plain(self, value: Any) -> Any:
        """Turn ladybug's values into the tool's: `{labels, properties}`, `{type, properties}`."""
        if isinstance(value, dict):
            if "_NODES" in value and "_RELS" in value:
                return {
                    "nodes": [self.plain(node) for node in value["_NODES"]],
                    "relationships": [self.plain(rel) for rel in value["_RELS"]],
                }
            if "_ID" in value and "_LABEL" in value:
                properties = {
                    str(key): self.plain(item)
                    for key, item in value.items()
                    if key not in ("_ID", "_LABEL", "_SRC", "_DST", KEY) and item is not None
                }
                if "_SRC" in value:
                    return {"type": value["_LABEL"], "properties": properties}
                labels = self.plan.table_labels.get(value["_LABEL"], [value["_LABEL"]])
                return {"labels": list(labels), "properties": properties}
            return {str(key): self.plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.plain(item) for item in value]
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if isinstance(value, decimal.Decimal):  # sum() of integers is a 128-bit integer
            return int(value) if value == value.to_integral_value() else float(value)
        return repr(value)

    def run(
        self,
        query: str,
        *,
        parameters: dict[str, Any] | None = None,
        columns: tuple[str, ...] | None = None,
        limit: int | None = None,
    ) -> Outcome:
        """Run one translated query; `columns` names the RETURN items (`None` for `RETURN *`)."""
        try:
            answer = self.connection.execute(query, parameters or {})
            result = answer[-1] if isinstance(answer, list) else answer
            names = [str(name) for name in result.get_column_names()]
            rows: list[list[Any]] = []
            while result.has_next() and (limit is None or len(rows) < limit):
                rows.append([self.plain(item) for item in result.get_next()])
        except RuntimeError as exc:
            return ("error", "engine", str(exc).splitlines()[0])
        if columns is not None and len(columns) == len(names):
            return ("ok", list(columns), rows)
        keep = sorted(
            (name for name in names if not name.startswith("__")), key=lambda n: (n.lower(), n)
        )
        order = [names.index(name) for name in keep]
        return ("ok", keep, [[row[position] for position in order] for row in rows])


def _serve_ladybug(payload: Any, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    graph, plan, memory_limit = payload
    engine = LadybugGraph(graph, plan, memory_limit=memory_limit)
    write_frame(stdout, "ready")
    while True:
        try:
            query, options = read_frame(stdin)
        except EOFError:
            return
        write_frame(stdout, engine.run(query, **options))


def main() -> None:
    """Serve requests: the first frame is `(engine, payload)` (answered `ready`), then queries.

    For `grand-cypher` the payload is the graph and each request `(query, options)` for
    `execute`; for `ladybug` it is `(graph, plan, memory_limit)` and each request
    `(query, options)` for `LadybugGraph.run`.
    """
    sys.setrecursionlimit(10_000)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Keep stray prints (a library's warning) from corrupting the frames.
    sys.stdout = sys.stderr
    try:
        engine, payload = read_frame(stdin)
    except EOFError:
        return
    if engine == "ladybug":
        _serve_ladybug(payload, stdin, stdout)
        return
    graph = payload
    import grandcypher  # noqa: F401  (imported before "ready", so queries do not pay for it)

    write_frame(stdout, "ready")
    while True:
        try:
            query, options = read_frame(stdin)
        except EOFError:
            return
        write_frame(stdout, execute(graph, query, **options))


if __name__ == "__main__":
    main()

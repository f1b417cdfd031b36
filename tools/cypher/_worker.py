"""Runs grand-cypher queries, in this process or in a worker process that can be killed.

Pattern matching can take exponential time, and a thread cannot be stopped, so by default
`agentlib.tools.cypher` sends each query to a child process (`python -P <this file>`: run as a
script, so it does not import agentlib) that holds a copy of the graph; on timeout the parent
kills it and starts a fresh one for the next query. Frames on stdin/stdout are an 8-byte length
followed by a pickle; only the parent writes requests, so the child trusts what it reads.

This module imports nothing from agentlib, so the worker starts in about 0.3 s.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import IO, Any

__all__ = ["execute", "read_frame", "write_frame"]

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


def main() -> None:
    """Serve requests: the first frame is the graph (answered `ready`), then `(query, options)`."""
    sys.setrecursionlimit(10_000)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Keep stray prints (a library's warning) from corrupting the frames.
    sys.stdout = sys.stderr
    try:
        graph = read_frame(stdin)
    except EOFError:
        return
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

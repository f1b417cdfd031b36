"""The query worker: a child process that runs SQLite and DuckDB queries on a read-only file.

Started by `_connection.WorkerPool` as `python -m agentlib.tools.sql._worker`. It reads one
configuration, then queries, as pickled frames on stdin and answers each on stdout. Running
queries here rather than in the caller's process buys three things the engines cannot give
in-process: the parent can always kill it (SQLite's progress handler and DuckDB's
`interrupt()` only act between steps, so one long function call outlives them); its address
space is capped (`RLIMIT_AS`), so a query cannot grow the host past `memory_mb`; and the
database is opened here, read-only, with nothing else of the caller's in reach.

Inside, each engine also stops the query itself at the deadline and bounds what one call can
produce: SQLite with `SQLITE_LIMIT_LENGTH` (the longest string or blob) and
`PRAGMA hard_heap_limit`, DuckDB with `memory_limit`.
"""

from __future__ import annotations

import datetime
import decimal
import pickle
import resource
import sqlite3
import sys
import threading
import time
import urllib.parse
import uuid
from typing import Any, BinaryIO

_SQLITE_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)
_SQLITE_ALLOWED = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, _SQLITE_RECURSIVE}
)
_SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "sqlite_offset"}
)
BASE_MB = 512
"""Address space the worker needs before any query (Python, the engine, thread stacks), MiB."""
SQLITE_MAX_LENGTH = 16 * 1024 * 1024
"""The longest string or blob a SQLite query may build (bytes): `SQLITE_LIMIT_LENGTH`."""


def sqlite_authorizer(
    action: int, argument1: str | None, argument2: str | None, database: str | None, source: Any
) -> int:
    """Deny every SQLite action except reading (SELECT, READ, FUNCTION, RECURSIVE)."""
    if action not in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (argument2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class _SQLite:
    def __init__(self, path: str, memory_mb: int) -> None:
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_LENGTH)
        self.connection.execute(f"PRAGMA hard_heap_limit = {memory_mb * 1024 * 1024}")
        self.connection.execute("PRAGMA query_only = ON")
        self.connection.set_authorizer(sqlite_authorizer)

    def run(self, sql: str, params: Any, timeout: float, max_rows: int) -> Any:
        deadline = time.monotonic() + timeout
        self.connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            cursor = self.connection.execute(sql, params or ())
            if cursor.description is None:
                return ("no_rows",)
            columns = [str(item[0]) for item in cursor.description]
            rows = [plain(row) for row in cursor.fetchmany(max_rows + 1)]
            cursor.close()
        finally:
            self.connection.set_progress_handler(None, 0)
            if self.connection.in_transaction:
                self.connection.rollback()
        return ("ok", columns, rows)


class _DuckDB:
    def __init__(self, path: str, memory_mb: int) -> None:
        import duckdb

        config: dict[str, str | bool | int | float | list[str]] = {
            "enable_external_access": False,
            "memory_limit": f"{memory_mb // 2}MB",
            "threads": 2,
            "lock_configuration": True,
        }
        self.connection = duckdb.connect(path, read_only=True, config=config)

    def run(self, sql: str, params: Any, timeout: float, max_rows: int) -> Any:
        timer = threading.Timer(timeout, self.connection.interrupt)
        timer.daemon = True
        timer.start()
        try:
            cursor = self.connection.execute(sql, params or None)
            if cursor.description is None:
                return ("no_rows",)
            columns = [str(item[0]) for item in cursor.description]
            rows = [plain(row) for row in cursor.fetchmany(max_rows + 1)]
        finally:
            timer.cancel()
            timer.join()
        return ("ok", columns, rows)


_PLAIN = (type(None), bool, int, float, str, bytes, bytearray)
_VALUES = (
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    uuid.UUID,
)


def plain(value: Any) -> Any:
    """`value` as the types the parent accepts (`_connection._ANSWER_CLASSES`); others as text."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (datetime.datetime, datetime.time)):
        tz = value.tzinfo
        if tz is not None and not isinstance(tz, datetime.timezone):
            return value.isoformat()  # a zoneinfo/pytz zone: keep the offset, as text
        return value
    if isinstance(value, _VALUES):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return str(value)


def _is_timeout(error: BaseException) -> bool:
    text = str(error).lower()
    return "interrupted" in text or type(error).__name__ == "InterruptException"


def _send(output: BinaryIO, message: Any) -> None:
    pickle.dump(message, output, protocol=pickle.HIGHEST_PROTOCOL)
    output.flush()


def main() -> None:
    """Serve queries from stdin until it closes."""
    commands, output = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers may reach the parent's pipe
    try:
        backend, path, memory_mb = pickle.load(commands)
    except EOFError:
        return
    limit = (memory_mb + BASE_MB) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        engine: _SQLite | _DuckDB = (
            _SQLite(path, memory_mb) if backend == "sqlite" else _DuckDB(path, memory_mb)
        )
    except Exception as error:
        _send(output, ("error", f"{type(error).__name__}: {error}", False))
        return
    _send(output, ("ready",))
    while True:
        try:
            sql, params, timeout, max_rows = pickle.load(commands)
        except EOFError:
            return
        try:
            answer = engine.run(sql, params, timeout, max_rows)
        except MemoryError:
            answer = ("error", "out of memory: the query needs more than the worker's limit", False)
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            answer = ("error", message, _is_timeout(error))
        try:
            _send(output, answer)
        except Exception as error:  # a value pickle cannot carry
            _send(output, ("error", f"cannot return the rows: {error}", False))


if __name__ == "__main__":
    main()

"""Read-only engines and query execution with a timeout, per database.

The validator is the first layer; this is the second. Each query runs so that even a statement
the validator misjudged cannot write or run forever:

- SQLite: file databases are opened through a `file:…?mode=ro` URI with `PRAGMA query_only`,
  and each query runs under an authorizer that denies every action except reading (SELECT,
  READ, FUNCTION, RECURSIVE): read-only mode and `query_only` alone still let `ATTACH` create
  a new database file. A progress handler interrupts the query at the deadline.
- PostgreSQL: each query runs in its own `READ ONLY` transaction with a `statement_timeout`,
  rolled back afterwards; engines built from a URL also default to read-only transactions.
- DuckDB: file databases are opened with `read_only=True`, external (file and network) access
  disabled and the configuration locked; a timer thread interrupts the query at the deadline.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from agentlib import ConfigurationError, ToolError

__all__ = ["QueryRows", "execute_read_only", "open_read_only"]

_SQLITE_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)
_SQLITE_ALLOWED = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, _SQLITE_RECURSIVE}
)
_SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "sqlite_offset"}
)
_DUCKDB_CONFIG = {"enable_external_access": False, "lock_configuration": True}


@dataclass(frozen=True, slots=True)
class QueryRows:
    """What a query returned: column names, at most `max_rows` rows, and whether more existed."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _sqlite_authorizer(
    action: int, argument1: str | None, argument2: str | None, database: str | None, source: Any
) -> int:
    if action not in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (argument2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_read_only_engine(path: str) -> sa.Engine:
    absolute = os.path.abspath(path)
    if not os.path.exists(absolute):
        raise ConfigurationError(
            f"the SQLite database {absolute!r} does not exist; create it first (the SQL tool "
            "opens databases read-only and never creates them)"
        )
    uri = f"file:{urllib.parse.quote(absolute)}?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.execute("PRAGMA query_only = ON")
        return connection

    return sa.create_engine("sqlite+pysqlite://", creator=connect, poolclass=sa.pool.QueuePool)


def _in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file:")


def _duckdb_read_only_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"read_only": True, "config": dict(_DUCKDB_CONFIG)})
    try:
        with engine.connect():
            pass
    except sa_exc.DBAPIError as exc:
        engine.dispose()
        raise ConfigurationError(
            f"cannot open the DuckDB database {url.database!r} read-only: "
            f"{str(exc.orig).splitlines()[0]}; if this process already holds a read-write "
            "connection to the file, close it (engine.dispose()) or pass the URL instead"
        ) from exc
    return engine


def open_read_only(url_or_engine: str | sa.URL | sa.Engine) -> tuple[sa.Engine, bool]:
    """Return an engine whose connections cannot write, and whether the caller must dispose it.

    A SQLite or DuckDB file is always reopened read-only, even when an engine is given. An
    in-memory SQLite or DuckDB database can only be used through the given engine; then the
    per-query guards (SQLite's authorizer, the validator) are what keep it read-only.

    Raises:
        ConfigurationError: The database is not SQLite, PostgreSQL or DuckDB, or cannot be
            opened read-only.
    """
    given = url_or_engine if isinstance(url_or_engine, sa.Engine) else None
    url = given.url if given is not None else sa.make_url(url_or_engine)  # type: ignore[arg-type]
    backend = url.get_backend_name()
    if backend in ("sqlite", "duckdb") and _in_memory(url.database):
        if given is None:
            raise ConfigurationError(
                f"the URL {url.render_as_string()!r} opens a new, empty in-memory database; "
                "pass a file URL, or the Engine that holds your in-memory data"
            )
        return given, False
    if backend == "sqlite":
        return _sqlite_read_only_engine(str(url.database)), True
    if backend == "duckdb":
        return _duckdb_read_only_engine(url), True
    if backend == "postgresql":
        if given is not None:
            return given, False
        options = {"options": "-c default_transaction_read_only=on"}
        return sa.create_engine(url, connect_args=options), True
    raise ConfigurationError(
        f"unsupported database {backend!r}: SQLDatabase works with sqlite, postgresql and "
        "duckdb URLs or engines"
    )


@contextmanager
def _guard(connection: sa.Connection, timeout: float) -> Iterator[None]:
    """Apply the per-query read-only and timeout guard of the connection's database."""
    backend = connection.dialect.name
    driver = connection.connection.driver_connection
    if backend == "sqlite":
        assert isinstance(driver, sqlite3.Connection)
        deadline = time.monotonic() + timeout
        driver.set_authorizer(_sqlite_authorizer)
        driver.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            yield
        finally:
            driver.set_authorizer(None)
            driver.set_progress_handler(None, 0)
    elif backend == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
        # A query takes the transaction's snapshot; after it PostgreSQL refuses
        # SET TRANSACTION READ WRITE (before it, that SET would still be accepted).
        connection.exec_driver_sql("SELECT 1")
        yield
    elif backend == "duckdb":
        timer = threading.Timer(timeout, driver.interrupt)  # type: ignore[union-attr]
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
    else:  # open_read_only refuses other databases
        raise ConfigurationError(f"unsupported database {backend!r}")


def _is_timeout(error: sa_exc.DBAPIError) -> bool:
    text = str(error.orig).lower()
    return (
        "interrupted" in text
        or "statement timeout" in text
        or type(error.orig).__name__ in ("QueryCanceled", "InterruptException")
    )


def execute_read_only(
    engine: sa.Engine,
    statement: str | sa.Executable,
    *,
    timeout: float,
    max_rows: int,
) -> QueryRows:
    """Run one query under the read-only guard and return at most `max_rows` rows.

    A string is sent to the driver as it is (it must already be validated SQL); a SQLAlchemy
    statement is compiled with bound parameters.

    Raises:
        ToolError: The query timed out or the database refused it.
    """
    try:
        with engine.connect() as connection:
            try:
                with _guard(connection, timeout):
                    if isinstance(statement, str):
                        if connection.dialect.paramstyle in ("format", "pyformat"):
                            # psycopg reads % as a placeholder even without parameters.
                            statement = statement.replace("%", "%%")
                        result = connection.exec_driver_sql(statement)
                    else:
                        result = connection.execute(statement)
                    if not result.returns_rows:
                        raise ToolError(
                            "the statement returned no rows: only SELECT queries can run"
                        )
                    columns = list(result.keys())
                    fetched = result.fetchmany(max_rows + 1)
                    result.close()
            finally:
                connection.rollback()
    except sa_exc.DBAPIError as error:
        if _is_timeout(error):
            raise ToolError(
                f"the query ran longer than the {timeout:g} s timeout and was stopped; "
                "make it cheaper (filter earlier, aggregate, avoid unbounded recursion)"
            ) from error
        detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ToolError(f"the database refused the query: {detail}") from error
    rows = [tuple(row) for row in fetched[:max_rows]]
    return QueryRows(columns=columns, rows=rows, truncated=len(fetched) > max_rows)

"""Read-only databases and query execution with a timeout, per database.

The validator is the first layer; this is the second. Each query runs so that even a statement
the validator misjudged cannot write, run past its timeout or exhaust the host:

- SQLite and DuckDB: queries run in a worker process (`_worker.py`) on the database file
  opened read-only (SQLite: a `mode=ro` URI, `PRAGMA query_only`, an authorizer that denies
  every action except reading; DuckDB: `read_only=True`, external access off, configuration
  locked). An in-memory database passed as an engine is first copied to a private temporary
  file (a snapshot taken when the `SQLDatabase` is built). The engine stops the query at the
  deadline (SQLite's progress handler, DuckDB's `interrupt()`); when one long function call
  ignores that, the parent kills the worker at the deadline plus `KILL_GRACE` seconds and
  starts a fresh one for the next query. The worker's address space is capped at `memory_mb`.
- PostgreSQL: each query runs in its own transaction, even on an AUTOCOMMIT engine, with
  `SET TRANSACTION READ ONLY`, the session defaults `default_transaction_read_only = on` and
  `statement_timeout` (undone by the rollback that ends every query), and a client-side cancel
  request at the deadline plus `KILL_GRACE` in case the server's timer does not fire.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from agentlib import ConfigurationError, ToolError

__all__ = ["KILL_GRACE", "QueryRows", "ReadOnlyDatabase", "open_read_only"]

KILL_GRACE = 0.5
"""Seconds past the timeout after which a query still running is killed (or cancelled)."""

_DUCKDB_CONFIG = {"enable_external_access": False, "lock_configuration": True}
_IDLE_WORKERS = 2
_BUSY_WORKERS = 4
"""Queries one database runs at once; more wait (up to their timeout) for a free worker."""
_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")


@dataclass(frozen=True, slots=True)
class QueryRows:
    """What a query returned: column names, at most `max_rows` rows, and whether more existed."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _timeout_error(timeout: float, *, killed: bool = False) -> ToolError:
    how = " (its worker process was killed)" if killed else ""
    return ToolError(
        f"the query ran longer than the {timeout:g} s timeout and was stopped{how}; "
        "make it cheaper (filter earlier, aggregate, avoid unbounded recursion)"
    )


# What a worker's answer may contain besides pickle's own types (None, bool, int, float, str,
# bytes, list, tuple, dict, set): the value types the drivers return. Anything else in the
# stream is refused, so a worker whose engine was subverted by a query cannot run code here.
_ANSWER_CLASSES = frozenset(
    {
        ("builtins", "bytearray"),
        ("builtins", "frozenset"),
        ("builtins", "set"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
    }
)


class _AnswerUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ANSWER_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a query worker sent a {module}.{name}, which is refused")


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, backend: str, path: str, memory_mb: int) -> None:
        # Run as a script, not `-m agentlib...`: importing the package would cost a second.
        self.process = subprocess.Popen(
            [sys.executable, "-I", _WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._input: IO[bytes] = self.process.stdin
        self._output: IO[bytes] = self.process.stdout
        self._send((backend, path, memory_mb))
        answer = self._receive()
        if answer[0] != "ready":
            self.kill()
            raise ConfigurationError(f"cannot open the {backend} database {path!r}: {answer[1]}")

    def _send(self, message: Any) -> None:
        pickle.dump(message, self._input, protocol=pickle.HIGHEST_PROTOCOL)
        self._input.flush()

    def _receive(self) -> Any:
        try:
            return _AnswerUnpickler(self._output).load()
        except (EOFError, pickle.UnpicklingError, OSError):
            return ("dead",)

    def run(self, request: tuple[Any, ...], timeout: float) -> tuple[Any, bool]:
        """Send one query; return its answer and whether the worker had to be killed."""
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            self.kill()

        timer = threading.Timer(timeout + KILL_GRACE, kill)
        timer.daemon = True
        timer.start()
        try:
            self._send(request)
            answer = self._receive()
        except OSError:
            answer = ("dead",)
        finally:
            timer.cancel()
        return answer, killed.is_set()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for pipe in (self._input, self._output):
            with contextlib.suppress(OSError):
                pipe.close()


class ReadOnlyDatabase:
    """A database whose queries cannot write, with a timeout and bounded resources.

    `engine` is for schema introspection (read-only too); `execute` runs one query. Built by
    `open_read_only`.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        owns_engine: bool,
        path: str | None = None,
        memory_mb: int = 1024,
        snapshot_directory: str | None = None,
    ) -> None:
        self.engine = engine
        """The engine: SQLAlchemy access for introspection."""
        self.backend = engine.dialect.name
        """`sqlite`, `postgresql` or `duckdb`."""
        self.memory_mb = memory_mb
        """The address-space cap of a SQLite or DuckDB worker process, in MiB."""
        self._owns_engine = owns_engine
        self._path = path
        self._snapshot_directory = snapshot_directory
        self._idle: list[_Worker] = []
        self._busy = threading.BoundedSemaphore(_BUSY_WORKERS)
        self._lock = threading.Lock()
        self._closed = False
        # A database dropped without close() still stops its workers and deletes its snapshot.
        self._finalizer = weakref.finalize(self, _release, self._idle, snapshot_directory)
        if path is not None:
            self._spawn_spare()

    # Workers (SQLite, DuckDB) -------------------------------------------------------------

    def _spawn_spare(self) -> None:
        """Start a worker in the background, so that the next query does not wait for one."""

        def spawn() -> None:
            try:
                worker = self._new_worker()
            except ConfigurationError:
                return  # the next query starts one itself and reports the error
            self._give_back(worker)

        threading.Thread(target=spawn, name="agentlib-sql-worker", daemon=True).start()

    def _new_worker(self) -> _Worker:
        assert self._path is not None
        return _Worker(self.backend, self._path, self.memory_mb)

    def _take_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ToolError("the database was closed; open a new SQLDatabase")
            if self._idle:
                return self._idle.pop()
        return self._new_worker()

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _IDLE_WORKERS:
                self._idle.append(worker)
                return
        worker.kill()

    def _run_in_worker(self, sql: str, params: Any, timeout: float, max_rows: int) -> QueryRows:
        if not self._busy.acquire(timeout=timeout):
            raise ToolError(
                f"{_BUSY_WORKERS} queries were already running on this database for the whole "
                f"{timeout:g} s timeout; retry when one has finished"
            )
        try:
            worker = self._take_worker()
            answer, killed = worker.run((sql, params, timeout, max_rows), timeout)
            return self._answer_rows(answer, killed, worker, timeout, max_rows)
        finally:
            self._busy.release()

    def _answer_rows(
        self, answer: Any, killed: bool, worker: _Worker, timeout: float, max_rows: int
    ) -> QueryRows:
        if killed or answer[0] == "dead":
            worker.kill()
            self._spawn_spare()
            if killed:
                raise _timeout_error(timeout, killed=True)
            raise ToolError(
                "the query stopped its worker process (it needed more memory than "
                f"memory_mb={self.memory_mb} allows, or crashed); make it cheaper"
            )
        self._give_back(worker)
        if answer[0] == "no_rows":
            raise ToolError("the statement returned no rows: only SELECT queries can run")
        if answer[0] == "error":
            if answer[2]:
                raise _timeout_error(timeout)
            raise ToolError(f"the database refused the query: {answer[1]}")
        _, columns, fetched = answer
        rows = [tuple(row) for row in fetched[:max_rows]]
        return QueryRows(columns=list(columns), rows=rows, truncated=len(fetched) > max_rows)

    def _compile(self, statement: sa.Executable) -> tuple[str, Any]:
        assert isinstance(statement, sa.ClauseElement)
        compiled = statement.compile(
            dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        params = dict(compiled.construct_params() or {})
        order: list[str] | None = getattr(compiled, "positiontup", None)
        if getattr(compiled, "positional", False) and order is not None:
            return str(compiled), [params[name] for name in order]
        return str(compiled), params

    # PostgreSQL ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _postgres_guard(self, connection: sa.Connection, timeout: float) -> Iterator[None]:
        driver: Any = connection.connection.driver_connection
        milliseconds = max(1, int(timeout * 1000))
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        # Session-level too, so that a statement that ended the transaction would still run
        # read-only and timed; inside the transaction, the final rollback undoes both.
        connection.exec_driver_sql("SET default_transaction_read_only = on")
        connection.exec_driver_sql(f"SET statement_timeout = {milliseconds}")
        # A query takes the transaction's snapshot; after it PostgreSQL refuses
        # SET TRANSACTION READ WRITE (before it, that SET would still be accepted).
        connection.exec_driver_sql("SELECT 1")
        cancel = getattr(driver, "cancel_safe", None) or driver.cancel
        timer = threading.Timer(timeout + KILL_GRACE, cancel)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _run_postgres(
        self, statement: str | sa.Executable, timeout: float, max_rows: int
    ) -> QueryRows:
        with self.engine.connect() as connection:
            driver: Any = connection.connection.driver_connection
            if getattr(driver, "autocommit", False):
                # An AUTOCOMMIT engine would run every statement in its own transaction, and
                # SET TRANSACTION / SET LOCAL would apply to nothing; this connection gets a
                # real transaction (SQLAlchemy restores the engine's level when it is returned).
                connection = connection.execution_options(isolation_level="READ COMMITTED")
            try:
                with self._postgres_guard(connection, timeout):
                    if isinstance(statement, str):
                        # psycopg reads % as a placeholder even without parameters.
                        result = connection.exec_driver_sql(statement.replace("%", "%%"))
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
        rows = [tuple(row) for row in fetched[:max_rows]]
        return QueryRows(columns=columns, rows=rows, truncated=len(fetched) > max_rows)

    # Public -------------------------------------------------------------------------------

    def execute(
        self, statement: str | sa.Executable, *, timeout: float, max_rows: int
    ) -> QueryRows:
        """Run one query read-only and return at most `max_rows` rows.

        A string is sent to the database as it is: it must already be validated SQL (this
        bypasses the validator). A SQLAlchemy statement is compiled with bound parameters.

        Raises:
            ToolError: The query timed out, ran out of memory or the database refused it.
        """
        if self.backend != "postgresql":
            sql, params = (
                (statement, ()) if isinstance(statement, str) else self._compile(statement)
            )
            return self._run_in_worker(sql, params, timeout, max_rows)
        try:
            return self._run_postgres(statement, timeout, max_rows)
        except sa_exc.DBAPIError as error:
            if type(error.orig).__name__ == "QueryCanceled" or "statement timeout" in str(
                error.orig
            ):
                raise _timeout_error(timeout) from error
            detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise ToolError(f"the database refused the query: {detail}") from error

    def close(self) -> None:
        """Stop the workers, delete a snapshot and dispose of an engine opened here."""
        with self._lock:
            self._closed = True
        self._finalizer()
        if self._owns_engine:
            self.engine.dispose()


def _release(idle: list[_Worker], snapshot_directory: str | None) -> None:
    while idle:
        idle.pop().kill()
    if snapshot_directory is not None:
        shutil.rmtree(snapshot_directory, ignore_errors=True)


def _sqlite_read_only_engine(path: str) -> sa.Engine:
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"

    def connect() -> Any:
        import sqlite3

        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.execute("PRAGMA query_only = ON")
        return connection

    return sa.create_engine("sqlite+pysqlite://", creator=connect, poolclass=sa.pool.QueuePool)


def _in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file:")


def _duckdb_read_only_engine(path: str) -> sa.Engine:
    engine = sa.create_engine(
        f"duckdb:///{path}", connect_args={"read_only": True, "config": dict(_DUCKDB_CONFIG)}
    )
    try:
        with engine.connect():
            pass
    except sa_exc.DBAPIError as exc:
        engine.dispose()
        raise ConfigurationError(
            f"cannot open the DuckDB database {path!r} read-only: "
            f"{str(exc.orig).splitlines()[0]}; if this process already holds a read-write "
            "connection to the file, close it (engine.dispose()) or pass the URL instead"
        ) from exc
    return engine


def _snapshot(engine: sa.Engine, backend: str) -> tuple[str, str]:
    """Copy the in-memory database behind `engine` to a private file: `(directory, path)`."""
    directory = tempfile.mkdtemp(prefix="agentlib-sql-")
    path = os.path.join(directory, f"snapshot.{'db' if backend == 'sqlite' else 'duckdb'}")
    try:
        with engine.connect() as connection:
            driver: Any = connection.connection.driver_connection
            if backend == "sqlite":
                import sqlite3

                target = sqlite3.connect(path)
                try:
                    driver.backup(target)
                finally:
                    target.close()
            else:
                # COPY FROM DATABASE trips over foreign keys; the snapshot needs only the rows
                # (the schema, keys included, is read from the caller's engine).
                names = [
                    row[0]
                    for row in connection.exec_driver_sql(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema()"
                    )
                ]
                quoted = path.replace("'", "''")
                connection.exec_driver_sql(f"ATTACH '{quoted}' AS agentlib_snapshot")
                try:
                    for name in names:
                        identifier = '"' + name.replace('"', '""') + '"'
                        connection.exec_driver_sql(
                            f"CREATE TABLE agentlib_snapshot.{identifier} AS "
                            f"SELECT * FROM {identifier}"
                        )
                    connection.commit()
                finally:
                    connection.exec_driver_sql("DETACH agentlib_snapshot")
    except (sa_exc.DBAPIError, OSError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        detail = getattr(exc, "orig", None) or exc
        raise ConfigurationError(
            f"cannot copy the in-memory {backend} database to a read-only snapshot: {detail}; "
            "write it to a file and pass that file's URL instead"
        ) from exc
    return directory, path


def open_read_only(
    url_or_engine: str | sa.URL | sa.Engine, *, memory_mb: int = 1024
) -> ReadOnlyDatabase:
    """Open a database so that its queries cannot write.

    A SQLite or DuckDB file is always reopened read-only, even when an engine is given; an
    in-memory SQLite or DuckDB engine is copied to a private read-only snapshot file. A
    PostgreSQL engine is used as given (each query gets its own read-only transaction); one
    built here from a URL also defaults every transaction to read-only.

    Raises:
        ConfigurationError: The database is not SQLite, PostgreSQL or DuckDB, or cannot be
            opened read-only.
    """
    given = url_or_engine if isinstance(url_or_engine, sa.Engine) else None
    url = given.url if given is not None else sa.make_url(url_or_engine)  # type: ignore[arg-type]
    backend = url.get_backend_name()
    if backend in ("sqlite", "duckdb"):
        snapshot_directory = None
        if _in_memory(url.database):
            if given is None:
                raise ConfigurationError(
                    f"the URL {url.render_as_string()!r} opens a new, empty in-memory database; "
                    "pass a file URL, or the Engine that holds your in-memory data"
                )
            snapshot_directory, path = _snapshot(given, backend)
        else:
            path = os.path.abspath(str(url.database))
            if not os.path.exists(path):
                raise ConfigurationError(
                    f"the {backend} database {path!r} does not exist; create it first (the SQL "
                    "tool opens databases read-only and never creates them)"
                )
        if backend == "sqlite":
            engine, owned = _sqlite_read_only_engine(path), True
        elif snapshot_directory is None:
            engine, owned = _duckdb_read_only_engine(path), True
        else:  # introspected through the caller's engine; queries read the snapshot
            assert given is not None
            engine, owned = given, False
        return ReadOnlyDatabase(
            engine,
            owns_engine=owned,
            path=path,
            memory_mb=memory_mb,
            snapshot_directory=snapshot_directory,
        )
    if backend == "postgresql":
        if given is not None:
            return ReadOnlyDatabase(given, owns_engine=False)
        options = {"options": "-c default_transaction_read_only=on"}
        return ReadOnlyDatabase(sa.create_engine(url, connect_args=options), owns_engine=True)
    raise ConfigurationError(
        f"unsupported database {backend!r}: SQLDatabase works with sqlite, postgresql and "
        "duckdb URLs or engines"
    )

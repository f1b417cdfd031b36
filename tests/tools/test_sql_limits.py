"""Runaway queries, in-process exhaustion, caller-supplied engines and hidden tables, on the real
engines: SQLite and DuckDB files, in-memory engines a caller passes, and a real PostgreSQL with an
AUTOCOMMIT engine.

Judged by the engine's state and the `ToolError` raised, never by timings (those are in
`benchmarks/sql.md`): a stopped query raises the timeout error, the database is unchanged, and the
next query on the same `SQLDatabase` answers.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentlib import ToolError
from agentlib.tools.sql import SQLDatabase, create_music_store
from tests._postgres import PostgresServer
from tests.tools._sql_databases import (
    content_fingerprint,
    duckdb_music_store,
    file_checksum,
    postgres_music_store,
    sqlite_music_store,
)

TIMEOUT = 1.0
TIMEOUT_MESSAGE = r"longer than the 1 s timeout"
RECURSIVE = (
    "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
    "SELECT COUNT(*) FROM forever"
)
CARTESIAN = "SELECT COUNT(*) FROM tracks a, tracks b, tracks c, tracks d, tracks e, tracks f"
# One function call that runs (or allocates) far past the timeout: the engines' own interrupts
# only act between steps.
HEAVY_FUNCTION = {
    "sqlite": "SELECT length(printf('%.*c', 900000000, 'x'))",
    "duckdb": "SELECT length(repeat('x', 900000000))",
    "postgresql": "SELECT length(repeat('x', 900000000))",
}
# Many calls, each heavy, so that the engine's per-step checks are what stop it.
HEAVY_ROWS = {
    "sqlite": "SELECT SUM(length(printf('%.*c', 1000000 + a.track_id, b.name))) "
    "FROM tracks a, tracks b, tracks c",
    "duckdb": "SELECT SUM(length(repeat(b.name, 100000 + a.track_id))) "
    "FROM tracks a, tracks b, tracks c",
    "postgresql": "SELECT SUM(length(repeat(b.name, 100000 + a.track_id))) "
    "FROM tracks a, tracks b, tracks c",
}
RUNAWAYS = {"recursive": RECURSIVE, "cartesian": CARTESIAN}


@pytest.fixture(scope="module")
def urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    made: dict[str, str] = {}

    def url_for(dialect: str) -> str:
        if dialect not in made:
            directory = tmp_path_factory.mktemp(dialect)
            if dialect == "sqlite":
                made[dialect] = sqlite_music_store(directory)
            elif dialect == "duckdb":
                made[dialect] = duckdb_music_store(directory)
            else:
                server = request.getfixturevalue("postgres")
                made[dialect] = postgres_music_store(server, "music_limits")
        return made[dialect]

    return url_for


DIALECTS = ["sqlite", "duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def db(request: pytest.FixtureRequest, urls: Callable[[str], str]) -> Iterator[SQLDatabase]:
    database = SQLDatabase(urls(request.param), query_mode="sql", timeout=TIMEOUT)
    yield database
    database.close()


def _stopped_and_usable(database: SQLDatabase, sql: str) -> None:
    with pytest.raises(ToolError, match=TIMEOUT_MESSAGE):
        database.executor.execute(sql, timeout=TIMEOUT, max_rows=10)
    assert database.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(RUNAWAYS))
def test_runaway_query_is_stopped_and_the_database_answers_again(
    db: SQLDatabase, kind: str
) -> None:
    _stopped_and_usable(db, RUNAWAYS[kind])


@pytest.mark.timeout(120)
def test_many_heavy_function_calls_are_stopped(db: SQLDatabase) -> None:
    _stopped_and_usable(db, HEAVY_ROWS[db.backend])


@pytest.mark.timeout(120)
def test_one_huge_function_call_is_bounded(db: SQLDatabase) -> None:
    # SQLite caps every string at SQLITE_LIMIT_LENGTH, DuckDB's worker cannot allocate the
    # gigabyte, PostgreSQL's statement_timeout interrupts repeat(); or the worker is killed.
    # SQLite's printf may instead give NULL once the result would pass the length cap: bounded
    # too, since the gigabyte string is never built.
    db.validate(HEAVY_FUNCTION[db.backend])
    try:
        result = db.executor.execute(HEAVY_FUNCTION[db.backend], timeout=TIMEOUT, max_rows=1)
    except ToolError as stopped:
        assert any(
            text in str(stopped)
            for text in ("timeout", "Out of Memory", "too big", "memory limit", "maximum supported")
        ), stopped
    else:
        assert db.backend == "sqlite", result
        assert [list(row) for row in result.rows] == [[None]], result
    assert db.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]


@pytest.mark.timeout(120)
def test_a_killed_worker_is_replaced(urls: Callable[[str], str]) -> None:
    # printf's width loop does not return to SQLite's VM, so only the kill path stops it.
    database = SQLDatabase(urls("sqlite"), query_mode="sql", timeout=TIMEOUT)
    try:
        with pytest.raises(ToolError, match="its worker process was killed"):
            database.executor.execute(
                "SELECT printf('%.*c', 2000000000, 'x') IS NULL", timeout=TIMEOUT, max_rows=1
            )
        for _ in range(3):
            assert database.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]
    finally:
        database.close()


def test_sqlite_strings_are_capped_in_length(urls: Callable[[str], str]) -> None:
    database = SQLDatabase(urls("sqlite"), query_mode="sql")
    try:
        # Sent past the validator (which refuses zeroblob): the engine's own limit holds.
        for sql in (
            "SELECT zeroblob(900000000)",
            "SELECT length(replace(printf('%.*c', 10000000, 'x'), 'x', 'yyyy'))",
            "SELECT group_concat(printf('%.*c', 1000000, name)) FROM tracks",
        ):
            with pytest.raises(ToolError, match="too big"):
                database.executor.execute(sql, timeout=10, max_rows=1)
    finally:
        database.close()


# In-memory engines a caller passes ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "duckdb"])
def test_an_in_memory_engine_is_read_through_a_read_only_snapshot(backend: str) -> None:
    if backend == "sqlite":
        engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    else:
        engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
    create_music_store(engine)
    database = SQLDatabase(engine, query_mode="sql", timeout=TIMEOUT)
    try:
        assert database.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]
        for write in (
            "INSERT INTO genres (genre_id, name) VALUES (99, 'Polka')",
            "DELETE FROM genres",
            "CREATE TABLE stolen (a INTEGER)",
        ):
            with pytest.raises(ToolError, match="the database refused the query"):
                database.executor.execute(write, timeout=TIMEOUT, max_rows=1)
        _stopped_and_usable(database, CARTESIAN)
    finally:
        database.close()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM genres").scalar() == 8
        tables = sa.inspect(connection).get_table_names()
        assert "stolen" not in tables
    engine.dispose()


# PostgreSQL: an AUTOCOMMIT engine and hidden tables --------------------------------------------


@pytest.fixture(scope="module")
def autocommit(postgres: PostgresServer) -> Iterator[tuple[SQLDatabase, str]]:
    url = postgres_music_store(postgres, "music_autocommit")
    owner = sa.create_engine(url)
    with owner.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE secrets (token TEXT)")
        connection.exec_driver_sql("INSERT INTO secrets VALUES ('hunter2')")
        connection.exec_driver_sql("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    owner.dispose()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    visible = ["albums", "artists", "genres", "tracks"]
    database = SQLDatabase(engine, query_mode="sql", timeout=TIMEOUT, include_tables=visible)
    yield database, url
    database.close()
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "write",
    [
        "INSERT INTO genres (genre_id, name) VALUES (99, 'Polka')",
        "UPDATE genres SET name = 'x'",
        "DELETE FROM secrets",
        "CREATE TABLE stolen (a INTEGER)",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
    ],
)
def test_autocommit_engine_writes_do_not_commit(
    autocommit: tuple[SQLDatabase, str], write: str
) -> None:
    database, url = autocommit
    before = content_fingerprint(url)
    with contextlib.suppress(ToolError):
        database.executor.execute(write, timeout=TIMEOUT, max_rows=1)
    assert content_fingerprint(url) == before
    # The caller's own connections are unchanged: still autocommit, still writable.
    with database.engine.connect() as connection:
        assert connection.connection.driver_connection.autocommit  # type: ignore[union-attr]
        assert connection.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "off"
        assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "0"


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_autocommit_engine_cross_join_stops_at_the_timeout(
    autocommit: tuple[SQLDatabase, str],
) -> None:
    database, _ = autocommit
    _stopped_and_usable(database, CARTESIAN)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "probe",
    [
        "SELECT CAST('secrets' AS regclass)",
        "SELECT 'secrets'::regclass::oid",
        "SELECT CAST('secrets' AS pg_catalog.regclass)",
        "SELECT 'public.secrets'::regclass",
        "SELECT regclass 'secrets'",
        "SELECT to_regclass('secrets')",
        "SELECT has_table_privilege('secrets', 'select')",
        "SELECT pg_relation_size('secrets')",
        "SELECT pg_table_is_visible(16384)",
        "SELECT obj_description(16384)",
        "SELECT pg_get_tabledef('secrets')",
        "SELECT '(x)'::secrets",
        "SELECT CAST(NULL AS secrets)",
        "SELECT CAST(NULL AS secrets[])",
        "SELECT CAST(NULL AS _secrets)",
        "SELECT CAST(NULL AS public.secrets)",
        "SELECT ROW('x')::secrets",
        "SELECT json_populate_record(NULL::secrets, '{}')",
        "SELECT query_to_xml('SELECT * FROM secrets', true, true, '')",
        "SELECT * FROM secrets",
        "SELECT * FROM public.secrets",
        "SELECT unnest(ARRAY(SELECT token FROM secrets))",
        "SELECT x FROM unnest(ARRAY(SELECT token FROM secrets)) AS u(x)",
        "SELECT tableoid FROM genres",
        "SELECT * FROM pg_class",
        "SELECT * FROM information_schema.tables",
    ],
)
def test_hidden_tables_are_invisible_to_every_allowed_function(
    autocommit: tuple[SQLDatabase, str], probe: str
) -> None:
    database, _ = autocommit
    with pytest.raises(ToolError) as refused:
        database.run_sql(probe)
    # Refused by the validator, before the database could say whether `secrets` exists.
    assert "the database refused" not in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.postgres
def test_the_schemas_own_value_types_can_be_cast_to(autocommit: tuple[SQLDatabase, str]) -> None:
    database, _ = autocommit
    assert database.run_sql("SELECT CAST('happy' AS mood) AS feeling").rows == [["happy"]]
    assert database.run_sql("SELECT 'sad'::mood::text AS feeling").rows == [["sad"]]


# New acceptances, against the engines themselves -------------------------------------------


def _plain_sqlite(url: str, sql: str) -> list[list[object]]:
    path = sa.make_url(url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        return [list(row) for row in connection.execute(sql).fetchall()]


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT name FROM genres WHERE name = "Rock"',
        'SELECT "name" FROM genres WHERE "name" = "Jazz" COLLATE NOCASE',
        'SELECT name, "genre" FROM genres ORDER BY name',
        'SELECT g.name AS label FROM genres AS g WHERE "label" = "Rock"',
        'SELECT name FROM genres WHERE genre_id IN (SELECT genre_id FROM tracks WHERE "name" = '
        '"name") ORDER BY name',
        'SELECT group_concat(name, ";") FROM (SELECT name FROM genres ORDER BY name)',
        'SELECT COUNT(*) FROM artists WHERE country = "Japan" OR "country" = "Brazil"',
        "SELECT name FROM genres WHERE name = 'rock' COLLATE NOCASE",
        'SELECT "x\'); DROP TABLE genres; --" AS attack FROM genres LIMIT 1',
        "SELECT g.name FROM genres AS g WHERE EXISTS (SELECT 1 FROM tracks AS t "
        'WHERE t.genre_id = g.genre_id AND "name" = "Rock")',
        'WITH c(label) AS (SELECT name FROM genres) SELECT "label" FROM c WHERE "label" <> "Jazz"',
        'SELECT name FROM genres WHERE name = "Rock" UNION SELECT name FROM artists '
        'WHERE "country" = "Japan"',
        'SELECT genre_id, COUNT(*) AS n FROM tracks GROUP BY genre_id HAVING "n" > 5',
        "SELECT t.name FROM tracks AS t JOIN genres AS g ON g.genre_id = t.genre_id "
        'AND g.name = "Rock"',
        'SELECT x.label FROM (SELECT name AS label FROM genres) AS x WHERE "label" = "Folk"',
        'SELECT a.name, "b" FROM artists AS a, albums AS b WHERE a.artist_id = b.artist_id',
    ],
)
def test_sqlite_double_quotes_mean_what_sqlite_makes_of_them(
    urls: Callable[[str], str], sql: str
) -> None:
    url = urls("sqlite")
    database = SQLDatabase(url, query_mode="sql")
    try:
        rows = database.run_sql(sql).rows
    finally:
        database.close()
    if "ORDER BY" in sql:
        assert rows == _plain_sqlite(url, sql)
    else:
        assert sorted(rows, key=repr) == sorted(_plain_sqlite(url, sql), key=repr)
    assert _plain_sqlite(url, "SELECT COUNT(*) FROM genres") == [[8]]


@pytest.mark.parametrize(
    "dialect",
    ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def test_double_quoted_values_are_refused_with_the_single_quote_fix(
    urls: Callable[[str], str], dialect: str
) -> None:
    database = SQLDatabase(urls(dialect), query_mode="sql")
    try:
        with pytest.raises(ToolError, match=r"write it in single quotes \('Rock'\)"):
            database.run_sql('SELECT name FROM genres WHERE name = "Rock"')
        assert database.run_sql("SELECT name FROM genres WHERE name = 'Rock'").rows == [["Rock"]]
    finally:
        database.close()


ACCEPTED = {
    "sqlite": [
        ("SELECT COUNT(*) FROM genres WHERE name = 'ROCK' COLLATE NOCASE", [[1]]),
        ("SELECT name FROM genres ORDER BY name COLLATE NOCASE DESC LIMIT 1", [["Rock"]]),
        ("SELECT rowid, _rowid_ FROM genres ORDER BY rowid LIMIT 1", [[1, 1]]),
        ('SELECT g."oid" FROM genres AS g ORDER BY 1 LIMIT 1', [[1]]),
        ("SELECT random() IS NOT NULL", [[1]]),
    ],
    "duckdb": [
        ("SELECT COUNT(*) FROM genres WHERE name = 'ROCK' COLLATE NOCASE", [[1]]),
        ("SELECT unnest([1, 2, 3]) AS n ORDER BY n", [[1], [2], [3]]),
        ("SELECT max(COLUMNS(*)) FROM genres", [[8, "Rock"]]),
        ("SELECT COLUMNS('genre_.*') FROM genres ORDER BY 1 LIMIT 1", [[1]]),
        ("SELECT {'a': 1}.a AS a", [[1]]),
        ("SELECT random() < 1 AS ok", [[True]]),
    ],
    "postgresql": [
        ("SELECT COUNT(*) FROM genres WHERE name = 'Rock' COLLATE \"C\"", [[1]]),
        ("SELECT unnest(ARRAY[1, 2, 3]) AS n ORDER BY n", [[1], [2], [3]]),
        ("SELECT n FROM unnest(ARRAY[3, 1]) AS u(n) ORDER BY n", [[1], [3]]),
        (
            "SELECT CAST(genre_id AS numeric(10, 2))::text FROM genres ORDER BY 1 LIMIT 1",
            [["1.00"]],
        ),
        ("SELECT COUNT(*) FROM genres WHERE name ~* 'ROCK'", [[1]]),
        ("SELECT lpad('7', 3, '0'), width_bucket(5, 0, 10, 2)", [["007", 2]]),
        ("SELECT string_to_array('a b', ' ')", [[["a", "b"]]]),
        ("SELECT generate_series(1, 3) AS n ORDER BY n", [[1], [2], [3]]),
    ],
}


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        pytest.param(
            dialect,
            sql,
            expected,
            marks=[pytest.mark.postgres] if dialect == "postgresql" else [],
            id=f"{dialect}-{index}",
        )
        for dialect, cases in ACCEPTED.items()
        for index, (sql, expected) in enumerate(cases)
    ],
)
def test_read_only_dialect_features_are_accepted(
    urls: Callable[[str], str], dialect: str, sql: str, expected: list[list[object]]
) -> None:
    database = SQLDatabase(urls(dialect), query_mode="sql")
    try:
        assert database.run_sql(sql).rows == expected
    finally:
        database.close()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT COLUMNS(c -> getenv(c)) FROM genres", "getenv() is not allowed"),
        ("SELECT COLUMNS(*) FROM secrets", "unknown table 'secrets'"),
        ("SELECT unnest(ARRAY(SELECT name FROM secrets))", "unknown table 'secrets'"),
        ("SELECT * FROM unnest(read_csv('/etc/passwd'))", "not allowed"),
        ("SELECT name COLLATE NOCASE FROM genres; DROP TABLE genres", "exactly one statement"),
    ],
)
def test_new_acceptances_do_not_open_new_attacks(
    urls: Callable[[str], str], sql: str, message: str
) -> None:
    url = urls("duckdb")
    path = Path(sa.make_url(url).database or "")
    before = file_checksum(path)
    database = SQLDatabase(url, query_mode="sql")
    try:
        with pytest.raises(ToolError, match=re.escape(message)):
            database.run_sql(sql)
    finally:
        database.close()
    assert file_checksum(path) == before


# What a worker sends back --------------------------------------------------------------------


class _Hostile:
    """Pickles as a call to os.system, as a subverted worker could send."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_subverted_workers_answer_cannot_run_code_in_the_host(tmp_path: Path) -> None:
    import io
    import pickle

    from agentlib.tools.sql._connection import _AnswerUnpickler

    marker = tmp_path / "pwned"
    payload = pickle.dumps(("ok", ["x"], [[_Hostile(marker)]]))
    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system.*refused"):
        _AnswerUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()


def test_duckdb_values_come_back_typed(urls: Callable[[str], str]) -> None:
    database = SQLDatabase(urls("duckdb"), query_mode="sql")
    try:
        result = database.run_sql(
            "SELECT CAST('2020-01-02' AS DATE) AS day, CAST(1.5 AS DECIMAL(4, 2)) AS price, "
            "[genre_id, 2] AS pair, CAST(genre_id AS VARCHAR) AS label FROM genres "
            "ORDER BY genre_id LIMIT 1"
        )
    finally:
        database.close()
    assert result.rows == [["2020-01-02", 1.5, [1, 2], "1"]]


@pytest.mark.timeout(120)
def test_concurrent_runaways_are_all_stopped_and_bounded(urls: Callable[[str], str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    database = SQLDatabase(urls("sqlite"), query_mode="sql", timeout=TIMEOUT)

    def attempt(_: int) -> str:
        try:
            database.run_sql(RECURSIVE)
        except ToolError as error:
            return str(error)
        return "finished"  # pragma: no cover - would be the bug

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(attempt, range(6)))
        assert all("timeout" in outcome for outcome in outcomes), outcomes
        assert database.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]
    finally:
        database.close()

"""The validator and the read-only connection, on SQLite, DuckDB and a real PostgreSQL.

Legitimate SELECTs (joins, subqueries, window functions, CTEs, aggregates, set operations) must
run; every mutation and escape must be refused with a message the model can act on, and the
database must be unchanged afterwards (file checksum for SQLite and DuckDB, content fingerprint
for PostgreSQL). A second set sends writes straight to the read-only connection, bypassing the
validator, to show the connection refuses them on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentlib import ToolError
from agentlib.tools.sql import SQLDatabase
from tests.tools._sql_databases import (
    content_fingerprint,
    database_file,
    duckdb_music_store,
    file_checksum,
    postgres_music_store,
    sqlite_music_store,
)

Opener = Callable[[str], tuple[SQLDatabase, str]]


@pytest.fixture(scope="module")
def open_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Opener]:
    """Open (once per module) the music store in a dialect: `(SQLDatabase, url)`."""
    opened: dict[str, tuple[SQLDatabase, str]] = {}

    def open_one(dialect: str) -> tuple[SQLDatabase, str]:
        if dialect not in opened:
            directory = tmp_path_factory.mktemp(dialect)
            if dialect == "sqlite":
                url = sqlite_music_store(directory)
            elif dialect == "duckdb":
                url = duckdb_music_store(directory)
            else:
                url = postgres_music_store(request.getfixturevalue("postgres"), "music_validate")
            opened[dialect] = (SQLDatabase(url, query_mode="both", timeout=5.0), url)
        return opened[dialect]

    yield open_one
    for database, _ in opened.values():
        database.close()


def _fingerprint(url: str) -> str:
    path = database_file(url)
    return file_checksum(path) if path is not None else content_fingerprint(url)


def _params(cases: dict[str, list[tuple[str, str]]]) -> list[object]:
    params: list[object] = []
    for dialect, items in cases.items():
        marks = [pytest.mark.postgres] if dialect == "postgresql" else []
        for index, (sql, expected) in enumerate(items):
            params.append(
                pytest.param(dialect, sql, expected, marks=marks, id=f"{dialect}-{index}")
            )
    return params


_PORTABLE_SELECTS = [
    "SELECT name FROM artists ORDER BY name LIMIT 5",
    "SELECT ar.name, COUNT(*) AS n FROM artists ar JOIN albums al ON al.artist_id = ar.artist_id "
    "JOIN tracks t ON t.album_id = al.album_id GROUP BY ar.name ORDER BY n DESC, ar.name",
    "SELECT title FROM albums WHERE artist_id IN "
    "(SELECT artist_id FROM artists WHERE country = 'Japan')",
    "SELECT c.first_name FROM customers c WHERE EXISTS "
    "(SELECT 1 FROM invoices i WHERE i.customer_id = c.customer_id AND i.total > 5)",
    "SELECT name, (SELECT COUNT(*) FROM albums a WHERE a.artist_id = artists.artist_id) AS albums "
    "FROM artists",
    "SELECT name, album_id, ROW_NUMBER() OVER (PARTITION BY album_id ORDER BY milliseconds DESC) "
    "AS position FROM tracks",
    "SELECT invoice_id, total, SUM(total) OVER (ORDER BY invoice_date, invoice_id) AS running, "
    "LAG(total) OVER (ORDER BY invoice_date, invoice_id) AS previous, "
    "RANK() OVER (ORDER BY total DESC) AS total_rank FROM invoices",
    "WITH spent AS (SELECT customer_id, SUM(total) AS amount FROM invoices GROUP BY customer_id) "
    "SELECT c.last_name, s.amount FROM spent s JOIN customers c "
    "ON c.customer_id = s.customer_id ORDER BY s.amount DESC LIMIT 3",
    "WITH RECURSIVE chain(employee_id, depth) AS (SELECT employee_id, 0 FROM employees "
    "WHERE reports_to IS NULL UNION ALL SELECT e.employee_id, chain.depth + 1 FROM employees e "
    "JOIN chain ON e.reports_to = chain.employee_id) SELECT depth, COUNT(*) FROM chain "
    "GROUP BY depth",
    "SELECT country FROM customers UNION SELECT country FROM artists",
    "SELECT country FROM customers INTERSECT SELECT country FROM artists",
    "SELECT country FROM customers EXCEPT SELECT country FROM artists",
    "SELECT billing_country, COUNT(*) AS n, AVG(total) AS average FROM invoices "
    "GROUP BY billing_country HAVING COUNT(*) > 10",
    "SELECT c.customer_id, COALESCE(SUM(i.total), 0) AS spent, CASE WHEN COUNT(i.invoice_id) = 0 "
    "THEN 'none' ELSE 'some' END AS buyer FROM customers c LEFT JOIN invoices i "
    "ON i.customer_id = c.customer_id GROUP BY c.customer_id",
    "SELECT DISTINCT UPPER(SUBSTR(name, 1, 1)) AS initial FROM tracks WHERE name LIKE 'S%' "
    "AND milliseconds BETWEEN 100000 AND 300000",
    "SELECT e.first_name, m.first_name AS manager FROM employees e LEFT JOIN employees m "
    "ON e.reports_to = m.employee_id",
    "SELECT AVG(n) FROM (SELECT album_id, COUNT(*) AS n FROM tracks GROUP BY album_id) AS counts",
    "SELECT ROUND(AVG(milliseconds) / 60000.0, 2) AS minutes, MAX(LENGTH(name)) FROM tracks",
    "SELECT * FROM genres",
    "-- how many tracks?\nselect count(*) /* all of them */ from TRACKS",
    "SELECT COUNT(*) FROM employees WHERE reports_to IS NULL",
    "SELECT name FROM tracks ORDER BY milliseconds DESC LIMIT 100000",
]
_ACCEPTED = {
    "sqlite": [
        *_PORTABLE_SELECTS,
        "SELECT strftime('%Y', invoice_date) AS year, SUM(total) FROM invoices GROUP BY year",
        "SELECT * FROM main.genres",
        "SELECT group_concat(name, ', ') FROM genres",
    ],
    "duckdb": [
        *_PORTABLE_SELECTS,
        "SELECT EXTRACT(YEAR FROM invoice_date) AS year, SUM(total) FROM invoices GROUP BY 1",
        "SELECT * FROM main.genres",
        "SELECT string_agg(name, ', ') FROM genres",
    ],
    "postgresql": [
        *_PORTABLE_SELECTS,
        "SELECT EXTRACT(YEAR FROM invoice_date) AS year, SUM(total) FROM invoices GROUP BY 1",
        "SELECT date_trunc('month', invoice_date) AS month, COUNT(*) FROM invoices GROUP BY 1",
        "SELECT * FROM public.genres",
        "SELECT string_agg(name, ', ' ORDER BY name) FROM genres",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM invoices",
        "SELECT name FROM tracks FETCH FIRST 3 ROWS ONLY",
    ],
}


@pytest.mark.parametrize(
    ("dialect", "sql", "unused"),
    _params({d: [(sql, "") for sql in items] for d, items in _ACCEPTED.items()}),
)
def test_legitimate_select_runs(open_database: Opener, dialect: str, sql: str, unused: str) -> None:
    database, _ = open_database(dialect)
    result = database.run_sql(sql)
    assert result.columns
    assert result.row_count <= database.row_limit
    assert "LIMIT" in result.sql.upper()


_MUTATIONS = [
    ("DELETE FROM tracks", "only SELECT queries are allowed"),
    ("UPDATE tracks SET unit_price = 0", "only SELECT queries are allowed"),
    ("INSERT INTO genres (genre_id, name) VALUES (99, 'Polka')", "only SELECT"),
    ("DROP TABLE tracks", "only SELECT queries are allowed"),
    ("CREATE TABLE stolen (a INTEGER)", "only SELECT queries are allowed"),
    ("ALTER TABLE tracks ADD COLUMN rating INTEGER", "only SELECT queries are allowed"),
    ("SELECT 1; DROP TABLE tracks", "exactly one statement"),
    ("SELECT * FROM tracks; SELECT * FROM genres", "exactly one statement"),
    ("SELECT * INTO stolen FROM tracks", "INTO is not allowed"),
    ("SELECT * FROM secrets", "unknown table 'secrets'"),
    ("SELECT * FROM track", "did you mean 'tracks'"),
    ("SELECT rating FROM tracks", "Column 'rating' could not be resolved"),
    ("SELECT t.bogus FROM tracks t", "Unknown column: bogus"),
    ("", "the query is empty"),
    ("SELEC name FROM tracks", "not valid"),
    ("BEGIN", "only SELECT queries are allowed"),
    ("COMMIT", "only SELECT queries are allowed"),
    ("EXPLAIN SELECT * FROM tracks", "only SELECT queries are allowed"),
    ("SELECT * FROM information_schema.tables", "outside the connected schema"),
]
_REJECTED = {
    "sqlite": [
        *_MUTATIONS,
        ("ATTACH DATABASE 'stolen.db' AS stolen", "only SELECT queries are allowed"),
        ("DETACH DATABASE main", "only SELECT queries are allowed"),
        ("PRAGMA writable_schema = 1", "only SELECT queries are allowed"),
        ("PRAGMA query_only = 0", "only SELECT queries are allowed"),
        ("VACUUM INTO 'copy.db'", "only SELECT queries are allowed"),
        ("REPLACE INTO genres (genre_id, name) VALUES (1, 'x')", "only SELECT"),
        ("SELECT load_extension('evil')", "load_extension() is not allowed"),
        ("SELECT writefile('out.txt', name) FROM tracks", "writefile() is not allowed"),
        ("SELECT readfile('/etc/passwd')", "readfile() is not allowed"),
        ("SELECT * FROM sqlite_master", "unknown table 'sqlite_master'"),
        ("SELECT * FROM temp.sqlite_temp_master", "outside the connected schema"),
        ("SELECT * FROM json_each('[1]')", "table functions"),
        ("SELECT * FROM tracks WHERE track_id = ?", "bind parameters"),
        ("SELECT fts3_tokenizer('simple')", "fts3_tokenizer() is not allowed"),
        ("SELECT * FROM tracks, pragma_table_info('tracks')", "table functions"),
    ],
    "duckdb": [
        *_MUTATIONS,
        ("ATTACH 'stolen.duckdb' AS stolen", "only SELECT queries are allowed"),
        ("COPY tracks TO 'tracks.csv'", "only SELECT queries are allowed"),
        ("INSTALL httpfs", "only SELECT queries are allowed"),
        ("LOAD httpfs", "only SELECT queries are allowed"),
        ("EXPORT DATABASE 'dump'", "not valid"),
        ("SET enable_external_access = true", "only SELECT queries are allowed"),
        ("PRAGMA database_list", "only SELECT queries are allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "table functions"),
        ("SELECT * FROM 'tracks.csv'", "unknown table 'tracks.csv'"),
        ("SELECT * FROM glob('*')", "table functions"),
        ("SELECT * FROM duckdb_settings()", "table functions"),
        ("SELECT getenv('HOME')", "getenv() is not allowed"),
        ("SUMMARIZE tracks", "only SELECT queries are allowed"),
        ("CREATE MACRO twice(a) AS a * 2", "only SELECT queries are allowed"),
        ("CHECKPOINT", "only SELECT queries are allowed"),
        ("USE memory", "only SELECT queries are allowed"),
        ("WITH gone AS (DELETE FROM tracks RETURNING *) SELECT * FROM gone", "not"),
    ],
    "postgresql": [
        *_MUTATIONS,
        ("WITH gone AS (DELETE FROM tracks RETURNING *) SELECT * FROM gone", "is not allowed"),
        (
            "WITH moved AS (UPDATE tracks SET unit_price = 0 RETURNING *) SELECT 1",
            "is not allowed",
        ),
        ("SELECT * FROM tracks FOR UPDATE", "row locking"),
        ("COPY tracks TO '/tmp/agentlib-stolen.csv'", "only SELECT queries are allowed"),
        ("COPY (SELECT 1) TO PROGRAM 'id'", "only SELECT queries are allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not allowed"),
        ("SELECT pg_sleep(100)", "pg_sleep() is not allowed"),
        ("SELECT set_config('transaction_read_only', 'off', true)", "set_config() is not"),
        ("SELECT current_setting('data_directory')", "current_setting() is not allowed"),
        ("SELECT lo_import('/etc/passwd')", "lo_import() is not allowed"),
        ("SELECT nextval('tracks_seq')", "nextval() is not allowed"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend() is not allowed"),
        ("SELECT dblink('host=evil', 'SELECT 1')", "dblink() is not allowed"),
        ("SET statement_timeout = 0", "only SELECT queries are allowed"),
        ("SET TRANSACTION READ WRITE", "only SELECT queries are allowed"),
        ("CALL cleanup()", "only SELECT queries are allowed"),
        ("DO $$BEGIN DELETE FROM tracks; END$$", "only SELECT queries are allowed"),
        ("SELECT * FROM pg_catalog.pg_user", "outside the connected schema"),
        ("SELECT * FROM pg_shadow", "unknown table 'pg_shadow'"),
        ("LISTEN channel", "only SELECT queries are allowed"),
        ("NOTIFY channel", "only SELECT queries are allowed"),
        ("PREPARE sneaky AS DELETE FROM tracks", "only SELECT queries are allowed"),
        ("LOCK TABLE tracks", "only SELECT queries are allowed"),
        ("VACUUM", "only SELECT queries are allowed"),
        ("TRUNCATE tracks", "only SELECT queries are allowed"),
        ("GRANT ALL ON tracks TO PUBLIC", "only SELECT queries are allowed"),
        ("SELECT * FROM generate_series(1, 10)", "table functions"),
        ("SELECT * FROM tracks WHERE track_id = $1", "bind parameters"),
    ],
}


@pytest.mark.parametrize(("dialect", "sql", "message"), _params(_REJECTED))
def test_mutation_or_escape_is_refused_and_database_unchanged(
    open_database: Opener, dialect: str, sql: str, message: str, tmp_path: Path
) -> None:
    database, url = open_database(dialect)
    before = _fingerprint(url)
    with pytest.raises(ToolError) as refused:
        database.run_sql(sql)
    assert message.lower() in str(refused.value).lower()
    assert _fingerprint(url) == before


# Sent straight to the read-only connection: the validator is not involved.
_CONNECTION_WRITES = {
    "sqlite": [
        "DELETE FROM tracks",
        "UPDATE tracks SET unit_price = 0",
        "INSERT INTO genres (genre_id, name) VALUES (99, 'Polka')",
        "CREATE TABLE stolen (a INTEGER)",
        "CREATE TEMP TABLE stolen (a INTEGER)",
        "DROP TABLE tracks",
        "ATTACH DATABASE '{directory}/attached.db' AS stolen",
        "VACUUM INTO '{directory}/copy.db'",
        "PRAGMA writable_schema = 1",
        "PRAGMA query_only = 0",
        "SELECT load_extension('evil')",
    ],
    "duckdb": [
        "DELETE FROM tracks",
        "UPDATE tracks SET unit_price = 0",
        "CREATE TABLE stolen (a INTEGER)",
        "DROP TABLE tracks",
        "ATTACH '{directory}/attached.duckdb' AS stolen",
        "COPY tracks TO '{directory}/tracks.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
    "postgresql": [
        "DELETE FROM tracks",
        "UPDATE tracks SET unit_price = 0",
        "INSERT INTO genres (genre_id, name) VALUES (99, 'Polka')",
        "CREATE TABLE stolen (a INTEGER)",
        "DROP TABLE tracks",
        "SELECT * INTO stolen FROM tracks",
        "WITH gone AS (DELETE FROM tracks RETURNING *) SELECT * FROM gone",
        "SET TRANSACTION READ WRITE; DELETE FROM tracks",
        "SELECT set_config('transaction_read_only', 'off', true)",
    ],
}


@pytest.mark.parametrize(
    ("dialect", "sql", "unused"),
    _params({d: [(sql, "") for sql in items] for d, items in _CONNECTION_WRITES.items()}),
)
def test_read_only_connection_refuses_writes_without_the_validator(
    open_database: Opener, dialect: str, sql: str, unused: str, tmp_path: Path
) -> None:
    database, url = open_database(dialect)
    before = _fingerprint(url)
    with pytest.raises(ToolError, match="the database refused the query"):
        database.executor.execute(sql.format(directory=tmp_path), timeout=5.0, max_rows=10)
    assert _fingerprint(url) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "dialect", ["sqlite", "duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_limit_is_enforced(open_database: Opener, dialect: str) -> None:
    database, _ = open_database(dialect)
    limited = SQLDatabase(database.engine, row_limit=7, query_mode="sql")
    result = limited.run_sql("SELECT track_id FROM tracks LIMIT 100000")
    assert result.row_count == 7
    assert result.reached_row_limit
    assert limited.run_sql("SELECT track_id FROM tracks LIMIT 3").row_count == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "sqlite",
            "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
            "SELECT COUNT(*) FROM forever",
        ),
        # DuckDB keeps a recursive CTE's rows in memory: a cross join runs as long without
        # growing memory.
        (
            "duckdb",
            "SELECT COUNT(*) FROM tracks a, tracks b, tracks c, tracks d, tracks e, tracks f",
        ),
        pytest.param(
            "postgresql",
            "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
            "SELECT COUNT(*) FROM forever",
            marks=pytest.mark.postgres,
        ),
    ],
)
def test_runaway_query_is_stopped_by_the_timeout(
    open_database: Opener, dialect: str, sql: str
) -> None:
    database, _ = open_database(dialect)
    hurried = SQLDatabase(database.engine, timeout=0.5, query_mode="sql")
    with pytest.raises(ToolError, match=r"longer than the 0\.5 s timeout"):
        hurried.run_sql(sql)
    # The connection is usable afterwards.
    assert hurried.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]

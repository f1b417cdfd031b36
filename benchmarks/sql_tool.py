"""What the SQL tool's checks cost per query, on the music-store sample.

    python benchmarks/sql_tool.py [--runs 200]

1. `validate_sql` alone (sqlglot parse, statement/function/table/column checks, LIMIT) over
   eight SELECTs from simple to a recursive CTE, median per query.
2. A whole `run_sql` (validate + read-only guard + execute + fetch) on SQLite and DuckDB files,
   median per query, against the same query sent to a plain connection without any checks.
3. Compiling a structured query (SQLAlchemy Core + the same validator), median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from agentlib.tools.sql import SQLDatabase, create_music_store

QUERY = (
    "SELECT g.name, COUNT(*) AS n FROM tracks t JOIN genres g ON g.genre_id = t.genre_id "
    "GROUP BY g.name ORDER BY n DESC LIMIT 5"
)
SELECTS = [
    "SELECT name FROM artists ORDER BY name LIMIT 5",
    "SELECT * FROM genres",
    QUERY,
    "SELECT title FROM albums WHERE artist_id IN "
    "(SELECT artist_id FROM artists WHERE country = 'Japan')",
    "SELECT name, ROW_NUMBER() OVER (PARTITION BY album_id ORDER BY milliseconds DESC) AS n "
    "FROM tracks",
    "WITH spent AS (SELECT customer_id, SUM(total) AS amount FROM invoices GROUP BY customer_id) "
    "SELECT c.last_name, s.amount FROM spent s JOIN customers c "
    "ON c.customer_id = s.customer_id ORDER BY s.amount DESC LIMIT 3",
    "WITH RECURSIVE chain(employee_id, depth) AS (SELECT employee_id, 0 FROM employees "
    "WHERE reports_to IS NULL UNION ALL SELECT e.employee_id, chain.depth + 1 FROM employees e "
    "JOIN chain ON e.reports_to = chain.employee_id) SELECT depth, COUNT(*) FROM chain "
    "GROUP BY depth",
    "SELECT country FROM customers UNION SELECT country FROM artists",
]
STRUCTURED = {
    "table": "tracks",
    "joins": [{"on": "tracks.genre_id = genres.genre_id"}],
    "select": [{"column": "genres.name"}, {"column": "*", "aggregate": "count"}],
    "order_by": [{"column": "*", "aggregate": "count", "direction": "desc"}],
    "limit": 5,
}


def median_ms(function: Callable[[], object], runs: int) -> float:
    function()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory() as directory:
        sqlite_url = f"sqlite:///{Path(directory) / 'music.db'}"
        create_music_store(Path(directory) / "music.db")
        duckdb_url = f"duckdb:///{Path(directory) / 'music.duckdb'}"
        engine = sa.create_engine(duckdb_url)
        create_music_store(engine)
        engine.dispose()

        sqlite_db = SQLDatabase(sqlite_url, query_mode="both")
        per_query = [median_ms(lambda q=q: sqlite_db.validate(q), runs) for q in SELECTS]
        print(
            f"validate_sql, median per query over {len(per_query)} SELECTs: "
            f"{statistics.median(per_query):.2f} ms (max {max(per_query):.2f} ms)"
        )
        print(
            f"structured query compile + validate: "
            f"{median_ms(lambda: sqlite_db.compile(STRUCTURED), runs):.2f} ms"
        )
        for name, url, db in (
            ("SQLite", sqlite_url, sqlite_db),
            ("DuckDB", duckdb_url, None),
        ):
            database = db or SQLDatabase(url, query_mode="sql")
            checked = median_ms(lambda d=database: d.run_sql(QUERY), runs)
            raw_engine = database.engine

            def plain(e: sa.Engine = raw_engine) -> object:
                with e.connect() as connection:
                    return connection.exec_driver_sql(QUERY).all()

            baseline = median_ms(plain, runs)
            print(
                f"{name}: run_sql {checked:.2f} ms vs. plain execute {baseline:.2f} ms "
                f"(checks and guard: +{checked - baseline:.2f} ms)"
            )
            database.close()


if __name__ == "__main__":
    main()

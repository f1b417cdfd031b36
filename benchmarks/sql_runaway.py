"""How long runaway queries run past the SQL tool's timeout, per database and runaway class.

    python benchmarks/sql_runaway.py [--timeout 2] [--runs 3]

For SQLite and DuckDB files (and PostgreSQL, when Debian's server binaries are installed, on a
throwaway cluster from `tests/_postgres.py`), each runaway class is sent through `run_sql`
`--runs` times; the table gives the slowest wall time from the call to the `ToolError`, the
overshoot past the timeout, how the query was stopped, and the peak resident memory of the
worker processes (SQLite, DuckDB; `RUSAGE_CHILDREN` counts finished workers, so it is read
after the database is closed).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from agentlib import ToolError
from agentlib.tools.sql import SQLDatabase, create_music_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUNAWAYS = {
    "recursive CTE": "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
    "SELECT COUNT(*) FROM forever",
    "cartesian 6-way": "SELECT COUNT(*) FROM tracks a, tracks b, tracks c, tracks d, tracks e, "
    "tracks f",
    "heavy function per row": {
        "sqlite": "SELECT SUM(length(printf('%.*c', 1000000 + a.track_id, b.name))) "
        "FROM tracks a, tracks b, tracks c",
        "other": "SELECT SUM(length(repeat(b.name, 100000 + a.track_id))) "
        "FROM tracks a, tracks b, tracks c",
    },
    "one huge call": {
        "sqlite": "SELECT length(printf('%.*c', 900000000, 'x'))",
        "other": "SELECT length(repeat('x', 900000000))",
    },
}


def _sql(kind: str, backend: str) -> str:
    query = RUNAWAYS[kind]
    if isinstance(query, str):
        return query
    return query["sqlite" if backend == "sqlite" else "other"]


@contextmanager
def databases(directory: Path) -> Iterator[list[tuple[str, str]]]:
    create_music_store(directory / "music.db")
    engine = sa.create_engine(f"duckdb:///{directory / 'music.duckdb'}")
    create_music_store(engine)
    engine.dispose()
    urls = [("SQLite", f"sqlite:///{directory / 'music.db'}")]
    urls.append(("DuckDB", f"duckdb:///{directory / 'music.duckdb'}"))
    from tests._postgres import postgres_available, postgres_server

    if not postgres_available():
        yield urls
        return
    with postgres_server() as server:
        url = server.create_database("music_runaway")
        create_music_store(url)
        yield [*urls, ("PostgreSQL", url)]


def _stopped_how(message: str) -> str:
    if "worker process was killed" in message:
        return "timeout: worker killed"
    if "timeout" in message:
        return "timeout: engine stopped it"
    for marker, label in (
        ("too big", "length limit"),
        ("Out of Memory", "memory limit"),
        ("memory limit", "worker died (memory)"),
    ):
        if marker in message:
            return label
    return message[:40]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    print(f"timeout {arguments.timeout:g} s, slowest of {arguments.runs} runs\n")
    print("| database | runaway | slowest wall time | past the timeout | stopped by |")
    print("| --- | --- | --- | --- | --- |")
    peaks: list[str] = []
    with tempfile.TemporaryDirectory() as directory, databases(Path(directory)) as urls:
        for label, url in urls:
            database = SQLDatabase(url, query_mode="sql", timeout=arguments.timeout)
            time.sleep(0.5)  # the first worker starts in the background
            for kind in RUNAWAYS:
                sql = _sql(kind, database.backend)
                slowest, how = 0.0, ""
                for _ in range(arguments.runs):
                    start = time.perf_counter()
                    try:
                        database.run_sql(sql)
                        how = "finished"
                    except ToolError as error:
                        how = _stopped_how(str(error))
                    slowest = max(slowest, time.perf_counter() - start)
                    time.sleep(0.3)  # let a replacement worker start, as between model steps
                print(
                    f"| {label} | {kind} | {slowest:.2f} s | "
                    f"{max(0.0, slowest - arguments.timeout):+.2f} s | {how} |"
                )
            database.close()
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if database.backend != "postgresql":
                peaks.append(f"{label}: {peak:.0f} MiB")
    print(f"\npeak resident memory of any worker process so far: {'; '.join(peaks)}")


if __name__ == "__main__":
    main()

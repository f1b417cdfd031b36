"""The music-store sample database in each dialect, and a fingerprint of a database's content.

Shared by the SQL tool tests. Fingerprints are taken through a separate, ordinary connection,
so they observe what the read-only tool could not have changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

from agentlib.tools.sql import create_music_store
from tests._postgres import PostgresServer

DIALECTS = ("sqlite", "duckdb", "postgresql")


def sqlite_music_store(directory: Path) -> str:
    path = directory / "music.db"
    create_music_store(path)
    return f"sqlite:///{path}"


def duckdb_music_store(directory: Path) -> str:
    url = f"duckdb:///{directory / 'music.duckdb'}"
    engine = sa.create_engine(url)
    create_music_store(engine)
    engine.dispose()
    return url


def postgres_music_store(server: PostgresServer, name: str = "music_store") -> str:
    url = server.create_database(name)
    create_music_store(url)
    return url


def database_file(url: str) -> Path | None:
    """The file behind a SQLite or DuckDB URL."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" or parsed.database is None:
        return None
    return Path(parsed.database)


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_fingerprint(url: str) -> str:
    """A hash of every user table's name and rows, read in a stable order."""
    engine = sa.create_engine(url)
    digest = hashlib.sha256()
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "duckdb":
                names = [
                    row[0]
                    for row in connection.exec_driver_sql(
                        "SELECT table_name FROM information_schema.tables ORDER BY 1"
                    )
                ]
            else:
                names = sorted(sa.inspect(connection).get_table_names())
            for name in names:
                digest.update(name.encode())
                rows = connection.exec_driver_sql(f'SELECT * FROM "{name}" ORDER BY 1').all()
                for row in rows:
                    digest.update(repr(tuple(row)).encode())
    finally:
        engine.dispose()
    return digest.hexdigest()

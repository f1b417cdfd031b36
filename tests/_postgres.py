"""A throwaway PostgreSQL server for tests: initdb in a temp dir, loopback only, removed after.

PostgreSQL refuses to run as root, so when the tests run as root the cluster directory is owned
by the `postgres` system user and the server commands run through `runuser -u postgres`.
The server listens on 127.0.0.1 on a free port, with its Unix socket inside the cluster
directory (nothing under /var/run is needed) and `trust` authentication for loopback.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["POSTGRES_BIN", "PostgresServer", "postgres_available", "postgres_server"]

POSTGRES_BIN = Path(os.environ.get("AGENTLIB_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
"""Where initdb, pg_ctl and postgres live (Debian's postgresql-15 package)."""


def postgres_available() -> bool:
    """Whether the server binaries are installed."""
    return all((POSTGRES_BIN / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running server: connect as the `postgres` superuser without a password."""

    port: int
    directory: Path

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for `database` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _runner() -> tuple[list[str], int | None]:
    """The command prefix that runs a server command as a non-root user, and that user's uid."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError as exc:
        raise RuntimeError(
            "running as root, and there is no 'postgres' user to run the server as: install "
            "Debian's postgresql package (it creates the user) or run the tests as another user"
        ) from exc
    return ["runuser", "-u", "postgres", "--"], uid


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL cluster for the duration of the block, then stop and delete it.

    Raises:
        RuntimeError: The binaries are missing or the server did not start (the log is in the
            message).
    """
    if not postgres_available():
        raise RuntimeError(f"PostgreSQL binaries not found in {POSTGRES_BIN}")
    prefix, uid = _runner()
    directory = Path(tempfile.mkdtemp(prefix="agentlib-pg-"))
    data = directory / "data"
    log = directory / "server.log"
    try:
        if uid is not None:
            os.chown(directory, uid, -1)
        _run(
            [
                *prefix,
                str(POSTGRES_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        port = _free_port()
        # max_connections: the DBOS test runs 4 worker processes of about 7 connections each
        # (DBOS's pool and listener, the liveness lock, the tool's datasource) at once.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={directory} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
            "-c shared_buffers=16MB -c max_connections=100"
        )
        try:
            _run(
                [
                    *prefix,
                    str(POSTGRES_BIN / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
        except RuntimeError as exc:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{exc}\nserver log:\n{server_log}") from exc
        try:
            yield PostgresServer(port=port, directory=directory)
        finally:
            _run(
                [*prefix, str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)

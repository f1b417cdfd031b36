"""Shared fixtures. Family-specific fixtures live next to their tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests._postgres import POSTGRES_BIN, PostgresServer, postgres_available, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL 15 server on 127.0.0.1 for the whole session.

    Skips only when the server binaries are absent and `CI` is not set; under CI a missing
    server is a failure, so PostgreSQL tests are never silently skipped there.
    """
    if not postgres_available():
        message = (
            f"PostgreSQL server binaries not found in {POSTGRES_BIN} "
            "(apt-get install postgresql-15, or set AGENTLIB_POSTGRES_BIN)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(message)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://…`) to an empty database; create tables freely."""
    return postgres.create_database("agentlib_test")

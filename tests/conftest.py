"""Shared fixtures. Family-specific fixtures live next to their tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

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


# --- CI: every real-component test runs, and the summary says how many of each kind did ---

REAL_COMPONENTS = ("postgres", "browser", "slow")
"""The markers of tests that need a real component (the embedded model is `slow`)."""


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _kind(item: pytest.Item) -> str:
    return next((name for name in REAL_COMPONENTS if item.get_closest_marker(name)), "other")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under `CI=true`, a skipped real-component test (or any skip for a missing import) fails.

    CI installs every extra and every system package, so such a skip can only mean that the
    installation is incomplete, and a green run would hide that a whole kind of test never ran.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    report.user_properties.append(("kind", _kind(item)))
    if not (report.skipped and _under_ci()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if _kind(item) != "other" or reason.startswith("could not import"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI ({reason}): CI must run every real-component test "
            f"({', '.join(REAL_COMPONENTS)}) and have every extra installed"
        )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print how many tests of each kind passed, failed and were skipped."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome == "passed":
                continue
            kind = dict(getattr(report, "user_properties", ())).get("kind")
            if kind is None:
                continue
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += 1
    if not counts:
        return
    terminalreporter.section("tests by kind")
    for kind in (*REAL_COMPONENTS, "other"):
        numbers = counts.get(kind, {})
        described = ", ".join(f"{count} {name}" for name, count in sorted(numbers.items()))
        terminalreporter.write_line(f"{kind}: {described or 'none ran'}")

"""The `postgres_url` fixture skips without the server binaries locally, and fails under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
def test_needs_postgres(postgres_url):
    assert postgres_url.startswith("postgresql+psycopg://")
"""


def _run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    environment = {**os.environ, "AGENTLIB_POSTGRES_BIN": str(tmp_path / "no-such-dir")}
    environment.pop("CI", None)
    if ci is not None:
        environment["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-rs", str(probe)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("ci", "outcome"), [(None, "1 skipped"), ("true", "1 error")])
def test_missing_server_skips_locally_and_fails_under_ci(
    tmp_path: Path, ci: str | None, outcome: str
) -> None:
    result = _run_probe(tmp_path, ci)
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "PostgreSQL server binaries not found" in result.stdout
    if ci:
        assert "CI must run the PostgreSQL tests" in result.stdout
        assert result.returncode != 0

"""The CI rules in tests/conftest.py: a skipped real-component test fails under `CI=true`, and
the summary counts the tests of each kind. Checked by running pytest on a probe file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import pytest

@pytest.mark.postgres
def test_needs_a_server():
    pytest.skip("no server here")

@pytest.mark.slow
def test_runs_the_model():
    pass

def test_needs_a_package():
    pytest.importorskip("agentlib_test_no_such_package")

def test_skips_for_another_reason():
    pytest.skip("not on this platform")

@pytest.mark.xfail(reason="known", strict=True)
def test_known_failure():
    raise AssertionError
"""


def _run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        environment["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-rA", str(probe)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_outside_ci_skips_stay_skips(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_real_component_or_import_skip_fails(tmp_path: Path, ci: str) -> None:
    result = _run_probe(tmp_path, ci)
    assert result.returncode == 1, result.stdout
    assert "2 failed, 1 passed, 1 skipped, 1 xfailed" in result.stdout
    assert "skipped under CI (no server here)" in result.stdout
    assert "skipped under CI (could not import 'agentlib_test_no_such_package'" in result.stdout
    assert "not on this platform" in result.stdout


def test_the_summary_counts_each_kind(tmp_path: Path) -> None:
    output = _run_probe(tmp_path, None).stdout
    assert "tests by kind" in output
    assert "postgres: 1 skipped" in output
    assert "browser: none ran" in output
    assert "slow: 1 passed" in output
    assert "other: 1 passed, 2 skipped" in output or "other: 2 skipped" in output

"""Fixtures shared by the tool families' tests; the rest live next to their tests.

The Python sandbox's (`test_python*.py`): one real pool (a template process) per test module,
and sessions under the module's own limits, which a module sets by overriding
`sandbox_limits`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agentlib.tools.python import PythonSession, SandboxLimits, SandboxPool


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    """A real sandbox pool for the test module, closed (template and workers gone) after it."""
    sandbox_pool = SandboxPool()
    yield sandbox_pool
    sandbox_pool.close()


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    """The limits of the `session` and `bare` sessions; a test module overrides this."""
    return SandboxLimits()


@pytest.fixture(params=["guarded", "bare"])
async def session(
    request: pytest.FixtureRequest, pool: SandboxPool, sandbox_limits: SandboxLimits
) -> AsyncIterator[PythonSession]:
    """Each test twice: with the default guards, and bare, so the OS layers hold on their own."""
    if request.param == "guarded":
        python_session = PythonSession(pool, limits=sandbox_limits)
    else:
        python_session = PythonSession(
            pool, limits=sandbox_limits, allowed_imports=None, audit_hook=False
        )
    yield python_session
    await python_session.aclose()


@pytest.fixture
async def bare(pool: SandboxPool, sandbox_limits: SandboxLimits) -> AsyncIterator[PythonSession]:
    """A session without the import allow-list and the audit hook (as if removed from inside)."""
    python_session = PythonSession(
        pool, limits=sandbox_limits, allowed_imports=None, audit_hook=False
    )
    yield python_session
    await python_session.aclose()

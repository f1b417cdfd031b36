"""The Python interpreter tool: state, results, errors, per-run sessions, worker replacement.

Every test runs code in the real sandbox (a worker forked from a real template process).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final
from agentlib.tools.python import (
    ExecutionResult,
    PythonInterpreter,
    PythonSession,
    SandboxLimits,
    SandboxPool,
)
from tests.tools._proc import children_of, uid_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

FAST = SandboxLimits(timeout=2, cpu_seconds=2)


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state and "(dead)" not in state


@pytest.fixture
async def session(pool: SandboxPool) -> AsyncIterator[PythonSession]:  # pool: tools/conftest.py
    python_session = PythonSession(pool, limits=FAST)
    yield python_session
    await python_session.aclose()


async def test_variables_functions_and_imports_persist_between_calls(
    session: PythonSession,
) -> None:
    await session.arun("import math\ndef area(r):\n    return math.pi * r ** 2\nradius = 2")
    result = await session.arun("round(area(radius), 3)")
    assert result == ExecutionResult(value="12.566")


async def test_print_output_and_last_expression_value_are_both_returned(
    session: PythonSession,
) -> None:
    result = await session.arun("x = 17 * 23\nprint('computing')\nx")
    assert result.stdout == "computing\n"
    assert result.value == "391"
    assert result.render() == "Printed:\ncomputing\nResult: 391"


async def test_a_none_value_and_a_statement_give_no_result(session: PythonSession) -> None:
    assert (await session.arun("None")).value is None
    assert (await session.arun("y = 1")).render().startswith("Done: no output")


async def test_error_gives_a_short_traceback_of_the_sessions_own_code(
    session: PythonSession,
) -> None:
    await session.arun("def divide(a, b):\n    return a / b")
    result = await session.arun("divide(1, 0)")
    assert result.error is not None
    assert result.error.startswith("Traceback (most recent call last):")
    assert "return a / b" in result.error
    assert result.error.endswith("ZeroDivisionError: division by zero")
    assert "_sandbox_worker" not in result.error
    assert not result.state_lost
    assert (await session.arun("divide(6, 3)")).value == "2.0"


async def test_syntax_error_is_reported_without_losing_state(session: PythonSession) -> None:
    await session.arun("kept = 5")
    result = await session.arun("def broken(:\n    pass")
    assert result.error is not None and "SyntaxError" in result.error
    assert (await session.arun("kept")).value == "5"


async def test_stderr_is_captured_separately(pool: SandboxPool) -> None:
    python_session = PythonSession(pool, limits=FAST, allowed_imports={"sys"})
    try:
        result = await python_session.arun(
            "import sys\nprint('out')\nprint('oops', file=sys.stderr)"
        )
    finally:
        await python_session.aclose()
    assert (result.stdout, result.stderr) == ("out\n", "oops\n")
    assert result.render() == "Printed:\nout\nStderr:\noops"


async def test_output_beyond_the_cap_is_cut_with_a_visible_marker(pool: SandboxPool) -> None:
    limits = SandboxLimits(timeout=5, max_output_chars=100, max_value_chars=50)
    python_session = PythonSession(pool, limits=limits)
    try:
        result = await python_session.arun("print('x' * 5000)\n'y' * 5000")
    finally:
        await python_session.aclose()
    assert result.stdout.startswith("x" * 100)
    assert result.stdout.endswith("[output truncated: showing 100 of 5001 characters]")
    assert result.value is not None and "truncated: showing 50 of 5002 characters" in result.value


async def test_import_allow_list_refuses_unlisted_modules(session: PythonSession) -> None:
    refused = await session.arun("import os")
    assert refused.error is not None
    assert "import of 'os' is not allowed in this sandbox" in refused.error
    allowed = await session.arun("import statistics\nstatistics.mean([1, 2, 3, 4])")
    assert allowed.value == "2.5"


async def test_numpy_and_pandas_run_when_installed(session: PythonSession) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("pandas")
    result = await session.arun(
        "import numpy as np, pandas as pd\n"
        "frame = pd.DataFrame({'a': np.arange(4)})\n"
        "int(frame['a'].sum())"
    )
    assert result.value == "6"


async def test_sessions_from_for_run_do_not_share_state(pool: SandboxPool) -> None:
    interpreter = PythonInterpreter(limits=FAST, pool=pool)
    first, second = interpreter.for_run(), interpreter.for_run()
    try:
        await first.session.arun("secret = 42")
        assert (await first.session.arun("secret")).value == "42"
        leaked = await second.session.arun("secret")
        assert leaked.error is not None and "NameError" in leaked.error
        assert first.session.worker_pid != second.session.worker_pid
    finally:
        await first.aclose()
        await second.aclose()
        await interpreter.aclose()


async def test_worker_killed_from_outside_is_replaced_and_the_next_call_says_so(
    session: PythonSession,
) -> None:
    await session.arun("value = 1")
    old_pid = session.worker_pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_alive(old_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    result = await session.arun("'fresh'")
    assert result.state_lost and result.value == "'fresh'"
    assert result.render().startswith("Note: the previous Python worker had stopped")
    assert session.worker_pid != old_pid
    assert not process_alive(old_pid)


async def test_crash_inside_the_worker_is_reported_and_the_session_goes_on(
    pool: SandboxPool,
) -> None:
    python_session = PythonSession(pool, limits=FAST, allowed_imports=None, audit_hook=False)
    try:
        await python_session.arun("before = 1")
        crashed_pid = python_session.worker_pid
        result = await python_session.arun("import ctypes\nctypes.string_at(0)")
        assert result.state_lost
        assert result.error is not None and "the Python worker stopped" in result.error
        assert "session state was lost" in result.error
        after = await python_session.arun("'before' in dir()")
        assert after.value == "False"
        assert crashed_pid is not None and not process_alive(crashed_pid)
    finally:
        await python_session.aclose()


async def test_timeout_kills_the_worker_and_the_session_continues(pool: SandboxPool) -> None:
    python_session = PythonSession(pool, limits=SandboxLimits(timeout=1, cpu_seconds=5))
    try:
        await python_session.arun("counter = 0")
        stuck_pid = python_session.worker_pid
        result = await python_session.arun("while True:\n    counter += 1")
        assert result.error is not None
        assert result.error.startswith("timed out after 1 s; session state was lost")
        assert stuck_pid is not None and not process_alive(stuck_pid)
        follow_up = await python_session.arun("'counter' in dir()")
        assert follow_up.value == "False" and not follow_up.state_lost
    finally:
        await python_session.aclose()


async def test_cpu_limit_interrupts_the_call_but_keeps_the_session(pool: SandboxPool) -> None:
    python_session = PythonSession(pool, limits=SandboxLimits(timeout=10, cpu_seconds=1))
    try:
        await python_session.arun("kept = 'still here'")
        result = await python_session.arun("while True:\n    pass")
        assert result.error is not None and "CPU time limit exceeded" in result.error
        assert not result.state_lost
        assert (await python_session.arun("kept")).value == "'still here'"
    finally:
        await python_session.aclose()


async def test_close_leaves_no_processes_and_no_working_directory(
    pool: SandboxPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    python_session = PythonSession(pool, limits=FAST)
    await python_session.arun("open('notes.txt', 'w').write('hello')")
    worker_pid = python_session.worker_pid
    assert worker_pid is not None and process_alive(worker_pid)
    assert list(tmp_path.iterdir()) != []
    await python_session.aclose()
    assert not process_alive(worker_pid)
    assert list(tmp_path.iterdir()) == []
    template_pid = pool.template_pid
    assert template_pid is not None and worker_pid not in children_of(template_pid)


async def test_closed_session_refuses_calls(pool: SandboxPool) -> None:
    from agentlib import ToolError

    python_session = PythonSession(pool, limits=FAST)
    await python_session.aclose()
    with pytest.raises(ToolError, match="session is closed"):
        await python_session.arun("1")


def test_closing_the_pool_stops_the_template_and_every_worker() -> None:
    own_pool = SandboxPool(preload=["math"])
    sessions = [PythonSession(own_pool, limits=FAST) for _ in range(2)]
    for python_session in sessions:
        assert python_session.run("1 + 1").value == "2"
    worker_pids = [python_session.worker_pid for python_session in sessions]
    template_pid = own_pool.template_pid
    assert template_pid is not None
    children = children_of(template_pid)  # the two workers and the spare forked ahead
    assert set(worker_pids) <= set(children)
    own_pool.close()
    assert not process_alive(template_pid)
    assert not any(process_alive(pid) for pid in children)
    for python_session in sessions:
        python_session.close()


async def test_protections_in_force_are_reported(session: PythonSession) -> None:
    await session.arun("1")
    names = set(session.protections)
    assert {"limits", "landlock", "seccomp", "python"} <= names
    if os.geteuid() == 0:
        assert {"namespaces", "filesystem", "identity"} <= names
        assert session.missing_protections == {}


def test_tool_description_and_schema_speak_to_a_small_model() -> None:
    interpreter = PythonInterpreter()
    (python_tool,) = interpreter.tools
    assert python_tool.name == "python"
    assert python_tool.description.startswith(
        "Run Python code and return what it prints and the value of its last line."
    )
    assert python_tool.parameters == {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python source code to run, for example `17 * 23` or "
                "`print(sum(range(10)))`.",
            }
        },
        "required": ["code"],
        "additionalProperties": False,
    }


async def test_agent_run_keeps_state_between_two_python_calls(pool: SandboxPool) -> None:
    model = ScriptedModel(
        [
            call("python", "store the numbers", code="numbers = [17, 23]"),
            call("python", "multiply them", code="numbers[0] * numbers[1]"),
            final("391"),
        ]
    )
    interpreter = PythonInterpreter(limits=FAST, pool=pool)
    result = await Agent(model, tools=[interpreter]).arun("What is 17 * 23?")
    assert result.ok and result.output == "391"
    first, second = (step.observations[0] for step in result.steps[:2])
    assert not first.is_error and first.content.startswith("Done")
    assert second.content == "Result: 391"
    # The run used its own session, which the agent closed; the interpreter's own is unused.
    assert interpreter.session.worker_pid is None
    template_pid = pool.template_pid
    assert template_pid is not None
    # Workers run as a sandbox uid; spares stay root until handed a session.
    assert [pid for pid in children_of(template_pid) if uid_of(pid) >= 1_500_000_000] == []
    await interpreter.aclose()


def test_the_tool_keeps_state_across_synchronous_calls_on_fresh_event_loops(
    pool: SandboxPool,
) -> None:
    interpreter = PythonInterpreter(limits=FAST, pool=pool)
    (python_tool,) = interpreter.tools
    try:
        assert python_tool.call({"code": "answer = 17 * 23"}).startswith("Done")
        assert python_tool.call({"code": "answer"}) == "Result: 391"
    finally:
        interpreter.close()
    assert interpreter.session.worker_pid is None


def test_a_missing_template_interpreter_is_a_configuration_error(tmp_path: Path) -> None:
    from agentlib import ConfigurationError

    broken_pool = SandboxPool(python=str(tmp_path / "no-python"))
    python_session = PythonSession(broken_pool, limits=FAST)
    with pytest.raises(ConfigurationError, match="cannot start the sandbox template"):
        python_session.run("1")
    python_session.close()
    broken_pool.close()


async def test_concurrent_calls_on_one_session_run_one_after_the_other(
    session: PythonSession,
) -> None:
    await session.arun("log = []")
    first, second = await asyncio.gather(
        session.arun("log.append('a')\nlen(log)"), session.arun("log.append('b')\nlen(log)")
    )
    assert sorted([first.value, second.value]) == ["1", "2"]
    assert (await session.arun("sorted(log)")).value == "['a', 'b']"


async def test_cancelling_a_call_kills_its_worker(session: PythonSession) -> None:
    await session.arun("1")
    worker_pid = session.worker_pid
    assert worker_pid is not None
    call_task = asyncio.create_task(session.arun("while True:\n    pass"))
    await asyncio.sleep(0.3)
    call_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call_task
    assert not process_alive(worker_pid)
    assert (await session.arun("'next call works'")).value == "'next call works'"

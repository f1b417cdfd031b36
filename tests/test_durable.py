"""Checkpointed runs: killed with SIGKILL mid-run in a worker process, resumed by run id here.

The worker (`tests/_durable_agent.py`) runs a scripted agent whose tools record every
execution in a real SQLite table; a blocking call lets the test kill the process at a known
point. The checkpoint store is a real SQLite file, or the tests' PostgreSQL server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentlib import Agent, ConfigurationError, ScriptedModel, tool
from agentlib.memory import InMemoryStore, SQLStore
from agentlib.models.testing import call, final
from tests._durable_agent import executions, make_agent

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill_while_blocked(
    url: str,
    folder: Path,
    run_id: str,
    mode: str,
    prefix: str,
    also: Callable[[], bool] = lambda: True,
) -> None:
    """Run the worker until its slow call blocks (and `also` holds), then SIGKILL it."""
    (folder / "block").touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests._durable_agent", url, str(folder), run_id, mode, prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (folder / "blocked").exists() and also(), process, "the blocking call")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    (folder / "block").unlink()  # from now on the slow tool returns at once


def _killed_and_resumed(url: str, folder: Path, mode: str) -> tuple[Any, str]:
    prefix = f"durable_{uuid.uuid4().hex[:8]}_"
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    _kill_while_blocked(url, folder, run_id, mode, prefix)
    store = SQLStore(url, table_prefix=prefix)
    try:
        saved = store.load_checkpoint(run_id)
        assert saved is not None and saved["status"] == "running"
        result = make_agent(store, folder, mode).resume(run_id)
    finally:
        store.close()
    return result, run_id


def _check_interrupted_run(result: Any, run_id: str, folder: Path) -> None:
    assert result.ok, result.error
    assert result.run_id == run_id
    # Each call ran once: the two finished before the kill were not run again, and the call
    # in flight was not repeated.
    assert executions(folder) == [("record", "a"), ("record", "b"), ("slow", "c")]
    assert [step.calls[0].tool_name for step in result.steps[:3]] == ["record", "record", "slow"]
    assert [o.content for step in result.steps[:2] for o in step.observations] == [
        "recorded a",
        "recorded b",
    ]
    interrupted = result.steps[2].observations[0]
    assert interrupted.is_error and interrupted.error_type == "Interrupted"
    assert "interrupted" in result.output  # the model was told


def test_a_killed_run_resumes_from_sqlite_without_repeating_a_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result, run_id = _killed_and_resumed(url, tmp_path, "sequential")
    _check_interrupted_run(result, run_id, tmp_path)


@pytest.mark.postgres
def test_a_killed_run_resumes_from_postgres_without_repeating_a_call(
    postgres_url: str, tmp_path: Path
) -> None:
    result, run_id = _killed_and_resumed(postgres_url, tmp_path, "sequential")
    _check_interrupted_run(result, run_id, tmp_path)


def test_an_idempotent_call_in_flight_runs_again_on_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result, _run_id = _killed_and_resumed(url, tmp_path, "idempotent")
    assert result.ok, result.error
    assert executions(tmp_path) == [
        ("record", "a"),
        ("record", "b"),
        ("slow", "c"),  # in flight when the worker died
        ("slow", "c"),  # run again: the tool said it may be
    ]
    observation = result.steps[2].observations[0]
    assert not observation.is_error and observation.content == "slowly recorded c"


def test_a_finished_call_of_a_step_is_not_run_again_when_its_sibling_was_in_flight(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    prefix, run_id = "parallel_", "run-parallel"
    store = SQLStore(url, table_prefix=prefix)

    def quick_call_checkpointed() -> bool:
        saved = store.load_checkpoint(run_id)
        return bool(saved and saved["step"] and saved["step"]["observations"])

    try:
        _kill_while_blocked(url, tmp_path, run_id, "parallel", prefix, quick_call_checkpointed)
        result = make_agent(store, tmp_path, "parallel").resume(run_id)
    finally:
        store.close()
    assert result.ok, result.error
    assert sorted(executions(tmp_path)) == [("record", "x"), ("slow", "y")]
    quick, slow = result.steps[0].observations
    assert quick.content == "recorded x" and not quick.is_error
    assert slow.error_type == "Interrupted"


# -- in one process -------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def test_every_step_is_checkpointed_and_a_finished_run_cannot_resume() -> None:
    store = InMemoryStore()
    agent = Agent(
        ScriptedModel([call("add", a=1, b=2), final("3")]), tools=[add], checkpoints=store
    )
    result = agent.run("add", run_id="sum")
    assert result.ok and result.run_id == "sum"
    saved = store.load_checkpoint("sum")
    assert saved is not None
    assert (saved["version"], saved["kind"], saved["status"]) == (2, "run", "finished")
    assert saved["stop_reason"] == "final_answer" and len(saved["steps"]) == 2
    with pytest.raises(ConfigurationError, match=r"run 'sum' already finished \(final_answer\)"):
        agent.resume("sum")
    with pytest.raises(ConfigurationError, match="already in the checkpoint store"):
        agent.run("again", run_id="sum")


def test_a_run_without_checkpoints_has_an_id_but_cannot_be_resumed_by_it() -> None:
    agent = Agent(ScriptedModel([final("hi")]))
    result = agent.run("hello")
    assert len(result.run_id) == 32
    with pytest.raises(ConfigurationError, match=r"needs the store .* checkpoints=store"):
        agent.resume(result.run_id)


def test_an_unknown_run_id_is_a_clear_error() -> None:
    agent = Agent(ScriptedModel([final("hi")]), checkpoints=InMemoryStore())
    with pytest.raises(ConfigurationError, match="no run 'nope' in the checkpoint store"):
        agent.resume("nope")


def test_a_checkpoint_of_an_agent_with_other_tools_or_a_newer_version_is_refused() -> None:
    store = InMemoryStore()

    @tool
    def pay(amount: int) -> str:
        """Pay.

        Args:
            amount: How much.
        """
        return "paid"

    first = Agent(ScriptedModel([call("add", a=1, b=2)]), tools=[add], checkpoints=store)
    first.run("add", run_id="r")  # the script ends after one call: the run is stopped
    saved = store.load_checkpoint("r")
    assert saved is not None
    store.save_checkpoint("r", {**saved, "status": "running"})  # as if its process had died
    other = Agent(ScriptedModel([final("x")]), tools=[pay], checkpoints=store)
    with pytest.raises(ConfigurationError, match="lacks add; has new pay"):
        other.resume("r")
    store.save_checkpoint("r", {**saved, "version": 3})
    with pytest.raises(ConfigurationError, match="version 3, newer than this agentlib reads"):
        first.resume("r")


def test_a_run_resumes_between_steps_with_its_history_and_budgets() -> None:
    store = InMemoryStore()
    # The first process: one step, then its model is gone (the script ends).
    Agent(ScriptedModel([call("add", a=1, b=2)]), tools=[add], checkpoints=store).run(
        "add", run_id="r"
    )
    saved = store.load_checkpoint("r")
    assert saved is not None
    store.save_checkpoint("r", {**saved, "status": "running", "step": None})
    resumed = Agent(ScriptedModel([final("3")]), tools=[add], checkpoints=store).resume("r")
    assert resumed.ok and resumed.output == "3"
    assert [step.index for step in resumed.steps] == [1, 2]
    assert resumed.steps[0].observations[0].content == "3"
    # The first process's usage counts too.
    assert resumed.usage.requests == saved["usage"]["requests"] + 1


@tool(requires_approval=True)
def transfer(amount: int) -> str:
    """Transfer money.

    Args:
        amount: How much.
    """
    return f"sent {amount}"


def test_an_approval_pause_is_a_checkpoint_resumed_by_run_id() -> None:
    from agentlib import Approve

    store = InMemoryStore()

    def agent() -> Agent[str]:
        script = [call("transfer", amount=5), final("done")]
        return Agent(ScriptedModel(script), tools=[transfer], checkpoints=store)

    paused = agent().run("pay", run_id="pay-1")
    assert paused.stop_reason == "approval_required"
    saved = store.load_checkpoint("pay-1")
    assert saved is not None and saved["status"] == "paused"
    assert saved == paused.checkpoint  # one kind of checkpoint, in the store and the result
    with pytest.raises(ConfigurationError, match="no decision for call_1"):
        agent().resume("pay-1")
    # A new agent (as in another process) continues from the store; its model resumes after
    # the paused step, so it gives the final answer next.
    later = Agent(ScriptedModel([final("done")]), tools=[transfer], checkpoints=store)
    result = later.resume("pay-1", {"call_1": Approve()})
    assert result.ok and result.run_id == "pay-1"
    assert result.steps[0].observations[0].content == "sent 5"
    assert store.load_checkpoint("pay-1")["status"] == "finished"  # type: ignore[index]


def test_a_version_1_approval_checkpoint_still_resumes() -> None:
    from agentlib import Approve

    paused = Agent(ScriptedModel([call("transfer", amount=5)]), tools=[transfer]).run("pay")
    assert paused.checkpoint is not None
    old = {
        key: value
        for key, value in paused.checkpoint.items()
        if key not in ("run_id", "agent_name", "status", "tools", "stop_reason", "error")
    }
    old.update(version=1, kind="paused_run")
    del old["step"]["observations"]
    result = Agent(ScriptedModel([final("ok")]), tools=[transfer]).resume(
        old, {"call_1": Approve()}
    )
    assert result.ok and result.steps[0].observations[0].content == "sent 5"

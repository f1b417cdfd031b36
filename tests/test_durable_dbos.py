"""Durable runs on DBOS: real worker processes on one real PostgreSQL, two of them killed.

The workers are `tests/dbos_app.py` processes; runs are enqueued from here with a
`DBOSClient`, as a producer that runs no workflow would. The tool writes a row per execution
to `tool_executions`, so the table, not the workers' word, shows what ran and how often.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentlib import Agent, RunResult, ScriptedModel
from agentlib.errors import ConfigurationError
from agentlib.models.testing import call
from tests import dbos_app as app
from tests._postgres import PostgresServer

dbos = pytest.importorskip("dbos")
sa = pytest.importorskip("sqlalchemy")

from agentlib._dbos_failover import Liveness  # noqa: E402
from agentlib.durable import DurableAgent, DurableWorker  # noqa: E402

pytestmark = pytest.mark.postgres

RUNS = 200
WORKERS = 4
KILLED = 2


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def databases(postgres: PostgresServer) -> tuple[str, str]:
    """A DBOS system database and an application database holding `tool_executions`."""
    system_url = postgres.create_database("dbos_system")
    app_url = postgres.create_database("dbos_app")
    engine = sa.create_engine(app_url)
    with engine.begin() as connection:
        connection.execute(sa.text(app.CREATE_TABLE))
    engine.dispose()
    return _plain(system_url), _plain(app_url)


def _shape(result: RunResult[Any]) -> tuple[Any, ...]:
    """What a run produced, without timings: answer, stop reason, every step and observation."""
    steps = tuple(
        (
            step.index,
            step.thought,
            step.raw_output,
            tuple((call.id, call.tool_name, dict(call.arguments)) for call in step.calls),
            tuple(
                (item.call_id, item.tool_name, item.content, item.is_error)
                for item in step.observations
            ),
        )
        for step in result.steps
    )
    return result.output, result.stop_reason, steps


def _reference() -> dict[int, tuple[Any, ...]]:
    """The uninterrupted runs: the same agent, in this process, no DBOS, no database."""
    agent = app.make_agent(app.plain_record, step_seconds=0.0)

    async def everything() -> list[RunResult[str]]:
        return await asyncio.gather(*(agent.arun(app.task(number)) for number in range(RUNS)))

    return {number: _shape(result) for number, result in enumerate(asyncio.run(everything()))}


def _executions(app_url: str) -> list[tuple[int, int, str]]:
    engine = sa.create_engine(app_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT run, step, executor_id FROM tool_executions ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    return [(row[0], row[1], row[2]) for row in rows]


def _finished(client: Any) -> int:
    done = client.list_workflows(
        status="SUCCESS", workflow_id_prefix="chaos-", load_input=False, load_output=False
    )
    return len(done)


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def test_runs_of_killed_workers_finish_elsewhere_with_every_tool_call_run_once(
    databases: tuple[str, str],
) -> None:
    system_url, app_url = databases
    expected = _reference()
    options = os.environ.get("AGENTLIB_DBOS_TEST_OPTIONS", "").split()  # to see it fail
    with app.workers(WORKERS, system_url, app_url, concurrency=8, options=options) as workers:
        client = dbos.DBOSClient(system_database_url=system_url, application_name=app.APP_NAME)
        try:
            handles = {
                number: client.enqueue(
                    {
                        "queue_name": app.QUEUE,
                        "workflow_name": f"agentlib.{app.AGENT_NAME}",
                        "workflow_id": f"chaos-{number}",
                        "app_version": "test-1",
                    },
                    app.task(number),
                )
                for number in range(RUNS)
            }
            # Mid-way: a quarter of the tool calls done, so every worker holds runs in flight.
            _wait_for(
                lambda: len(_executions(app_url)) >= RUNS * app.TOOL_STEPS // 4,
                90,
                "a quarter of the tool calls",
            )
            killed = workers[:KILLED]
            for process in killed:
                os.kill(process.pid, signal.SIGKILL)
            for process in killed:
                process.wait()
            _wait_for(lambda: _finished(client) == RUNS, 120, f"all {RUNS} runs to finish")
            results = {number: handle.get_result() for number, handle in handles.items()}
            pending = client.list_workflows(
                status="PENDING", executor_id=[f"worker-{index}" for index in range(KILLED)]
            )
        finally:
            client.destroy()

    # 0 lost, and results identical to the uninterrupted runs.
    assert len(results) == RUNS
    assert {number: _shape(result) for number, result in results.items()} == expected
    assert all(result.ok for result in results.values())
    assert pending == []
    # 0 duplicated: exactly one execution of each tool call, by the table.
    executions = _executions(app_url)
    done = sorted((run, step) for run, step, _ in executions)
    assert done == sorted((n, s) for n in range(RUNS) for s in range(1, app.TOOL_STEPS + 1))
    # The kills hit runs mid-way: some run's first call ran on a killed worker and its second
    # on a survivor, which resumed it from its checkpoint.
    by_run: dict[int, dict[int, str]] = {}
    for run, step, executor in executions:
        by_run.setdefault(run, {})[step] = executor
    dead = {f"worker-{index}" for index in range(KILLED)}
    resumed = [
        run
        for run, steps in by_run.items()
        if steps[1] in dead and steps[app.TOOL_STEPS] not in dead
    ]
    assert resumed, "no run was interrupted between its tool calls; kill later or slow steps"


def test_docs_example_runs_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "dbos_durable.py"
    url = _plain(postgres.create_database("dbos_example"))
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DBOS_SYSTEM_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["Order 42 shipped on Monday.", "['order_status']"]


async def test_each_model_call_and_tool_call_is_a_checkpointed_step(
    postgres: PostgresServer,
) -> None:
    durable = DurableAgent(app.make_agent(app.plain_record, step_seconds=0.0), name="steps")
    url = _plain(postgres.create_database("dbos_steps"))
    config = {"name": "agentlib-steps-test", "system_database_url": url}
    async with DurableWorker(config, polling_interval=0.1) as worker:  # type: ignore[arg-type]
        assert worker.executor_id != "local"
        result = await durable.arun(app.task(7), run_id="steps-7")
        queued = await durable.aresult(await durable.aenqueue(app.task(8)))
        again = await durable.arun(app.task(999), run_id="steps-7")  # same id: the first run
        steps = await dbos.DBOS.list_workflow_steps_async("steps-7")
    assert result.output == "run 7: " + " | ".join(
        f"Observation (record result):\nrecorded 7.{step}" for step in (1, 2)
    )
    assert queued.output is not None and queued.output.startswith("run 8: ")
    assert again.output == result.output
    assert result.run_id == again.run_id == "steps-7"
    # A tool that is neither idempotent nor transactional is marked started, then run.
    assert [step["function_name"] for step in steps] == [
        "model",
        "start:record",
        "tool:record",
        "model",
        "start:record",
        "tool:record",
        "model",
    ]


async def test_the_calls_of_an_agent_handed_the_run_are_checkpointed_too(
    postgres: PostgresServer,
) -> None:
    specialist = app.make_agent(app.plain_record, step_seconds=0.0)
    specialist.name, specialist.description = "specialist", "Records things."
    triage = Agent(
        ScriptedModel([call("transfer_to_specialist", "Theirs.")]),
        handoffs=[specialist],
        name="triage",
    )
    durable = DurableAgent(triage, name="handoff")
    url = _plain(postgres.create_database("dbos_handoff"))
    config = {"name": "agentlib-handoff-test", "system_database_url": url}
    async with DurableWorker(config, polling_interval=0.1):  # type: ignore[arg-type]
        result = await durable.arun(app.task(3), run_id="handoff-3")
        steps = await dbos.DBOS.list_workflow_steps_async("handoff-3")
    assert result.agent_name == "specialist"
    assert result.output is not None and result.output.startswith("run 3: ")
    # triage's model call, then the specialist's: its model calls and its tool call.
    names = [step["function_name"] for step in steps]
    assert names == ["model", "model", "start:record", "tool:record", "model"]
    assert [step.agent_name for step in result.steps] == ["triage", "specialist", "specialist"]
    assert specialist._run_type is Agent._run_type  # the caller's agents stay plain


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_a_call_in_flight_when_its_worker_dies_is_interrupted_unless_idempotent(
    postgres: PostgresServer, idempotent: bool
) -> None:
    label = "idempotent" if idempotent else "plain"
    system_url = _plain(postgres.create_database(f"dbos_flight_{label}"))
    app_url = _plain(postgres.create_database(f"dbos_flight_app_{label}"))
    engine = sa.create_engine(app_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(sa.text(app.CREATE_TABLE))
    engine.dispose()
    declared = ["--idempotent"] if idempotent else []
    client = dbos.DBOSClient(system_database_url=system_url, application_name=app.APP_NAME)
    try:
        blocking = [*declared, "--tool-as-step", "--block-on=2"]
        with app.workers(1, system_url, app_url, options=blocking) as (doomed,):
            handle = client.enqueue(
                {
                    "queue_name": app.QUEUE,
                    "workflow_name": f"agentlib.{app.AGENT_NAME}",
                    "workflow_id": "flight-0",
                },
                app.task(0),
            )
            _wait_for(lambda: len(_executions(app_url)) == 2, 60, "the second call to start")
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait()
        with app.workers(1, system_url, app_url, options=[*declared, "--tool-as-step"], first=1):
            result = handle.get_result()
    finally:
        client.destroy()
    second = result.steps[1].observations[0]
    steps_run = [(run, step) for run, step, _ in _executions(app_url)]
    assert result.ok
    if idempotent:  # run again on the worker that took the run over
        assert (second.is_error, second.content) == (False, "recorded 0.2")
        assert steps_run == [(0, 1), (0, 2), (0, 2)]
    else:  # reported, not repeated: the table holds the one execution that hung
        assert (second.is_error, second.error_type) == (True, "Interrupted")
        assert steps_run == [(0, 1), (0, 2)]


def test_an_executor_id_held_by_a_live_worker_is_refused(postgres: PostgresServer) -> None:
    url = _plain(postgres.create_database("dbos_liveness"))
    first = Liveness(url, "worker-a", "agentlib-test")
    first.hold()
    try:
        second = Liveness(url, "worker-a", "agentlib-test")
        with pytest.raises(ConfigurationError, match="'worker-a' is held by a live worker"):
            second.hold(timeout=0.5)
        other = Liveness(url, "worker-b", "agentlib-test")
        other.hold(timeout=0.5)  # another id is free
        other.release()
    finally:
        first.release()
    again = Liveness(url, "worker-a", "agentlib-test")
    again.hold(timeout=5)  # freed when its holder let go (or died)
    again.release()


def test_a_worker_needs_a_postgresql_database() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL system database"):
        DurableWorker({"name": "agentlib-test", "system_database_url": "sqlite:///x.sqlite"})
    with pytest.raises(ConfigurationError, match="system_database_url"):
        DurableWorker({"name": "agentlib-test"})


def test_transactional_tools_must_be_tools_of_the_agent() -> None:
    agent = app.make_agent(app.plain_record, step_seconds=0.0)
    with pytest.raises(ConfigurationError, match="unknown tools: reocrd; known tools: record"):
        DurableAgent(agent, name="typo", transactional_tools={"reocrd"})

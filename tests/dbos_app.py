"""A durable agent application for the distributed-run test and benchmark: one worker process.

    python -m tests.dbos_app SYSTEM_DB_URL APP_DB_URL [--executor-id ID] [--concurrency N]

Each run ("run N") takes `TOOL_STEPS` tool calls and an answer. The model is scripted: a
`FunctionModel` that sleeps `--step-seconds` per call (like a remote server) and decides each
step from the messages, so a run's steps and answer depend on what its tool calls returned.
The tool `record` writes one row per execution to the `tool_executions` table of the
application database, inside a DBOS transaction (its write commits with its checkpoint), so
the table shows every execution that happened, and a duplicate would be a second row.

The worker prints `ready <executor id>` once it takes runs, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentlib import Agent, FunctionModel, Message, OutputSchema, tool
from agentlib.models.testing import call, final

APP_NAME = "agentlib-durable-test"
AGENT_NAME = "chaos"
QUEUE = "chaos_runs"
TOOL_STEPS = 2
"""Tool calls per run, before the answer."""

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS tool_executions (
    id bigserial PRIMARY KEY,
    run integer NOT NULL,
    step integer NOT NULL,
    executor_id text NOT NULL,
    executed_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def task(number: int) -> str:
    """The task of run `number`."""
    return f"run {number}"


def scripted_model(step_seconds: float) -> FunctionModel:
    """The model: `TOOL_STEPS` calls to `record`, then an answer quoting every observation."""

    async def reply(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        await asyncio.sleep(step_seconds)
        found = re.search(r"run (\d+)", messages[1].content)
        assert found is not None, messages[1].content
        number = int(found.group(1))
        seen = [m.content for m in messages[2:] if m.role == "user"]
        if len(seen) < TOOL_STEPS:
            return call("record", f"step {len(seen) + 1}", run=number, step=len(seen) + 1)
        return final(f"run {number}: " + " | ".join(seen))

    return FunctionModel(reply, name="scripted-50ms")


def make_agent(
    record: Callable[[int, int], str], step_seconds: float, *, idempotent: bool = False
) -> Agent[str]:
    """The agent, with `record(run, step)` as what the tool does."""

    @tool(name="record", idempotent=idempotent)
    def record_tool(run: int, step: int) -> str:
        """Record that step `step` of run `run` executed.

        Args:
            run: The run number.
            step: The step number within the run.
        """
        return record(run, step)

    return Agent(scripted_model(step_seconds), tools=[record_tool], max_steps=TOOL_STEPS + 2)


def plain_record(run: int, step: int) -> str:
    """What `record` returns, without the database: for the uninterrupted reference run."""
    return f"recorded {run}.{step}"


def serve(arguments: argparse.Namespace) -> None:
    """Run one worker until SIGTERM (clean stop) or SIGKILL."""
    import sqlalchemy as sa
    from dbos import SQLAlchemyDatasource

    from agentlib.durable import DurableAgent, DurableWorker

    executor_id = arguments.executor_id or f"worker-{os.getpid()}"
    datasource = SQLAlchemyDatasource.create(
        arguments.app_url, engine_kwargs={"pool_size": 1, "max_overflow": 0}
    )

    insert = sa.text(
        "INSERT INTO tool_executions (run, step, executor_id) VALUES (:run, :step, :executor_id)"
    )

    @datasource.transaction()
    def record(run: int, step: int) -> str:
        datasource.sql_session().execute(
            insert, {"run": run, "step": step, "executor_id": executor_id}
        )
        return plain_record(run, step)

    def record_outside(run: int, step: int) -> str:
        # --tool-as-step: the write commits on its own, before the step's checkpoint.
        with datasource.engine.begin() as connection:
            connection.execute(insert, {"run": run, "step": step, "executor_id": executor_id})
        if step == arguments.block_on:
            threading.Event().wait()  # --block-on: hang after the write, until killed
        return plain_record(run, step)

    DurableAgent(
        make_agent(
            record_outside if arguments.tool_as_step else record,
            arguments.step_seconds,
            idempotent=arguments.idempotent,
        ),
        name=AGENT_NAME,
        queue=QUEUE,
        transactional_tools=() if arguments.tool_as_step else {"record"},
    )
    worker = DurableWorker(
        {
            "name": APP_NAME,
            "system_database_url": arguments.system_url,
            "executor_id": executor_id,
            "application_version": "test-1",
            "sys_db_pool_size": 3,
            "log_level": "WARNING",
        },
        queue=QUEUE,
        concurrency=arguments.concurrency,
        polling_interval=0.1,
        failover_interval=3600.0 if arguments.no_failover else 0.5,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with worker:
        print(f"ready {worker.executor_id}", flush=True)
        stopped.wait()


@contextmanager
def workers(
    count: int,
    system_url: str,
    app_url: str,
    *,
    concurrency: int = 8,
    step_seconds: float = 0.05,
    timeout: float = 120.0,
    options: Sequence[str] = (),
    first: int = 0,
) -> Iterator[list[subprocess.Popen[str]]]:
    """Start `count` worker processes and wait until each takes runs; stop them afterwards.

    They are `worker-<first>`, `worker-<first + 1>`, ...

    Their stderr goes to a temporary file each, shown in the error if one fails to start.
    """
    root = Path(__file__).resolve().parents[1]
    logs = Path(tempfile.mkdtemp(prefix="agentlib-durable-"))
    processes: list[subprocess.Popen[str]] = []
    names = [f"worker-{index}" for index in range(first, first + count)]
    log_files = [(logs / f"{name}.log").open("w") for name in names]
    try:
        for index in range(count):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.dbos_app",
                        system_url,
                        app_url,
                        f"--executor-id={names[index]}",
                        f"--concurrency={concurrency}",
                        f"--step-seconds={step_seconds}",
                        *options,
                    ],
                    cwd=root,
                    stdout=subprocess.PIPE,
                    stderr=log_files[index],
                    text=True,
                )
            )
        for index, process in enumerate(processes):
            line = _read_line(process, timeout)
            if not line.startswith("ready"):
                log = (logs / f"{names[index]}.log").read_text()
                raise RuntimeError(f"worker {index} did not start ({line!r}):\n{log}")
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for log_file in log_files:
            log_file.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else "(no line within the timeout)"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system_url")
    parser.add_argument("app_url")
    parser.add_argument("--executor-id")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument(
        "--tool-as-step",
        action="store_true",
        help="run the tool as a plain DBOS step (at-least-once) instead of a transaction",
    )
    parser.add_argument("--idempotent", action="store_true", help="declare the tool idempotent")
    parser.add_argument(
        "--block-on", type=int, help="with --tool-as-step: the tool hangs on this step number"
    )
    parser.add_argument(
        "--no-failover", action="store_true", help="never recover dead workers' runs"
    )
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])

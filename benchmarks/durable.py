"""Durable runs on DBOS: throughput over 1, 2, 4 workers, and the per-step cost of durability.

Everything runs against a throwaway PostgreSQL 15 (`tests/_postgres.py`: loopback, fsync off,
as in the tests) and the agent of `tests/dbos_app.py`: each run is 2 tool calls and an
answer (3 model calls), the model a scripted `FunctionModel` sleeping `--step-seconds` per
call, the tool a DBOS transaction writing one row.

1. Scaling: `--runs` runs enqueued at once on the DBOS queue, taken by 1, 2 and 4 worker
   processes (`--concurrency` runs at a time each); runs per second from the first enqueue
   to the last run's success.
2. Per-step cost: `--sequential` runs one after another in this process, as plain
   `Agent.arun` and as `DurableAgent.arun` (a workflow: each model call and tool call a
   checkpointed step), with a model that does not sleep, so the difference is durability.

    python benchmarks/durable.py [--runs 200] [--concurrency 4] [--step-seconds 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from dbos import DBOSClient

from tests import dbos_app as app
from tests._postgres import postgres_server


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def scaling(system_url: str, app_url: str, arguments: argparse.Namespace) -> None:
    print(
        "| workers | runs | concurrency per worker | wall time | runs/s | speed-up |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    first: float | None = None
    for count in (1, 2, 4):
        prefix = f"bench-{count}-"
        with app.workers(
            count,
            system_url,
            app_url,
            concurrency=arguments.concurrency,
            step_seconds=arguments.step_seconds,
        ):
            client = DBOSClient(system_database_url=system_url, application_name=app.APP_NAME)
            began = time.perf_counter()
            for number in range(arguments.runs):
                client.enqueue(
                    {
                        "queue_name": app.QUEUE,
                        "workflow_name": f"agentlib.{app.AGENT_NAME}",
                        "workflow_id": f"{prefix}{number}",
                        "app_version": "test-1",
                    },
                    app.task(number),
                )
            while (
                len(
                    client.list_workflows(
                        status="SUCCESS",
                        workflow_id_prefix=prefix,
                        load_input=False,
                        load_output=False,
                    )
                )
                < arguments.runs
            ):
                time.sleep(0.05)
            seconds = time.perf_counter() - began
            client.destroy()
        rate = arguments.runs / seconds
        first = first or rate
        print(
            f"| {count} | {arguments.runs} | {arguments.concurrency} | {seconds:.1f} s | "
            f"{rate:.1f} | {rate / first:.2f}x |"
        )


def per_step(system_url: str, arguments: argparse.Namespace) -> None:
    from agentlib.durable import DurableAgent, DurableWorker

    agent = app.make_agent(app.plain_record, step_seconds=0.0)
    durable = DurableAgent(agent, name="per_step")
    idempotent = DurableAgent(
        app.make_agent(app.plain_record, step_seconds=0.0, idempotent=True),
        name="per_step_idempotent",
    )
    steps = app.TOOL_STEPS + 1  # loop steps per run; model calls: the same; tool calls: 2

    async def timed(run: object) -> list[float]:
        times = []
        for number in range(arguments.sequential):
            began = time.perf_counter()
            result = await run(app.task(number))  # type: ignore[operator]
            times.append((time.perf_counter() - began) / steps)
            assert result.ok, result.error
        return times

    worker = DurableWorker(
        {
            "name": "agentlib-bench-steps",
            "system_database_url": system_url,
            "application_version": "bench-1",
            "log_level": "WARNING",
        }
    )
    with worker:
        plain = asyncio.run(timed(agent.arun))
        checkpointed = asyncio.run(timed(durable.arun))
        unmarked = asyncio.run(timed(idempotent.arun))
    plain_ms = statistics.median(plain) * 1000
    durable_ms = statistics.median(checkpointed) * 1000
    idempotent_ms = statistics.median(unmarked) * 1000
    print(
        f"\n{arguments.sequential} sequential runs of {steps} steps "
        f"({steps} model calls, {app.TOOL_STEPS} tool calls), model without latency:\n\n"
        "| run | median time per step |\n| --- | --- |\n"
        f"| plain `Agent.arun` | {plain_ms:.2f} ms |\n"
        f"| `DurableAgent.arun` (DBOS workflow) | {durable_ms:.2f} ms |\n"
        f"| the same, tool `idempotent=True` (no start mark) | {idempotent_ms:.2f} ms |\n"
        f"| cost of durability | {durable_ms - plain_ms:.2f} ms per step "
        f"({idempotent_ms - plain_ms:.2f} ms with the idempotent tool) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--sequential", type=int, default=50)
    arguments = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    with postgres_server() as server:
        system_url = _plain(server.create_database("bench_system"))
        app_url = _plain(server.create_database("bench_app"))
        engine = sa.create_engine(server.url("bench_app"))
        with engine.begin() as connection:
            connection.execute(sa.text(app.CREATE_TABLE))
        engine.dispose()
        scaling(system_url, app_url, arguments)
        per_step(_plain(server.create_database("bench_steps")), arguments)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

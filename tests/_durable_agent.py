"""The agent of the durable-run tests, built the same way in a worker process and in the test.

`python -m tests._durable_agent STORE_URL FOLDER RUN_ID MODE [PREFIX]` runs it in a worker
that the test kills with SIGKILL while a call blocks. Every tool execution is a row in a real
SQLite table (`FOLDER/executions.db`), committed before the tool returns or blocks, so the
table shows what ran, and how often, whatever happened to the process.

Modes: `sequential` (a, b, then a blocking call), `idempotent` (the same, the blocking tool
declared idempotent), `parallel` (one step holding a quick call and a blocking one).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentlib import Agent, FunctionModel, Message, OutputSchema, tool
from agentlib.memory import SQLStore
from agentlib.models.testing import call, final, parallel


def executions(folder: Path) -> list[tuple[str, str]]:
    """Every tool execution so far, in order: (tool, item)."""
    with sqlite3.connect(folder / "executions.db") as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS executions (tool TEXT, item TEXT)")
        return list(connection.execute("SELECT tool, item FROM executions ORDER BY rowid"))


def _record(folder: Path, tool_name: str, item: str) -> None:
    connection = sqlite3.connect(folder / "executions.db", isolation_level=None)
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS executions (tool TEXT, item TEXT)")
        connection.execute("INSERT INTO executions VALUES (?, ?)", (tool_name, item))
    finally:
        connection.close()


def make_agent(store: Any, folder: Path, mode: str) -> Agent[str]:
    """The agent; its `slow` tool blocks while `FOLDER/block` exists (in the worker)."""

    @tool
    def record(item: str) -> str:
        """Record an item.

        Args:
            item: The item.
        """
        _record(folder, "record", item)
        return f"recorded {item}"

    def slow(item: str) -> str:
        """Record an item, slowly.

        Args:
            item: The item.
        """
        _record(folder, "slow", item)
        if (folder / "block").exists():
            (folder / "blocked").touch()  # the test kills the process from here on
            while True:
                time.sleep(0.05)
        return f"slowly recorded {item}"

    slow_tool = tool(idempotent=mode == "idempotent")(slow)

    def decide(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        done = sum(1 for message in messages if message.role == "assistant")
        if mode == "parallel":
            steps = [parallel(call("record", item="x"), call("slow", item="y"))]
        else:
            steps = [call("record", item="a"), call("record", item="b"), call("slow", item="c")]
        if done < len(steps):
            return steps[done]
        return final(messages[-1].content)  # the answer shows what the model saw last

    return Agent(
        FunctionModel(decide),
        tools=[record, slow_tool],
        checkpoints=store,
        parallel_calls=2 if mode == "parallel" else 1,
        max_steps=6,
    )


def main(argv: list[str]) -> None:
    url, folder, run_id, mode = argv[:4]
    prefix = argv[4] if len(argv) > 4 else "agentlib_"
    store = SQLStore(url, table_prefix=prefix)
    result = make_agent(store, Path(folder), mode).run("record things", run_id=run_id)
    print(result.stop_reason)


if __name__ == "__main__":
    main(sys.argv[1:])

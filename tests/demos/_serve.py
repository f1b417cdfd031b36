"""Serve the demo app with a deterministic model: `python -m tests.demos._serve PORT [--mcp S]`.

`--mcp` and `--max-tools` are the demo's own flags (`agentlib.cli.add_mcp_arguments`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from agentlib import FunctionModel, Message, OutputSchema
from agentlib.cli import add_mcp_arguments, mcp_servers
from agentlib.models.testing import call, final
from demos.app import CSS, build_app

GENRE_QUERY = {
    "table": "tracks",
    "select": [{"column": "genres.name"}, {"column": "tracks.track_id", "aggregate": "count"}],
    "joins": [{"on": "tracks.genre_id = genres.genre_id"}],
    "order_by": [{"column": "tracks.track_id", "aggregate": "count", "direction": "desc"}],
    "limit": 5,
}


def structured_query(question: str, schema: Any) -> dict[str, Any]:
    """A query object for text_to_sql: tracks per genre, or the row count of the first table."""
    if "genre" in question.lower():
        return GENRE_QUERY
    table = schema["properties"]["table"]
    first = table["enum"][0] if "enum" in table else table["const"]
    return {"table": first, "select": [{"column": "*", "aggregate": "count"}]}


def rows_answer(prompt: str) -> dict[str, Any]:
    """An answer read from the first row of the rows shown in the prompt (or a miscount)."""
    if "miscount" in prompt:
        return {"answer": "There are 7777 of them."}
    fenced = re.search(r"<untrusted-data[^>]*>\n(.*?)\n</untrusted-data>", prompt, re.DOTALL)
    assert fenced is not None, "the rows prompt shows the rows as fenced data"
    row = json.loads(fenced.group(1))["rows"][0]
    if len(row) == 1:
        return {"answer": f"The answer is {row[0]}."}
    return {"answer": f"{row[0]} comes first, with {row[1]}."}


def cited_answer(prompt: str) -> dict[str, Any]:
    """An answer citing the first passage found in the prompt."""
    first = re.search(r"^\[1\] (.+?) \(score", prompt, re.MULTILINE)
    assert first is not None, "the docs prompt numbers its passages"
    return {"answer": f"Passage [1] ({first.group(1)}) answers this.", "sources": [1]}


def structured_reply(task: str, output: OutputSchema) -> dict[str, Any]:
    """Replies for the requests the SQL, docs and extraction tabs make, by schema name."""
    if output.name == "StructuredQuery":
        return structured_query(task, output.schema)
    if output.name == "RowsAnswer":
        return rows_answer(task)
    if output.name == "CitedAnswer":
        return cited_answer(task)
    return {"name": "Maria Svensson", "age": 34, "city": "Gothenburg"}


async def demo_brain(messages: Sequence[Message], output: OutputSchema | None) -> Any:
    """A deterministic model for the demos: arithmetic through the calculator, slow on demand;
    SQL queries, answers from rows and cited answers for the SQL and docs tabs."""
    task = next(
        m.content
        for m in reversed(messages)
        if m.role == "user" and not m.content.startswith("Observation")
    )
    last = messages[-1].content
    if output is not None and output.name != "agent_step":
        return structured_reply(task, output)
    if "slowly" in task:
        await asyncio.sleep(60)
    if last.startswith("Observation"):
        # The value's line: not a fence line, nor the note after fenced (MCP, web) content.
        lines = [line for line in last.splitlines() if not line.startswith(("<", "(The text"))]
        return final(f"The answer is {lines[-1]}.", "I have the result.")
    return triage_step(task, output) or chat_step(task, messages)


def triage_step(task: str, output: OutputSchema | None) -> Any:
    """The triage tab's steps: route by the question, then the specialist's one call."""
    actions = output.actions if output is not None else None
    branches = {item.name for item in actions.branches} if actions is not None else set()
    if "transfer_to_sql" in branches:  # the triage agent
        target = "docs" if re.search(r"how do i|deploy|docs", task, re.IGNORECASE) else "sql"
        return call(f"transfer_to_{target}", "Hand it to the agent that can answer.")
    if not task.startswith("The agent 'triage' handed"):
        return None
    if "search_documents" in branches:  # the docs agent
        return call("search_documents", "Search the docs.", query=task.split("task: ")[-1])
    if "run_query" in branches and "genre" in task.lower():  # the sql agent
        return call("run_query", "Count the tracks per genre.", query=GENRE_QUERY)
    return None


def chat_step(task: str, messages: Sequence[Message]) -> Any:
    """The chat tab's first step for a task, by its words."""
    record = re.search(r"record the word (\w+)", task, re.IGNORECASE)
    if record:
        return call("record", "Write it down.", text=record.group(1))
    if "movies" in task.lower():
        return call("run_cypher", "Count them.", query="MATCH (m:Movie) RETURN count(m) AS n")
    if "in python" in task.lower():
        return call("python", "Run it in Python.", code="print(6 * 7)")
    if "which tables" in task.lower():
        return call("list_tables", "List the tables of the database.")
    if "remember" in task.lower():
        turns = sum(1 for m in messages if m.role == "assistant")
        return final(f"I see {turns} earlier answer(s) in this conversation.")
    match = re.search(r"(\d+)\s*\*\s*(\d+)", task)
    if match:
        return call("calculator", "Multiply with the calculator.", expression=match.group(0))
    return final("I can only multiply.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    add_mcp_arguments(parser)
    args = parser.parse_args(sys.argv[1:])
    servers = mcp_servers(args)
    app = build_app(
        {"Deterministic test model": lambda: FunctionModel(demo_brain)},
        embedder="hashing",
        mcp=servers,
        max_tools=args.max_tools,
    )
    try:
        app.launch(server_name="127.0.0.1", server_port=args.port, quiet=True, css=CSS, share=False)
    finally:
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()

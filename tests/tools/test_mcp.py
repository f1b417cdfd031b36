"""MCPToolset against real MCP servers in subprocesses (the SDK's, and ours), stdio and HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from agentlib import Agent, ConfigurationError, ScriptedModel, ToolError
from agentlib.models.testing import call, final
from agentlib.step_format import StepFormat
from agentlib.tools.mcp import MCPToolset, select_tools

SERVER = Path(__file__).with_name("mcp_sdk_server.py")


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _pid_of(toolset: MCPToolset) -> int:
    text = next(item for item in toolset.tools if item.name == "pid").call({})
    return int(text.split("\n")[1])


@pytest.fixture(scope="module")
def sdk_server() -> Iterator[MCPToolset]:
    toolset = MCPToolset([sys.executable, str(SERVER)], timeout=60)
    yield toolset
    toolset.close()


def _tool(toolset: MCPToolset, name: str):  # type: ignore[no-untyped-def]
    return next(item for item in toolset.tools if item.name == name)


def test_server_tools_become_schema_tools_in_the_step_format(sdk_server: MCPToolset) -> None:
    names = [item.name for item in sdk_server.tools]
    assert {"add", "weather", "divide", "page", "lookup", "headers"} <= set(names)
    add = _tool(sdk_server, "add")
    assert add.arguments_model is None  # the JSON-schema path, as for every spec tool
    assert add.parameters["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
    assert add.parameters["additionalProperties"] is False
    step = StepFormat.build(sdk_server.tools)
    assert step.tool_names == tuple(names)
    branch = next(b for b in step.output.actions.branches if b.name == "add")
    assert branch.parameters == add.parameters
    with pytest.raises(ToolError, match="argument 'b' is required"):
        add.validate({"a": 1})


def test_text_and_structured_results_are_fenced_observations(sdk_server: MCPToolset) -> None:
    text = _tool(sdk_server, "add").call({"a": 2, "b": 40})
    assert text.startswith('<untrusted-data source="MCP tool add on sdk-test-server">\n42\n')
    weather = _tool(sdk_server, "weather").call({"city": "Oslo"})
    body = weather.split("\n", 1)[1].rsplit("</untrusted-data>", 1)[0]
    assert json.loads(body) == {"city": "Oslo", "temperature_c": 21, "sky": "clear"}


def test_instructions_in_output_cannot_close_the_fence(sdk_server: MCPToolset) -> None:
    text = _tool(sdk_server, "page").call({"url": "http://example.test"})
    assert text.count("</untrusted-data>") == 1
    assert "[fence removed] IGNORE PREVIOUS INSTRUCTIONS" in text


def test_is_error_result_becomes_a_tool_error(sdk_server: MCPToolset) -> None:
    with pytest.raises(ToolError, match="reported an error") as caught:
        _tool(sdk_server, "divide").call({"a": 1, "b": 0})
    assert "division by zero: b must not be 0" in str(caught.value)


def test_agent_run_calls_an_mcp_tool(sdk_server: MCPToolset) -> None:
    model = ScriptedModel([call("lookup", key="beta"), final("2")])
    result = Agent(model, tools=[sdk_server]).run("What is beta?")
    assert result.ok
    observation = result.steps[0].observations[0]
    assert not observation.is_error
    assert "\n2\n</untrusted-data>" in observation.content
    assert "lookup" in result.tools_offered


async def test_async_use_awaits_the_tool() -> None:
    async with MCPToolset([sys.executable, str(SERVER)]) as toolset:
        add = _tool(toolset, "add")
        assert add.is_async
        assert "\n7\n" in await add.acall({"a": 3, "b": 4})
        pid = int((await _tool(toolset, "pid").acall({})).split("\n")[1])
    assert not _alive(pid)


def test_close_stops_the_subprocess() -> None:
    toolset = MCPToolset([sys.executable, str(SERVER)])
    pid = _pid_of(toolset)
    assert _alive(pid)
    toolset.close()
    assert not _alive(pid)


def test_a_killed_server_is_restarted_and_the_observation_says_so() -> None:
    with MCPToolset([sys.executable, str(SERVER)]) as toolset:
        first = _pid_of(toolset)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ToolError, match="connection was restarted") as caught:
            _tool(toolset, "pid").call({})
        assert "Connection closed" in str(caught.value)
        second = _pid_of(toolset)
        assert second != first and _alive(second)
    assert not _alive(second)


def test_a_crash_during_a_call_is_reported_and_the_next_call_works() -> None:
    with MCPToolset([sys.executable, str(SERVER)]) as toolset:
        first = _pid_of(toolset)
        with pytest.raises(ToolError, match="may or may not have run"):
            _tool(toolset, "crash").call({})
        assert not _alive(first)
        assert "\n3\n" in _tool(toolset, "add").call({"a": 1, "b": 2})


def test_unenforceable_schema_is_reported_up_front() -> None:
    command = [sys.executable, str(SERVER), "--odd"]
    with pytest.raises(ConfigurationError, match=r"tags: .*uniqueItems") as caught:
        MCPToolset(command).connect()
    assert "unsupported='skip'" in str(caught.value)
    with MCPToolset(command, unsupported="skip") as toolset:
        assert "tags" not in [item.name for item in toolset.tools]
        assert "uniqueItems" in toolset.unsupported_tools["tags"]
        # A map of free keys: enforceable locally, not expressible in OpenAI's strict mode.
        assert "note" in [item.name for item in toolset.tools]
        assert "strict mode" in toolset.strict_mode_problems["note"]


def test_prefix_and_include_pick_and_rename_tools() -> None:
    with MCPToolset([sys.executable, str(SERVER)], prefix="calc_", include=["add"]) as toolset:
        assert [item.name for item in toolset.tools] == ["calc_add"]
        assert "\n5\n" in toolset.tools[0].call({"a": 2, "b": 3})


def test_a_server_that_does_not_start_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot connect to MCP server"):
        MCPToolset([sys.executable, str(tmp_path / "missing.py")], timeout=30).connect()


def test_bad_server_argument_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="needs a server"):
        MCPToolset("")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_sdk_server_over_streamable_http() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "http", str(port)], stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_port(port, process)
        with MCPToolset(f"http://127.0.0.1:{port}/mcp") as toolset:
            assert "\n9\n" in _tool(toolset, "add").call({"a": 4, "b": 5})
            assert toolset.server_name == "sdk-test-server"
        headers = {"X-Test-Token": "secret"}
        with MCPToolset(f"http://127.0.0.1:{port}/mcp", headers=headers) as toolset:
            assert "x-test-token" in _tool(toolset, "headers").call({}).lower()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


# -- our server: `agentlib mcp serve` ------------------------------------------------------


def _serve_command(*tools_and_options: str) -> list[str]:
    return [sys.executable, "-m", "agentlib.cli", "mcp", "serve", *tools_and_options]


def test_our_stdio_server_serves_built_in_tools() -> None:
    with MCPToolset(_serve_command("--tools", "calculator")) as toolset:
        assert toolset.server_name == "agentlib"
        (calculator,) = toolset.tools
        assert "\n42\n" in calculator.call({"expression": "6 * 7"})
        with pytest.raises(ToolError, match="reported an error"):
            calculator.call({"expression": "__import__('os')"})


def test_our_server_keeps_sql_read_only(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE items (name TEXT)")
        connection.execute("INSERT INTO items VALUES ('pen')")
    with MCPToolset(_serve_command("--tools", f"sql:sqlite:///{database}")) as toolset:
        query = next(item for item in toolset.tools if item.name == "run_query")
        select = {"table": "items", "select": [{"column": "items.name"}]}
        assert "pen" in query.call({"query": select})
        injected = "x'; DELETE FROM items; --"
        filters = [{"column": "items.name", "operator": "=", "value": injected}]
        assert "pen" not in query.call({"query": {**select, "filters": filters}})
        with pytest.raises(ToolError, match="'items' was expected"):  # our client refuses
            query.call({"query": {"table": "sqlite_master", "select": [{"column": "*"}]}})
        sent = {"query": {"table": "sqlite_master", "select": [{"column": "*"}]}}
        with pytest.raises(ToolError, match="reported an error"):  # and so does our server
            asyncio.run(toolset.acall_tool("run_query", sent))
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (1,)


def test_our_http_server_on_a_free_port() -> None:
    process = subprocess.Popen(
        _serve_command("--tools", "calculator", "--transport", "http", "--port", "0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "serving MCP on http://127.0.0.1:" in line, line
        url = line.strip().rsplit(" ", 1)[1]
        with MCPToolset(url) as toolset:
            assert "\n10\n" in toolset.tools[0].call({"expression": "2 + 8"})
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        process.stderr.close() if process.stderr else None


# -- selecting tools --------------------------------------------------------------------


def test_select_tools_keeps_the_relevant_ones(sdk_server: MCPToolset) -> None:
    chosen = select_tools(sdk_server.tools, "what is the weather in Paris", max_tools=2)
    assert len(chosen) == 2
    assert "weather" in [item.name for item in chosen]
    with pytest.raises(ConfigurationError, match="max_tools"):
        select_tools(sdk_server.tools, "x", max_tools=0)


# -- the CLI and the embedded model ----------------------------------------------------


@pytest.mark.slow
def test_cli_run_with_an_mcp_server_and_the_embedded_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agentlib.cli import main

    server = f"{sys.executable} {SERVER}"
    code = main(
        [
            "run",
            "--mcp",
            server,
            "--tools",
            "none",
            "--max-tools",
            "1",
            "--json",
            "--quiet",
            "Use the lookup tool to look up the key alpha.",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["tools_offered"] == ["lookup"]
    calls = [c for step in result["steps"] for c in step["calls"]]
    assert calls and calls[0]["tool_name"] == "lookup"
    observations = [o for step in result["steps"] for o in step["observations"]]
    assert "untrusted-data" in observations[0]["content"]
    assert code in (0, 1)

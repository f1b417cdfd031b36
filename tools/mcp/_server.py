"""`serve_mcp`: any agentlib tools or `Toolset` as an MCP server (stdio or streamable HTTP).

Each call goes through `Tool.acall`, the same validation and execution as inside an agent
run, so the tools keep their own guarantees (the SQL tools' read-only connections, the Python
tool's sandbox process): the server adds no way around them. A tool error is returned as an
MCP error result (`isError`) with its message, never a crash of the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

from agentlib import ConfigurationError, Tool, ToolError, Toolset, render_observation

from ._client import _sdk

__all__ = ["serve_mcp"]

logger = logging.getLogger(__name__)


def _collect(items: Iterable[Tool | Toolset]) -> tuple[list[Tool], list[Toolset]]:
    tools: list[Tool] = []
    toolsets: list[Toolset] = []
    for item in items:
        if isinstance(item, Toolset):
            scoped = item.for_run()  # one state (sandbox session, connection) for the server
            toolsets.append(scoped)
            tools.extend(scoped.tools)
        elif isinstance(item, Tool):
            tools.append(item)
        else:
            raise ConfigurationError(
                f"{item!r} cannot be served over MCP: pass Tool or Toolset objects"
            )
    names = [item.name for item in tools]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigurationError(f"tool names must be unique; duplicated: {', '.join(duplicated)}")
    return tools, toolsets


def build_server(tools: list[Tool], *, name: str = "agentlib", max_chars: int = 100_000) -> Any:
    """The SDK's low-level `Server` answering `tools/list` and `tools/call` for `tools`."""
    _sdk()
    import mcp_types as types
    from mcp.server.lowlevel import Server

    by_name = {item.name: item for item in tools}
    listing = [
        types.Tool(name=item.name, description=item.description, input_schema=item.parameters)
        for item in tools
    ]

    async def list_tools(context: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=listing)

    async def call_tool(context: Any, params: Any) -> Any:
        item = by_name.get(params.name)
        if item is None:
            text = f"unknown tool {params.name!r}; known tools: {', '.join(by_name)}"
            return _result(types, text, is_error=True)
        try:
            value = await item.acall(params.arguments or {})
        except ToolError as exc:
            return _result(types, str(exc), is_error=True)
        except Exception as exc:  # a tool's failure is the caller's observation
            logger.debug("MCP tool %s failed", item.name, exc_info=True)
            return _result(types, f"{type(exc).__name__}: {exc}", is_error=True)
        return _result(types, render_observation(value, max_chars), is_error=False)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


def _result(types: Any, text: str, *, is_error: bool) -> Any:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


async def aserve_mcp(
    tools: Iterable[Tool | Toolset],
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "agentlib",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `tools` over MCP until the client disconnects (stdio) or the task is cancelled.

    Args:
        tools: `Tool`s and `Toolset`s (each toolset's `for_run()` state serves every call).
        transport: `"stdio"` (stdin/stdout of this process) or `"http"` (streamable HTTP).
        host: The address to listen on (HTTP); loopback by default.
        port: The port (HTTP); `0` picks a free one (see `on_ready`).
        path: The endpoint's path (HTTP).
        name: The server's name, as clients see it.
        on_ready: Called with the endpoint's URL (HTTP) or `"stdio"` once serving.

    Raises:
        ConfigurationError: An unknown transport, or tools that cannot be served.
    """
    if transport not in ("stdio", "http"):
        raise ConfigurationError(f"transport must be 'stdio' or 'http', got {transport!r}")
    collected, toolsets = _collect(tools)
    server = build_server(collected, name=name)
    try:
        if transport == "stdio":
            from mcp.server.stdio import stdio_server

            async with stdio_server() as (read_stream, write_stream):
                if on_ready is not None:
                    on_ready("stdio")
                await server.run(read_stream, write_stream, server.create_initialization_options())
        else:
            await _serve_http(server, host, port, path, on_ready)
    finally:
        for toolset in toolsets:
            await asyncio.shield(toolset.aclose())


async def _serve_http(
    server: Any, host: str, port: int, path: str, on_ready: Callable[[str], None] | None
) -> None:
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    runner = uvicorn.Server(config)
    task = asyncio.create_task(runner.serve())
    while not runner.started and not task.done():
        await asyncio.sleep(0.02)
    if runner.started and on_ready is not None:
        bound = runner.servers[0].sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{bound}{path}")
    try:
        await task
    finally:
        runner.should_exit = True


def serve_mcp(
    tools: Iterable[Tool | Toolset],
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "agentlib",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `tools` over MCP, blocking (see `aserve_mcp` for the arguments)."""
    asyncio.run(
        aserve_mcp(
            tools,
            transport=transport,
            host=host,
            port=port,
            path=path,
            name=name,
            on_ready=on_ready,
        )
    )

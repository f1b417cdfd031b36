"""MCP (Model Context Protocol) both ways, with the official SDK (`agentlib-typed[mcp]`).

- `MCPToolset`: a server's tools (stdio subprocess or streamable HTTP) as agentlib tools.
- `serve_mcp` / `aserve_mcp`: agentlib tools and toolsets served as an MCP server.
- `select_tools` (the core's, re-exported): the tools most relevant to a task, when a server
  brings too many for a small model's context; `Agent(max_tools=N)` does it per run.

The SDK is imported when a toolset connects or a server starts, not with this package.
"""

from __future__ import annotations

from agentlib._tool_selection import select_tools

from ._client import MCPToolset
from ._server import aserve_mcp, build_server, serve_mcp

__all__ = ["MCPToolset", "aserve_mcp", "build_server", "select_tools", "serve_mcp"]

"""Use an MCP server's tools in an agent, and serve agentlib's tools over MCP.

The server here is agentlib's own (`agentlib mcp serve`), started as a stdio subprocess; any
MCP server works the same way: a command, or a URL for streamable HTTP.
"""

import sys

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final
from agentlib.tools.mcp import MCPToolset

server = [sys.executable, "-m", "agentlib.cli", "mcp", "serve", "--tools", "calculator"]

with MCPToolset(server) as calculator_server:  # starts the subprocess; stops it on exit
    print([tool.name for tool in calculator_server.tools])  # ['calculator']

    # A scripted model keeps the example deterministic; use LocalModel() or OpenAIModel(...).
    model = ScriptedModel([call("calculator", expression="17 * 23"), final("391")])
    agent = Agent(model, tools=[calculator_server])
    result = agent.run("What is 17 * 23?")

    print(result.output)  # 391
    print(result.steps[0].observations[0].content.splitlines()[1])  # 391 (fenced as data)
    print(result.tools_offered)  # ('calculator',)
    assert result.output == "391"
    assert "391" in result.steps[0].observations[0].content

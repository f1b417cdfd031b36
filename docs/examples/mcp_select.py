"""Offer a small model only the tools relevant to its task, out of hundreds."""

from agentlib import Agent, ScriptedModel, Tool
from agentlib.models.testing import call, final
from agentlib.tools.mcp import select_tools


def make_tool(service: str, action: str) -> Tool:
    """A stand-in for one of an MCP server's many tools."""
    return Tool.from_schema(
        f"{service}_{action}",
        f"{action.capitalize()} a {service} record.",
        {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        lambda **arguments: f"{action} {service} {arguments['id']}: done",
    )


services = ["invoice", "customer", "ticket", "shipment", "refund", "contract"]
actions = ["create", "read", "update", "delete", "archive"]
catalogue = [make_tool(service, action) for service in services for action in actions]

task = "Archive the shipment record S-17."
offered = select_tools(catalogue, task, max_tools=4)
print([tool.name for tool in offered])  # the shipment tools, shipment_archive among them
assert "shipment_archive" in [tool.name for tool in offered]

# The agent does the same per run: it has all 30 tools, each run is offered 4.
model = ScriptedModel([call("shipment_archive", id="S-17"), final("archived")])
agent = Agent(model, tools=catalogue, max_tools=4)
result = agent.run(task)
print(result.tools_offered)
assert result.tools_offered == tuple(tool.name for tool in offered)
assert result.output == "archived" and len(agent.tools) == 30

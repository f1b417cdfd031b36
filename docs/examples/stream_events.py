"""Streaming a run's events, as a UI would."""

import asyncio

from agentlib import Agent, ScriptedModel, ThoughtEvent, ToolCallEvent, ToolResultEvent, tool
from agentlib.models.testing import call, final


@tool
async def lookup(city: str) -> str:
    """Look up the weather.

    Args:
        city: The city.
    """
    return {"Oslo": "3 °C, rain"}.get(city, "unknown")


async def main() -> None:
    agent = Agent(
        ScriptedModel(
            [call("lookup", "Check Oslo.", city="Oslo"), final("Rainy, 3 °C.", "I have it.")]
        ),
        tools=[lookup],
    )
    async for event in agent.stream("Weather in Oslo?"):
        if isinstance(event, ThoughtEvent):
            print("thought:", event.thought)
        elif isinstance(event, ToolCallEvent):
            print("call:", event.call.tool_name, dict(event.call.arguments))
        elif isinstance(event, ToolResultEvent):
            print("result:", event.observation.content)


asyncio.run(main())

"""Streaming a run on the embedded model: the step's text token by token, then its events."""

import asyncio

from agentlib import Agent, FinalAnswerEvent, LocalModel, TextEvent, ToolCallEvent
from agentlib.tools.calculator import calculator

agent = Agent(LocalModel(), tools=[calculator])


async def main() -> str:
    """Print the run as it happens; return the answer."""
    pieces = 0
    answer = ""
    async for event in agent.stream("What is 17 * 23?", text=True):
        if isinstance(event, TextEvent):  # the step's JSON, as the model writes it
            pieces += 1
            print(event.delta, end="", flush=True)
        elif isinstance(event, ToolCallEvent):
            print(f"\n→ {event.call.tool_name}({dict(event.call.arguments)})")
        elif isinstance(event, FinalAnswerEvent):
            answer = str(event.output)
            print(f"\nanswer: {answer}")
    assert pieces > 1  # many pieces: it streamed
    return answer


print(asyncio.run(main()))

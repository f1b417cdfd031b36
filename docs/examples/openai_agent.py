"""An agent on an OpenAI-compatible server, with native strict tool calls."""

import os

from agentlib import Agent, tool
from agentlib.models import OpenAIModel


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


model = OpenAIModel(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), mode="tools")
agent = Agent(model, tools=[add], output_type=int)
result = agent.run("What is 17 + 23?")
print(result.output)  # 40
print(result.generation_paths)  # ('native_tools',)

"""Testing an agent: a FunctionModel decides each step from the messages it receives."""

from collections.abc import Sequence

from agentlib import Agent, FunctionModel, Message, OutputSchema, tool
from agentlib.models.testing import call, final


@tool
def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: The text.
    """
    return len(text.split())


def decide(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, object]:
    last = messages[-1].content
    if last.startswith("Observation"):
        count = last.rsplit("\n", 1)[-1]
        return final(f"{count} words")
    return call("word_count", text=last)


agent = Agent(FunctionModel(decide), tools=[word_count])
result = agent.run("the quick brown fox")
assert result.output == "4 words", result
print(result.output)

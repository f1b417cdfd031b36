"""The loop, end to end, on a deterministic model (no weights, no network)."""

from agentlib import Agent, ScriptedModel, tool
from agentlib.models.testing import call, final


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return a * b


model = ScriptedModel(
    [
        call("multiply", "I need the product.", a=17, b=23),
        final("391", "17 * 23 = 391."),
    ]
)
agent = Agent(model, tools=[multiply])
result = agent.run("What is 17 * 23?")

print(result.output)  # 391
print(result.stop_reason)  # final_answer
for step in result.steps:
    print(step.index, step.thought, [c.tool_name for c in step.calls])
assert result.output == "391"

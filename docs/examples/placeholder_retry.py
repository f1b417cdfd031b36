"""A placeholder copied as an argument is refused, and the retry is told why."""

from agentlib import Agent, ScriptedModel, tool
from agentlib.models.testing import call, final


@tool
def weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


# A small model copies a template's placeholder; on the retry it writes the real value.
replies = [call("weather", city="{{city}}"), call("weather", city="Oslo"), final("Sunny.")]
model = ScriptedModel(replies)
result = Agent(model, tools=[weather]).run("Weather in Oslo?")
assert result.output == "Sunny." and result.steps[0].retries == 1, result
correction = model.requests[1].messages[-1].content  # what the model read last on the retry
assert "placeholder" in correction
print(correction)

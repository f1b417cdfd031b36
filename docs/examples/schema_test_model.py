"""TestModel: every tool called with valid generated arguments, then a typed answer."""

from pydantic import BaseModel

from agentlib import Agent, ScriptedModel, TestModel, tool
from agentlib.models.testing import call, final, parallel


class Forecast(BaseModel):
    """A forecast."""

    city: str
    celsius: float


calls: list[str] = []


@tool
def weather(city: str, days: int = 1) -> str:
    """The weather forecast for a city.

    Args:
        city: The city.
        days: How many days ahead.
    """
    calls.append(city)
    return f"sunny in {city}"


@tool
def convert(fahrenheit: float) -> float:
    """Fahrenheit to Celsius.

    Args:
        fahrenheit: The temperature in Fahrenheit.
    """
    return (fahrenheit - 32) * 5 / 9


# No script: each tool is called once with arguments generated from its schema, then the run
# ends with a value generated for the output type.
result = Agent(TestModel(), tools=[weather, convert], output_type=Forecast).run("Oslo?")
print([c.tool_name for step in result.steps for c in step.calls])  # ['weather', 'convert']
assert result.ok and isinstance(result.output, Forecast)

# call() and final() write the step in whatever shape the agent asks for, here two calls a step.
script = [
    parallel(call("weather", city="Oslo"), call("convert", fahrenheit=50)),
    final({"city": "Oslo", "celsius": 10}),
]
agent = Agent(
    ScriptedModel(script), tools=[weather, convert], output_type=Forecast, parallel_calls=2
)
result = agent.run("Weather in Oslo, in Celsius?")
print(result.output)  # city='Oslo' celsius=10.0
assert result.output == Forecast(city="Oslo", celsius=10)

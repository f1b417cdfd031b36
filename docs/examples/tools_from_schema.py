"""Tools from JSON-schema specs: an OpenAI function spec registers as it is written."""

from typing import Any

from agentlib import Agent, ScriptedModel, Tool
from agentlib.models.testing import call, final

spec = {
    "type": "function",
    "function": {
        "name": "flights.search",
        "description": "Find flights between two airports.",
        "parameters": {
            "type": "object",
            "properties": {
                "from": {"type": "string", "description": "IATA code of the departure airport."},
                "to": {"type": "string", "description": "IATA code of the arrival airport."},
                "class": {"type": "string", "enum": ["economy", "business"]},
            },
            "required": ["from", "to"],
        },
    },
}


def search_flights(**arguments: Any) -> list[str]:
    """Return the matching flights (`from` and `class` are Python keywords: use `**`)."""
    return [f"{arguments['from']}-{arguments['to']} 08:15 ({arguments.get('class', 'economy')})"]


flights = Tool.from_openai(spec, search_flights)

model = ScriptedModel(
    [
        call("flights.search", "Search first.", **{"from": "OSL", "to": "CDG"}),
        final("There is a flight at 08:15."),
    ]
)
result = Agent(model, tools=[flights]).run("Find me a flight from Oslo to Paris.")
assert result.output == "There is a flight at 08:15.", result
assert result.steps[0].observations[0].value == ["OSL-CDG 08:15 (economy)"]
print(flights.name, list(flights.parameters["properties"]), "->", result.output)

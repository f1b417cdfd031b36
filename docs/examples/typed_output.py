"""A typed final answer: the agent's output is validated into a pydantic model."""

from pydantic import BaseModel

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import final


class Country(BaseModel):
    name: str
    capital: str
    population_millions: float


model = ScriptedModel(
    [final({"name": "Norway", "capital": "Oslo", "population_millions": 5.6})]
)
agent = Agent(model, output_type=Country)
result = agent.run("Tell me about Norway.")
country = result.output
assert isinstance(country, Country) and country.capital == "Oslo"
print(country)

"""One validated object from any OpenAI-compatible server."""

import os

from pydantic import BaseModel

import agentlib
from agentlib.models import OpenAIModel


class City(BaseModel):
    name: str
    country: str


# Reads OPENAI_API_KEY and OPENAI_BASE_URL; a local server needs no key.
model = OpenAIModel(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
result = agentlib.generate_result(model, City, "Which city is the Eiffel Tower in?")
print(result.output)  # name='Paris' country='France'
print(result.path)  # strict_schema: the server enforced the schema

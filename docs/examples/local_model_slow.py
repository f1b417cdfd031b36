"""The embedded model: one typed object, constrained token by token, offline."""

from pydantic import BaseModel

from agentlib import generate_result
from agentlib.models.local import LocalModel


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


# Loads SmolLM2-135M-Instruct once per process (about two seconds); 1 llama.cpp thread unless
# n_threads= or AGENTLIB_THREADS says otherwise.
model = LocalModel()
generation = generate_result(model, City, "Paris is the capital of France.", max_tokens=40)
assert isinstance(generation.output, City)
assert generation.path == "constrained"
print(generation.output, "via", generation.path)

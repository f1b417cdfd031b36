"""One schema-valid object from any model, outside the loop."""

from pydantic import BaseModel

from agentlib import ScriptedModel, generate_result


class Invoice(BaseModel):
    number: str
    total_eur: float


# The first reply is invalid (total is text); generate retries, showing the model the error.
model = ScriptedModel(
    [
        '{"number": "INV-7", "total_eur": "a lot"}',
        '{"number": "INV-7", "total_eur": 1250.5}',
    ]
)
generation = generate_result(model, Invoice, "Invoice INV-7, total 1,250.50 EUR")
assert generation.output == Invoice(number="INV-7", total_eur=1250.5)
print(generation.output, "after", generation.attempts, "attempts via", generation.path)

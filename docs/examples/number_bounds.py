"""Numbers get a digit bound in the constraint, so a step at its bounds fits the token budget."""

from typing import Annotated

from pydantic import Field

from agentlib import tool
from agentlib.step_format import StepFormat


@tool
def transfer(amount: float, account: Annotated[int, Field(ge=0, le=10**18)]) -> str:
    """Transfer money.

    Args:
        amount: How much.
        account: The account number.
    """
    return "done"


step_format = StepFormat.build([transfer], max_tokens=256)
# What the constraint engine enforces: ranges and a decimal step on every number.
call = step_format.output.enforced["properties"]["action"]["anyOf"][0]
arguments = call["properties"]["arguments"]["properties"]
amount, account = arguments["amount"], arguments["account"]
print(amount["minimum"], amount["maximum"], amount["multipleOf"])
print(account["minimum"], account["maximum"])  # the tool's own range is kept, 19 digits
assert (amount["maximum"], amount["multipleOf"]) == (10**15 - 1, 1e-6)
assert account["maximum"] == 10**18
# The schema that validation, OpenAI's strict mode and the prompt use is unchanged.
schema_call = step_format.output.schema["properties"]["action"]["anyOf"][0]
assert "maximum" not in schema_call["properties"]["arguments"]["properties"]["amount"]

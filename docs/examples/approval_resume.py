"""A risky tool pauses the run; a person approves, denies or edits; the run goes on."""

from agentlib import Agent, Approve, Deny, ScriptedModel, tool
from agentlib.models.testing import call, final, parallel

balance = {"alice": 100, "bob": 0}


@tool(requires_approval=lambda arguments: arguments["amount"] > 50)
def transfer(to: str, amount: int) -> str:
    """Transfer euros from alice to someone.

    Args:
        to: Who receives the money.
        amount: How many euros.
    """
    balance["alice"] -= amount
    balance[to] = balance.get(to, 0) + amount
    return f"sent {amount} € to {to}"


model = ScriptedModel(
    [
        parallel(call("transfer", to="bob", amount=20), call("transfer", to="bob", amount=80)),
        final("Sent what was approved."),
    ]
)
agent = Agent(model, tools=[transfer], parallel_calls=2)

paused = agent.run("Pay bob 20 € and 80 €.")
print(paused.stop_reason)  # approval_required: the 80 € call waits; its step waits with it
for request in paused.pending:
    print("waiting:", request.call.id, request.call.tool_name, dict(request.call.arguments))

# Approve as sent, with edited arguments, or deny with a reason the model sees.
result = agent.resume(paused, {"call_2": Approve(arguments={"to": "bob", "amount": 60})})
print(result.output, balance)
for observation in result.steps[0].observations:
    print(observation.call_id, observation.content.splitlines()[-1])

again = Agent(
    ScriptedModel([call("transfer", to="bob", amount=90), final("Not sent.")]), tools=[transfer]
)
denied = again.resume(again.run("Pay bob 90 €."), {"call_1": Deny("over the weekly limit")})
print(denied.steps[0].observations[0].content)

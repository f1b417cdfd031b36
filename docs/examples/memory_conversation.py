"""A conversation kept in a SQLite file: the second run sees the first, even after a restart."""

from agentlib import Agent, ScriptedModel, tool
from agentlib.memory import Conversation, SQLStore
from agentlib.models.testing import call, final


@tool
def order_status(order_id: str) -> str:
    """Look up the status of an order.

    Args:
        order_id: The order number, like A-1001.
    """
    return {"A-1001": "shipped on Monday"}.get(order_id, "unknown order")


model = ScriptedModel(
    [
        call("order_status", "Check the order.", order_id="A-1001"),
        final("Order A-1001 shipped on Monday."),
        final("It shipped on Monday, so it should arrive by Thursday."),
    ]
)
agent = Agent(model, tools=[order_status])

store = SQLStore("sqlite:///conversations.db")  # any SQLAlchemy URL; a bare path also works
conversation = Conversation("customer-42", store=store)
agent.run("Where is my order A-1001?", conversation=conversation)

# Later, perhaps in another process: open the same conversation and continue it.
conversation = Conversation.open(SQLStore("sqlite:///conversations.db"), "customer-42")
result = agent.run("When will it arrive?", conversation=conversation)

# The model saw the first turn (task and answer) before the new task.
seen = [message.content for message in model.requests[-1].messages[1:]]
print(seen)
assert seen == [
    "Where is my order A-1001?",
    "Order A-1001 shipped on Monday.",
    "When will it arrive?",
]

# Every turn keeps its steps: thoughts, calls and observations.
first = conversation.turns[0]
print(first.steps[0].calls[0].tool_name, "->", first.steps[0].observations[0].content)
assert first.steps[0].observations[0].content == "shipped on Monday"

for info in store.list_conversations():
    print(info.id, info.turns, info.title)
assert [(info.id, info.turns) for info in store.list_conversations()] == [("customer-42", 2)]

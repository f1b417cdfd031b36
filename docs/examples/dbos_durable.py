"""A durable run on DBOS: needs PostgreSQL, named by DBOS_SYSTEM_DATABASE_URL.

    DBOS_SYSTEM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/support python dbos_durable.py

Start the same file in several processes (each a worker; give none the same executor id) and
the runs on the queue are spread over them; kill one, and its runs finish on another.
"""

import os

from agentlib import Agent, ScriptedModel, tool
from agentlib.durable import DurableAgent, DurableWorker
from agentlib.models.testing import call, final


@tool
def order_status(order: int) -> str:
    """Look up an order's status.

    Args:
        order: The order number.
    """
    return f"order {order}: shipped on Monday"


model = ScriptedModel([call("order_status", order=42), final("Order 42 shipped on Monday.")])
agent = Agent(model, tools=[order_status])
durable = DurableAgent(agent, name="support")  # in every process, before the worker starts

config = {"name": "support-app", "system_database_url": os.environ["DBOS_SYSTEM_DATABASE_URL"]}
with DurableWorker(config, concurrency=4):
    run_id = durable.enqueue("Where is order 42?")  # any worker of support-app may run it
    result = durable.result(run_id)  # waits, wherever it runs

print(result.output)
print([step.calls[0].tool_name for step in result.steps if step.calls])
assert result.output == "Order 42 shipped on Monday."

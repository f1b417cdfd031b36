"""A run survives the death of its process: checkpointed to SQLite, resumed by its id."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from agentlib import Agent, ScriptedModel, tool
from agentlib.memory import SQLStore
from agentlib.models.testing import call, final

LEDGER = Path("ledger.txt")
WORKER = sys.argv[1:] == ["worker"]


@tool
def pay(to: str, amount: int) -> str:
    """Pay someone.

    Args:
        to: Who is paid.
        amount: How many euros.
    """
    with LEDGER.open("a") as ledger:
        ledger.write(f"paid {amount} € to {to}\n")
    if WORKER and to == "carol":
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies while this call is in flight
    return f"paid {amount} € to {to}"


SCRIPT = [
    call("pay", to="alice", amount=10),
    call("pay", to="carol", amount=30),
    final("Alice is paid; the payment to carol was interrupted, check the ledger."),
]


def agent(script: list) -> Agent[str]:
    # Every step of every run is checkpointed to runs.db (any SQLAlchemy URL works).
    return Agent(ScriptedModel(script), tools=[pay], checkpoints=SQLStore("runs.db"))


if WORKER:
    agent(SCRIPT).run("Pay alice 10 € and carol 30 €.", run_id="payroll-7")
    raise SystemExit("not reached")

worker = subprocess.run([sys.executable, __file__, "worker"], check=False)
print("the worker was killed:", worker.returncode == -signal.SIGKILL)

# Another process (here, this one) continues the run from its last checkpoint. Its model
# carries on where the worker's stopped, so this script holds only the final step.
result = agent(SCRIPT[2:]).resume("payroll-7")
print(result.run_id, result.stop_reason)
for step in result.steps:
    for observation in step.observations:
        print(f"step {step.index}:", observation.content.split(";")[0])
print(LEDGER.read_text(), end="")  # each payment ran once: nothing was paid twice

"""A paused run kept in a SQLite store, resumed later by another agent object (or process)."""

from pathlib import Path

from agentlib import Agent, Approve, Conversation, ScriptedModel, tool
from agentlib.memory import SQLStore
from agentlib.models.testing import call, final

Path("old.log").write_text("x")


@tool(requires_approval=True)
def delete(path: str) -> str:
    """Delete a file.

    Args:
        path: The file to delete.
    """
    Path(path).unlink()
    return f"deleted {path}"


# Process 1: the run pauses; the turn and its checkpoint are saved in runs.db.
store = SQLStore("runs.db")
conversation = Conversation.open(store, "ops-42")
agent = Agent(ScriptedModel([call("delete", path="old.log")]), tools=[delete])
print(agent.run("Delete old.log", conversation=conversation).stop_reason)

# Process 2 (hours later): open the conversation, decide, resume in the same turn.
conversation = Conversation.open(SQLStore("runs.db"), "ops-42")
agent = Agent(ScriptedModel([final("old.log is gone.")]), tools=[delete])
result = agent.resume(conversation.checkpoint, {"call_1": Approve()}, conversation=conversation)
print(result.output, Path("old.log").exists(), len(conversation.turns))

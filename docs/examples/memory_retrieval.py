"""RetrievalMemory: recent turns, plus the old turns relevant to the new task."""

from agentlib import Agent, ScriptedModel
from agentlib.memory import Conversation, RetrievalMemory, Turn
from agentlib.models.testing import final

notes = [
    ("My locker code is 4471.", "Saved."),
    ("The meeting moved to room B12.", "Saved."),
    ("Buy oat milk on the way home.", "Saved."),
    ("Call the plumber tomorrow.", "Saved."),
]
conversation = Conversation(
    memory=RetrievalMemory(k=1, recent=1),  # default index: KeywordIndex, deterministic
    turns=[Turn(task=task, answer=answer, stop_reason="final_answer") for task, answer in notes],
)
model = ScriptedModel([final("4471")])
Agent(model).run("What was my locker code?", conversation=conversation)

seen = [message.content for message in model.requests[0].messages[1:-1]]
print(seen)
# The relevant old turn, then the most recent turn.
assert seen == ["My locker code is 4471.", "Saved.", "Call the plumber tomorrow.", "Saved."]

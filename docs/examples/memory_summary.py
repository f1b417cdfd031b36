"""SummaryMemory: the last turns verbatim, older ones folded into a summary by a model."""

from collections.abc import Sequence

from agentlib import Agent, FunctionModel, Message, OutputSchema, ScriptedModel
from agentlib.memory import Conversation, SummaryMemory
from agentlib.models.testing import final


def summarise(messages: Sequence[Message], output: OutputSchema | None) -> str:
    # A stand-in for a real model: the request holds the summary so far and the new turns.
    new_turns = messages[-1].content.split("New turns:")[1]
    facts = [line.removeprefix("User: ") for line in new_turns.splitlines() if "User:" in line]
    return "The user said: " + "; ".join(facts)


conversation = Conversation(memory=SummaryMemory(FunctionModel(summarise), recent=1))
tasks = ["I live in Bergen.", "I have two cats.", "What should I cook tonight?"]
model = ScriptedModel([final("Noted."), final("Lovely."), final("Fish soup.")])
agent = Agent(model)
for task in tasks:
    agent.run(task, conversation=conversation)

# The third run saw a summary of the first turn, then the second turn verbatim.
history = model.requests[-1].messages[1:]
for message in history:
    print(f"{message.role}: {message.content}")
assert history[0].role == "system"
assert history[0].content.endswith("The user said: I live in Bergen.")
assert [m.content for m in history[1:]] == ["I have two cats.", "Lovely.", tasks[2]]

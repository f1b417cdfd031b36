"""A triage agent hands SQL questions to a SQL agent and docs questions to a retrieval agent."""

import asyncio

from agentlib import Agent, RunFinishedEvent, ScriptedModel
from agentlib.models.testing import call, final
from agentlib.steps import HandoffEvent, SubagentEvent
from agentlib.tools.retrieval import Collection, Document, HashingEmbedder, RetrievalTool
from agentlib.tools.sql import SQLDatabase, create_music_store

# The specialists, each with its own tools. Scripted models stand in for real ones: swap in
# LocalModel() or OpenAIModel(...) (one model object may serve every agent).
create_music_store("music.db")
db = SQLDatabase("sqlite:///music.db")
sql_agent = Agent(
    ScriptedModel(
        [
            call(
                "run_query",
                "Count the tracks of each genre, most first.",
                query={
                    "table": "tracks",
                    "joins": [{"on": "tracks.genre_id = genres.genre_id"}],
                    "select": [{"column": "genres.name"}, {"column": "*", "aggregate": "count"}],
                    "order_by": [{"column": "*", "aggregate": "count", "direction": "desc"}],
                    "limit": 1,
                },
            ),
            final("Blues has the most tracks."),
        ]
    ),
    tools=[db],
    name="sql",
    description="Answers questions about the music store's data (artists, tracks, sales).",
)

docs = Collection(embedder=HashingEmbedder(256))  # deterministic and offline
docs.add_documents(
    [
        Document(
            text="# Refunds\n\nA refund takes 14 days.\n",
            metadata={"source": "policies/refunds.md"},
        ),
        Document(
            text="# Shipping\n\nOrders ship within two working days.\n",
            metadata={"source": "policies/shipping.md"},
        ),
    ]
)
docs_agent = Agent(
    ScriptedModel(
        [call("search_documents", query="how long does a refund take"), final("14 days [1].")]
    ),
    tools=[RetrievalTool(docs)],
    name="docs",
    description="Answers questions from the store's policy documents.",
)

# The triage agent has no tools: its step offers `transfer_to_sql`, `transfer_to_docs` and
# `final_answer`. The agent it hands over to continues with the task and the transcript.
triage = Agent(
    ScriptedModel([call("transfer_to_sql", "A data question."), call("transfer_to_docs")]),
    name="triage",
    instructions="Hand each question to the agent that can answer it.",
    handoffs=[sql_agent, docs_agent],
)

result = triage.run("Which genre has the most tracks?")
print(f"{result.agent_name} answered: {result.output}")  # sql answered: Blues has ...
print([(step.index, step.agent_name, step.handoff) for step in result.steps])
print(result.handoffs)
assert result.agent_name == "sql" and result.handoffs[0].to_agent == "sql"
assert "Blues" in result.steps[1].observations[0].content  # the query really ran


async def watch() -> None:
    """Stream a run: the handoff is an event; the new agent's steps follow."""
    async for event in triage.stream("How long does a refund take?"):
        if isinstance(event, HandoffEvent):
            print(f"step {event.step}: {event.from_agent} -> {event.to_agent}")
        elif isinstance(event, RunFinishedEvent):
            print(f"{event.result.agent_name} answered: {event.result.output}")
            assert "policies/refunds.md" in event.result.steps[1].observations[0].content


asyncio.run(watch())

# The other way to combine agents: a sub-agent as a tool. The manager keeps the conversation,
# calls the docs agent like any tool, and gets its answer as the observation.
docs_agent.model = ScriptedModel(
    [call("search_documents", query="shipping time"), final("Within two working days [1].")]
)
manager = Agent(
    ScriptedModel(
        [
            call("ask_docs", "The policies say it.", task="How fast do orders ship?"),
            final("Orders ship within two working days."),
        ]
    ),
    tools=[docs_agent.as_tool("ask_docs", max_steps=4)],
)


async def collect() -> list:
    """Every event of the manager's run."""
    return [event async for event in manager.stream("How fast do you ship?")]


events = asyncio.run(collect())
result = events[-1].result
nested = result.steps[0].observations[0].run  # the sub-agent's whole run
print("manager:", result.output)
print("sub-agent steps:", [c.tool_name for step in nested.steps for c in step.calls])
print("sub-agent events in the stream:", sum(isinstance(e, SubagentEvent) for e in events))
print("tokens, sub-agent's included:", result.usage.total_tokens)
assert nested.ok and nested.agent_name == "docs"
db.close()

"""An agent answers a question from the graph: describe, query, answer."""

import json
from collections.abc import Sequence

from agentlib import Agent, FunctionModel, Message, OutputSchema
from agentlib.models.testing import call, final
from agentlib.tools.cypher import GraphDatabase, load_sample_graph


def decide(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, object]:
    """Stands in for a real model: look at the schema, query, answer from the rows."""
    transcript = "\n".join(message.content for message in messages)
    if "Relationship types" not in transcript:
        return call("describe_graph", "What is in the graph?")
    if '"rows"' not in transcript:
        return call(
            "run_cypher",
            "Count the reviews per critic.",
            query="MATCH (c:Person)-[r:REVIEWED]->(m:Movie) "
            "RETURN c.name AS critic, count(r) AS reviews ORDER BY critic",
        )
    start = transcript.rindex('"rows"')
    rows = json.loads(transcript[transcript.index("[", start) : transcript.index("]", start) + 1])
    return final(", ".join(f"{row['critic']}: {row['reviews']}" for row in rows))


database = GraphDatabase(load_sample_graph())
agent = Agent(FunctionModel(decide), tools=[database])
result = agent.run("How many movies has each critic reviewed?")
print(result.output)
assert result.output is not None and "Angela Scope: 6" in result.output
database.close()

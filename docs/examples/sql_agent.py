"""An agent answers a question from the sample music-store database (SQLite)."""

from agentlib.tools.sql import SQLDatabase, create_music_store

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final

create_music_store("music.db")  # 8 tables, ~900 rows
db = SQLDatabase("sqlite:///music.db")  # opened read-only

# A scripted model stands in for a real one; swap in LocalModel() or OpenAIModel(...).
model = ScriptedModel(
    [
        call("list_tables", "What is in the database?"),
        call("describe_tables", "Look at the two tables I need.", tables=["genres", "tracks"]),
        call(
            "run_query",
            "Count the tracks of each genre, most first.",
            query={
                "table": "tracks",
                "joins": [{"on": "tracks.genre_id = genres.genre_id"}],
                "select": [{"column": "genres.name"}, {"column": "*", "aggregate": "count"}],
                "order_by": [{"column": "*", "aggregate": "count", "direction": "desc"}],
                "limit": 3,
            },
        ),
        final("Blues has the most tracks."),
    ]
)
agent = Agent(model, tools=[db])
result = agent.run("Which genre has the most tracks?")

for step in result.steps:
    for observation in step.observations:
        print(f"--- {observation.tool_name}\n{observation.content[:300]}")
print("answer:", result.output)
db.close()

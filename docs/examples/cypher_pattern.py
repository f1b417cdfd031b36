"""Constrained construction: the model fills in a pattern whose names are the schema's enums."""

from agentlib import ScriptedModel
from agentlib.tools.cypher import GraphDatabase, load_sample_graph, text_to_cypher

database = GraphDatabase(load_sample_graph())

# A real model would write this from the question; the schema it fills in only allows the
# graph's labels, relationship types and properties.
model = ScriptedModel(
    [
        {
            "start": {"variable": "p", "label": "Person"},
            "steps": [
                {
                    "relationship": "ACTED_IN",
                    "direction": "out",
                    "node": {"variable": "m", "label": "Movie"},
                }
            ],
            "conditions": [
                {"variable": "p", "property": "name", "operator": "=", "value": "Meg Ryan"}
            ],
            "returns": [{"variable": "m", "property": "title"}],
            "order_by": [{"variable": "m", "property": "released"}],
        }
    ]
)
statement = text_to_cypher(model, database, "Which movies did Meg Ryan act in?")
print(statement.text)  # values are quoted by the library, never pasted in raw

titles = [row["m.title"] for row in database.execute(statement).rows]
print(titles)
assert titles == ["When Harry Met Sally...", "Sleepless in Seattle", "You've Got Mail"]
database.close()

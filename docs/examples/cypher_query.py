"""Describe the sample movies graph and run read-only Cypher on it."""

from agentlib import ToolError
from agentlib.tools.cypher import GraphDatabase, load_sample_graph

database = GraphDatabase(load_sample_graph(), max_rows=50, timeout=10.0)
print(database.describe())

result = database.run(
    "MATCH (d:Person)-[:DIRECTED]->(m:Movie) "
    "RETURN d.name AS director, count(m) AS movies ORDER BY movies DESC LIMIT 3"
)
print(result.query)  # the validated text that ran, rebuilt from its tokens
for row in result.rows:
    print(row)
assert result.rows[0] == {"director": "Christopher Nolan", "movies": 5}

try:
    database.run("MATCH (m:Movie) DETACH DELETE m")
except ToolError as error:
    print("refused:", error)

database.close()  # stops the worker process

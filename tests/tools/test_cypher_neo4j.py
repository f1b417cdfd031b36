"""The Neo4j path: what reaches the server, recorded by a driver stand-in (issue 23).

The real `neo4j` package supplies the access modes, `unit_of_work` and its errors; only the
network driver is replaced by one that records every query text it is given and answers the
schema queries from a table. Every assertion is on the recorded text.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentlib import ToolError
from agentlib.tools.cypher import CypherStatement, GraphDatabase, Neo4jBackend
from agentlib.tools.cypher._syntax import COMMENT_TERMINATORS, SPACES

pytest.importorskip("neo4j")


class _Result:
    def __init__(self, keys: list[str], rows: list[list[Any]]) -> None:
        self._keys, self._rows = keys, rows

    def keys(self) -> list[str]:
        return self._keys

    def __iter__(self) -> Any:
        return iter([dict(zip(self._keys, row, strict=True)) for row in self._rows])


_SCHEMA_ANSWERS: dict[str, tuple[list[str], list[list[Any]]]] = {
    "MATCH (n) WITH n LIMIT": (
        ["label", "key", "examples", "count"],
        [["Person", "name", ["Keanu Reeves"], 2], ["Movie", "title", ["The Matrix"], 1]],
    ),
    "MATCH (n) UNWIND labels(n)": (["label", "count"], [["Movie", 1], ["Person", 2]]),
    "MATCH (a)-[r]->(b)": (
        ["source", "type", "target", "count"],
        [["Person", "ACTED_IN", "Movie", 1], ["Person", "REVIEWED", "Movie", 1]],
    ),
    "MATCH ()-[r]->() WITH r LIMIT": (
        ["type", "key", "examples", "count"],
        [
            ["ACTED_IN", "roles", [["Neo"]], 1],
            ["REVIEWED", "rating", [95], 1],
            ["REVIEWED", "summary", ["Great"], 1],
        ],
    ),
    "CALL": (["nodes", "relationships"], [[3, 2]]),
}


class RecordingDriver:
    """A `neo4j.Driver` stand-in: records what is sent; answers schema queries, else no rows."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sessions: list[dict[str, Any]] = []

    def session(self, **options: Any) -> Any:
        self.sessions.append(options)
        driver = self

        class Transaction:
            def run(self, text: str, parameters: dict[str, Any]) -> _Result:
                driver.sent.append(text)
                for prefix, answer in _SCHEMA_ANSWERS.items():
                    if text.startswith(prefix):
                        return _Result(*answer)
                return _Result(["role"], [["Neo"]])

        class Session:
            def __enter__(self) -> Session:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute_read(self, work: Any) -> Any:
                return work(Transaction())

        return Session()

    def queries(self) -> list[str]:
        """What was sent apart from the schema description."""
        return [text for text in self.sent if not text.startswith(tuple(_SCHEMA_ANSWERS))]


@pytest.fixture
def driver() -> RecordingDriver:
    return RecordingDriver()


@pytest.fixture
def database(driver: RecordingDriver) -> GraphDatabase:
    return GraphDatabase(Neo4jBackend(driver), timeout=5.0)


def test_the_terminators_are_neo4js() -> None:
    # Cypher5Lexer.g4 / Cypher25Lexer.g4: SINGLE_LINE_COMMENT : '//' ~[\r\n]* ; and SPACE.
    assert set(COMMENT_TERMINATORS) == {"\r", "\n"}
    grammar_spaces = {chr(c) for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F)}
    grammar_spaces |= {chr(c) for c in (0x20, 0xA0, 0x1680, *range(0x2000, 0x200B))}
    grammar_spaces |= {chr(c) for c in (0x2028, 0x2029, 0x202F, 0x205F, 0x3000)}
    assert set(SPACES) == grammar_spaces
    assert "\x85" not in SPACES  # NEL is neither a space nor a terminator for Neo4j


# The payloads: a `//` comment that Neo4j ends at the carriage return.
ATTACKS = [
    ("MATCH (n) //\rDETACH DELETE n", "DETACH is not allowed"),
    ("MATCH (n:Person) // note\rSET n.name = 'x' RETURN n", "SET is not allowed"),
    (
        "MATCH (n) //\rCALL apoc.cypher.runWrite('CREATE (x)', {}) RETURN n",
        "CALL is not allowed",
    ),
    (
        "MATCH (n) //\rLOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
        "LOAD CSV is not allowed",
    ),
    ("MATCH (n) //\r\nDETACH DELETE n", "DETACH is not allowed"),
    ("MATCH (n) // x\nDETACH DELETE n", "DETACH is not allowed"),
]


@pytest.mark.parametrize(("query", "message"), ATTACKS)
def test_a_clause_after_a_carriage_return_is_seen_and_refused(
    database: GraphDatabase, driver: RecordingDriver, query: str, message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        database.run(query)
    assert driver.queries() == []


@pytest.mark.parametrize("query", [query for query, _ in ATTACKS])
def test_a_statement_built_by_hand_is_validated_again_by_the_backend(
    database: GraphDatabase, driver: RecordingDriver, query: str
) -> None:
    with pytest.raises(ToolError, match="not allowed"):
        database.execute(CypherStatement(text=query))
    assert driver.queries() == []


@pytest.mark.parametrize(
    "query",
    [
        "MATCH (p:Person) // who\rRETURN p.name",
        "MATCH (p:Person) // who\r\nRETURN p.name",
        "MATCH (p:Person) /* who */ RETURN p.name",
        "MATCH (p:Person)\u2028RETURN p.name",
        "MATCH (p:Person) RETURN p.name // the rest\u2028DETACH DELETE p",
    ],
)
def test_the_server_gets_the_text_rebuilt_from_the_tokens(
    database: GraphDatabase, driver: RecordingDriver, query: str
) -> None:
    result = database.run(query)
    assert driver.queries() == ["MATCH (p:Person) RETURN p.name"]
    assert result.query == "MATCH (p:Person) RETURN p.name"


def test_a_hand_built_statement_is_sent_rebuilt(
    database: GraphDatabase, driver: RecordingDriver
) -> None:
    database.execute(CypherStatement(text="MATCH (p:Person) // x\rRETURN p.name"))
    assert driver.queries() == ["MATCH (p:Person) RETURN p.name"]


def test_the_schema_reads_relationship_properties(database: GraphDatabase) -> None:
    assert {"roles", "rating", "summary"} <= set(database.schema.property_names)
    assert database.schema.properties_of("REVIEWED") == ["rating", "summary"]
    assert ".rating: INTEGER, e.g. 95" in database.describe()


def test_relationship_properties_and_unwind_of_a_property_reach_the_server(
    database: GraphDatabase, driver: RecordingDriver
) -> None:
    database.run(
        "MATCH (:Person)-[r:REVIEWED]->(m:Movie) WHERE r.rating > 90 RETURN m.title, r.summary"
    )
    result = database.run(
        "MATCH (:Person)-[r:ACTED_IN]->(:Movie) UNWIND r.roles AS role RETURN role"
    )
    assert result.rows == [{"role": "Neo"}]
    assert driver.queries() == [
        "MATCH (:Person)-[r:REVIEWED]->(m:Movie) WHERE r.rating > 90 RETURN m.title, r.summary",
        "MATCH (:Person)-[r:ACTED_IN]->(:Movie) UNWIND r.roles AS role RETURN role",
    ]
    assert all(options["default_access_mode"] == "READ" for options in driver.sessions)

"""Question to Cypher: structured patterns and free Cypher, the agent loop, the Neo4j seam."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Sequence
from importlib import resources
from typing import Any

import pytest

from agentlib import (
    Agent,
    FunctionModel,
    Message,
    MissingExtraError,
    ModelOutputError,
    OutputSchema,
    ScriptedModel,
)
from agentlib.models.testing import call, final
from agentlib.tools.cypher import (
    CypherStatement,
    GraphDatabase,
    Neo4jBackend,
    compile_pattern,
    graph_from_records,
    load_sample_graph,
    text_to_cypher,
)


@pytest.fixture(scope="module")
def database() -> GraphDatabase:
    return GraphDatabase(load_sample_graph(), timeout=None)


NOLAN_PATTERN = {
    "start": {"variable": "d", "label": "Person"},
    "steps": [
        {
            "relationship": "DIRECTED",
            "direction": "out",
            "node": {"variable": "m", "label": "Movie"},
        }
    ],
    "conditions": [
        {"variable": "d", "property": "name", "operator": "=", "value": "Christopher Nolan"}
    ],
    "returns": [{"variable": "m", "property": "title"}],
    "order_by": [{"variable": "m", "property": "released"}],
    "limit": 10,
}


def test_pattern_mode_prompts_with_the_schema_and_compiles(database: GraphDatabase) -> None:
    model = ScriptedModel([NOLAN_PATTERN])
    statement = text_to_cypher(model, database, "Which movies did Christopher Nolan direct?")
    # The embedded engine takes parameters: the value travels as one, never in the text.
    assert statement.text == (
        "MATCH (d:Person)-[:DIRECTED]->(m:Movie) WHERE d.name = $p0 "
        "RETURN m.title ORDER BY m.released LIMIT 10"
    )
    assert statement.parameters == {"p0": "Christopher Nolan"}
    request = model.requests[0]
    system = request.messages[0].content
    assert "(:Person)-[:DIRECTED]->(:Movie)" in system
    assert request.messages[-1].content == "Which movies did Christopher Nolan direct?"
    assert request.output is not None
    start = request.output.schema["properties"]["start"]
    assert start["properties"]["label"]["anyOf"][0]["enum"] == ["Genre", "Movie", "Person"]
    titles = [row["m.title"] for row in database.execute(statement).rows]
    assert titles == ["Memento", "The Prestige", "The Dark Knight", "Inception", "Interstellar"]


def test_pattern_mode_retries_a_label_outside_the_schema(database: GraphDatabase) -> None:
    invented = json.loads(json.dumps(NOLAN_PATTERN))
    invented["steps"][0]["node"]["label"] = "Film"
    model = ScriptedModel([invented, NOLAN_PATTERN])
    statement = text_to_cypher(model, load_sample_graph(), "Nolan's movies?")
    assert ":Movie" in statement.text
    correction = model.requests[1].messages[-1].content
    assert "invalid" in correction and "Film" in correction


def test_cypher_mode_shows_the_validator_error_and_retries(database: GraphDatabase) -> None:
    def reply(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, Any]:
        if len(messages) == 2:  # first attempt: a write, which the validator refuses
            return {"query": "MATCH (m:Movie) DETACH DELETE m"}
        assert "DETACH is not allowed" in messages[-1].content
        return {"query": "MATCH (m:Movie) WHERE m.released = 1999 RETURN m.title"}

    model = FunctionModel(reply)
    statement = text_to_cypher(model, database, "Movies from 1999?", mode="cypher")
    assert statement == CypherStatement(
        text="MATCH (m:Movie) WHERE m.released = 1999 RETURN m.title", columns=("m.title",)
    )
    assert len(model.requests) == 2


def test_cypher_mode_gives_up_after_the_retries(database: GraphDatabase) -> None:
    model = ScriptedModel([{"query": "CREATE (n)"}] * 2)
    with pytest.raises(ModelOutputError, match="CREATE is not allowed"):
        text_to_cypher(model, database, "Add a node", mode="cypher", retries=1)


def _answer_from_observation(messages: Sequence[Message], output: OutputSchema | None) -> Any:
    """A model that describes the graph, queries it, then answers from what the tool returned."""
    transcript = "\n".join(message.content for message in messages)
    if "Relationship types" not in transcript:
        return call("describe_graph", "Look at the schema first.")
    if '"rows"' not in transcript:
        return call(
            "run_cypher",
            "Count Tom Hanks's movies.",
            query="MATCH (p:Person {name: 'Tom Hanks'})-[:ACTED_IN]->(m:Movie) "
            "RETURN COUNT(m) AS movies",
        )
    start = transcript.rindex('"rows"')
    count = json.loads(transcript[transcript.index("[", start) : transcript.index("]", start) + 1])
    return final(f"Tom Hanks acted in {count[0]['movies']} movies.", "Answer from the rows.")


def test_agent_describes_queries_and_answers(database: GraphDatabase) -> None:
    records = json.loads(
        resources.files("agentlib.tools").joinpath("data/movies.json").read_text("utf-8")
    )
    expected = sum(
        1
        for r in records["relationships"]
        if r["type"] == "ACTED_IN" and r["source"] == "person:tom-hanks"
    )
    agent = Agent(FunctionModel(_answer_from_observation), tools=[database])
    result = agent.run("How many movies did Tom Hanks act in?")
    assert result.ok
    tools_used = [c.tool_name for step in result.steps for c in step.calls]
    assert tools_used == ["describe_graph", "run_cypher"]
    observation = result.steps[1].observations[0]
    assert not observation.is_error
    assert observation.value.rows == [{"movies": expected}]
    assert result.output == f"Tom Hanks acted in {expected} movies."


def test_agent_sees_a_refused_write_as_an_observation(database: GraphDatabase) -> None:
    model = ScriptedModel(
        [
            call("run_cypher", query="MATCH (m:Movie) SET m.title = 'x' RETURN m"),
            final("I cannot change the graph."),
        ]
    )
    result = Agent(model, tools=[database]).run("Rename every movie to x")
    observation = result.steps[0].observations[0]
    assert observation.is_error and observation.error_type == "ToolError"
    assert "SET is not allowed" in observation.content
    assert result.output == "I cannot change the graph."


def test_agent_uses_the_pattern_tool(database: GraphDatabase) -> None:
    model = ScriptedModel(
        [call("find_pattern", pattern=NOLAN_PATTERN), final("Five Nolan movies.")]
    )
    result = Agent(model, tools=[database]).run("Which movies did Nolan direct?")
    observation = result.steps[0].observations[0]
    assert not observation.is_error
    assert observation.value.rows[0]["m.title"] == "Memento"


# ---- the Neo4j seam ------------------------------------------------------------------------


def test_neo4j_backend_names_the_extra_when_the_driver_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "neo4j", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "agentlib-typed\[neo4j\]"'):
        Neo4jBackend(uri="neo4j://127.0.0.1:7687")


def test_patterns_compile_to_driver_parameters(database: GraphDatabase) -> None:
    pattern = database.pattern_model.model_validate(
        {
            **NOLAN_PATTERN,
            "conditions": [
                {
                    "variable": "d",
                    "property": "name",
                    "operator": "IN",
                    "value": ["Christopher Nolan", "x' }) DETACH DELETE (n"],
                },
                {"variable": "m", "property": "released", "operator": ">=", "value": 2000},
            ],
        }
    )
    statement = compile_pattern(pattern, parameters=True)
    assert statement.text == (
        "MATCH (d:Person)-[:DIRECTED]->(m:Movie) WHERE d.name IN $p0 AND m.released >= $p1 "
        "RETURN m.title ORDER BY m.released LIMIT 10"
    )
    assert statement.parameters == {
        "p0": ["Christopher Nolan", "x' }) DETACH DELETE (n"],
        "p1": 2000,
    }


class _FakeResult:
    def __init__(self, keys: list[str], rows: list[list[Any]]) -> None:
        self._keys, self._rows = keys, rows

    def keys(self) -> list[str]:
        return self._keys

    def __iter__(self) -> Any:
        return iter([dict(zip(self._keys, row, strict=True)) for row in self._rows])


class _FakeDriver:
    """Stands in for a neo4j.Driver: records sessions and queries, answers from a table."""

    def __init__(self, answers: dict[str, tuple[list[str], list[list[Any]]]]) -> None:
        self.answers = answers
        self.sessions: list[dict[str, Any]] = []
        self.queries: list[tuple[str, dict[str, Any], float | None]] = []

    def session(self, **options: Any) -> Any:
        self.sessions.append(options)
        driver = self

        class Session:
            def __enter__(self) -> Session:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute_read(self, work: Any) -> Any:
                timeout = getattr(work, "timeout", None)

                class Transaction:
                    def run(self, text: str, parameters: dict[str, Any]) -> _FakeResult:
                        driver.queries.append((text, parameters, timeout))
                        key = next(k for k in driver.answers if text.startswith(k))
                        return _FakeResult(*driver.answers[key])

                return work(Transaction())

        return Session()


def _fake_neo4j_module() -> types.ModuleType:
    module = types.ModuleType("neo4j")
    module.READ_ACCESS = "READ"  # type: ignore[attr-defined]

    def unit_of_work(timeout: float | None = None) -> Any:
        def wrap(function: Any) -> Any:
            function.timeout = timeout
            return function

        return wrap

    class Neo4jError(Exception):
        message = "refused"

    module.unit_of_work = unit_of_work  # type: ignore[attr-defined]
    module.exceptions = types.SimpleNamespace(Neo4jError=Neo4jError)  # type: ignore[attr-defined]
    return module


def test_neo4j_backend_reads_in_read_mode_with_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "neo4j", _fake_neo4j_module())
    driver = _FakeDriver(
        {
            "MATCH (n) WITH n LIMIT": (
                ["label", "key", "examples", "count"],
                [["Person", "name", ["Ada"], 2], ["Team", "name", ["Core"], 1]],
            ),
            "MATCH (n) UNWIND labels(n)": (["label", "count"], [["Person", 2], ["Team", 1]]),
            "MATCH (a)-[r]->(b)": (
                ["source", "type", "target", "count"],
                [["Person", "MEMBER_OF", "Team", 2]],
            ),
            "MATCH ()-[r]->() WITH r LIMIT": (
                ["type", "key", "examples", "count"],
                [["MEMBER_OF", "since", [2019, 2021], 2]],
            ),
            "CALL": (["nodes", "relationships"], [[3, 2]]),
            "MATCH (p:Person)": (["p.name"], [["Ada"], ["Linus"]]),
        }
    )
    database = GraphDatabase(Neo4jBackend(driver, database="people"), timeout=5.0)
    assert database.schema.relationship_types == ["MEMBER_OF"]
    assert "(:Person)-[:MEMBER_OF]->(:Team) (2)" in database.describe()
    assert ".since: INTEGER, e.g. 2019, 2021" in database.describe()
    assert "since" in database.schema.property_names
    result = database.run_pattern(
        {
            "start": {"variable": "p", "label": "Person"},
            "conditions": [
                {"variable": "p", "property": "name", "operator": "STARTS WITH", "value": "A"}
            ],
            "returns": [{"variable": "p", "property": "name"}],
            "limit": 5,
        }
    )
    assert result.rows == [{"p.name": "Ada"}, {"p.name": "Linus"}]
    text, parameters, timeout = driver.queries[-1]
    assert text == "MATCH (p:Person) WHERE p.name STARTS WITH $p0 RETURN p.name LIMIT 5"
    assert parameters == {"p0": "A"}
    assert timeout == 5.0
    assert all(s == {"database": "people", "default_access_mode": "READ"} for s in driver.sessions)
    with pytest.raises(Exception, match="DELETE is not allowed"):
        database.run("MATCH (p:Person) DELETE p")
    assert driver.queries[-1][0].startswith("MATCH (p:Person) WHERE")  # never sent


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_embedded_model_builds_a_valid_pattern() -> None:
    from agentlib import LocalModel

    # A small graph keeps the pattern schema (and the constrained decoding) short.
    graph = graph_from_records(
        [
            {"id": 1, "label": "City", "name": "Paris", "population": 2100000},
            {"id": 2, "label": "Country", "name": "France"},
        ],
        [{"source": 1, "target": 2, "type": "IN_COUNTRY"}],
    )
    database = GraphDatabase(graph, timeout=None)
    try:
        statement = text_to_cypher(
            LocalModel(), database, "Which cities are in France?", retries=1, max_tokens=300
        )
    except ModelOutputError as error:
        # Constrained decoding keeps every name inside the schema's enums; what a 135M model
        # can still get wrong is a cross-reference (returning a variable it never matched),
        # which the pattern validator catches and reports instead of running a wrong query.
        data = json.loads(error.raw_output)
        labels = [data["start"].get("label")]
        labels += [step["node"].get("label") for step in data.get("steps", [])]
        assert set(labels) <= {"City", "Country", None}
        assert {step["relationship"] for step in data.get("steps", [])} <= {"IN_COUNTRY"}
        assert "pattern" in str(error) or "property" in str(error)
        return
    assert statement.text.startswith("MATCH (")
    result = database.execute(statement)  # compiled and validated, so it runs
    assert result.columns

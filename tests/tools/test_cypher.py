"""GraphDatabase over NetworkX: schema, builders, answers on the sample graph, engine limits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from agentlib import ConfigurationError, ToolError
from agentlib.tools.cypher import (
    GrandCypherBackend,
    GraphDatabase,
    GraphSchema,
    LadybugBackend,
    graph_from_edge_list,
    graph_from_records,
    load_sample_graph,
)


def _records() -> dict[str, list[dict[str, Any]]]:
    text = resources.files("agentlib.tools").joinpath("data/movies.json").read_text("utf-8")
    data: dict[str, list[dict[str, Any]]] = json.loads(text)
    return data


class Sample:
    """Answers computed in plain Python from the records, independently of any Cypher engine."""

    def __init__(self) -> None:
        data = _records()
        self.nodes = {node["id"]: node for node in data["nodes"]}
        self.relationships = data["relationships"]

    def name(self, node_id: str) -> str:
        properties = self.nodes[node_id]["properties"]
        return str(properties.get("name", properties.get("title")))

    def links(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.relationships if r["type"] == kind]

    def of_label(self, label: str) -> list[dict[str, Any]]:
        return [node for node in self.nodes.values() if label in node["labels"]]


@pytest.fixture(scope="module")
def sample() -> Sample:
    return Sample()


@pytest.fixture(scope="module", params=["ladybug", "grand-cypher"])
def database(request: pytest.FixtureRequest) -> GraphDatabase:
    # In-process: these tests check answers, on both engines; the worker process has its own
    # tests (test_cypher_worker.py).
    graph = load_sample_graph()
    if request.param == "ladybug":
        return GraphDatabase(LadybugBackend(graph, isolation="none"), timeout=None)
    return GraphDatabase(GrandCypherBackend(graph, isolation="none"), timeout=None)


@pytest.fixture(scope="module")
def grand() -> GraphDatabase:
    return GraphDatabase(GrandCypherBackend(load_sample_graph(), isolation="none"), timeout=None)


def _column(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [row[name] for row in rows]


# ---- schema --------------------------------------------------------------------------------


def test_schema_lists_labels_types_directions_properties_and_counts(sample: Sample) -> None:
    schema = load_sample_graph_schema()
    assert schema.label_names == ["Genre", "Movie", "Person"]
    counts = {label.name: label.count for label in schema.labels}
    assert counts == {label: len(sample.of_label(label)) for label in counts}
    triples = {(r.source, r.type, r.target): r.count for r in schema.relationships}
    expected = Counter(
        (
            sample.nodes[r["source"]]["labels"][0],
            r["type"],
            sample.nodes[r["target"]]["labels"][0],
        )
        for r in sample.relationships
    )
    assert triples == dict(expected)
    movie = next(label for label in schema.labels if label.name == "Movie")
    assert {p.name: p.types for p in movie.properties} == {
        "released": ("INTEGER",),
        "runtime": ("INTEGER",),
        "title": ("STRING",),
    }
    title = next(p for p in movie.properties if p.name == "title")
    assert title.examples == ("The Matrix", "The Matrix Reloaded", "John Wick")
    assert schema.properties_of("REVIEWED") == ["rating", "summary"]
    assert schema.node_count == len(sample.nodes)
    assert schema.relationship_count == len(sample.relationships)


def load_sample_graph_schema() -> GraphSchema:
    return GraphDatabase(load_sample_graph(), timeout=None).schema


def test_describe_graph_tool_shows_directions_and_hides_storage_conventions(
    database: GraphDatabase,
) -> None:
    text = database.describe_graph.call()
    assert "(:Person)-[:ACTED_IN]->(:Movie) (148)" in text
    assert ".roles: LIST" in text
    assert "__labels__" not in text


def test_undirected_graph_and_unlabelled_graph_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="undirected"):
        GraphDatabase(nx.Graph([(1, 2)]), timeout=None)
    with pytest.raises(ConfigurationError, match="no node has a label"):
        GraphDatabase(nx.DiGraph([(1, 2)]), timeout=None)
    with pytest.raises(ConfigurationError, match="NetworkX graph or a CypherBackend"):
        GraphDatabase({"nodes": []})


# ---- builders ------------------------------------------------------------------------------


def test_graph_from_records_takes_flat_or_nested_properties() -> None:
    graph = graph_from_records(
        [
            {"id": "a", "label": "Team", "name": "Core"},
            {"id": "b", "labels": ["Person", "Manager"], "properties": {"name": "Ada"}},
        ],
        [{"source": "b", "target": "a", "type": "LEADS", "since": 2020}],
    )
    rows = (
        GraphDatabase(graph, timeout=None)
        .run("MATCH (p:Manager)-[r:LEADS]->(t:Team) RETURN p.name, r.since, t.name")
        .rows
    )
    assert rows == [{"p.name": "Ada", "r.since": 2020, "t.name": "Core"}]


@pytest.mark.parametrize(
    ("nodes", "relationships", "message"),
    [
        ([{"name": "x"}], [], "has no 'id'"),
        ([{"id": 1, "label": ""}], [], "non-empty strings"),
        ([{"id": 1}], [{"source": 1, "target": 2, "type": "R"}], "unknown node 2"),
        ([{"id": 1}], [{"source": 1, "target": 1}], "has no 'type'"),
    ],
)
def test_graph_from_records_reports_bad_records(
    nodes: list[dict[str, Any]], relationships: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        graph_from_records(nodes, relationships)


def test_graph_from_csv_edge_list(tmp_path: Path) -> None:
    path = tmp_path / "reports.csv"
    path.write_text(
        "source,target,type,since\nAda,Grace,MANAGES,2019\nAda,Linus,MANAGES,2021\n"
        "Grace,Linus,MENTORS,\n",
        encoding="utf-8",
    )
    graph = graph_from_edge_list(path, source_label="Employee")
    database = GraphDatabase(graph, timeout=None)
    assert database.schema.relationship_types == ["MANAGES", "MENTORS"]
    rows = database.run(
        "MATCH (a:Employee)-[r:MANAGES]->(b:Employee) RETURN b.name, r.since ORDER BY r.since"
    ).rows
    assert rows == [{"b.name": "Grace", "r.since": 2019}, {"b.name": "Linus", "r.since": 2021}]


def test_graph_from_json_edge_list_with_two_labels(tmp_path: Path) -> None:
    path = tmp_path / "edges.json"
    path.write_text(
        json.dumps([{"source": "alice", "target": "graphs", "weight": 0.5}]), encoding="utf-8"
    )
    graph = graph_from_edge_list(
        path, relationship_type="LIKES", source_label="User", target_label="Topic"
    )
    rows = (
        GraphDatabase(graph, timeout=None)
        .run("MATCH (u:User)-[l:LIKES]->(t:Topic) RETURN u.name, l.weight, t.name")
        .rows
    )
    assert rows == [{"u.name": "alice", "l.weight": 0.5, "t.name": "graphs"}]
    with pytest.raises(ConfigurationError, match=r"\.csv or \.json"):
        graph_from_edge_list(tmp_path / "edges.txt")


# ---- answers on the sample graph -----------------------------------------------------------


def test_movies_of_an_actor(database: GraphDatabase, sample: Sample) -> None:
    expected = sorted(
        sample.name(r["target"])
        for r in sample.links("ACTED_IN")
        if sample.name(r["source"]) == "Tom Hanks"
    )
    result = database.run(
        "MATCH (p:Person {name: 'Tom Hanks'})-[:ACTED_IN]->(m:Movie) RETURN m.title"
    )
    assert sorted(_column(result.rows, "m.title")) == expected
    assert result.columns == ["m.title"]
    assert not result.truncated


def test_directors_ranked_by_movie_count(database: GraphDatabase, sample: Sample) -> None:
    counts = Counter(sample.name(r["source"]) for r in sample.links("DIRECTED"))
    result = database.run(
        "MATCH (d:Person)-[:DIRECTED]->(m:Movie) "
        "RETURN d.name AS director, count(m) AS movies ORDER BY movies DESC LIMIT 3"
    )
    assert result.columns == ["director", "movies"]
    assert _column(result.rows, "movies") == [n for _, n in counts.most_common(3)]
    assert result.rows[0] == {
        "director": "Christopher Nolan",
        "movies": counts["Christopher Nolan"],
    }


def test_aggregation_with_limit_counts_every_match(database: GraphDatabase, sample: Sample) -> None:
    # grand-cypher alone stops matching at LIMIT before counting; the tool pages afterwards.
    per_genre = Counter(sample.name(r["target"]) for r in sample.links("IN_GENRE"))
    rows = database.run(
        "MATCH (m:Movie)-[:IN_GENRE]->(g:Genre) RETURN g.name, COUNT(m) AS n LIMIT 100"
    ).rows
    assert {row["g.name"]: row["n"] for row in rows} == dict(per_genre)
    total = database.run("MATCH (m:Movie)-[:IN_GENRE]->(g:Genre) RETURN COUNT(m) AS n LIMIT 1")
    assert total.rows == [{"n": len(sample.links("IN_GENRE"))}]


def test_distinct_with_limit_returns_distinct_rows(database: GraphDatabase) -> None:
    rows = database.run(
        "MATCH (p:Person)-[:ACTED_IN]->(m:Movie) RETURN DISTINCT p.name LIMIT 5"
    ).rows
    assert len(rows) == 5
    assert len({row["p.name"] for row in rows}) == 5


def test_co_actors_and_filters(database: GraphDatabase, sample: Sample) -> None:
    movies_of: dict[str, set[str]] = {}
    for r in sample.links("ACTED_IN"):
        movies_of.setdefault(sample.name(r["source"]), set()).add(r["target"])
    expected = sorted(
        name
        for name, movies in movies_of.items()
        if name != "Keanu Reeves" and movies & movies_of["Keanu Reeves"]
    )
    rows = database.run(
        "MATCH (k:Person)-[:ACTED_IN]->(m:Movie)<-[:ACTED_IN]-(c:Person) "
        "WHERE k.name = 'Keanu Reeves' RETURN DISTINCT c.name ORDER BY c.name"
    ).rows
    assert _column(rows, "c.name") == expected


def test_is_not_null_and_comparisons(database: GraphDatabase, sample: Sample) -> None:
    expected = sorted(
        node["properties"]["name"]
        for node in sample.of_label("Person")
        if node["properties"].get("born") is not None and node["properties"]["born"] < 1935
    )
    rows = database.run(
        "MATCH (p:Person) WHERE p.born IS NOT NULL AND p.born < 1935 RETURN p.name"
    ).rows
    assert sorted(_column(rows, "p.name")) == expected
    critics = database.run("MATCH (p:Person) WHERE p.born IS NULL RETURN p.name").rows
    assert len(critics) == sum(
        1 for n in sample.of_label("Person") if "born" not in n["properties"]
    )


def test_nodes_and_relationships_come_back_as_plain_data(database: GraphDatabase) -> None:
    rows = database.run(
        "MATCH (p:Person)-[r:ACTED_IN]->(m:Movie) WHERE m.title = 'Heat' AND p.name = 'Al Pacino' "
        "RETURN p, r, type(r) AS kind"
    ).rows
    assert rows == [
        {
            "p": {"labels": ["Person"], "properties": {"name": "Al Pacino", "born": 1940}},
            "r": {"type": "ACTED_IN", "properties": {"roles": ["Vincent Hanna"]}},
            "kind": "ACTED_IN",
        }
    ]


def test_row_limit_truncates_and_says_so(database: GraphDatabase) -> None:
    database = GraphDatabase(database.backend, timeout=None, max_rows=10)
    result = database.run("MATCH (p:Person) RETURN p.name")
    assert len(result.rows) == 10
    assert result.truncated
    small = database.run("MATCH (g:Genre) RETURN g.name LIMIT 3")
    assert len(small.rows) == 3 and not small.truncated


def test_skip_and_limit_page_through_ordered_rows(database: GraphDatabase, sample: Sample) -> None:
    titles = sorted(node["properties"]["title"] for node in sample.of_label("Movie"))
    rows = database.run("MATCH (m:Movie) RETURN m.title ORDER BY m.title SKIP 5 LIMIT 3").rows
    assert _column(rows, "m.title") == titles[5:8]


# ---- issue 21's examples: openCypher answers on the embedded engine ------------------------


@pytest.fixture(scope="module")
def embedded() -> Iterator[GraphDatabase]:
    database = GraphDatabase(load_sample_graph(), timeout=30.0)
    yield database
    database.close()


def _born(sample: Sample, name: str) -> int | None:
    for node in sample.of_label("Person"):
        if node["properties"]["name"] == name:
            return node["properties"].get("born")
    raise AssertionError(name)


def test_the_default_engine_is_the_embedded_database(embedded: GraphDatabase) -> None:
    assert isinstance(embedded.backend, LadybugBackend)


def test_comparing_two_peoples_birth_years(embedded: GraphDatabase, sample: Sample) -> None:
    for older, younger in (("Tom Hanks", "Meg Ryan"), ("Meg Ryan", "Tom Hanks")):
        rows = embedded.run(
            f"MATCH (a:Person {{name: '{older}'}}), (b:Person {{name: '{younger}'}}) "
            "WHERE a.born > b.born RETURN a.name, b.name"
        ).rows
        expected = _born(sample, older) > _born(sample, younger)  # type: ignore[operator]
        assert rows == ([{"a.name": older, "b.name": younger}] if expected else [])


def test_collect_in_a_with_pipeline(embedded: GraphDatabase, sample: Sample) -> None:
    cast: dict[str, set[str]] = {}
    for link in sample.links("ACTED_IN"):
        cast.setdefault(sample.name(link["target"]), set()).add(sample.name(link["source"]))
    expected = sorted(
        ((title, len(actors)) for title, actors in cast.items() if len(actors) >= 5),
        key=lambda item: (-item[1], item[0]),
    )
    rows = embedded.run(
        "MATCH (p:Person)-[:ACTED_IN]->(m:Movie) WITH m, collect(p.name) AS actors "
        "WHERE size(actors) >= 5 RETURN m.title AS title, size(actors) AS n "
        "ORDER BY n DESC, title"
    ).rows
    assert [(row["title"], row["n"]) for row in rows] == expected


def test_order_by_an_aggregate_with_ties_broken(embedded: GraphDatabase, sample: Sample) -> None:
    counts = Counter(sample.name(r["source"]) for r in sample.links("ACTED_IN"))
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:7]
    rows = embedded.run(
        "MATCH (p:Person)-[:ACTED_IN]->(:Movie) RETURN p.name AS actor, count(*) AS n "
        "ORDER BY n DESC, actor LIMIT 7"
    ).rows
    assert [(row["actor"], row["n"]) for row in rows] == expected


def test_relationship_properties_and_unwind_of_a_list_property(
    embedded: GraphDatabase, sample: Sample
) -> None:
    roles = Counter(
        role for link in sample.links("ACTED_IN") for role in link["properties"].get("roles", [])
    )
    rows = embedded.run(
        "MATCH (:Person)-[r:ACTED_IN]->(:Movie) UNWIND r.roles AS role "
        "RETURN role, count(*) AS n ORDER BY n DESC, role LIMIT 3"
    ).rows
    assert [(row["role"], row["n"]) for row in rows] == sorted(
        roles.items(), key=lambda item: (-item[1], item[0])
    )[:3]


def test_one_relationship_is_never_matched_twice(embedded: GraphDatabase, sample: Sample) -> None:
    # openCypher: the two ACTED_IN relationships of one MATCH are different relationships, so a
    # co-actor is never the actor themself.
    rows = embedded.run(
        "MATCH (a:Person {name: 'Tom Hanks'})-[:ACTED_IN]->(m:Movie)<-[:ACTED_IN]-(b:Person) "
        "RETURN DISTINCT b.name"
    ).rows
    assert "Tom Hanks" not in [row["b.name"] for row in rows]
    assert rows


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("UNWIND [1, 2.5] AS x RETURN x", "mixes integers and floats"),
        ("MATCH (p:Person) RETURN keys(p)", "keys"),
        ("MATCH (p:Person) RETURN properties(p)", "properties"),
        ("MATCH (p:Person) RETURN substring(p.name, 0, 2)", "counts from 1"),
        ("MATCH (p:Person)-[:ACTED_IN]->(m) RETURN collect(m.title)[0]", "counts from 1"),
        ("MATCH (:Person)-[r:ACTED_IN]->(:Movie) RETURN r.roles[1..2]", "counts from 1"),
        ("MATCH (p:Person) RETURN p.born IN [1956, null]", "holds null"),
        ("MATCH (m:Movie) RETURN toString(m.released)", "six decimals"),
        (
            "MATCH (a:Person)-[:FOLLOWS*1..2]->(b:Person)-[:ACTED_IN]->(m:Movie) RETURN m.title",
            "variable-length relationship together with other relationships",
        ),
    ],
)
def test_what_the_embedded_engine_would_answer_differently_is_refused(
    embedded: GraphDatabase, query: str, message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        embedded.run(query)


def test_sums_and_labels_come_back_as_cypher_values(embedded: GraphDatabase) -> None:
    # sum() of integers is a 128-bit integer in the engine: it comes back as an int.
    assert embedded.run("UNWIND [1, 2, 3] AS x RETURN sum(x) AS s").rows == [{"s": 6}]
    rows = embedded.run("MATCH (n) RETURN labels(n) AS l, count(*) AS c ORDER BY c DESC").rows
    assert rows == [
        {"l": ["Person"], "c": 121},
        {"l": ["Movie"], "c": 46},
        {"l": ["Genre"], "c": 13},
    ]


def test_a_property_with_mixed_types_is_a_configuration_error() -> None:
    graph = graph_from_records(
        [{"id": 1, "label": "P", "score": 4}, {"id": 2, "label": "P", "score": 4.5}]
    )
    with pytest.raises(ConfigurationError, match="'score' of :P holds DOUBLE and INT64"):
        GraphDatabase(graph, timeout=None)
    database = GraphDatabase(GrandCypherBackend(graph, isolation="none"), timeout=None)
    assert len(database.run("MATCH (p:P) RETURN p.score").rows) == 2


def test_a_property_typed_differently_per_label_is_refused_where_both_can_match() -> None:
    # The TCK's MatchWhere5 [4]: over both labels the engine turned the integer 0 into '0'.
    records = [
        {"id": 1, "label": "Root", "name": "x"},
        {"id": 2, "label": "TextNode", "var": "text"},
        {"id": 3, "label": "IntNode", "var": 0},
    ]
    edges = [{"source": 1, "target": 2, "type": "T"}, {"source": 1, "target": 3, "type": "T"}]
    graph = graph_from_records(records, edges)
    database = GraphDatabase(graph, timeout=None)
    for query in ("MATCH (:Root)-->(i) RETURN i.var", "MATCH (i) RETURN i"):
        with pytest.raises(ToolError, match="'var' holds INT64 values on \\(:IntNode\\) and"):
            database.run(query)
    expected = sorted(
        (data["var"] for _, data in graph.nodes(data=True) if isinstance(data.get("var"), int))
    )
    rows = database.run("MATCH (:Root)-->(i:IntNode) RETURN i.var AS v").rows
    assert sorted(row["v"] for row in rows) == expected == [0]
    assert type(rows[0]["v"]) is int
    rel_graph = graph_from_records(
        [{"id": 1, "label": "P"}, {"id": 2, "label": "P"}],
        [
            {"source": 1, "target": 2, "type": "A", "w": 1},
            {"source": 2, "target": 1, "type": "B", "w": "heavy"},
        ],
    )
    rel_database = GraphDatabase(rel_graph, timeout=None)
    with pytest.raises(ToolError, match="'w' holds INT64 values on \\[:A\\]"):
        rel_database.run("MATCH (:P)-[r]->(:P) RETURN r.w")
    assert rel_database.run("MATCH (:P)-[r:B]->(:P) RETURN r.w AS w").rows == [{"w": "heavy"}]


def test_a_column_name_returned_twice_is_refused(embedded: GraphDatabase) -> None:
    # The TCK's Return4 [10]: the engine answered [{'a': 2}], openCypher raises an error.
    with pytest.raises(ToolError, match="column name 'a' is returned twice"):
        embedded.run("RETURN 1 AS a, 2 AS a")
    with pytest.raises(ToolError, match=r"column name 'p\.name' is returned twice"):
        embedded.run("MATCH (p:Person) RETURN p.name, p.name")
    assert embedded.run("RETURN 1 AS a, 2 AS b").rows == [{"a": 1, "b": 2}]


def test_variable_length_variables_and_optional_named_paths_are_refused() -> None:
    # The TCK's Match9 [2]-[4], [9]: the engine gave paths where Cypher gives a list of
    # relationships, and a one-node path where OPTIONAL MATCH gives null.
    graph = graph_from_records(
        [{"id": 1, "label": "A"}, {"id": 2, "label": "B"}, {"id": 3, "label": "C"}],
        [
            {"source": 1, "target": 2, "type": "REL", "num": 1},
            {"source": 2, "target": 3, "type": "REL", "num": 2},
        ],
    )
    database = GraphDatabase(graph, timeout=None)
    with pytest.raises(ToolError, match="variable 'r' of a variable-length relationship"):
        database.run("MATCH (a:A)-[r:REL*2..2]->(c) RETURN r")
    with pytest.raises(ToolError, match="named path in OPTIONAL MATCH"):
        database.run("MATCH (a:C) OPTIONAL MATCH p = (a)-[:REL]->(x) RETURN p")
    expected = [data["num"] for _, _, data in sorted(graph.edges(data=True))]
    rows = database.run("MATCH p = (:A)-[:REL*2..2]->(c) RETURN relationships(p) AS rs").rows
    assert [rel["properties"]["num"] for rel in rows[0]["rs"]] == expected == [1, 2]
    rows = database.run("MATCH (a:C) OPTIONAL MATCH (a)-[r:REL]->(x) RETURN r, x").rows
    assert rows == [{"r": None, "x": None}]


# ---- what grand-cypher cannot do is a clear error, not a wrong answer -----------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("MATCH (p:Person)-[:ACTED_IN]-(m:Movie) RETURN p.name", "write the arrow.*ACTED_IN"),
        (
            "MATCH (p:Person) WHERE p.born = 1956 OR p.born = 1961 AND p.name = 'x' RETURN p.name",
            "parentheses",
        ),
        ("OPTIONAL MATCH (p:Person) RETURN p.name", "OPTIONAL MATCH is not supported"),
        ("MATCH (p:Person) WITH p RETURN p.name", "WITH is not supported"),
        ("UNWIND [1] AS x MATCH (p:Person) RETURN p.name", "UNWIND is not supported"),
        ("MATCH (p:Person) RETURN count(*)", r"COUNT\(\*\) is not supported"),
        ("MATCH (p:Person)-[:ACTED_IN]->(m:Movie) RETURN count(DISTINCT m)", "DISTINCT"),
        ("MATCH (p:Person) WHERE p.name =~ 'T.*' RETURN p.name", "regular expressions"),
        ("MATCH (p:Person) WHERE NOT (p.born = 1956) RETURN p.name", "NOT only before"),
        ("MATCH (p:Person) RETURN p.born + 1", "cannot parse the query at column"),
        ("MATCH (p:Person) RETURN CASE WHEN p.born > 1 THEN 1 END", "CASE expressions"),
        ("RETURN 1", "must start with MATCH"),
    ],
)
def test_unsupported_queries_get_a_specific_one_line_error(
    grand: GraphDatabase, query: str, message: str
) -> None:
    with pytest.raises(ToolError, match=message) as caught:
        grand.run(query)
    assert "\n" not in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_normalised_forms_run(grand: GraphDatabase) -> None:
    # lower-case aggregates, single quotes, != and comma-separated patterns are rewritten.
    result = grand.run(
        "match (p:Person), (m:Movie) where p.name = 'Tom Hanks' and m.title != 'Heat' "
        "and m.released = 1999 return count(m) as n"
    )
    assert result.rows == [{"n": 3}]  # The Matrix, Fight Club, The Green Mile (1999)
    assert "COUNT(m)" in result.query and "MATCH" in result.query


# ---- structured patterns -------------------------------------------------------------------


def test_pattern_compiles_to_quoted_cypher_and_runs(grand: GraphDatabase) -> None:
    database = grand  # grand-cypher has no parameters, so the values are quoted
    pattern = {
        "start": {"variable": "p", "label": "Person"},
        "steps": [
            {
                "relationship": "ACTED_IN",
                "direction": "out",
                "node": {"variable": "m", "label": "Movie"},
            }
        ],
        "conditions": [
            {"variable": "p", "property": "name", "operator": "=", "value": 'Ellis "Red" O\'Neil'},
        ],
        "returns": [{"variable": "m", "property": "title"}],
    }
    statement = database.compile(pattern)
    assert statement.text == (
        'MATCH (p:Person)-[:ACTED_IN]->(m:Movie) WHERE p.name = "Ellis \\"Red\\" O\'Neil" '
        "RETURN m.title LIMIT 25"
    )
    assert statement.parameters == {}
    assert database.execute(statement).rows == []


def test_quoted_values_match_exactly_in_grand_cypher() -> None:
    names = ['Ellis "Red" Redding', "back\\slash", "Mélanie 🎬", "two\nlines"]
    graph = graph_from_records([{"id": i, "label": "P", "name": n} for i, n in enumerate(names)])
    database = GraphDatabase(GrandCypherBackend(graph, isolation="none"), timeout=None)
    for name in names:
        rows = database.run_pattern(
            {
                "start": {"variable": "p", "label": "P"},
                "conditions": [
                    {"variable": "p", "property": "name", "operator": "=", "value": name}
                ],
                "returns": [{"variable": "p", "property": "name"}],
            }
        ).rows
        assert rows == [{"p.name": name}]


def test_pattern_with_aggregate_order_and_reverse_step(
    database: GraphDatabase, sample: Sample
) -> None:
    per_genre = Counter(sample.name(r["target"]) for r in sample.links("IN_GENRE"))
    result = database.run_pattern(
        {
            "start": {"variable": "g", "label": "Genre"},
            "steps": [
                {
                    "relationship": "IN_GENRE",
                    "direction": "in",
                    "node": {"variable": "m", "label": "Movie"},
                }
            ],
            "returns": [
                {"variable": "g", "property": "name", "alias": "genre"},
                {"variable": "m", "aggregate": "count", "alias": "movies"},
            ],
            "order_by": [{"variable": "m", "aggregate": "count", "descending": True}],
            "limit": 2,
        }
    )
    assert result.rows == [
        {"genre": name, "movies": count} for name, count in per_genre.most_common(2)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": {"variable": "p", "label": "Film"}}, "start.label"),
        (
            {"returns": [{"variable": "x", "property": "name"}]},
            "variable 'x' is not in the pattern",
        ),
        ({"returns": [{"variable": "p", "property": "title"}]}, "Person has no property 'title'"),
        (
            {"conditions": [{"variable": "p", "property": "name", "operator": "IN", "value": "x"}]},
            "list value with IN",
        ),
    ],
)
def test_invalid_patterns_are_tool_errors(
    database: GraphDatabase, change: dict[str, Any], message: str
) -> None:
    pattern: dict[str, Any] = {
        "start": {"variable": "p", "label": "Person"},
        "returns": [{"variable": "p", "property": "name"}],
        **change,
    }
    with pytest.raises(ToolError, match=message):
        database.compile(pattern)


def test_pattern_model_enumerates_the_schema(database: GraphDatabase) -> None:
    schema = database.pattern_model.model_json_schema()
    definitions = schema["$defs"]
    node = definitions["PatternNode"]["properties"]["label"]
    assert node["anyOf"][0]["enum"] == ["Genre", "Movie", "Person"]
    step = definitions["PatternStep"]["properties"]["relationship"]
    assert step["enum"] == ["ACTED_IN", "DIRECTED", "FOLLOWS", "IN_GENRE", "REVIEWED"]
    tool = next(t for t in database.tools if t.name == "find_pattern")
    assert "pattern" in tool.parameters["properties"]


def test_tools_can_be_limited_to_patterns() -> None:
    database = GraphDatabase(load_sample_graph(), timeout=None, allow_cypher=False)
    assert [t.name for t in database.tools] == ["describe_graph", "find_pattern"]

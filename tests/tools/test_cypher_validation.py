"""The read-only validator: legitimate reads pass, every write form fails, obfuscated or not."""

from __future__ import annotations

import pytest

from agentlib import ToolError
from agentlib.tools.cypher import GraphDatabase, load_sample_graph, quote_literal
from agentlib.tools.cypher._render import render
from agentlib.tools.cypher._syntax import tokenize


@pytest.fixture(scope="module")
def database() -> GraphDatabase:
    return GraphDatabase(load_sample_graph(), timeout=None)


READS = [
    "MATCH (m:Movie) RETURN m.title",
    "match (m:Movie) return m.title limit 3",
    "MATCH (p:Person)-[:ACTED_IN]->(m:Movie) WHERE p.name = 'Tom Hanks' RETURN m.title",
    'MATCH (p:Person)-[r:ACTED_IN]->(m:Movie {title: "The Matrix"}) RETURN p.name, r.roles',
    "MATCH (m:Movie)<-[:DIRECTED]-(d:Person) RETURN d.name, count(m) AS n ORDER BY n DESC",
    "OPTIONAL MATCH (p:Person)-[:REVIEWED]->(m:Movie) RETURN p.name, m.title",
    "MATCH (p:Person) WITH p WHERE p.born > 1970 RETURN p.name SKIP 2 LIMIT 5",
    "UNWIND [1994, 1999] AS year MATCH (m:Movie) WHERE m.released = year RETURN m.title",
    "UNWIND [{title: 'Heat'}] AS row MATCH (m:Movie) WHERE m.title = row.title RETURN m",
    # Issue 23: a list property, or a list built by WITH, can be unwound.
    "MATCH (:Person)-[r:ACTED_IN]->(m:Movie) UNWIND r.roles AS role RETURN role, m.title",
    "MATCH (p:Person) WITH collect(p.name) AS names UNWIND names AS name RETURN name",
    "RETURN 1",
    "MATCH (p:Person) WHERE p.name STARTS WITH 'Tom' AND p.born IS NOT NULL RETURN p.name",
    "MATCH (p:Person) WHERE p.name IN ['Meg Ryan', 'Tom Hanks'] RETURN DISTINCT p.name",
    "MATCH (a:Person)-[:FOLLOWS*1..2]->(b:Person) RETURN a.name, b.name",
    "MATCH (m:Movie) WHERE EXISTS { MATCH (m)<-[:REVIEWED]-(:Person) } RETURN m.title",
    # A write keyword inside a string, a comment or a backticked name is data.
    "MATCH (m:Movie) WHERE m.title = 'CREATE (x) DETACH DELETE n' RETURN m.title",
    "MATCH (m:Movie) // DELETE everything\nRETURN m.title",
    "MATCH (m:Movie) /* SET m.title = 1 */ RETURN m.title",
    "MATCH (m:Movie) RETURN m.title AS `delete`",
    "MATCH (m:Movie) RETURN m.title;",
    "MATCH (p:Person) WHERE p.name = \"Ellis Boyd 'Red' Redding\" RETURN p",
    "MATCH (p:Person) WHERE p.name = 'Mélanie Laurent' RETURN p.born",
]


@pytest.mark.parametrize("query", READS)
def test_legitimate_read_queries_are_accepted(database: GraphDatabase, query: str) -> None:
    statement = database.check(query)
    # The statement carries the text rebuilt from the validated tokens: the same tokens, with
    # comments dropped and strings re-quoted.
    assert _meaning(statement.text) == _meaning(query)
    assert "//" not in statement.text and "/*" not in statement.text
    assert statement.parameters == {}


def _meaning(query: str) -> list[tuple[str, str]]:
    return [(token.kind, token.text) for token in tokenize(query) if not token.is_symbol(";")]


WRITES = [
    ("CREATE (n:Person {name: 'x'})", "CREATE is not allowed"),
    ("MATCH (n) CREATE (m:Movie)", "CREATE is not allowed"),
    ("MERGE (n:Person {name: 'x'}) RETURN n", "MERGE is not allowed"),
    ("MATCH (n:Person) SET n.name = 'x'", "SET is not allowed"),
    ("MATCH (n:Person) DELETE n", "DELETE is not allowed"),
    ("MATCH (n) DETACH DELETE n", "DETACH is not allowed"),
    ("MATCH (n:Person) REMOVE n.born", "REMOVE is not allowed"),
    ("DROP INDEX person_name", "DROP is not allowed"),
    ("CALL db.labels()", "CALL is not allowed"),
    # Issue 23: Neo4j ends a // comment at a carriage return, and so does the validator.
    ("MATCH (n) //\rDETACH DELETE n", "DETACH is not allowed"),
    ("MATCH (n:Person) // note\rSET n.name = 'x' RETURN n", "SET is not allowed"),
    ("MATCH (n) //\rCALL apoc.cypher.runWrite('CREATE (x)', {}) RETURN n", "CALL is not allowed"),
    ("MATCH (n) //\rLOAD CSV FROM 'file:///etc/passwd' AS l RETURN l", "LOAD CSV is not allowed"),
    ("MATCH (n) // x\r\nDETACH DELETE n", "DETACH is not allowed"),
    ("MATCH (n) CALL { CREATE (m) } RETURN n", "CALL is not allowed"),
    ("LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line", "LOAD CSV is not allowed"),
    ("MATCH (n) FOREACH (x IN [1] | CREATE (m)) RETURN n", "FOREACH is not allowed"),
    ("MATCH (n) RETURN apoc.cypher.runFirstColumnSingle('CREATE (x)', {})", "calling 'apoc"),
    ("MATCH (n) RETURN n.name; MATCH (m) DELETE m", "DELETE is not allowed|one statement"),
    ("MATCH (n) RETURN n.name; MATCH (m) RETURN m", "only one statement"),
    ("SHOW DATABASES", "SHOW is not allowed"),
    ("MATCH (n) RETURN n UNION MATCH (m) RETURN m", "UNION is not allowed"),
    ("USING PERIODIC COMMIT LOAD CSV FROM 'x' AS l RETURN l", "USING is not allowed"),
    ("UNWIND range(1, 1000000) AS x RETURN x", "literal list"),
    ("MATCH (n:Person) UNWIND toUpper(n.name) AS x RETURN x", "a variable or a property"),
    ("EXPLAIN MATCH (n) RETURN n", "EXPLAIN is not allowed"),
    # Obfuscated forms: odd casing, comments, escapes, look-alike characters.
    ("match (n) dEtAcH dElEtE n", "DETACH is not allowed"),
    ("MATCH (n) /* harmless */ CrEaTe (m)", "CREATE is not allowed"),
    ("MATCH (n)//x\nSET n.name = 1", "SET is not allowed"),
    ("MATCH (n) RETURN n.name\n;\nCREATE (x)", "CREATE is not allowed|one statement"),
    ("MATCH (n) ＣＲＥＡＴＥ (m)", "CREATE is not allowed"),  # full-width letters
    ("MATCH (n) СREATE (m)", "non-ASCII character 'С'"),  # Cyrillic ES
    ("MATCH (n) DEL\u200bETE n", "U\\+200B"),  # zero-width space
    ("MATCH (n) RETURN 'unterminated", "never closed"),
    ("MATCH (n) /* CREATE (m)", "never closed"),
    ("MATCH (n) RETURN `x", "never closed"),
    ("MATCH (n) WHERE n.name = 'a\\q' RETURN n", "invalid escape"),
    ("MATCH (n:Person) RETURN n.name, $param", "no \\$parameters"),
    ("", "empty"),
]


@pytest.mark.parametrize(("query", "message"), WRITES)
def test_write_and_admin_forms_are_rejected(
    database: GraphDatabase, query: str, message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        database.check(query)


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("MATCH (n:Person) WHERE n.name = 'a\\' DELETE n //' RETURN n", "a' DELETE n //"),
        ('MATCH (n:Person) WHERE n.name = "a\\" CREATE (x) \\"" RETURN n', 'a" CREATE (x) "'),
    ],
)
def test_an_escaped_quote_keeps_a_write_inside_the_string(query: str, value: str) -> None:
    tokens = tokenize(query)
    assert [token.text for token in tokens if token.kind == "string"] == [value]
    assert not {"DELETE", "CREATE"} & {token.upper for token in tokens}
    # What runs is re-rendered from the tokens, so the engine sees the same single string.
    assert [token.text for token in tokenize(render(tokens)) if token.kind == "string"] == [value]


def test_a_write_hidden_after_an_escaped_quote_is_found() -> None:
    # The tokenizer decodes \" inside the string, so the string ends where Cypher ends it.
    tokens = tokenize('MATCH (n) WHERE n.name = "x\\" " DELETE n RETURN 1')
    words = [token.text for token in tokens if token.kind == "word"]
    assert "DELETE" in words


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("MATCH (m:Film) RETURN m", "unknown node label 'Film'; labels in this graph: Genre"),
        ("MATCH (p:Person)-[:STARRED_IN]->(m) RETURN m", "unknown relationship type 'STARRED_IN'"),
        ("MATCH (p:ACTED_IN) RETURN p", "'ACTED_IN' \\(it is a relationship type\\)"),
        ("MATCH (p:Person) RETURN p.nmae", "unknown property 'nmae'"),
        ("MATCH (p:Person) WHERE p:Robot RETURN p", "unknown node label 'Robot'"),
    ],
)
def test_names_must_exist_in_the_schema(database: GraphDatabase, query: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        database.check(query)


def test_overlong_queries_are_rejected() -> None:
    database = GraphDatabase(load_sample_graph(), timeout=None, max_query_length=50)
    with pytest.raises(ToolError, match="the limit is 50"):
        database.check("MATCH (m:Movie) WHERE m.title = 'x' RETURN m.title, m.released")


@pytest.mark.parametrize(
    "value",
    [
        'Ellis Boyd "Red" Redding',
        "it's",
        "back\\slash",
        "line\nbreak\ttab",
        "Cuarón",
        "\u2028",
        "🎬 emoji",
    ],
)
def test_quoted_literals_round_trip_through_the_tokenizer(value: str) -> None:
    quoted = quote_literal(value)
    tokens = tokenize(f"RETURN {quoted}")
    assert [(token.kind, token.text) for token in tokens[1:]] == [("string", value)]
    assert quoted.isascii()


def test_quote_literal_renders_every_json_scalar_and_lists() -> None:
    assert quote_literal([1, 2.5, True, None, "a"]) == '[1, 2.5, TRUE, NULL, "a"]'
    with pytest.raises(ToolError, match="finite"):
        quote_literal(float("nan"))
    with pytest.raises(ToolError, match="cannot use a dict"):
        quote_literal({"a": 1})


def test_render_rebuilds_text_without_comments_and_with_requoted_strings() -> None:
    tokens = tokenize("MATCH (p:Person)-[:ACTED_IN]->(m) /* c */ WHERE p.name = 'Tom' RETURN m")
    assert render(tokens) == 'MATCH (p:Person)-[:ACTED_IN]->(m) WHERE p.name = "Tom" RETURN m'

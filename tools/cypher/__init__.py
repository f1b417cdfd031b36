"""Graph questions in Cypher: schema description, query construction, read-only execution.

`GraphDatabase(graph)` wraps a NetworkX `MultiDiGraph` (or `DiGraph`) as a toolset the agent
uses to describe the graph, run one read-only Cypher query, or fill in a structured pattern
whose labels, relationship types and properties are enums of the real schema. NetworkX stays
the user's graph format; queries run on an embedded openCypher database the graph is loaded
into (`LadybugBackend`, the default, chosen by measurement on the openCypher TCK), in a worker
process that is killed on timeout. `GrandCypherBackend` runs grand-cypher directly on the
NetworkX graph (a smaller dialect), and `Neo4jBackend` sends the same validated queries to a
Neo4j-compatible server through the official driver.

Every query, written by a model or compiled from a pattern, goes through one validator: one
statement, read clauses only (MATCH, OPTIONAL MATCH, WHERE, RETURN, WITH, ORDER BY, SKIP,
LIMIT, UNWIND of a literal list, a variable or a property), labels, types and properties that
exist. What runs is the text rebuilt from the validated tokens, on every backend. Values are
never spliced raw: they become parameters, or are quoted by this library for grand-cypher.

What this module does not do: write to a graph, run procedures, or answer what an engine would
answer differently from openCypher: each such case is refused with a message (the docs page
lists them).

The modules: `_syntax` (tokenizer, validator), `_render` (text from tokens, quoting),
`_schema` (the schema and its extraction from NetworkX), `_pattern` (structured patterns),
`_backend` (the backend protocol and `QueryResult`), `_ladybug` and `_ladybug_translate` (the
embedded database backend and its translation), `_grand` (grand-cypher), `_process` and
`_worker` (the killable child process and what runs in it), `_neo4j` (the Neo4j driver),
`_database` (the toolset), `_graphs` (graphs from records and edge lists) and
`_text_to_cypher` (a question to a validated statement).
"""

from __future__ import annotations

from ._backend import CypherBackend, QueryResult
from ._database import GraphDatabase
from ._grand import GrandCypherBackend
from ._graphs import graph_from_edge_list, graph_from_records, load_sample_graph
from ._ladybug import LadybugBackend
from ._neo4j import Neo4jBackend
from ._pattern import (
    CypherStatement,
    GraphPattern,
    PatternCondition,
    PatternNode,
    PatternOrder,
    PatternReturn,
    PatternStep,
    compile_pattern,
    pattern_model,
)
from ._render import quote_literal
from ._schema import GraphSchema, LabelInfo, PropertyInfo, RelationshipInfo
from ._text_to_cypher import atext_to_cypher, text_to_cypher

__all__ = [
    "CypherBackend",
    "CypherStatement",
    "GrandCypherBackend",
    "GraphDatabase",
    "GraphPattern",
    "GraphSchema",
    "LabelInfo",
    "LadybugBackend",
    "Neo4jBackend",
    "PatternCondition",
    "PatternNode",
    "PatternOrder",
    "PatternReturn",
    "PatternStep",
    "PropertyInfo",
    "QueryResult",
    "RelationshipInfo",
    "atext_to_cypher",
    "compile_pattern",
    "graph_from_edge_list",
    "graph_from_records",
    "load_sample_graph",
    "pattern_model",
    "quote_literal",
    "text_to_cypher",
]

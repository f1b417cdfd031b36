"""Text to Cypher: a model fills in a schema-bound pattern, or writes Cypher that is checked."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator

from agentlib import Model, ToolError, agenerate

from ._database import GraphDatabase
from ._pattern import CypherStatement

__all__ = ["atext_to_cypher", "text_to_cypher"]


_PATTERN_INSTRUCTIONS = """\
You turn a question about a property graph into a structured graph pattern.
Use only the labels, relationship types (in their direction) and properties of this schema:

{schema}

Match the path in `start` and `steps`, filter with `conditions` (all must hold), return the
columns that answer the question, and set `order_by` and `limit` when the question asks for
the top or first items."""

_CYPHER_INSTRUCTIONS = """\
You turn a question about a property graph into one read-only Cypher query.
Use only the labels, relationship types (in their direction) and properties of this schema:

{schema}

Write a single MATCH ... WHERE ... RETURN ... query (ORDER BY, LIMIT allowed). Never write
CREATE, MERGE, SET, DELETE, REMOVE or CALL."""


def _database(graph: Any) -> GraphDatabase:
    if isinstance(graph, GraphDatabase):
        return graph
    return GraphDatabase(graph, timeout=None, allow_cypher=False)


async def atext_to_cypher(
    model: Model,
    graph: Any,
    question: str,
    *,
    mode: Literal["pattern", "cypher"] = "pattern",
    retries: int = 2,
    max_tokens: int | None = None,
) -> CypherStatement:
    """Turn a question into a validated Cypher statement for `graph`.

    In `pattern` mode the model fills in `GraphDatabase.pattern_model` (names are enums of the
    schema, so constrained decoding cannot invent them) and the library writes the Cypher. In
    `cypher` mode the model writes Cypher text, which must pass the same validator; each
    rejection is shown to the model for another try.

    Args:
        model: Any `Model`.
        graph: A NetworkX graph, a `GraphDatabase`, or a `CypherBackend`.
        question: The question in natural language.
        mode: `pattern` (structured, for any model) or `cypher` (free text, strong models).
        retries: Extra attempts after an invalid reply.
        max_tokens: The generation limit per attempt.

    Raises:
        ModelOutputError: No valid pattern or query after the retries.
    """
    database = _database(graph)
    if mode == "pattern":
        instructions = _PATTERN_INSTRUCTIONS.format(schema=database.describe())
        pattern = await agenerate(
            model,
            database.pattern_model,
            question,
            instructions=instructions,
            retries=retries,
            max_tokens=max_tokens,
        )
        return database.compile(pattern)

    def check(query: str) -> str:
        try:
            database.check(query)
        except ToolError as exc:
            raise ValueError(str(exc)) from exc
        return query

    answer_model = pydantic.create_model(
        "CypherQuery", query=(Annotated[str, AfterValidator(check)], ...)
    )
    instructions = _CYPHER_INSTRUCTIONS.format(schema=database.describe())
    answer = await agenerate(
        model,
        answer_model,
        question,
        instructions=instructions,
        retries=retries,
        max_tokens=max_tokens,
    )
    return database.check(answer.query)  # type: ignore[attr-defined]


def text_to_cypher(
    model: Model,
    graph: Any,
    question: str,
    *,
    mode: Literal["pattern", "cypher"] = "pattern",
    retries: int = 2,
    max_tokens: int | None = None,
) -> CypherStatement:
    """Synchronous `atext_to_cypher`."""
    return asyncio.run(
        atext_to_cypher(model, graph, question, mode=mode, retries=retries, max_tokens=max_tokens)
    )

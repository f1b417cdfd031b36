"""grand-cypher's dialect: translate validated tokens to it, and run it with a timeout.

grand-cypher 1.2 reads a subset of Cypher, and where it reads something differently from
Cypher it can return a wrong answer rather than fail. Each case below was found by running it:

- lower-case aggregates (`count(m)`) and single-quoted strings do not parse: normalised
  (`COUNT(m)`, double quotes); so do `!=` (to `<>`), `x IS NOT NULL` (to `NOT x IS NULL`) and
  comma-separated patterns (`MATCH a, b` to `MATCH a MATCH b`);
- `LIMIT` stops matching before aggregation and DISTINCT, so `RETURN p, COUNT(m) LIMIT 1`
  counts one match: with an aggregate or DISTINCT the limit is applied here, afterwards;
- `a OR b AND c` is read left to right as `(a OR b) AND c`: mixing AND and OR without
  parentheses is refused;
- an undirected relationship `(a)-[:R]-(b)` matches only when edges go both ways: refused,
  with the direction the schema has;
- OPTIONAL MATCH, WITH, UNWIND, CASE, `=~`, `count(*)`, `COUNT(DISTINCT x)`, `NOT (...)`,
  parameters: refused with a specific message.

Other parse failures come back as one line naming the column, never a lark traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentlib import ToolError

from ._backend import QueryResult, rows_as_dicts
from ._pattern import CypherStatement
from ._process import QueryWorker
from ._render import render
from ._schema import GraphSchema, schema_from_networkx
from ._syntax import CypherSyntaxInfo, Token, tokenize, validate_read_only
from ._worker import execute

__all__ = ["GrandCypherBackend", "GrandQuery", "translate"]

_AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX", "COLLECT"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUPPORTED = (
    "grand-cypher supports MATCH patterns, WHERE, RETURN [DISTINCT] with properties, "
    "COUNT/SUM/AVG/MIN/MAX/COLLECT, ID(), type(), toLower(), toUpper(), trim(), size(), "
    "coalesce(), then ORDER BY, SKIP and LIMIT"
)
_UNSUPPORTED_WORDS = {
    "OPTIONAL": "OPTIONAL MATCH is not supported by grand-cypher; use MATCH (rows without a "
    "match are then left out)",
    "WITH": "WITH is not supported by grand-cypher; write one MATCH ... WHERE ... RETURN query",
    "UNWIND": "UNWIND is not supported by grand-cypher; use WHERE x.property IN [...] instead",
    "CASE": "CASE expressions are not supported by grand-cypher; return the property and "
    "interpret it yourself",
    "XOR": "XOR is not supported by grand-cypher; use AND, OR and NOT",
    "UNION": "UNION is not supported; run the queries separately",
}


@dataclass(frozen=True, slots=True)
class GrandQuery:
    """A query in grand-cypher's dialect and how to run it."""

    text: str
    """The query text the engine reads."""
    engine_limit: int | None
    """The limit the engine applies while matching (stops early), or `None`."""
    skip: int
    """Rows to drop after the engine answered (when the limit could not go to the engine)."""
    limit: int | None
    """Rows to keep after `skip`, applied here; `None` for all (up to the row cap)."""
    columns: tuple[str, ...]
    """Column names of the RETURN items, in order."""
    relationship_variables: frozenset[str]
    """Variables bound to relationships."""


def _word(text: str, like: Token) -> Token:
    return Token("word", text, like.position)


def _normalise_tokens(tokens: Sequence[Token]) -> list[Token]:
    """Apply the safe rewrites that keep the meaning: names, aggregates, `!=`, IS NOT NULL."""
    result: list[Token] = []
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.kind == "name":
            if not _NAME.fullmatch(token.text):
                raise ToolError(
                    f"grand-cypher cannot use the name `{token.text}`: names must be letters, "
                    "digits and '_'"
                )
            token = Token("word", token.text, token.position)
        if token.kind == "parameter":
            raise ToolError("grand-cypher has no parameters: write the value as a literal")
        if token.is_symbol("!="):
            token = Token("symbol", "<>", token.position)
        elif token.is_symbol("=~"):
            raise ToolError(
                "regular expressions (=~) are not supported by grand-cypher; use CONTAINS, "
                "STARTS WITH or ENDS WITH"
            )
        elif token.kind == "word" and following is not None:
            if token.upper in _AGGREGATES and following.is_symbol("("):
                token = _word(token.upper, token)
            elif token.upper == "EXISTS":
                if not following.is_symbol("{"):
                    raise ToolError(
                        "grand-cypher supports EXISTS only as a subquery: EXISTS { MATCH ... }"
                    )
                token = _word("EXISTS", token)
        if token.upper in _UNSUPPORTED_WORDS:
            raise ToolError(_UNSUPPORTED_WORDS[token.upper])
        result.append(token)
    return _rewrite_is_not_null(result)


def _rewrite_is_not_null(tokens: list[Token]) -> list[Token]:
    index = 0
    while index + 2 < len(tokens):
        if (
            tokens[index].upper == "IS"
            and tokens[index + 1].upper == "NOT"
            and tokens[index + 2].upper == "NULL"
        ):
            start = _operand_start(tokens, index)
            not_token = tokens[index + 1]
            tokens = [*tokens[:start], not_token, *tokens[start : index + 1], *tokens[index + 2 :]]
            index += 2
        index += 1
    return tokens


def _operand_start(tokens: Sequence[Token], end: int) -> int:
    """Where the operand ending just before `end` starts: `x`, `x.p` or `f(...)`."""
    position = end - 1
    if tokens[position].is_symbol(")"):
        depth = 0
        while position >= 0:
            if tokens[position].is_symbol(")"):
                depth += 1
            elif tokens[position].is_symbol("("):
                depth -= 1
                if depth == 0:
                    break
            position -= 1
        return max(position - 1, 0)
    if position >= 2 and tokens[position - 1].is_symbol("."):
        return position - 2
    return position


def _check_shapes(tokens: Sequence[Token], directions: dict[str, str]) -> None:
    """Refuse what grand-cypher would misread or cannot read, with a specific message."""
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is None:
            continue
        if token.upper in _AGGREGATES and following.is_symbol("("):
            inner = tokens[index + 2] if index + 2 < len(tokens) else None
            if inner is not None and inner.is_symbol("*"):
                raise ToolError(
                    f"{token.text}(*) is not supported by grand-cypher; count a variable "
                    "instead, like COUNT(m)"
                )
            if inner is not None and inner.upper == "DISTINCT":
                raise ToolError(
                    f"{token.text}(DISTINCT ...) is not supported by grand-cypher; use "
                    f"RETURN DISTINCT, or COLLECT and count the distinct values yourself"
                )
        if token.upper == "NOT" and following.is_symbol("("):
            raise ToolError(
                "grand-cypher supports NOT only before a single comparison; rewrite "
                "NOT (a OR b) as NOT a AND NOT b, and NOT (a AND b) as NOT a OR NOT b"
            )
        if token.is_symbol(")") and following.is_symbol("-", "<"):
            _check_direction(tokens, index + 1, directions)


def _check_direction(tokens: Sequence[Token], start: int, directions: dict[str, str]) -> None:
    position = start
    left = tokens[position].is_symbol("<")
    if left:
        position += 1
    position += 1  # the '-'
    types: list[str] = []
    if position < len(tokens) and tokens[position].is_symbol("["):
        while position < len(tokens) and not tokens[position].is_symbol("]"):
            if tokens[position].kind == "word" and tokens[position - 1].is_symbol(":", "|"):
                types.append(tokens[position].text)
            position += 1
        position += 1  # the ']'
    position += 1  # the closing '-'
    right = position < len(tokens) and tokens[position].is_symbol(">")
    if left == right:
        known = "; ".join(directions[name] for name in types if name in directions)
        raise ToolError(
            "grand-cypher matches a relationship written without one direction only when edges "
            "go both ways, which gives wrong answers: write the arrow, -[...]-> or <-[...]-"
            + (f" (in this graph {known})" if known else "")
        )


def _check_boolean_mix(tokens: Sequence[Token]) -> None:
    """Refuse `a OR b AND c` without parentheses: grand-cypher reads it left to right."""
    seen: list[set[str]] = [set()]
    for token in tokens:
        if token.is_symbol("(", "[", "{"):
            seen.append(set())
        elif token.is_symbol(")", "]", "}"):
            seen.pop()
        elif token.upper in ("WHERE", "RETURN", "MATCH"):
            seen[-1] = set()
        elif token.upper in ("AND", "OR"):
            seen[-1].add(token.upper)
            if len(seen[-1]) == 2:
                raise ToolError(
                    "put parentheses around the AND or OR parts of the WHERE clause, like "
                    "a OR (b AND c): grand-cypher reads AND and OR from left to right without "
                    "precedence, which gives wrong answers"
                )


def _split_commas_in_match(tokens: Sequence[Token]) -> list[Token]:
    result: list[Token] = []
    depth = 0
    in_match = False
    for token in tokens:
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.kind == "word" and token.upper in ("MATCH", "WHERE", "RETURN"):
            in_match = token.upper == "MATCH"
            if in_match:
                token = _word("MATCH", token)
        elif depth == 0 and in_match and token.is_symbol(","):
            token = _word("MATCH", token)
        result.append(token)
    return result


def _return_items(tokens: Sequence[Token]) -> tuple[list[list[Token]], bool]:
    """The top-level RETURN items, and whether RETURN says DISTINCT."""
    depth = 0
    start = None
    for index, token in enumerate(tokens):
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.upper == "RETURN":
            start = index + 1
    if start is None:
        raise ToolError("the query needs a RETURN clause")
    distinct = start < len(tokens) and tokens[start].upper == "DISTINCT"
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[start + (1 if distinct else 0) :]:
        if depth == 0 and token.upper in ("ORDER", "SKIP", "LIMIT"):
            break
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        if depth == 0 and token.is_symbol(","):
            items.append([])
        else:
            items[-1].append(token)
    return items, distinct


def _column_name(item: Sequence[Token]) -> str:
    if len(item) >= 2 and item[-2].upper == "AS":
        return str(item[-1].text)
    text = str(render(item))
    return re.sub(r"\s+", "", text).replace(",", ", ")


def _take_pagination(tokens: list[Token]) -> tuple[list[Token], int, int | None]:
    """Remove a trailing `SKIP n` / `LIMIT n` and return their values."""
    skip, limit = 0, None
    while len(tokens) >= 2 and tokens[-2].upper in ("SKIP", "LIMIT"):
        if tokens[-1].kind != "number" or not tokens[-1].text.isdigit():
            raise ToolError(f"{tokens[-2].upper} needs a whole number, like LIMIT 10")
        value = int(tokens[-1].text)
        if tokens[-2].upper == "SKIP":
            skip = value
        else:
            limit = value
        tokens = tokens[:-2]
    return tokens, skip, limit


def translate(
    tokens: Sequence[Token],
    info: CypherSyntaxInfo,
    *,
    max_rows: int,
    directions: dict[str, str] | None = None,
) -> GrandQuery:
    """Translate validated tokens into grand-cypher's dialect.

    Args:
        tokens: Tokens that passed `validate_read_only`.
        info: What the validator collected.
        max_rows: The row cap: the engine is asked for one more row, to detect truncation.
        directions: For messages: relationship type to `(:A)-[:T]->(:B)` text.

    Raises:
        ToolError: The query uses something grand-cypher does not support or would misread.
    """
    body = [token for token in tokens if not token.is_symbol(";")]
    body = _normalise_tokens(body)
    _check_shapes(body, directions or {})
    _check_boolean_mix(body)
    body = _split_commas_in_match(body)
    if body[0].upper != "MATCH":
        raise ToolError("grand-cypher queries must start with MATCH")
    items, distinct = _return_items(body)
    aggregated = any(
        token.upper in _AGGREGATES for item in items for token in item if token.kind == "word"
    )
    body, skip, limit = _take_pagination(body)
    if aggregated or distinct:
        # The engine would stop matching at the limit before grouping: page afterwards.
        engine_limit = None
    else:
        engine_limit = skip + min(limit, max_rows + 1) if limit is not None else max_rows + 1
        if skip:
            body = [*body, Token("word", "SKIP", 0), Token("number", str(skip), 0)]
            engine_limit -= skip
        body = [*body, Token("word", "LIMIT", 0), Token("number", str(engine_limit), 0)]
        skip, limit = 0, None
    return GrandQuery(
        text=render(body),
        engine_limit=engine_limit,
        skip=skip,
        limit=limit,
        columns=tuple(_column_name(item) for item in items),
        relationship_variables=frozenset(info.relationship_variables),
    )


def _raise_outcome(outcome: tuple[str, Any, Any]) -> tuple[list[str], list[list[Any]]]:
    status, first, second = outcome
    if status == "ok":
        return list(first), list(second)
    if first == "parse":
        raise ToolError(f"grand-cypher cannot parse the query {second}; {_SUPPORTED}")
    raise ToolError(f"grand-cypher failed on this query: {second}; {_SUPPORTED}")


def run_in_process(graph: Any, query: GrandQuery) -> tuple[list[str], list[list[Any]]]:
    """Run `query` in this process, with no timeout (for trusted queries and tests)."""
    outcome = execute(
        graph,
        query.text,
        limit=query.engine_limit,
        relationship_variables=query.relationship_variables,
        column_order=query.columns,
    )
    return _raise_outcome(outcome)


class GrandCypherBackend:
    """Runs queries with grand-cypher on a NetworkX graph, in a worker process by default.

    Args:
        graph: A NetworkX `MultiDiGraph` or `DiGraph` with labels in `__labels__` (build one
            with `graph_from_records` or `graph_from_edge_list`).
        isolation: `process` runs each query in a child process holding a copy of the graph,
            killed when a query outlives its timeout; `none` runs in this process with no
            timeout (only for trusted queries: a pattern can take exponential time).
    """

    supports_parameters = False

    def __init__(self, graph: Any, *, isolation: Literal["process", "none"] = "process") -> None:
        self._graph = graph
        self._schema = schema_from_networkx(graph)
        self._isolation = isolation
        self._worker = QueryWorker("grand-cypher", graph) if isolation == "process" else None

    def schema(self) -> GraphSchema:
        """The schema extracted from the graph when the backend was made."""
        return self._schema

    def run(
        self, statement: CypherStatement, *, max_rows: int, timeout: float | None
    ) -> QueryResult:
        """Translate the statement to grand-cypher's dialect and run it.

        Raises:
            ToolError: grand-cypher cannot run it correctly, it failed, or it timed out.
        """
        if statement.parameters:
            raise ToolError("grand-cypher has no parameters: quote values with quote_literal")
        tokens = tokenize(statement.text)
        info = validate_read_only(tokens)
        query = translate(tokens, info, max_rows=max_rows, directions=self._schema.directions())
        if self._worker is not None and timeout is not None:
            options = {
                "limit": query.engine_limit,
                "relationship_variables": query.relationship_variables,
                "column_order": query.columns,
            }
            columns, rows = _raise_outcome(self._worker.run(query.text, options, timeout=timeout))
        else:
            columns, rows = run_in_process(self._graph, query)
        rows = rows[query.skip :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return QueryResult(
            query=query.text,
            columns=columns,
            rows=rows_as_dicts(columns, rows[:max_rows]),
            truncated=len(rows) > max_rows,
        )

    def close(self) -> None:
        """Stop the worker process."""
        if self._worker is not None:
            self._worker.close()

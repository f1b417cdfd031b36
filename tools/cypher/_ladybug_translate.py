"""Translation of validated Cypher for ladybug: what differs from openCypher, fixed or refused.

The rules and why each exists are listed in `_ladybug.py`'s docstring and measured in
benchmarks/cypher_tck.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentlib import ToolError

from ._render import render
from ._syntax import Token, return_columns
from ._worker import KEY, TablePlan

__all__ = ["LadybugQuery", "translate_for_ladybug"]

_CLAUSES = frozenset({"MATCH", "OPTIONAL", "WHERE", "WITH", "RETURN", "UNWIND", "ORDER"})
_ENDS_WHERE = frozenset({"MATCH", "OPTIONAL", "WITH", "RETURN", "UNWIND"})
_RENAMED = {
    "TYPE": "label",
    "TOINTEGER": "to_int64",
    "TOFLOAT": "to_double",
    "TOLOWER": "lower",
    "TOUPPER": "upper",
}
_REFUSED_FUNCTIONS = {
    "PROPERTIES": "properties() is not supported by the embedded engine; return the "
    "properties you need, like n.name, n.born",
    "KEYS": "keys() is not supported by the embedded engine; describe_graph lists the "
    "properties of each label",
    "ELEMENTID": "elementId() is not supported by the embedded engine; use id(n)",
    "SUBSTRING": "substring() counts from 1 in the embedded engine, not from 0 as in Cypher; "
    "use left(), right() or STARTS WITH / CONTAINS",
    "TOSTRING": "toString() is not supported by the embedded engine (it writes floats with six "
    "decimals); return the value itself",
}
_SUBSCRIPT = (
    "list indexing and slicing (x[0], x[1..3], n['key']) are not supported by the embedded "
    "engine: it counts from 1, not from 0 as in Cypher; return the whole list"
)
_NOT_BEFORE_SUBSCRIPT = frozenset(
    {"IN", "UNWIND", "RETURN", "WITH", "WHEN", "THEN", "ELSE", "AND", "OR", "XOR", "NOT", "BY"}
    | {"DISTINCT", "WHERE", "CONTAINS", "CASE", "SKIP", "LIMIT", "AS", "IS"}
)


@dataclass(frozen=True, slots=True)
class LadybugQuery:
    """A validated query translated for ladybug."""

    text: str
    """The text the engine runs."""
    columns: tuple[str, ...] | None
    """The RETURN items' names as written; `None` for `RETURN *`."""


def _word(text: str) -> Token:
    return Token("word", text, -1)


def _symbol(text: str) -> Token:
    return Token("symbol", text, -1)


def _name(text: str) -> Token:
    return Token("name", text, -1)


def _string(text: str) -> Token:
    return Token("string", text, -1)


def _check_refusals(tokens: Sequence[Token]) -> None:
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        if (
            following is not None
            and following.is_symbol("(")
            and token.upper in _REFUSED_FUNCTIONS
            and not (previous is not None and previous.is_symbol("."))
        ):
            raise ToolError(_REFUSED_FUNCTIONS[token.upper])
        if token.is_symbol("[") and previous is not None and _is_subscript(previous):
            raise ToolError(_SUBSCRIPT)
        if token.is_symbol("["):
            _check_list_literal(tokens, index)
            if previous is not None and previous.upper == "IN":
                _check_in_list(tokens, index)


def _is_subscript(previous: Token) -> bool:
    """Whether a `[` after `previous` indexes something (`x[0]`, `f(x)[0]`), not a list."""
    if previous.is_symbol(")", "]") or previous.kind == "name":
        return True
    return previous.kind == "word" and previous.upper not in _NOT_BEFORE_SUBSCRIPT


def _check_in_list(tokens: Sequence[Token], start: int) -> None:
    """Refuse `x IN [1, null]`: the engine answers false where Cypher answers null."""
    depth = 0
    for token in tokens[start:]:
        if token.is_symbol("[", "(", "{"):
            depth += 1
        elif token.is_symbol("]", ")", "}"):
            depth -= 1
            if depth == 0:
                return
        elif depth == 1 and token.upper == "NULL":
            raise ToolError(
                "IN over a list that holds null is not supported by the embedded engine (it "
                "answers false where Cypher answers null); leave null out of the list"
            )


def _check_list_literal(tokens: Sequence[Token], start: int) -> None:
    """Refuse `[1, 2.5]`: the engine would return the integers as floats."""
    depth, kinds = 0, set()
    for token in tokens[start:]:
        if token.is_symbol("[", "(", "{"):
            depth += 1
        elif token.is_symbol("]", ")", "}"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and token.kind == "number":
            kinds.add("float" if any(c in token.text for c in ".eE") else "int")
        elif depth == 1 and token.kind != "symbol" and token.upper != "NULL":
            kinds.add("other")
    if {"int", "float"} <= kinds:
        raise ToolError(
            "a list that mixes integers and floats is not supported by the embedded engine "
            "(it would return the integers as floats); write every number as a float, like "
            "[1.0, 2.5]"
        )


def _is_node_pattern(tokens: Sequence[Token], opener: int, clause: str) -> bool:
    previous = tokens[opener - 1] if opener else None
    if previous is not None and (
        previous.upper == "MATCH"
        or previous.is_symbol("-", ">", "{")
        or (clause == "MATCH" and previous.is_symbol(",", "="))
    ):
        return True
    depth = 0
    for position in range(opener, len(tokens)):
        if tokens[position].is_symbol("(", "[", "{"):
            depth += 1
        elif tokens[position].is_symbol(")", "]", "}"):
            depth -= 1
            if depth == 0:
                after = tokens[position + 1] if position + 1 < len(tokens) else None
                return after is not None and after.is_symbol("-", "<")
    return False


def _label_run(tokens: Sequence[Token], colon: int) -> tuple[list[str], int]:
    """The labels written `:A:B` from `colon`, and the index after them."""
    labels: list[str] = []
    position = colon
    while (
        position + 1 < len(tokens)
        and tokens[position].is_symbol(":")
        and tokens[position + 1].kind in ("word", "name")
    ):
        labels.append(tokens[position + 1].text)
        position += 2
    return labels, position


def _check_mixed(
    tables: Sequence[str], columns: dict[str, dict[str, str]], shown: dict[str, str]
) -> None:
    """Refuse a pattern over tables that type one property differently: the engine converts."""
    seen: dict[str, tuple[str, str]] = {}
    for table in tables:
        for key, kind in columns.get(table, {}).items():
            first = seen.setdefault(key, (table, kind))
            if first[1] != kind:
                raise ToolError(
                    f"property {key!r} holds {first[1]} values on {shown[first[0]]} and {kind} "
                    f"values on {shown[table]}; the embedded engine would convert one to the "
                    "other in a pattern that can match both: name the label or type in the "
                    "pattern, like (n:Label) or -[r:TYPE]->"
                )


def _check_mixed_nodes(tokens: Sequence[Token], opener: int, plan: TablePlan) -> None:
    """Check the node pattern opened at `opener` (labels written, or every table)."""
    position = opener + 1
    if position < len(tokens) and tokens[position].kind in ("word", "name"):
        position += 1
    labels, _after = _label_run(tokens, position)
    tables = plan.tables_with(labels) if labels else plan.tables_with([])
    shown = {table: "(:" + ":".join(plan.table_labels[table]) + ")" for table in tables}
    _check_mixed(tables, plan.node_columns, shown)


def _rewrite_labels(tokens: Sequence[Token], plan: TablePlan) -> list[Token]:
    """Node labels in patterns become table unions; label tests in expressions test label()."""
    relationship_types = set(plan.relationship_pairs)
    result: list[Token] = []
    stack: list[tuple[str, bool]] = []  # (bracket, is a node pattern)
    clause = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        previous = tokens[index - 1] if index else None
        if token.upper in _CLAUSES and not (previous is not None and previous.is_symbol(".")):
            clause = "MATCH" if token.upper in ("MATCH", "OPTIONAL") else token.upper
        if token.is_symbol("(", "[", "{"):
            stack.append(
                (token.text, token.text == "(" and _is_node_pattern(tokens, index, clause))
            )
            if stack[-1][1]:
                _check_mixed_nodes(tokens, index, plan)
        elif token.is_symbol(")", "]", "}") and stack:
            stack.pop()
        if (
            token.is_symbol(":")
            and previous is not None
            and (stack and stack[-1][0] == "(" and stack[-1][1])
            and (previous.kind in ("word", "name") or previous.is_symbol("("))
            and not (previous.kind in ("word", "name") and tokens[index - 2].is_symbol(":"))
        ):
            labels, after = _label_run(tokens, index)
            tables = plan.tables_with(labels) or ["_nothing"]
            for table in tables:
                result += [_symbol(":"), _name(table)]
            index = after
            continue
        if (
            token.is_symbol(":")
            and previous is not None
            and previous.kind in ("word", "name")
            and not (stack and stack[-1][0] in ("{", "["))
            and not (index >= 2 and tokens[index - 2].is_symbol("."))
        ):
            labels, after = _label_run(tokens, index)
            if labels and all(label in relationship_types for label in labels):
                tables = labels if len(labels) == 1 else ["_nothing"]
            else:
                tables = plan.tables_with(labels) or ["_nothing"]
            result.pop()  # the variable, re-added inside label(...)
            result += [_symbol("("), _word("label"), _symbol("("), previous, _symbol(")")]
            result += [_word("IN"), _symbol("[")]
            for position, table in enumerate(tables):
                result += [*([_symbol(",")] if position else []), _string(table)]
            result += [_symbol("]"), _symbol(")")]
            index = after
            continue
        result.append(token)
        index += 1
    return result


def _rewrite_functions(tokens: Sequence[Token], plan: TablePlan) -> list[Token]:
    result: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        is_call = (
            token.kind == "word"
            and following is not None
            and following.is_symbol("(")
            and not (previous is not None and previous.is_symbol("."))
        )
        if is_call and token.upper in ("ID", "LABELS"):
            inner = tokens[index + 2] if index + 2 < len(tokens) else None
            closing = tokens[index + 3] if index + 3 < len(tokens) else None
            if inner is None or inner.kind not in ("word", "name") or closing is None:
                raise ToolError(f"{token.text}() takes a variable here, like {token.text}(n)")
            if not closing.is_symbol(")"):
                raise ToolError(f"{token.text}() takes a variable here, like {token.text}(n)")
            if token.upper == "ID":
                result += [inner, _symbol("."), _word(KEY)]
            else:
                result += _labels_case(inner, plan)
            index += 4
            continue
        if is_call and token.upper in _RENAMED:
            result.append(_word(_RENAMED[token.upper]))
            index += 1
            continue
        result.append(token)
        index += 1
    return result


def _labels_case(variable: Token, plan: TablePlan) -> list[Token]:
    tokens = [_word("CASE"), _word("label"), _symbol("("), variable, _symbol(")")]
    for table, labels in sorted(plan.table_labels.items()):
        if not labels:
            continue
        tokens += [_word("WHEN"), _string(table), _word("THEN"), _symbol("[")]
        for position, label in enumerate(labels):
            tokens += [*([_symbol(",")] if position else []), _string(label)]
        tokens.append(_symbol("]"))
    tokens += [_word("ELSE"), _word("CAST"), _symbol("("), _symbol("["), _symbol("]")]
    tokens += [_word("AS"), _word("STRING"), _symbol("["), _symbol("]"), _symbol(")"), _word("END")]
    return tokens


def _clause_spans(tokens: Sequence[Token]) -> list[tuple[str, int, int]]:
    """Top-level clauses as (keyword, start, end); OPTIONAL MATCH counts as MATCH."""
    spans: list[tuple[str, int, int]] = []
    depth = 0
    for index, token in enumerate(tokens):
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.upper in (*_ENDS_WHERE, "WHERE", "ORDER", "SKIP", "LIMIT"):
            if token.upper == "MATCH" and spans and spans[-1][0] == "OPTIONAL":
                continue
            if spans:
                spans[-1] = (spans[-1][0], spans[-1][1], index)
            spans.append((token.upper, index, len(tokens)))
    return spans


def _relationships(tokens: Sequence[Token], start: int, end: int) -> list[tuple[int, int]]:
    """The spans of relationship patterns in a MATCH clause: `-[...]-`, `-->`, `<--`, `--`."""
    found = []
    depth = 0
    index = start
    while index < end:
        token = tokens[index]
        if token.is_symbol(")") and depth == 1 and index + 1 < end:
            first = index + 1
            position = first
            if tokens[position].is_symbol("<"):
                position += 1
            if position < end and tokens[position].is_symbol("-"):
                position += 1
                if position < end and tokens[position].is_symbol("["):
                    while not tokens[position].is_symbol("]"):
                        position += 1
                    position += 1
                position += 1  # the second '-'
                if position < end and tokens[position].is_symbol(">"):
                    position += 1
                found.append((first, position))
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        index += 1
    return found


def _name_relationship(
    tokens: Sequence[Token], span: tuple[int, int], number: int
) -> tuple[list[Token], str, bool]:
    """The relationship's tokens with a variable (added when anonymous), and variable-length."""
    part = list(tokens[span[0] : span[1]])
    opener = next((i for i, t in enumerate(part) if t.is_symbol("[")), None)
    if opener is None:  # -->, <--, --: give it brackets and a name
        name = f"__r{number}"
        dash = next(i for i, t in enumerate(part) if t.is_symbol("-"))
        part[dash + 1 : dash + 1] = [_symbol("["), _word(name), _symbol("]")]
        return part, name, False
    variable_length = any(t.is_symbol("*") for t in part)
    inner = part[opener + 1] if opener + 1 < len(part) else None
    if inner is not None and inner.kind in ("word", "name"):
        return part, inner.text, variable_length
    name = f"__r{number}"
    part.insert(opener + 1, _word(name))
    return part, name, variable_length


def _var_length(part: list[Token]) -> list[Token]:
    """`*`, `*2`, `*1..3`, `*..3` become the engine's TRAIL forms (no relationship repeated)."""
    star = next(i for i, t in enumerate(part) if t.is_symbol("*"))
    position = star + 1
    bounds: list[Token] = []
    while position < len(part) and (
        part[position].kind == "number" or part[position].is_symbol("..")
    ):
        bounds.append(part[position])
        position += 1
    if len(bounds) == 1:
        bounds = [bounds[0], _symbol(".."), bounds[0]]
    elif bounds and bounds[0].is_symbol(".."):
        bounds = [Token("number", "1", -1), *bounds]
    return [*part[:star], _symbol("*"), _word("TRAIL"), *bounds, *part[position:]]


def _distinct_conditions(names: Sequence[str]) -> list[Token]:
    conditions: list[Token] = []
    for first in range(len(names)):
        for second in range(first + 1, len(names)):
            if conditions:
                conditions.append(_word("AND"))
            conditions += [_word("id"), _symbol("("), _word(names[first]), _symbol(")")]
            conditions += [_symbol("<>"), _word("id"), _symbol("("), _word(names[second])]
            conditions.append(_symbol(")"))
    return conditions


def _check_loops(part: Sequence[Token], plan: TablePlan) -> None:
    """Refuse an undirected relationship where loops exist: the engine counts a loop twice."""
    undirected = not part[0].is_symbol("<") and not part[-1].is_symbol(">")
    if not undirected or not plan.self_loop_types:
        return
    types = {
        token.text
        for position, token in enumerate(part)
        if token.kind in ("word", "name") and position and part[position - 1].is_symbol(":", "|")
    }
    if not types or types & plan.self_loop_types:
        raise ToolError(
            "a relationship without a direction is not supported by the embedded engine on "
            "this graph: it has relationships from a node to itself, which the engine would "
            "count twice; write the arrow, -[...]-> or <-[...]-"
        )


def _check_mixed_relationships(part: Sequence[Token], plan: TablePlan) -> None:
    """Check a relationship pattern (its types, or every type when none is written)."""
    types = [
        token.text
        for position, token in enumerate(part)
        if token.kind in ("word", "name") and position and part[position - 1].is_symbol(":", "|")
    ]
    types = types or sorted(plan.relationship_columns)
    _check_mixed(types, plan.relationship_columns, {kind: f"[:{kind}]" for kind in types})


def _names_a_path(tokens: Sequence[Token], start: int, end: int) -> bool:
    """Whether the clause in tokens[start:end] assigns a path variable (`p = (a)-->(b)`)."""
    depth = 0
    for token in tokens[start:end]:
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.is_symbol("="):
            return True
    return False


def _unique_relationships(tokens: Sequence[Token], plan: TablePlan) -> list[Token]:
    """Give every MATCH the openCypher rule: one relationship is never matched twice in it."""
    spans = _clause_spans(tokens)
    result = list(tokens)
    counter = 0
    for position in range(len(spans) - 1, -1, -1):  # back to front, so indexes stay valid
        keyword, start, end = spans[position]
        if keyword not in ("MATCH", "OPTIONAL"):
            continue
        if keyword == "OPTIONAL" and _names_a_path(result, start, end):
            raise ToolError(
                "a named path in OPTIONAL MATCH is not supported by the embedded engine (it "
                "would give a partial path instead of null); return the nodes and "
                "relationships instead of the path"
            )
        named = []
        for span in _relationships(result, start, end):
            _check_loops(result[span[0] : span[1]], plan)
            _check_mixed_relationships(result[span[0] : span[1]], plan)
            named.append((span, *_name_relationship(result, span, counter)))
            counter += 1
            _, _, name, variable_length = named[-1]
            uses = sum(1 for t in result if t.kind in ("word", "name") and t.text == name)
            if variable_length and not name.startswith("__r") and uses > 1:
                raise ToolError(
                    f"using the variable {name!r} of a variable-length relationship is not "
                    "supported by the embedded engine (it would give a path, not a list of "
                    "relationships); name the path instead, like p = (a)-[*]->(b), and use "
                    "relationships(p)"
                )
        if len(named) > 1 and any(item[3] for item in named):
            raise ToolError(
                "a variable-length relationship together with other relationships in one MATCH "
                "is not supported by the embedded engine; split the pattern into two MATCH "
                "clauses or use fixed-length relationships"
            )
        if len(named) > 1:
            _add_condition(result, spans, position, _distinct_conditions([i[2] for i in named]))
        for span, part, _variable, variable_length in reversed(named):
            replacement = part if len(named) > 1 else list(result[span[0] : span[1]])
            if variable_length:
                replacement = _var_length(replacement)
            result[span[0] : span[1]] = replacement
    return result


def _add_condition(
    result: list[Token],
    spans: Sequence[tuple[str, int, int]],
    position: int,
    condition: list[Token],
) -> None:
    """AND `condition` into the WHERE of the clause at `position` (adding one if it has none)."""
    end = spans[position][2]
    following = spans[position + 1] if position + 1 < len(spans) else None
    if following is not None and following[0] == "WHERE":
        existing = result[following[1] + 1 : following[2]]
        result[following[1] : following[2]] = [
            _word("WHERE"),
            *condition,
            _word("AND"),
            _symbol("("),
            *existing,
            _symbol(")"),
        ]
    else:
        result[end:end] = [_word("WHERE"), *condition]


def _order_in_with(tokens: Sequence[Token]) -> list[Token]:
    """`WITH ... ORDER BY x` without SKIP/LIMIT gets `SKIP 0` (the engine needs one of them)."""
    spans = _clause_spans(tokens)
    result = list(tokens)
    for position in range(len(spans) - 1, 0, -1):
        keyword, _start, end = spans[position]
        if keyword != "ORDER" or spans[position - 1][0] != "WITH":
            continue
        following = spans[position + 1][0] if position + 1 < len(spans) else None
        if following not in ("SKIP", "LIMIT"):
            result[end:end] = [_word("SKIP"), Token("number", "0", -1)]
    return result


def _quote_property_names(tokens: Sequence[Token]) -> list[Token]:
    """Backtick every property name (`n.index`, `{index: 1}`): the engine reserves more words."""
    result = []
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else None
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.kind == "word" and (
            (previous is not None and previous.is_symbol("."))
            or (
                following is not None
                and following.is_symbol(":")
                and previous is not None
                and previous.is_symbol("{", ",")
            )
        ):
            token = _name(token.text)
        result.append(token)
    return result


def translate_for_ladybug(tokens: Sequence[Token], text: str, plan: TablePlan) -> LadybugQuery:
    """Translate validated tokens of `text` for the ladybug engine.

    Raises:
        ToolError: The query uses something the engine would answer differently from Cypher.
    """
    body = [token for token in tokens if not token.is_symbol(";")]
    _check_refusals(body)
    columns = return_columns(body, text)
    repeated = sorted({name for name in columns or () if list(columns or ()).count(name) > 1})
    if repeated:  # openCypher refuses these; the engine would keep one of the values
        raise ToolError(
            f"the column name {repeated[0]!r} is returned twice; give each RETURN item its own "
            "name, like RETURN 1 AS a, 2 AS b"
        )
    body = _quote_property_names([_symbol("<>") if t.is_symbol("!=") else t for t in body])
    body = _unique_relationships(body, plan)
    body = _rewrite_labels(body, plan)
    body = _rewrite_functions(body, plan)
    body = _order_in_with(body)
    return LadybugQuery(text=render(body), columns=columns)

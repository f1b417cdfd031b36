"""Cypher text from tokens and values: the rebuilt query (`render`) and quoted literals.

What runs on every backend is `render(tokens)` of the validated tokens, never the caller's
text; values go through `quote_literal` where an engine has no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agentlib import ToolError

from ._syntax import Token

__all__ = ["quote_literal", "render"]


def quote_literal(value: object) -> str:
    """Render a Python value as a Cypher literal: the library's own quoting, never raw splicing.

    Strings become double-quoted and plain ASCII: quotes, backslashes and control characters
    are escaped, other characters become escapes with 4 or 8 hex digits (the forms both
    grand-cypher and Neo4j read); lists render element by element.

    Raises:
        ToolError: The value has no Cypher literal form (a dict, NaN, an object).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError(f"{value!r} has no Cypher literal; use a finite number")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_escape(character) for character in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(quote_literal(item) for item in value) + "]"
    raise ToolError(f"cannot use a {type(value).__name__} as a Cypher value")


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(character: str) -> str:
    """One character in the form both grand-cypher (Python string rules) and Neo4j read."""
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    if 0x20 <= code < 0x7F:
        return character
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _token_text(token: Token) -> str:
    if token.kind == "string":
        return quote_literal(token.text)
    if token.kind == "name":
        return "`" + token.text.replace("`", "``") + "`"
    if token.kind == "parameter":
        return "$" + token.text
    return token.text


_TIGHT = frozenset("-[]<>")
_WORDY = frozenset({"word", "name", "string", "number", "parameter"})


def render(tokens: Sequence[Token]) -> str:
    """Rebuild query text from tokens (strings re-quoted, names re-escaped, no comments)."""
    parts: list[str] = []
    previous: Token | None = None
    for token in tokens:
        text = _token_text(token)
        if previous is not None:
            arrow = len(parts) >= 3 and parts[-3] in ("-", "]")
            tight = (
                (previous.is_symbol(*_TIGHT) and token.is_symbol(*_TIGHT))
                or previous.is_symbol(".", "(", "[", "{", "$")
                or token.is_symbol(".", ")", "]", "}", ",", ":", "..")
                or previous.is_symbol("..", ":")
                or (previous.is_symbol("*") and token.kind == "number")
                or (previous.is_symbol(")") and token.is_symbol("-", "<"))
                or (previous.is_symbol("-", ">") and token.is_symbol("(") and arrow)
                or (
                    token.is_symbol("(")
                    and previous.kind == "word"
                    and previous.upper not in _KEYWORDS_BEFORE_PAREN
                )
                or (  # an index or a list type: collect(x)[0], names[1], STRING[]
                    token.is_symbol("[")
                    and (
                        previous.is_symbol(")", "]")
                        or previous.kind == "name"
                        or (previous.kind == "word" and previous.upper not in _KEYWORDS_BEFORE_LIST)
                    )
                )
            )
            if not tight or (previous.kind in _WORDY and token.kind in _WORDY):
                parts.append(" ")
        parts.append(text)
        previous = token
    return "".join(parts)


_KEYWORDS_BEFORE_LIST = frozenset(
    {
        "IN",
        "UNWIND",
        "RETURN",
        "WITH",
        "WHEN",
        "THEN",
        "ELSE",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "BY",
        "DISTINCT",
        "WHERE",
        "CONTAINS",
        "CASE",
        "SKIP",
        "LIMIT",
        "AS",
        "IS",
    }
)
_KEYWORDS_BEFORE_PAREN = frozenset(
    {
        "MATCH",
        "WHERE",
        "AND",
        "OR",
        "XOR",
        "NOT",
        "IN",
        "RETURN",
        "WITH",
        "BY",
        "WHEN",
        "THEN",
        "ELSE",
        "AS",
        "DISTINCT",
        "MERGE",
        "CREATE",
    }
)

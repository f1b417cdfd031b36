"""Cypher text handling for `agentlib.tools.cypher`: tokenizer, read-only validator, quoting.

The validator works on tokens, never on raw text: string literals, backticked names and
comments are recognised first, so a keyword hidden in a string is data and a keyword hidden
behind a comment, odd casing or a full-width look-alike is still found. The text that runs is
rebuilt from the validated tokens (`_render.render`), so what was checked is exactly what executes;
string literals are re-quoted by `quote_literal`, never copied through.

Translation to grand-cypher's dialect lives in `_grand.py`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agentlib import ToolError

__all__ = [
    "CypherSyntaxInfo",
    "Token",
    "return_columns",
    "tokenize",
    "validate_read_only",
]

TokenKind = Literal["word", "name", "string", "number", "parameter", "symbol"]

# Clauses (and clause words) that write, administer, or reach outside the query. Any of them as
# a bare word rejects the query; `n.set` (a property) and `` `set` `` (a quoted name) do not.
WRITE_WORDS = frozenset(
    {
        "CREATE",
        "MERGE",
        "SET",
        "DELETE",
        "DETACH",
        "NODETACH",
        "REMOVE",
        "DROP",
        "CALL",
        "LOAD",
        "FOREACH",
        "INSERT",
        "USE",
        "USING",
        "FINISH",
        "ALTER",
        "RENAME",
        "GRANT",
        "DENY",
        "REVOKE",
        "SHOW",
        "TERMINATE",
        "COMMIT",
        "PERIODIC",
        "TRANSACTIONS",
    }
)
OTHER_CLAUSES = frozenset({"UNION", "EXPLAIN", "PROFILE"})
FIRST_WORDS = frozenset({"MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN"})
LITERAL_WORDS = frozenset({"TRUE", "FALSE", "NULL"})
ALLOWED_CLAUSES = "MATCH, OPTIONAL MATCH, WHERE, RETURN, WITH, ORDER BY, SKIP, LIMIT, UNWIND"

_SYMBOLS = ("<>", "!=", "<=", ">=", "=~", "..", "+=", *"()[]{},.:|*+-/%^=<>;!&")
_WORD = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|(?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_ESCAPES = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit of a Cypher query."""

    kind: TokenKind
    """`word` (identifier or keyword), `name` (backticked), `string`, `number`, `parameter`
    or `symbol`."""
    text: str
    """The decoded value: the string's content, the name inside the backticks, the symbol."""
    position: int
    """Offset in the original query, for messages."""
    end: int = -1
    """Offset just after the token in the original query (-1 for tokens made by a rewrite)."""

    @property
    def upper(self) -> str:
        """The text upper-cased when it is a bare word, else empty (keywords never match)."""
        return self.text.upper() if self.kind == "word" else ""

    def is_symbol(self, *symbols: str) -> bool:
        """Whether the token is one of `symbols`."""
        return self.kind == "symbol" and self.text in symbols


def _describe_character(character: str) -> str:
    name = unicodedata.name(character, "unnamed character")
    return f"{character!r} (U+{ord(character):04X} {name})"


def _read_string(query: str, start: int) -> tuple[str, int]:
    quote = query[start]
    index = start + 1
    parts: list[str] = []
    while index < len(query):
        character = query[index]
        if character == quote:
            return "".join(parts), index + 1
        if character == "\\":
            escape = query[index + 1 : index + 2]
            if escape in _ESCAPES:
                parts.append(_ESCAPES[escape])
                index += 2
                continue
            if escape in ("u", "U"):
                width = 4 if escape == "u" else 8
                digits = query[index + 2 : index + 2 + width]
                if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                    code = int(digits, 16)
                    if 0xDC00 <= code <= 0xDFFF and parts and "\ud800" <= parts[-1] <= "\udbff":
                        # A UTF-16 surrogate pair written as two \u escapes: one character.
                        high = ord(parts.pop())
                        code = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
                    if code > 0x10FFFF:
                        raise ToolError(f"\\U{digits} is not a Unicode character")
                    parts.append(chr(code))
                    index += 2 + width
                    continue
            raise ToolError(
                f"invalid escape sequence {query[index : index + 2]!r} in the string starting "
                f"at character {start}; use \\\\, \\', \\\", \\n, \\t or \\uXXXX"
            )
        parts.append(character)
        index += 1
    raise ToolError(f"the string starting at character {start} is never closed")


def _read_backticks(query: str, start: int) -> tuple[str, int]:
    index = start + 1
    parts: list[str] = []
    while index < len(query):
        if query[index] == "`":
            if query[index + 1 : index + 2] == "`":  # `` is an escaped backtick
                parts.append("`")
                index += 2
                continue
            return "".join(parts), index + 1
        parts.append(query[index])
        index += 1
    raise ToolError(f"the backticked name starting at character {start} is never closed")


# Neo4j's lexer, character for character (Cypher5Lexer.g4 and Cypher25Lexer.g4, the grammars of
# Neo4j's Cypher parser, published in github.com/neo4j/cypher-language-support,
# packages/language-support/src/antlr-grammar):
#   SINGLE_LINE_COMMENT : '//' ~[\r\n]* ;       a `//` comment ends at CR or LF, nothing else
#   MULTI_LINE_COMMENT  : '/*' .*? '*/' ;
#   SPACE : \t \n \u000B \u000C \r \u001C-\u001F \u0020 \u00A0 \u1680 \u2000-\u200A \u2028
#           \u2029 \u202F \u205F \u3000 ;
# So `\r` (alone or in `\r\n`) ends a comment; U+2028, U+2029 and U+0085 do not (the first two
# are only spaces, and U+0085 is neither: outside strings it is refused like any other
# character). The text that runs is rebuilt from these tokens without the comments, so a
# terminator read differently by some other engine cannot hide a clause either.
COMMENT_TERMINATORS = "\r\n"
SPACES = frozenset(
    "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u00a0\u1680"
    + "".join(chr(code) for code in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def _skip_comment(query: str, index: int) -> int | None:
    if query.startswith("//", index):
        end = index + 2
        while end < len(query) and query[end] not in COMMENT_TERMINATORS:
            end += 1
        return end
    if query.startswith("/*", index):
        end = query.find("*/", index + 2)
        if end < 0:
            raise ToolError(f"the comment starting at character {index} is never closed")
        return end + 2
    return None


def _read_bare(query: str, index: int) -> Token:
    """A word, number, parameter or symbol at `index`; look-alike characters are refused."""
    for pattern, kind in ((_NUMBER, "number"), (_WORD, "word")):
        match = pattern.match(query, index)
        if match:
            text = match.group()
            normal = unicodedata.normalize("NFKC", text)
            if not normal.isascii():
                bad = next(c for c in normal if not c.isascii())
                raise ToolError(
                    f"the query contains the non-ASCII character {_describe_character(bad)} "
                    f"outside a string, in {text!r}; keywords and names must be plain ASCII "
                    "(put unusual names in backticks)"
                )
            if normal != text:
                if normal.upper() in WRITE_WORDS:
                    _reject_word(Token("word", normal, index), None)
                raise ToolError(
                    f"the query writes {normal!r} with look-alike characters ({text!r}); "
                    "write it in plain ASCII"
                )
            return Token(kind, text, index)  # type: ignore[arg-type]
    if query[index] == "$":
        match = _WORD.match(query, index + 1)
        if match:
            return Token("parameter", match.group(), index)
    for symbol in _SYMBOLS:
        if query.startswith(symbol, index):
            return Token("symbol", symbol, index)
    raise ToolError(
        f"unexpected character {_describe_character(query[index])} at position {index}"
        + ("; keywords and symbols must be plain ASCII" if not query[index].isascii() else "")
    )


def tokenize(query: str) -> list[Token]:
    """Split `query` into tokens, dropping whitespace and comments.

    Raises:
        ToolError: An unclosed string, name or comment, a bad escape, or a character outside
            strings that is not plain ASCII (full-width or Cyrillic look-alikes included).
    """
    tokens: list[Token] = []
    index = 0
    while index < len(query):
        character = query[index]
        if character in SPACES:
            index += 1
            continue
        after_comment = _skip_comment(query, index)
        if after_comment is not None:
            index = after_comment
            continue
        if character in "'\"":
            text, end = _read_string(query, index)
            tokens.append(Token("string", text, index, end))
        elif character == "`":
            text, end = _read_backticks(query, index)
            tokens.append(Token("name", text, index, end))
        else:
            token = _read_bare(query, index)
            end = index + (len(token.text) + 1 if token.kind == "parameter" else len(token.text))
            tokens.append(Token(token.kind, token.text, index, end))
        index = end
    return tokens


@dataclass(slots=True)
class CypherSyntaxInfo:
    """What the validator learned about a query: the names it uses."""

    labels: set[str] = field(default_factory=set)
    """Node labels written in patterns or label predicates."""
    relationship_types: set[str] = field(default_factory=set)
    """Relationship types written in patterns."""
    properties: set[str] = field(default_factory=set)
    """Property names read as `variable.property`."""
    map_keys: set[str] = field(default_factory=set)
    """Keys of map literals (so `UNWIND [{a: 1}] AS m RETURN m.a` checks out)."""
    relationship_variables: set[str] = field(default_factory=set)
    """Variables bound to relationships, like `r` in `-[r:ACTED_IN]->`."""


def _reject_word(token: Token, previous: Token | None) -> None:
    word = token.upper
    if previous is not None and previous.is_symbol("."):
        return  # a property such as n.set
    if word in WRITE_WORDS:
        what = "LOAD CSV" if word == "LOAD" else word
        raise ToolError(
            f"{what} is not allowed: queries are read-only (allowed clauses: {ALLOWED_CLAUSES}); "
            f"if '{token.text}' is a name in your data, put it in backticks"
        )
    if word in OTHER_CLAUSES:
        raise ToolError(
            f"{word} is not allowed here; allowed clauses: {ALLOWED_CLAUSES}. "
            "Run separate queries instead"
        )


_UNWIND_HELP = (
    "UNWIND is allowed over a literal list, a variable or a property, like UNWIND [1, 2] AS x, "
    "UNWIND names AS name or UNWIND r.roles AS role"
)


def _check_unwind(tokens: Sequence[Token], index: int) -> None:
    """`UNWIND` takes a literal list, a variable or `variable.property`, then `AS name`."""
    position = index + 1
    if position >= len(tokens):
        raise ToolError(_UNWIND_HELP)
    if tokens[position].kind in ("word", "name") and tokens[position].upper != "AS":
        position += 1
        while (
            position + 1 < len(tokens)
            and tokens[position].is_symbol(".")
            and tokens[position + 1].kind in ("word", "name")
        ):
            position += 2
        if position >= len(tokens) or tokens[position].upper != "AS":
            raise ToolError(_UNWIND_HELP)
        return
    if not tokens[position].is_symbol("["):
        raise ToolError(_UNWIND_HELP)
    depth = 0
    while position < len(tokens):
        token = tokens[position]
        if token.is_symbol("[", "{"):
            depth += 1
        elif token.is_symbol("]", "}"):
            depth -= 1
            if depth == 0:
                break
        elif not (
            token.kind in ("string", "number")
            or token.upper in LITERAL_WORDS
            or token.is_symbol(",", "-", ":")
            or (token.kind == "word" and tokens[position + 1].is_symbol(":"))
        ):
            raise ToolError(
                "UNWIND is allowed over a literal list (strings, numbers, booleans, null, "
                f"nested lists and maps), a variable or a property; found {token.text!r}"
            )
        position += 1
    if position + 1 >= len(tokens) or tokens[position + 1].upper != "AS":
        raise ToolError("UNWIND needs `AS name` after its list")


def _collect_names(tokens: Sequence[Token], index: int) -> list[str]:
    names: list[str] = []
    position = index + 1
    while position < len(tokens) and tokens[position].kind in ("word", "name"):
        names.append(tokens[position].text)
        nxt = position + 1
        if nxt < len(tokens) and tokens[nxt].is_symbol("|", ":", "&", "!"):
            position = nxt + 1
            while position < len(tokens) and tokens[position].is_symbol("!", ":"):
                position += 1
            continue
        break
    if not names:
        raise ToolError(
            f"expected a label or relationship type after ':' at {tokens[index].position}"
        )
    return names


def _note_colon(
    tokens: Sequence[Token], index: int, stack: list[tuple[str, int]], info: CypherSyntaxInfo
) -> None:
    if stack and stack[-1][0] == "{":
        key = tokens[index - 1] if index else None
        if key is not None and key.kind in ("word", "name"):
            info.map_keys.add(key.text)
        return
    if index and tokens[index - 1].is_symbol(":", "|", "&", "!"):
        return  # already collected as part of a label expression
    names = _collect_names(tokens, index)
    opener = stack[-1][1] if stack else -1
    in_relationship = (
        bool(stack) and stack[-1][0] == "[" and opener > 0 and tokens[opener - 1].is_symbol("-")
    )
    if in_relationship:
        info.relationship_types.update(names)
        variable = tokens[index - 1] if tokens[index - 1].kind in ("word", "name") else None
        if variable is not None:
            info.relationship_variables.add(variable.text)
    else:
        info.labels.update(names)


def _note_relationship_variable(
    tokens: Sequence[Token], index: int, info: CypherSyntaxInfo
) -> None:
    """`-[r]-`: `r` names a relationship even without a type."""
    if (
        tokens[index].is_symbol("[")
        and index
        and tokens[index - 1].is_symbol("-")
        and index + 1 < len(tokens)
        and tokens[index + 1].kind in ("word", "name")
    ):
        info.relationship_variables.add(tokens[index + 1].text)


def _check_word(tokens: Sequence[Token], index: int, info: CypherSyntaxInfo) -> None:
    token = tokens[index]
    previous = tokens[index - 1] if index else None
    _reject_word(token, previous)
    if token.upper == "UNWIND":
        _check_unwind(tokens, index)
    following = tokens[index + 1 : index + 4]
    if (
        len(following) == 3
        and following[0].is_symbol(".")
        and following[1].kind == "word"
        and following[2].is_symbol("(", ".")
        and not (previous is not None and previous.is_symbol("."))
    ):
        raise ToolError(
            f"calling '{token.text}.{following[1].text}...' is not allowed: procedures "
            "and namespaced (plugin) functions can write or reach outside the graph"
        )
    if previous is not None and previous.is_symbol(".") and index >= 2:
        owner = tokens[index - 2]
        if owner.kind in ("word", "name") or owner.is_symbol(")", "]"):
            info.properties.add(token.text)


def _check_start(tokens: Sequence[Token]) -> None:
    if not tokens:
        raise ToolError("the query is empty; write one MATCH ... RETURN ... query")
    if tokens[0].upper not in FIRST_WORDS:
        _reject_word(tokens[0], None)
        raise ToolError(
            f"a query must start with MATCH, OPTIONAL MATCH, UNWIND, WITH or RETURN, "
            f"not {tokens[0].text!r}; allowed clauses: {ALLOWED_CLAUSES}"
        )


def validate_read_only(tokens: Sequence[Token]) -> CypherSyntaxInfo:
    """Check that the tokens form one read-only query and collect the names it uses.

    Raises:
        ToolError: A write or admin clause, a procedure call, several statements, parameters
            where none are allowed, an UNWIND over something other than literals, or a query
            that does not start with a read clause.
    """
    tokens = list(tokens)
    while tokens and tokens[-1].is_symbol(";"):
        tokens.pop()
    _check_start(tokens)
    info = CypherSyntaxInfo()
    stack: list[tuple[str, int]] = []
    for index, token in enumerate(tokens):
        if token.kind == "word":
            _check_word(tokens, index, info)
        elif token.kind == "name" and index and tokens[index - 1].is_symbol("."):
            info.properties.add(token.text)
        elif token.is_symbol(";"):
            raise ToolError(
                "only one statement is allowed: remove the ';' and run queries separately"
            )
        elif token.is_symbol("(", "[", "{"):
            stack.append((token.text, index))
            _note_relationship_variable(tokens, index, info)
        elif token.is_symbol(")", "]", "}"):
            if not stack:
                raise ToolError(f"unbalanced {token.text!r} at position {token.position}")
            stack.pop()
        elif token.is_symbol(":"):
            _note_colon(tokens, index, stack, info)
    if stack:
        raise ToolError(f"unclosed {stack[-1][0]!r}: the query's brackets are unbalanced")
    return info


def _last_return(tokens: Sequence[Token]) -> int:
    depth, start = 0, None
    for index, token in enumerate(tokens):
        if token.is_symbol("(", "[", "{"):
            depth += 1
        elif token.is_symbol(")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.upper == "RETURN":
            start = index + 1
    if start is None:
        raise ToolError("the query needs a RETURN clause")
    if start < len(tokens) and tokens[start].upper == "DISTINCT":
        start += 1
    return start


def return_columns(tokens: Sequence[Token], text: str) -> tuple[str, ...] | None:
    """The last RETURN's column names: the alias, or the expression as written in `text`.

    `None` for `RETURN *`. openCypher names a column after the expression's text, so the names
    come from the caller's query, not from the text rebuilt from the tokens.
    """
    items: list[list[Token]] = [[]]
    depth = 0
    tokens = [token for token in tokens if not token.is_symbol(";")]
    for token in tokens[_last_return(tokens) :]:
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
    if len(items) == 1 and len(items[0]) == 1 and items[0][0].is_symbol("*"):
        return None
    return tuple(
        item[-1].text
        if len(item) >= 2 and item[-2].upper == "AS"
        else text[item[0].position : item[-1].end].strip()
        for item in items
    )


def check_names(
    info: CypherSyntaxInfo,
    *,
    labels: Iterable[str],
    relationship_types: Iterable[str],
    properties: Iterable[str],
) -> None:
    """Check that the labels, relationship types and properties used exist in the graph.

    Raises:
        ToolError: A name is unknown; the message lists the known ones.
    """
    known_labels, known_types = set(labels), set(relationship_types)
    for name in sorted(info.labels - known_labels):
        hint = " (it is a relationship type)" if name in known_types else ""
        raise ToolError(
            f"unknown node label {name!r}{hint}; labels in this graph: "
            f"{', '.join(sorted(known_labels)) or '(none)'}"
        )
    for name in sorted(info.relationship_types - known_types):
        hint = " (it is a node label)" if name in known_labels else ""
        raise ToolError(
            f"unknown relationship type {name!r}{hint}; relationship types in this graph: "
            f"{', '.join(sorted(known_types)) or '(none)'}"
        )
    known_properties = set(properties) | info.map_keys
    for name in sorted(info.properties - known_properties):
        raise ToolError(
            f"unknown property {name!r}; properties in this graph: "
            f"{', '.join(sorted(known_properties)) or '(none)'}"
        )

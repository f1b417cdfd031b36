r"""What constrained decoding may write in a free string: no placeholder, bounded bytes, no repeat.

A *free* string is one whose schema says only `type: string` (and perhaps a `maxLength`): no
`pattern`, `format`, `enum` or `const` of its own. The step format gives the schemas it hands
to token-level constraint engines three extra patterns for free strings and a range for every
number (`tighten`), and checks the first after parsing on every path (`find_placeholder`):

- **No placeholder** (tool arguments only): small models copy a template's placeholders as
  values (`"{{city}}"`, `"<city>"`, `"..."`, issue 25 item 4). `NOT_PLACEHOLDER` matches every
  string except one that is *only* a placeholder: `{{anything}}`, `<words>` (letters, digits,
  spaces, `_`, `-`, `.`), three or more dots or `…`, and `{...}`, `[...]`, `(...)`. Text that
  merely contains one (`"<b>bold</b>"`, `"see {{x}} below"`) is untouched, and so is any string
  with a pattern, format or enum of its own; a tool that wants a bare tag such as `"<b>"` as a
  whole value declares a `pattern` for it.
- **Bounded bytes** (every free string with a `maxLength`): every token is at least one byte,
  so a string's worst case in tokens is its UTF-8 bytes. A plain ASCII character is one byte; an
  escape (`\\n`, `\\"`) two and a non-ASCII character up to four. At most a quarter of a string's
  characters may be such *wide* characters (`wide_cap`), so a string of `n` characters takes at
  most `worst_case_bytes(n)` bytes: the step format fits its bounds to the token budget with it.
- **Bounded digits** (every number): `agentlib._number_constraints.bound_number`, so numbers
  fit the budget too.
- **Not the failed value** (after a validation failure): `excluding(values)` matches every string
  but those, so a retry cannot repeat the rejected argument word for word.

Patterns are anchored, portable (Rust `regex`, which llguidance uses, and Python `re`) and use
no look-around, which llguidance does not support.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentlib._json_schema import _map_subschemas
from agentlib._number_constraints import bound_number, digit_limits, is_free_number

__all__ = [
    "NOT_PLACEHOLDER",
    "WIDE_SHARE",
    "excluding",
    "find_placeholder",
    "is_free_string",
    "is_placeholder",
    "outlines_core_form",
    "tighten",
    "wide_cap",
    "worst_case_bytes",
]

_PLACEHOLDER = re.compile(
    r"\.{3,}|…+"
    r"|\{\{[^{}]*\}\}"
    r"|<[A-Za-z_.…][A-Za-z0-9 _.…-]*>"
    r"|[{\[(](?:\.{3,}|…+)[}\])]"
)
"""A string that is only a placeholder (matched whole)."""

_ANY = r"[\s\S]*"
_SOME = r"[\s\S]+"
# After an opening `(`, `[` or `{`: anything but `...` or `…` closed by one bracket.
_NOT_ELLIPSIS_IN_BRACKETS = (
    r"|\.{1,2}(?:[^.]" + _ANY + r")?"
    r"|\.{3,}(?:[^.}\])]" + _ANY + r"|[}\])]" + _SOME + r")?"
    r"|…+(?:[^…}\])]" + _ANY + r"|[}\])]" + _SOME + r")?"
)
# After `{{`: anything but a brace-free text closed by `}}`.
_NOT_MUSTACHE_REST = r"[^{}]*(?:\{" + _ANY + r"|\}(?:[^}]" + _ANY + r"|\}" + _SOME + r")?)?"
# After `<`: anything but words closed by `>`.
_NOT_ANGLE_REST = (
    r"|[^A-Za-z_.…]" + _ANY + r"|[A-Za-z_.…][A-Za-z0-9 _.…-]*(?:[^A-Za-z0-9 _.…>-]"
    r"" + _ANY + r"|>" + _SOME + r")?"
)
NOT_PLACEHOLDER = (
    r"^(?:"
    r"|[^.…{<\[(]" + _ANY + r""
    r"|\.{1,2}|\.+[^.]" + _ANY + r""
    r"|…+[^…]" + _ANY + r""
    r"|[(\[](?:|[^.…]" + _ANY + _NOT_ELLIPSIS_IN_BRACKETS + r")"
    r"|\{(?:|[^.…{]" + _ANY + _NOT_ELLIPSIS_IN_BRACKETS + r")"
    r"|\{\{" + _NOT_MUSTACHE_REST + r""
    r"|<(?:" + _NOT_ANGLE_REST + r")"
    r")$"
)
"""A pattern matching exactly the strings that are not only a placeholder."""

WIDE_SHARE = 4
"""At most one character in `WIDE_SHARE` of a free string may be wide (escaped or non-ASCII)."""

# One byte in JSON: printable ASCII except the quote and the backslash, which are escaped.
_NARROW = r"[ !#-\[\]-~]"
_WIDE = r"[^ !#-\[\]-~]"
_WIDEST_BYTES = 4  # UTF-8's longest character; an escape takes 2


def wide_cap(max_length: int) -> int:
    """How many wide characters a free string of at most `max_length` characters may hold."""
    return max_length // WIDE_SHARE


def worst_case_bytes(max_length: int) -> int:
    """The most UTF-8 bytes a free string of `max_length` characters takes in JSON, quotes too."""
    return max_length + (_WIDEST_BYTES - 1) * wide_cap(max_length) + 2


def _wide_cap_pattern(max_length: int) -> str:
    return f"^{_NARROW}*(?:{_WIDE}{_NARROW}*){{0,{wide_cap(max_length)}}}$"


def is_placeholder(text: str) -> bool:
    """Whether `text` is only a template placeholder (`{{city}}`, `<city>`, `...`)."""
    return _PLACEHOLDER.fullmatch(text) is not None


def excluding(values: Iterable[str]) -> str:
    """An anchored pattern matching every string except `values` (their complement)."""
    trie: dict[str, Any] = {}
    for value in values:
        node = trie
        for character in value:
            node = node.setdefault(character, {})
        node[""] = {}  # the end of a value
    return f"^(?:{_complement(trie)})$"


def _complement(node: Mapping[str, Any]) -> str:
    """Strings that do not spell a value of the trie `node` from here."""
    children = sorted(key for key in node if key)
    alternatives = []
    if "" not in node:
        alternatives.append("")  # stopping here spells no value
    if children:
        others = "".join(_class_escape(key) for key in children)
        alternatives.append(f"[^{others}]{_ANY}")
        alternatives.extend(f"{_escape(key)}(?:{_complement(node[key])})" for key in children)
    else:
        alternatives.append(_SOME)  # anything longer than the value
    return "|".join(alternatives)


def _escape(character: str) -> str:
    return "\\" + character if character in "\\.+*?()|[]{}^$" else character


def _class_escape(character: str) -> str:
    return "\\" + character if character in "\\]-[^&~|" else character


def is_free_string(schema: Mapping[str, Any]) -> bool:
    """Whether `schema` admits strings and shapes them only by length."""
    kind = schema.get("type")
    strings = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return strings and not any(key in schema for key in ("pattern", "format", "enum", "const"))


Path = tuple[str, ...]
"""Where a value sits in a payload: property names, `*` for an array's items."""


def tighten(
    schema: Mapping[str, Any],
    *,
    placeholders: bool,
    excluded: Mapping[Path, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """`schema` for a constraint engine: its free strings capped, and more (see the module).

    Args:
        schema: A bounded schema (`bound_and_close`), `$ref`s inlined.
        placeholders: Whether free strings may not be only a placeholder (tool arguments).
        excluded: Values free strings at these paths may not take (a failed attempt's).
    """
    result: dict[str, Any] = _tighten(dict(schema), (), placeholders, excluded or {})
    return result


def _tighten(
    node: Any, path: Path, placeholders: bool, excluded: Mapping[Path, Sequence[str]]
) -> Any:
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(node.get(key), list):
            out[key] = [_tighten(item, path, placeholders, excluded) for item in node[key]]
    if isinstance(node.get("properties"), dict):
        out["properties"] = {
            name: _tighten(sub, (*path, name), placeholders, excluded)
            for name, sub in node["properties"].items()
        }
    if isinstance(node.get("items"), dict):
        out["items"] = _tighten(node["items"], (*path, "*"), placeholders, excluded)
    if isinstance(node.get("prefixItems"), list):
        out["prefixItems"] = [
            _tighten(item, (*path, "*"), placeholders, excluded) for item in node["prefixItems"]
        ]
    if is_free_number(node):
        return bound_number(out)
    if not is_free_string(node):
        return out
    patterns = _patterns(node, placeholders, excluded.get(path, ()))
    if patterns:
        out["pattern"] = patterns[0]
    if len(patterns) > 1:
        out["allOf"] = [*out.get("allOf", []), *({"pattern": item} for item in patterns[1:])]
    return out


def _patterns(node: Mapping[str, Any], placeholders: bool, excluded: Sequence[str]) -> list[str]:
    """The patterns a free string gets (all must match: the first as `pattern`, then `allOf`)."""
    patterns = []
    if isinstance(node.get("maxLength"), int):
        patterns.append(_wide_cap_pattern(node["maxLength"]))
    if placeholders:
        patterns.append(NOT_PLACEHOLDER)
    if excluded:
        patterns.append(excluding(excluded))
    return patterns


# outlines-core matches a pattern against the JSON text between the quotes, so a wide
# character there is an escape (the ones llguidance allows) or a non-ASCII character.
_WIDE_JSON = r'(?:\\["\\nt]|[^\x00-\x9F])'


def _grouped_pattern(max_length: int) -> str:
    """At most `wide_cap(n)` groups of up to four characters, one of them wide at most.

    The wide cap as one regex outlines-core can take: it has no intersection, and ignores
    a `pattern` beside a `maxLength`. Stricter than `_wide_cap_pattern` (at most
    `4 * wide_cap(n)` characters, and a wide character ends its group), never looser:
    at most `wide_cap(n)` wide characters, so `worst_case_bytes(n)` holds.
    """
    group = f"{_NARROW}{{0,4}}|{_NARROW}{{0,3}}{_WIDE_JSON}"
    return f"^(?:{group}){{0,{max(1, wide_cap(max_length))}}}$"


def outlines_core_form(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The step schema with as much of `tighten`'s constraint as outlines-core can express.

    Free strings with a `maxLength` (and no `minLength`) get the wide cap as one pattern
    (`_grouped_pattern`), free numbers `digit_limits`. Not expressible there: the placeholder
    and excluded-value patterns (they need an intersection with the length bound: `allOf` of
    patterns is refused by outlines-core, and a `pattern` beside `maxLength` is ignored), and
    a decimal's digits before the point. The placeholder check after parsing covers the first.
    """
    result: dict[str, Any] = _map_subschemas(dict(schema), _outlines_core_node)
    return result


def _outlines_core_node(node: dict[str, Any]) -> dict[str, Any]:
    if is_free_number(node):
        return digit_limits(node)
    if is_free_string(node) and isinstance(node.get("maxLength"), int) and "minLength" not in node:
        node["pattern"] = _grouped_pattern(node.pop("maxLength"))
    return node


def find_placeholder(value: Any, schema: Any, path: Path = ()) -> tuple[Path, str] | None:
    """The first free string in `value` that is only a placeholder: `(its path, the string)`.

    Strings whose schema has a pattern, format, enum or const are never placeholders; a part
    of `value` under a `$ref` is not looked into.
    """
    if not isinstance(schema, Mapping) or "$ref" in schema:
        return None
    if isinstance(value, str):
        free = _string_schemas(schema)
        if free and all(is_free_string(item) for item in free) and is_placeholder(value):
            return path, value
        return None
    branches = [
        (value, branch, path)
        for key in ("anyOf", "oneOf", "allOf")
        for branch in schema.get(key, ())
    ]
    for item, sub, where in [*branches, *_children(value, schema, path)]:
        found = find_placeholder(item, sub, where)
        if found is not None:
            return found
    return None


def _children(value: Any, schema: Mapping[str, Any], path: Path) -> list[tuple[Any, Any, Path]]:
    """`(item, its schema, its path)` for each property or item of `value`."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return [
            (
                item,
                properties.get(name, extra if isinstance(extra, Mapping) else None),
                (*path, name),
            )
            for name, item in value.items()
        ]
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        return [
            (item, prefix[index] if index < len(prefix) else schema.get("items"), (*path, "*"))
            for index, item in enumerate(value)
        ]
    return []


def _string_schemas(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The schemas (the node, or its branches) that would take a string value here."""
    branches = [
        item
        for key in ("anyOf", "oneOf")
        for item in schema.get(key, ())
        if isinstance(item, Mapping)
    ]
    found = [item for branch in branches for item in _string_schemas(branch)]
    kind = schema.get("type")
    if kind == "string" or (isinstance(kind, list) and "string" in kind):
        found.append(schema)
    return found

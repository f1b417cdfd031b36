"""Pieces of the step schema: its JSON syntax with strings empty, and the budget arithmetic.

`StepFormat` (in `agentlib.step_format`) builds the schema; these measure it. Sizes are UTF-8
bytes, the worst case in tokens (see `StepFormat._bounds`); a number's width comes from
`agentlib._number_constraints`, a free string's from `agentlib._string_constraints`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentlib._number_constraints import is_free_number, number_width
from agentlib._string_constraints import is_free_string, worst_case_bytes

__all__ = [
    "MAX_ITEMS",
    "NO_ARGUMENTS",
    "answer_object",
    "content_bytes",
    "fitting",
    "skeleton",
    "string_costs",
]

MAX_ITEMS = 8
"""With a token budget, the most items given to an array without `maxItems`."""
NO_ARGUMENTS: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}
"""The arguments of a branch that takes none (a handoff)."""


def skeleton(schema: Any) -> Any:
    """The widest value `schema` admits with every free string empty (its JSON syntax).

    Numbers count at their widest under constraint (`number_width`), as wide as any number
    the constraint lets a model write there.
    """
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return max(schema["enum"], key=lambda item: len(json.dumps(item)))
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return max(
                (skeleton(item) for item in schema[key]), key=lambda item: len(json.dumps(item))
            )
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: skeleton(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [skeleton(schema.get("items", {}))] * int(schema.get("maxItems", 1))
    if is_free_number(schema) and kind in ("integer", "number"):
        # Its widest under constraint, written as an integer of as many bytes.
        width = number_width(schema)
        return -(10 ** (width - 2)) if width > 1 else 1
    return {"string": "", "boolean": False}.get(str(kind))


def string_costs(schema: Any) -> tuple[int, int]:
    """`(free strings, characters of bounded ones)` in a schema, for the token budget."""
    if not isinstance(schema, Mapping):
        return 0, 0
    kind = schema.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string:
        if "maxLength" in schema:
            length = int(schema["maxLength"])
            # A capped free string, or any character at UTF-8's widest (4 bytes).
            return 0, content_bytes(length) if is_free_string(schema) else 4 * length
        if any(key in schema for key in ("enum", "const", "pattern", "format")):
            return 0, 0  # short or shaped: counted in the skeleton
        return 1, 0
    free = fixed = 0
    for key in ("anyOf", "oneOf"):
        options = [string_costs(item) for item in schema.get(key, ())]
        if options:
            free += max(item[0] for item in options)
            fixed += max(item[1] for item in options)
    for sub in schema.get("properties", {}).values():
        sub_free, sub_fixed = string_costs(sub)
        free, fixed = free + sub_free, fixed + sub_fixed
    if "items" in schema:
        count = int(schema.get("maxItems", 1))
        sub_free, sub_fixed = string_costs(schema["items"])
        free, fixed = free + count * sub_free, fixed + count * sub_fixed
    return free, fixed


def content_bytes(length: int) -> int:
    """The most bytes a free string of `length` characters takes inside its quotes."""
    return worst_case_bytes(length) - 2


def fitting(room: int) -> int:
    """The longest free string (at least 1 character) whose content fits `room` bytes."""
    length = max(1, room * 4 // 7)  # a quarter of the characters may take 4 bytes
    while content_bytes(length + 1) <= room:
        length += 1
    while length > 1 and content_bytes(length) > room:
        length -= 1
    return length


def answer_object(answer_schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"answer": dict(answer_schema)},
        "required": ["answer"],
        "additionalProperties": False,
    }

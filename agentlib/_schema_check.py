"""A fast, conservative "is this JSON schema well formed?" check for tool argument schemas.

`jsonschema`'s `check_schema` validates a schema against the Draft 2020-12 metaschema, whose
`$dynamicRef`s cost about 13 ms per tool schema (4 s for 300 MCP tools under a profiler,
benchmarks/tool_construction.md). Tool schemas almost always use a small set of keywords, so
`plainly_valid` accepts a schema only when every keyword in it is one it knows, with a value of
the right shape; anything else (an unknown keyword, an odd value) returns `False` and the caller
runs the full metaschema check, which also gives the precise error message. So it never accepts
a schema the metaschema would reject within the keywords it knows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plainly_valid"]

_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_TEXT = frozenset({"description", "title", "$comment", "pattern", "format", "$ref"})
_ANY = frozenset({"default", "examples", "const"})
_COUNTS = frozenset(
    {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}
)
_NUMBERS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMAS = frozenset({"additionalProperties", "items", "not"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_ok(value: Any) -> bool:
    if isinstance(value, str):
        return value in _TYPES
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, str) and item in _TYPES for item in value)
        and len(set(value)) == len(value)
    )


def _keyword_ok(key: str, value: Any) -> bool:
    if key == "type":
        return _type_ok(value)
    if key in _TEXT:
        return isinstance(value, str)
    if key in _ANY:
        return True
    if key in _COUNTS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if key in _NUMBERS or key == "multipleOf":
        return _is_number(value) and (key != "multipleOf" or value > 0)
    if key == "enum":
        return isinstance(value, list)
    if key == "required":
        return (
            isinstance(value, list)
            and all(isinstance(item, str) for item in value)
            and len(set(value)) == len(value)
        )
    if key == "uniqueItems":
        return isinstance(value, bool)
    if key in _SCHEMA_LISTS:
        return isinstance(value, list) and bool(value) and all(map(plainly_valid, value))
    if key in _SCHEMA_MAPS:
        return isinstance(value, dict) and all(map(plainly_valid, value.values()))
    if key in _SCHEMAS:
        return plainly_valid(value)
    return False  # a keyword this check does not know: let the metaschema decide


def plainly_valid(schema: Any) -> bool:
    """Whether `schema` is well formed using only common keywords (`False`: check it fully)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    return all(isinstance(key, str) and _keyword_ok(key, value) for key, value in schema.items())

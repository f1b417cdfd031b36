"""Values generated from a JSON schema: valid, deterministic, small.

Used for the filled examples the prompt shows (never a template a model could copy) and by
`TestModel`, which calls every tool with arguments built here. Covers the keywords tool and
output schemas use (types, `enum`, `const`, `anyOf`/`oneOf`, bounds, `required`, common string
formats); a `pattern` is satisfied when one of a few candidates matches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["example_value"]

_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}
_PATTERN_CANDIDATES = ("a", "A", "0", "a1", "aa", "2024-01-01", "abc", "x_1", "ab-cd")


def example_value(schema: Mapping[str, Any], *, text: str = "a") -> Any:
    """A value valid against `schema` (as far as the keywords above go).

    Args:
        schema: A JSON schema with `$ref`s inlined.
        text: The string to use where the schema leaves strings free.
    """
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    for key in ("anyOf", "oneOf"):
        options = [item for item in schema.get(key, ()) if item.get("type") != "null"]
        if options:
            return example_value(options[0], text=text)
        if key in schema:
            return None
    if schema.get("allOf"):
        return example_value({**schema["allOf"][0]}, text=text)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _VALUE_OF[kind](schema, text)


def _string(schema: Mapping[str, Any], text: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        for candidate in (text, *_PATTERN_CANDIDATES):
            if re.search(pattern, candidate):
                return candidate
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    value = text
    if len(value) < low:
        value = value + "a" * (low - len(value))
    if isinstance(high, int):
        value = value[:high]
    return value


def _number(schema: Mapping[str, Any], _text: str) -> float | int:
    integer = schema.get("type") == "integer"
    value: float = 1
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and value <= low:
        value = low + 1 if "exclusiveMinimum" in schema or value < low else low
    if high is not None and value >= high:
        value = high - 1 if "exclusiveMaximum" in schema or value > high else high
    multiple = schema.get("multipleOf")
    if multiple:
        value = (value // multiple) * multiple or multiple
    return int(value) if integer else float(value)


def _array(schema: Mapping[str, Any], text: str) -> list[Any]:
    items = schema.get("items", {})
    count = max(1, int(schema.get("minItems", 0)))
    maximum = schema.get("maxItems")
    if isinstance(maximum, int):
        count = min(count, maximum)
    prefix = schema.get("prefixItems", [])
    values = [example_value(item, text=text) for item in prefix]
    while len(values) < count:
        values.append(example_value(items if isinstance(items, Mapping) else {}, text=text))
    return values


def _object(schema: Mapping[str, Any], text: str) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = schema.get("required", list(properties))
    return {
        name: example_value(properties[name], text=text) for name in properties if name in required
    }


_VALUE_OF: dict[str, Any] = {
    "string": _string,
    "integer": _number,
    "number": _number,
    "boolean": lambda _schema, _text: True,
    "null": lambda _schema, _text: None,
    "array": _array,
    "object": _object,
}

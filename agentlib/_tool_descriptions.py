"""How the prompt lists a tool: its JSON schema, or a compact Python-like signature.

Both say what is required and what may be left out; neither shows a `"default": null` on a
type that is not nullable (the model would read it as "send null").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_entry", "signature_entry"]

_PY_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "null": "None",
    "object": "dict",
}


def _python_type(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "Literal[" + ", ".join(json.dumps(value) for value in schema["enum"]) + "]"
    if "const" in schema:
        return f"Literal[{json.dumps(schema['const'])}]"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_python_type(item) for item in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_python_type({**schema, "type": item}) for item in kind)
    if kind == "array":
        return f"list[{_python_type(schema.get('items', {}))}]"
    return _PY_TYPES.get(str(kind), "Any")


def _is_nullable(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_is_nullable(item) for key in ("anyOf", "oneOf") for item in schema.get(key, ()))


def _shown_property(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A property as the prompt shows it: no `"default": null` on a type that is not nullable."""
    if "default" in schema and schema["default"] is None and not _is_nullable(schema):
        return {key: value for key, value in schema.items() if key != "default"}
    return dict(schema)


def schema_entry(name: str, summary: str, parameters: Mapping[str, Any]) -> str:
    """A tool as its JSON schema, with what is required and what is optional."""
    properties: Mapping[str, Any] = parameters.get("properties", {})
    shown = {key: _shown_property(value) for key, value in properties.items()}
    required = [key for key in properties if key in set(parameters.get("required", ()))]
    optional = [key for key in properties if key not in required]
    text = f"- {name}: {summary}\n  arguments: {json.dumps(shown, separators=(',', ':'))}"
    if properties:
        text += f"\n  required: {', '.join(required) or '(none)'}"
        if optional:
            text += f"; optional: {', '.join(optional)}"
    return text


def signature_entry(name: str, summary: str, parameters: Mapping[str, Any]) -> str:
    """A tool as a compact Python-like signature, then one line per described argument."""
    properties: Mapping[str, Any] = parameters.get("properties", {})
    required = set(parameters.get("required", ()))
    parts = []
    details = []
    for key, schema in properties.items():
        text = f"{key}: {_python_type(schema)}"
        if key not in required:
            default = schema.get("default")
            text += f" = {default!r}" if "default" in schema else " = None"
        parts.append(text)
        if schema.get("description"):
            details.append(f"    {key}: {schema['description']}")
    return "\n".join([f"- {name}({', '.join(parts)}): {summary}", *details])

"""JSON-schema transformations shared by tools, the step schema and the model adapters.

Every function returns a new schema and leaves its input untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from agentlib.errors import ConfigurationError

__all__ = ["bound_and_close", "bound_strings", "close_objects", "inline_refs", "strip_titles"]

JSONSchema = dict[str, Any]


def inline_refs(schema: Mapping[str, Any]) -> JSONSchema:
    """Replace every local `$ref` (`#/$defs/...`, `#/definitions/...`) by the definition itself.

    Raises:
        ConfigurationError: The schema is recursive (a type contains itself), which cannot be
            inlined; use a non-recursive type.
    """
    root = dict(schema)  # `resolve` builds new dicts and lists; only the top level is popped
    definitions: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        definitions.update({f"#/{key}/{name}": value for name, value in root.pop(key, {}).items()})

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in stack:
                    raise ConfigurationError(
                        f"the schema is recursive through {ref!r}; recursive types cannot be "
                        "inlined for constrained generation: use a non-recursive type"
                    )
                if ref not in definitions:
                    raise ConfigurationError(
                        f"the schema refers to {ref!r}, which it does not define"
                    )
                target = resolve(definitions[ref], (*stack, ref))
                siblings = {k: resolve(v, stack) for k, v in node.items() if k != "$ref"}
                return {**target, **siblings}
            return {key: resolve(value, stack) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item, stack) for item in node]
        return node

    result: JSONSchema = resolve(root, ())
    return result


def _map_subschemas(node: Any, transform: Any) -> Any:
    """Apply `transform` to every sub-schema (dicts), bottom-up, keeping `properties` maps.

    It builds a new tree (values copied), so `transform` may change the dict it is given: no
    deep copy of the input first (those cost a third of a 300-tool build).
    """
    if isinstance(node, list):
        return [_map_subschemas(item, transform) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
            value, dict
        ):
            out[key] = {name: _map_subschemas(sub, transform) for name, sub in value.items()}
        elif key in ("enum", "const", "default", "examples"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _map_subschemas(value, transform)
    return transform(out)


def close_objects(schema: Mapping[str, Any]) -> JSONSchema:
    """Set `additionalProperties: false` on every object schema that lists its properties.

    Without it, a constraint engine may let a model add invented keys.
    """
    result: JSONSchema = _map_subschemas(dict(schema), _close)
    return result


def strip_titles(schema: Mapping[str, Any]) -> JSONSchema:
    """Drop pydantic's generated `title` keys: they cost prompt tokens and constrain nothing."""

    def strip(node: dict[str, Any]) -> dict[str, Any]:
        node.pop("title", None)
        return node

    result: JSONSchema = _map_subschemas(dict(schema), strip)
    return result


def _close(node: dict[str, Any]) -> dict[str, Any]:
    if "properties" in node and node.get("additionalProperties", True) is True:
        node["additionalProperties"] = False
    return node


def _bound(node: dict[str, Any], max_length: int) -> dict[str, Any]:
    is_string = node.get("type") == "string" or (
        isinstance(node.get("type"), list) and "string" in node["type"]
    )
    free = not any(k in node for k in ("maxLength", "enum", "const", "pattern", "format"))
    if is_string and free:
        node["maxLength"] = max_length
    return node


def bound_and_close(schema: Mapping[str, Any], max_length: int) -> JSONSchema:
    """`close_objects(bound_strings(schema, max_length))` in one walk (the step schema's path)."""
    result: JSONSchema = _map_subschemas(
        dict(schema), lambda node: _close(_bound(node, max_length))
    )
    return result


def bound_strings(schema: Mapping[str, Any], max_length: int) -> JSONSchema:
    """Give every string without `maxLength` (and without an enum, const or pattern) a bound.

    Small models under constrained decoding otherwise ramble inside a string until they run out
    of tokens.
    """
    result: JSONSchema = _map_subschemas(dict(schema), lambda node: _bound(node, max_length))
    return result

"""`restore_optional`: undoing, in a reply, what `strict_schema` changed in its schema.

Strict mode sends every property, so an optional one the model had nothing for arrives as
`null`; dropping those nulls again lets the caller's validation apply the field's default. The
union a value was generated under is picked as `strict_schema` sent it: the keywords beside the
union applied to each branch (`agentlib._schema_merge`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentlib._json_schema import inline_refs
from agentlib._schema_merge import (
    accepts_null,
    merge,
    merge_all_of,
    node_types,
    union_branches,
)
from agentlib.errors import ConfigurationError

__all__ = ["restore_optional"]


def restore_optional(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop the nulls strict mode forced into optional properties, so defaults apply again.

    A property is dropped when its value is `null`, the original `schema` does not require it,
    and either does not allow `null` for it or gives it `default: null`. Everything else is
    returned unchanged. Unions are resolved as `strict_schema` sent them: the branch is picked
    with the keywords beside the union applied to it.

    Args:
        value: A JSON value produced under `strict_schema(schema)`.
        schema: The original schema (before `strict_schema`), `$ref`s inlined or not.
    """
    inlined = inline_refs(schema, recursive=True) if _has_refs(schema) else dict(schema)
    return _Restorer(inlined.get("$defs", {})).restore(value, inlined)


def _has_refs(schema: Mapping[str, Any]) -> bool:
    return '"$ref"' in json.dumps(schema)


class _Restorer:
    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self.definitions = definitions
        self.root: Any = None

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
            ref: str = schema["$ref"]
            target = self.root if ref == "#" else self.definitions.get(ref.removeprefix("#/$defs/"))
            siblings = {key: v for key, v in schema.items() if key != "$ref"}
            return merge(target, siblings, "$") if siblings and target else target
        return schema

    def restore(self, value: Any, schema: Any) -> Any:
        if self.root is None:
            self.root = schema
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return value
        try:
            schema = merge_all_of(schema, "$")
        except ConfigurationError:
            return value
        try:
            branches = union_branches(schema, "$")
        except ConfigurationError:
            return value
        if branches:
            context = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            for branch in branches:
                try:
                    merged = merge(context, self.resolve(branch), "$") if context else branch
                except ConfigurationError:
                    continue
                if merged is not None and _matches(value, self.resolve(merged)):
                    return self.restore(value, merged)
            return value
        if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
            return self._object(value, schema)
        items = schema.get("items")
        if isinstance(value, list) and isinstance(items, Mapping):
            return [self.restore(item, items) for item in value]
        return value

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema["properties"]
        required = set(schema.get("required", ()))
        restored: dict[str, Any] = {}
        for key, item in value.items():
            sub = self.resolve(properties.get(key))
            if sub is None:
                restored[key] = item
            elif item is None and key not in required and _forced_null(sub):
                continue
            else:
                restored[key] = self.restore(item, sub)
        return restored


def _forced_null(schema: Any) -> bool:
    """Whether a `null` in this optional property can only mean "absent" (see `strict_schema`)."""
    if not accepts_null(schema):
        return True
    return isinstance(schema, Mapping) and "default" in schema and schema["default"] is None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _matches(value: Any, schema: Any) -> bool:
    """A shallow check picking the union branch a value was generated under."""
    if not isinstance(schema, Mapping):
        return schema is True
    if "const" in schema:
        return bool(value == schema["const"])
    if "enum" in schema:
        return value in schema["enum"]
    kinds = node_types(schema)
    if kinds:
        is_bool = isinstance(value, bool)
        if not any(
            isinstance(value, _JSON_TYPES.get(name, ())) and (name == "boolean" or not is_bool)
            for name in kinds
        ):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", ()):
            sub = properties.get(key) if isinstance(properties, Mapping) else None
            if key not in value or (value[key] is None and not accepts_null(sub)):
                return False
        for key, sub in properties.items() if isinstance(properties, Mapping) else ():
            fixed = isinstance(sub, Mapping) and ("const" in sub or "enum" in sub)
            if fixed and key in value and not _matches(value[key], sub):
                return False
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return not branches or any(_matches(value, branch) for branch in branches)

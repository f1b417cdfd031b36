"""Making any JSON schema fit OpenAI-style strict mode, and undoing what that changed in replies.

Strict mode (`response_format` `json_schema` with `strict: true`, or tools with `strict: true`)
accepts a subset of JSON Schema. `strict_schema` rewrites a schema into that subset:

- every `$ref` is inlined (`_json_schema.inline_refs`);
- every object lists all its properties in `required` and has `additionalProperties: false`;
  a property that was optional becomes nullable (`anyOf [..., {"type": "null"}]`), and
  `restore_optional` drops the nulls this added from a reply, so the caller's validation
  applies the field's default;
- `oneOf` becomes `anyOf` and `allOf` is merged into its parent;
- `const` becomes a one-value `enum`;
- value keywords (`maxLength`, `pattern`, `minimum`, `default`, `uniqueItems`, ...) are moved
  into the `description`, where the model reads them, unless listed in `keep=` as enforced by
  the server; the caller validates every reply against the original schema, so they are still
  checked, after generation.

What strict mode cannot express at all (an object with arbitrary keys, an unconstrained `{}`,
a recursive type, a non-object root) raises `ConfigurationError` up front, naming the place in
the schema: it is never silently loosened.

Both functions are pure: they return new values and leave their inputs untouched.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from agentlib._json_schema import inline_refs
from agentlib.errors import ConfigurationError

__all__ = ["OPENAI_STRICT_KEYWORDS", "STRUCTURAL_KEYWORDS", "restore_optional", "strict_schema"]

JSONSchema = dict[str, Any]

STRUCTURAL_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "description",
        "title",
    }
)
"""Keywords strict mode always understands; `strict_schema` keeps (or sets) these. (`const`
becomes a one-value `enum`, which every strict implementation accepts.)"""

OPENAI_STRICT_KEYWORDS = frozenset(
    {
        "pattern",
        "format",
        "multipleOf",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
    }
)
"""The value keywords OpenAI's guide lists as supported in strict mode (strings: `pattern`,
`format`; numbers: `multipleOf`, `minimum`, `maximum`, the exclusive bounds; arrays:
`minItems`, `maxItems`), for `keep=` when the model is known to accept them. Not the default:
fine-tuned models reject them, and reports disagree on which models accept which; a keyword
moved into the description is still checked after generation, while one the server rejects
fails the request."""

_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Dropped without a trace: they carry no constraint and only cost tokens.
_IGNORED = frozenset({"$schema", "$id", "$comment", "discriminator"})


def strict_schema(schema: Mapping[str, Any], *, keep: Collection[str] = ()) -> JSONSchema:
    """Rewrite `schema` into the strict-mode subset (see the module docstring for the rules).

    Args:
        schema: Any JSON schema whose root is an object.
        keep: The value keywords the server enforces, kept as they are (none by default);
            every other non-structural keyword is moved into the `description`. With
            `OPENAI_STRICT_KEYWORDS`, `format` is kept only for the formats OpenAI lists
            (`date-time`, `email`, `uuid`, ...).

    Raises:
        ConfigurationError: The schema uses something strict mode cannot express; the message
            names the keyword and where it is.
    """
    inlined = inline_refs(schema)
    if inlined.get("type") != "object":
        raise ConfigurationError(
            "strict mode needs an object at the root of the schema, got "
            f"{json.dumps(inlined.get('type', 'no type'))}; wrap the value in an object"
        )
    restrict_formats = frozenset(keep) == OPENAI_STRICT_KEYWORDS
    return _strict_node(inlined, frozenset(keep), restrict_formats, "$")


def _strict_node(
    node: Mapping[str, Any], keep: frozenset[str], restrict_formats: bool, where: str
) -> JSONSchema:
    node = _merge_all_of(node, where)
    if not node:
        raise ConfigurationError(
            f"strict mode cannot express an unconstrained value (`{{}}`) at {where}; give it a type"
        )
    out: JSONSchema = {}
    moved: dict[str, Any] = {}
    for key, value in node.items():
        if key in _IGNORED:
            continue
        if key in ("anyOf", "oneOf"):
            branches = [
                _strict_node(branch, keep, restrict_formats, f"{where}.{key}[{index}]")
                for index, branch in enumerate(value)
            ]
            out["anyOf"] = [*out.get("anyOf", []), *branches]
        elif key == "items" and isinstance(value, Mapping):
            out["items"] = _strict_node(value, keep, restrict_formats, f"{where}[]")
        elif key in ("properties", "required", "additionalProperties"):
            continue  # handled with the object below
        elif key == "const":
            out["enum"] = [value]
        elif key in STRUCTURAL_KEYWORDS or (
            key in keep
            and not (key == "format" and restrict_formats and value not in _OPENAI_FORMATS)
        ):
            out[key] = value
        else:
            moved[key] = value
    if _is_object(node):
        out.update(_strict_object(node, keep, restrict_formats, where))
    if moved:
        note = "; ".join(f"{key}: {json.dumps(value)}" for key, value in moved.items())
        description = out.get("description", "")
        out["description"] = f"{description} ({note})" if description else f"({note})"
    return out


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or "properties" in node


def _strict_object(
    node: Mapping[str, Any], keep: frozenset[str], restrict_formats: bool, where: str
) -> JSONSchema:
    properties: Mapping[str, Any] = node.get("properties", {})
    # Closing an object that allowed extra keys only narrows it (replies still fit the
    # original); an object made only of arbitrary keys would be narrowed to `{}`.
    if not properties and node.get("additionalProperties", True) is not False:
        raise ConfigurationError(
            f"strict mode cannot express an object with arbitrary keys at {where} "
            "(`additionalProperties`); name its fields (a pydantic model or TypedDict), or use "
            "mode='json_object' or mode='prompted'"
        )
    required = set(node.get("required", ()))
    strict_properties: JSONSchema = {}
    for name, sub in properties.items():
        converted = _strict_node(sub, keep, restrict_formats, f"{where}.{name}")
        strict_properties[name] = (
            converted if name in required or _accepts_null(sub) else _nullable(converted)
        )
    return {
        "type": "object",
        "properties": strict_properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _nullable(node: JSONSchema) -> JSONSchema:
    outer: JSONSchema = {key: node[key] for key in ("description", "title") if key in node}
    inner = {key: value for key, value in node.items() if key not in outer}
    if list(inner) == ["anyOf"]:
        return {**outer, "anyOf": [*inner["anyOf"], {"type": "null"}]}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def _merge_all_of(node: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """Fold `allOf` into its parent: properties and `required` are united, other keys kept."""
    if "allOf" not in node:
        return node
    merged: JSONSchema = {key: value for key, value in node.items() if key != "allOf"}
    for part in node["allOf"]:
        part = _merge_all_of(part, where)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            elif key not in merged:
                merged[key] = value
            elif merged[key] != value:
                raise ConfigurationError(
                    f"cannot merge `allOf` at {where}: its parts disagree on {key!r}; "
                    "simplify the schema"
                )
    return merged


def _accepts_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return schema is True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "const" in schema:
        return schema["const"] is None
    if "enum" in schema:
        return None in schema["enum"]
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return any(_accepts_null(branch) for branch in branches)


def restore_optional(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop the nulls strict mode forced into optional properties, so defaults apply again.

    A property is dropped when its value is `null`, the original `schema` did not require it
    and did not allow `null` for it. Everything else is returned unchanged.

    Args:
        value: A JSON value produced under `strict_schema(schema)`.
        schema: The original schema (before `strict_schema`), `$ref`s inlined or not.
    """
    return _restore(value, inline_refs(schema) if _has_refs(schema) else schema)


def _has_refs(schema: Mapping[str, Any]) -> bool:
    return '"$ref"' in json.dumps(schema)


def _restore(value: Any, schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return value
    schema = _merge_all_of(schema, "$")
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    if branches:
        branch = next((item for item in branches if _matches(value, item)), None)
        return _restore(value, branch) if branch is not None else value
    if isinstance(value, dict) and "properties" in schema:
        properties: Mapping[str, Any] = schema["properties"]
        required = set(schema.get("required", ()))
        restored: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None:
                restored[key] = item
            elif item is None and key not in required and not _accepts_null(sub):
                continue
            else:
                restored[key] = _restore(item, sub)
        return restored
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_restore(item, schema["items"]) for item in value]
    return value


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
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds:
        is_bool = isinstance(value, bool)
        if not any(
            isinstance(value, _JSON_TYPES.get(name, ())) and (name == "boolean" or not is_bool)
            for name in kinds
        ):
            return False
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            fixed = isinstance(sub, Mapping) and ("const" in sub or "enum" in sub)
            if fixed and key in value and not _matches(value[key], sub):
                return False
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return not branches or any(_matches(value, branch) for branch in branches)

"""Making any JSON schema fit OpenAI-style strict mode, and undoing what that changed in replies.

Strict mode (`response_format` `json_schema` with `strict: true`, or tools with `strict: true`)
accepts a subset of JSON Schema. `strict_schema` rewrites a schema into that subset:

- every `$ref` is inlined (`_json_schema.inline_refs`), except those of recursive types, which
  stay as `$defs` (strict mode accepts recursion, `#` included);
- every object lists all its properties in `required` and has `additionalProperties: false`;
  a property that was optional becomes nullable (`anyOf [..., {"type": "null"}]`), and
  `restore_optional` drops the nulls this added from a reply, so the caller's validation
  applies the field's default;
- `oneOf` becomes `anyOf`, `allOf` is merged into its parent, and the keywords beside a union
  (an object's `properties`, say, next to `oneOf: [{"required": ["a"]}, ...]`) are distributed
  into each branch, so a `required`-only branch keeps its meaning;
- a type list with `object` or `array` becomes a union of one type each; `const` becomes a
  one-value `enum`, and an `enum` gets the type of its values;
- value keywords (`maxLength`, `pattern`, `minimum`, `default`, `uniqueItems`, `not`, ...) are
  moved into the `description`, where the model reads them, unless listed in `keep=` as
  enforced by the server; the caller validates every reply against the original schema
  (`format` included), so they are still checked, after generation.

What strict mode cannot produce exactly is refused with `ConfigurationError` up front, naming
the place in the schema and what to do, never silently loosened or returned different:

- an object with arbitrary keys, or one whose schema asks for keys besides its properties
  (`additionalProperties: true` or a schema, `patternProperties`): strict mode closes every
  object, so those keys could never be produced (an object that says nothing about other keys
  is closed: its replies are still valid);
- a `required` key that is not among the object's properties (closing would make it
  unsatisfiable);
- an optional property that accepts `null` without a `null` default: strict mode sends every
  property, so an absent one and a `null` one could not be told apart;
- an unconstrained value (`{}`, `true`), an array without `items`, an enum of arrays or
  objects, a non-object root or a root union;
- a schema past OpenAI's documented size limits (`strict_violations`).

Both public functions are pure: they return new values and leave their inputs untouched.
`restore_optional` lives in `agentlib._strict_restore` (and is imported from here), and
the schema algebra both directions share (types, `allOf` merging, unions, `null`) in
`agentlib._schema_merge`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from agentlib._json_schema import inline_refs
from agentlib._schema_merge import (
    ANNOTATIONS,
    OBJECT_KEYWORDS,
    TYPE_KEYWORDS,
    TYPED_KEYWORDS,
    accepts_null,
    fits_type,
    merge,
    merge_all_of,
    node_types,
    union_branches,
)
from agentlib._strict_restore import restore_optional
from agentlib.errors import ConfigurationError

__all__ = [
    "OPENAI_STRICT_KEYWORDS",
    "STRUCTURAL_KEYWORDS",
    "restore_optional",
    "strict_schema",
    "strict_violations",
]

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
        "$ref",
        "$defs",
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

# OpenAI's Structured Outputs guide, "Supported schemas" (platform.openai.com/docs/guides/
# structured-outputs#supported-schemas, as of 2025-2026): supported types string, number,
# boolean, integer, object, array, enum, anyOf (not at the root); every field required;
# `additionalProperties: false` on every object; "up to 5000 object properties total, with up
# to 10 levels of nesting"; "the total string length of all property names, definition names,
# enum values, and const values cannot exceed 120,000 characters"; "up to 1000 enum values
# across all enum properties"; "for a single enum property with string values, the total
# string length of all enum values cannot exceed 15,000 characters when there are more than
# 250 enum values". (Earlier limits were 100 properties and 5 levels: we check today's.)
MAX_PROPERTIES = 5000
MAX_NESTING = 10
MAX_TOTAL_STRING_LENGTH = 120_000
MAX_ENUM_VALUES = 1000
LARGE_ENUM = 250
MAX_LARGE_ENUM_STRING_LENGTH = 15_000

_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Dropped without a trace: they carry no constraint and only cost tokens.
_IGNORED = frozenset({"$schema", "$id", "$comment", "discriminator", "$anchor", "readOnly"})


def strict_schema(schema: Mapping[str, Any], *, keep: Collection[str] = ()) -> JSONSchema:
    """Rewrite `schema` into the strict-mode subset (see the module docstring for the rules).

    Args:
        schema: Any JSON schema whose root is an object.
        keep: The value keywords the server enforces, kept as they are (none by default);
            every other non-structural keyword is moved into the `description`. With
            `OPENAI_STRICT_KEYWORDS`, `format` is kept only for the formats OpenAI lists
            (`date-time`, `email`, `uuid`, ...).

    Raises:
        ConfigurationError: The schema uses something strict mode cannot produce exactly; the
            message names the keyword, where it is, and what to do.
    """
    inlined = inline_refs(schema, recursive=True)
    definitions = inlined.pop("$defs", {})
    root = merge_all_of(inlined, "$")
    if "anyOf" in root or "oneOf" in root:
        raise ConfigurationError(
            "strict mode does not accept a union (`anyOf`/`oneOf`) at the root of the schema; "
            "put the alternatives in a property of an object"
        )
    if node_types(root) != ["object"]:
        raise ConfigurationError(
            "strict mode needs an object at the root of the schema, got "
            f"{json.dumps(root.get('type', 'no type'))}; wrap the value in an object"
        )
    converter = _Converter(frozenset(keep))
    out = converter.node(root, "$")
    if definitions:
        out["$defs"] = {
            name: converter.node(definition, f"$defs.{name}")
            for name, definition in definitions.items()
        }
    violations = strict_violations(out)
    if violations:
        raise ConfigurationError(
            f"the schema is too large for strict mode: {'; '.join(violations)}; split it, or "
            "use mode='json_object' or mode='prompted'"
        )
    return out


class _Converter:
    def __init__(self, keep: frozenset[str]) -> None:
        self.keep = keep
        self.restrict_formats = keep == OPENAI_STRICT_KEYWORDS

    def node(self, node: Any, where: str) -> JSONSchema:
        if node is True or node == {}:
            raise ConfigurationError(
                f"strict mode cannot express an unconstrained value (`{{}}`) at {where}; give "
                "it a type"
            )
        if node is False:
            raise ConfigurationError(
                f"the schema at {where} is `false` (no value is valid there); remove it"
            )
        node = merge_all_of(node, where)
        if isinstance(node.get("$ref"), str):
            return self._reference(node)
        if "oneOf" in node or "anyOf" in node:
            return self._union(node, where)
        kinds = node_types(node)
        if not kinds:
            raise ConfigurationError(
                f"strict mode cannot express the value at {where}: it has no type and nothing "
                "strict mode can check (its keywords would only become a description); give "
                "it a `type`"
            )
        if len(kinds) > 1 and any(kind in ("object", "array") for kind in kinds):
            branches = [_only_type(node, kind) for kind in kinds]
            return self._union({"anyOf": branches, **_outer(node)}, where)
        return self._typed(node, kinds, where)

    def _reference(self, node: Mapping[str, Any]) -> JSONSchema:
        # A recursive type's reference, left by `inline_refs`; its definition is converted
        # once, under `$defs`. Keywords beside it are dropped from what is sent (the reply is
        # still validated against them).
        return {"$ref": node["$ref"]}

    def _union(self, node: Mapping[str, Any], where: str) -> JSONSchema:
        branches = union_branches(node, where)
        context = {
            key: value
            for key, value in node.items()
            if key not in ("anyOf", "oneOf", *ANNOTATIONS, *_IGNORED)
        }
        moved = {key: node[key] for key in ("default", "examples") if key in node}
        converted: list[JSONSchema] = []
        for index, branch in enumerate(branches):
            place = f"{where}.anyOf[{index}]"
            merged = merge(context, branch, place) if context else branch
            if merged is None:
                continue  # this branch contradicts the keywords beside the union: no value
            result = self.node(merged, place)
            converted.extend(result["anyOf"] if list(result) == ["anyOf"] else [result])
        if not converted:
            raise ConfigurationError(f"no branch of the union at {where} can be satisfied")
        out: JSONSchema = {"anyOf": converted}
        if "title" in node:
            out = {"title": node["title"], **out}
        return _describe(out, node.get("description"), moved)

    def _typed(self, node: Mapping[str, Any], kinds: list[str], where: str) -> JSONSchema:
        out: JSONSchema = {"type": kinds[0] if len(kinds) == 1 else kinds}
        moved: dict[str, Any] = {}
        for key, value in node.items():
            if self._handled_elsewhere(key, kinds):
                continue
            if key in ("const", "enum"):
                out["enum"] = [value] if key == "const" else list(value)
            elif key == "title" or self._kept(key, value):
                out[key] = value
            else:
                moved[key] = value
        if "enum" in out:
            _check_enum(out["enum"], where)
        if "object" in kinds:
            out.update(self._object(node, where, moved))
        if "array" in kinds:
            items = node.get("items")
            if not isinstance(items, Mapping | bool) or items is True or items == {}:
                raise ConfigurationError(
                    f"strict mode needs the type of the items of the array at {where}; give it "
                    "`items` with a type (tuples, `prefixItems`, cannot be expressed)"
                )
            out["items"] = self.node(items, f"{where}[]")
        return _describe(out, node.get("description"), moved)

    def _handled_elsewhere(self, key: str, kinds: list[str]) -> bool:
        return (
            key in _IGNORED
            or key in ("type", "anyOf", "oneOf", "description")
            or (key in OBJECT_KEYWORDS and "object" in kinds and key in STRUCTURAL_KEYWORDS)
            or (key == "items" and "array" in kinds)
        )

    def _kept(self, key: str, value: Any) -> bool:
        if key not in self.keep:
            return False
        return not (key == "format" and self.restrict_formats and value not in _OPENAI_FORMATS)

    def _object(self, node: Mapping[str, Any], where: str, moved: dict[str, Any]) -> JSONSchema:
        properties: Mapping[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties")
        if not properties and extra is not False:
            raise ConfigurationError(
                f"strict mode cannot express an object with arbitrary keys at {where} "
                "(`additionalProperties`); name its fields (a pydantic model or TypedDict), or "
                "use mode='json_object' or mode='prompted'"
            )
        if (extra is not None and extra is not False) or node.get("patternProperties"):
            keyword = (
                "patternProperties" if node.get("patternProperties") else "additionalProperties"
            )
            raise ConfigurationError(
                f"the object at {where} allows keys besides its properties (`{keyword}`), "
                "but strict mode closes every object, so those keys could never be produced; "
                "set `additionalProperties: false` to accept only the named fields, or use "
                "mode='json_object' or mode='prompted'"
            )
        required = list(node.get("required", ()))
        missing = [name for name in required if name not in properties]
        if missing:
            raise ConfigurationError(
                f"the object at {where} requires {', '.join(map(repr, missing))}, which "
                f"{'is' if len(missing) == 1 else 'are'} not among its properties "
                f"({', '.join(map(repr, properties)) or 'none'}); strict mode closes every "
                "object, so the requirement could never be met: add the field to "
                "`properties` or fix the name in `required`"
            )
        strict_properties: JSONSchema = {}
        for name, sub in properties.items():
            place = f"{where}.{name}"
            if sub is False:
                continue  # the key may never appear: leaving it out says exactly that
            converted = self.node(sub, place)
            if name in required:
                strict_properties[name] = converted
            elif not accepts_null(sub):
                strict_properties[name] = _nullable(converted)
            elif isinstance(sub, Mapping) and "default" in sub and sub["default"] is None:
                strict_properties[name] = converted
            else:
                raise ConfigurationError(
                    f"the optional field {name!r} at {where} accepts null, and strict mode "
                    "sends every field, so an absent value and `null` could not be told apart; "
                    "make it required, give it `default: null`, or use mode='json_object' or "
                    "mode='prompted'"
                )
        moved.pop("additionalProperties", None)
        return {
            "properties": strict_properties,
            "required": list(strict_properties),
            "additionalProperties": False,
        }


def _check_enum(values: list[Any], where: str) -> None:
    if any(isinstance(value, list | dict) for value in values):
        raise ConfigurationError(
            f"strict mode cannot express the enum at {where}: its values include arrays or "
            "objects; use a string enum, or a union of object schemas"
        )


def _only_type(node: Mapping[str, Any], kind: str) -> JSONSchema:
    """The part of a node that applies to one of its types (for splitting a type list)."""
    own = TYPE_KEYWORDS.get(kind, frozenset())
    branch: JSONSchema = {"type": kind}
    for key, value in node.items():
        if key in ("type", "title", "description"):
            continue
        if key in TYPED_KEYWORDS and key not in own:
            continue
        if key == "enum":
            value = [item for item in value if fits_type(item, kind)]
        if key == "const" and not fits_type(value, kind):
            continue
        branch[key] = value
    return branch


def _outer(node: Mapping[str, Any]) -> JSONSchema:
    return {key: node[key] for key in ("title", "description") if key in node}


def _describe(out: JSONSchema, description: Any, moved: Mapping[str, Any]) -> JSONSchema:
    text = description if isinstance(description, str) else ""
    if moved:
        note = "; ".join(f"{key}: {json.dumps(value)}" for key, value in moved.items())
        text = f"{text} ({note})" if text else f"({note})"
    if text:
        out["description"] = text
    return out


def _nullable(node: JSONSchema) -> JSONSchema:
    outer: JSONSchema = {key: node[key] for key in ("description", "title") if key in node}
    inner = {key: value for key, value in node.items() if key not in outer}
    if list(inner) == ["anyOf"]:
        return {**outer, "anyOf": [*inner["anyOf"], {"type": "null"}]}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def strict_violations(schema: Mapping[str, Any]) -> list[str]:
    """What in `schema` breaks OpenAI's documented size limits for strict mode (see above).

    Returns:
        One sentence per broken limit; empty when the schema fits.
    """
    size = _Size()
    size.walk(schema, 0)
    found: list[str] = []
    for count, limit, what in (
        (size.properties, MAX_PROPERTIES, "object properties"),
        (size.depth, MAX_NESTING, "levels of object nesting"),
        (size.enum_values, MAX_ENUM_VALUES, "enum values"),
        (size.strings, MAX_TOTAL_STRING_LENGTH, "characters of names and enum values"),
    ):
        if count > limit:
            found.append(f"{count} {what} (the limit is {limit:,})")
    found.extend(
        f"an enum of more than {LARGE_ENUM} strings totalling {length} characters (the limit "
        f"is {MAX_LARGE_ENUM_STRING_LENGTH:,})"
        for length in size.large_enums
        if length > MAX_LARGE_ENUM_STRING_LENGTH
    )
    return found


class _Size:
    """What OpenAI counts in a schema: properties, nesting, enum values, name lengths."""

    def __init__(self) -> None:
        self.properties = self.depth = self.enum_values = self.strings = 0
        self.large_enums: list[int] = []

    def walk(self, node: Any, depth: int) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, depth)
            return
        if not isinstance(node, Mapping):
            return
        if node.get("type") == "object" or "properties" in node:
            depth += 1
            self.depth = max(self.depth, depth)
        for key, value in node.items():
            if key in ("properties", "$defs") and isinstance(value, Mapping):
                self.properties += len(value) if key == "properties" else 0
                self.strings += sum(len(name) for name in value)
                for sub in value.values():
                    self.walk(sub, depth if key == "properties" else 0)
            elif key in ("enum", "const"):
                self.count_values(value if key == "enum" else [value], key == "enum")
            elif key not in ("description", "title", "required", "type", "pattern", "format"):
                self.walk(value, depth)

    def count_values(self, values: Any, is_enum: bool) -> None:
        values = values if isinstance(values, list) else []
        strings = [item for item in values if isinstance(item, str)]
        self.strings += sum(len(item) for item in strings)
        if is_enum:
            self.enum_values += len(values)
            if len(strings) > LARGE_ENUM:
                self.large_enums.append(sum(len(item) for item in strings))

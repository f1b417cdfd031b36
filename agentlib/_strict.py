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
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from agentlib._json_schema import inline_refs
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

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Dropped without a trace: they carry no constraint and only cost tokens.
_IGNORED = frozenset({"$schema", "$id", "$comment", "discriminator", "$anchor", "readOnly"})
_OBJECT_KEYWORDS = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
    }
)
_ARRAY_KEYWORDS = frozenset(
    {
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    }
)
_STRING_KEYWORDS = frozenset(
    {"minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"}
)
_NUMBER_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_TYPE_KEYWORDS = {
    "object": _OBJECT_KEYWORDS,
    "array": _ARRAY_KEYWORDS,
    "string": _STRING_KEYWORDS,
    "number": _NUMBER_KEYWORDS,
    "integer": _NUMBER_KEYWORDS,
}
_ALL_TYPED_KEYWORDS = _OBJECT_KEYWORDS | _ARRAY_KEYWORDS | _STRING_KEYWORDS | _NUMBER_KEYWORDS
_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})


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
    root = _merge_all_of(inlined, "$")
    if "anyOf" in root or "oneOf" in root:
        raise ConfigurationError(
            "strict mode does not accept a union (`anyOf`/`oneOf`) at the root of the schema; "
            "put the alternatives in a property of an object"
        )
    if _types(root) != ["object"]:
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
        node = _merge_all_of(node, where)
        if isinstance(node.get("$ref"), str):
            return self._reference(node)
        if "oneOf" in node or "anyOf" in node:
            return self._union(node, where)
        kinds = _types(node)
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
        branches = _branches(node, where)
        context = {
            key: value
            for key, value in node.items()
            if key not in ("anyOf", "oneOf", *_ANNOTATIONS, *_IGNORED)
        }
        moved = {key: node[key] for key in ("default", "examples") if key in node}
        converted: list[JSONSchema] = []
        for index, branch in enumerate(branches):
            place = f"{where}.anyOf[{index}]"
            merged = _merge(context, branch, place) if context else branch
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
            or (key in _OBJECT_KEYWORDS and "object" in kinds and key in STRUCTURAL_KEYWORDS)
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
            elif not _accepts_null(sub):
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


def _types(node: Mapping[str, Any]) -> list[str]:
    """The JSON types a node can take, from `type`, or inferred from its keywords or values."""
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [item for item in kind if item in _TYPES]
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if isinstance(values, list):
        seen: list[str] = []
        for value in values:
            name = _json_type(value)
            if name not in seen:
                seen.append(name)
        return seen
    inferred = [name for name, words in _TYPE_KEYWORDS.items() if words & node.keys()]
    if "number" in inferred and "integer" in inferred:
        inferred.remove("integer")
    return inferred


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _check_enum(values: list[Any], where: str) -> None:
    if any(isinstance(value, list | dict) for value in values):
        raise ConfigurationError(
            f"strict mode cannot express the enum at {where}: its values include arrays or "
            "objects; use a string enum, or a union of object schemas"
        )


def _only_type(node: Mapping[str, Any], kind: str) -> JSONSchema:
    """The part of a node that applies to one of its types (for splitting a type list)."""
    own = _TYPE_KEYWORDS.get(kind, frozenset())
    branch: JSONSchema = {"type": kind}
    for key, value in node.items():
        if key in ("type", "title", "description"):
            continue
        if key in _ALL_TYPED_KEYWORDS and key not in own:
            continue
        if key == "enum":
            value = [item for item in value if _fits_type(item, kind)]
        if key == "const" and not _fits_type(value, kind):
            continue
        branch[key] = value
    return branch


def _fits_type(value: Any, kind: str) -> bool:
    name = _json_type(value)
    return name == kind or (kind == "number" and name == "integer")


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


def _merge_all_of(node: Mapping[str, Any], where: str) -> JSONSchema:
    """Fold `allOf` into its parent: properties and `required` are united, other keys kept."""
    merged: JSONSchema = {key: value for key, value in node.items() if key != "allOf"}
    for part in node.get("allOf", ()):
        if part is True:
            continue
        if part is False:
            raise ConfigurationError(f"the `allOf` at {where} contains `false`: no value fits")
        result = _merge(merged, _merge_all_of(part, where), where)
        if result is None:
            raise ConfigurationError(
                f"the parts of the `allOf` at {where} contradict each other: no value fits"
            )
        merged = result
    return merged


def _merge(first: Mapping[str, Any], second: Any, where: str) -> JSONSchema | None:
    """Both schemas at once, or None when they cannot both hold (their types do not meet)."""
    if second is True:
        return dict(first)
    if second is False:
        return None
    second = _merge_all_of(second, where)
    merged: JSONSchema = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
        elif key == "properties":
            merged["properties"] = _merge_properties(merged["properties"], value)
        elif key == "required":
            merged["required"] = [*merged["required"], *(n for n in value if n not in merged[key])]
        elif key in ("type", "enum"):
            common = _common(key, merged[key], value)
            if not common:
                return None
            merged[key] = common
        elif key in ("anyOf", "oneOf"):
            product = _union_product(merged.pop(key), value, where)
            if not product:
                return None
            merged[key] = product
        elif key not in _ANNOTATIONS and merged[key] != value:
            raise ConfigurationError(
                f"cannot combine the schemas at {where}: they disagree on {key!r}; simplify "
                "the schema"
            )
    return _merge_all_of(merged, where) if "allOf" in merged else merged


_MAX_UNION_PRODUCT = 64


def _branches(node: Mapping[str, Any], where: str) -> list[Any]:
    """A node's union branches; `anyOf` and `oneOf` side by side must both hold."""
    if "anyOf" in node and "oneOf" in node:
        return _union_product(list(node["anyOf"]), list(node["oneOf"]), where)
    return list(node.get("anyOf", node.get("oneOf", ())))


def _union_product(first: list[Any], second: list[Any], where: str) -> list[JSONSchema]:
    """Two unions at once: a branch for each pair of branches that can both hold."""
    if len(first) * len(second) > _MAX_UNION_PRODUCT:
        raise ConfigurationError(
            f"the schema at {where} combines two unions of {len(first)} and {len(second)} "
            "branches; strict mode would need a branch for every pair: simplify the schema"
        )
    pairs = (_merge(_merge_all_of(left, where), right, where) for left in first for right in second)
    return [pair for pair in pairs if pair is not None]


def _merge_properties(first: Mapping[str, Any], second: Mapping[str, Any]) -> JSONSchema:
    properties = dict(first)
    for name, sub in second.items():
        same = name not in properties or properties[name] == sub
        properties[name] = sub if same else {"allOf": [properties[name], sub]}
    return properties


def _common(key: str, first: Any, second: Any) -> Any:
    """What two `type`s (or two `enum`s) both allow; empty when nothing."""
    if key == "enum":
        return [item for item in first if item in second]
    left = first if isinstance(first, list) else [first]
    right = second if isinstance(second, list) else [second]
    common = [kind for kind in left if kind in right]
    # An integer is a number: `number` and `integer` meet in `integer`.
    if "integer" not in common and (
        ("integer" in left and "number" in right) or ("number" in left and "integer" in right)
    ):
        common.append("integer")
    return common[0] if len(common) == 1 else common


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
    if kind is not None:
        return False
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    if branches:
        return any(_accepts_null(branch) for branch in branches)
    return not (_ALL_TYPED_KEYWORDS & schema.keys()) and "$ref" not in schema


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
            return _merge(target, siblings, "$") if siblings and target else target
        return schema

    def restore(self, value: Any, schema: Any) -> Any:
        if self.root is None:
            self.root = schema
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return value
        try:
            schema = _merge_all_of(schema, "$")
        except ConfigurationError:
            return value
        try:
            branches = _branches(schema, "$")
        except ConfigurationError:
            return value
        if branches:
            context = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            for branch in branches:
                try:
                    merged = _merge(context, self.resolve(branch), "$") if context else branch
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
    if not _accepts_null(schema):
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
    kinds = _types(schema)
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
            if key not in value or (value[key] is None and not _accepts_null(sub)):
                return False
        for key, sub in properties.items() if isinstance(properties, Mapping) else ():
            fixed = isinstance(sub, Mapping) and ("const" in sub or "enum" in sub)
            if fixed and key in value and not _matches(value[key], sub):
                return False
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return not branches or any(_matches(value, branch) for branch in branches)

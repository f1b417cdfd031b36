"""JSON-schema transformations shared by tools, the step schema and the model adapters.

Every function returns a new schema and leaves its input untouched.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from agentlib.errors import ConfigurationError

__all__ = [
    "bound_and_close",
    "bound_arrays",
    "bound_strings",
    "close_objects",
    "finite_numbers",
    "inline_refs",
    "strip_titles",
]

JSONSchema = dict[str, Any]


_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_VALUES = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "unevaluatedItems",
        "unevaluatedProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
    }
)
# Keys that only name or locate a schema: meaningless once every reference is inlined.
_IDENTITY_KEYS = frozenset({"$id", "$anchor", "$dynamicAnchor", "$schema", "$defs", "definitions"})
# Annotations a `$ref`'s siblings may override without changing what the schema accepts.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})


def inline_refs(schema: Mapping[str, Any] | bool, *, recursive: bool = False) -> JSONSchema:
    """Replace every `$ref` by the schema it points to, as JSON Schema 2020-12 resolves it.

    References are resolved with `referencing` (jsonschema's resolver): JSON pointers
    anywhere in the document (`#/$defs/x`, `#/properties/a`), `$anchor`s (`#name`), and
    `$id`-relative URIs (`item.json`, `http://example.com/root.json#/$defs/x`). A reference
    to a boolean schema becomes that boolean. A boolean root becomes `{}` (`true`) or
    `{"not": {}}` (`false`).

    Args:
        schema: A JSON schema (a dict or a boolean).
        recursive: What to do with a recursive type (one that contains itself): `False`
            raises; `True` keeps it as a definition, so the result has `$defs` (and `$ref`s
            to `#/$defs/...` or `#`) for exactly the recursive types and nothing else.

    Raises:
        ConfigurationError: The schema is recursive (and `recursive` is false), refers to
            something it does not define (remote schemas are never fetched), or uses
            `$dynamicRef`/`$recursiveRef`.
    """
    import referencing
    import referencing.exceptions
    import referencing.jsonschema

    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    plain = _without_references(schema)
    if plain is not None:
        return plain
    root = copy.deepcopy(dict(schema))
    specification = referencing.jsonschema.specification_with(
        str(root.get("$schema", "")), default=referencing.jsonschema.DRAFT202012
    )
    resource = specification.create_resource(root)
    registry: Any = referencing.Registry().with_resource(resource.id() or "", resource)
    try:
        registry = registry.crawl()  # indexes `$anchor`s and embedded `$id`s
    except (AttributeError, TypeError) as exc:  # a keyword's value of the wrong shape
        raise ConfigurationError(f"the schema is not valid for its dialect: {exc}") from exc
    inliner = _Inliner(root, specification, recursive, referencing.exceptions.Unresolvable)
    walked = inliner.node(root, registry.resolver(base_uri=resource.id() or ""), (id(root),))
    if not isinstance(walked, dict):
        return {} if walked else {"not": {}}
    result: JSONSchema = walked
    ref = result.get("$ref")
    if isinstance(ref, str) and ref.removeprefix("#/$defs/") in inliner.definitions:
        # A root that is only a reference to a recursive type: start with that type itself,
        # since servers want a real schema (an object) at the root.
        del result["$ref"]
        result = _with_siblings(inliner.definitions[ref.removeprefix("#/$defs/")], result)
    if inliner.definitions:
        result["$defs"] = inliner.definitions
    if "$schema" in root:  # the dialect decides how the result is read again
        result = {"$schema": root["$schema"], **result}
    return result


class _Inliner:
    """One `inline_refs` walk: the definitions kept for recursive types, by target identity."""

    def __init__(
        self,
        root: JSONSchema,
        specification: Any,
        recursive: bool,
        unresolvable: type[Exception],
    ) -> None:
        self.root = root
        self.specification = specification
        self.recursive = recursive
        self.unresolvable = unresolvable
        self.definitions: JSONSchema = {}
        self.names: dict[int, str] = {}  # id(target) -> the `$ref` that stands for it

    def node(self, node: Any, resolver: Any, stack: tuple[int, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        if "$id" in node and node is not self.root:
            resolver = resolver.in_subresource(self.specification.create_resource(node))
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in node:
                raise ConfigurationError(
                    f"the schema uses `{keyword}` ({node[keyword]!r}), which agentlib does not "
                    "support; use `$ref`"
                )
        out: JSONSchema = {}
        for key, value in node.items():
            if key in _IDENTITY_KEYS or key == "$ref":
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self.node(sub, resolver, stack) for name, sub in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.node(sub, resolver, stack) for sub in value]
            elif key in _SCHEMA_VALUES or (key == "items" and isinstance(value, list)):
                out[key] = (
                    [self.node(sub, resolver, stack) for sub in value]
                    if isinstance(value, list)
                    else self.node(value, resolver, stack)
                )
            else:
                out[key] = copy.deepcopy(value)
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return out
        return _with_siblings(self.reference(ref, resolver, stack), out)

    def reference(self, ref: str, resolver: Any, stack: tuple[int, ...]) -> Any:
        try:
            resolved = resolver.lookup(ref)
        except self.unresolvable as exc:
            raise ConfigurationError(
                f"the schema refers to {ref!r}, which it does not define (remote schemas are "
                "never fetched: copy the definition into `$defs`)"
            ) from exc
        target = resolved.contents
        if isinstance(target, bool):
            return target
        key = id(target)
        if key in self.names:
            return {"$ref": self.names[key]}
        if key in stack:
            if not self.recursive:
                raise ConfigurationError(
                    f"the schema is recursive through {ref!r}; recursive types cannot be "
                    "inlined for constrained generation: use a non-recursive type"
                )
            self.names[key] = "#" if target is self.root else self._name(ref)
            return {"$ref": self.names[key]}
        inlined = self.node(target, resolved.resolver, (*stack, key))
        name = self.names.get(key)
        if name is None or name == "#":
            return inlined
        self.definitions[name.removeprefix("#/$defs/")] = inlined
        return {"$ref": name}

    def _name(self, ref: str) -> str:
        base = "".join(c if c.isalnum() or c in "_-" else "_" for c in ref.rsplit("/", 1)[-1])
        base = base.strip("_") or "definition"
        name, number = base, 1
        while f"#/$defs/{name}" in self.names.values():
            number += 1
            name = f"{base}_{number}"
        return f"#/$defs/{name}"


def _without_references(schema: Mapping[str, Any]) -> JSONSchema | None:
    """A copy of `schema` when no key or value in it starts with `$` (nothing to resolve).

    Most tool schemas have no `$ref`; building a `referencing` registry for each costs more
    than the rest of a tool's construction (benchmarks/tool_construction.md). Any `"$` in the
    JSON text (a `$ref`, `$id`, `$defs`, or merely a string starting with `$`) takes the full
    path, so this never changes a result.
    """
    try:
        text = json.dumps(schema)
    except (TypeError, ValueError):
        return None
    if '"$' in text:
        return None
    result: JSONSchema = json.loads(text)
    return result


def _with_siblings(target: Any, siblings: JSONSchema) -> Any:
    """A `$ref`'s target combined with the keywords beside the `$ref` (2020-12: both apply)."""
    if not siblings:
        return copy.deepcopy(target)
    if target is True:
        return siblings
    if target is False:
        return False
    clash = {key for key in siblings if key in target and key not in _ANNOTATIONS}
    # `unevaluated*` only sees what its own schema object evaluated: merging would widen it.
    scoped = any(key.startswith("unevaluated") for key in (*target, *siblings))
    if "$ref" in target or clash or scoped:
        # `$ref` beside other keywords is an `allOf` of the two (2020-12), whose annotations
        # the parent's `unevaluated*` still sees.
        return {**siblings, "allOf": [*siblings.get("allOf", []), copy.deepcopy(target)]}
    return {**copy.deepcopy(target), **siblings}


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

    Without it, a constraint engine may let a model add invented keys. Only objects that say
    nothing about other keys are closed (the JSON Schema default, which real-world schemas
    rarely mean as an invitation): an explicit `additionalProperties: true` or a schema for
    the other keys is kept, and so is an object whose `required` names a key it does not list
    in `properties`, since closing it would make it unsatisfiable.
    """
    result: JSONSchema = _map_subschemas(dict(schema), _close)
    return result


def _close(node: dict[str, Any]) -> dict[str, Any]:
    properties = node.get("properties")
    if not isinstance(properties, dict) or "additionalProperties" in node:
        return node
    required = node.get("required", [])
    if isinstance(required, list) and all(name in properties for name in required):
        node["additionalProperties"] = False
    return node


FINITE_NUMBER_BOUND = 1e15
"""The magnitude `finite_numbers` gives decimals that have no bound of their own."""

_FINITE_JSON = "finite_json_value"
_FINITE_REF = {"$ref": f"#/$defs/{_FINITE_JSON}"}
_NOT_NUMBERS = ["string", "integer", "boolean", "null", "array", "object"]
# `not` and `if` are conditions: bounding a number inside them would change what they mean.
_CONDITIONS = frozenset({"not", "if"})


def finite_numbers(schema: Mapping[str, Any]) -> JSONSchema:
    """Keep a constraint engine from producing a number that overflows a double (`1e999`).

    JSON grammars allow any exponent, and `1e999` parses as infinity, which is not JSON. Every
    place a non-integer number may appear is bounded: a `number` without both bounds becomes
    an integer (any size, never an exponent) or a decimal within +-`FINITE_NUMBER_BOUND`
    (llguidance then compiles a range without exponents; measured: it cannot compile ranges as
    wide as 1e30), and unconstrained values (`true`, `{}`, untyped nodes, `items` or extra keys
    left free) become a recursive "any JSON value with finite numbers".
    """
    state = {"used": False}
    result: JSONSchema = _finite(copy.deepcopy(dict(schema)), state)
    if state["used"]:
        definitions = dict(result.get("$defs", {}))
        definitions[_FINITE_JSON] = {
            "anyOf": [
                {"type": ["string", "integer", "boolean", "null"]},
                _bounded_decimal({}),
                {"type": "array", "items": dict(_FINITE_REF)},
                {"type": "object", "additionalProperties": dict(_FINITE_REF)},
            ]
        }
        result["$defs"] = definitions
    return result


def _finite(node: Any, state: dict[str, bool], part: bool = False) -> Any:
    """`node` with finite numbers (`part`: an `allOf` part, whose parent bounds free values).

    Bounding each part of an `allOf` too makes llguidance's intersection of the parts explode.
    """
    if node is True:
        if part:
            return node
        state["used"] = True
        return dict(_FINITE_REF)
    if not isinstance(node, dict):
        return node
    out = {key: _finite_keyword(key, value, state) for key, value in node.items()}
    fixed = any(key in out for key in ("enum", "const", "$ref"))
    kind = out.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    branches = any(key in out for key in ("anyOf", "oneOf"))
    if fixed or (not kinds and branches) or (not kinds and part):
        return out  # bounded by its values, its branches, or its parent
    if not kinds and "allOf" in out:
        return {**out, "anyOf": [{"type": _NOT_NUMBERS}, _bounded_decimal({})]}
    composite = branches or "allOf" in out
    free = not kinds
    for key, kind_name in (("items", "array"), ("additionalProperties", "object")):
        if (free or kind_name in kinds) and key not in out:
            state["used"] = True
            out[key] = dict(_FINITE_REF)
    if free:
        return {**out, "anyOf": [{"type": _NOT_NUMBERS}, _bounded_decimal({})]}
    bounded = ("maximum" in out or "exclusiveMaximum" in out) and (
        "minimum" in out or "exclusiveMinimum" in out
    )
    if "number" not in kinds or bounded:
        return out
    rest = {key: value for key, value in out.items() if key != "type"}
    outer: JSONSchema = {key: rest.pop(key) for key in ("title", "description") if key in rest}
    others = [{**rest, "type": name} for name in kinds if name not in ("number", "integer")]
    numbers = [{**rest, "type": "integer"}, _bounded_decimal(rest), *others]
    if composite:
        return {**outer, "allOf": [{"anyOf": numbers}]}
    return {**outer, "anyOf": numbers}


def _finite_keyword(key: str, value: Any, state: dict[str, bool]) -> Any:
    if key in _CONDITIONS:
        return value
    if key in _SCHEMA_MAPS and isinstance(value, dict):
        return {name: _finite(sub, state) for name, sub in value.items()}
    if (key in _SCHEMA_LISTS or key == "items") and isinstance(value, list):
        return [_finite(sub, state, part=key == "allOf") for sub in value]
    if key in _SCHEMA_VALUES:
        return _finite(value, state)
    return value


def _bounded_decimal(node: Mapping[str, Any]) -> JSONSchema:
    decimal: JSONSchema = {**node, "type": "number"}
    if "maximum" not in node and "exclusiveMaximum" not in node:
        decimal["maximum"] = FINITE_NUMBER_BOUND
    if "minimum" not in node and "exclusiveMinimum" not in node:
        decimal["minimum"] = -FINITE_NUMBER_BOUND
    return decimal


def strip_titles(schema: Mapping[str, Any]) -> JSONSchema:
    """Drop pydantic's generated `title` keys: they cost prompt tokens and constrain nothing."""

    def strip(node: dict[str, Any]) -> dict[str, Any]:
        node.pop("title", None)
        return node

    result: JSONSchema = _map_subschemas(dict(schema), strip)
    return result


def bound_strings(schema: Mapping[str, Any], max_length: int) -> JSONSchema:
    """Give every string without `maxLength` (and without an enum, const or pattern) a bound.

    Small models under constrained decoding otherwise ramble inside a string until they run out
    of tokens.
    """
    result: JSONSchema = _map_subschemas(dict(schema), lambda node: _bound(node, max_length))
    return result


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


def bound_arrays(schema: Mapping[str, Any], max_items: int) -> JSONSchema:
    """Give every array without `maxItems` a bound (at least its `minItems`).

    An unbounded array lets a constrained step run past its token budget one item at a time.
    """

    def bound(node: dict[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        is_array = kind == "array" or (isinstance(kind, list) and "array" in kind)
        if is_array and "maxItems" not in node:
            node["maxItems"] = max(max_items, int(node.get("minItems", 0)))
        return node

    result: JSONSchema = _map_subschemas(dict(schema), bound)
    return result

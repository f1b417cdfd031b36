"""Reading JSON schemas as sets of values, for `strict_schema` and `restore_optional`.

What both directions of the strict-mode rewrite (`agentlib._strict` there,
`agentlib._strict_restore` back) must agree on: the types a node can take (from `type`, or
inferred from its keywords and values), `allOf` folded into its parent, two schemas (or two
unions) holding at once, and whether `null` fits. A combination that cannot be expressed
raises `ConfigurationError` naming the place (`where`) in the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentlib.errors import ConfigurationError

__all__ = [
    "ANNOTATIONS",
    "OBJECT_KEYWORDS",
    "TYPED_KEYWORDS",
    "TYPE_KEYWORDS",
    "accepts_null",
    "fits_type",
    "merge",
    "merge_all_of",
    "node_types",
    "union_branches",
]

JSONSchema = dict[str, Any]

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
OBJECT_KEYWORDS = frozenset(
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
# The keywords that apply to values of one type only (a node with them has that type).
TYPE_KEYWORDS = {
    "object": OBJECT_KEYWORDS,
    "array": _ARRAY_KEYWORDS,
    "string": _STRING_KEYWORDS,
    "number": _NUMBER_KEYWORDS,
    "integer": _NUMBER_KEYWORDS,
}
TYPED_KEYWORDS = OBJECT_KEYWORDS | _ARRAY_KEYWORDS | _STRING_KEYWORDS | _NUMBER_KEYWORDS
ANNOTATIONS = frozenset({"title", "description", "default", "examples"})


def node_types(node: Mapping[str, Any]) -> list[str]:
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
    inferred = [name for name, words in TYPE_KEYWORDS.items() if words & node.keys()]
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


def fits_type(value: Any, kind: str) -> bool:
    """Whether a JSON value has type `kind` (an integer is a number too)."""
    name = _json_type(value)
    return name == kind or (kind == "number" and name == "integer")


def merge_all_of(node: Mapping[str, Any], where: str) -> JSONSchema:
    """Fold `allOf` into its parent: properties and `required` are united, other keys kept."""
    merged: JSONSchema = {key: value for key, value in node.items() if key != "allOf"}
    for part in node.get("allOf", ()):
        if part is True:
            continue
        if part is False:
            raise ConfigurationError(f"the `allOf` at {where} contains `false`: no value fits")
        result = merge(merged, merge_all_of(part, where), where)
        if result is None:
            raise ConfigurationError(
                f"the parts of the `allOf` at {where} contradict each other: no value fits"
            )
        merged = result
    return merged


def merge(first: Mapping[str, Any], second: Any, where: str) -> JSONSchema | None:
    """Both schemas at once, or None when they cannot both hold (their types do not meet)."""
    if second is True:
        return dict(first)
    if second is False:
        return None
    second = merge_all_of(second, where)
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
        elif key not in ANNOTATIONS and merged[key] != value:
            raise ConfigurationError(
                f"cannot combine the schemas at {where}: they disagree on {key!r}; simplify "
                "the schema"
            )
    return merge_all_of(merged, where) if "allOf" in merged else merged


_MAX_UNION_PRODUCT = 64


def union_branches(node: Mapping[str, Any], where: str) -> list[Any]:
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
    pairs = (merge(merge_all_of(left, where), right, where) for left in first for right in second)
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


def accepts_null(schema: Any) -> bool:
    """Whether `null` may be valid under `schema` (a reference or an untyped node may allow it)."""
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
        return any(accepts_null(branch) for branch in branches)
    return not (TYPED_KEYWORDS & schema.keys()) and "$ref" not in schema

"""The fast schema check behind `Tool.from_schema` never accepts what the metaschema rejects."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlib import ConfigurationError, Tool
from agentlib._schema_check import plainly_valid

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 5),
    st.floats(-1, 3, allow_nan=False),
    st.sampled_from(["string", "integer", "strin", "object", "", "a"]),
    st.lists(st.sampled_from(["a", "b", "string", "null"]), max_size=3),
)
_KEYS = st.sampled_from(
    [
        "type",
        "description",
        "enum",
        "const",
        "required",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "multipleOf",
        "uniqueItems",
        "format",
        "pattern",
        "default",
        "minItems",
        "exclusiveMinimum",
        "nullable",
        "x-extra",
    ]
)


def _schemas() -> st.SearchStrategy[Any]:
    leaf = st.dictionaries(_KEYS, _VALUES, max_size=4)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.dictionaries(st.just("properties"), st.dictionaries(st.text(max_size=3), inner)),
            st.dictionaries(st.sampled_from(["items", "additionalProperties", "not"]), inner),
            st.dictionaries(st.sampled_from(["anyOf", "oneOf"]), st.lists(inner, max_size=2)),
            st.builds(lambda a, b: {**a, **b}, leaf, inner),
        ),
        max_leaves=6,
    )


@settings(max_examples=400, deadline=None)
@given(_schemas())
def test_plainly_valid_implies_the_metaschema_accepts(schema: Any) -> None:
    if plainly_valid(schema):
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("parameters", "where"),
    [
        ({"properties": {"a": {"type": "strin"}}}, "properties/a/type"),
        ({"properties": {"a": {"type": "string", "minLength": -1}}}, "properties/a/minLength"),
        ({"properties": {"a": {"type": "string"}}, "required": "a"}, "required"),
        ({"properties": {"a": {"anyOf": []}}}, "properties/a/anyOf"),
    ],
)
def test_invalid_schemas_are_still_refused_with_where(parameters: Any, where: str) -> None:
    with pytest.raises(ConfigurationError, match=f"not a valid JSON schema at {where}"):
        Tool.from_schema("t", "", parameters, lambda **arguments: arguments)


def test_uncommon_keywords_go_through_the_full_check() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "x-vendor": 1}
    assert not plainly_valid(schema)
    made = Tool.from_schema("t", "", schema, lambda **arguments: arguments)
    assert made.validate({"a": "x"}) == {"a": "x"}

"""Strictification: any JSON schema made fit for OpenAI-style strict mode, and undone on replies."""

from __future__ import annotations

import copy
from typing import Literal

import pytest
from inline_snapshot import snapshot
from pydantic import BaseModel, Field

from agentlib import ConfigurationError, tool
from agentlib._output import output_spec
from agentlib._strict import OPENAI_STRICT_KEYWORDS, restore_optional, strict_schema
from agentlib.actions import build_step_schema


@tool
def search(query: str, limit: int = 5) -> str:
    """Search the notes.

    Args:
        query: Words to look for.
        limit: The most results to return.
    """
    return query


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Person(BaseModel):
    name: str = Field(max_length=40)
    role: Literal["admin", "user"] = "user"
    address: Address
    tags: list[str] = Field(default_factory=list, max_length=3)


def test_step_schema_becomes_strict() -> None:
    step = build_step_schema([search], int, max_thought_length=200, max_string_length=100)
    assert strict_schema(step.output.schema) == snapshot(
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "description": "(maxLength: 200)"},
                "action": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "enum": ["search"]},
                                "arguments": {
                                    "type": "object",
                                    "properties": {
                                        "query": {
                                            "description": "Words to look for. (maxLength: 100)",
                                            "type": "string",
                                        },
                                        "limit": {
                                            "description": (
                                                "The most results to return. (default: 5)"
                                            ),
                                            "anyOf": [{"type": "integer"}, {"type": "null"}],
                                        },
                                    },
                                    "required": ["query", "limit"],
                                    "additionalProperties": False,
                                },
                            },
                            "required": ["tool", "arguments"],
                            "additionalProperties": False,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "enum": ["final_answer"]},
                                "answer": {"type": "integer"},
                            },
                            "required": ["tool", "answer"],
                            "additionalProperties": False,
                        },
                    ]
                },
            },
            "required": ["thought", "action"],
            "additionalProperties": False,
        }
    )


def test_pydantic_model_with_refs_and_optional_fields_becomes_strict() -> None:
    raw = Person.model_json_schema()
    assert "$defs" in raw
    assert strict_schema(raw) == snapshot(
        {
            "type": "object",
            "title": "Person",
            "properties": {
                "name": {"title": "Name", "type": "string", "description": "(maxLength: 40)"},
                "role": {
                    "title": "Role",
                    "anyOf": [
                        {"enum": ["admin", "user"], "type": "string"},
                        {"type": "null"},
                    ],
                    "description": '(default: "user")',
                },
                "address": {
                    "type": "object",
                    "title": "Address",
                    "properties": {
                        "city": {"title": "City", "type": "string"},
                        "postcode": {
                            "title": "Postcode",
                            "anyOf": [{"type": "string"}, {"type": "null"}],
                            "description": "(default: null)",
                        },
                    },
                    "required": ["city", "postcode"],
                    "additionalProperties": False,
                },
                "tags": {
                    "description": "(maxItems: 3)",
                    "title": "Tags",
                    "anyOf": [
                        {"type": "array", "items": {"type": "string"}},
                        {"type": "null"},
                    ],
                },
            },
            "required": ["name", "role", "address", "tags"],
            "additionalProperties": False,
        }
    )


def test_value_keywords_move_to_the_description_by_default() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 2, "pattern": "^[A-Z]+$"},
            "n": {"type": "integer", "minimum": 1, "const": 3},
        },
        "required": ["code", "n"],
    }
    assert strict_schema(schema)["properties"] == snapshot(
        {
            "code": {"type": "string", "description": '(minLength: 2; pattern: "^[A-Z]+$")'},
            "n": {"type": "integer", "enum": [3], "description": "(minimum: 1)"},
        }
    )


def test_openai_keywords_stay_and_the_others_move_to_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 2, "pattern": "^[A-Z]+$"},
            "site": {"type": "string", "format": "uri", "description": "Home page."},
            "email": {"type": "string", "format": "email"},
            "ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "score": {"type": "number", "minimum": 0, "maximum": 1, "examples": [0.5]},
        },
        "required": ["code", "site", "email", "ids", "score"],
    }
    assert strict_schema(schema, keep=OPENAI_STRICT_KEYWORDS)["properties"] == snapshot(
        {
            "code": {"type": "string", "pattern": "^[A-Z]+$", "description": "(minLength: 2)"},
            "site": {"type": "string", "description": 'Home page. (format: "uri")'},
            "email": {"type": "string", "format": "email"},
            "ids": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "(uniqueItems: true)",
            },
            "score": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "(examples: [0.5])",
            },
        }
    )


def test_keep_lets_a_grammar_server_enforce_more_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "maxLength": 4, "format": "uri"}},
        "required": ["code"],
    }
    kept = strict_schema(schema, keep={"maxLength", "format"})
    assert kept["properties"]["code"] == {"type": "string", "maxLength": 4, "format": "uri"}


def test_one_of_becomes_any_of_and_all_of_is_merged() -> None:
    schema = {
        "type": "object",
        "allOf": [
            {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"oneOf": [{"type": "string"}, {"type": "boolean"}]}}},
        ],
    }
    assert strict_schema(schema) == snapshot(
        {
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "b": {"anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "null"}]},
            },
            "required": ["a", "b"],
            "additionalProperties": False,
        }
    )


def test_object_with_arbitrary_keys_is_rejected_with_its_location() -> None:
    schema = output_spec(dict[str, int]).json_schema
    wrapped = {"type": "object", "properties": {"counts": schema}, "required": ["counts"]}
    with pytest.raises(ConfigurationError, match=r"arbitrary keys at \$\.counts"):
        strict_schema(wrapped)


def test_unconstrained_value_and_non_object_root_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"unconstrained value .* at \$\.anything"):
        strict_schema({"type": "object", "properties": {"anything": {}}})
    with pytest.raises(ConfigurationError, match="object at the root"):
        strict_schema({"type": "array", "items": {"type": "string"}})


def test_recursive_schema_keeps_its_recursion_as_defs() -> None:
    class Node(BaseModel):
        children: list[Node]

    strict = strict_schema(Node.model_json_schema())
    assert strict["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert strict["$defs"]["Node"]["required"] == ["children"]


def test_input_schema_is_not_modified() -> None:
    raw = Person.model_json_schema()
    before = copy.deepcopy(raw)
    strict_schema(raw)
    assert raw == before


def test_restored_reply_lets_the_tool_default_apply() -> None:
    step = build_step_schema([search], int)
    reply = {
        "thought": "look it up",
        "action": {"tool": "search", "arguments": {"query": "llamas", "limit": None}},
    }
    restored = restore_optional(reply, step.output.schema)
    assert restored["action"]["arguments"] == {"query": "llamas"}
    assert search.validate(restored["action"]["arguments"]) == {"query": "llamas", "limit": 5}


def test_restore_drops_forced_nulls_and_nulls_whose_default_is_null() -> None:
    raw = Person.model_json_schema()
    reply = {
        "name": "Ada",
        "role": None,
        "address": {"city": "Paris", "postcode": None},
        "tags": None,
    }
    restored = restore_optional(reply, raw)
    # `postcode` accepts null and defaults to null: absent and null mean the same.
    assert restored == {"name": "Ada", "address": {"city": "Paris"}}
    assert Person.model_validate(restored) == Person(
        name="Ada", role="user", address=Address(city="Paris"), tags=[]
    )


def test_restore_picks_the_union_branch_by_its_const() -> None:
    step = build_step_schema([search], Person)
    reply = {
        "thought": "done",
        "action": {
            "tool": "final_answer",
            "answer": {"name": "Ada", "role": None, "address": {"city": "X", "postcode": None}},
        },
    }
    restored = restore_optional(reply, step.output.schema)
    assert restored["action"]["answer"] == {"name": "Ada", "address": {"city": "X"}}


def _nested(depth: int) -> dict[str, object]:
    node: dict[str, object] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"n": node}, "required": ["n"]}
    return node


def test_openai_size_limits_are_checked_before_sending() -> None:
    strict_schema(_nested(10))
    with pytest.raises(ConfigurationError, match="11 levels of object nesting"):
        strict_schema(_nested(11))
    many = {f"p{index}": {"type": "integer"} for index in range(5001)}
    with pytest.raises(ConfigurationError, match="5001 object properties"):
        strict_schema({"type": "object", "properties": many, "required": list(many)})
    long_enum = {"type": "string", "enum": [f"{index:060d}" for index in range(300)]}
    with pytest.raises(ConfigurationError, match="enum of more than 250 strings"):
        strict_schema({"type": "object", "properties": {"e": long_enum}, "required": ["e"]})


def test_restore_applies_the_parents_properties_to_the_chosen_branch() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    wrapped = {"type": "object", "properties": {"w": schema}, "required": ["w"]}
    assert restore_optional({"w": {"a": None, "b": 2}}, wrapped) == {"w": {"b": 2}}
    assert restore_optional({"w": {"a": "x", "b": None}}, wrapped) == {"w": {"a": "x"}}


def test_type_lists_with_objects_become_unions_and_untyped_keywords_get_their_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "either": {"type": ["object", "integer"], "properties": {"x": {"type": "string"}}},
            "day": {"format": "date"},
        },
        "required": ["either", "day"],
    }
    strict = strict_schema(schema)["properties"]
    assert [branch["type"] for branch in strict["either"]["anyOf"]] == ["object", "integer"]
    assert strict["day"] == {"type": "string", "description": '(format: "date")'}


def test_two_unions_that_must_both_hold_become_their_product() -> None:
    # SchemaStore's snapcraft schema: `allOf` of two `anyOf`s (this once recursed forever).
    schema = {
        "type": "object",
        "properties": {
            "v": {
                "allOf": [
                    {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
                ]
            },
            "w": {"anyOf": [{"type": "string"}, {"type": "null"}], "oneOf": [{"type": "null"}]},
        },
        "required": ["v", "w"],
    }
    strict = strict_schema(schema)["properties"]
    assert strict["v"] == {"anyOf": [{"type": "integer"}]}
    assert strict["w"] == {"anyOf": [{"type": "null"}]}

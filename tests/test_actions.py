from __future__ import annotations

import json
from typing import Literal

import pytest
from inline_snapshot import snapshot
from pydantic import BaseModel

from agentlib import ModelOutputError, tool
from agentlib.actions import build_step_schema, extract_json, parse_step


@tool
def search(query: str, max_results: int = 5) -> list[str]:
    """Search the web.

    Args:
        query: What to search for.
        max_results: How many results to return.
    """
    return [query] * max_results


class Filter(BaseModel):
    field: Literal["title", "year"]
    value: str


@tool
def lookup(filters: list[Filter]) -> str:
    """Look records up.

    Args:
        filters: Conditions that must all hold.
    """
    return str(filters)


class Answer(BaseModel):
    city: str
    population: int


TOOLS = [search, lookup]
TOOLS_BY_NAME = {item.name: item for item in TOOLS}


def test_step_schema_snapshot() -> None:
    schema = build_step_schema(TOOLS, Answer).output.schema
    assert schema == snapshot(
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": 300},
                "action": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "const": "search"},
                                "arguments": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "query": {
                                            "description": "What to search for.",
                                            "type": "string",
                                            "maxLength": 4000,
                                        },
                                        "max_results": {
                                            "default": 5,
                                            "description": "How many results to return.",
                                            "type": "integer",
                                        },
                                    },
                                    "required": ["query"],
                                    "type": "object",
                                },
                            },
                            "required": ["tool", "arguments"],
                            "additionalProperties": False,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "const": "lookup"},
                                "arguments": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "filters": {
                                            "description": "Conditions that must all hold.",
                                            "items": {
                                                "properties": {
                                                    "field": {
                                                        "enum": ["title", "year"],
                                                        "type": "string",
                                                    },
                                                    "value": {"type": "string", "maxLength": 4000},
                                                },
                                                "required": ["field", "value"],
                                                "type": "object",
                                                "additionalProperties": False,
                                            },
                                            "type": "array",
                                        }
                                    },
                                    "required": ["filters"],
                                    "type": "object",
                                },
                            },
                            "required": ["tool", "arguments"],
                            "additionalProperties": False,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "const": "final_answer"},
                                "answer": {
                                    "properties": {
                                        "city": {"type": "string", "maxLength": 4000},
                                        "population": {"type": "integer"},
                                    },
                                    "required": ["city", "population"],
                                    "type": "object",
                                    "additionalProperties": False,
                                },
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


def test_step_schema_is_cached_per_toolset_and_output_type() -> None:
    first = build_step_schema(TOOLS, Answer)
    assert build_step_schema(list(TOOLS), Answer) is first
    assert build_step_schema(TOOLS, str) is not first
    assert build_step_schema(TOOLS, Answer, parallel_calls=3) is not first


def test_every_object_is_closed_and_every_string_bounded() -> None:
    schema = build_step_schema(TOOLS, Answer).output.schema

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node["additionalProperties"] is False
            if node.get("type") == "string" and "const" not in node and "enum" not in node:
                assert "maxLength" in node
            assert "$ref" not in node and "$defs" not in node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)


def test_parallel_schema_holds_calls_or_the_final_answer_alone() -> None:
    schema = build_step_schema(TOOLS, str, parallel_calls=3).output.schema
    calls, alone = schema["properties"]["actions"]["anyOf"]
    assert (calls["type"], calls["minItems"], calls["maxItems"]) == ("array", 1, 3)
    assert "final_answer" not in json.dumps(calls)
    assert (alone["minItems"], alone["maxItems"]) == (1, 1)
    assert alone["items"]["properties"]["tool"]["const"] == "final_answer"


def test_valid_tool_step_parses() -> None:
    step_schema = build_step_schema(TOOLS, Answer)
    text = json.dumps(
        {"thought": "look", "action": {"tool": "search", "arguments": {"query": "paris"}}}
    )
    parsed = parse_step(text, step_schema, TOOLS_BY_NAME)
    assert parsed.thought == "look"
    assert [(call.name, call.arguments, call.values) for call in parsed.calls] == [
        ("search", {"query": "paris"}, {"query": "paris", "max_results": 5})
    ]
    assert not parsed.is_final


def test_final_answer_is_validated_into_the_output_type() -> None:
    step_schema = build_step_schema(TOOLS, Answer)
    text = json.dumps(
        {
            "thought": "done",
            "action": {
                "tool": "final_answer",
                "answer": {"city": "Paris", "population": "2100000"},
            },
        }
    )
    parsed = parse_step(text, step_schema, TOOLS_BY_NAME)
    assert parsed.is_final
    assert parsed.answer == Answer(city="Paris", population=2_100_000)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("not json at all", "the output is not valid JSON"),
        ("[1, 2]", "the step must be a JSON object, got list"),
        ({"thought": "x"}, "the step has no 'action'"),
        ({"thought": "x", "action": {}, "mood": "happy"}, "unexpected key(s) 'mood'"),
        (
            {"thought": "x", "action": {"tool": "serach", "arguments": {}}},
            "unknown tool 'serach'; known tools: search, lookup, final_answer",
        ),
        (
            {"thought": "x", "action": {"tool": "search", "arguments": {"query": 3}}},
            "tool 'search'",
        ),
        (
            {"thought": "x", "action": {"tool": "search", "arguments": {"max_results": 2}}},
            "argument 'query' is required but missing",
        ),
        (
            {
                "thought": "x",
                "action": {
                    "tool": "lookup",
                    "arguments": {"filters": [{"field": "genre", "value": "x"}]},
                },
            },
            "argument 'filters.0.field'",
        ),
        (
            {"thought": "x", "action": {"tool": "final_answer", "answer": {"city": "Paris"}}},
            "invalid final answer: field 'population' is required but missing",
        ),
        (
            {"thought": "x", "action": {"tool": "search", "query": "paris"}},
            "put arguments under 'arguments'",
        ),
    ],
)
def test_invalid_steps_get_a_precise_message(step: object, message: str) -> None:
    text = step if isinstance(step, str) else json.dumps(step)
    with pytest.raises(ModelOutputError) as caught:
        parse_step(text, build_step_schema(TOOLS, Answer), TOOLS_BY_NAME)
    assert message in str(caught.value)
    assert caught.value.raw_output == text


def test_final_answer_cannot_share_a_step_with_tool_calls() -> None:
    schema = build_step_schema(TOOLS, str, parallel_calls=2)
    text = json.dumps(
        {
            "thought": "x",
            "actions": [
                {"tool": "search", "arguments": {"query": "a"}},
                {"tool": "final_answer", "answer": "b"},
            ],
        }
    )
    with pytest.raises(ModelOutputError, match="must be the only action"):
        parse_step(text, schema, TOOLS_BY_NAME)


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"a": 1}\n```',
        'Sure! Here it is: {"a": 1} Hope that helps.',
        '  {"a": 1}  ',
    ],
)
def test_json_is_extracted_from_fences_and_prose(text: str) -> None:
    assert extract_json(text) == {"a": 1}

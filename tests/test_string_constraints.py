"""Free strings under constraint: no placeholder, bounded bytes, no failed value again.

The constraint checks run llguidance's real matcher on the real SmolLM2 vocabulary (the
embedded model's GGUF file, read vocabulary-only), with the grammar `OutlinesModel` compiles.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from agentlib import ModelOutputError, tool
from agentlib._string_constraints import (
    NOT_PLACEHOLDER,
    excluding,
    find_placeholder,
    is_placeholder,
)
from agentlib.step_format import FINAL_ANSWER, StepFormat, rejected_values
from tests._constraint import SmolLM2Constraint, as_generated

pytest.importorskip("llama_cpp")

PLACEHOLDERS = [
    "<tool name>",
    "<city>",
    "{{city}}",
    "{{ start_location }}",
    "{{}}",
    "...",
    "…",
    "....",
    "{...}",
    "[...]",
    "(…)",
]
VALUES = [
    "Paris",
    "San Francisco, CA",
    "<b>bold</b>",
    '<a href="x">',
    "see {{x}} below",
    "{city}",
    "{}",
    "[]",
    "a...",
    "...and more",
    "..",
    "<3",
    "x > y",
    "{'a': 1}",
    "北京",
    "",
]


@tool
def weather(city: str, unit: str = "C") -> str:
    """The weather in a city.

    Args:
        city: The city.
        unit: The unit.
    """
    return city


@tool
def wrap(text: str, tag: Annotated[str, Field(pattern=r"^<\w+>$")]) -> str:
    """Wrap a text in an HTML tag.

    Args:
        text: The text.
        tag: The opening tag.
    """
    return f"{tag}{text}"


def _call(step_format: StepFormat, name: str, **arguments: Any) -> str:
    return as_generated(step_format.step("I call it.", [step_format.call_action(name, arguments)]))


def _final(step_format: StepFormat, answer: Any) -> str:
    return as_generated(step_format.step("Done.", [step_format.final_action(answer)]))


# -- the patterns ----------------------------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=".…{}[]()<>aB1 _-\n/", max_size=8))
def test_the_pattern_refuses_exactly_the_placeholders(text: str) -> None:
    assert (re.fullmatch(NOT_PLACEHOLDER, text) is None) == is_placeholder(text)


def test_the_listed_placeholders_are_placeholders_and_values_are_not() -> None:
    assert all(is_placeholder(text) for text in PLACEHOLDERS)
    assert not any(is_placeholder(text) for text in VALUES)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.text(alphabet="ab.[]\\-^ é", max_size=4), max_size=4),
    st.text(alphabet="ab.[]\\-^ é", max_size=5),
)
def test_excluding_matches_every_string_but_the_values(values: list[str], text: str) -> None:
    assert (re.fullmatch(excluding(values), text) is not None) == (text not in values)


# -- the constraint, on SmolLM2's vocabulary -------------------------------------------------


@pytest.fixture(scope="module")
def step_format() -> StepFormat:
    return StepFormat.build([weather, wrap], str, max_tokens=512)


@pytest.fixture(scope="module")
def constraint(step_format: StepFormat) -> SmolLM2Constraint:
    return SmolLM2Constraint(step_format.output.enforced)


def test_the_constraint_refuses_placeholder_arguments_and_accepts_values(
    step_format: StepFormat, constraint: SmolLM2Constraint
) -> None:
    for text in PLACEHOLDERS:
        assert not constraint.accepts(_call(step_format, "weather", city=text)), text
        assert not constraint.accepts(_call(step_format, "weather", city="Oslo", unit=text)), text
    for text in VALUES:
        assert constraint.accepts(_call(step_format, "weather", city=text)), text


def test_strings_with_a_pattern_and_answers_are_left_alone(
    step_format: StepFormat, constraint: SmolLM2Constraint
) -> None:
    assert constraint.accepts(_call(step_format, "wrap", text="hi", tag="<b>"))
    assert not constraint.accepts(_call(step_format, "wrap", text="<city>", tag="<b>"))
    assert constraint.accepts(_final(step_format, "<b>"))
    assert constraint.accepts(_final(step_format, "..."))


def test_the_step_schema_itself_is_unchanged(step_format: StepFormat) -> None:
    # Only the constraint carries the patterns: a server's strict schema and the prompt don't.
    assert NOT_PLACEHOLDER not in json.dumps(step_format.output.schema)
    assert json.dumps(NOT_PLACEHOLDER) in json.dumps(step_format.output.constraint)


def test_at_most_a_quarter_of_a_string_may_be_wide(
    step_format: StepFormat, constraint: SmolLM2Constraint
) -> None:
    bound = step_format.output.schema["properties"]["action"]["anyOf"][0]["properties"][
        "arguments"
    ]["properties"]["city"]["maxLength"]
    wide = bound // 4
    assert constraint.accepts(_call(step_format, "weather", city="😀" * wide + "x"))
    assert constraint.accepts(_call(step_format, "weather", city='"\\\n' * (wide // 3)))
    assert not constraint.accepts(_call(step_format, "weather", city="😀" * (wide + 1)))
    assert not constraint.accepts(_call(step_format, "weather", city="\n" * (wide + 1)))


# -- after parsing, on every path ------------------------------------------------------------


def test_a_placeholder_argument_is_refused_with_an_error_the_model_reads(
    step_format: StepFormat,
) -> None:
    tools = {"weather": weather, "wrap": wrap}
    with pytest.raises(ModelOutputError) as caught:
        step_format.parse(_call(step_format, "weather", city="{{city}}"), tools)
    message = str(caught.value)
    assert "argument 'city'" in message and "'{{city}}'" in message and "placeholder" in message
    assert rejected_values(caught.value) == (("weather", ("city",), "{{city}}"),)
    parsed = step_format.parse(_call(step_format, "weather", city="<b>bold</b>"), tools)
    assert parsed.calls[0].values == {"city": "<b>bold</b>", "unit": "C"}
    assert step_format.parse(_call(step_format, "wrap", text="x", tag="<b>"), tools).calls


def test_placeholders_are_found_inside_nested_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "stops": {"type": "array", "items": {"type": "string"}},
            "where": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "code": {"type": "string", "pattern": "^.*$"},
        },
    }
    assert find_placeholder({"stops": ["Oslo", "<city>"]}, schema) == (("stops", "*"), "<city>")
    assert find_placeholder({"where": "..."}, schema) == (("where",), "...")
    assert find_placeholder({"code": "..."}, schema) is None


# -- narrowing after a failure ---------------------------------------------------------------


def test_a_rejected_value_is_impossible_in_the_narrowed_constraint(
    step_format: StepFormat,
) -> None:
    narrowed = step_format.excluding([("weather", ("city",), "Parsi")])
    assert narrowed.output.schema == step_format.output.schema
    narrowed_constraint = SmolLM2Constraint(narrowed.output.enforced)
    assert not narrowed_constraint.accepts(_call(step_format, "weather", city="Parsi"))
    assert narrowed_constraint.accepts(_call(step_format, "weather", city="Paris"))
    assert narrowed_constraint.accepts(_call(step_format, "weather", city="Parsi2"))
    answer = step_format.excluding([(FINAL_ANSWER, (), "no idea")])
    answer_constraint = SmolLM2Constraint(answer.output.enforced)
    assert not answer_constraint.accepts(_final(step_format, "no idea"))
    assert answer_constraint.accepts(_final(step_format, "no idea yet"))

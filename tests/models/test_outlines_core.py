"""The outlines-core backend compiles what it can of the step's constraint (issue 25).

Real outlines-core: its JSON-schema-to-regex conversion and its index over SmolLM2's real
vocabulary (the embedded model's GGUF file, read vocabulary-only), as `OutlinesModel(...,
backend="outlines_core")` builds them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentlib import ModelOutputError, tool
from agentlib._number_constraints import FRACTION_DIGITS, INTEGER_DIGITS
from agentlib._string_constraints import wide_cap
from agentlib.step_format import StepFormat
from tests._constraint import OutlinesCoreConstraint

pytest.importorskip("llama_cpp")
pytest.importorskip("outlines_core")


@tool
def book(city: str, seats: int, price: float) -> str:
    """Book seats.

    Args:
        city: Where to.
        seats: How many seats.
        price: The price of one.
    """
    return "ok"


STEP_FORMAT = StepFormat.build([book], str, max_tokens=256)


def _step(thought: str = "ok", city: str = "Paris", seats: str = "2", price: str = "5.5") -> str:
    """A step as the backend writes it, numbers raw (a float would lose their digits)."""

    def text(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    arguments = f'{{"city": {text(city)}, "seats": {seats}, "price": {price}}}'
    action = f'{{"tool": "book", "arguments": {arguments}}}'
    return f'{{"thought": {text(thought)}, "action": {action}}}'


@pytest.fixture(scope="module")
def constraint() -> OutlinesCoreConstraint:
    return OutlinesCoreConstraint(STEP_FORMAT.output)


def test_an_ordinary_step_is_admitted(constraint: OutlinesCoreConstraint) -> None:
    for step in [_step(), _step(city="北京", seats="-7", price="0.25"), _step(price="1.5e+3")]:
        assert constraint.accepts(step), step
    assert json.loads(_step())  # the helper writes JSON


def test_integers_have_a_bounded_count_of_digits(constraint: OutlinesCoreConstraint) -> None:
    assert constraint.accepts(_step(seats="-" + "9" * INTEGER_DIGITS))
    assert not constraint.accepts(_step(seats="9" * (INTEGER_DIGITS + 1)))


def test_decimals_have_bounded_fraction_and_exponent_digits(
    constraint: OutlinesCoreConstraint,
) -> None:
    assert constraint.accepts(_step(price="1." + "9" * FRACTION_DIGITS))
    assert not constraint.accepts(_step(price="1." + "9" * (FRACTION_DIGITS + 1)))
    assert not constraint.accepts(_step(price="1.5e+10"))


def test_strings_hold_at_most_a_quarter_wide_characters(
    constraint: OutlinesCoreConstraint,
) -> None:
    cap = wide_cap(STEP_FORMAT.thought_length)
    assert constraint.accepts(_step(thought="xxx😀" * cap))
    assert not constraint.accepts(_step(thought="xxx😀" * cap + "😀"))
    assert not constraint.accepts(_step(thought="x" * (STEP_FORMAT.thought_length + 1)))


def test_placeholders_are_refused_after_parsing_not_by_the_index(
    constraint: OutlinesCoreConstraint,
) -> None:
    # Not expressible in outlines-core (an intersection with the length bound): the parse
    # check refuses what the index lets through.
    step = _step(city="{{city}}")
    assert constraint.accepts(step)
    with pytest.raises(ModelOutputError, match="placeholder"):
        STEP_FORMAT.parse(step, {"book": book})


def test_a_schema_without_a_constraint_is_compiled_as_it_is() -> None:
    from agentlib.models._guides import outlines_core_schema
    from agentlib.models.base import OutputSchema

    schema: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert outlines_core_schema(OutputSchema("plain", schema)) == schema

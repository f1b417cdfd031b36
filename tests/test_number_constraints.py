"""Numbers under constraint: bounded digits, declared ranges still writable.

The checks run llguidance's real matcher (byte vocabulary) with the grammar `OutlinesModel`
compiles from the step's stricter constraint.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import Field

from agentlib import tool
from agentlib._number_constraints import FRACTION_DIGITS, INTEGER_DIGITS, number_width
from agentlib.step_format import StepFormat
from tests._constraint import ByteConstraint

pytest.importorskip("llguidance")


@tool
def book(
    seats: int,
    price: float,
    account: Annotated[int, Field(ge=0, le=10**18)],
    share: Annotated[float, Field(multiple_of=0.25)],
) -> str:
    """Book seats.

    Args:
        seats: How many seats.
        price: The price.
        account: The account number.
        share: The share.
    """
    return "ok"


def _step(**arguments: Any) -> str:
    call = {"tool": "book", "arguments": {"seats": 1, "price": 1.5, "account": 7, "share": 0.25}}
    call["arguments"].update(arguments)
    return json.dumps({"thought": "", "action": call}, separators=(", ", ": "))


def _raw(text: str, **numbers: str) -> str:
    """`text` with each argument's number replaced by its raw text (floats lose digits)."""
    for name, number in numbers.items():
        text = text.replace(f'"{name}": "{name}"', f'"{name}": {number}')
    return text


@pytest.fixture(scope="module")
def constraint() -> ByteConstraint:
    return ByteConstraint(StepFormat.build([book], str, max_tokens=512).output.enforced)


def test_an_integer_without_bounds_has_at_most_fifteen_digits(constraint: ByteConstraint) -> None:
    widest = "9" * INTEGER_DIGITS
    assert constraint.accepts(_raw(_step(seats="seats"), seats=widest))
    assert constraint.accepts(_raw(_step(seats="seats"), seats="-" + widest))
    assert not constraint.accepts(_raw(_step(seats="seats"), seats=widest + "9"))


def test_a_decimal_has_at_most_six_digits_after_the_point(constraint: ByteConstraint) -> None:
    six = "-" + "9" * (INTEGER_DIGITS - 1) + "." + "9" * FRACTION_DIGITS
    assert constraint.accepts(_raw(_step(price="price"), price=six))
    for text in ["1.2345678", "1.5000000", "1e3", "9" * (INTEGER_DIGITS + 1)]:
        assert not constraint.accepts(_raw(_step(price="price"), price=text)), text


def test_a_declared_range_stays_writable(constraint: ByteConstraint) -> None:
    # 19 digits, past the default bound: the tool's own `le` wins.
    assert constraint.accepts(_raw(_step(account="account"), account=str(10**18)))
    assert not constraint.accepts(_raw(_step(account="account"), account=str(10**18 + 1)))
    assert not constraint.accepts(_raw(_step(account="account"), account="-1"))


def test_a_declared_step_is_kept(constraint: ByteConstraint) -> None:
    assert constraint.accepts(_raw(_step(share="share"), share="-2.75"))
    assert not constraint.accepts(_raw(_step(share="share"), share="0.3"))


def test_the_schema_itself_is_unchanged() -> None:
    schema = StepFormat.build([book], str, max_tokens=512).output.schema
    arguments = schema["properties"]["action"]["anyOf"][0]["properties"]["arguments"]
    assert "maximum" not in arguments["properties"]["seats"]
    assert "multipleOf" not in arguments["properties"]["price"]


@pytest.mark.parametrize(
    ("schema", "longest"),
    [
        ({"type": "integer"}, "-" + "9" * INTEGER_DIGITS),
        ({"type": "integer", "minimum": 0}, "9" * INTEGER_DIGITS),
        ({"type": "integer", "minimum": 0, "maximum": 10**18}, str(10**18)),
        ({"type": "number"}, "-" + "9" * INTEGER_DIGITS + "." + "9" * FRACTION_DIGITS),
        ({"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25}, "0.75"),
    ],
)
def test_the_width_counts_the_longest_number_admitted(schema: dict[str, Any], longest: str) -> None:
    # `number_width` is what the token budget counts; it may overcount, never undercount.
    assert number_width(schema) >= len(longest)

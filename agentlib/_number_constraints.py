"""What constrained decoding may write in a number: bounded digits, so a step fits its budget.

JSON numbers have no length of their own: without a bound a constrained step can write digits
until it runs out of tokens (`12345678901234567890...`, issue 25 item 2). Every number the step
schema holds (a *free* number: `type` integer or number, no `enum` or `const`) gets, in the
stricter copy only constraint engines see (`OutputSchema.constraint`, via `tighten`):

- a range: a missing `minimum` or `maximum` becomes `-+(10**digits - 1)`, where `digits` is
  `INTEGER_DIGITS` (15, the magnitude `finite_numbers` already gives decimals) or more when a
  declared bound needs it, so every integer of a declared range stays writable;
- for decimals, `multipleOf` `10**-FRACTION_DIGITS` (at most 6 digits after the point) unless
  the schema has a `multipleOf` of its own. llguidance then writes no exponent and no trailing
  digits past the sixth (checked in the tests).

`number_width` is the most UTF-8 bytes such a number takes (sign, digits, point): the step
format counts it in a step's syntax (`agentlib._step_schema.skeleton`), as it counts strings in
bytes, so a step at all its bounds fits `max_tokens_per_step`. The schema itself (validation,
OpenAI's strict mode, the prompt) is unchanged. outlines-core, which has digit counts instead
of ranges, gets `digit_limits`: integers bounded alike, decimals only after the point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from agentlib._json_schema import FINITE_NUMBER_BOUND

__all__ = [
    "FRACTION_DIGITS",
    "INTEGER_DIGITS",
    "bound_number",
    "digit_limits",
    "is_free_number",
    "number_width",
]

INTEGER_DIGITS = round(math.log10(FINITE_NUMBER_BOUND))
"""The digits before the point a number without a declared bound may have (15)."""
FRACTION_DIGITS = 6
"""The digits after the point a decimal without a `multipleOf` of its own may have."""

_LOWER = ("minimum", "exclusiveMinimum")
_UPPER = ("maximum", "exclusiveMaximum")


def _kinds(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    return kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []


def is_free_number(schema: Mapping[str, Any]) -> bool:
    """Whether `schema` admits numbers and bounds them by no list of values."""
    numeric = any(kind in ("integer", "number") for kind in _kinds(schema))
    return numeric and "enum" not in schema and "const" not in schema


def _bounds(schema: Mapping[str, Any], keys: tuple[str, str]) -> list[float]:
    return [
        float(schema[key])
        for key in keys
        if isinstance(schema.get(key), int | float) and not isinstance(schema[key], bool)
    ]


def _digits(value: float) -> int:
    """The digits before the point of `value` (at least one)."""
    return len(str(int(abs(value)))) if math.isfinite(value) else INTEGER_DIGITS


def bound_number(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` (a free number) with a range and, for decimals, a step: see the module."""
    out = dict(schema)
    declared = _bounds(schema, _LOWER) + _bounds(schema, _UPPER)
    largest = 10 ** max([INTEGER_DIGITS, *(_digits(value) for value in declared)]) - 1
    if not _bounds(schema, _LOWER):
        out["minimum"] = -largest
    if not _bounds(schema, _UPPER):
        out["maximum"] = largest
    if "number" in _kinds(schema) and "multipleOf" not in schema:
        out["multipleOf"] = 10.0**-FRACTION_DIGITS
    return out


def _fraction_digits(schema: Mapping[str, Any]) -> int:
    """The digits after the point a number of `schema` may have (0 for integers)."""
    if "number" not in _kinds(schema):
        return 0
    step = schema.get("multipleOf")
    if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
        return FRACTION_DIGITS
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def number_width(schema: Mapping[str, Any]) -> int:
    """The most UTF-8 bytes a number of `schema` (a free number) takes under constraint.

    A sign is always counted: outlines-core, which ignores ranges, may write one anyway.
    """
    bounded = bound_number(schema)
    digits = max(_digits(value) for value in _bounds(bounded, _LOWER) + _bounds(bounded, _UPPER))
    fraction = _fraction_digits(bounded)
    return 1 + digits + (1 + fraction if fraction else 0)


def digit_limits(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` (a free number) with outlines-core's digit keywords, as far as they go.

    outlines-core (0.2.14) ignores `minimum`, `maximum` and `multipleOf`; it has digit counts
    instead. An integer gets `maxDigits` (the digits `bound_number`'s range allows). A decimal
    gets at most `FRACTION_DIGITS` after the point and a one-digit exponent, but no bound
    before the point: with `maxDigitsInteger` set, outlines-core's integer part is
    `0|[1-9][0-9]{1,n-1}`, so `5.5` could not be written at all.
    """
    out = dict(schema)
    if "number" in _kinds(schema):
        fraction = _fraction_digits(bound_number(schema))
        out.update(minDigitsExponent=1, maxDigitsExponent=1)
        if fraction:
            out.update(minDigitsFraction=1, maxDigitsFraction=fraction)
    else:
        bounded = bound_number(schema)
        bounds = _bounds(bounded, _LOWER) + _bounds(bounded, _UPPER)
        out["maxDigits"] = max(2, *(_digits(value) for value in bounds))  # 1 reads as none
    return out

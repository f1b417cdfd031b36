"""The step schema's earlier names, kept working: `build_step_schema` and `parse_step`.

`agentlib.step_format.StepFormat` owns the step format; `StepSchema` is that class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentlib.models.profiles import StepOptions
from agentlib.step_format import (
    FINAL_ANSWER,
    ParsedCall,
    ParsedStep,
    StepFormat,
    extract_json,
)
from agentlib.tool import Tool

__all__ = [
    "FINAL_ANSWER",
    "ParsedCall",
    "ParsedStep",
    "StepSchema",
    "build_step_schema",
    "extract_json",
    "parse_step",
]

StepSchema = StepFormat
"""The earlier name of `StepFormat`."""

_DEFAULTS = StepOptions()


def build_step_schema(
    tools: Sequence[Tool],
    output_type: Any = str,
    *,
    parallel_calls: int = 1,
    max_thought_length: int = _DEFAULTS.max_thought_length,
    max_string_length: int = _DEFAULTS.max_string_length,
) -> StepFormat:
    """`StepFormat.build` with the default options and these two bounds."""
    options = StepOptions(
        max_thought_length=max_thought_length, max_string_length=max_string_length
    )
    return StepFormat.build(tools, output_type, parallel_calls=parallel_calls, options=options)


def parse_step(text: str, schema: StepFormat, tools: Mapping[str, Tool]) -> ParsedStep:
    """`schema.parse(text, tools)`."""
    return schema.parse(text, tools)

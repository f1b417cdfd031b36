"""The step schema: one JSON schema for "the model's next step", and the parser that checks it.

For a toolset and an output type, `build_step_schema` makes

```json
{"thought": "<bounded string>",
 "action": {"anyOf": [{"tool": "<name>", "arguments": {<that tool's argument schema>}},
                      ...,
                      {"tool": "final_answer", "answer": <the output type's schema>}]}}
```

a union discriminated by `tool`, with `additionalProperties: false` everywhere, every string
bounded and every `$ref` inlined, so that each constraint engine enforces the same thing. The
schema is cached per (toolset schemas, output type, options): building it again costs a
dictionary look-up. `parse_step` validates a model's output against the live tools with
pydantic and explains every problem precisely.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentlib import _json
from agentlib._json_schema import bound_strings, close_objects
from agentlib._output import OutputSpec, OutputValidationError, output_spec
from agentlib.errors import ModelOutputError, ToolError
from agentlib.models.base import OutputSchema
from agentlib.tool import Tool

__all__ = [
    "FINAL_ANSWER",
    "ParsedStep",
    "StepSchema",
    "build_step_schema",
    "extract_json",
    "parse_step",
]

FINAL_ANSWER = "final_answer"
"""The reserved action name of the final answer."""


@dataclass(frozen=True, slots=True, eq=False)
class StepSchema:
    """The compiled step schema for one toolset and output type (immutable, cached)."""

    output: OutputSchema
    """The JSON schema handed to models, with its cache key."""
    answer: OutputSpec
    """The output type's schema and validator."""
    tool_names: tuple[str, ...]
    """The tools the schema allows, in order."""
    parallel_calls: int
    """How many tool calls one step may hold (1: the `action` form; more: `actions`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedStep:
    """A validated step."""

    thought: str
    """The model's thought."""
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    """`(tool name, arguments as sent)` pairs, already checked against each tool's schema."""
    is_final: bool = False
    """Whether this step is the final answer."""
    answer: Any = None
    """The typed answer, on a final step."""


def _tool_key(item: Tool) -> tuple[str, str, str]:
    # Not sort_keys: property order is generation order for constrained decoding.
    return (item.name, item.description, json.dumps(item.parameters))


def build_step_schema(
    tools: Sequence[Tool],
    output_type: Any = str,
    *,
    parallel_calls: int = 1,
    max_thought_length: int = 600,
    max_string_length: int = 4000,
) -> StepSchema:
    """Build (or fetch from the cache) the step schema for `tools` and `output_type`.

    Args:
        tools: The tools the model may call.
        output_type: The type of the final answer (or a raw JSON schema as a dict).
        parallel_calls: The most tool calls one step may hold.
        max_thought_length: The bound on the thought's length, in characters.
        max_string_length: The bound given to every other unbounded string.
    """
    output_key: tuple[str, Any] = (
        ("json-schema", json.dumps(output_type, sort_keys=True))
        if isinstance(output_type, Mapping)
        else ("type", output_type)
    )
    try:
        return _cached_step_schema(
            tuple(_tool_key(item) for item in tools),
            output_key,
            parallel_calls,
            max_thought_length,
            max_string_length,
        )
    except TypeError:  # an unhashable output type: build without the cache
        return _build(
            tuple(_tool_key(item) for item in tools),
            output_type,
            parallel_calls,
            max_thought_length,
            max_string_length,
        )


@functools.lru_cache(maxsize=128)
def _cached_step_schema(
    tool_keys: tuple[tuple[str, str, str], ...],
    output_key: tuple[str, Any],
    parallel_calls: int,
    max_thought_length: int,
    max_string_length: int,
) -> StepSchema:
    kind, value = output_key
    output_type = json.loads(value) if kind == "json-schema" else value
    return _build(tool_keys, output_type, parallel_calls, max_thought_length, max_string_length)


def _build(
    tool_keys: tuple[tuple[str, str, str], ...],
    output_type: Any,
    parallel_calls: int,
    max_thought_length: int,
    max_string_length: int,
) -> StepSchema:
    answer = output_spec(output_type)
    branches: list[dict[str, Any]] = []
    for name, _description, parameters in tool_keys:
        branches.append(
            {
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "const": name},
                    "arguments": json.loads(parameters),
                },
                "required": ["tool", "arguments"],
            }
        )
    branches.append(
        {
            "type": "object",
            "properties": {
                "tool": {"type": "string", "const": FINAL_ANSWER},
                "answer": answer.json_schema,
            },
            "required": ["tool", "answer"],
        }
    )
    union: dict[str, Any] = {"anyOf": branches}
    if parallel_calls > 1:
        action_key = "actions"
        action_schema: dict[str, Any] = {
            "type": "array",
            "items": union,
            "minItems": 1,
            "maxItems": parallel_calls,
        }
    else:
        action_key, action_schema = "action", union
    schema = {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": max_thought_length},
            action_key: action_schema,
        },
        "required": ["thought", action_key],
    }
    schema = close_objects(bound_strings(schema, max_string_length))
    return StepSchema(
        output=OutputSchema("agent_step", schema),
        answer=answer,
        tool_names=tuple(key[0] for key in tool_keys),
        parallel_calls=parallel_calls,
    )


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def extract_json(text: str) -> Any:
    """Parse the JSON document in `text`, tolerating a Markdown fence or prose around one object.

    Raises:
        ValueError: No JSON document could be read; the message says where parsing failed.
    """
    fenced = _FENCE.match(text)
    candidate = fenced.group(1) if fenced else text.strip()
    try:
        return _json.loads(candidate)  # RFC 8259: NaN, Infinity and 1e999 are refused
    except json.JSONDecodeError as first_error:
        start = candidate.find("{")
        if start >= 0:
            try:
                value, _end = _json.raw_decode(candidate[start:])
                return value
            except json.JSONDecodeError:
                pass
        raise ValueError(
            f"the output is not valid JSON ({first_error.msg} at line {first_error.lineno} "
            f"column {first_error.colno})"
        ) from first_error


def _invalid(message: str, raw: str) -> ModelOutputError:
    return ModelOutputError(message, raw_output=raw)


def parse_step(text: str, schema: StepSchema, tools: Mapping[str, Tool]) -> ParsedStep:
    """Validate a model's raw step against the step schema and the live tools.

    Raises:
        ModelOutputError: The step is invalid; the message names the tool, the field and the
            problem, ready to be shown to the model on a retry.
    """
    try:
        data = extract_json(text)
    except ValueError as exc:
        raise _invalid(
            f"{exc}; reply with one JSON object with keys 'thought' and "
            f"'{'actions' if schema.parallel_calls > 1 else 'action'}'",
            text,
        ) from exc
    if not isinstance(data, dict):
        raise _invalid(f"the step must be a JSON object, got {type(data).__name__}", text)
    action_key = "actions" if schema.parallel_calls > 1 else "action"
    unexpected = sorted(set(data) - {"thought", action_key})
    if unexpected:
        raise _invalid(
            f"unexpected key(s) {', '.join(map(repr, unexpected))}; the step has only "
            f"'thought' and '{action_key}'",
            text,
        )
    thought = data.get("thought", "")
    if not isinstance(thought, str):
        raise _invalid("'thought' must be a string", text)
    if action_key not in data:
        raise _invalid(f"the step has no '{action_key}'", text)
    actions = data[action_key]
    if schema.parallel_calls > 1:
        if not isinstance(actions, list) or not actions:
            raise _invalid("'actions' must be a non-empty list of actions", text)
        if len(actions) > schema.parallel_calls:
            raise _invalid(
                f"at most {schema.parallel_calls} actions per step, got {len(actions)}", text
            )
    else:
        actions = [actions]
    parsed = [_parse_action(action, schema, tools, text) for action in actions]
    finals = [item for item in parsed if item[0] == FINAL_ANSWER]
    if finals:
        if len(parsed) > 1:
            raise _invalid("a final answer must be the only action of its step", text)
        return ParsedStep(thought=thought, is_final=True, answer=finals[0][1])
    return ParsedStep(thought=thought, calls=tuple((name, args) for name, args in parsed))


def _parse_action(
    action: Any, schema: StepSchema, tools: Mapping[str, Tool], raw: str
) -> tuple[str, Any]:
    known = ", ".join([*schema.tool_names, FINAL_ANSWER])
    if not isinstance(action, dict):
        raise _invalid(
            f"an action must be a JSON object with a 'tool' key; known tools: {known}", raw
        )
    name = action.get("tool")
    if name == FINAL_ANSWER:
        extra = sorted(set(action) - {"tool", "answer"})
        if extra:
            raise _invalid(f"final_answer takes only 'answer'; unexpected: {', '.join(extra)}", raw)
        if "answer" not in action:
            raise _invalid("final_answer needs an 'answer'", raw)
        try:
            return FINAL_ANSWER, schema.answer.validate(action["answer"])
        except OutputValidationError as exc:
            raise _invalid(f"invalid final answer: {exc}", raw) from exc
    if not isinstance(name, str) or name not in tools or name not in schema.tool_names:
        raise _invalid(f"unknown tool {name!r}; known tools: {known}", raw)
    extra = sorted(set(action) - {"tool", "arguments"})
    if extra:
        raise _invalid(
            f"tool '{name}': unexpected key(s) {', '.join(extra)}; put arguments under 'arguments'",
            raw,
        )
    arguments = action.get("arguments", {})
    if not isinstance(arguments, dict):
        raise _invalid(f"tool '{name}': 'arguments' must be a JSON object", raw)
    try:
        tools[name].validate(arguments)
    except ToolError as exc:
        raise _invalid(str(exc), raw) from exc
    return name, arguments

"""Reading a model's step: parse and validate a reply once, against the format and the tools.

`StepFormat.parse` calls `parse` here; the parsed step (`ParsedStep`, `ParsedCall`) and
`extract_json` are re-exported by `agentlib.step_format`, their public home. An invalid step
raises `ModelOutputError` with a message for the model; one whose refused string values are
known says which (`rejected_values`), so a retry can exclude them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentlib import _json
from agentlib import _tool_call_format as tool_call_format
from agentlib._output import OutputValidationError
from agentlib._string_constraints import Path, find_placeholder
from agentlib.errors import ModelOutputError, ToolError
from agentlib.models.base import FINAL_ANSWER
from agentlib.tool import Tool

if TYPE_CHECKING:
    from agentlib.step_format import StepFormat

__all__ = ["ParsedCall", "ParsedStep", "Rejection", "extract_json", "parse", "rejected_values"]

Rejection = tuple[str, Path, str]
"""A value a failed attempt gave: `(branch name, path in its payload, the string)`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedCall:
    """One validated tool call of a step."""

    name: str
    """The tool's name."""
    arguments: Mapping[str, Any]
    """The arguments as the model sent them (JSON values)."""
    values: Mapping[str, Any]
    """The same arguments validated and converted by the tool (what it is called with)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedStep:
    """A validated step."""

    thought: str
    """The model's thought (empty when the format has none)."""
    calls: tuple[ParsedCall, ...] = ()
    """The tool calls, each already validated against its tool."""
    is_final: bool = False
    """Whether this step is the final answer."""
    answer: Any = None
    """The typed answer, on a final step."""
    handoff: str | None = None
    """The handoff branch taken, on a handoff step (no calls, no answer)."""


def parse(step_format: StepFormat, text: str, tools: Mapping[str, Tool]) -> ParsedStep:
    """Validate a model's raw step against the format and the live tools, once.

    Raises:
        ModelOutputError: The step is invalid; the message names the tool, the field and
            the problem, ready to be shown to the model on a retry.
    """
    if step_format.options.tool_format == "tool_call":
        blocks, answer = tool_call_format.split_reply(text)
        if answer is None:
            return _parse_blocks(step_format, blocks, tools, text)
        if not _is_json_step(answer, step_format.action_key):  # JSON steps: schema-only backends
            return ParsedStep(
                thought="", is_final=True, answer=_parse_text_answer(step_format, answer)
            )
    keys = (
        [step_format.action_key]
        if step_format.options.thought == "none"
        else ["thought", step_format.action_key]
    )
    try:
        data = extract_json(text)
    except ValueError as exc:
        wanted = " and ".join(f"'{key}'" for key in keys)
        raise _invalid(f"{exc}; reply with one JSON object with keys {wanted}", text) from exc
    if not isinstance(data, dict):
        raise _invalid(f"the step must be a JSON object, got {type(data).__name__}", text)
    unexpected = [] if data.keys() <= set(keys) else sorted(set(data) - set(keys))
    if unexpected:
        raise _invalid(
            f"unexpected key(s) {', '.join(map(repr, unexpected))}; the step has only "
            + " and ".join(f"'{key}'" for key in keys),
            text,
        )
    thought = data.get("thought", "")
    if not isinstance(thought, str):
        raise _invalid("'thought' must be a string", text)
    if step_format.action_key not in data:
        raise _invalid(f"the step has no '{step_format.action_key}'", text)
    actions = data[step_format.action_key]
    if step_format.parallel_calls > 1:
        if not isinstance(actions, list) or not actions:
            raise _invalid("'actions' must be a non-empty list of actions", text)
        if len(actions) > step_format.calls_per_step:
            raise _invalid(
                f"at most {step_format.calls_per_step} actions per step, got {len(actions)}", text
            )
    else:
        actions = [actions]
    parsed = [_parse_action(step_format, action, tools, text) for action in actions]
    return _step_of(thought, parsed, text, distinct=step_format.options.distinct_calls)


def _parse_action(
    step_format: StepFormat, action: Any, tools: Mapping[str, Tool], raw: str
) -> ParsedCall | tuple[Any] | str:
    """A tool call, `(answer,)` for the final answer, or a handoff's branch name."""
    known = ", ".join([*step_format.tool_names, *step_format.handoff_names, FINAL_ANSWER])
    key = step_format.name_key
    if not isinstance(action, dict):
        raise _invalid(
            f"an action must be a JSON object with a '{key}' key; known tools: {known}", raw
        )
    name = action.get(key)
    if name == FINAL_ANSWER:
        return (_parse_answer(step_format, action, raw),)
    if isinstance(name, str) and name in step_format.handoff_names:
        if set(action) - {key, "arguments"} or action.get("arguments", {}) != {}:
            raise _invalid(f"handoff '{name}' takes no arguments: send \"arguments\": {{}}", raw)
        return name
    if not isinstance(name, str) or name not in tools or name not in step_format.tool_names:
        raise _invalid(f"unknown tool {name!r}; known tools: {known}", raw)
    extra = sorted(set(action) - {key, "arguments"})
    if extra:
        raise _invalid(
            f"tool '{name}': unexpected key(s) {', '.join(extra)}; put arguments under 'arguments'",
            raw,
        )
    arguments = action.get("arguments", {})
    if not isinstance(arguments, dict):
        raise _invalid(f"tool '{name}': 'arguments' must be a JSON object", raw)
    try:
        values = tools[name].validate(arguments)
    except ToolError as exc:
        raise _Rejected(str(exc), raw_output=raw, rejected=_rejections(name, exc)) from exc
    found = find_placeholder(arguments, tools[name].parameters)
    if found is not None:
        path, value = found
        raise _Rejected(
            f"tool '{name}': argument '{'.'.join(path)}' is {value!r}, a placeholder "
            "copied from a template, not a value; write the real value from the task or "
            "an observation",
            raw_output=raw,
            rejected=((name, path, value),),
        )
    return ParsedCall(name=name, arguments=arguments, values=values)


def _parse_blocks(
    step_format: StepFormat, blocks: Sequence[str], tools: Mapping[str, Tool], raw: str
) -> ParsedStep:
    """The `<tool_call>` blocks of a reply, each one action."""
    if not blocks:
        raise _invalid(
            "a <tool_call> block must hold one JSON object and end with </tool_call>", raw
        )
    most = step_format.parallel_calls
    if len(blocks) > most:
        raise _invalid(f"at most {most} <tool_call> block(s) per step, got {len(blocks)}", raw)
    actions = []
    for block in blocks:
        try:
            actions.append(_json.loads(block))
        except json.JSONDecodeError as exc:
            raise _invalid(f"a <tool_call> block is not JSON ({exc.msg})", raw) from exc
    parsed = [_parse_action(step_format, item, tools, raw) for item in actions]
    return _step_of("", parsed, raw, distinct=step_format.options.distinct_calls)


def _parse_text_answer(step_format: StepFormat, text: str) -> Any:
    """A reply with no `<tool_call>`: the final answer, as text or as the answer's JSON."""
    if not text:
        raise _invalid("the reply is empty: call a tool or give the answer", text)
    value: Any = text
    if tool_call_format.answer_bound(step_format.answer.json_schema) is None:
        try:
            value = extract_json(text)
        except ValueError as exc:
            raise _invalid(f"the answer must be JSON: {exc}", text) from exc
    try:
        return step_format.answer.validate(value)
    except OutputValidationError as exc:
        raise _invalid(f"invalid final answer: {exc}", text) from exc


def _parse_answer(step_format: StepFormat, action: dict[str, Any], raw: str) -> Any:
    payload_key = step_format._payload_key(FINAL_ANSWER)
    extra = sorted(set(action) - {step_format.name_key, payload_key})
    if extra:
        raise _invalid(
            f"final_answer takes only '{payload_key}'; unexpected: {', '.join(extra)}", raw
        )
    if payload_key not in action:
        raise _invalid(f"final_answer needs '{payload_key}'", raw)
    value = action[payload_key]
    if step_format.name_key != "tool":
        if not isinstance(value, dict) or set(value) != {"answer"}:
            raise _invalid('final_answer\'s arguments must be {"answer": ...}', raw)
        value = value["answer"]
    try:
        return step_format.answer.validate(value)
    except OutputValidationError as exc:
        rejected = (((FINAL_ANSWER, (), value),) if isinstance(value, str) else ()) + _rejections(
            FINAL_ANSWER, exc
        )
        raise _Rejected(f"invalid final answer: {exc}", raw_output=raw, rejected=rejected) from exc


def _step_of(
    thought: str,
    parsed: Sequence[ParsedCall | tuple[Any] | str],
    raw: str,
    *,
    distinct: bool = False,
) -> ParsedStep:
    """The step from its parsed actions: a handoff or a final answer alone, or tool calls.

    With `distinct` (`StepOptions.distinct_calls`), a call identical to an earlier one of the
    step (same tool, same arguments) is dropped: it would run the same call twice at once.
    """
    handoffs = [item for item in parsed if isinstance(item, str)]
    if handoffs:
        if len(parsed) > 1:
            raise _invalid(f"a handoff ({handoffs[0]}) must be the only action of its step", raw)
        return ParsedStep(thought=thought, handoff=handoffs[0])
    finals = [item for item in parsed if isinstance(item, tuple)]
    if finals:
        if len(parsed) > 1:
            raise _invalid("a final answer must be the only action of its step", raw)
        return ParsedStep(thought=thought, is_final=True, answer=finals[0][0])
    calls = tuple(item for item in parsed if isinstance(item, ParsedCall))
    if distinct and len(calls) > 1:
        seen: dict[str, ParsedCall] = {}
        for item in calls:
            seen.setdefault(json.dumps([item.name, item.arguments], sort_keys=True), item)
        calls = tuple(seen.values())
    return ParsedStep(thought=thought, calls=calls)


def _is_json_step(text: str, action_key: str) -> bool:
    """Whether `text` is a JSON step (`{"action": ...}`), not an answer."""
    try:
        data = extract_json(text)
    except ValueError:
        return False
    return isinstance(data, dict) and action_key in data and set(data) <= {action_key, "thought"}


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
            # Text around one JSON object: the object alone; if it is not one either, the
            # error that matters is the first (of the whole output).
            with contextlib.suppress(json.JSONDecodeError):
                value, _end = _json.raw_decode(candidate[start:])
                return value
        raise ValueError(
            f"the output is not valid JSON ({first_error.msg} at line {first_error.lineno} "
            f"column {first_error.colno})"
        ) from first_error


def _invalid(message: str, raw: str) -> ModelOutputError:
    return ModelOutputError(message, raw_output=raw)


class _Rejected(ModelOutputError):
    """An invalid step whose failed string values are known (for a narrowed retry)."""

    def __init__(self, message: str, *, raw_output: str, rejected: tuple[Rejection, ...]):
        super().__init__(message, raw_output=raw_output)
        self.rejected = rejected


def rejected_values(error: BaseException) -> tuple[Rejection, ...]:
    """The string values a failed step gave where validation refused them (maybe none)."""
    return error.rejected if isinstance(error, _Rejected) else ()


def _rejections(branch: str, error: BaseException) -> tuple[Rejection, ...]:
    """The string inputs pydantic refused, from the `ValidationError` behind `error`."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return ()
    found = []
    for item in errors():
        value = item.get("input")
        location = item.get("loc", ())
        if isinstance(value, str) and location:
            path = tuple("*" if isinstance(part, int) else str(part) for part in location)
            found.append((branch, path, value))
    return tuple(found)

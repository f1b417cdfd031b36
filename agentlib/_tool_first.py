"""Tool-first decoding (`StepOptions(decoding="tool_first")`): the tool, then its arguments.

A step is written in two constrained generations instead of one:

1. the choice: the thought (when the format has one before the action) and the branch name,
   from an enum of the tools, the handoffs and `final_answer`, with the tools listed by name
   and description only (`- name: description`);
2. the step itself, under the step schema narrowed to the chosen branch (the thought fixed to
   the one already written), with only that tool's description in the prompt.

The second reply is a whole step in the format's own shape, so the format's parser reads it
as it reads any step. A backend that cannot constrain (`prompted`) may answer the choice with
something that is no branch name; then its reply is handed back as the step, and the parser
refuses it with a message the model sees on its retry.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from agentlib.models.base import FINAL_ANSWER, Message, ModelResponse, OutputSchema
from agentlib.step_format import StepFormat, extract_json

__all__ = ["Request", "agenerate_tool_first"]

_CHOICE_TOKENS = 160  # a bounded thought and a name: the step format bounds the thought

Request = Callable[[list[Message], OutputSchema, "int | None", bool], Awaitable[ModelResponse]]
"""One model request: `(messages, output, max_tokens, stream)`. The loop passes its own
(`Run.call_model` with the attempt's sampling), so both requests of a retry are sampled as a
joint step's retry is, and traced, budgeted and checkpointed the same way."""


async def agenerate_tool_first(
    request: Request,
    step_format: StepFormat,
    messages: Sequence[Message],
    *,
    max_tokens: int | None,
) -> ModelResponse:
    """Generate one step tool-first (see the module docs); the usage of both calls is summed.

    `step_format` is the attempt's: after an invalid attempt the loop hands the narrowed one
    (halved bounds, refused values excluded), and the chosen branch keeps its narrowing.
    """
    choice = await request(
        _with_tools(messages, step_format, _compact_tools(step_format)),
        choice_output(step_format),
        min(max_tokens or _CHOICE_TOKENS, _CHOICE_TOKENS),
        False,  # the choice is not the step: only the step's text is streamed
    )
    read = read_choice(step_format, choice.text)
    if read is None:
        return choice
    name, thought = read
    narrowed = step_format.only(None if name == FINAL_ANSWER else name)
    step = await request(
        _with_tools(messages, step_format, narrowed.describe_tools()),
        branch_output(narrowed, name, thought),
        max_tokens,
        True,
    )
    return ModelResponse(
        text=step.text,
        path=step.path,
        input_tokens=choice.input_tokens + step.input_tokens,
        output_tokens=choice.output_tokens + step.output_tokens,
        model_name=step.model_name,
        finish_reason=step.finish_reason,
    )


def choice_output(step_format: StepFormat) -> OutputSchema:
    """The choice's schema: the step's opening, up to and including the branch name."""
    names = [*step_format.tool_names, *step_format.handoff_names, FINAL_ANSWER]
    action: dict[str, Any] = {
        "type": "object",
        "properties": {step_format.name_key: {"type": "string", "enum": names}},
        "required": [step_format.name_key],
        "additionalProperties": False,
    }
    if step_format.parallel_calls > 1:
        action = {"type": "array", "items": action, "minItems": 1, "maxItems": 1}

    def opening(step_schema: Mapping[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        if step_format.options.thought == "before":
            properties["thought"] = step_schema["properties"]["thought"]
        properties[step_format.action_key] = action
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }

    # The constraint's thought is the step constraint's (bounded in bytes, as in a step).
    return OutputSchema(
        "agent_step_choice",
        opening(step_format.output.schema),
        constraint=opening(step_format.output.enforced),
    )


def read_choice(step_format: StepFormat, text: str) -> tuple[str, str] | None:
    """`(branch name, thought)` from the choice's reply, `None` when it names no branch."""
    try:
        data = extract_json(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    action = data.get(step_format.action_key)
    if isinstance(action, list) and action:
        action = action[0]
    name = action.get(step_format.name_key) if isinstance(action, dict) else None
    known = {*step_format.tool_names, *step_format.handoff_names, FINAL_ANSWER}
    thought = data.get("thought", "")
    if name not in known or not isinstance(thought, str):
        return None
    return str(name), thought


def branch_output(narrowed: StepFormat, name: str, thought: str) -> OutputSchema:
    """The narrowed format's step schema with only `name`'s branch, and the thought fixed.

    Its stricter constraint (`OutputSchema.constraint`) is narrowed the same way.
    """
    return OutputSchema(
        "agent_step",
        _only_branch(narrowed, narrowed.output.schema, name, thought),
        actions=narrowed.output.actions,
        constraint=_only_branch(narrowed, narrowed.output.enforced, name, thought),
    )


def _only_branch(
    narrowed: StepFormat, step_schema: Mapping[str, Any], name: str, thought: str
) -> dict[str, Any]:
    schema = copy.deepcopy(dict(step_schema))
    action = schema["properties"][narrowed.action_key]
    keep = [branch for branch in action["anyOf"] if _names(branch, narrowed.name_key) == {name}]
    action["anyOf"] = keep or action["anyOf"]
    if "thought" in schema["properties"] and narrowed.options.thought == "before":
        schema["properties"]["thought"] = {"type": "string", "const": thought}
    return schema


def _names(branch: dict[str, Any], name_key: str) -> set[str]:
    """The branch names a (possibly array) branch schema admits."""
    if branch.get("type") == "array":
        items = branch["items"]
        return set().union(*(_names(item, name_key) for item in items.get("anyOf", [items])))
    const = branch.get("properties", {}).get(name_key, {}).get("const")
    return {const} if isinstance(const, str) else set()


def _compact_tools(step_format: StepFormat) -> str:
    """The tools by name and description only, for the choice."""
    lines = [f"- {key[0]}: {key[1] or '(no description)'}" for key in _tool_keys(step_format)]
    return "\n".join(lines) or "(no tools: answer directly)"


def _tool_keys(step_format: StepFormat) -> list[tuple[str, str]]:
    branches = step_format.output.actions.branches if step_format.output.actions else ()
    return [(b.name, b.description) for b in branches if not b.is_final]


def _with_tools(messages: Sequence[Message], step_format: StepFormat, tools: str) -> list[Message]:
    """The messages with the system prompt's tool list replaced by `tools`."""
    listed = step_format.describe_tools()
    out = list(messages)
    if out and out[0].role == "system" and listed in out[0].content:
        out[0] = Message(role="system", content=out[0].content.replace(listed, tools, 1))
    return out

"""What one `OpenAIModel` request carries for its mode, and tools mode's way back.

Per (schema, mode), `prepare` computes the schema-related options once: the strict-compatible
schema (`agentlib._strict`) in a `json_schema` or `json_object` `response_format`, or, in
`tools` mode, one strict function tool per branch of the agent's step (handed over as data,
`OutputSchema.actions`) or one forced function for any other schema. `step_from_calls` turns
the tool calls a server returns into the step's text again, written by the step format itself.

The request itself (messages, token limit, streaming), the `auto` fallback and the check of the
reply stay in `agentlib.models.openai`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentlib import _json
from agentlib._strict import strict_schema
from agentlib._tool_names import safe_tool_names
from agentlib.models.base import OutputSchema, StepActions

__all__ = ["Prepared", "prepare", "schema_name", "step_from_calls"]

JSONSchema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The schema-related part of one request, computed once per (schema, mode)."""

    mode: str
    options: dict[str, Any]
    checked_schema: Mapping[str, Any] | None  # what the server promised to enforce
    actions: StepActions | None = None  # the agent step's branches, in tools mode


def prepare(output: OutputSchema | None, mode: str, keep: frozenset[str]) -> Prepared:
    """The request options that keep a reply to `output` in `mode`.

    Args:
        output: The schema asked for; `None` for free text.
        mode: `json_schema`, `json_object`, `tools` or `prompted`.
        keep: The value keywords the server enforces, kept in the strict schema.
    """
    if output is None or mode == "prompted":
        return Prepared(mode="prompted", options={}, checked_schema=None)
    strict = strict_schema(output.schema, keep=keep)
    if mode == "json_object":
        return Prepared(
            mode=mode,
            options={"response_format": {"type": "json_object", "schema": strict}},
            checked_schema=strict,
        )
    if mode == "json_schema":
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema_name(output.name), "strict": True, "schema": strict},
        }
        return Prepared(
            mode=mode, options={"response_format": response_format}, checked_schema=strict
        )
    return _prepare_tools(output, strict, keep)


def _prepare_tools(output: OutputSchema, strict: JSONSchema, keep: frozenset[str]) -> Prepared:
    """Native tools: one function per step branch, or one forced function for other schemas."""
    mode = "tools"
    actions = output.actions
    if actions is None:
        name = schema_name(output.name)
        function = {"name": name, "parameters": strict, "strict": True}
        forced = {
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": name}},
        }
        return Prepared(mode=mode, options=forced, checked_schema=strict)
    tools = []
    safe_names = safe_tool_names(branch.name for branch in actions.branches)
    for branch in actions.branches:
        function = {
            "name": safe_names[branch.name],
            "description": branch.description,
            "parameters": strict_schema(branch.parameters, keep=keep),
            "strict": True,
        }
        tools.append({"type": "function", "function": function})
    options: dict[str, Any] = {
        "tools": tools,
        "tool_choice": "required",
        # Strict schemas are not guaranteed for parallel calls: allow them only when a step
        # may hold several actions.
        "parallel_tool_calls": actions.parallel_calls > 1,
    }
    return Prepared(mode=mode, options=options, checked_schema=strict, actions=actions)


def schema_name(name: str) -> str:
    """`name` as the API accepts it for a schema or function: `[A-Za-z0-9_-]`, 64 at most."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return cleaned or "output"


def step_from_calls(
    content: str, calls: Sequence[tuple[str, str | None]], actions: StepActions
) -> str:
    """Turn native tool calls back into the step's text (the step format writes it)."""
    # Tools were sent under names the server accepts (`math.factorial` as `math_factorial`).
    safe_names = safe_tool_names(branch.name for branch in actions.branches)
    original = {sent: name for name, sent in safe_names.items()}
    decoded: list[tuple[str, Mapping[str, Any]]] = []
    for sent_name, raw_arguments in calls:
        try:
            arguments = _json.loads(raw_arguments or "{}")
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return raw_arguments or ""  # left for the caller's validation to report
        decoded.append((original.get(sent_name, sent_name), arguments))
    return actions.assemble(content, decoded)

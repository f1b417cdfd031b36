"""What the loop shows the model, apart from the step schema.

The system prompt, the echo of each accepted step, the observation messages, and the history
fitted to the context window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentlib._prompts import template
from agentlib.actions import FINAL_ANSWER, ParsedStep
from agentlib.models.base import Message
from agentlib.steps import Observation
from agentlib.tool import Tool

__all__ = ["echo_step", "fit_to_context", "observation_message", "render_system_prompt"]

SHORTENED = "…[shortened to fit the context: {total} characters]"
CHARS_PER_TOKEN = 4  # a deliberate over-estimate for English and code; keeps prompts in budget


def render_system_prompt(
    tools: Sequence[Tool],
    *,
    instructions: str | None,
    parallel_calls: int,
    answer_schema: dict[str, Any],
) -> str:
    """The system prompt: instructions, each tool with its arguments, the step format."""
    lines = []
    for item in tools:
        schema = json.dumps(item.parameters.get("properties", {}), separators=(",", ":"))
        lines.append(
            f"- {item.name}: {item.description or '(no description)'}\n  arguments: {schema}"
        )
    tool_text = "\n".join(lines) if lines else "(no tools: answer directly)"
    if parallel_calls > 1:
        step_format = (
            '{"thought": "...", "actions": [{"tool": "<tool name>", "arguments": {...}}, ...]}'
            f" (at most {parallel_calls} actions; they run at the same time)"
        )
    else:
        step_format = '{"thought": "...", "action": {"tool": "<tool name>", "arguments": {...}}}'
    return template("react").substitute(
        instructions=instructions or "",
        step_format=step_format,
        tools=tool_text,
        answer_schema=json.dumps(answer_schema, separators=(",", ":")),
    )


def echo_step(parsed: ParsedStep, *, parallel_calls: int) -> str:
    """The accepted step as compact JSON, as the model will see it in the history."""
    if parsed.is_final:
        action: Any = {"tool": FINAL_ANSWER, "answer": _jsonable(parsed.answer)}
    else:
        action = [{"tool": name, "arguments": args} for name, args in parsed.calls]
        if parallel_calls == 1:
            action = action[0]
    key = "actions" if parallel_calls > 1 else "action"
    return json.dumps({"thought": parsed.thought, key: action}, default=str, ensure_ascii=False)


def observation_message(observations: Sequence[Observation], *, repeated: bool = False) -> str:
    """The user message that carries a step's observations back to the model."""
    parts = []
    for observation in observations:
        status = "error" if observation.is_error else "result"
        parts.append(f"Observation ({observation.tool_name} {status}):\n{observation.content}")
    if repeated:
        # Small models (seen with SmolLM2-135M) loop on a call whose result they already have;
        # the loop stops them after max_repeated_calls, and this tells them why first.
        parts.append(
            "You already made this exact call and got this result. Do not repeat it: "
            "give the final_answer now, or try something different."
        )
    return "\n\n".join(parts)


def fit_to_context(
    messages: list[Message], *, context_window: int, reserve_tokens: int, first: int
) -> list[Message]:
    """Shorten observations (oldest first, visibly) until the prompt fits the context window.

    Only messages from index `first` on are shortened: the system prompt, the conversation's
    history (already fitted by its memory strategy) and the task stay whole, and so does the
    newest message.
    """
    budget_chars = max(1, context_window - reserve_tokens) * CHARS_PER_TOKEN
    total = sum(len(message.content) for message in messages)
    if total <= budget_chars:
        return messages
    fitted = list(messages)
    for keep in (400, 100, 0):
        for position in range(first, len(fitted) - 1):
            message = fitted[position]
            if message.role != "user" or len(message.content) <= keep + 80:
                continue
            shortened = message.content[:keep] + SHORTENED.format(total=len(message.content))
            total -= len(message.content) - len(shortened)
            fitted[position] = Message(role="user", content=shortened)
            if total <= budget_chars:
                return fitted
    return fitted


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return value

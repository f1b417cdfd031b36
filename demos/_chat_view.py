"""How a run's events show in the chat: `LiveView` updates the messages as events arrive.

`step_preview` reads a step's partial JSON while it streams; `run_footer` is the message that
closes a run (its details, or why it stopped). The chat tab (`chat.py`) and the triage tab use
them; Gradio's event wiring stays in those tabs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import (
    ApprovalRequestEvent,
    ErrorEvent,
    FinalAnswerEvent,
    RunFinishedEvent,
    StepStartedEvent,
    TextEvent,
    ThoughtEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from agentlib.steps import HandoffEvent

_RESULT_PREVIEW = 1500
_TITLE_PREVIEW = 70
FINAL_ANSWER = "final_answer"
"""The step format's name for the answer branch (what the preview looks for)."""


def _fence(text: str, language: str = "") -> str:
    return f"```{language}\n{text.replace('```', '` ` `')}\n```"


def step_preview(text: str) -> tuple[str, str | None, str | None]:
    """What a step's partial JSON shows so far: the thought, the tool named, the answer text.

    Read leniently (`pydantic_core.from_json` with partial strings): a piece that does not parse
    yet shows nothing rather than an error.
    """
    from pydantic_core import from_json

    try:
        value = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return "", None, None
    if not isinstance(value, dict):
        return "", None, None
    thought = value.get("thought")
    action = value.get("action")
    if action is None and isinstance(value.get("actions"), list) and value["actions"]:
        action = value["actions"][0]
    tool = action.get("tool") if isinstance(action, dict) else None
    answer = action.get("answer") if isinstance(action, dict) else None
    return (
        thought if isinstance(thought, str) else "",
        tool if isinstance(tool, str) else None,
        answer if isinstance(answer, str) and tool == FINAL_ANSWER else None,
    )


def _shorten(text: str, limit: int = _TITLE_PREVIEW) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class LiveView:
    """The chat messages of one run, updated in place as its events arrive."""

    messages: list[gr.ChatMessage]
    status: str = "Starting…"
    began: dict[int, float] = field(default_factory=dict)
    text: dict[int, str] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    step_message: dict[int, gr.ChatMessage] = field(default_factory=dict)
    answer: gr.ChatMessage | None = None
    first_text_at: float | None = None
    start: int = -1
    """Where this run's messages begin: earlier turns' are Gradio's dicts, and call ids
    (`call_1`, ...) start again in every run, so only this run's messages are searched."""

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = len(self.messages)

    def show(self, event: object) -> None:
        """Update the messages and the status line for one agent event."""
        now = time.perf_counter()
        if isinstance(event, StepStartedEvent):
            self.began[event.step] = now
            self.text[event.step] = ""
            message = gr.ChatMessage(
                content="",
                metadata={"title": f"Step {event.step} · thinking…", "status": "pending"},
            )
            self.step_message[event.step] = message
            self.messages.append(message)
            self.status = f"Step {event.step} · thinking…"
        elif isinstance(event, TextEvent):
            self._text(event, now)
        elif isinstance(event, ThoughtEvent):
            self._thought(event, now)
        elif isinstance(event, ToolCallEvent):
            self._call(event)
        elif isinstance(event, ToolResultEvent):
            self._result(event)
        elif isinstance(event, ApprovalRequestEvent):
            self._waiting(event)
        elif isinstance(event, HandoffEvent):
            self.messages.append(
                gr.ChatMessage(
                    content=f"**{event.from_agent}** handed the question to **{event.to_agent}**.",
                    metadata={
                        "title": f"Handoff · {event.from_agent} → {event.to_agent}",
                        "status": "done",
                    },
                )
            )
            self.status = f"Step {event.step} · {event.to_agent} takes over…"
        elif isinstance(event, ErrorEvent):
            note = "asking the model again" if event.will_retry else "giving up"
            self.messages.append(
                gr.ChatMessage(
                    content=event.message,
                    metadata={
                        "title": f"Step {event.step} · invalid step, {note}",
                        "status": "done",
                    },
                )
            )
        elif isinstance(event, FinalAnswerEvent):
            self._final(event)

    def _text(self, event: TextEvent, now: float) -> None:
        if self.first_text_at is None:
            self.first_text_at = now
        if self.attempts.get(event.step, 0) != event.attempt:  # a retry: preview afresh
            self.attempts[event.step] = event.attempt
            self.text[event.step] = ""
        so_far = self.text.get(event.step, "") + event.delta
        self.text[event.step] = so_far
        thought, tool, answer = step_preview(so_far)
        message = self.step_message.get(event.step)
        if message is None:
            return
        message.content = thought
        if tool == FINAL_ANSWER:
            message.metadata["title"] = f"Step {event.step} · writing the answer…"
            self.status = f"Step {event.step} · writing the answer…"
        elif tool:
            message.metadata["title"] = f"Step {event.step} · calling {tool}…"
            self.status = f"Step {event.step} · calling tool {tool}…"
        if answer is not None:
            if self.answer is None:
                self.answer = gr.ChatMessage(content="")
                self.messages.append(self.answer)
            self.answer.content = answer

    def _thought(self, event: ThoughtEvent, now: float) -> None:
        message = self.step_message.get(event.step)
        if message is None:
            return
        message.content = event.thought or "(no thought)"
        preview = _shorten(event.thought) if event.thought else "(no thought)"
        message.metadata["title"] = f"Step {event.step} · {preview}"
        message.metadata["status"] = "done"
        message.metadata["duration"] = round(now - self.began.get(event.step, now), 1)

    def _call_message(self, call_id: str) -> gr.ChatMessage | None:
        for message in reversed(self.messages[self.start :]):
            metadata = message.metadata
            if isinstance(metadata, dict) and metadata.get("id") == call_id:
                return message
        return None

    def _call(self, event: ToolCallEvent) -> None:
        arguments = json.dumps(dict(event.call.arguments), ensure_ascii=False, indent=1)
        title = f"Tool call · {event.call.tool_name} (running…)"
        message = self._call_message(event.call.id)  # shown already, waiting for approval
        if message is not None:
            message.content = _fence(arguments, "json")
            message.metadata["title"] = title
        else:
            self.messages.append(
                gr.ChatMessage(
                    content=_fence(arguments, "json"),
                    metadata={"title": title, "id": event.call.id, "status": "pending"},
                )
            )
        self.status = f"Step {event.step} · running tool {event.call.tool_name}…"

    def _waiting(self, event: ApprovalRequestEvent) -> None:
        call = event.request.call
        arguments = json.dumps(dict(call.arguments), ensure_ascii=False, indent=1)
        self.messages.append(
            gr.ChatMessage(
                content=_fence(arguments, "json"),
                metadata={
                    "title": f"Tool call · {call.tool_name} (waiting for your approval)",
                    "id": call.id,
                    "status": "pending",
                },
            )
        )
        self.status = f"Step {event.step} · {call.tool_name} waits for your approval…"

    def decided(self, call_id: str, text: str) -> None:
        """Note a person's decision on a waiting call's message."""
        message = self._call_message(call_id)
        if message is not None:
            message.content = f"{message.content}\n_{text}_"

    def _result(self, event: ToolResultEvent) -> None:
        observation = event.observation
        message = self._call_message(observation.call_id)
        if message is None:
            return
        text = observation.content
        if len(text) > _RESULT_PREVIEW:
            text = text[:_RESULT_PREVIEW] + f"\n… ({len(observation.content)} characters)"
        label = "Error" if observation.is_error else "Result"
        message.content = f"{message.content}\n**{label}**\n{_fence(text)}"
        metadata = message.metadata
        metadata["status"] = "done"
        metadata["duration"] = round(observation.duration, 2)
        failed = " failed" if observation.is_error else ""
        metadata["title"] = f"Tool call · {observation.tool_name}{failed} → {_shorten(text, 40)}"

    def _final(self, event: FinalAnswerEvent) -> None:
        output = event.output
        text = (
            output if isinstance(output, str) else _fence(json.dumps(output, default=str), "json")
        )
        if self.answer is None:
            self.answer = gr.ChatMessage(content="")
            self.messages.append(self.answer)
        self.answer.content = text or "(empty answer)"
        self.status = "✓ Answered."


def render_event(event: object, messages: list[gr.ChatMessage]) -> None:
    """Append (or update) the chat messages that show one agent event (no streaming state)."""
    LiveView(messages, start=0).show(event)


def run_footer(event: RunFinishedEvent) -> gr.ChatMessage:
    result = event.result
    paths = ", ".join(result.generation_paths) or "none"
    summary = (
        f"{len(result.steps)} step(s) · {result.duration:.1f} s · "
        f"{result.usage.total_tokens} tokens · generation: {paths}"
    )
    if result.ok:
        return gr.ChatMessage(content=summary, metadata={"title": "Run details", "status": "done"})
    reasons = {
        "cancelled": "Stopped.",
        "max_steps": "The agent ran out of steps without an answer.",
        "time_budget": "The agent ran out of time.",
        "invalid_output": "The model kept producing invalid steps.",
        "model_error": "The model failed.",
        "repeated_call": "The agent was repeating itself, so it was stopped.",
        "token_budget": "The agent used up its token budget.",
        "approval_required": "A tool call waits for your approval (below).",
    }
    error = "" if result.stop_reason == "approval_required" else result.error or ""
    text = f"{reasons.get(result.stop_reason, result.stop_reason)} {error}".strip()
    return gr.ChatMessage(content=f"_{text}_ ({summary})")

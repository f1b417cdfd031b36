"""The chat tab's approval panel: a paused run's pending call, with Approve / Deny.

A run whose tool call needs approval stops with `approval_required`; the tab keeps the paused
`RunResult` with its agent, shows one pending call at a time (tool, arguments to edit, a reason
for a denial) and, once every pending call has a decision, resumes the run with
`agent.stream_resume(result, decisions)`. Nothing here decides: a person does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import Agent, ApprovalRequest, Approve, Deny, RunResult
from agentlib.approval import Decision

DEFAULT_REASON = "the user denied this call"


@dataclass
class PausedRun:
    """A chat run waiting for decisions, and the decisions made so far."""

    agent: Agent[Any]
    result: RunResult[Any]
    task: str
    view: Any
    """The chat's `LiveView` of the run, which the resumed run goes on updating."""
    note: Any
    """The chat message that says the run waits (rewritten when it goes on)."""
    decisions: dict[str, Decision] = field(default_factory=dict)

    @property
    def waiting(self) -> ApprovalRequest | None:
        """The first pending call without a decision yet, or `None` when all are decided."""
        return next(
            (item for item in self.result.pending if item.call.id not in self.decisions), None
        )


def panel_updates(paused: PausedRun | None) -> tuple[Any, Any, Any, Any]:
    """Updates for the panel's group, its pending-call text, arguments box and reason box."""
    request = paused.waiting if paused is not None else None
    if paused is None or request is None:
        return gr.update(visible=False), "", "", ""
    total = len(paused.result.pending)
    number = len(paused.decisions) + 1
    of = f" ({number} of {total})" if total > 1 else ""
    about = f"\n\n_{request.description}_" if request.description else ""
    text = (
        f"**Approval needed{of}**: the agent wants to run **{request.call.tool_name}** "
        f"(call `{request.call.id}`, step {request.step}). It has not run yet.{about}"
    )
    arguments = json.dumps(dict(request.call.arguments), ensure_ascii=False, indent=1)
    return gr.update(visible=True), text, arguments, ""


def decision(request: ApprovalRequest, approve: bool, arguments: str, reason: str) -> Decision:
    """The person's decision: `Deny(reason)`, `Approve()`, or `Approve(arguments=...)` when
    the arguments were edited.

    Raises:
        ValueError: Edited arguments that are not a JSON object.
    """
    if not approve:
        return Deny(reason.strip() or DEFAULT_REASON)
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON ({exc.msg}); fix them") from exc
    if not isinstance(value, dict):
        raise ValueError('the arguments must be a JSON object, like {"expression": "2 * 3"}')
    sent = json.loads(json.dumps(dict(request.call.arguments), default=str))
    return Approve() if value == sent else Approve(arguments=value)


def describe(decided: Decision) -> str:
    """How a decision is shown in the chat."""
    if isinstance(decided, Deny):
        return f"denied: {decided.reason}"
    if decided.arguments is not None:
        shown = json.dumps(dict(decided.arguments), ensure_ascii=False)
        return f"approved with edited arguments {shown}"
    return "approved"

"""The loop's side of approval: which calls wait, asking the approver, pausing, resuming.

Between a step's acceptance and its tool calls, `requests_for` finds the calls whose tool
needs approval and `decide` emits an `ApprovalRequestEvent` for each, then either gets
decisions from the approver or raises `Paused` (the run stops with `approval_required`).
`load` reads a run's checkpoint back (paused for approval, or running when its process died)
and checks it, and the caller's decisions, against the agent before anything runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agentlib import _checkpoint
from agentlib.approval import Approve, Approver, Decision, Deny, ask, expired, timeout_reason
from agentlib.errors import ConfigurationError, ToolError
from agentlib.step_format import ParsedStep
from agentlib.steps import ApprovalRequest, ApprovalRequestEvent, Observation, ToolCall
from agentlib.tool import Tool

__all__ = ["Paused", "Resolved", "Resumed", "decide", "edited", "load", "requests_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A decision checked against its tool: what the loop does with the call."""

    approved: bool
    label: str
    """`approved`, `edited`, `denied` or `timed_out` (the `agentlib.approval` span attribute)."""
    arguments: Mapping[str, Any] | None = None
    """The edited arguments as given (recorded in the step), or `None`."""
    values: Mapping[str, Any] | None = None
    """The edited arguments as the tool's validated values, or `None`."""
    reason: str | None = None
    """Why the call was denied."""

    def denial(self, call: ToolCall) -> Observation:
        return Observation(
            call_id=call.id,
            tool_name=call.tool_name,
            content=f"denied: {self.reason} (the call did not run)",
            is_error=True,
            error_type="ApprovalDenied",
        )

    def note(self, content: str) -> str:
        if self.arguments is None:
            return content
        shown = json.dumps(dict(self.arguments), ensure_ascii=False, default=str)
        return f"(a person changed the arguments before the call ran: {shown})\n{content}"

    def stored(self) -> tuple[bool, dict[str, Any] | None, str | None]:
        return self.approved, dict(self.arguments) if self.arguments else None, self.reason


class Paused(Exception):
    """Raised by `decide` when calls wait for a person: the run stops with `approval_required`."""

    def __init__(self, requests: Sequence[ApprovalRequest], decided: Mapping[str, Resolved]):
        self.requests = tuple(requests)
        self.decided = dict(decided)
        self.checkpoint: dict[str, Any] | None = None
        """The paused run's state, filled in by the loop."""
        names = ", ".join(f"{r.call.id} ({r.call.tool_name})" for r in self.requests)
        super().__init__(f"waiting for approval of {len(self.requests)} call(s): {names}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed:
    """A checkpoint read back, with every pending call's decision resolved."""

    checkpoint: _checkpoint.Checkpoint
    decisions: Mapping[str, Resolved]


def resolve(decision: Decision, call: ToolCall, item: Tool) -> Resolved:
    """Check one decision against its tool.

    Raises:
        ToolError: Edited arguments the tool's schema rejects.
    """
    if isinstance(decision, Deny):
        return Resolved(approved=False, label="denied", reason=decision.reason)
    if decision.arguments is None:
        return Resolved(approved=True, label="approved")
    values = item.validate(decision.arguments)
    return Resolved(approved=True, label="edited", arguments=decision.arguments, values=values)


def _timed_out(timeout: float | None) -> Resolved:
    return Resolved(approved=False, label="timed_out", reason=timeout_reason(timeout or 0.0))


def requests_for(
    index: int,
    accepted: Any,
    tools: Mapping[str, Tool],
    decided: Mapping[str, Resolved],
    always: frozenset[str] = frozenset(),
) -> list[ApprovalRequest]:
    """The step's calls that wait for a decision (`accepted`: the loop's accepted step)."""
    calls: Sequence[ToolCall] = accepted.calls
    parsed: ParsedStep = accepted.parsed
    if parsed.is_final:
        return []
    return [
        ApprovalRequest(
            call=call,
            step=index,
            requested_at=time.time(),
            description=tools[call.tool_name].description,
        )
        for call, spec in zip(calls, parsed.calls, strict=True)
        if call.id not in decided
        and (call.tool_name in always or tools[call.tool_name].needs_approval(spec.values))
    ]


async def decide(
    requests: Sequence[ApprovalRequest],
    tools: Mapping[str, Tool],
    decided: dict[str, Resolved],
    approver: Approver | None,
    timeout: float | None,
    guard: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None,
) -> AsyncIterator[ApprovalRequestEvent]:
    """Emit an event per request; fill `decided` from the approver, or raise `Paused`.

    `guard` wraps the wait for the approver (the loop's cancel token and time budget).
    """
    for request in requests:
        yield ApprovalRequestEvent(step=request.step, request=request)
    if approver is None:
        raise Paused(requests, decided)
    asking = ask(approver, requests, timeout)
    # The run's cancel token and time budget apply while a person is asked.
    answers: dict[str, Decision | None] = await (guard(asking) if guard else asking)
    waiting = []
    for request in requests:
        answer = answers[request.call.id]
        if answer is None:
            waiting.append(request)
            continue
        try:
            decided[request.call.id] = resolve(answer, request.call, tools[request.call.tool_name])
        except ToolError as exc:
            decided[request.call.id] = Resolved(
                approved=False, label="denied", reason=f"the edited arguments were invalid: {exc}"
            )
    if waiting:
        raise Paused(waiting, decided)


def edited(calls: tuple[ToolCall, ...], decided: Mapping[str, Resolved]) -> tuple[ToolCall, ...]:
    """The calls as they will run: with the edited arguments where a person changed them."""
    if not decided:
        return calls
    return tuple(
        replace(call, arguments=dict(decision.arguments))
        if (decision := decided.get(call.id)) is not None and decision.arguments is not None
        else call
        for call in calls
    )


def _check_resumable(checkpoint: _checkpoint.Checkpoint, tool_names: set[str]) -> None:
    """Raise `ConfigurationError` for a finished run or one of an agent with other tools."""
    name = f"run {checkpoint.run_id!r}" if checkpoint.run_id else "the run"
    if checkpoint.status == "finished":
        raise ConfigurationError(
            f"{name} already finished ({checkpoint.stop_reason}"
            f"{': ' + checkpoint.error if checkpoint.error else ''}); there is nothing to "
            "resume: start a new run"
        )
    if checkpoint.tools is not None and set(checkpoint.tools) != tool_names:
        missing = sorted(set(checkpoint.tools) - tool_names)
        added = sorted(tool_names - set(checkpoint.tools))
        raise ConfigurationError(
            f"{name} was checkpointed by an agent with other tools (this agent lacks "
            f"{', '.join(missing) or 'none'}; has new {', '.join(added) or 'none'}); "
            "resume it with an agent that has the tools of the one that ran it"
        )


def load(
    data: Mapping[str, Any],
    decisions: Mapping[str, Decision],
    tools: Sequence[Tool],
    timeout: float | None,
) -> Resumed:
    """Read a checkpoint and resolve a decision for each of its pending calls.

    Raises:
        ConfigurationError: Not a checkpoint; a finished run; a checkpoint of an agent with
            other tools; a missing, unknown or invalid decision.
    """
    checkpoint = _checkpoint.load(data)
    by_name = {item.name: item for item in tools}
    _check_resumable(checkpoint, set(by_name))
    step_calls = checkpoint.step.calls if checkpoint.step is not None else ()
    pending = {request.call.id: request for request in checkpoint.pending}
    unknown = sorted(set(decisions) - set(pending))
    if unknown:
        raise ConfigurationError(
            f"decisions for calls that do not wait for approval: {', '.join(unknown)}; "
            f"pending: {', '.join(pending) or 'none'}"
        )
    for call in step_calls:
        if call.tool_name not in by_name:
            raise ConfigurationError(
                f"the paused step calls tool {call.tool_name!r}, which this agent does not "
                "have; resume with the agent that paused the run"
            )
    resolved: dict[str, Resolved] = {}
    for call_id, (approved, arguments, reason) in checkpoint.decisions.items():
        call = next(c for c in step_calls if c.id == call_id)
        decision: Decision = Approve(arguments) if approved else Deny(reason or "denied")
        resolved[call_id] = resolve(decision, call, by_name[call.tool_name])
    now = time.time()
    missing = []
    for call_id, request in pending.items():
        if expired(request, timeout, now):
            resolved[call_id] = _timed_out(timeout)
        elif call_id in decisions:
            decision = decisions[call_id]
            if not isinstance(decision, Approve | Deny):
                raise ConfigurationError(
                    f"the decision for {call_id} is {decision!r}; use Approve(), "
                    "Approve(arguments={...}) or Deny(reason)"
                )
            try:
                resolved[call_id] = resolve(decision, request.call, by_name[request.call.tool_name])
            except ToolError as exc:
                raise ConfigurationError(f"the edited arguments for {call_id}: {exc}") from exc
        else:
            missing.append(f"{call_id} ({request.call.tool_name})")
    if missing:
        raise ConfigurationError(
            f"no decision for {', '.join(missing)}: pass Approve() or Deny(reason) for each "
            "pending call"
        )
    return Resumed(checkpoint=checkpoint, decisions=resolved)

"""A run's state as versioned JSON data: what `Agent.resume` continues from.

One format for every checkpoint: the one a run writes to its agent's checkpoint store after
each step (`Agent(checkpoints=...)`), and the one of a run paused for approval
(`RunResult.checkpoint`, also kept by a stored conversation with the turn). Read back in any
process. Everything is plain JSON: the run's id and status (`running`, `paused`, `finished`),
the tools it was offered, the messages the model saw, the finished steps (in the conversation
format's step JSON), usage and budgets spent, and the open step, if any: its raw model output
(parsed again against the live tools on resume), its calls, the observations of the calls that
finished, the calls waiting for a decision and the decisions already made. A call of the open
step without an observation was in flight when the checkpoint was written.

Version 1 (kind `paused_run`, written by earlier releases for approval pauses) is still read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agentlib.errors import ConfigurationError
from agentlib.models.base import Message
from agentlib.steps import ApprovalRequest, Observation, Step, ToolCall, Usage

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "OpenStep", "RunStatus", "dump", "load"]

CHECKPOINT_VERSION = 2
"""The version of the checkpoint format this release writes; later releases read it."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _UsageRecord(_Record):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class _CallRecord(_Record):
    id: str
    tool_name: str
    arguments: dict[str, Any]


class _ObservationRecord(_Record):
    call_id: str
    tool_name: str
    content: str
    is_error: bool = False
    error_type: str | None = None
    duration: float = 0.0


class _StepRecord(_Record):
    index: int
    raw_output: str
    retries: int = 0
    generation_path: str = ""
    usage: _UsageRecord = _UsageRecord()
    model_seconds: float = 0.0
    calls: list[_CallRecord]
    observations: list[_ObservationRecord] = []


class _RequestRecord(_Record):
    call_id: str
    requested_at: float
    description: str = ""


class _DecisionRecord(_Record):
    call_id: str
    approved: bool
    arguments: dict[str, Any] | None = None
    reason: str | None = None


class _CheckpointRecord(_Record):
    version: int
    kind: Literal["paused_run", "run"]
    run_id: str = ""
    agent_name: str = ""
    status: RunStatus = "paused"
    tools: list[str] | None = None
    stop_reason: str | None = None
    error: str | None = None
    task: str
    messages: list[dict[str, str]]
    first_shortenable: int
    steps: list[dict[str, Any]]
    usage: _UsageRecord
    paths: list[str]
    next_call_id: int
    last_signature: str | None = None
    repeats: int = 0
    elapsed: float = 0.0
    step: _StepRecord | None = None
    pending: list[_RequestRecord] = []
    decisions: list[_DecisionRecord] = []
    trace: dict[str, str] | None = None


RunStatus = Literal["running", "paused", "finished"]
"""A checkpointed run: still going (or its process died), paused for approval, or ended."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenStep:
    """The step in progress: the model's accepted output, its calls and the finished ones."""

    index: int
    raw_output: str
    retries: int
    generation_path: str
    usage: Usage
    model_seconds: float
    calls: tuple[ToolCall, ...]
    observations: tuple[Observation, ...] = ()
    """The observations of the calls that finished (a call without one was in flight)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A run, read back from its JSON."""

    run_id: str
    """The run's id (empty in a version 1 checkpoint)."""
    agent_name: str
    status: RunStatus
    tools: tuple[str, ...] | None
    """The tools the run was offered (`None` in a version 1 checkpoint)."""
    stop_reason: str | None
    error: str | None
    task: str
    messages: tuple[Message, ...]
    first_shortenable: int
    steps: tuple[Step, ...]
    usage: Usage
    paths: tuple[str, ...]
    next_call_id: int
    last_signature: str | None
    repeats: int
    elapsed: float
    step: OpenStep | None
    pending: tuple[ApprovalRequest, ...]
    decisions: Mapping[str, tuple[bool, dict[str, Any] | None, str | None]]
    """Decisions made before the pause: call id -> (approved, edited arguments, reason)."""
    trace: Mapping[str, str] | None


def _usage(record: _UsageRecord) -> Usage:
    return Usage(**record.model_dump())


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }


def dump(
    *,
    run_id: str,
    agent_name: str,
    status: RunStatus,
    tools: tuple[str, ...],
    task: str,
    messages: list[Message],
    first_shortenable: int,
    steps: list[Step],
    usage: Usage,
    paths: list[str],
    next_call_id: int,
    last_signature: str | None,
    repeats: int,
    elapsed: float,
    step: OpenStep | None = None,
    pending: tuple[ApprovalRequest, ...] = (),
    decisions: Mapping[str, tuple[bool, dict[str, Any] | None, str | None]] | None = None,
    trace: Mapping[str, str] | None = None,
    stop_reason: str | None = None,
    error: str | None = None,
    dumped_steps: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run as JSON data (see the module docstring).

    `dumped_steps`: `steps` already in their JSON form (a writer keeps them, as steps never
    change once recorded, so each checkpoint does not convert every step again).
    """
    from agentlib.memory._format import dump_step, jsonable

    return {
        "version": CHECKPOINT_VERSION,
        "kind": "run",
        "run_id": run_id,
        "agent_name": agent_name,
        "status": status,
        "tools": list(tools),
        "stop_reason": stop_reason,
        "error": error,
        "task": task,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "first_shortenable": first_shortenable,
        "steps": list(dumped_steps)
        if dumped_steps is not None
        else [dump_step(item) for item in steps],
        "usage": _usage_dict(usage),
        "paths": list(paths),
        "next_call_id": next_call_id,
        "last_signature": last_signature,
        "repeats": repeats,
        "elapsed": elapsed,
        "step": _step_dict(step) if step is not None else None,
        "pending": [
            {
                "call_id": r.call.id,
                "requested_at": r.requested_at,
                "description": r.description,
            }
            for r in pending
        ],
        "decisions": [
            {
                "call_id": call_id,
                "approved": approved,
                "arguments": jsonable(arguments),
                "reason": reason,
            }
            for call_id, (approved, arguments, reason) in (decisions or {}).items()
        ],
        "trace": dict(trace) if trace else None,
    }


def _step_dict(step: OpenStep) -> dict[str, Any]:
    from agentlib.memory._format import jsonable

    return {
        "index": step.index,
        "raw_output": step.raw_output,
        "retries": step.retries,
        "generation_path": step.generation_path,
        "usage": _usage_dict(step.usage),
        "model_seconds": step.model_seconds,
        "calls": [
            {"id": c.id, "tool_name": c.tool_name, "arguments": jsonable(dict(c.arguments))}
            for c in step.calls
        ],
        "observations": [
            {
                "call_id": o.call_id,
                "tool_name": o.tool_name,
                "content": o.content,
                "is_error": o.is_error,
                "error_type": o.error_type,
                "duration": o.duration,
            }
            for o in step.observations
        ],
    }


def load(data: Any) -> Checkpoint:
    """Read a checkpoint written by `dump` (by this or an earlier release).

    Raises:
        ConfigurationError: `data` is not a run's checkpoint, or a newer release wrote it.
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"a checkpoint is a JSON object (RunResult.checkpoint), got {type(data).__name__}"
        )
    version = data.get("version")
    if not isinstance(version, int) or data.get("kind") not in ("run", "paused_run"):
        raise ConfigurationError(
            "this is not a run's checkpoint (it needs 'version' and kind 'run'); pass a run id, "
            "the RunResult of a run that stopped with approval_required, or its checkpoint"
        )
    if version > CHECKPOINT_VERSION:
        raise ConfigurationError(
            f"the checkpoint uses format version {version}, newer than this agentlib reads "
            f"({CHECKPOINT_VERSION}); upgrade agentlib to resume it"
        )
    try:
        record = _CheckpointRecord.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise ConfigurationError(f"the checkpoint is not valid: {problems}") from None
    from agentlib.memory._format import load_step

    step = _open_step(record.step) if record.step is not None else None
    by_id = {call.id: call for call in step.calls} if step is not None else {}
    unknown = [r.call_id for r in record.pending if r.call_id not in by_id]
    if unknown:
        raise ConfigurationError(f"the checkpoint's pending calls {unknown} are not in its step")
    return Checkpoint(
        run_id=record.run_id,
        agent_name=record.agent_name,
        status=record.status,
        tools=tuple(record.tools) if record.tools is not None else None,
        stop_reason=record.stop_reason,
        error=record.error,
        task=record.task,
        messages=tuple(
            Message(role=m["role"], content=m["content"])  # type: ignore[arg-type]
            for m in record.messages
        ),
        first_shortenable=record.first_shortenable,
        steps=tuple(
            load_step(item, what=f"checkpoint step {n}") for n, item in enumerate(record.steps)
        ),
        usage=_usage(record.usage),
        paths=tuple(record.paths),
        next_call_id=record.next_call_id,
        last_signature=record.last_signature,
        repeats=record.repeats,
        elapsed=record.elapsed,
        step=step,
        pending=tuple(
            ApprovalRequest(
                call=by_id[r.call_id],
                step=step.index if step is not None else 0,
                requested_at=r.requested_at,
                description=r.description,
            )
            for r in record.pending
        ),
        decisions={d.call_id: (d.approved, d.arguments, d.reason) for d in record.decisions},
        trace=record.trace,
    )


def _open_step(record: _StepRecord) -> OpenStep:
    return OpenStep(
        index=record.index,
        raw_output=record.raw_output,
        retries=record.retries,
        generation_path=record.generation_path,
        usage=_usage(record.usage),
        model_seconds=record.model_seconds,
        calls=tuple(ToolCall(**call.model_dump()) for call in record.calls),
        observations=tuple(Observation(**item.model_dump()) for item in record.observations),
    )

"""The paused run's state as versioned JSON data: what `Agent.resume` continues from.

Written when a run pauses for approval (`RunResult.checkpoint`), kept by a stored conversation
with the turn, and read back in any process. Everything is plain JSON: the messages the model
saw, the finished steps (in the conversation format's step JSON), usage and budgets spent, the
paused step (its raw model output, parsed again against the live tools on resume), the calls
waiting for a decision and the decisions already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agentlib.errors import ConfigurationError
from agentlib.models.base import Message
from agentlib.steps import ApprovalRequest, Step, ToolCall, Usage

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "PausedStep", "dump", "load"]

CHECKPOINT_VERSION = 1
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


class _StepRecord(_Record):
    index: int
    raw_output: str
    retries: int = 0
    generation_path: str = ""
    usage: _UsageRecord = _UsageRecord()
    model_seconds: float = 0.0
    calls: list[_CallRecord]


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
    kind: Literal["paused_run"]
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
    step: _StepRecord
    pending: list[_RequestRecord]
    decisions: list[_DecisionRecord] = []
    trace: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PausedStep:
    """The step that waits: the model's accepted output and its calls."""

    index: int
    raw_output: str
    retries: int
    generation_path: str
    usage: Usage
    model_seconds: float
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A paused run, read back from its JSON."""

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
    step: PausedStep
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
    step: PausedStep,
    pending: tuple[ApprovalRequest, ...],
    decisions: Mapping[str, tuple[bool, dict[str, Any] | None, str | None]],
    trace: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The paused run as JSON data (see the module docstring)."""
    from agentlib.memory._format import dump_step, jsonable

    return {
        "version": CHECKPOINT_VERSION,
        "kind": "paused_run",
        "task": task,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "first_shortenable": first_shortenable,
        "steps": [dump_step(item) for item in steps],
        "usage": _usage_dict(usage),
        "paths": list(paths),
        "next_call_id": next_call_id,
        "last_signature": last_signature,
        "repeats": repeats,
        "elapsed": elapsed,
        "step": {
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
        },
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
            for call_id, (approved, arguments, reason) in decisions.items()
        ],
        "trace": dict(trace) if trace else None,
    }


def load(data: Any) -> Checkpoint:
    """Read a checkpoint written by `dump` (by this or an earlier release).

    Raises:
        ConfigurationError: `data` is not a paused run's checkpoint, or a newer release wrote it.
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"a checkpoint is a JSON object (RunResult.checkpoint), got {type(data).__name__}"
        )
    version = data.get("version")
    if not isinstance(version, int) or data.get("kind") != "paused_run":
        raise ConfigurationError(
            "this is not a paused run's checkpoint (it needs 'version' and kind 'paused_run'); "
            "pass the RunResult of a run that stopped with approval_required, or its checkpoint"
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

    calls = tuple(ToolCall(**call.model_dump()) for call in record.step.calls)
    by_id = {call.id: call for call in calls}
    unknown = [r.call_id for r in record.pending if r.call_id not in by_id]
    if unknown:
        raise ConfigurationError(f"the checkpoint's pending calls {unknown} are not in its step")
    return Checkpoint(
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
        step=PausedStep(
            index=record.step.index,
            raw_output=record.step.raw_output,
            retries=record.step.retries,
            generation_path=record.step.generation_path,
            usage=_usage(record.step.usage),
            model_seconds=record.step.model_seconds,
            calls=calls,
        ),
        pending=tuple(
            ApprovalRequest(
                call=by_id[r.call_id],
                step=record.step.index,
                requested_at=r.requested_at,
                description=r.description,
            )
            for r in record.pending
        ),
        decisions={d.call_id: (d.approved, d.arguments, d.reason) for d in record.decisions},
        trace=record.trace,
    )

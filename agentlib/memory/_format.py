"""`Turn`, `LoadProblem` and the versioned JSON format conversations are stored in.

The format is read with pydantic models (`*Record`), so a bad record gets a precise message, and
written with plain dicts. `agentlib.memory` builds on this module and re-exports its public
names; the helpers in `__all__` are shared with the modules of `agentlib.memory`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from agentlib.errors import ConfigurationError
from agentlib.models.base import Message
from agentlib.steps import Observation, RunResult, Step, StopReason, ToolCall, Usage

__all__ = [
    "FORMAT_VERSION",
    "ConversationRecord",
    "LoadProblem",
    "Turn",
    "aware",
    "check_version",
    "dump_step",
    "jsonable",
    "load_step",
    "parse_record",
    "preview",
    "utc_now",
]

FORMAT_VERSION = 1
"""The version of the JSON format written by this release; every later release reads it."""

_STEP_PREVIEW = 200

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (pydantic models and dataclasses dumped; the rest via `str`)."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- the JSON format, read with pydantic so a bad record gets a precise message -------------


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
    thought: str
    calls: list[_CallRecord] = []
    observations: list[_ObservationRecord] = []
    is_final: bool = False
    final_answer: Any = None
    raw_output: str = ""
    retries: int = 0
    generation_path: str = ""
    usage: _UsageRecord = _UsageRecord()
    model_seconds: float = 0.0
    tool_seconds: float = 0.0


class _TurnRecord(_Record):
    id: str
    task: str
    answer: Any = None
    stop_reason: StopReason | None = None
    error: str | None = None
    created_at: datetime
    duration: float = 0.0
    usage: _UsageRecord = _UsageRecord()
    generation_paths: list[str] = []
    metadata: dict[str, Any] = {}
    steps: list[_StepRecord] = []
    checkpoint: dict[str, Any] | None = None


class ConversationRecord(_Record):
    id: str
    created_at: datetime
    metadata: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    turns: list[Any] = []


def check_version(data: Any, what: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{what} is not a JSON object (got {type(data).__name__})")
    version = data.get("version")
    if version is None:
        raise ConfigurationError(
            f"{what} has no 'version' field, so it was not written by agentlib"
        )
    if not isinstance(version, int) or version < 1:
        raise ConfigurationError(f"{what} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigurationError(
            f"{what} uses format version {version}, newer than this agentlib reads "
            f"({FORMAT_VERSION}); upgrade agentlib to read it"
        )


def parse_record(record: type[T], data: Mapping[str, Any], what: str) -> T:
    try:
        return record.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise ConfigurationError(f"{what} is not a valid agentlib record: {problems}") from None


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return _UsageRecord.model_validate(usage, from_attributes=True).model_dump(mode="json")


def _usage(record: _UsageRecord) -> Usage:
    return Usage(**record.model_dump())


def _step_dict(step: Step) -> dict[str, Any]:
    # The record is the format: a Step's fields are read by name (`from_attributes`), and what
    # JSON cannot hold is turned into plain data first, as everywhere in this format.
    record = _StepRecord.model_validate(step, from_attributes=True)
    data = record.model_dump(mode="json", fallback=str)
    data["final_answer"] = jsonable(step.final_answer)
    for call, dumped in zip(step.calls, data["calls"], strict=True):
        dumped["arguments"] = jsonable(dict(call.arguments))
    return data


def _step(record: _StepRecord) -> Step:
    return Step(
        **record.model_dump(exclude={"calls", "observations", "usage", "final_answer"}),
        final_answer=record.final_answer,
        calls=tuple(ToolCall(**call.model_dump()) for call in record.calls),
        observations=tuple(Observation(**item.model_dump()) for item in record.observations),
        usage=_usage(record.usage),
    )


def dump_step(step: Step) -> dict[str, Any]:
    """One step in the format's JSON (shared with the paused-run checkpoint)."""
    return _step_dict(step)


def load_step(data: Mapping[str, Any], what: str = "step") -> Step:
    """A step written by `dump_step`.

    Raises:
        ConfigurationError: The data is not a step.
    """
    return _step(parse_record(_StepRecord, data, what))


# -- turns and conversations ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadProblem:
    """A stored record that could not be read; it was skipped and the others were loaded."""

    row_id: str
    """The record's id: a turn id, a conversation id, or `turns[3]` inside a JSON document."""
    kind: str
    """What the record should have been: `turn` or `conversation`."""
    message: str
    """What is wrong with it."""

    def __str__(self) -> str:
        return f"{self.kind} {self.row_id!r} was skipped: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One run in a conversation: the task, the final answer, the steps, and metadata."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Unique across conversations."""
    task: str
    """The task the run was given."""
    answer: Any = None
    """The final answer as JSON data (a pydantic answer is stored as its JSON dump)."""
    stop_reason: StopReason | None = None
    """How the run ended; `None` while it runs, or if its process died mid-run."""
    error: str | None = None
    """What went wrong, when the run ended without an answer."""
    steps: tuple[Step, ...] = ()
    """The steps, as far as they were saved (tool return values are not stored)."""
    created_at: datetime = field(default_factory=utc_now)
    """When the run started (UTC)."""
    duration: float = 0.0
    """Wall-clock seconds of the run."""
    usage: Usage = field(default_factory=Usage)
    """Tokens and requests of the run."""
    generation_paths: tuple[str, ...] = ()
    """The generation paths the run used."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Your own JSON data about the turn (user id, feedback, ...)."""
    checkpoint: Mapping[str, Any] | None = None
    """The paused run's state (its own versioned JSON), while the turn waits for approval
    (`stop_reason` `approval_required`); `Agent.resume` continues from it."""

    @property
    def ok(self) -> bool:
        """Whether the run ended with a final answer."""
        return self.stop_reason == "final_answer"

    @classmethod
    def from_result(
        cls,
        result: RunResult[Any],
        *,
        task: str | None = None,
        id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Turn:
        """The turn for a finished run, ready to be the next run's history.

        Args:
            result: The run's result.
            task: The task, when it differs from `result.task`.
            id: The turn id to use (a fresh one by default).
            metadata: Your own JSON data to keep with the turn.
        """
        return cls(
            id=id or uuid.uuid4().hex,
            task=result.task if task is None else task,
            answer=jsonable(result.output),
            stop_reason=result.stop_reason,
            error=result.error,
            steps=result.steps,
            created_at=utc_now(),
            duration=result.duration,
            usage=result.usage,
            generation_paths=tuple(result.generation_paths),
            metadata=dict(metadata or {}),
            checkpoint=result.checkpoint,
        )

    def messages(self, *, include_steps: bool = False) -> list[Message]:
        """The turn as chat messages: the user's task, then the answer.

        Args:
            include_steps: Put a compact summary of the steps (thought, call, start of the
                observation) before the answer.
        """
        if self.ok:
            reply = _text(self.answer)
        elif self.stop_reason is None:
            reply = "(no answer: the run was interrupted)"
        else:
            reply = f"(no answer: the run stopped with {self.stop_reason}: {self.error or ''})"
        if include_steps and any(not step.is_final for step in self.steps):
            reply = f"{self._step_summary()}\nAnswer: {reply}"
        return [Message(role="user", content=self.task), Message(role="assistant", content=reply)]

    def _step_summary(self) -> str:
        lines = ["Steps:"]
        for step in self.steps:
            if step.is_final:
                continue
            thought = preview(step.thought)
            for position, call in enumerate(step.calls):
                arguments = json.dumps(jsonable(dict(call.arguments)), ensure_ascii=False)
                observation = (
                    step.observations[position] if position < len(step.observations) else None
                )
                seen = preview(observation.content) if observation else "(no result)"
                lines.append(f"{step.index}. {thought} -> {call.tool_name}({arguments}) -> {seen}")
                thought = ""
            if not step.calls:
                lines.append(f"{step.index}. {thought}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The turn in the versioned JSON format (see the memory concepts page)."""
        data: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "id": self.id,
            "task": self.task,
            "answer": jsonable(self.answer),
            "stop_reason": self.stop_reason,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "duration": self.duration,
            "usage": _usage_dict(self.usage),
            "generation_paths": list(self.generation_paths),
            "metadata": jsonable(dict(self.metadata)),
            "steps": [_step_dict(step) for step in self.steps],
        }
        if self.checkpoint is not None:  # only while paused: other turns' JSON is unchanged
            data["checkpoint"] = dict(self.checkpoint)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str = "turn") -> Turn:
        """Read a turn written by `to_dict` (by this or any earlier release).

        Raises:
            ConfigurationError: The data is not a turn, or uses a newer format version.
        """
        check_version(data, what)
        record = parse_record(_TurnRecord, data, what)
        return cls(
            id=record.id,
            task=record.task,
            answer=record.answer,
            stop_reason=record.stop_reason,
            error=record.error,
            steps=tuple(_step(step) for step in record.steps),
            created_at=aware(record.created_at),
            duration=record.duration,
            usage=_usage(record.usage),
            generation_paths=tuple(record.generation_paths),
            metadata=record.metadata,
            checkpoint=record.checkpoint,
        )


def preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _STEP_PREVIEW else text[:_STEP_PREVIEW] + "…"


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

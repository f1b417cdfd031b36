"""Conversations: multi-turn history, the memory strategies that fit it, and its stores.

- `Conversation` is a sequence of `Turn`s (one per run: the task, the final answer, the steps
  and metadata). Pass it to `Agent.arun(task, conversation=...)`: the model sees the earlier
  turns, every finished step is saved as it happens, and the run becomes the next turn.
- Memory strategies choose which earlier turns the model sees: `BudgetMemory` (the default:
  the most recent turns that fit the context budget), `WindowMemory`, `SummaryMemory` (a
  running summary of older turns, written by a model) and `RetrievalMemory` (old turns
  relevant to the task, through any `SearchIndex`).
- Stores: `InMemoryStore`, and `SQLStore` for any SQLAlchemy URL (a SQLite file by default;
  PostgreSQL serves many processes). `sqlalchemy` is imported only when a `SQLStore` is made.

The JSON format (`Conversation.to_dict`, `Turn.to_dict`) carries `"version": 1`; every later
agentlib release reads version 1. A record that cannot be read is reported as a `LoadProblem`
naming its row, and the other records still load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from agentlib.errors import ConfigurationError, MissingExtraError, ModelError
from agentlib.models.base import Message, Model
from agentlib.steps import Observation, RunResult, Step, StopReason, ToolCall, Usage

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.exc import DBAPIError

__all__ = [
    "FORMAT_VERSION",
    "BudgetMemory",
    "Conversation",
    "ConversationInfo",
    "ConversationStore",
    "InMemoryStore",
    "IndexHit",
    "KeywordHit",
    "KeywordIndex",
    "LoadProblem",
    "MemoryStrategy",
    "RetrievalMemory",
    "SQLStore",
    "SearchIndex",
    "SummaryMemory",
    "Turn",
    "WindowMemory",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""The version of the JSON format written by this release; every later release reads it."""

_CHARS_PER_TOKEN = 4  # the same deliberate over-estimate the loop uses
_SHORTENED = "…[shortened to fit the context: {total} characters]"
_STEP_PREVIEW = 200

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _jsonable(value: Any) -> Any:
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


class _ConversationRecord(_Record):
    id: str
    created_at: datetime
    metadata: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    turns: list[Any] = []


def _check_version(data: Any, what: str) -> None:
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


def _parse(record: type[T], data: Mapping[str, Any], what: str) -> T:
    try:
        return record.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise ConfigurationError(f"{what} is not a valid agentlib record: {problems}") from None


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }


def _usage(record: _UsageRecord) -> Usage:
    return Usage(
        requests=record.requests,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
    )


def _step_dict(step: Step) -> dict[str, Any]:
    return {
        "index": step.index,
        "thought": step.thought,
        "calls": [
            {"id": c.id, "tool_name": c.tool_name, "arguments": _jsonable(dict(c.arguments))}
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
        "is_final": step.is_final,
        "final_answer": _jsonable(step.final_answer),
        "raw_output": step.raw_output,
        "retries": step.retries,
        "generation_path": step.generation_path,
        "usage": _usage_dict(step.usage),
        "model_seconds": step.model_seconds,
        "tool_seconds": step.tool_seconds,
    }


def _step(record: _StepRecord) -> Step:
    return Step(
        index=record.index,
        thought=record.thought,
        calls=tuple(
            ToolCall(id=c.id, tool_name=c.tool_name, arguments=c.arguments) for c in record.calls
        ),
        observations=tuple(
            Observation(
                call_id=o.call_id,
                tool_name=o.tool_name,
                content=o.content,
                is_error=o.is_error,
                error_type=o.error_type,
                duration=o.duration,
            )
            for o in record.observations
        ),
        final_answer=record.final_answer,
        is_final=record.is_final,
        raw_output=record.raw_output,
        retries=record.retries,
        generation_path=record.generation_path,
        usage=_usage(record.usage),
        model_seconds=record.model_seconds,
        tool_seconds=record.tool_seconds,
    )


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
    created_at: datetime = field(default_factory=_now)
    """When the run started (UTC)."""
    duration: float = 0.0
    """Wall-clock seconds of the run."""
    usage: Usage = field(default_factory=Usage)
    """Tokens and requests of the run."""
    generation_paths: tuple[str, ...] = ()
    """The generation paths the run used."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Your own JSON data about the turn (user id, feedback, ...)."""

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
            answer=_jsonable(result.output),
            stop_reason=result.stop_reason,
            error=result.error,
            steps=result.steps,
            created_at=_now(),
            duration=result.duration,
            usage=result.usage,
            generation_paths=tuple(result.generation_paths),
            metadata=dict(metadata or {}),
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
            thought = _preview(step.thought)
            for position, call in enumerate(step.calls):
                arguments = json.dumps(_jsonable(dict(call.arguments)), ensure_ascii=False)
                observation = (
                    step.observations[position] if position < len(step.observations) else None
                )
                seen = _preview(observation.content) if observation else "(no result)"
                lines.append(f"{step.index}. {thought} -> {call.tool_name}({arguments}) -> {seen}")
                thought = ""
            if not step.calls:
                lines.append(f"{step.index}. {thought}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The turn in the versioned JSON format (see the memory concepts page)."""
        return {
            "version": FORMAT_VERSION,
            "id": self.id,
            "task": self.task,
            "answer": _jsonable(self.answer),
            "stop_reason": self.stop_reason,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "duration": self.duration,
            "usage": _usage_dict(self.usage),
            "generation_paths": list(self.generation_paths),
            "metadata": _jsonable(dict(self.metadata)),
            "steps": [_step_dict(step) for step in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str = "turn") -> Turn:
        """Read a turn written by `to_dict` (by this or any earlier release).

        Raises:
            ConfigurationError: The data is not a turn, or uses a newer format version.
        """
        _check_version(data, what)
        record = _parse(_TurnRecord, data, what)
        return cls(
            id=record.id,
            task=record.task,
            answer=record.answer,
            stop_reason=record.stop_reason,
            error=record.error,
            steps=tuple(_step(step) for step in record.steps),
            created_at=_aware(record.created_at),
            duration=record.duration,
            usage=_usage(record.usage),
            generation_paths=tuple(record.generation_paths),
            metadata=record.metadata,
        )


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _STEP_PREVIEW else text[:_STEP_PREVIEW] + "…"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Conversation:
    """A sequence of runs: each run continues where the last left off.

    `await agent.arun(task, conversation=conversation)` shows the model the earlier turns
    (chosen by `memory`), saves each finished step while the run goes on, and records the run
    as the next turn. Run one task at a time per conversation.

    Args:
        id: The conversation id (a fresh one by default).
        store: Where to save it; `None` keeps it in this object only.
        memory: Which earlier turns the model sees (default: `BudgetMemory()`).
        metadata: Your own JSON data about the conversation (a title, a user id, ...).
        turns: Turns to start with.
        created_at: When it was created (default: now).
    """

    def __init__(
        self,
        id: str | None = None,
        *,
        store: ConversationStore | None = None,
        memory: MemoryStrategy | None = None,
        metadata: Mapping[str, Any] | None = None,
        turns: Iterable[Turn] = (),
        created_at: datetime | None = None,
    ) -> None:
        self.id = id or uuid.uuid4().hex
        """The conversation id."""
        if not self.id or len(self.id) > 128:
            raise ConfigurationError(f"a conversation id must be 1-128 characters, got {id!r}")
        self.store = store
        """Where the conversation is saved, if anywhere."""
        self.memory: MemoryStrategy = memory if memory is not None else BudgetMemory()
        """The strategy that picks the earlier turns a run sees."""
        self.metadata: dict[str, Any] = dict(metadata or {})
        """Your own JSON data about the conversation."""
        self.memory_state: dict[str, Any] = {}
        """Data a memory strategy keeps with the conversation (a running summary, ...)."""
        self.created_at = created_at or _now()
        """When the conversation was created (UTC)."""
        self.problems: tuple[LoadProblem, ...] = ()
        """Records that could not be read when the conversation was loaded."""
        self._turns = list(turns)
        self._open_turn: str | None = None
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, turns={len(self._turns)})"

    def __len__(self) -> int:
        return len(self._turns)

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The turns, oldest first."""
        with self._lock:
            return tuple(self._turns)

    @property
    def title(self) -> str:
        """`metadata["title"]`, or the start of the first task."""
        title = self.metadata.get("title")
        if isinstance(title, str) and title:
            return title[:200]
        return _preview(self._turns[0].task)[:80] if self._turns else ""

    def messages(self, *, include_steps: bool = False) -> list[Message]:
        """Every turn as chat messages, oldest first (no memory strategy applied)."""
        return [m for turn in self.turns for m in turn.messages(include_steps=include_steps)]

    # -- what the agent calls (`ConversationLike`) ----------------------------------------------

    async def ahistory(self, model: Model, task: str) -> list[Message]:
        """The earlier turns the model should see for `task`, chosen by `memory`."""
        return await self.memory.aselect(self, task=task, model=model)

    async def arecord_step(self, task: str, step: Step) -> None:
        """Save one finished step of the run in flight, so a crash loses at most the next one."""
        with self._lock:
            current = self._current_turn(task) if step.index > 1 else None
            if current is None:
                current = Turn(task=task)
                self._turns.append(current)
            steps = (*(s for s in current.steps if s.index < step.index), step)
            current = replace(current, steps=steps)
            self._turns[-1] = current
            self._open_turn = current.id
        await self._asave(current)

    async def arecord(self, task: str, result: RunResult[Any]) -> None:
        """Record a finished run as the next turn (and save it, when there is a store)."""
        await self._asave(self._finish(task, result))

    def record(self, task: str, result: RunResult[Any]) -> Turn:
        """Record a finished run as the next turn; the synchronous `arecord`.

        Returns:
            The new turn.
        """
        turn = self._finish(task, result)
        self._save_latest(turn.id)
        return turn

    def _finish(self, task: str, result: RunResult[Any]) -> Turn:
        with self._lock:
            current = self._current_turn(task)
            if current is None:
                turn = Turn.from_result(result, task=task)
                self._turns.append(turn)
            else:
                turn = Turn.from_result(result, task=task, id=current.id, metadata=current.metadata)
                turn = replace(turn, created_at=current.created_at)
                self._turns[-1] = turn
            self._open_turn = None
        return turn

    def _current_turn(self, task: str) -> Turn | None:
        if self._open_turn is None or not self._turns:
            return None
        last = self._turns[-1]
        return last if last.id == self._open_turn and last.task == task else None

    async def _asave(self, turn: Turn) -> None:
        if self.store is not None:
            await asyncio.to_thread(self._save_latest, turn.id)

    def _save_latest(self, turn_id: str) -> None:
        # Writes are serialised and each writes the turn as it is *now*: a step's save still
        # running in its thread after a cancellation can never overwrite the finished turn.
        if self.store is None:
            return
        with self._save_lock:
            with self._lock:
                turn = next((t for t in reversed(self._turns) if t.id == turn_id), None)
            if turn is not None:
                self.store.save_turn(self, turn)

    # -- storage and JSON ---------------------------------------------------------------------

    def save(self) -> None:
        """Write the whole conversation to its store (metadata and every turn).

        Raises:
            ConfigurationError: The conversation has no store.
        """
        if self.store is None:
            raise ConfigurationError(
                f"conversation {self.id!r} has no store; create it with "
                "Conversation(store=...) or call store.save(conversation)"
            )
        self.store.save(self)

    @classmethod
    def open(
        cls,
        store: ConversationStore,
        id: str | None = None,
        *,
        memory: MemoryStrategy | None = None,
    ) -> Conversation:
        """Load conversation `id` from `store`, or start it there if it is not stored yet."""
        conversation = store.load(id) if id is not None else None
        if conversation is None:
            return cls(id, store=store, memory=memory)
        conversation.store = store
        if memory is not None:
            conversation.memory = memory
        return conversation

    def to_dict(self) -> dict[str, Any]:
        """The conversation in the versioned JSON format (see the memory concepts page)."""
        return {
            **self._header(),
            "turns": [turn.to_dict() for turn in self.turns],
        }

    def _header(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "metadata": _jsonable(self.metadata),
            "memory": _jsonable(self.memory_state),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        store: ConversationStore | None = None,
        memory: MemoryStrategy | None = None,
    ) -> Conversation:
        """Read a conversation written by `to_dict` (by this or any earlier release).

        A turn that cannot be read is skipped and listed in `problems`.

        Raises:
            ConfigurationError: The data is not a conversation, or uses a newer format.
        """
        what = "conversation"
        _check_version(data, what)
        record = _parse(_ConversationRecord, data, what)
        turns: list[Turn] = []
        problems: list[LoadProblem] = []
        for position, item in enumerate(record.turns):
            row_id = f"turns[{position}]"
            try:
                turns.append(Turn.from_dict(item, what=f"turn {row_id}"))
            except ConfigurationError as exc:
                problems.append(LoadProblem(row_id=row_id, kind="turn", message=str(exc)))
        conversation = cls(
            record.id,
            store=store,
            memory=memory,
            metadata=record.metadata,
            turns=turns,
            created_at=_aware(record.created_at),
        )
        conversation.memory_state = dict(record.memory)
        conversation.problems = tuple(problems)
        for problem in problems:
            logger.warning("conversation %s: %s", record.id, problem)
        return conversation

    @classmethod
    def from_json(cls, text: str | bytes, **options: Any) -> Conversation:
        """Read a conversation from `to_json` output; options as for `from_dict`.

        Raises:
            ConfigurationError: The text is not JSON, or not a conversation.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"conversation is not valid JSON: {exc}") from None
        return cls.from_dict(data, **options)


# -- memory strategies -----------------------------------------------------------------------


@runtime_checkable
class MemoryStrategy(Protocol):
    """Chooses the earlier turns a run sees, as messages that fit the model's context."""

    async def aselect(
        self, conversation: Conversation, *, task: str, model: Model
    ) -> list[Message]:
        """The messages to put between the system prompt and the new `task`."""
        ...


def _budget_chars(model: Model, share: float) -> int:
    return max(1, int(model.capabilities.context_window * share)) * _CHARS_PER_TOKEN


def _check_share(share: float) -> None:
    if not 0 < share <= 1:
        raise ConfigurationError(f"share must be in (0, 1], got {share}")


def _shorten(messages: list[Message], budget: int) -> list[Message]:
    each = max(0, budget // max(1, len(messages)) - 60)
    shortened = []
    for message in messages:
        content = message.content
        if len(content) > each:
            content = content[:each] + _SHORTENED.format(total=len(content))
        shortened.append(Message(role=message.role, content=content))
    return shortened


def _fit_turns(turns: Sequence[Turn], budget: int, *, include_steps: bool) -> list[Message]:
    """The most recent `turns` that fit into `budget` characters, oldest first.

    Whole turns only, newest first, stopping at the first that does not fit; if even the newest
    does not fit, it is shortened with a visible marker.
    """
    chosen: list[list[Message]] = []
    used = 0
    for turn in reversed(turns):
        messages = turn.messages(include_steps=include_steps)
        size = sum(len(message.content) for message in messages)
        if used + size > budget:
            if not chosen:
                chosen.append(_shorten(messages, budget))
            break
        chosen.append(messages)
        used += size
    return [message for group in reversed(chosen) for message in group]


@dataclass(slots=True)
class BudgetMemory:
    """The default: as many recent turns as fit in a share of the model's context window.

    Args:
        share: The share of `model.capabilities.context_window` the history may take (the
            rest is for the instructions, the tools, the task and this run's steps).
        include_steps: Show each turn's steps in compact form, not only task and answer.
    """

    share: float = 0.5
    include_steps: bool = False

    def __post_init__(self) -> None:
        _check_share(self.share)

    async def aselect(
        self, conversation: Conversation, *, task: str, model: Model
    ) -> list[Message]:
        """The most recent turns that fit the budget, oldest first."""
        budget = _budget_chars(model, self.share)
        return _fit_turns(conversation.turns, budget, include_steps=self.include_steps)


@dataclass(slots=True)
class WindowMemory:
    """The last `turns` turns (still cut to the context budget).

    Args:
        turns: How many recent turns the model sees.
        share: The share of the context window the history may take.
        include_steps: Show each turn's steps in compact form.
    """

    turns: int = 5
    share: float = 0.5
    include_steps: bool = False

    def __post_init__(self) -> None:
        _check_share(self.share)
        if self.turns < 0:
            raise ConfigurationError(f"turns must be 0 or more, got {self.turns}")

    async def aselect(
        self, conversation: Conversation, *, task: str, model: Model
    ) -> list[Message]:
        """The last `turns` turns, oldest first."""
        recent = conversation.turns[-self.turns :] if self.turns else ()
        return _fit_turns(
            recent, _budget_chars(model, self.share), include_steps=self.include_steps
        )


_SUMMARY_INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an assistant. Merge the "
    "new turns into the summary so far. Keep names, numbers, decisions, preferences and open "
    "questions; drop pleasantries. Reply with the updated summary only, in plain prose."
)


@dataclass(slots=True)
class SummaryMemory:
    """Recent turns verbatim, older ones folded into a running summary written by a model.

    The summary is updated when turns leave the recent window (one model call per update) and
    kept in `conversation.memory_state["summary"]`, so a stored conversation does not summarise
    again after a restart. If the summarising model fails, the previous summary is kept.

    Args:
        model: The model that writes the summary (default: the agent's model).
        recent: How many recent turns the model sees verbatim.
        max_summary_chars: The longest summary kept.
        share: The share of the context window the history may take.
        include_steps: Show the recent turns' steps in compact form.
    """

    model: Model | None = None
    recent: int = 4
    max_summary_chars: int = 2000
    share: float = 0.5
    include_steps: bool = False

    def __post_init__(self) -> None:
        _check_share(self.share)
        if self.recent < 0 or self.max_summary_chars < 100:
            raise ConfigurationError(
                "recent must be 0 or more and max_summary_chars at least 100, got "
                f"recent={self.recent}, max_summary_chars={self.max_summary_chars}"
            )

    async def aselect(
        self, conversation: Conversation, *, task: str, model: Model
    ) -> list[Message]:
        """A system message with the summary of older turns, then the recent turns."""
        turns = conversation.turns
        older = turns[: max(0, len(turns) - self.recent)]
        summary = await self._summary(conversation, older, self.model or model)
        budget = _budget_chars(model, self.share)
        messages = []
        if summary:
            note = Message(
                role="system", content=f"Summary of the earlier conversation:\n{summary}"
            )
            messages.append(note)
            budget = max(1, budget - len(note.content))
        recent = _fit_turns(turns[len(older) :], budget, include_steps=self.include_steps)
        return [*messages, *recent]

    async def _summary(
        self, conversation: Conversation, older: Sequence[Turn], model: Model
    ) -> str:
        state = conversation.memory_state.get("summary")
        text, covered = "", 0
        if isinstance(state, dict) and isinstance(state.get("text"), str):
            count = state.get("turns")
            if (
                isinstance(count, int)
                and 0 < count <= len(older)
                and older[count - 1].id == state.get("through")
            ):
                text, covered = state["text"], count
        if len(older) <= covered:
            return text
        try:
            text = await self._summarize(model, text, older[covered:])
        except ModelError as exc:
            logger.warning(
                "conversation %s: summarising failed, keeping the old summary: %s",
                conversation.id,
                exc,
            )
            return text
        conversation.memory_state["summary"] = {
            "text": text,
            "turns": len(older),
            "through": older[-1].id,
        }
        return text

    async def _summarize(self, model: Model, previous: str, turns: Sequence[Turn]) -> str:
        budget = _budget_chars(model, 0.6) - len(previous)
        rendered = [
            f"User: {messages[0].content}\nAssistant: {messages[1].content}"
            for messages in (turn.messages() for turn in turns)
        ]
        each = max(200, budget // max(1, len(rendered)))
        new_turns = "\n\n".join(
            part if len(part) <= each else part[:each] + "…" for part in rendered
        )
        prompt = (
            f"Summary so far:\n{previous or '(none yet)'}\n\nNew turns:\n{new_turns}\n\n"
            f"Write the updated summary in at most {self.max_summary_chars // 6} words."
        )
        response = await model.agenerate(
            [
                Message(role="system", content=_SUMMARY_INSTRUCTIONS),
                Message(role="user", content=prompt),
            ],
            max_tokens=self.max_summary_chars // _CHARS_PER_TOKEN,
        )
        return response.text.strip()[: self.max_summary_chars]


class IndexHit(Protocol):
    """A search result: `RetrievalMemory` reads only its metadata."""

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The metadata given to `SearchIndex.add` with the text."""
        ...


@runtime_checkable
class SearchIndex(Protocol):
    """A text index `RetrievalMemory` can use.

    `KeywordIndex` is the built-in one; the retrieval tools' indexes fit too.
    """

    def add(self, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]]) -> Any:
        """Index `texts`, each with its metadata."""
        ...

    def search(self, query: str, k: int) -> Sequence[IndexHit]:
        """The `k` entries most relevant to `query`, best first."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordHit:
    """One `KeywordIndex` result."""

    text: str
    """The indexed text."""
    score: float
    """Relevance: the summed rarity of the query words the text contains."""
    metadata: Mapping[str, Any]
    """The metadata given with the text."""


_WORD = re.compile(r"\w{3,}")


class KeywordIndex:
    """Deterministic in-memory search by shared words (weighted by rarity); no dependencies."""

    def __init__(self) -> None:
        self._entries: list[tuple[Counter[str], str, Mapping[str, Any]]] = []
        self._document_frequency: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Index `texts`, each with its metadata (in the same order)."""
        items = list(metadata) if metadata is not None else [{} for _ in texts]
        if len(items) != len(texts):
            raise ConfigurationError(
                f"got {len(texts)} texts but {len(items)} metadata entries; give one per text"
            )
        with self._lock:
            for text, meta in zip(texts, items, strict=True):
                words = Counter(_WORD.findall(text.lower()))
                self._entries.append((words, text, dict(meta)))
                self._document_frequency.update(words.keys())

    def search(self, query: str, k: int) -> list[KeywordHit]:
        """The `k` texts sharing the rarest words with `query`, best first (ties: oldest)."""
        terms = set(_WORD.findall(query.lower()))
        with self._lock:
            total = len(self._entries)
            scored = []
            for position, (words, text, meta) in enumerate(self._entries):
                score = sum(
                    math.log(1 + total / self._document_frequency[term])
                    for term in terms
                    if term in words
                )
                if score > 0:
                    scored.append((-score, position, text, meta))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [
            KeywordHit(text=text, score=-negative, metadata=meta)
            for negative, _, text, meta in scored[: max(0, k)]
        ]


class RetrievalMemory:
    """Recent turns, plus the older turns most relevant to the new task, found by an index.

    Args:
        index: Any `SearchIndex` (the retrieval tools' indexes fit). Shared across
            conversations, hits are filtered by conversation id. Default: one `KeywordIndex`
            per conversation, rebuilt from the turns after a restart.
        k: How many relevant older turns to add.
        recent: How many recent turns the model always sees.
        share: The share of the context window the history may take.
        include_steps: Show each turn's steps in compact form.
    """

    def __init__(
        self,
        index: SearchIndex | None = None,
        *,
        k: int = 3,
        recent: int = 2,
        share: float = 0.5,
        include_steps: bool = False,
    ) -> None:
        _check_share(share)
        if k < 1 or recent < 0:
            raise ConfigurationError(f"k must be 1 or more and recent 0 or more: {k}, {recent}")
        self.index = index
        self.k = k
        self.recent = recent
        self.share = share
        self.include_steps = include_steps
        self._indexes: dict[str, SearchIndex] = {}
        self._indexed: dict[str, set[str]] = {}

    async def aselect(
        self, conversation: Conversation, *, task: str, model: Model
    ) -> list[Message]:
        """The relevant older turns and the recent ones, oldest first."""
        turns = conversation.turns
        older = turns[: max(0, len(turns) - self.recent)]
        relevant: list[Turn] = []
        if older:
            wanted = await self._search(conversation, older, task)
            relevant = [turn for turn in older if turn.id in wanted]
        selected = [*relevant, *turns[len(older) :]]
        return _fit_turns(
            selected, _budget_chars(model, self.share), include_steps=self.include_steps
        )

    async def _search(
        self, conversation: Conversation, older: Sequence[Turn], task: str
    ) -> set[str]:
        index = self.index
        if index is None:  # not `or`: an empty index may be falsy (`__len__`)
            index = self._indexes.setdefault(conversation.id, KeywordIndex())
        indexed = self._indexed.setdefault(conversation.id, set())
        new = [turn for turn in older if turn.id not in indexed and turn.stop_reason is not None]
        if new:
            texts = ["\n".join(m.content for m in turn.messages()) for turn in new]
            metadata = [{"conversation_id": conversation.id, "turn_id": turn.id} for turn in new]
            await asyncio.to_thread(index.add, texts, metadata)
            indexed.update(turn.id for turn in new)
        # A shared index holds other conversations' turns too: ask for more, keep ours.
        limit = self.k if self.index is None else self.k * 4
        hits = await asyncio.to_thread(index.search, task, limit)
        wanted: list[str] = []
        for hit in hits:
            meta = hit.metadata
            if meta.get("conversation_id") == conversation.id and meta.get("turn_id") not in wanted:
                wanted.append(str(meta.get("turn_id")))
        return set(wanted[: self.k])


# -- stores -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationInfo:
    """A stored conversation, as listed by `ConversationStore.list_conversations`."""

    id: str
    """The conversation id."""
    title: str
    """`metadata["title"]` or the start of the first task."""
    turns: int
    """How many turns are stored."""
    created_at: datetime
    """When it was first saved (UTC)."""
    updated_at: datetime
    """When it was last saved (UTC)."""


@runtime_checkable
class ConversationStore(Protocol):
    """Saves and loads conversations with their turns and steps, by conversation id.

    Methods are synchronous (a conversation calls them from a worker thread); writers may be
    concurrent threads or processes.
    """

    def save(self, conversation: Conversation) -> None:
        """Write the conversation's metadata and every turn (insert or update; never delete)."""
        ...

    def save_turn(self, conversation: Conversation, turn: Turn) -> None:
        """Write one turn (insert or update) and the conversation's metadata, atomically."""
        ...

    def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation, or `None`; unreadable records go to `problems`."""
        ...

    def list_conversations(self) -> list[ConversationInfo]:
        """Every stored conversation, most recently updated first."""
        ...

    def delete(self, conversation_id: str) -> bool:
        """Remove the conversation and its turns; whether it existed."""
        ...


class InMemoryStore:
    """Keeps conversations in this process, as JSON documents (so loads are independent copies).

    Thread-safe; for tests, docs and short-lived apps.
    """

    def __init__(self) -> None:
        self._conversations: dict[str, dict[str, Any]] = {}
        self._turns: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def save(self, conversation: Conversation) -> None:
        """Write the conversation's metadata and every turn."""
        with self._lock:
            self._write_header(conversation)
            for turn in conversation.turns:
                self._turns[conversation.id][turn.id] = turn.to_dict()

    def save_turn(self, conversation: Conversation, turn: Turn) -> None:
        """Write one turn and the conversation's metadata."""
        with self._lock:
            self._write_header(conversation)
            self._turns[conversation.id][turn.id] = turn.to_dict()

    def _write_header(self, conversation: Conversation) -> None:
        header = conversation._header()
        header["title"] = conversation.title
        previous = self._conversations.get(conversation.id)
        header["saved_at"] = previous["saved_at"] if previous else _now().isoformat()
        header["updated_at"] = _now().isoformat()
        self._conversations[conversation.id] = json.loads(json.dumps(header))
        self._turns.setdefault(conversation.id, {})

    def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation, or `None`."""
        with self._lock:
            header = self._conversations.get(conversation_id)
            if header is None:
                return None
            document = {**header, "turns": list(self._turns[conversation_id].values())}
            document = json.loads(json.dumps(document))
        return Conversation.from_dict(document, store=self)

    def list_conversations(self) -> list[ConversationInfo]:
        """Every stored conversation, most recently updated first."""
        with self._lock:
            infos = [
                ConversationInfo(
                    id=id,
                    title=header["title"],
                    turns=len(self._turns[id]),
                    created_at=datetime.fromisoformat(header["saved_at"]),
                    updated_at=datetime.fromisoformat(header["updated_at"]),
                )
                for id, header in self._conversations.items()
            ]
        return sorted(infos, key=lambda info: info.updated_at, reverse=True)

    def delete(self, conversation_id: str) -> bool:
        """Remove the conversation; whether it existed."""
        with self._lock:
            self._turns.pop(conversation_id, None)
            return self._conversations.pop(conversation_id, None) is not None


def _import_sqlalchemy() -> None:
    try:
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "sqlalchemy", "sql", feature="SQLStore (conversations in a database)"
        ) from exc


def _is_transient(exc: DBAPIError) -> bool:
    """Whether a database error may pass if the transaction is tried again."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.IntegrityError):
        return True  # two writers inserted the same new conversation or position at once
    if isinstance(exc, sa_exc.OperationalError):
        text = str(exc.orig).lower()
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return "locked" in text or "busy" in text or sqlstate in ("40001", "40P01")
    return False


class SQLStore:
    """Conversations in any SQL database SQLAlchemy reaches; a SQLite file by default.

    Each turn is one row holding its JSON document, rewritten in one transaction as each step
    finishes, so a crash loses at most the step in flight. Writers may be many threads and
    processes: SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions and a busy timeout,
    and transactions that meet a lock or a concurrent insert are retried with backoff.
    PostgreSQL (`postgresql+psycopg://...`) serves many processes and machines.

    Args:
        url: A SQLAlchemy URL (`sqlite:///chat.db`, `postgresql+psycopg://user@host/db`) or
            the path of a SQLite file; or an existing `sqlalchemy.Engine` to use as it is.
        table_prefix: Prefix of the two tables (`<prefix>conversations`, `<prefix>turns`).
        max_retries: How many times a transaction that met a lock (after SQLite's own 10 s
            busy timeout) or a concurrent insert is tried again.

    Raises:
        MissingExtraError: SQLAlchemy is not installed (`pip install "agentlib[sql]"`).
    """

    def __init__(
        self,
        url: str | Engine,
        *,
        table_prefix: str = "agentlib_",
        max_retries: int = 5,
    ) -> None:
        _import_sqlalchemy()
        import sqlalchemy as sa

        if isinstance(url, sa.Engine):
            self.engine = url
            self._owns_engine = False
        else:
            self.engine = _create_engine(url)
            self._owns_engine = True
        self.max_retries = max_retries
        metadata = sa.MetaData()
        self._conversations = sa.Table(
            f"{table_prefix}conversations",
            metadata,
            sa.Column("id", sa.String(128), primary_key=True),
            sa.Column("title", sa.String(200), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
        )
        self._turns = sa.Table(
            f"{table_prefix}turns",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column(
                "conversation_id",
                sa.String(128),
                sa.ForeignKey(f"{table_prefix}conversations.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.UniqueConstraint("conversation_id", "position"),
        )
        self._transact(lambda connection: metadata.create_all(connection))

    def __repr__(self) -> str:
        return f"SQLStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close the connections (of an engine the store created)."""
        if self._owns_engine:
            self.engine.dispose()

    def _transact(self, work: Callable[[Connection], T], *, read: bool = False) -> T:
        from sqlalchemy.exc import DBAPIError

        delay = 0.005
        for attempt in range(self.max_retries + 1):
            try:
                with self.engine.connect() as connection:
                    if read:
                        connection = connection.execution_options(agentlib_read=True)
                    with connection.begin():
                        return work(connection)
            except DBAPIError as exc:
                if attempt == self.max_retries or not _is_transient(exc):
                    raise
                logger.debug("retrying a conversation store transaction after: %s", exc)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")  # pragma: no cover

    def save(self, conversation: Conversation) -> None:
        """Write the conversation's metadata and every turn, in one transaction."""
        turns = conversation.turns

        def work(connection: Connection) -> None:
            self._write_header(connection, conversation)
            for turn in turns:
                self._write_turn(connection, conversation.id, turn)

        self._transact(work)

    def save_turn(self, conversation: Conversation, turn: Turn) -> None:
        """Write one turn and the conversation's metadata, in one transaction."""

        def work(connection: Connection) -> None:
            self._write_header(connection, conversation)
            self._write_turn(connection, conversation.id, turn)

        self._transact(work)

    def _write_header(self, connection: Connection, conversation: Conversation) -> None:
        # The UPDATE comes first: it locks the conversation's row (PostgreSQL), so concurrent
        # writers to one conversation take turns and positions stay unique.
        table = self._conversations
        now = time.time()
        values = {
            "title": conversation.title[:200],
            "updated_at": now,
            "data": json.dumps(conversation._header(), ensure_ascii=False),
        }
        updated = connection.execute(
            table.update().where(table.c.id == conversation.id).values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(
                table.insert().values(
                    id=conversation.id, created_at=conversation.created_at.timestamp(), **values
                )
            )

    def _write_turn(self, connection: Connection, conversation_id: str, turn: Turn) -> None:
        import sqlalchemy as sa

        table = self._turns
        if not 0 < len(turn.id) <= 64:
            raise ConfigurationError(f"a turn id must be 1-64 characters, got {turn.id!r}")
        data = json.dumps(turn.to_dict(), ensure_ascii=False)
        owner = connection.execute(
            sa.select(table.c.conversation_id).where(table.c.id == turn.id)
        ).scalar_one_or_none()
        if owner is not None:
            if owner != conversation_id:
                raise ConfigurationError(
                    f"turn {turn.id!r} is stored in conversation {owner!r}, not "
                    f"{conversation_id!r}; give each turn its own id"
                )
            connection.execute(
                table.update()
                .where(table.c.id == turn.id)
                .values(data=data, updated_at=time.time())
            )
            return
        last = connection.execute(
            sa.select(sa.func.max(table.c.position)).where(
                table.c.conversation_id == conversation_id
            )
        ).scalar_one_or_none()
        connection.execute(
            table.insert().values(
                id=turn.id,
                conversation_id=conversation_id,
                position=0 if last is None else last + 1,
                updated_at=time.time(),
                data=data,
            )
        )

    def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation, or `None`; unreadable turn rows go to `problems`."""
        import sqlalchemy as sa

        def work(connection: Connection) -> tuple[Any, list[Any]]:
            header = connection.execute(
                sa.select(self._conversations).where(self._conversations.c.id == conversation_id)
            ).first()
            rows = connection.execute(
                sa.select(self._turns.c.id, self._turns.c.data)
                .where(self._turns.c.conversation_id == conversation_id)
                .order_by(self._turns.c.position)
            ).all()
            return header, list(rows)

        header, rows = self._transact(work, read=True)
        if header is None:
            return None
        problems: list[LoadProblem] = []
        conversation = self._read_header(header, problems)
        turns: list[Turn] = []
        for row in rows:
            try:
                turns.append(_read_turn(row.id, row.data))
            except ConfigurationError as exc:
                problems.append(LoadProblem(row_id=row.id, kind="turn", message=str(exc)))
        conversation._turns = turns
        conversation.problems = tuple(problems)
        for problem in problems:
            logger.warning("conversation %s: %s", conversation_id, problem)
        return conversation

    def _read_header(self, header: Any, problems: list[LoadProblem]) -> Conversation:
        created_at = datetime.fromtimestamp(header.created_at, UTC)
        try:
            data = json.loads(header.data)
            if not isinstance(data, dict):
                raise ConfigurationError(f"its data is a JSON {type(data).__name__}, not an object")
            document = Conversation.from_dict(
                {"id": header.id, "created_at": created_at.isoformat(), **data, "turns": []},
                store=self,
            )
        except (json.JSONDecodeError, ConfigurationError) as exc:
            message = (
                f"its data is not valid JSON: {exc}"
                if isinstance(exc, json.JSONDecodeError)
                else str(exc)
            )
            problems.append(LoadProblem(row_id=header.id, kind="conversation", message=message))
            return Conversation(header.id, store=self, created_at=created_at)
        document.id = header.id  # the row's key wins over the document
        return document

    def list_conversations(self) -> list[ConversationInfo]:
        """Every stored conversation, most recently updated first."""
        import sqlalchemy as sa

        counts = (
            sa.select(self._turns.c.conversation_id, sa.func.count().label("turns"))
            .group_by(self._turns.c.conversation_id)
            .subquery()
        )
        table = self._conversations
        query = (
            sa.select(
                table.c.id, table.c.title, table.c.created_at, table.c.updated_at, counts.c.turns
            )
            .outerjoin(counts, counts.c.conversation_id == table.c.id)
            .order_by(table.c.updated_at.desc(), table.c.id)
        )
        rows = self._transact(lambda connection: connection.execute(query).all(), read=True)
        return [
            ConversationInfo(
                id=row.id,
                title=row.title,
                turns=row.turns or 0,
                created_at=datetime.fromtimestamp(row.created_at, UTC),
                updated_at=datetime.fromtimestamp(row.updated_at, UTC),
            )
            for row in rows
        ]

    def delete(self, conversation_id: str) -> bool:
        """Remove the conversation and its turns; whether it existed."""

        def work(connection: Connection) -> bool:
            connection.execute(
                self._turns.delete().where(self._turns.c.conversation_id == conversation_id)
            )
            deleted = connection.execute(
                self._conversations.delete().where(self._conversations.c.id == conversation_id)
            )
            return bool(deleted.rowcount)

        return self._transact(work)


def _read_turn(row_id: str, text: str) -> Turn:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigurationError(f"its data is not valid JSON: {exc}") from None
    turn = Turn.from_dict(data, what="the row")
    if turn.id != row_id:
        raise ConfigurationError(f"the row holds turn {turn.id!r}, which belongs elsewhere")
    return turn


def _create_engine(url: str) -> Engine:
    import sqlalchemy as sa

    if "://" not in url:
        url = f"sqlite:///{url}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"timeout": 10, "check_same_thread": False}}
    if in_memory:
        options["poolclass"] = sa.StaticPool  # one shared connection, or each thread sees its own
    engine = sa.create_engine(url, **options)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """WAL (readers never block the writer), a busy timeout, and `BEGIN IMMEDIATE`.

    `BEGIN IMMEDIATE` takes the write lock when the transaction starts, so two writers cannot
    both read and then fail to upgrade to a write (the classic source of "database is locked"
    that no busy timeout resolves).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
            # Commits survive a crash of the process; only an OS crash or power cut may undo
            # the last ones (never corrupting the file). FULL costs an fsync per step: 16 ms
            # per step and 30 writes/s for four writers on the benchmark machine.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers need no lock in WAL mode: a deferred BEGIN reads a consistent snapshot.
        read = connection.get_execution_options().get("agentlib_read", False)
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

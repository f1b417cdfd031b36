"""`Conversation`: a sequence of runs, each continuing where the last left off."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentlib.errors import ConfigurationError
from agentlib.models.base import Message, Model
from agentlib.steps import RunResult, Step

from ._format import (
    FORMAT_VERSION,
    ConversationRecord,
    LoadProblem,
    Turn,
    aware,
    check_version,
    jsonable,
    parse_record,
    preview,
    utc_now,
)
from .strategies import BudgetMemory

if TYPE_CHECKING:
    from .stores import ConversationStore
    from .strategies import MemoryStrategy

__all__ = ["Conversation"]

# Every module of the package logs as `agentlib.memory`, where its names are documented.
logger = logging.getLogger("agentlib.memory")


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

    __module__ = "agentlib"  # the public name: agentlib.Conversation

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
        self.created_at = created_at or utc_now()
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
        return preview(self._turns[0].task)[:80] if self._turns else ""

    @property
    def checkpoint(self) -> Mapping[str, Any] | None:
        """The state of the last run if it paused for approval (for `Agent.resume`), else `None`."""
        with self._lock:
            last = self._turns[-1] if self._turns else None
        return last.checkpoint if last is not None else None

    def messages(self, *, include_steps: bool = False) -> list[Message]:
        """Every turn as chat messages, oldest first (no memory strategy applied)."""
        return [m for turn in self.turns for m in turn.messages(include_steps=include_steps)]

    # -- what the agent calls (`ConversationLike`) ----------------------------------------------

    async def ahistory(self, model: Model, task: str) -> list[Message]:
        """The earlier turns the model should see for `task`, chosen by `memory`.

        Called as a new run starts, it closes a turn left paused for approval: that run can
        no longer be resumed into the conversation (its turn stays as it was).
        """
        with self._lock:
            self._open_turn = None
        return await self.memory.aselect(self, task=task, model=model)

    async def arecord_step(self, task: str, step: Step) -> None:
        """Save one finished step of the run in flight, so a crash loses at most the next one."""
        with self._lock:
            # Step 1 starts a new turn, unless it is a paused turn's step being resumed.
            resuming = step.index > 1 or self._open_turn is not None
            current = self._current_turn(task) if resuming else None
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
            # A run paused for approval goes on in this turn when it is resumed.
            self._open_turn = turn.id if turn.checkpoint is not None else None
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
            **self.header(),
            "turns": [turn.to_dict() for turn in self.turns],
        }

    def header(self) -> dict[str, Any]:
        """The conversation without its turns, in the versioned JSON format (what stores keep)."""
        return {
            "version": FORMAT_VERSION,
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "metadata": jsonable(self.metadata),
            "memory": jsonable(self.memory_state),
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
        check_version(data, what)
        record = parse_record(ConversationRecord, data, what)
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
            created_at=aware(record.created_at),
        )
        conversation.memory_state = dict(record.memory)
        conversation.problems = tuple(problems)
        if turns and turns[-1].checkpoint is not None:  # a paused run resumes in its turn
            conversation._open_turn = turns[-1].id
        for problem in problems:
            logger.warning("conversation %s: %s", record.id, problem)
        return conversation

    def load_turns(self, turns: Iterable[Turn], problems: Iterable[LoadProblem] = ()) -> None:
        """Replace the turns with those a store read; `problems` names the rows it could not read.

        For `ConversationStore` implementations, which read the header (`from_dict` with no
        turns) and the turns separately.
        """
        problems = tuple(problems)
        with self._lock:
            self._turns = list(turns)
            last = self._turns[-1] if self._turns else None
            self._open_turn = last.id if last is not None and last.checkpoint else None
        self.problems = (*self.problems, *problems)
        for problem in problems:
            logger.warning("conversation %s: %s", self.id, problem)

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

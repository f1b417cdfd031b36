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

`Turn`, `LoadProblem` and the JSON format live in `agentlib._memory_format`, `SQLStore` (which
builds on `Conversation`) in `agentlib._sql_store`, loaded on first use; both are re-exported
here, the one place to import them from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agentlib._lazy import lazy_exports
from agentlib._memory_format import (
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
from agentlib._prompts import template
from agentlib.errors import ConfigurationError, ModelError
from agentlib.models.base import Message, Model
from agentlib.steps import RunResult, Step

if TYPE_CHECKING:
    from agentlib._sql_store import SQLStore

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

_CHARS_PER_TOKEN = 4  # the same deliberate over-estimate the loop uses
_SHORTENED = "…[shortened to fit the context: {total} characters]"


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
                Message(role="system", content=template("summary").substitute().strip()),
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
        header["saved_at"] = previous["saved_at"] if previous else utc_now().isoformat()
        header["updated_at"] = utc_now().isoformat()
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


# `SQLStore` lives in `agentlib._sql_store`, which builds on this module (it reads and writes
# `Conversation`s); loading it on first use also keeps sqlalchemy out of `import agentlib.memory`
# until a store is made.
__getattr__, __dir__ = lazy_exports(__name__, {"SQLStore": "agentlib._sql_store"}, __all__)

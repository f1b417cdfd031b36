"""Memory strategies: which earlier turns of a conversation a run sees.

`BudgetMemory` (the default: the most recent turns that fit the context budget), `WindowMemory`,
`SummaryMemory` (a running summary of older turns, written by a model) and `RetrievalMemory`
(old turns relevant to the task, through any `SearchIndex`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from agentlib._prompts import template
from agentlib.errors import ConfigurationError, ModelError
from agentlib.models.base import Message, Model

from ._format import Turn
from .index import KeywordIndex, SearchIndex

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = ["BudgetMemory", "MemoryStrategy", "RetrievalMemory", "SummaryMemory", "WindowMemory"]

logger = logging.getLogger("agentlib.memory")

_CHARS_PER_TOKEN = 4  # the same deliberate over-estimate the loop uses
_SHORTENED = "…[shortened to fit the context: {total} characters]"


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

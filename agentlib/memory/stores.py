"""Where conversations and run checkpoints are kept: the store protocols and `InMemoryStore`.

`SQLStore` (any SQLAlchemy URL) is in `sql_store.py`, loaded on first use. Both stores keep
conversations (`ConversationStore`) and the checkpoints of runs (`CheckpointStore`, what
`Agent(checkpoints=store)` writes after each step and `Agent.resume(run_id)` reads).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ._format import Turn, utc_now
from .conversation import Conversation

__all__ = ["CheckpointStore", "ConversationInfo", "ConversationStore", "InMemoryStore"]


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


@runtime_checkable
class CheckpointStore(Protocol):
    """Keeps each run's latest checkpoint (versioned JSON data), by run id.

    What `Agent(checkpoints=store)` writes after every step and `Agent.resume(run_id)` reads,
    in this process or another. Methods are synchronous (the run calls them from a worker
    thread); writers may be concurrent threads or processes.
    """

    def save_checkpoint(self, run_id: str, checkpoint: Mapping[str, Any]) -> None:
        """Write the run's checkpoint, replacing the one before, atomically."""
        ...

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest checkpoint, or `None` when the store has no run with this id."""
        ...


class InMemoryStore:
    """Keeps conversations and run checkpoints in this process, as JSON documents.

    Loads are independent copies. Thread-safe; for tests, docs and short-lived apps.
    """

    def __init__(self) -> None:
        self._conversations: dict[str, dict[str, Any]] = {}
        self._turns: dict[str, dict[str, dict[str, Any]]] = {}
        self._checkpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def save_checkpoint(self, run_id: str, checkpoint: Mapping[str, Any]) -> None:
        """Write the run's checkpoint, replacing the one before."""
        text = json.dumps(checkpoint, ensure_ascii=False)
        with self._lock:
            self._checkpoints[run_id] = text

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest checkpoint, or `None`."""
        with self._lock:
            text = self._checkpoints.get(run_id)
        return None if text is None else dict(json.loads(text))

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
        header = conversation.header()
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

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
  Both also keep run checkpoints (`CheckpointStore`): `Agent(checkpoints=store)` writes one
  after each step, and `Agent.resume(run_id)` continues the run from it in any process.

The JSON format (`Conversation.to_dict`, `Turn.to_dict`) carries `"version": 1`; every later
agentlib release reads version 1. A record that cannot be read is reported as a `LoadProblem`
naming its row, and the other records still load.

The package's modules: `conversation` (`Conversation`), `strategies`, `index` (`SearchIndex`,
`KeywordIndex`), `stores` (the protocol and `InMemoryStore`), `sql_store` (`SQLStore`, loaded on
first use) and `_format` (`Turn`, `LoadProblem`, the versioned records). Import every name from
here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlib import _lazy

from ._format import FORMAT_VERSION, LoadProblem, Turn
from .conversation import Conversation
from .index import IndexHit, KeywordHit, KeywordIndex, SearchIndex
from .stores import CheckpointStore, ConversationInfo, ConversationStore, InMemoryStore
from .strategies import BudgetMemory, MemoryStrategy, RetrievalMemory, SummaryMemory, WindowMemory

if TYPE_CHECKING:
    from .sql_store import SQLStore

__all__ = [
    "FORMAT_VERSION",
    "BudgetMemory",
    "CheckpointStore",
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

# `SQLStore` loads on first use, which keeps sqlalchemy out of `import agentlib.memory` until a
# store is made.
__getattr__, __dir__ = _lazy.lazy_exports(__name__, {"SQLStore": ".sql_store"}, __all__)

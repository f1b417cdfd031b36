"""`SyncSearch`: the base that gives a retriever with `asearch` its synchronous `search` twin.

Below `retrievers.py` and `bm25.py`, which both build on it; `HybridRetriever.search` asks
whether each of its retrievers is one (then it can search them without an event loop).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from agentlib.tools.retrieval.documents import MetadataFilter, SearchHit

__all__ = ["SyncSearch", "run_search"]


def run_search(coroutine: object) -> list[SearchHit]:
    """Run a retriever's `asearch` coroutine to its hits (outside an event loop)."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]


class SyncSearch(ABC):
    """Adds the synchronous `search` twin to a retriever with `asearch`."""

    @abstractmethod
    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The `k` best hits for `query`: each retriever's own search."""

    def search(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Synchronous `asearch` (outside an event loop)."""
        return run_search(self.asearch(query, k, filter=filter))

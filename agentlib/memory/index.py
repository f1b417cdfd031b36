"""The search index `RetrievalMemory` reads old turns through, and a keyword one built in."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agentlib.errors import ConfigurationError

__all__ = ["IndexHit", "KeywordHit", "KeywordIndex", "SearchIndex"]


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

"""Retrievers: a query in, ranked `SearchHit`s out, all behind the `Retriever` protocol.

- `DenseRetriever`: embed the query, search a vector index.
- `BM25Retriever`: lexical BM25 (bm25s) over the same chunks, scores computed for every chunk
  at once so metadata filters are exact (in `bm25.py` with its tokenizers, re-exported here).
- `HybridRetriever`: reciprocal-rank fusion of several retrievers (dense + BM25).
- `MMRRetriever`: maximal marginal relevance, trading a little relevance for less repetition.
- `MultiQueryRetriever` and `HyDERetriever`: query expansion by an agentlib `Model`
  (paraphrases, or a hypothetical answer passage whose embedding is searched).
- `RerankingRetriever` with a `Reranker` (the bundled `TermOverlapReranker` is lexical; plug a
  cross-encoder in through the protocol).

Retrievers are async first (`asearch`); `search` is the synchronous twin for scripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from agentlib import ConfigurationError, Model, agenerate_result
from agentlib._optional import optional_imports
from agentlib.tools.retrieval._sync_search import SyncSearch, run_search
from agentlib.tools.retrieval.bm25 import BM25Retriever, default_tokenize, word_tokenize
from agentlib.tools.retrieval.documents import Chunk, MetadataFilter, SearchHit, document_key
from agentlib.tools.retrieval.embedders import Embedder, normalize
from agentlib.tools.retrieval.indexes import VectorIndex, check_embedder

with optional_imports("retrieval", feature="agentlib.tools.retrieval"):
    import numpy as np

__all__ = [
    "BM25Retriever",
    "DenseRetriever",
    "HyDERetriever",
    "HybridRetriever",
    "MMRRetriever",
    "MultiQueryRetriever",
    "Reranker",
    "RerankingRetriever",
    "Retriever",
    "TermOverlapReranker",
    "best_per_document",
    "default_tokenize",
    "document_key",
    "reciprocal_rank_fusion",
    "word_tokenize",
]


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a text query with ranked chunks."""

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The `k` best chunks for `query` among those matching `filter`, best first."""
        ...


class DenseRetriever(SyncSearch):
    """Embed the query and search a vector index.

    Args:
        embedder: Must be the embedder the index was built with (checked).
        index: Any `VectorIndex`.

    Raises:
        IndexMismatchError: The index holds another embedder's vectors.
    """

    def __init__(self, embedder: Embedder, index: VectorIndex) -> None:
        check_embedder(index, embedder, "the index")
        self.embedder = embedder
        self.index = index

    def search(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Nearest chunks to the query's embedding, computed in the calling thread."""
        vector = self.embedder.embed([query])
        hits: list[SearchHit] = self.index.search(vector[0], k, filter=filter)
        return hits

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Nearest chunks to the query's embedding."""
        vector = await asyncio.to_thread(self.embedder.embed, [query])
        hits: list[SearchHit] = self.index.search(vector[0], k, filter=filter)
        return hits


def best_per_document(hits: Iterable[SearchHit], k: int | None = None) -> list[SearchHit]:
    """Keep the best-ranked chunk of each document (same `source`; `page` too when set).

    Hits keep their order; a chunk without a `source` counts as its own document.

    Args:
        hits: Ranked hits, best first.
        k: Stop after this many documents (default: all).
    """
    seen: set[tuple[str, object]] = set()
    kept: list[SearchHit] = []
    for hit in hits:
        key = document_key(hit.chunk)
        if key in seen:
            continue
        seen.add(key)
        kept.append(hit)
        if k is not None and len(kept) >= k:
            break
    return kept


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[SearchHit]],
    *,
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[SearchHit]:
    """Fuse rankings: each chunk scores `sum(weight / (k + rank))` over the lists it is in.

    Args:
        rankings: Ranked hit lists (best first), one per retriever or query.
        k: The RRF constant; larger values flatten the advantage of the top ranks.
        weights: One weight per ranking (default: all 1).
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ConfigurationError(f"got {len(weights)} weights for {len(rankings)} rankings")
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + weight / (k + rank)
            chunks.setdefault(hit.chunk.id, hit.chunk)
    ordered = sorted(scores.items(), key=lambda item: -item[1])
    return [SearchHit(chunk=chunks[chunk_id], score=score) for chunk_id, score in ordered]


class HybridRetriever(SyncSearch):
    """Several retrievers fused by reciprocal rank (typically dense + BM25).

    Args:
        retrievers: The retrievers to query concurrently.
        weights: One weight per retriever (default: all 1).
        rrf_k: The RRF constant.
        fetch_k: How many hits to take from each retriever before fusing.
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        *,
        weights: Sequence[float] | None = None,
        rrf_k: int = 60,
        fetch_k: int = 50,
    ) -> None:
        if not retrievers:
            raise ConfigurationError("HybridRetriever needs at least one retriever")
        if weights is not None and len(weights) != len(retrievers):
            raise ConfigurationError(f"got {len(weights)} weights for {len(retrievers)} retrievers")
        self.retrievers = list(retrievers)
        self.weights = list(weights) if weights is not None else None
        self.rrf_k = rrf_k
        self.fetch_k = fetch_k

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Query every retriever and fuse their rankings."""
        fetch = max(k, self.fetch_k)
        rankings = await asyncio.gather(
            *(r.asearch(query, fetch, filter=filter) for r in self.retrievers)
        )
        return reciprocal_rank_fusion(rankings, k=self.rrf_k, weights=self.weights)[:k]

    def search(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Synchronous `asearch`: one retriever after another when each has a `search` twin."""
        if not all(isinstance(r, SyncSearch) for r in self.retrievers):
            return run_search(self.asearch(query, k, filter=filter))
        fetch = max(k, self.fetch_k)
        rankings = [
            r.search(query, fetch, filter=filter)  # type: ignore[attr-defined]
            for r in self.retrievers
        ]
        return reciprocal_rank_fusion(rankings, k=self.rrf_k, weights=self.weights)[:k]


def maximal_marginal_relevance(
    query: np.ndarray, candidates: np.ndarray, k: int, *, diversity: float = 0.3
) -> list[int]:
    """Pick `k` candidate rows balancing similarity to `query` against similarity to picks.

    Args:
        query: The query vector (unit length).
        candidates: Candidate vectors (unit rows), best first.
        k: How many to pick.
        diversity: 0 keeps the relevance order; 1 maximises dissimilarity.
    """
    relevance = candidates @ query
    similarity = candidates @ candidates.T
    chosen: list[int] = []
    redundancy = np.full(len(candidates), -np.inf, dtype=np.float32)
    available = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        objective = (1 - diversity) * relevance - diversity * penalty
        objective[~available] = -np.inf
        pick = int(np.argmax(objective))
        chosen.append(pick)
        available[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return chosen


class MMRRetriever(SyncSearch):
    """Diversify another retriever's results by maximal marginal relevance.

    Args:
        retriever: Supplies `fetch_k` candidates.
        embedder: Embeds the query and candidates to measure redundancy.
        fetch_k: Candidates to choose from.
        diversity: 0 keeps the original order; 1 maximises dissimilarity.
    """

    def __init__(
        self,
        retriever: Retriever,
        embedder: Embedder,
        *,
        fetch_k: int = 20,
        diversity: float = 0.3,
    ) -> None:
        if not 0.0 <= diversity <= 1.0:
            raise ConfigurationError(f"diversity must be between 0 and 1, got {diversity}")
        self.retriever = retriever
        self.embedder = embedder
        self.fetch_k = fetch_k
        self.diversity = diversity

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Fetch candidates, then pick `k` relevant but mutually different ones."""
        hits = await self.retriever.asearch(query, max(k, self.fetch_k), filter=filter)
        if len(hits) <= 1:
            return hits[:k]
        texts = [query] + [hit.chunk.text for hit in hits]
        vectors = await asyncio.to_thread(self.embedder.embed, texts)
        picks = maximal_marginal_relevance(vectors[0], vectors[1:], k, diversity=self.diversity)
        return [hits[i] for i in picks]


_MULTI_QUERY_INSTRUCTIONS = (
    "You help a search engine. Rewrite the user's question as {count} different search "
    "queries that use other words or look at other aspects of the question. "
    "Return only the queries."
)
_HYDE_INSTRUCTIONS = (
    "Write one short passage (three or four sentences) that would answer the question, as "
    "found in a reference document. Plausible details are fine; it is used only for search."
)


class MultiQueryRetriever(SyncSearch):
    """Ask a model for paraphrases of the query, search them all, fuse by reciprocal rank.

    Args:
        retriever: Searches each query.
        model: Any agentlib `Model` (a `FunctionModel` in tests).
        queries: How many paraphrases to ask for.
        fetch_k: Hits per query before fusing.
    """

    def __init__(
        self, retriever: Retriever, model: Model, *, queries: int = 3, fetch_k: int = 20
    ) -> None:
        self.retriever = retriever
        self.model = model
        self.queries = queries
        self.fetch_k = fetch_k

    async def expand(self, query: str) -> list[str]:
        """The original query followed by the model's distinct paraphrases."""
        generation = await agenerate_result(
            self.model,
            list[str],
            query,
            instructions=_MULTI_QUERY_INSTRUCTIONS.format(count=self.queries),
            max_string_length=300,
        )
        paraphrases: list[str] = generation.output
        seen = {query.strip().lower()}
        queries = [query]
        for text in paraphrases:
            if text.strip() and text.strip().lower() not in seen:
                seen.add(text.strip().lower())
                queries.append(text.strip())
        return queries[: self.queries + 1]

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Search the query and its paraphrases; fuse."""
        queries = await self.expand(query)
        fetch = max(k, self.fetch_k)
        rankings = await asyncio.gather(
            *(self.retriever.asearch(text, fetch, filter=filter) for text in queries)
        )
        return reciprocal_rank_fusion(rankings)[:k]


class HyDERetriever(SyncSearch):
    """Hypothetical document embeddings: search with a model-written answer passage.

    The query's embedding and the passage's are averaged, so a wrong guess cannot pull the
    search entirely away from the question.

    Args:
        embedder: The index's embedder (checked).
        index: Any `VectorIndex`.
        model: Any agentlib `Model` that writes the passage.
    """

    def __init__(self, embedder: Embedder, index: VectorIndex, model: Model) -> None:
        check_embedder(index, embedder, "the index")
        self.embedder = embedder
        self.index = index
        self.model = model

    async def hypothetical_passage(self, query: str) -> str:
        """The model's answer passage for `query`."""
        generation = await agenerate_result(
            self.model, str, query, instructions=_HYDE_INSTRUCTIONS, max_string_length=1500
        )
        return str(generation.output)

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Embed the query and a hypothetical answer; search their normalised mean."""
        passage = await self.hypothetical_passage(query)
        vectors = await asyncio.to_thread(self.embedder.embed, [query, passage])
        combined = normalize(vectors.mean(axis=0))[0]
        hits: list[SearchHit] = self.index.search(combined, k, filter=filter)
        return hits


@runtime_checkable
class Reranker(Protocol):
    """Re-orders candidate hits for a query (a cross-encoder, an LLM judge, ...)."""

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """Return `hits` re-ordered (and re-scored), best first."""
        ...


class TermOverlapReranker:
    """A lexical reranker: the share of the query's distinct terms each chunk contains.

    Ties keep the incoming order. No cross-encoder model ships for offline use, so this is the
    bundled implementation; a cross-encoder fits the `Reranker` protocol in a few lines.

    Args:
        tokenize: Text to terms; default: words without English stop words.
    """

    def __init__(self, tokenize: Callable[[str], list[str]] = default_tokenize) -> None:
        self.tokenize = tokenize

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """Score by query-term coverage, highest first."""
        terms = set(self.tokenize(query))
        if not terms:
            return list(hits)
        scored = [
            SearchHit(
                chunk=hit.chunk,
                score=len(terms & set(self.tokenize(hit.chunk.text))) / len(terms),
            )
            for hit in hits
        ]
        return sorted(scored, key=lambda hit: -hit.score)


class RerankingRetriever(SyncSearch):
    """Fetch candidates from a retriever and re-order them with a `Reranker`.

    Args:
        retriever: Supplies candidates.
        reranker: Orders them.
        fetch_k: Candidates to rerank.
    """

    def __init__(self, retriever: Retriever, reranker: Reranker, *, fetch_k: int = 20) -> None:
        self.retriever = retriever
        self.reranker = reranker
        self.fetch_k = fetch_k

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Candidates, reranked, cut to `k`."""
        hits = await self.retriever.asearch(query, max(k, self.fetch_k), filter=filter)
        reranked = await asyncio.to_thread(self.reranker.rerank, query, hits)
        return reranked[:k]

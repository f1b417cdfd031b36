"""Retrievers: a query in, ranked `SearchHit`s out, all behind the `Retriever` protocol.

- `DenseRetriever`: embed the query, search a vector index.
- `BM25Retriever`: lexical BM25 (bm25s) over the same chunks, scores computed for every chunk
  at once so metadata filters are exact.
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
import functools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from agentlib import ConfigurationError, Model, agenerate_result
from agentlib._optional import optional_imports
from agentlib.tools.retrieval.documents import Chunk, MetadataFilter, SearchHit
from agentlib.tools.retrieval.embedders import Embedder, normalize
from agentlib.tools.retrieval.indexes import ChunkTable, VectorIndex, check_embedder

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


_INLINE_ROWS = 20_000  # BM25 indexes up to this many chunks are searched on the event loop
_DOCUMENT_FETCH = 4  # search_documents asks bm25s for this many chunks per wanted document


def _run(coroutine: object) -> list[SearchHit]:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


class _SyncSearch:
    """Adds the synchronous `search` twin to a retriever with `asearch`."""

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        raise NotImplementedError

    def search(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """Synchronous `asearch` (outside an event loop)."""
        return _run(self.asearch(query, k, filter=filter))


class DenseRetriever(_SyncSearch):
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


# bm25s's own token pattern (words of two or more characters), so agentlib's BM25 and bm25s
# with the same stemmer index the same terms.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STEMS: dict[str, str] = {}  # word -> Snowball stem; the vocabulary is small, stemming is not free
_STEM_LOCK = threading.Lock()  # a PyStemmer `Stemmer` must not be used by two threads at once
_STEM_CACHE_LIMIT = 1_000_000


@functools.cache
def _stop_words() -> frozenset[str]:
    with optional_imports("retrieval", feature="BM25Retriever"):
        from bm25s.stopwords import STOPWORDS_EN
    return frozenset(STOPWORDS_EN)


@functools.cache
def _english_stemmer() -> Any:
    with optional_imports("retrieval", feature="BM25Retriever"):
        import Stemmer
    return Stemmer.Stemmer("english")


def word_tokenize(text: str) -> list[str]:
    """Lower-cased words of two or more characters without English stop words; no stemming."""
    stop = _stop_words()
    return [word for word in _TOKEN.findall(text.lower()) if word not in stop]


def default_tokenize(text: str) -> list[str]:
    """Lower-cased words without English stop words, Snowball-stemmed (`"flows"` -> `"flow"`).

    The same terms bm25s indexes with `bm25s.tokenize(..., stopwords="en",
    stemmer=Stemmer.Stemmer("english"))`. Stems are cached per word.
    """
    words = word_tokenize(text)
    new = [word for word in set(words) if word not in _STEMS]
    if new:
        with _STEM_LOCK:
            stems = _english_stemmer().stemWords(new)
            if len(_STEMS) > _STEM_CACHE_LIMIT:
                _STEMS.clear()
            _STEMS.update(zip(new, stems, strict=True))
    stems_of = _STEMS
    return [stems_of.get(word) or _stem_one(word) for word in words]


def _stem_one(word: str) -> str:
    with _STEM_LOCK:  # the cache was cleared by another thread in between: stem it again
        stem: str = _english_stemmer().stemWord(word)
    return stem


class BM25Retriever(_SyncSearch):
    """Lexical BM25 ranking (bm25s) over chunks; rebuilt lazily after changes.

    Args:
        chunks: The initial chunks.
        tokenize: Text to terms; default: `default_tokenize` (lower-cased words without English
            stop words, Snowball-stemmed with PyStemmer). `word_tokenize` skips the stemming.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    def __init__(
        self,
        chunks: Iterable[Chunk] = (),
        *,
        tokenize: Callable[[str], list[str]] = default_tokenize,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.tokenize = tokenize
        self.k1 = k1
        self.b = b
        self._table = ChunkTable()
        self._model: object | None = None
        self._documents: np.ndarray | None = None  # row -> document number, for search_documents
        self.add(chunks)

    def __len__(self) -> int:
        return len(self._table)

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Insert or replace (by id) chunks."""
        table = self._table
        for chunk in chunks:
            if chunk.id in table.rows:
                table.chunks[table.rows[chunk.id]] = chunk
            else:
                table.rows[chunk.id] = len(table.chunks)
                table.chunks.append(chunk)
        table.invalidate()
        self._model = None
        self._documents = None

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; return how many were removed."""
        doomed = {i for i in ids if i in self._table.rows}
        if doomed:
            self._table.chunks = [c for c in self._table.chunks if c.id not in doomed]
            self._table.rebuild_rows()
            self._model = None
            self._documents = None
        return len(doomed)

    def _index(self) -> object:
        if self._model is None:
            with optional_imports("retrieval", feature="BM25Retriever"):
                import bm25s

            model = bm25s.BM25(k1=self.k1, b=self.b)
            corpus = [self.tokenize(chunk.text) for chunk in self._table.chunks]
            model.index(corpus, show_progress=False)
            self._model = model
        return self._model

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every chunk for `query`, in chunk order."""
        terms = self.tokenize(query)
        if not terms:
            # A query of stop words or punctuation ("the", "?!", "") matches nothing lexically;
            # bm25s would index an empty list (IndexError), so it is answered here.
            return np.zeros(len(self._table), dtype=np.float32)
        model = self._index()
        return np.asarray(model.get_scores(terms), dtype=np.float32)  # type: ignore[attr-defined]

    def search(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The best BM25 matches, computed in the calling thread (no event loop needed)."""
        rows, scores = _top(*self._matches(query, filter), k)
        chunks = self._table.chunks
        return [SearchHit(chunk=chunks[int(row)], score=float(scores[row])) for row in rows]

    def search_documents(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The best chunk of each of the `k` best-matching documents, best first.

        The same hits as `best_per_document(self.search(query, len(self)), k)`, but only the
        returned hits are built: the top `k * 4` chunks are ranked, and four times more only
        while those hold fewer than `k` documents (the chunks are scored once).
        """
        if k < 1:
            return []
        matched, scores = self._matches(query, filter)
        documents = self._document_numbers()
        fetch = k * _DOCUMENT_FETCH
        while True:
            rows, _ = _top(matched, scores, fetch)
            # The first (best) row of each document, in rank order.
            _, first = np.unique(documents[rows], return_index=True)
            best = rows[np.sort(first)[:k]]
            if len(best) >= k or len(rows) < fetch:
                chunks = self._table.chunks
                return [SearchHit(chunk=chunks[int(row)], score=float(scores[row])) for row in best]
            fetch *= _DOCUMENT_FETCH

    def _matches(self, query: str, filter: MetadataFilter | None) -> tuple[np.ndarray, np.ndarray]:
        """The rows that share a term with `query` (and pass `filter`), and every row's score."""
        table = self._table
        terms = self.tokenize(query)
        if not len(table) or not terms:
            return np.zeros(0, dtype=np.intp), np.zeros(len(table), dtype=np.float32)
        model: Any = self._index()
        mask = table.mask(filter)
        # bm25s's scores with the filter as its weight mask (filtered-out chunks score 0); the
        # top k is taken here, since bm25s's `retrieve` adds 0.1 ms of per-call bookkeeping to
        # the 0.04 ms of scoring 1,000 chunks (profiled).
        scores = np.asarray(
            model.get_scores(terms, weight_mask=None if mask is None else mask.astype(np.float32)),
            dtype=np.float32,
        )
        return np.flatnonzero(scores > 0), scores

    def _document_numbers(self) -> np.ndarray:
        """One integer per chunk row naming its document (see `document_key`)."""
        if self._documents is None:
            numbers: dict[tuple[str, object], int] = {}
            self._documents = np.fromiter(
                (
                    numbers.setdefault(document_key(chunk), len(numbers))
                    for chunk in self._table.chunks
                ),
                dtype=np.int64,
                count=len(self._table),
            )
        return self._documents

    async def asearch(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The best BM25 matches; chunks sharing no term with the query are not returned."""
        if len(self._table) <= _INLINE_ROWS:
            # Small indexes answer in well under a millisecond: a thread hop would cost more.
            return self.search(query, k, filter=filter)
        return await asyncio.to_thread(self.search, query, k, filter=filter)

    async def asearch_documents(
        self, query: str, k: int = 5, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The best chunk of each of the `k` best-matching documents (see `search_documents`)."""
        if len(self._table) <= _INLINE_ROWS:
            return self.search_documents(query, k, filter=filter)
        return await asyncio.to_thread(self.search_documents, query, k, filter=filter)


def _top(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best of `rows` by `scores`, best first, ties to the earlier row; and `scores`."""
    if k < 1:
        return rows[:0], scores
    if len(rows) > k:
        rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    return rows[np.lexsort((rows, -scores[rows]))], scores


def document_key(chunk: Chunk) -> tuple[str, object]:
    """Which document a chunk belongs to: its `source` and `page`; its own id without a source."""
    metadata = chunk.metadata
    source = metadata.get("source")
    return (str(source), metadata.get("page")) if source else (chunk.id, None)


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


class HybridRetriever(_SyncSearch):
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
        if not all(isinstance(r, _SyncSearch) for r in self.retrievers):
            return _run(self.asearch(query, k, filter=filter))
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


class MMRRetriever(_SyncSearch):
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


class MultiQueryRetriever(_SyncSearch):
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


class HyDERetriever(_SyncSearch):
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


class RerankingRetriever(_SyncSearch):
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

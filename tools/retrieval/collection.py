"""`Collection`: the whole pipeline in one object: load, split, embed, index, search, persist.

```python
collection = Collection(SentenceTransformerEmbedder())
collection.add_files("docs/")
hits = collection.search("How do I install it?", k=5)
collection.save("rag-index")
```

Loading is all-or-nothing: every file is loaded and split before the index changes, so a bad
file leaves what is already indexed untouched. Embedding then goes in batches, each indexed as
soon as it is embedded: a long ingest shows its progress, warns with an estimate when it will
take long, and an interruption (Ctrl-C, a failing embedder) keeps every finished batch; adding
the same chunks again replaces them by id, so a rerun finishes the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from agentlib import ConfigurationError
from agentlib._optional import available, optional_imports
from agentlib.tools.retrieval.documents import Chunk, Document, MetadataFilter, SearchHit
from agentlib.tools.retrieval.embedders import Embedder, SentenceTransformerEmbedder
from agentlib.tools.retrieval.indexes import (
    ExactIndex,
    VectorIndex,
    check_embedder,
    load_index,
)
from agentlib.tools.retrieval.loaders import DirectoryLoader, load_file
from agentlib.tools.retrieval.retrievers import (
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    Retriever,
    best_per_document,
)
from agentlib.tools.retrieval.splitters import (
    MarkdownHeaderSplitter,
    RecursiveSplitter,
    Splitter,
    TokenCounter,
    TokenSplitter,
)

__all__ = ["Collection", "SearchMode"]

logger = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "dense", "bm25"]
"""How `Collection.search` ranks: dense vectors, BM25, or both fused by reciprocal rank."""

_SETTINGS = "collection.json"
_BATCH = 256  # chunks embedded and indexed together: a few seconds each with MiniLM on 2 cores
_DEDUPLICATE_FETCH = 4  # chunks fetched per wanted document, multiplied again until k are found
# Hybrid fusion defaults, owned here and nowhere else: the grid's winner on the man-page
# collection's tuning half, which also beat the reference on the docstring collection's held-out
# half (benchmarks/retrieval.md, "Fusion defaults"). Equal weights: dense and BM25 were about
# equally strong there.
_RRF_K = 10
_WEIGHTS = (1.0, 1.0)
_WARN_SECONDS = 60.0  # an ingest estimated to take longer than this is announced
_MARKDOWN = (".md", ".markdown")


class Collection:
    """Documents made searchable: chunks in a vector index (and a BM25 index for hybrid search).

    Args:
        embedder: Embeds chunks and queries; default: the bundled all-MiniLM-L6-v2.
        index: Where vectors go; default: a new `ExactIndex` for the embedder.
        splitter: Cuts documents into chunks; default: by Markdown headings for `.md` files,
            then by the embedder's tokens (200 per chunk, 30 overlap) when it counts tokens,
            else by characters (1000, 150 overlap).
        mode: The default search mode.
        rrf_k: The reciprocal-rank-fusion constant for hybrid search.
        weights: Hybrid weights for (dense, BM25). The defaults of both were tuned on one
            collection's tuning queries and checked on another collection's held-out
            queries, where they beat a plain bm25s + sentence-transformers hybrid on both
            (`benchmarks/retrieval.md`).
        deduplicate: Return at most one chunk per document (its best one), so the chunks of one
            long document cannot crowd the others out of the top `k`; `False` returns chunks
            as ranked. `search(..., deduplicate=...)` overrides it per call.
        max_chunks: The most chunks one `add_*` call may embed; a larger ingest is refused
            before any embedding, with the count (`None`: no cap).
        progress: Show a progress bar while embedding more than one batch; `None` (the
            default) shows it when standard error is a terminal.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        index: VectorIndex | None = None,
        splitter: Splitter | None = None,
        mode: SearchMode = "hybrid",
        rrf_k: int = _RRF_K,
        weights: Sequence[float] = _WEIGHTS,
        deduplicate: bool = True,
        max_chunks: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if max_chunks is not None and max_chunks < 1:
            raise ConfigurationError(f"max_chunks must be at least 1 or None, got {max_chunks}")
        self.embedder = embedder if embedder is not None else SentenceTransformerEmbedder()
        if index is None:
            index = ExactIndex.for_embedder(self.embedder)
        else:
            check_embedder(index, self.embedder, "the index")
        self.index = index
        self.splitter = splitter
        self.mode = mode
        self.rrf_k = rrf_k
        self.weights = tuple(weights)
        self.deduplicate = deduplicate
        self.max_chunks = max_chunks
        self.progress = progress
        self._bm25 = BM25Retriever(index.chunks())

    def __len__(self) -> int:
        return len(self.index)

    def split(self, documents: Iterable[Document]) -> list[Chunk]:
        """Cut documents into chunks with the configured (or default) splitter."""
        documents = list(documents)
        if self.splitter is not None:
            split: list[Chunk] = self.splitter.split(documents)
            return split
        base: RecursiveSplitter | TokenSplitter
        if isinstance(self.embedder, TokenCounter):
            base = TokenSplitter(self.embedder, chunk_size=200, chunk_overlap=30)
        else:
            base = RecursiveSplitter(chunk_size=1000, chunk_overlap=150)
        markdown = MarkdownHeaderSplitter(splitter=base)
        chunks: list[Chunk] = []
        for document in documents:
            is_markdown = document.source.lower().endswith(_MARKDOWN)
            chunks.extend((markdown if is_markdown else base).split([document]))
        return chunks

    def add_chunks(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """Embed and index chunks (replacing chunks with the same id), batch by batch.

        Each batch is in the index as soon as it is embedded, so an interruption keeps the
        finished batches (and logs how many); adding the same chunks again completes the job.

        Raises:
            ConfigurationError: There are more chunks than `max_chunks`.
        """
        chunks = list(chunks)
        if not chunks:
            return []
        if self.max_chunks is not None and len(chunks) > self.max_chunks:
            raise ConfigurationError(
                f"this would embed {len(chunks)} chunks, more than max_chunks={self.max_chunks}; "
                "add fewer documents at a time, use larger chunks, or raise max_chunks"
            )
        bar = self._progress_bar(len(chunks))
        done = 0
        started = time.perf_counter()
        # Longest first: each batch then holds chunks of similar length, so the model pads
        # little (sentence-transformers sorts only within one call), and the first batch's
        # time makes a pessimistic estimate for the warning.
        ordered = sorted(chunks, key=lambda chunk: -len(chunk.text))
        try:
            for start in range(0, len(ordered), _BATCH):
                batch = ordered[start : start + _BATCH]
                vectors = self.embedder.embed([chunk.text for chunk in batch])
                self.index.add(batch, vectors)
                self._bm25.add(batch)
                done += len(batch)
                if bar is not None:
                    bar.update(len(batch))
                if start == 0 and done < len(chunks):
                    self._announce(len(chunks), done, time.perf_counter() - started)
        except BaseException:
            if done:
                logger.warning(
                    "embedding stopped after %d of %d chunks; those %d are indexed, and adding "
                    "the same chunks again finishes the job",
                    done,
                    len(chunks),
                    done,
                )
            raise
        finally:
            if bar is not None:
                bar.close()
        return chunks

    def _progress_bar(self, total: int) -> Any:
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show or total <= _BATCH:
            return None
        if not available("tqdm"):  # tqdm comes with the retrieval extra; without it, no bar
            return None
        with optional_imports("retrieval", feature="the progress bar"):
            from tqdm.auto import tqdm
        return tqdm(total=total, desc="Embedding", unit="chunk")

    def _announce(self, total: int, done: int, seconds: float) -> None:
        estimate = seconds / done * total
        if estimate > _WARN_SECONDS:
            logger.warning(
                "embedding %d chunks will take about %.0f s (%.0f chunks/s with %s); "
                "Ctrl-C keeps what is done, and Collection(max_chunks=...) caps an ingest",
                total,
                estimate,
                done / seconds,
                self.embedder.name,
            )

    def add_documents(self, documents: Iterable[Document]) -> list[Chunk]:
        """Split, embed and index documents; return the new chunks."""
        return self.add_chunks(self.split(documents))

    def add_files(self, *paths: str | os.PathLike[str]) -> list[Chunk]:
        """Load files and folders (every supported file inside), then index them.

        Every file is loaded before anything is indexed: one bad file raises
        `DocumentLoadError` naming it and nothing changes.
        """
        documents: list[Document] = []
        for path in paths:
            if Path(path).is_dir():
                documents.extend(DirectoryLoader().load(path))
            else:
                documents.extend(load_file(path))
        return self.add_documents(documents)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; return how many were removed."""
        ids = list(ids)
        self._bm25.delete(ids)
        removed: int = self.index.delete(ids)
        return removed

    def delete_source(self, source: str | os.PathLike[str]) -> int:
        """Remove every chunk of one source (a path as it was added)."""
        ids = [chunk.id for chunk in self.index.chunks() if chunk.source == str(source)]
        return self.delete(ids)

    def retriever(self, mode: SearchMode | None = None) -> Retriever:
        """The retriever behind `search` for `mode` (default: the collection's mode)."""
        mode = mode or self.mode
        dense = DenseRetriever(self.embedder, self.index)
        if mode == "dense":
            return dense
        if mode == "bm25":
            return self._bm25
        if mode == "hybrid":
            return HybridRetriever([dense, self._bm25], weights=self.weights, rrf_k=self.rrf_k)
        raise ConfigurationError(f"unknown search mode {mode!r}; use hybrid, dense or bm25")

    async def asearch(
        self,
        query: str,
        k: int = 5,
        *,
        filter: MetadataFilter | None = None,
        mode: SearchMode | None = None,
        deduplicate: bool | None = None,
    ) -> list[SearchHit]:
        """The `k` chunks that best answer `query`, optionally within a metadata `filter`.

        With `deduplicate` (the collection's setting by default) each document appears once,
        by its best chunk.
        """
        retriever = self.retriever(mode)
        if not self._deduplicates(deduplicate):
            hits: list[SearchHit] = await retriever.asearch(query, k, filter=filter)
            return hits
        per_document = getattr(retriever, "asearch_documents", None)
        if per_document is not None:  # BM25 builds hits only for the documents it returns
            found: list[SearchHit] = await per_document(query, k, filter=filter)
            return found
        fetch = k * _DEDUPLICATE_FETCH
        while True:
            hits = await retriever.asearch(query, fetch, filter=filter)
            best = best_per_document(hits, k)
            if len(best) >= k or len(hits) < fetch or fetch >= len(self):
                return best
            fetch *= _DEDUPLICATE_FETCH

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        filter: MetadataFilter | None = None,
        mode: SearchMode | None = None,
        deduplicate: bool | None = None,
    ) -> list[SearchHit]:
        """Synchronous `asearch`, computed in the calling thread (no event loop is started)."""
        retriever = self.retriever(mode)
        search = getattr(retriever, "search", None)
        if search is None:  # pragma: no cover - every built-in retriever has the twin
            return asyncio.run(
                self.asearch(query, k, filter=filter, mode=mode, deduplicate=deduplicate)
            )
        if not self._deduplicates(deduplicate):
            hits: list[SearchHit] = search(query, k, filter=filter)
            return hits
        per_document = getattr(retriever, "search_documents", None)
        if per_document is not None:  # BM25 builds hits only for the documents it returns
            found: list[SearchHit] = per_document(query, k, filter=filter)
            return found
        fetch = k * _DEDUPLICATE_FETCH
        while True:
            hits = search(query, fetch, filter=filter)
            best = best_per_document(hits, k)
            if len(best) >= k or len(hits) < fetch or fetch >= len(self):
                return best
            fetch *= _DEDUPLICATE_FETCH

    def _deduplicates(self, deduplicate: bool | None) -> bool:
        return self.deduplicate if deduplicate is None else deduplicate

    def save(self, path: str | os.PathLike[str]) -> None:
        """Persist the index and settings to the folder `path`."""
        folder = Path(path)
        self.index.save(folder / "index")
        settings: dict[str, Any] = {
            "mode": self.mode,
            "rrf_k": self.rrf_k,
            "weights": list(self.weights),
            "deduplicate": self.deduplicate,
            "embedder": self.embedder.name,
        }
        (folder / _SETTINGS).write_text(json.dumps(settings, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        embedder: Embedder | None = None,
        *,
        splitter: Splitter | None = None,
    ) -> Collection:
        """Open a collection saved with `save`, checking `embedder` is the one it was built with.

        Raises:
            IndexMismatchError: The saved index comes from another embedder or dimension.
        """
        folder = Path(path)
        settings_file = folder / _SETTINGS
        if not settings_file.is_file():
            raise ConfigurationError(
                f"{str(folder)!r} is not a saved collection (no {_SETTINGS}); "
                "pass the folder given to Collection.save"
            )
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        embedder = embedder if embedder is not None else SentenceTransformerEmbedder()
        index = load_index(folder / "index", embedder=embedder)
        return cls(
            embedder,
            index=index,
            splitter=splitter,
            mode=settings["mode"],
            rrf_k=int(settings["rrf_k"]),
            weights=settings["weights"],
            deduplicate=bool(settings.get("deduplicate", True)),
        )

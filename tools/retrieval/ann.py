"""`ANNIndex`: approximate nearest-neighbour search in process (HNSW graph from usearch).

Chosen by measurement against faiss-cpu (`IndexHNSWFlat`) and hnswlib on the same data
(`benchmarks/retrieval.md`): all three reach the recall target; usearch is the one that also
deletes natively, returns stored vectors by key (used for exact search inside a filter), can
store vectors as float16 to halve memory, and saves/restores or memory-maps one file.

Filtered searches: when the filter leaves few rows (`exact_filter_limit`), those rows are
scored exactly; otherwise the graph is searched with a growing candidate count and the
results filtered, so a filtered search still returns `k` hits when `k` exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from agentlib import ConfigurationError
from agentlib._optional import optional_imports
from agentlib.tools.retrieval.documents import Chunk, MetadataFilter, SearchHit
from agentlib.tools.retrieval.embedders import Embedder, Vectors
from agentlib.tools.retrieval.errors import IndexMismatchError
from agentlib.tools.retrieval.indexes import (
    FORMAT_VERSION,
    ChunkTable,
    check_embedder,
    check_vectors,
    read_chunks,
    read_manifest,
    replace_directory,
    top_k,
    write_chunks,
    write_manifest,
)

with optional_imports("retrieval", feature="ANNIndex"):
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ANNIndex"]


def _usearch() -> Any:
    with optional_imports("retrieval", feature="ANNIndex"):
        from usearch import index as usearch_index
    return usearch_index


class ANNIndex:
    """An HNSW index (usearch) for large collections: sub-millisecond queries at a million.

    Args:
        dimension: The vector length.
        embedder_name: The name of the embedder whose vectors go in.
        connectivity: Graph edges per node (HNSW `M`); more is more recall and memory.
        expansion_add: Candidates considered while inserting (`ef_construction`).
        expansion_search: Candidates considered per query (`ef`); raise it for recall. At 1M
            vectors, 64 gave recall@10 0.90 and 128 gave 0.98 (`benchmarks/retrieval.md`).
        storage: `f32`, or `f16` to halve the vectors' memory at a tiny cost in precision.
        threads: Threads for bulk adds (0: all cores).
        exact_filter_limit: Filters matching at most this many chunks are searched exactly.
    """

    kind = "ann"

    def __init__(
        self,
        dimension: int,
        *,
        embedder_name: str,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 128,
        storage: Literal["f32", "f16"] = "f32",
        threads: int = 0,
        exact_filter_limit: int = 50_000,
    ) -> None:
        if dimension < 1:
            raise ConfigurationError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self._embedder_name = embedder_name
        self._settings = {
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
            "storage": storage,
        }
        self.threads = threads
        self.exact_filter_limit = exact_filter_limit
        self._index = _usearch().Index(
            ndim=dimension,
            metric="ip",
            dtype=storage,
            connectivity=connectivity,
            expansion_add=expansion_add,
            expansion_search=expansion_search,
        )
        self._table = ChunkTable()
        self._keys: NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._next_key = 0

    @classmethod
    def for_embedder(cls, embedder: Embedder, **options: Any) -> ANNIndex:
        """An empty index for `embedder`'s vectors; `options` as for the constructor."""
        return cls(embedder.dimension, embedder_name=embedder.name, **options)

    @property
    def dimension(self) -> int:
        """The vector length."""
        return self._dimension

    @property
    def embedder_name(self) -> str:
        """The embedder the vectors come from."""
        return self._embedder_name

    @property
    def expansion_search(self) -> int:
        """Candidates considered per query; raise it for recall, lower it for speed."""
        return int(self._index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._index.expansion_search = value
        self._settings["expansion_search"] = value

    @property
    def memory_bytes(self) -> int:
        """Memory held by the graph and vectors (chunk texts not included)."""
        return int(self._index.memory_usage)

    def __len__(self) -> int:
        return len(self._table)

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace (by id) `chunks` with their vectors."""
        array = check_vectors(self, chunks, vectors)
        if not chunks:
            return
        self.delete([chunk.id for chunk in chunks if chunk.id in self._table.rows])
        keys = np.arange(self._next_key, self._next_key + len(chunks), dtype=np.uint64)
        self._index.add(keys, array, threads=self.threads)
        self._next_key += len(chunks)
        self._keys = np.concatenate([self._keys, keys])
        for chunk in chunks:
            self._table.rows[chunk.id] = len(self._table.chunks)
            self._table.chunks.append(chunk)
        self._table.invalidate()

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; unknown ids are ignored."""
        rows = sorted({self._table.rows[i] for i in ids if i in self._table.rows})
        if not rows:
            return 0
        self._index.remove(self._keys[rows])
        keep = np.ones(len(self._table.chunks), dtype=bool)
        keep[rows] = False
        self._keys = self._keys[keep]
        self._table.chunks = [c for c, kept in zip(self._table.chunks, keep, strict=True) if kept]
        self._table.rebuild_rows()
        return len(rows)

    def search(
        self, vector: Vectors, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """About the `k` best chunks by inner product among those matching `filter`."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._dimension:
            raise IndexMismatchError(
                f"the query vector is {query.shape[0]}-d; the index holds {self._dimension}-d "
                f"vectors from {self._embedder_name!r}",
                expected=str(self._dimension),
                actual=str(query.shape[0]),
            )
        if not len(self._table) or k <= 0:
            return []
        mask = self._table.mask(filter)
        if mask is not None:
            rows = np.flatnonzero(mask)
            if len(rows) <= self.exact_filter_limit:
                return self._search_rows(query, rows, k)
        return self._search_graph(query, k, mask)

    def search_batch(self, vectors: Vectors, k: int = 10) -> list[list[SearchHit]]:
        """Unfiltered `search` for several queries at once (threads used across queries)."""
        matches = self._index.search(np.asarray(vectors, dtype=np.float32), k, threads=self.threads)
        return [
            self._hits(matches.keys[i][: matches.counts[i]], matches.distances[i])
            for i in range(len(vectors))
        ]

    def _search_rows(self, query: Vectors, rows: NDArray[np.intp], k: int) -> list[SearchHit]:
        if not len(rows):
            return []
        vectors = np.stack(self._index.get(self._keys[rows], dtype=np.float32))
        scores = vectors @ query
        best = top_k(scores, k)
        return [SearchHit(chunk=self._table.chunks[rows[i]], score=float(scores[i])) for i in best]

    def _search_graph(
        self, query: Vectors, k: int, mask: NDArray[np.bool_] | None
    ) -> list[SearchHit]:
        count = min(len(self._table), k if mask is None else k * 4)
        while True:
            matches = self._index.search(query, count)
            hits = self._hits(matches.keys, matches.distances, mask)
            if len(hits) >= k or count >= len(self._table):
                return hits[:k]
            count = min(len(self._table), count * 4)

    def _hits(
        self,
        keys: NDArray[np.uint64],
        distances: NDArray[np.float32],
        mask: NDArray[np.bool_] | None = None,
    ) -> list[SearchHit]:
        rows = np.searchsorted(self._keys, keys)
        hits = []
        for row, distance in zip(rows, distances, strict=False):
            if mask is not None and not mask[row]:
                continue
            # usearch's inner-product distance is 1 - similarity.
            hits.append(SearchHit(chunk=self._table.chunks[row], score=float(1.0 - distance)))
        return hits

    def chunks(self) -> list[Chunk]:
        """Every chunk, in insertion order."""
        return list(self._table.chunks)

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the index to the folder `path` (replaced atomically if it exists)."""
        if path is None:
            raise ConfigurationError("ANNIndex.save needs a folder path")

        def write(directory: Path) -> None:
            self._index.save(str(directory / "graph.usearch"))
            np.save(directory / "keys.npy", self._keys)
            write_chunks(directory, self._table.chunks)
            write_manifest(
                directory,
                {
                    "format": FORMAT_VERSION,
                    "kind": self.kind,
                    "dimension": self._dimension,
                    "embedder": self._embedder_name,
                    "count": len(self),
                    "next_key": self._next_key,
                    "settings": self._settings,
                },
            )

        replace_directory(Path(path), write)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> ANNIndex:
        """Read an index saved with `save`; with `embedder`, check it made the vectors.

        Raises:
            IndexMismatchError: The index was built by another embedder or dimension.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        if manifest["kind"] != cls.kind:
            raise ConfigurationError(
                f"{str(folder)!r} holds a {manifest['kind']!r} index; use load_index()"
            )
        index = cls(
            int(manifest["dimension"]),
            embedder_name=str(manifest["embedder"]),
            **manifest["settings"],
        )
        if embedder is not None:
            check_embedder(index, embedder, f"the index at {str(folder)!r}")
        index._index.load(str(folder / "graph.usearch"))
        index._keys = np.load(folder / "keys.npy")
        index._next_key = int(manifest["next_key"])
        index._table.chunks = read_chunks(folder)
        index._table.rebuild_rows()
        return index

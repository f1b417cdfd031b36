"""Vector indexes behind one protocol, and the exact in-process default, `ExactIndex`.

Every index stores chunks with their vectors, upserts by chunk id, deletes by id or metadata,
searches by inner product (cosine, since embedders normalise) with metadata filters, and
persists. An index records the embedder name and dimension it was built with and refuses
vectors or a saved index that do not match, before changing anything.

`ExactIndex` keeps the vectors in one float32 numpy matrix and scores a query against all of
them with one matrix-vector product; filters are vectorised comparisons on metadata columns.
For millions of vectors use `agentlib.tools.retrieval.ann.ANNIndex`; for a server,
`agentlib.tools.retrieval.milvus.MilvusIndex`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agentlib import ConfigurationError
from agentlib._optional import optional_imports
from agentlib.tools.retrieval.documents import Chunk, MetadataFilter, SearchHit
from agentlib.tools.retrieval.embedders import Embedder, Vectors
from agentlib.tools.retrieval.errors import IndexMismatchError

with optional_imports("retrieval", feature="agentlib.tools.retrieval"):
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ExactIndex", "VectorIndex", "load_index"]

FORMAT_VERSION = 1
_MANIFEST = "manifest.json"


@runtime_checkable
class VectorIndex(Protocol):
    """What retrievers consume: chunks with vectors, searchable with metadata filters."""

    @property
    def dimension(self) -> int:
        """The vector length the index holds."""
        ...

    @property
    def embedder_name(self) -> str:
        """The name of the embedder whose vectors the index holds."""
        ...

    def __len__(self) -> int:
        """The number of chunks."""
        ...

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace (by id) `chunks` with their `vectors` (one row each).

        Raises:
            IndexMismatchError: The vectors' dimension differs from the index's.
        """
        ...

    def delete(self, ids: Iterable[str]) -> int:
        """Remove the chunks with these ids; return how many were removed."""
        ...

    def search(
        self, vector: Vectors, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The `k` chunks most similar to `vector` among those matching `filter`, best first."""
        ...

    def chunks(self) -> list[Chunk]:
        """Every chunk, in insertion order."""
        ...

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Persist the index (to `path` for in-process indexes; servers persist themselves)."""
        ...


def check_vectors(index: VectorIndex, chunks: Sequence[Chunk], vectors: Vectors) -> Vectors:
    """Validate a batch for `index.add`; return it as a contiguous float32 matrix."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != len(chunks):
        raise ConfigurationError(
            f"got {len(chunks)} chunks but vectors of shape {array.shape}; "
            "pass one vector row per chunk"
        )
    if array.shape[1] != index.dimension:
        raise IndexMismatchError(
            f"the index holds {index.dimension}-d vectors from {index.embedder_name!r} but "
            f"got {array.shape[1]}-d vectors; embed with the index's embedder or build a new "
            "index",
            expected=str(index.dimension),
            actual=str(array.shape[1]),
        )
    ids = [chunk.id for chunk in chunks]
    if len(set(ids)) != len(ids):
        raise ConfigurationError("chunk ids repeat within one add; give each chunk a unique id")
    return np.ascontiguousarray(array)


def check_embedder(index: VectorIndex, embedder: Embedder, where: str) -> None:
    """Raise `IndexMismatchError` unless `embedder` made the vectors in `index`."""
    if embedder.name != index.embedder_name:
        raise IndexMismatchError(
            f"{where} was built with embedder {index.embedder_name!r}, not {embedder.name!r}; "
            "use the same embedder, or re-index the documents with the new one",
            expected=index.embedder_name,
            actual=embedder.name,
        )
    if embedder.dimension != index.dimension:
        raise IndexMismatchError(
            f"{where} holds {index.dimension}-d vectors but embedder {embedder.name!r} makes "
            f"{embedder.dimension}-d vectors",
            expected=str(index.dimension),
            actual=str(embedder.dimension),
        )


def top_k(scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Indices of the `k` largest finite scores, best first (no full sort)."""
    finite = int(np.isfinite(scores).sum())
    k = min(k, finite)
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    if k < scores.shape[0]:
        candidates = np.argpartition(scores, scores.shape[0] - k)[-k:]
    else:
        candidates = np.arange(scores.shape[0])
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order]


class ChunkTable:
    """Chunks by row with vectorised metadata filters; shared by the in-process indexes."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.rows: dict[str, int] = {}
        self._columns: dict[str, NDArray[Any]] = {}

    def __len__(self) -> int:
        return len(self.chunks)

    def invalidate(self) -> None:
        """Forget cached metadata columns (after any change)."""
        self._columns.clear()

    def rebuild_rows(self) -> None:
        """Recompute the id to row map after rows moved."""
        self.rows = {chunk.id: row for row, chunk in enumerate(self.chunks)}
        self.invalidate()

    def column(self, key: str) -> NDArray[Any]:
        """The metadata values under `key`, one per row (None where missing)."""
        if key not in self._columns:
            values = np.empty(len(self.chunks), dtype=object)
            values[:] = [_hashable(chunk.metadata.get(key)) for chunk in self.chunks]
            self._columns[key] = values
        return self._columns[key]

    def mask(self, filter: MetadataFilter | None) -> NDArray[np.bool_] | None:
        """Rows matching every key of `filter` (None when there is no filter)."""
        if not filter:
            return None
        mask = np.ones(len(self.chunks), dtype=bool)
        for key, wanted in filter.items():
            column = self.column(key)
            if isinstance(wanted, (list, tuple, set, frozenset)):
                allowed = {_hashable(item) for item in wanted}
                mask &= np.frompyfunc(allowed.__contains__, 1, 1)(column).astype(bool)
            else:
                mask &= column == _hashable(wanted)
        return mask


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write `manifest.json` into `directory`."""
    (directory / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check the manifest of a saved index folder."""
    file = path / _MANIFEST
    if not file.is_file():
        raise ConfigurationError(
            f"{str(path)!r} is not a saved index: it has no {_MANIFEST}; "
            "pass the folder given to save()"
        )
    manifest: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION:
        raise ConfigurationError(
            f"{str(path)!r} was saved in format {manifest.get('format')!r}; this version "
            f"reads format {FORMAT_VERSION}; re-index the documents"
        )
    return manifest


def write_chunks(directory: Path, chunks: Sequence[Chunk]) -> None:
    """Write chunks as JSON Lines."""
    with (directory / "chunks.jsonl").open("w", encoding="utf-8") as file:
        for chunk in chunks:
            record = {"id": chunk.id, "text": chunk.text, "metadata": chunk.metadata}
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_chunks(directory: Path) -> list[Chunk]:
    """Read chunks written by `write_chunks`."""
    with (directory / "chunks.jsonl").open(encoding="utf-8") as file:
        return [
            Chunk(id=record["id"], text=record["text"], metadata=record["metadata"])
            for record in map(json.loads, file)
        ]


def check_saved_vectors(
    folder: Path, shape: tuple[int, ...], *, chunks: int, dimension: int
) -> None:
    """Refuse a saved vector array whose shape does not fit its manifest and chunks, saying how.

    Raises:
        ConfigurationError: The array is not `chunks` rows of `dimension` numbers.
    """
    problem = None
    if len(shape) != 2:
        problem = f"vectors.npy has {len(shape)} dimension(s), expected a 2-D array"
    elif shape[1] != dimension:
        problem = (
            f"vectors.npy holds {shape[1]}-dimensional vectors, but the manifest says "
            f"{dimension} (expected shape ({chunks}, {dimension}), found {shape})"
        )
    elif shape[0] != chunks:
        problem = f"vectors.npy holds {shape[0]} vectors for {chunks} chunks"
    if problem is not None:
        raise ConfigurationError(f"{str(folder)!r} is damaged: {problem}; re-index the documents")


def replace_directory(target: Path, write: Any) -> None:
    """Write a folder next to `target` with `write(folder)`, then swap it in.

    A crash while writing leaves the previous save intact.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp, which makes the folder 0700: a saved index is an ordinary folder that gets
    # the user's umask (an index built as root in an image is served as another uid on Spaces).
    staging = target.with_name(f".{target.name}.{secrets.token_hex(8)}")
    staging.mkdir(mode=0o777)
    try:
        write(staging)
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class ExactIndex:
    """Exact nearest-neighbour search in process: one numpy matrix, one product per query.

    Args:
        dimension: The vector length.
        embedder_name: The name of the embedder whose vectors go in.
    """

    kind = "exact"

    def __init__(self, dimension: int, *, embedder_name: str) -> None:
        if dimension < 1:
            raise ConfigurationError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self._embedder_name = embedder_name
        # Rows beyond len(self) are spare capacity, so adding in many small batches stays
        # linear overall (the buffer doubles instead of being copied on every add).
        self._buffer: NDArray[np.float32] = np.zeros((0, dimension), dtype=np.float32)
        self._table = ChunkTable()

    @classmethod
    def for_embedder(cls, embedder: Embedder) -> ExactIndex:
        """An empty index for `embedder`'s vectors."""
        return cls(embedder.dimension, embedder_name=embedder.name)

    @property
    def dimension(self) -> int:
        """The vector length."""
        return self._dimension

    @property
    def embedder_name(self) -> str:
        """The embedder the vectors come from."""
        return self._embedder_name

    def __len__(self) -> int:
        return len(self._table)

    @property
    def _vectors(self) -> NDArray[np.float32]:
        return self._buffer[: len(self._table)]

    @property
    def vectors(self) -> NDArray[np.float32]:
        """The stored vectors, one row per chunk in `chunks()` order (read-only view)."""
        view = self._vectors.view()
        view.flags.writeable = False
        return view

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace (by id) `chunks` with their vectors."""
        array = check_vectors(self, chunks, vectors)
        table = self._table
        existing = [
            (position, table.rows[c.id]) for position, c in enumerate(chunks) if c.id in table.rows
        ]
        new = [position for position, c in enumerate(chunks) if c.id not in table.rows]
        if existing:
            positions, rows = (np.array(side) for side in zip(*existing, strict=True))
            self._vectors[rows] = array[positions]
            for position, row in existing:
                table.chunks[row] = chunks[position]
        if new:
            self._reserve(len(table.chunks) + len(new))
            start = len(table.chunks)
            self._buffer[start : start + len(new)] = array[new]
            for position in new:
                table.rows[chunks[position].id] = len(table.chunks)
                table.chunks.append(chunks[position])
        table.invalidate()

    def _reserve(self, rows: int) -> None:
        if rows > self._buffer.shape[0]:
            grown = np.zeros((max(rows, 2 * self._buffer.shape[0]), self._dimension), np.float32)
            grown[: len(self._table)] = self._vectors
            self._buffer = grown

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; unknown ids are ignored."""
        table = self._table
        rows = sorted({table.rows[i] for i in ids if i in table.rows})
        if not rows:
            return 0
        keep = np.ones(len(table.chunks), dtype=bool)
        keep[rows] = False
        self._buffer = np.ascontiguousarray(self._vectors[keep])
        table.chunks = [chunk for chunk, kept in zip(table.chunks, keep, strict=True) if kept]
        table.rebuild_rows()
        return len(rows)

    def delete_where(self, filter: MetadataFilter) -> int:
        """Remove every chunk matching `filter` (for example `{"source": "a.md"}`)."""
        mask = self._table.mask(filter)
        if mask is None:
            raise ConfigurationError("delete_where needs a non-empty filter")
        return self.delete([self._table.chunks[row].id for row in np.flatnonzero(mask)])

    def search(
        self, vector: Vectors, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The `k` best chunks by inner product among those matching `filter`."""
        return self.search_batch(np.asarray(vector, dtype=np.float32)[None, :], k, filter=filter)[0]

    def search_batch(
        self, vectors: Vectors, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[list[SearchHit]]:
        """`search` for several query vectors at once (one matrix product)."""
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self._dimension:
            raise IndexMismatchError(
                f"query vectors have shape {queries.shape}; the index holds "
                f"{self._dimension}-d vectors from {self._embedder_name!r}",
                expected=str(self._dimension),
                actual=str(queries.shape[-1]),
            )
        if not len(self._table):
            return [[] for _ in range(queries.shape[0])]
        mask = self._table.mask(filter)
        if mask is not None:
            rows = np.flatnonzero(mask)
            scores = queries @ self._vectors[rows].T
        else:
            rows = None
            scores = queries @ self._vectors.T
        results = []
        for row_scores in scores:
            best = top_k(row_scores, k)
            chosen = best if rows is None else rows[best]
            results.append(
                [
                    SearchHit(chunk=self._table.chunks[row], score=float(score))
                    for row, score in zip(chosen, row_scores[best], strict=True)
                ]
            )
        return results

    def chunks(self) -> list[Chunk]:
        """Every chunk, in row order."""
        return list(self._table.chunks)

    def get(self, ids: Iterable[str]) -> list[Chunk]:
        """The chunks with these ids (unknown ids are skipped)."""
        return [self._table.chunks[self._table.rows[i]] for i in ids if i in self._table.rows]

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the index to the folder `path` (replaced atomically if it exists)."""
        if path is None:
            raise ConfigurationError("ExactIndex.save needs a folder path")

        def write(directory: Path) -> None:
            np.save(directory / "vectors.npy", self._vectors)
            write_chunks(directory, self._table.chunks)
            write_manifest(directory, self._manifest())

        replace_directory(Path(path), write)

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "dimension": self._dimension,
            "embedder": self._embedder_name,
            "count": len(self),
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> ExactIndex:
        """Read an index saved with `save`; with `embedder`, check it made the vectors.

        Raises:
            IndexMismatchError: The index was built by another embedder or dimension.
            ConfigurationError: `path` is not a saved exact index.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        if manifest["kind"] != cls.kind:
            raise ConfigurationError(
                f"{str(folder)!r} holds a {manifest['kind']!r} index; use load_index()"
            )
        index = cls(int(manifest["dimension"]), embedder_name=str(manifest["embedder"]))
        if embedder is not None:
            check_embedder(index, embedder, f"the index at {str(folder)!r}")
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        chunks = read_chunks(folder)
        check_saved_vectors(folder, vectors.shape, chunks=len(chunks), dimension=index.dimension)
        index._buffer = np.ascontiguousarray(vectors, dtype=np.float32)
        index._table.chunks = chunks
        index._table.rebuild_rows()
        return index


def load_index(path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> VectorIndex:
    """Load a saved in-process index of any kind (exact or ANN), checking the embedder.

    Raises:
        IndexMismatchError: `embedder` is not the one the index was built with.
    """
    manifest = read_manifest(Path(path))
    if manifest["kind"] == ExactIndex.kind:
        return ExactIndex.load(path, embedder=embedder)
    if manifest["kind"] == "ann":
        from agentlib.tools.retrieval.ann import ANNIndex

        index: VectorIndex = ANNIndex.load(path, embedder=embedder)
        return index
    raise ConfigurationError(f"{str(path)!r} holds an unknown index kind {manifest['kind']!r}")

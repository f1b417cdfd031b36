"""`MilvusIndex`: the scale-out backend, on Milvus through pymilvus.

The same code talks to milvus-lite (a local file URI such as `./rag.db`, embedded, used by
the tests) and to a Milvus server or cluster (`http://host:19530`, with `token=`). A
collection holds `id`, `vector`, `text` and a JSON `metadata` field; a collection property
records the embedder, so reopening it with another embedder fails with `IndexMismatchError`.
Metadata filters become Milvus boolean expressions on the JSON field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from agentlib import ConfigurationError
from agentlib._optional import optional_imports
from agentlib.tools.retrieval.documents import Chunk, MetadataFilter, SearchHit
from agentlib.tools.retrieval.embedders import Embedder, Vectors
from agentlib.tools.retrieval.errors import IndexMismatchError
from agentlib.tools.retrieval.indexes import check_embedder, check_vectors

__all__ = ["MilvusIndex", "filter_expression"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMBEDDER_PROPERTY = "agentlib.embedder"
_MAX_TEXT = 65_535
_PAGE = 1000


def filter_expression(filter: MetadataFilter | None) -> str:
    """Translate a metadata filter to a Milvus boolean expression on the `metadata` field.

    Raises:
        ConfigurationError: A key is not a plain identifier, or a value is not a JSON scalar.
    """
    if not filter:
        return ""
    clauses = []
    for key, wanted in filter.items():
        if not _KEY.match(key):
            raise ConfigurationError(
                f"metadata filter key {key!r} is not a plain identifier (letters, digits, _)"
            )
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        for value in values:
            if not isinstance(value, (str, int, float, bool)):
                raise ConfigurationError(
                    f"metadata filter value {value!r} for {key!r} must be a string, number or bool"
                )
        # milvus-lite accepts `in` only on plain fields, so lists become `or` chains.
        alternatives = [f'metadata["{key}"] == {json.dumps(value)}' for value in values]
        if not alternatives:
            alternatives = ["false"]
        clauses.append(f"({' or '.join(alternatives)})")
    return " and ".join(clauses)


class MilvusIndex:
    """A Milvus collection as a `VectorIndex`.

    Opens the collection when it exists (checking the embedder and dimension it was made with)
    and creates it otherwise.

    Args:
        uri: A milvus-lite file (`./rag.db`) or a server URL (`http://localhost:19530`).
        collection: The collection name.
        dimension: The vector length (taken from `embedder` when given).
        embedder_name: The embedder's name (taken from `embedder` when given).
        embedder: The embedder whose vectors go in.
        token: The server token (`user:password` or an API key), if it needs one.
        client: An existing `pymilvus.MilvusClient` to use instead of connecting.
        consistency: Milvus consistency level; `Strong` makes writes visible to the next read.
    """

    kind = "milvus"

    def __init__(
        self,
        uri: str | os.PathLike[str] = "agentlib.db",
        *,
        collection: str = "chunks",
        dimension: int | None = None,
        embedder_name: str | None = None,
        embedder: Embedder | None = None,
        token: str | None = None,
        client: Any = None,
        consistency: str = "Strong",
    ) -> None:
        if embedder is not None:
            dimension, embedder_name = embedder.dimension, embedder.name
        if client is None:
            with optional_imports("retrieval", feature="MilvusIndex"):
                # pymilvus imports scipy.sparse lazily on its first search, from a worker
                # thread, and that import raced another one in CI ("partially initialized
                # module scipy.sparse._base"); importing it here, once, avoids the race.
                import scipy.sparse  # noqa: F401
                from pymilvus import MilvusClient
            client = MilvusClient(str(uri), token=token or "")
        self._client = client
        self._uri = str(uri)
        self.collection = collection
        self._consistency = consistency
        if self._client.has_collection(collection):
            self._dimension, self._embedder_name = self._describe()
            if embedder is not None:
                check_embedder(self, embedder, f"Milvus collection {collection!r} at {self._uri}")
            elif dimension is not None and dimension != self._dimension:
                raise IndexMismatchError(
                    f"Milvus collection {collection!r} holds {self._dimension}-d vectors, "
                    f"not {dimension}-d",
                    expected=str(self._dimension),
                    actual=str(dimension),
                )
        else:
            if dimension is None or embedder_name is None:
                raise ConfigurationError(
                    f"Milvus collection {collection!r} does not exist yet; pass embedder= "
                    "(or dimension= and embedder_name=) to create it"
                )
            self._dimension, self._embedder_name = dimension, embedder_name
            self._create()
        self._client.load_collection(collection)

    def _describe(self) -> tuple[int, str]:
        description = self._client.describe_collection(self.collection)
        dimension = next(
            int(field["params"]["dim"])
            for field in description["fields"]
            if field["name"] == "vector"
        )
        embedder_name = (description.get("properties") or {}).get(_EMBEDDER_PROPERTY)
        if not embedder_name:
            raise ConfigurationError(
                f"Milvus collection {self.collection!r} was not made by agentlib (it has no "
                f"{_EMBEDDER_PROPERTY!r} property); use another collection name"
            )
        return dimension, str(embedder_name)

    def _create(self) -> None:
        with optional_imports("retrieval", feature="MilvusIndex"):
            from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description="agentlib retrieval chunks",
        )
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dimension)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("metadata", DataType.JSON)
        index_params = self._client.prepare_index_params()
        index_params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        self._client.create_collection(
            self.collection,
            schema=schema,
            index_params=index_params,
            consistency_level=self._consistency,
            properties={_EMBEDDER_PROPERTY: self._embedder_name},
        )

    @property
    def dimension(self) -> int:
        """The vector length."""
        return self._dimension

    @property
    def embedder_name(self) -> str:
        """The embedder the vectors come from."""
        return self._embedder_name

    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        """Insert or replace (by id) `chunks` with their vectors."""
        array = check_vectors(self, chunks, vectors)
        for chunk in chunks:
            if len(chunk.text.encode("utf-8")) > _MAX_TEXT:
                raise ConfigurationError(
                    f"chunk {chunk.id} from {chunk.source!r} is longer than Milvus's "
                    f"{_MAX_TEXT}-byte text field; split documents into smaller chunks"
                )
        if not chunks:
            return
        rows = [
            {"id": c.id, "vector": v.tolist(), "text": c.text, "metadata": c.metadata}
            for c, v in zip(chunks, array, strict=True)
        ]
        self._client.upsert(self.collection, rows)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; unknown ids are ignored."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        found = self._client.get(self.collection, ids=wanted, output_fields=["id"])
        if found:
            self._client.delete(self.collection, ids=[row["id"] for row in found])
        return len(found)

    def delete_where(self, filter: MetadataFilter) -> int:
        """Remove every chunk matching `filter`."""
        expression = filter_expression(filter)
        if not expression:
            raise ConfigurationError("delete_where needs a non-empty filter")
        ids = [row["id"] for row in self._query(expression, ["id"])]
        return self.delete(ids)

    def search(
        self, vector: Vectors, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        """The `k` best chunks by inner product among those matching `filter`."""
        query = [float(x) for x in list(vector.reshape(-1))]
        if len(query) != self._dimension:
            raise IndexMismatchError(
                f"the query vector is {len(query)}-d; the collection holds "
                f"{self._dimension}-d vectors from {self._embedder_name!r}",
                expected=str(self._dimension),
                actual=str(len(query)),
            )
        results = self._client.search(
            self.collection,
            data=[query],
            limit=k,
            filter=filter_expression(filter),
            output_fields=["text", "metadata"],
            search_params={"metric_type": "IP"},
        )
        return [
            SearchHit(
                chunk=Chunk(
                    id=str(hit["id"]),
                    text=hit["entity"]["text"],
                    metadata=dict(hit["entity"]["metadata"]),
                ),
                score=float(hit["distance"]),
            )
            for hit in results[0]
        ]

    def chunks(self) -> list[Chunk]:
        """Every chunk (paged through the collection)."""
        return [
            Chunk(id=row["id"], text=row["text"], metadata=dict(row["metadata"]))
            for row in self._query('id != ""', ["id", "text", "metadata"])
        ]

    def _query(self, expression: str, fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._client.query(
                self.collection,
                filter=expression,
                output_fields=fields,
                offset=offset,
                limit=_PAGE,
            )
            rows.extend(page)
            if len(page) < _PAGE:
                return rows
            offset += _PAGE

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Flush pending writes; Milvus persists at its URI, so `path` must be None."""
        if path is not None:
            raise ConfigurationError(
                f"a Milvus index persists at its URI ({self._uri}); call save() without a path"
            )
        self._client.flush(self.collection)

    def close(self) -> None:
        """Close the client connection."""
        self._client.close()

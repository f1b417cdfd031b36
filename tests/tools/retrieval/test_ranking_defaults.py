"""Stemming in the default BM25 tokenizer, per-document de-duplication, and the defaults."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import bm25s
import pytest
import Stemmer

from agentlib.tools.retrieval import (
    BM25Retriever,
    Chunk,
    Collection,
    Document,
    HashingEmbedder,
    HybridRetriever,
    RecursiveSplitter,
)
from agentlib.tools.retrieval.retrievers import (
    SearchHit,
    best_per_document,
    default_tokenize,
    word_tokenize,
)


def test_the_default_tokenizer_stems_and_drops_stop_words() -> None:
    text = "The flows of a flowing stream heated the plates"
    assert default_tokenize(text) == ["flow", "flow", "stream", "heat", "plate"]
    assert word_tokenize(text) == ["flows", "flowing", "stream", "heated", "plates"]


def test_the_default_tokenizer_indexes_the_terms_bm25s_does() -> None:
    text = "Experimental investigation of the aerodynamics of a wing in a slipstream; a 2x test"
    expected = bm25s.tokenize(
        [text],
        stopwords="en",
        stemmer=Stemmer.Stemmer("english"),
        show_progress=False,
        return_ids=False,
    )[0]
    assert default_tokenize(text) == expected


def test_bm25_matches_other_forms_of_a_word() -> None:
    chunks = [
        Chunk(id="heat", text="Heat transfer to a heated cylinder in supersonic flow."),
        Chunk(id="noise", text="Acoustic noise from jets."),
    ]
    retriever = BM25Retriever(chunks)
    assert [hit.chunk.id for hit in retriever.search("heating of cylinders")] == ["heat"]
    unstemmed = BM25Retriever(chunks, tokenize=word_tokenize)
    assert unstemmed.search("heating of cylinders") == []


def test_bm25_sync_and_async_search_agree_and_filters_hold() -> None:
    chunks = [
        Chunk(id=f"c{i}", text=f"pump filter number {i}", metadata={"source": f"s{i % 2}"})
        for i in range(6)
    ]
    retriever = BM25Retriever(chunks)
    sync = retriever.search("pump filters", k=4, filter={"source": "s1"})
    asynchronous = asyncio.run(retriever.asearch("pump filters", k=4, filter={"source": "s1"}))
    assert [h.chunk.id for h in sync] == [h.chunk.id for h in asynchronous]
    assert {h.chunk.source for h in sync} == {"s1"}
    assert len(sync) == 3


def _many_chunk_corpus() -> list[Chunk]:
    # 12 documents: doc0-doc2 of 35 chunks, the others of 5. Every chunk has its own length,
    # so BM25 scores do not tie and "the same hits" is well defined.
    words = ["pump", "valve", "filter", "motor", "seal", "hose", "tank", "gauge", "spring"]
    words += ["bolt", "gear", "belt"]
    chance = random.Random(7)
    chunks = []
    for number in range(150):
        document = f"doc{number % 12 if number < 60 else number % 3}"
        text = " ".join(chance.choice(words) for _ in range(5 + number))
        chunks.append(Chunk(id=f"c{number}", text=text, metadata={"source": document}))
    return chunks


def test_bm25_per_document_search_is_deduplicating_every_hit() -> None:
    retriever = BM25Retriever(_many_chunk_corpus())
    for query in ("pump", "valve seal", "gear belt spring", "tank gauge hose motor"):
        for k in (1, 2, 3, 5, 12, 50):
            for filter in (None, {"source": ["doc1", "doc2", "doc5"]}):
                expected = best_per_document(retriever.search(query, 1000, filter=filter), k)
                found = retriever.search_documents(query, k, filter=filter)
                assert [(h.chunk.id, h.score) for h in found] == [
                    (h.chunk.id, h.score) for h in expected
                ], (query, k, filter)
    # doc0-doc2's long chunks rank first: the first fetch (k * 4 = 48 chunks) holds 9
    # documents, so the search has to widen to find all 12.
    assert len(retriever.search_documents("pump", 12)) == 12
    assert retriever.search_documents("unrelated words", 3) == []


def test_collection_bm25_search_returns_one_hit_per_document_like_before(
    embedder: HashingEmbedder,
) -> None:
    chunks = _many_chunk_corpus()
    collection = Collection(embedder)
    collection.add_chunks(chunks)
    every = collection.search("valve seal", 1000, mode="bm25", deduplicate=False)
    for k in (1, 4, 12):
        hits = collection.search("valve seal", k, mode="bm25")
        assert [h.chunk.id for h in hits] == [h.chunk.id for h in best_per_document(every, k)]
        async_hits = asyncio.run(collection.asearch("valve seal", k, mode="bm25"))
        assert [h.chunk.id for h in async_hits] == [h.chunk.id for h in hits]


def _long_document_collection(deduplicate: bool = True) -> Collection:
    # One long document about pumps cut into many chunks, and three short ones that also
    # mention pumps: without de-duplication the long one fills the whole top k.
    long_text = "\n\n".join(f"The pump section {i} explains pump priming." for i in range(12))
    documents = [
        Document(text=long_text, metadata={"source": "pump-manual.txt"}),
        Document(text="A pump moves water.", metadata={"source": "a.txt"}),
        Document(text="Pump sizes for gardens.", metadata={"source": "b.txt"}),
        Document(text="Cleaning a garden pump.", metadata={"source": "c.txt"}),
    ]
    collection = Collection(
        HashingEmbedder(128),
        splitter=RecursiveSplitter(chunk_size=60, chunk_overlap=0),
        deduplicate=deduplicate,
    )
    collection.add_documents(documents)
    return collection


def test_search_keeps_the_best_chunk_of_each_document_by_default() -> None:
    collection = _long_document_collection()
    for mode in ("bm25", "dense", "hybrid"):
        hits = collection.search("pump priming", k=4, mode=mode)  # type: ignore[arg-type]
        sources = [hit.chunk.source for hit in hits]
        assert sorted(sources) == ["a.txt", "b.txt", "c.txt", "pump-manual.txt"], mode
    crowded = collection.search("pump priming", k=4, mode="bm25", deduplicate=False)
    assert [hit.chunk.source for hit in crowded] == ["pump-manual.txt"] * 4


def test_deduplication_can_be_switched_off_for_the_collection_and_survives_save(
    tmp_path: object,
) -> None:
    collection = _long_document_collection(deduplicate=False)
    hits = collection.search("pump priming", k=4, mode="bm25")
    assert [hit.chunk.source for hit in hits] == ["pump-manual.txt"] * 4
    folder = str(tmp_path) + "/saved"
    collection.save(folder)
    loaded = Collection.load(folder, HashingEmbedder(128))
    assert loaded.deduplicate is False


def test_async_search_deduplicates_the_same_way() -> None:
    collection = _long_document_collection()
    hits = asyncio.run(collection.asearch("pump priming", k=4, mode="hybrid"))
    assert len({hit.chunk.source for hit in hits}) == 4


def test_best_per_document_keeps_order_and_pages_apart() -> None:
    def hit(identifier: str, source: str, page: int | None = None) -> SearchHit:
        metadata = {"source": source} if page is None else {"source": source, "page": page}
        return SearchHit(chunk=Chunk(id=identifier, text="", metadata=metadata), score=0.0)

    hits = [hit("1", "a"), hit("2", "a"), hit("3", "b", 1), hit("4", "b", 2), hit("5", "b", 1)]
    assert [h.chunk.id for h in best_per_document(hits)] == ["1", "3", "4"]
    assert [h.chunk.id for h in best_per_document(hits, 2)] == ["1", "3"]
    no_source = [SearchHit(chunk=Chunk(id=i, text=""), score=0.0) for i in "xy"]
    assert [h.chunk.id for h in best_per_document(no_source)] == ["x", "y"]


def test_collection_defaults_are_the_tuned_values() -> None:
    collection = Collection(HashingEmbedder(64))
    assert collection.deduplicate is True
    assert (collection.rrf_k, collection.weights) == (_TUNED_RRF_K, _TUNED_WEIGHTS)
    hybrid = collection.retriever("hybrid")
    assert isinstance(hybrid, HybridRetriever)
    assert (hybrid.rrf_k, tuple(hybrid.weights or ())) == (_TUNED_RRF_K, _TUNED_WEIGHTS)


# Chosen on the man-page collection's tuning half and checked on the docstring collection's
# test half (benchmarks/retrieval.md, "Fusion defaults"); change them only with a new run.
_TUNED_RRF_K = 10
_TUNED_WEIGHTS = (1.0, 1.0)


def test_bm25_ties_at_the_cut_go_to_the_earlier_chunk() -> None:
    # Four texts, so hundreds of chunks tie on each score; the top k must be a prefix of the
    # full ranking (ties to the earlier chunk), for chunks and for documents alike.
    texts = ["alpha", "alpha beta", "alpha alpha gamma", "beta alpha delta"]
    chance = random.Random(1)
    chunks = [
        Chunk(id=f"c{i:04d}", text=chance.choice(texts), metadata={"source": f"d{i // 3}"})
        for i in range(600)
    ]
    retriever = BM25Retriever(chunks)
    every = retriever.search("alpha", 600)
    assert every == sorted(every, key=lambda hit: (-hit.score, hit.chunk.id))
    for k in (1, 5, 50, 100, 250):
        assert retriever.search("alpha", k) == every[:k]
        assert retriever.search_documents("alpha", k) == best_per_document(every, k)


def test_bm25_per_document_search_follows_adds_and_deletes() -> None:
    # The rows-by-document grouping is cached: each change must show in the next search.
    retriever = BM25Retriever(_many_chunk_corpus())

    def agrees() -> bool:
        every = retriever.search("pump valve zebra", 1000)
        return retriever.search_documents("pump valve zebra", 5) == best_per_document(every, 5)

    def zebra_sources() -> list[str]:
        return [hit.chunk.source for hit in retriever.search_documents("zebra", 3)]

    assert agrees() and zebra_sources() == []
    # c3 moves from doc3 to a new document.
    retriever.add([Chunk(id="c3", text="pump valve zebra", metadata={"source": "new"})])
    assert agrees() and zebra_sources() == ["new"]
    retriever.delete(["c3"])
    assert agrees() and zebra_sources() == []


def test_bm25_hits_are_ordinary_frozen_search_hits() -> None:
    chunks = _many_chunk_corpus()
    hits = BM25Retriever(chunks).search_documents("pump", 3)
    by_id = {chunk.id: chunk for chunk in chunks}
    rebuilt = [SearchHit(chunk=by_id[hit.chunk.id], score=hit.score) for hit in hits]
    assert hits == rebuilt and len(hits) == 3
    assert [repr(hit) for hit in hits] == [repr(hit) for hit in rebuilt]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hits[0].score = 0.0  # type: ignore[misc]

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from agentlib import FunctionModel, Message, OutputSchema
from agentlib.tools.retrieval import (
    BM25Retriever,
    Chunk,
    DenseRetriever,
    ExactIndex,
    HashingEmbedder,
    HybridRetriever,
    HyDERetriever,
    IndexMismatchError,
    MMRRetriever,
    MultiQueryRetriever,
    RerankingRetriever,
    SearchHit,
    TermOverlapReranker,
    reciprocal_rank_fusion,
)

DOCS = {
    "lava": "Volcanoes erupt molten lava and ash over nearby towns.",
    "lava-copy": "Volcanoes erupt molten lava and ash over nearby towns!",
    "basalt": "Cooling lava becomes basalt, a dark volcanic rock.",
    "cats": "Cats purr when content and sleep for most of the day.",
    "tax": "Tax returns for the year are due in April.",
    "error": "Error code E1234 means the pump filter is blocked.",
}


def _chunks() -> list[Chunk]:
    return [
        Chunk(id=key, text=text, metadata={"source": f"{key}.txt"}) for key, text in DOCS.items()
    ]


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(256)


@pytest.fixture
def index(embedder: HashingEmbedder) -> ExactIndex:
    index = ExactIndex.for_embedder(embedder)
    chunks = _chunks()
    index.add(chunks, embedder.embed([c.text for c in chunks]))
    return index


def _ids(hits: Sequence[SearchHit]) -> list[str]:
    return [hit.chunk.id for hit in hits]


def test_dense_retriever_refuses_an_index_from_another_embedder(index: ExactIndex) -> None:
    with pytest.raises(IndexMismatchError, match="'hashing-256', not 'hashing-64'"):
        DenseRetriever(HashingEmbedder(64), index)


async def test_dense_retriever_finds_the_matching_chunk(
    embedder: HashingEmbedder, index: ExactIndex
) -> None:
    hits = await DenseRetriever(embedder, index).asearch("purring cats sleep", k=2)
    assert hits[0].chunk.id == "cats"


def test_bm25_finds_exact_terms_and_skips_chunks_without_them() -> None:
    retriever = BM25Retriever(_chunks())
    hits = retriever.search("E1234", k=5)
    assert _ids(hits) == ["error"]
    assert retriever.search("zebra", k=5) == []


def test_bm25_filters_and_updates() -> None:
    retriever = BM25Retriever(_chunks())
    assert _ids(retriever.search("lava", k=5, filter={"source": "basalt.txt"})) == ["basalt"]
    assert retriever.delete(["basalt", "missing"]) == 1
    assert "basalt" not in _ids(retriever.search("lava", k=5))
    retriever.add([Chunk(id="new", text="Lava lamps glow.", metadata={"source": "n.txt"})])
    assert "new" in _ids(retriever.search("lava lamps", k=5))


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    def hit(key: str) -> SearchHit:
        return SearchHit(chunk=Chunk(id=key, text=key), score=0.0)

    fused = reciprocal_rank_fusion([[hit("a"), hit("b")], [hit("b"), hit("c")]], k=10)
    assert _ids(fused) == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(1 / 12 + 1 / 11)
    weighted = reciprocal_rank_fusion(
        [[hit("a"), hit("b")], [hit("b"), hit("c")]], k=10, weights=[1, 0]
    )
    assert _ids(weighted)[0] == "a"


async def test_hybrid_combines_lexical_and_dense_results(
    embedder: HashingEmbedder, index: ExactIndex
) -> None:
    hybrid = HybridRetriever([DenseRetriever(embedder, index), BM25Retriever(_chunks())])
    hits = await hybrid.asearch("error E1234 pump", k=3)
    assert hits[0].chunk.id == "error"
    filtered = await hybrid.asearch("lava", k=3, filter={"source": "tax.txt"})
    assert _ids(filtered) == ["tax"]


async def test_mmr_drops_near_duplicates() -> None:
    embedder = HashingEmbedder(4096)  # wide enough that no two words here share a bucket
    index = ExactIndex.for_embedder(embedder)
    chunks = _chunks()
    index.add(chunks, embedder.embed([c.text for c in chunks]))
    dense = DenseRetriever(embedder, index)
    plain = _ids(await dense.asearch("volcanoes erupt lava", k=2))
    assert set(plain) == {"lava", "lava-copy"}
    diverse = _ids(
        await MMRRetriever(dense, embedder, diversity=0.4).asearch("volcanoes erupt lava", k=2)
    )
    assert diverse[0] in {"lava", "lava-copy"} and diverse[1] == "basalt"


async def test_multi_query_searches_the_models_paraphrases(
    embedder: HashingEmbedder, index: ExactIndex
) -> None:
    def paraphrase(messages: Sequence[Message], output: OutputSchema | None) -> str:
        assert output is not None
        return json.dumps({"value": ["income tax deadline", "when are returns due"]})

    model = FunctionModel(paraphrase)
    retriever = MultiQueryRetriever(DenseRetriever(embedder, index), model)
    assert await retriever.expand("April paperwork") == [
        "April paperwork",
        "income tax deadline",
        "when are returns due",
    ]
    hits = await retriever.asearch("April paperwork", k=1)
    assert _ids(hits) == ["tax"]
    assert "April paperwork" in model.requests[-1].messages[-1].content


async def test_hyde_searches_with_a_hypothetical_passage(
    embedder: HashingEmbedder, index: ExactIndex
) -> None:
    def passage(messages: Sequence[Message], output: OutputSchema | None) -> str:
        return json.dumps({"value": "Cats purr when content and sleep most of the day."})

    retriever = HyDERetriever(embedder, index, FunctionModel(passage))
    hits = await retriever.asearch("why does my pet make a rumbling sound", k=1)
    assert _ids(hits) == ["cats"]


async def test_reranking_reorders_by_query_term_coverage(
    embedder: HashingEmbedder, index: ExactIndex
) -> None:
    base = BM25Retriever(_chunks())
    reranked = RerankingRetriever(base, TermOverlapReranker(), fetch_k=10)
    hits = await reranked.asearch("dark volcanic rock lava", k=2)
    assert hits[0].chunk.id == "basalt"
    assert hits[0].score == 1.0

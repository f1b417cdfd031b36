"""Query expansion with a model: multi-query paraphrases and HyDE, plus reranking."""

import json

from agentlib import FunctionModel
from agentlib.tools.retrieval import (
    Chunk,
    DenseRetriever,
    ExactIndex,
    HashingEmbedder,
    HyDERetriever,
    MultiQueryRetriever,
    RerankingRetriever,
    TermOverlapReranker,
)

texts = [
    "Income tax returns are due on the 30th of April.",
    "Cats purr when they are content.",
    "A volcano erupts molten lava.",
]
chunks = [Chunk(id=str(i), text=t, metadata={"source": f"doc{i}"}) for i, t in enumerate(texts)]
embedder = HashingEmbedder(1024)
index = ExactIndex.for_embedder(embedder)
index.add(chunks, embedder.embed(texts))
dense = DenseRetriever(embedder, index)

# Any agentlib Model works; FunctionModel stands in for a real one here.
paraphrases = FunctionModel(
    lambda messages, schema: json.dumps({"value": ["tax return deadline", "income tax due date"]})
)
multi = MultiQueryRetriever(dense, paraphrases, queries=2)
hits = multi.search("When is my paperwork for the revenue office due?", k=1)
print(hits[0].chunk.text)
assert hits[0].chunk.id == "0"

passage = FunctionModel(lambda messages, schema: json.dumps({"value": "Cats purr when happy."}))
hyde = HyDERetriever(embedder, index, passage)
assert hyde.search("what is the rumbling noise my pet makes", k=1)[0].chunk.id == "1"

reranked = RerankingRetriever(dense, TermOverlapReranker()).search("lava volcano", k=1)
assert reranked[0].chunk.id == "2"

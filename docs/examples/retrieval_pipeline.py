"""Each stage by hand: load, split, embed, index, search (dense, BM25, hybrid, MMR), persist."""

import json
from pathlib import Path

from agentlib.tools.retrieval import (
    BM25Retriever,
    DenseRetriever,
    DirectoryLoader,
    ExactIndex,
    HashingEmbedder,
    HybridRetriever,
    JSONLoader,
    MarkdownHeaderSplitter,
    MMRRetriever,
    RecursiveSplitter,
    load_index,
)

folder = Path("kb")
folder.mkdir(exist_ok=True)
(folder / "guide.md").write_text(
    "# Guide\n\n## Install\n\nRun pip install agentlib.\n\n"
    "## Errors\n\nE42 means the disk is full.\n"
)
(folder / "faq.jsonl").write_text(
    json.dumps({"answer": "Refunds take 14 days.", "topic": "billing"}) + "\n"
)

# Load: every supported file; JSON Lines read the field you choose.
loader = DirectoryLoader(
    loaders={".jsonl": JSONLoader(text_field="answer", metadata_fields=["topic"])}
)
documents = loader.load(folder)

# Split: Markdown by headings, long sections by size (characters here; see TokenSplitter).
splitter = MarkdownHeaderSplitter(splitter=RecursiveSplitter(chunk_size=400, chunk_overlap=50))
chunks = splitter.split(documents)
for chunk in chunks:
    print(chunk.citation(), chunk.metadata["start"], chunk.metadata["end"])

# Embed and index: HashingEmbedder is deterministic; SentenceTransformerEmbedder is the default.
embedder = HashingEmbedder(256)
index = ExactIndex.for_embedder(embedder)
index.add(chunks, embedder.embed([chunk.text for chunk in chunks]))

# Search: dense, BM25, both fused by reciprocal rank, then diversified by MMR.
dense = DenseRetriever(embedder, index)
bm25 = BM25Retriever(chunks)
hybrid = HybridRetriever([dense, bm25], rrf_k=60)
best = hybrid.search("what does E42 mean", k=1)[0]
print(best.chunk.text, "--", best.chunk.citation())
assert "disk is full" in best.chunk.text

diverse = MMRRetriever(hybrid, embedder, diversity=0.3).search("install", k=2)
print([hit.chunk.citation() for hit in diverse])

# Filter on metadata, persist, and reload (checking the embedder).
print(bm25.search("refunds", k=3, filter={"topic": "billing"}))
index.save("kb-index")
reloaded = load_index("kb-index", embedder=embedder)
assert len(reloaded) == len(index)

"""The same collection on Milvus: milvus-lite in a local file; a server URL works the same way."""

from pathlib import Path

from agentlib.tools.retrieval import Collection, HashingEmbedder, MilvusIndex

Path("notes.txt").write_text("Milvus stores vectors.\n\nBM25 ranks by term frequency.\n")

embedder = HashingEmbedder(256)
index = MilvusIndex("./rag.db", collection="notes", embedder=embedder)  # or "http://host:19530"
collection = Collection(embedder, index=index)
collection.add_files("notes.txt")

hits = collection.search("where are vectors stored", k=1, filter={"source": "notes.txt"})
print(hits[0].chunk.text, hits[0].score)
assert "Milvus" in hits[0].chunk.text
index.close()

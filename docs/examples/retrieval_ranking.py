"""Stemmed BM25 and one hit per document: what `Collection.search` does by default."""

from agentlib.tools.retrieval import (
    BM25Retriever,
    Chunk,
    Collection,
    Document,
    HashingEmbedder,
    RecursiveSplitter,
)
from agentlib.tools.retrieval.retrievers import default_tokenize, word_tokenize

# The default BM25 tokenizer drops English stop words and stems (Snowball, via PyStemmer),
# so "heating of cylinders" matches "heated cylinder".
print(
    default_tokenize("Heat transfer to a heated cylinder")
)  # ['heat', 'transfer', 'heat', 'cylind']
chunks = [Chunk(id="heat", text="Heat transfer to a heated cylinder in supersonic flow.")]
assert BM25Retriever(chunks).search("heating of cylinders")
assert not BM25Retriever(chunks, tokenize=word_tokenize).search("heating of cylinders")

# One long document cut into many chunks would fill the top k on its own; by default a
# collection keeps each document's best chunk.
manual = "\n\n".join(f"Section {i}: priming the pump." for i in range(10))
collection = Collection(
    HashingEmbedder(128), splitter=RecursiveSplitter(chunk_size=40, chunk_overlap=0)
)
collection.add_documents(
    [
        Document(text=manual, metadata={"source": "manual.txt"}),
        Document(text="How to size a garden pump.", metadata={"source": "sizes.txt"}),
    ]
)
print([hit.chunk.source for hit in collection.search("pump", k=2)])  # both documents
print([hit.chunk.source for hit in collection.search("pump", k=2, deduplicate=False)])

# BM25 on its own gives the same one-hit-per-document ranking, building only the hits it returns.
bm25 = BM25Retriever(collection.index.chunks())
print([hit.chunk.source for hit in bm25.search_documents("pump", k=2)])  # both documents

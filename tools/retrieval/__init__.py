"""Vector retrieval: load, split, embed, index and search documents; `RetrievalTool` for agents.

Install with `pip install "agentlib-typed[retrieval]"`. Names are loaded on first use, so importing
this package does not import numpy, torch, usearch or pymilvus.

- load: `TextLoader`, `MarkdownLoader`, `HTMLLoader`, `PDFLoader`, `JSONLoader`,
  `DirectoryLoader`, `load_file`
- split: `RecursiveSplitter`, `TokenSplitter`, `MarkdownHeaderSplitter`
- embed: `SentenceTransformerEmbedder`, `OpenAIEmbedder`, `HashingEmbedder`
- index: `ExactIndex`, `ANNIndex`, `MilvusIndex`, `load_index`
- search: `DenseRetriever`, `BM25Retriever`, `HybridRetriever`, `MMRRetriever`,
  `MultiQueryRetriever`, `HyDERetriever`, `RerankingRetriever`
- all of it: `Collection`, `RetrievalTool`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlib._lazy import lazy_exports

if TYPE_CHECKING:
    from agentlib.tools.retrieval.ann import ANNIndex
    from agentlib.tools.retrieval.bm25 import BM25Retriever
    from agentlib.tools.retrieval.collection import Collection, SearchMode
    from agentlib.tools.retrieval.documents import Chunk, Document, MetadataFilter, SearchHit
    from agentlib.tools.retrieval.embedders import (
        Embedder,
        HashingEmbedder,
        OpenAIEmbedder,
        SentenceTransformerEmbedder,
    )
    from agentlib.tools.retrieval.errors import DocumentLoadError, IndexMismatchError
    from agentlib.tools.retrieval.indexes import ExactIndex, VectorIndex, load_index
    from agentlib.tools.retrieval.loaders import (
        DirectoryLoader,
        HTMLLoader,
        JSONLoader,
        Loader,
        MarkdownLoader,
        PDFLoader,
        TextLoader,
        load_file,
    )
    from agentlib.tools.retrieval.milvus import MilvusIndex
    from agentlib.tools.retrieval.retrievers import (
        DenseRetriever,
        HybridRetriever,
        HyDERetriever,
        MMRRetriever,
        MultiQueryRetriever,
        Reranker,
        RerankingRetriever,
        Retriever,
        TermOverlapReranker,
        reciprocal_rank_fusion,
    )
    from agentlib.tools.retrieval.splitters import (
        MarkdownHeaderSplitter,
        RecursiveSplitter,
        Splitter,
        TokenSplitter,
    )
    from agentlib.tools.retrieval.tool import RetrievalTool

_MODULES = {
    "ann": ["ANNIndex"],
    "bm25": ["BM25Retriever"],
    "collection": ["Collection", "SearchMode"],
    "documents": ["Chunk", "Document", "MetadataFilter", "SearchHit"],
    "embedders": ["Embedder", "HashingEmbedder", "OpenAIEmbedder", "SentenceTransformerEmbedder"],
    "errors": ["DocumentLoadError", "IndexMismatchError"],
    "indexes": ["ExactIndex", "VectorIndex", "load_index"],
    "loaders": [
        "DirectoryLoader",
        "HTMLLoader",
        "JSONLoader",
        "Loader",
        "MarkdownLoader",
        "PDFLoader",
        "TextLoader",
        "load_file",
    ],
    "milvus": ["MilvusIndex"],
    "retrievers": [
        "DenseRetriever",
        "HyDERetriever",
        "HybridRetriever",
        "MMRRetriever",
        "MultiQueryRetriever",
        "Reranker",
        "RerankingRetriever",
        "Retriever",
        "TermOverlapReranker",
        "reciprocal_rank_fusion",
    ],
    "splitters": ["MarkdownHeaderSplitter", "RecursiveSplitter", "Splitter", "TokenSplitter"],
    "tool": ["RetrievalTool"],
}
_WHERE = {name: f".{module}" for module, names in _MODULES.items() for name in names}

__all__ = [
    "ANNIndex",
    "BM25Retriever",
    "Chunk",
    "Collection",
    "DenseRetriever",
    "DirectoryLoader",
    "Document",
    "DocumentLoadError",
    "Embedder",
    "ExactIndex",
    "HTMLLoader",
    "HashingEmbedder",
    "HyDERetriever",
    "HybridRetriever",
    "IndexMismatchError",
    "JSONLoader",
    "Loader",
    "MMRRetriever",
    "MarkdownHeaderSplitter",
    "MarkdownLoader",
    "MetadataFilter",
    "MilvusIndex",
    "MultiQueryRetriever",
    "OpenAIEmbedder",
    "PDFLoader",
    "RecursiveSplitter",
    "Reranker",
    "RerankingRetriever",
    "RetrievalTool",
    "Retriever",
    "SearchHit",
    "SearchMode",
    "SentenceTransformerEmbedder",
    "Splitter",
    "TermOverlapReranker",
    "TextLoader",
    "TokenSplitter",
    "VectorIndex",
    "load_file",
    "load_index",
    "reciprocal_rank_fusion",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)

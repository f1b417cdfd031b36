"""`RetrievalTool`: lets an agent search a collection and cite what it found.

Each result carries a numbered citation (source, page, heading path) and the chunk's text
fenced as untrusted data, so instructions inside documents are not taken as instructions.
"""

from __future__ import annotations

from agentlib import ToolError, Toolset, fence_untrusted, tool
from agentlib.tools.retrieval.documents import SearchHit
from agentlib.tools.retrieval.retrievers import Retriever

__all__ = ["RetrievalTool", "format_hits"]


def format_hits(hits: list[SearchHit], *, max_chars_per_chunk: int = 1500) -> str:
    """Render hits as numbered, cited, fenced passages for the model."""
    if not hits:
        return "No matching passages were found."
    parts = [f"Found {len(hits)} passage(s). Cite them by number and source, for example [1]."]
    for number, hit in enumerate(hits, start=1):
        text = hit.chunk.text
        if len(text) > max_chars_per_chunk:
            text = text[:max_chars_per_chunk] + " …"
        citation = hit.chunk.citation()
        parts.append(
            f"[{number}] {citation} (score {hit.score:.3f})\n"
            + fence_untrusted(text, source=citation)
        )
    return "\n\n".join(parts)


class RetrievalTool(Toolset):
    """A toolset with one tool, `search_documents`, over any retriever or `Collection`.

    Args:
        retriever: A `Collection` or any `Retriever`.
        k: The default number of passages returned.
        max_k: The most passages the model may ask for.
        max_chars_per_chunk: Longer passages are cut in the observation.
    """

    def __init__(
        self,
        retriever: Retriever,
        *,
        k: int = 5,
        max_k: int = 20,
        max_chars_per_chunk: int = 1500,
    ) -> None:
        super().__init__()
        self.retriever = retriever
        self.k = k
        self.max_k = max_k
        self.max_chars_per_chunk = max_chars_per_chunk

    @tool
    async def search_documents(
        self, query: str, k: int | None = None, source: str | None = None
    ) -> str:
        """Search the document collection and return the most relevant passages with sources.

        Args:
            query: What to look for, in natural language or keywords.
            k: How many passages to return (leave empty for the default).
            source: Only search passages from this source (a file path as listed in results).
        """
        if not query.strip():
            raise ToolError("the query is empty; say what to look for")
        count = self.k if k is None else k
        if not 1 <= count <= self.max_k:
            raise ToolError(f"k must be between 1 and {self.max_k}, got {count}")
        filter = {"source": source} if source else None
        hits = await self.retriever.asearch(query, count, filter=filter)
        return format_hits(hits, max_chars_per_chunk=self.max_chars_per_chunk)

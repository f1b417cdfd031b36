"""What the demo tabs share: the model picker, the tool picker and per-session state.

Models are created once per process and shared by sessions (they hold no conversation
state); everything else (agent, history, sandbox session, cancel token) is per browser session.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlib import CancelToken, Message, MissingExtraError, Model

EMBEDDED = "Embedded: SmolLM2-135M (offline, tiny)"
SMALL_MODEL_NOTE = (
    "The embedded model is SmolLM2-135M: it runs offline on a CPU and proves the whole path, "
    "but it is tiny and often wrong. For real answers, set `AGENTLIB_DEMO_BASE_URL` and "
    "`AGENTLIB_DEMO_MODEL` (and `OPENAI_API_KEY` if the server needs one) to any "
    "OpenAI-compatible endpoint and pick it in the model menu."
)

PATH_LABELS = {
    "constrained": "constrained decoding (Outlines): invalid output could not be produced",
    "strict_schema": "the server's strict JSON schema",
    "native_tools": "the server's strict tool calling",
    "prompted": "prompted, then validated (and retried on errors)",
    "scripted": "a scripted test model, validated",
}
"""How each generation path is described to the user."""

ModelFactory = Callable[[], Model]
logger = logging.getLogger(__name__)


def default_model_factories() -> dict[str, ModelFactory]:
    """The models offered: the embedded one, plus an OpenAI-compatible endpoint from the env."""

    def embedded() -> Model:
        from agentlib.models.local import LocalModel

        return LocalModel()

    factories: dict[str, ModelFactory] = {EMBEDDED: embedded}
    base_url = os.environ.get("AGENTLIB_DEMO_BASE_URL")
    name = os.environ.get("AGENTLIB_DEMO_MODEL")
    if name and (base_url or os.environ.get("OPENAI_API_KEY")):

        def remote() -> Model:
            from agentlib.models.openai import OpenAIModel

            return OpenAIModel(name, base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY"))

        factories[f"OpenAI-compatible: {name}"] = remote
    return factories


class ModelPool:
    """Creates each model on first use, once per process, thread-safely."""

    def __init__(self, factories: Mapping[str, ModelFactory]) -> None:
        self.factories = dict(factories)
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.factories)

    def get(self, name: str) -> Model:
        with self._lock:
            if name not in self._models:
                if name not in self.factories:
                    raise KeyError(f"unknown model {name!r}")
                self._models[name] = self.factories[name]()
            return self._models[name]


def importable(module: str) -> bool:
    """Whether `module` imports: its optional dependencies are installed too.

    A missing extra hides the feature quietly; a broken installation hides it too, with a
    warning that carries the real error, so the other tabs still work.
    """
    try:
        importlib.import_module(module)
    except MissingExtraError:
        return False
    except ImportError as exc:  # BrokenDependencyError, or a raw one
        logger.warning("%s is unavailable: %s", module, exc)
        return False
    return True


def session_directory(prefix: str) -> Path:
    """A new private temporary folder for one session's uploads."""
    return Path(tempfile.mkdtemp(prefix=f"agentlib-demo-{prefix}-"))


def remove_directory(path: Path | None) -> None:
    """Delete a session's upload folder, if it has one."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def close_in_background(name: str, close: Callable[[], None]) -> None:
    """Run a session's cleanup in a thread, logging (never raising) what fails.

    Gradio calls `gr.State` delete callbacks from its event loop, where a toolset's synchronous
    `close()` (an `asyncio.run`) cannot run, and an exception would stop the loop's cleanup task
    for every other session.
    """

    def run() -> None:
        try:
            close()
        except Exception:
            logger.exception("closing a demo session's %s failed", name)

    threading.Thread(target=run, name=f"close-{name}", daemon=True).start()


@dataclass
class ChatSession:
    """One browser session's chat state."""

    history: list[Message] = field(default_factory=list)
    cancel_token: CancelToken = field(default_factory=CancelToken)
    toolsets: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Close every toolset the session opened (sandbox sessions, connections, workers)."""
        toolsets = list(self.toolsets.values())
        self.toolsets.clear()
        for toolset in toolsets:
            close = getattr(toolset, "close", None)
            if callable(close):
                close()


def close_session(session: Any) -> None:
    """`gr.State` delete callback: release a session's sandbox and connections."""
    close = getattr(session, "close", None)
    if callable(close):
        close_in_background(type(session).__name__, close)

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlib import CancelToken, Message, MissingExtraError, Model

EMBEDDED = "Embedded: SmolLM2-135M (offline, tiny)"
SMALL_MODEL_NOTE = (
    "The default model is SmolLM2-135M, embedded: it runs offline on a CPU and shows the whole "
    "path, but it is tiny and often wrong. With an `HF_TOKEN` secret the menu also offers "
    "models on Hugging Face's inference router; with `OPENAI_API_KEY` (and `OPENAI_BASE_URL` "
    "for another OpenAI-compatible server) and `AGENTLIB_DEMO_MODEL`, that model too."
)

PATH_LABELS = {
    "constrained": "constrained decoding (Outlines): output of another shape could not be produced",
    "strict_schema": "the server's strict JSON schema",
    "native_tools": "the server's strict tool calling",
    "prompted": "prompted, then validated (and retried on errors)",
    "scripted": "a scripted test model, validated",
}
"""How each generation path is described to the user: how the *shape* was kept."""

SHAPE_NOTE = "Shape is not truth: check the values against the source."

ModelFactory = Callable[[], Model]
logger = logging.getLogger(__name__)

SESSION_TIMEOUT = float(os.environ.get("AGENTLIB_DEMO_SESSION_TIMEOUT", "900"))
"""Seconds without activity after which a session's sandbox, connections and files go."""


@dataclass(frozen=True, slots=True)
class DemoModel:
    """One entry of the model menu: how to build it, and its catalogue spec (for its options)."""

    factory: ModelFactory
    spec: str | None = None
    """The catalogue's `--model` value (`local`, `hf:<model>`); `None` for a test's model.
    How the agent prompts the model is the model's own `profile`, as in the CLI."""


def default_models(environ: Mapping[str, str] | None = None) -> dict[str, DemoModel]:
    """The model menu: the embedded model, then what the environment's secrets unlock.

    - `HF_TOKEN`: Hugging Face's OpenAI-compatible router (`HF_ROUTER_BASE_URL`), one entry per
      model in `AGENTLIB_DEMO_HF_MODELS` (comma-separated; default `HF_ROUTER_MODELS`).
    - `OPENAI_API_KEY` or `OPENAI_BASE_URL` with `AGENTLIB_DEMO_MODEL`: that model (any
      OpenAI-compatible server).
    """
    from agentlib.catalogue import HF_ROUTER_MODELS, default_catalogue

    env = os.environ if environ is None else environ
    catalogue = default_catalogue()

    def entry(spec: str) -> DemoModel:
        return DemoModel(lambda: catalogue.build_model(spec), spec)

    models = {EMBEDDED: entry("local")}
    if env.get("HF_TOKEN"):
        names = env.get("AGENTLIB_DEMO_HF_MODELS") or ",".join(HF_ROUTER_MODELS)
        for name in filter(None, (part.strip() for part in names.split(","))):
            models[f"Hugging Face router: {name}"] = entry(f"hf:{name}")
    demo_model = env.get("AGENTLIB_DEMO_MODEL")
    base_url = env.get("AGENTLIB_DEMO_BASE_URL")  # the older name, still honoured
    if demo_model and base_url:
        models[f"OpenAI-compatible: {demo_model}"] = entry(
            f"openai-compatible:{base_url}#{demo_model}"
        )
    elif demo_model and (env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL")):
        models[f"OpenAI-compatible: {demo_model}"] = entry(f"openai:{demo_model}")
    return models


class ModelPool:
    """Creates each model on first use, once per process, thread-safely.

    Args:
        models: The menu: labels to `DemoModel`s, or to bare factories (tests' models).
    """

    def __init__(self, models: Mapping[str, DemoModel | ModelFactory]) -> None:
        self.entries = {
            label: item if isinstance(item, DemoModel) else DemoModel(item)
            for label, item in models.items()
        }
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> Model:
        with self._lock:
            if name not in self._models:
                if name not in self.entries:
                    raise KeyError(f"unknown model {name!r}")
                self._models[name] = self.entries[name].factory()
            return self._models[name]


class SessionRegistry:
    """Closes each browser session's resources when its tab closes or it sits idle too long.

    Gradio keeps a closed session's `gr.State` for an hour, and never expires a state that no
    event returns, so the demo tracks sessions itself: every handler `touch`es its session
    objects; `app.unload` closes them at once; a reaper thread closes those idle for longer
    than `timeout`. Closing is idempotent and a closed object reopens what it needs on next use.
    """

    def __init__(self, timeout: float = SESSION_TIMEOUT, *, period: float | None = None) -> None:
        self.timeout = timeout
        self._period = period if period is not None else max(1.0, min(30.0, timeout / 4))
        self._sessions: dict[str, tuple[float, list[Any]]] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def touch(self, session_hash: str | None, *objects: Any) -> None:
        """Record activity of a session, and the objects to close with it."""
        if not session_hash:
            return
        with self._lock:
            _, held = self._sessions.get(session_hash, (0.0, []))
            held.extend(item for item in objects if all(item is not other for other in held))
            self._sessions[session_hash] = (time.monotonic(), held)
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._reap_forever, name="demo-session-reaper", daemon=True
                )
                self._reaper.start()

    def close(self, session_hash: str | None) -> None:
        """Close everything a session holds (its tab closed)."""
        with self._lock:
            _, held = self._sessions.pop(session_hash or "", (0.0, []))
        for item in held:
            close_in_background(type(item).__name__, item.close)

    def reap(self) -> int:
        """Close the sessions idle for longer than the timeout; return how many."""
        now = time.monotonic()
        with self._lock:
            idle = [key for key, (seen, _) in self._sessions.items() if now - seen > self.timeout]
        for key in idle:
            self.close(key)
        return len(idle)

    def _reap_forever(self) -> None:
        while True:
            time.sleep(self._period)
            try:
                self.reap()
            except Exception:
                logger.exception("closing idle demo sessions failed")


def available(module: str) -> bool:
    """Whether an optional module can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


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
    paused: Any = None
    """A run waiting for the person's approval (`demos._approval.PausedRun`), or `None`."""

    def close(self) -> None:
        """Close every toolset the session opened (sandbox sessions, connections, workers)."""
        self.paused = None
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

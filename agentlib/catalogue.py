"""The catalogue: every tool and model a user can pick by name, built-in or from a plugin.

`agentlib run --tools calculator,sql --model hf:<model>`, the demos' tool picker and model menu
all read this one name-to-factory map. It is open to other packages through the Python
entry-point group `agentlib.plugins`: each entry point names a `register(catalogue)` function
that adds `ToolSpec`s and `ModelSpec`s. The built-in tools register through the same function
shape (`agentlib.tools._plugin`), as simonw/llm's default plugins use its plugin hooks, so a
third-party toolset appears in the CLI and the demo exactly like ours:

```toml
# the plugin package's pyproject.toml
[project.entry-points."agentlib.plugins"]
shout = "agentlib_shout:register"
```

Nothing is imported until a catalogue is first asked for (`default_catalogue()`), and a spec's
factory imports its tool's dependencies only when it builds the tool.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from agentlib.errors import ConfigurationError
from agentlib.models.base import Model
from agentlib.tool import Tool, Toolset

__all__ = [
    "HF_ROUTER_BASE_URL",
    "HF_ROUTER_MODELS",
    "PLUGIN_GROUP",
    "Catalogue",
    "ModelOptions",
    "ModelSpec",
    "ToolSpec",
    "default_catalogue",
]

logger = logging.getLogger(__name__)

PLUGIN_GROUP = "agentlib.plugins"
"""The entry-point group whose `register(catalogue)` functions add tools and models."""

BUILTIN_PLUGINS = ("agentlib.catalogue", "agentlib.tools._plugin")
"""Modules whose `register` adds the built-in models and tools, loaded like plugins."""

HF_ROUTER_BASE_URL = "https://router.huggingface.co/v1"
"""Hugging Face's OpenAI-compatible inference router; the key is an `HF_TOKEN`."""

HF_ROUTER_MODELS = ("Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")
"""Models the demo offers through the router when `HF_TOKEN` is set (both serve JSON schema)."""

ToolFactory = Callable[[str | None], Tool | Toolset]
"""Builds one new tool or toolset from the text after `name:` (`None` when there is none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOptions:
    """Settings the caller (the CLI, a demo) passes to whichever model family it builds."""

    threads: int | None = None
    """CPU threads for a local model; `None` for its measured default."""
    on_progress: Callable[[str], None] | None = None
    """Receives one line per loading stage of a local model."""


ModelFactory = Callable[[str, ModelOptions], Model]
"""Builds a model from the text after `prefix:` (empty when there is none) and the options."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A tool (or toolset) the catalogue can build by name."""

    name: str
    """The name used in `--tools` (`calculator`, `sql`)."""
    factory: ToolFactory
    """Builds a new instance; each call returns a fresh one (its own sandbox, connection)."""
    description: str
    """One line for `--help` and the demo's picker."""
    argument: str | None = None
    """What `name:<argument>` takes (`<sqlalchemy url>`), or `None` when it takes nothing."""
    available: Callable[[], bool] = field(default=lambda: True)
    """Whether its dependencies are installed; unavailable tools are hidden from pickers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A family of models the catalogue can build from `prefix` or `prefix:<argument>`."""

    prefix: str
    """`local`, `openai`, `openai-compatible`, `hf`."""
    factory: ModelFactory
    """Builds the model from the argument after the prefix."""
    description: str
    """One line with the spec's form, for `--help` and error messages."""
    default_tools: tuple[str, ...] = ("calculator", "python")
    """The tools a run gets when the user names none. (How the agent prompts and bounds the
    model is the model's own `profile`, so `Agent(model)` is the same agent everywhere.)"""


class Catalogue:
    """Tool and model specs by name; `default_catalogue()` holds the built-ins and plugins."""

    def __init__(self) -> None:
        self.tools: dict[str, ToolSpec] = {}
        self.models: dict[str, ModelSpec] = {}

    def add_tool(self, spec: ToolSpec) -> None:
        """Register a tool; a later spec with the same name replaces the earlier one."""
        self.tools[spec.name] = spec

    def add_model(self, spec: ModelSpec) -> None:
        """Register a model family; a later spec with the same prefix replaces it."""
        self.models[spec.prefix] = spec

    def tool_spec(self, name: str) -> ToolSpec:
        """The spec for `name`.

        Raises:
            ConfigurationError: No such tool (the message lists the known ones).
        """
        spec = self.tools.get(name)
        if spec is None:
            known = ", ".join(self._tool_forms())
            raise ConfigurationError(f"unknown tool {name!r}; known: {known}, none")
        if not spec.available():
            raise ConfigurationError(
                f"tool {name!r} needs optional dependencies that are not installed: "
                f"{spec.description}"
            )
        return spec

    def build_tools(self, spec: str) -> tuple[list[Tool | Toolset], list[ToolSpec]]:
        """Build the tools named in a comma-separated `--tools` value, and their specs.

        Raises:
            ConfigurationError: An unknown name, or a tool that cannot be built.
        """
        tools: list[Tool | Toolset] = []
        specs: list[ToolSpec] = []
        for raw in (part.strip() for part in spec.split(",")):
            if not raw or raw == "none":
                continue
            name, colon, argument = raw.partition(":")
            tool_spec = self.tool_spec(name)
            tools.append(tool_spec.factory(argument if colon else None))
            specs.append(tool_spec)
        return tools, specs

    def model_spec(self, spec: str) -> tuple[ModelSpec, str]:
        """The model family of a `--model` value, and its argument.

        Raises:
            ConfigurationError: No family has that prefix.
        """
        prefix, _, argument = spec.partition(":")
        family = self.models.get(prefix)
        if family is None:
            forms = ", ".join(item.description for item in self.models.values())
            raise ConfigurationError(f"unknown --model {spec!r}: use {forms}")
        return family, argument

    def build_model(self, spec: str, options: ModelOptions | None = None) -> Model:
        """Build the model a `--model` value names."""
        family, argument = self.model_spec(spec)
        return family.factory(argument, options or ModelOptions())

    def _tool_forms(self) -> list[str]:
        return [
            f"{spec.name}:{spec.argument}" if spec.argument else spec.name
            for spec in self.tools.values()
        ]

    def help_text(self) -> str:
        """The tools' names and forms, comma-separated, for `--help`."""
        return ", ".join(self._tool_forms())


_lock = threading.Lock()
_default: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The built-in tools and models plus every installed plugin's, loaded once per process.

    A plugin that fails to load is logged and skipped, so one broken package does not take the
    CLI down.
    """
    global _default
    with _lock:
        if _default is None:
            catalogue = Catalogue()
            for module in BUILTIN_PLUGINS:
                import_module(module).register(catalogue)
            load_plugins(catalogue, entry_points(group=PLUGIN_GROUP))
            _default = catalogue
        return _default


def load_plugins(catalogue: Catalogue, plugins: Iterable[Any]) -> None:
    """Call each entry point's `register(catalogue)`, logging the ones that fail."""
    for plugin in plugins:
        try:
            plugin.load()(catalogue)
        except Exception:
            logger.exception("the agentlib plugin %r failed to load", plugin.name)


# -- the built-in models ------------------------------------------------------------------------


def _local(argument: str, options: ModelOptions) -> Model:
    from agentlib.models.local import LocalModel

    if argument:
        raise ConfigurationError(f"--model local takes no argument, got local:{argument}")
    # Its sampling and step options (worked example, short thought) are its profile's.
    return LocalModel(n_threads=options.threads, on_progress=options.on_progress)


def _openai(argument: str, options: ModelOptions) -> Model:
    from agentlib.models.openai import OpenAIModel

    if not argument:
        raise ConfigurationError(
            "--model openai:<model> needs a model name, e.g. openai:gpt-4o-mini"
        )
    if not os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL"):
        raise ConfigurationError(
            "--model openai:... needs an API key: set OPENAI_API_KEY "
            "(or OPENAI_BASE_URL for a local OpenAI-compatible server)"
        )
    return OpenAIModel(argument)


def _openai_compatible(argument: str, options: ModelOptions) -> Model:
    from agentlib.models.openai import OpenAIModel

    base_url, _, name = argument.partition("#")
    if not base_url.startswith(("http://", "https://")) or not name:
        raise ConfigurationError(
            "--model openai-compatible: takes <base_url>#<model>, e.g. "
            "openai-compatible:http://127.0.0.1:8000/v1#smollm2"
        )
    return OpenAIModel(name, base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY"))


def _hugging_face(argument: str, options: ModelOptions) -> Model:
    from agentlib.models.openai import OpenAIModel

    token = os.environ.get("HF_TOKEN")
    if not argument:
        raise ConfigurationError(
            f"--model hf:<model> needs a model name, e.g. hf:{HF_ROUTER_MODELS[0]}"
        )
    if not token:
        raise ConfigurationError(
            "--model hf:... needs a Hugging Face token: set HF_TOKEN "
            "(https://huggingface.co/settings/tokens, with 'inference providers' permission)"
        )
    return OpenAIModel(argument, base_url=HF_ROUTER_BASE_URL, api_key=token)


def register(catalogue: Catalogue) -> None:
    """Add the built-in model families (the built-in tools live in `agentlib.tools._plugin`)."""
    catalogue.add_model(
        ModelSpec(
            prefix="local",
            factory=_local,
            description="local (the embedded SmolLM2-135M)",
            # The embedded 135M model answered 3 of 4 arithmetic tasks with the calculator
            # alone and lost its way when the Python tool was offered too (2026-11-28).
            default_tools=("calculator",),
        )
    )
    catalogue.add_model(ModelSpec(prefix="openai", factory=_openai, description="openai:<model>"))
    catalogue.add_model(
        ModelSpec(
            prefix="openai-compatible",
            factory=_openai_compatible,
            description="openai-compatible:<base_url>#<model>",
        )
    )
    catalogue.add_model(
        ModelSpec(
            prefix="hf",
            factory=_hugging_face,
            description="hf:<model> (Hugging Face's router; reads HF_TOKEN)",
        )
    )

"""Prompt templates: package data in `agentlib/prompts/`, loaded once with importlib.resources."""

from __future__ import annotations

import functools
from string import Template

__all__ = ["template"]


@functools.cache
def template(name: str) -> Template:
    """The prompt template `agentlib/prompts/<name>.md` (a `string.Template`: `$field`)."""
    # Imported on first use: importlib.resources (with pathlib) is ~7 ms of `import agentlib`
    # (python -X importtime), and the first template is only needed when an agent is built.
    from importlib import resources

    text = resources.files("agentlib").joinpath("prompts", f"{name}.md").read_text("utf-8")
    return Template(text)

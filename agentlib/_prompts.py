"""Prompt templates: package data in `agentlib/prompts/`, loaded once with importlib.resources."""

from __future__ import annotations

import functools
from importlib import resources
from string import Template

__all__ = ["template"]


@functools.cache
def template(name: str) -> Template:
    """The prompt template `agentlib/prompts/<name>.md` (a `string.Template`: `$field`)."""
    text = resources.files("agentlib").joinpath("prompts", f"{name}.md").read_text("utf-8")
    return Template(text)

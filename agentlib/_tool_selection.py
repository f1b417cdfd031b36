"""`select_tools`: the tools most relevant to a task, by BM25 over names and descriptions.

`Agent(max_tools=N)` calls it once per run, on the task; `agentlib.tools.mcp` re-exports it.
A server with hundreds of tools does not fit a small model's context (a 300-tool prompt is
tens of thousands of tokens), and a long union in the step schema makes every step slower to
constrain. Selecting a few tools per task keeps both small. BM25 needs no model and no index
build worth caching (300 short documents score in about a millisecond). It is plain Python,
so no extra is needed: a BM25 package (bm25s) would save nothing at this size.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from agentlib.errors import ConfigurationError
from agentlib.tool import Tool

__all__ = ["select_tools"]

_WORD = re.compile(r"[A-Za-z][a-z]*|[0-9]+")


def _words(text: str) -> list[str]:
    """Lower-case words, splitting snake_case, kebab-case and camelCase names."""
    return [word.lower() for word in _WORD.findall(text)]


def _document(item: Tool) -> list[str]:
    properties = item.parameters.get("properties", {})
    # The name counts twice: it is the densest description a tool has.
    return _words(item.name) * 2 + _words(item.description) + _words(" ".join(properties))


def select_tools(
    tools: Sequence[Tool], task: str, *, max_tools: int, always: Sequence[str] = ()
) -> list[Tool]:
    """The `max_tools` tools whose name, description and argument names best match `task`.

    Ties keep the toolset's order; tools that share no word with the task come last, in
    order, so the result always has `min(max_tools, len(tools))` tools.

    Args:
        tools: The candidate tools.
        task: The task text.
        max_tools: The most tools to return (at least 1).
        always: Names of tools to include whatever their score (counted in `max_tools`).

    Raises:
        ConfigurationError: `max_tools` is below 1, or `always` names a tool not in `tools`.
    """
    if max_tools < 1:
        raise ConfigurationError(f"max_tools must be at least 1, got {max_tools}")
    known = {item.name for item in tools}
    missing = [name for name in always if name not in known]
    if missing:
        raise ConfigurationError(f"always names unknown tool(s): {', '.join(missing)}")
    documents = [_document(item) for item in tools]
    scores = _bm25(documents, set(_words(task)))
    pinned = [index for index, item in enumerate(tools) if item.name in always]
    ranked = sorted(
        (index for index in range(len(tools)) if tools[index].name not in always),
        key=lambda index: -scores[index],
    )
    chosen = sorted([*pinned, *ranked][:max_tools])
    return [tools[index] for index in chosen]


def _bm25(
    documents: list[list[str]], query: set[str], k1: float = 1.2, b: float = 0.75
) -> list[float]:
    if not documents:
        return []
    average = sum(map(len, documents)) / len(documents) or 1.0
    frequency = Counter(word for document in documents for word in set(document))
    total = len(documents)
    scores = []
    for document in documents:
        counts = Counter(document)
        score = 0.0
        for word in query & counts.keys():
            idf = math.log(1 + (total - frequency[word] + 0.5) / (frequency[word] + 0.5))
            tf = counts[word]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(document) / average))
        scores.append(score)
    return scores

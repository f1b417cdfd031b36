"""Synthetic toolsets of any size for the constrained-decoding benchmark."""

from __future__ import annotations

from typing import Literal

from agentlib import Tool


def lookup(key: str) -> str:
    """Look a key up in the table.

    Args:
        key: The key to look up.
    """
    return key


def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def convert(value: float, unit: Literal["m", "km", "mi", "ft"]) -> float:
    """Convert a length to metres.

    Args:
        value: The length.
        unit: The unit of the length.
    """
    return value


def search(query: str, limit: int = 5, exact: bool = False) -> list[str]:
    """Search the documents.

    Args:
        query: What to search for.
        limit: The most results.
        exact: Match the whole phrase only.
    """
    return [query][:limit]


def schedule(title: str, day: int, hour: int, attendees: list[str]) -> str:
    """Schedule a meeting.

    Args:
        title: The meeting's title.
        day: The day of the month.
        hour: The hour, 0-23.
        attendees: Who attends.
    """
    return title


_TEMPLATES = (lookup, add, convert, search, schedule)


def synthetic_tools(count: int) -> list[Tool]:
    """`count` distinct tools cycling through five signatures (strings, numbers, enums, lists)."""
    return [
        Tool(_TEMPLATES[index % len(_TEMPLATES)], name=f"{_TEMPLATES[index % 5].__name__}_{index}")
        for index in range(count)
    ]

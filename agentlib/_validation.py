"""Turning pydantic validation errors into one precise line a model (or a person) can act on."""

from __future__ import annotations

import json

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def _short(value: object, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_validation_error(error: ValidationError, *, prefix: str = "argument") -> str:
    """Describe each problem as `argument 'a': <what is wrong> (got <value>)`, joined by `; `."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        where = f"{prefix} '{location}'" if location else "value"
        message = item["msg"]
        if item["type"] == "missing":
            parts.append(f"{where} is required but missing")
        elif item["type"] == "extra_forbidden":
            parts.append(f"{where} is not a known {prefix}")
        else:
            parts.append(f"{where}: {message} (got {_short(item.get('input'))})")
    return "; ".join(parts)

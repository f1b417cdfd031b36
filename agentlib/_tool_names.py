"""Which tool names agentlib accepts, and their one-to-one mapping for stricter backends.

Shared by `agentlib.tool` (which checks names) and the model adapters (which map them), so
the adapters need not import the tool layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["NAME_PATTERN", "safe_tool_names"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
"""What providers accept (OpenAI and Anthropic: `^[a-zA-Z0-9_-]{1,64}$`), plus `.` as in
BFCL's `math.factorial` (182 of its 340 function names have one)."""

_SAFE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def safe_tool_names(names: Iterable[str]) -> dict[str, str]:
    """Map tool names to names a strict backend accepts (`^[a-zA-Z0-9_-]{1,64}$`), one to one.

    Names that already fit stay as they are; others get `_` for each refused character
    (`math.factorial` becomes `math_factorial`), and a numbered suffix where that would clash
    with another name. Invert the mapping to read a backend's tool calls back.
    """
    unique = list(dict.fromkeys(names))
    taken = {name for name in unique if _SAFE_NAME_PATTERN.match(name)}
    mapping: dict[str, str] = {}
    for name in unique:
        if name in taken:
            mapping[name] = name
            continue
        base = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"
        candidate, number = base, 2
        while candidate in taken:
            suffix = f"_{number}"
            candidate, number = base[: 64 - len(suffix)] + suffix, number + 1
        mapping[name] = candidate
        taken.add(candidate)
    return mapping

"""Parsing model output as JSON exactly as RFC 8259 defines it.

Python's `json` module accepts `NaN`, `Infinity` and `-Infinity`, and turns a number too large
for a float (`1e999`) into `inf`: none of these is JSON, and a schema-valid reply must never
hold one. `loads` and `raw_decode` reject them with a `json.JSONDecodeError` (a `ValueError`), so
every caller that already handles malformed JSON handles these too.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["loads", "raw_decode"]


class _StrictDecoder(json.JSONDecoder):
    """A `JSONDecoder` whose constants and floats are checked (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(parse_constant=self._constant, parse_float=self._float)
        self._document = ""

    def decode(self, s: str, _w: Any = None) -> Any:
        self._document = s
        return super().decode(s) if _w is None else super().decode(s, _w)

    def raw_decode(self, s: str, idx: int = 0) -> tuple[Any, int]:
        self._document = s
        return super().raw_decode(s, idx)

    def _constant(self, name: str) -> Any:
        raise json.JSONDecodeError(
            f"{name} is not JSON (RFC 8259 has no NaN or Infinity; use a number or null)",
            self._document,
            max(self._document.find(name), 0),
        )

    def _float(self, text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise json.JSONDecodeError(
                f"the number {text} is too large for a double-precision float",
                self._document,
                max(self._document.find(text), 0),
            )
        return value


def loads(text: str) -> Any:
    """Parse `text` as one JSON value, refusing `NaN`, `Infinity` and floats that overflow.

    Raises:
        json.JSONDecodeError: `text` is not RFC 8259 JSON; the message says why.
    """
    return _StrictDecoder().decode(text)


def raw_decode(text: str, index: int = 0) -> tuple[Any, int]:
    """Read one JSON value starting at `index`; return it and where it ended (as `JSONDecoder`).

    Raises:
        json.JSONDecodeError: No RFC 8259 JSON value starts there.
    """
    return _StrictDecoder().raw_decode(text, index)

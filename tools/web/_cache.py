"""`WebCache`: an optional on-disk cache for search results and fetched pages.

One JSON file per entry, named by a hash of its key, written atomically. Entries older than the
time-to-live are ignored and removed. A cache that cannot be read or written (a full disk, a
read-only directory) is skipped with a logged warning: it never makes a tool fail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentlib import ConfigurationError

__all__ = ["WebCache"]

logger = logging.getLogger(__name__)


class WebCache:
    """Keeps search results and fetched pages in a directory for `ttl` seconds.

    Args:
        directory: Where the entries live; created when missing.
        ttl: How many seconds an entry stays valid.
        clock: Returns the current time in seconds (`time.time`); tests inject their own.

    Raises:
        ConfigurationError: `ttl` is not positive.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ConfigurationError(f"WebCache ttl must be positive, got {ttl}")
        self.directory = Path(directory)
        """The cache directory."""
        self.ttl = ttl
        """Seconds an entry stays valid."""
        self._clock = clock

    def _path(self, namespace: str, key: str) -> Path:
        digest = hashlib.sha256(f"{namespace}\0{key}".encode()).hexdigest()
        return self.directory / namespace / f"{digest}.json"

    def get(self, namespace: str, key: str) -> Any | None:
        """The value stored under `key`, or `None` when missing or expired."""
        path = self._path(namespace, key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable web cache entry %s: %s", path, exc)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        if self._clock() - float(entry.get("stored_at", 0)) > self.ttl:
            path.unlink(missing_ok=True)
            return None
        return entry.get("value")

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Store a JSON-able `value` under `key`."""
        path = self._path(namespace, key)
        entry = {"key": key, "stored_at": self._clock(), "value": value}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
            ) as handle:
                json.dump(entry, handle, ensure_ascii=False)
            os.replace(handle.name, path)
        except OSError as exc:
            logger.warning("cannot write the web cache entry %s: %s", path, exc)

    def clear(self) -> None:
        """Remove every entry."""
        for path in self.directory.glob("*/*.json"):
            path.unlink(missing_ok=True)

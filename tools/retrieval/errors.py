"""The retrieval package's errors, each a subclass of agentlib's public hierarchy.

```
ConfigurationError
├── DocumentLoadError     a file could not be read as a document (names the file)
└── IndexMismatchError    vectors or a saved index do not fit (names both sides)
```

Bad input raises before anything changes: an index that refuses vectors or a loader that
refuses a file leaves everything already indexed as it was.
"""

from __future__ import annotations

from pathlib import Path

from agentlib import ConfigurationError

__all__ = ["DocumentLoadError", "IndexMismatchError"]


class DocumentLoadError(ConfigurationError):
    """A file could not be loaded: missing, unreadable, empty, undecodable or without text."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        """The file that failed."""
        self.reason = reason
        """What was wrong with it, and what to do."""
        super().__init__(f"cannot load {str(path)!r}: {reason}")


class IndexMismatchError(ConfigurationError):
    """Vectors, an embedder and an index disagree (dimension or embedder name)."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        self.expected = expected
        """What the index holds (dimension or embedder name)."""
        self.actual = actual
        """What was offered instead."""
        super().__init__(message)

"""Imports of optional dependencies: the one place that tells an absent extra from a broken one.

Every import of a package outside the core dependencies goes through `optional_imports`, a
context manager around ordinary import statements (so type checkers and linters still see
them):

```python
with optional_imports("web", feature="fetch_page"):
    import trafilatura
```

- The package is absent (the import statement itself found no module): `MissingExtraError`,
  whose message is the install hint naming the extra.
- The package is installed but fails to import (one of its own dependencies is missing or of
  the wrong version, a native library does not load, a name moved): `BrokenDependencyError`,
  with the real error, the name of the broken dependency and the module that imported it,
  chained to the original exception. Reporting that as "not installed" sent users to reinstall
  a package they had (issue 14: trafilatura was installed; `lxml_html_clean` was missing).

Put the packages an extra needs first in the block (`import llguidance` before
`from outlines.backends.llguidance import ...`), so that an absent one is found by the block's
own import statement and reported as a missing extra.
"""

from __future__ import annotations

import importlib.util
import sys
from types import TracebackType

from agentlib.errors import AgentlibError, BrokenDependencyError, MissingExtraError

__all__ = ["available", "optional_imports"]


class _OptionalImports:
    """The context manager `optional_imports` returns."""

    def __init__(self, extra: str, feature: str | None) -> None:
        self.extra = extra
        self.feature = feature

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, AgentlibError):
            return  # nothing failed, an interrupt, or agentlib's own error: let it through
        raise _translate(exc, traceback, self.extra, self.feature) from exc


def optional_imports(extra: str, *, feature: str | None = None) -> _OptionalImports:
    """Import optional dependencies in a `with` block; failures name the extra to install.

    Args:
        extra: The extra of the `agentlib-typed` distribution that provides the packages.
        feature: What needs them, for the message (`"fetch_page"`, `"agentlib.tools.sql"`).

    Raises:
        MissingExtraError: A package imported by the block is not installed.
        BrokenDependencyError: A package is installed but its import failed.
    """
    return _OptionalImports(extra, feature)


def available(module: str) -> bool:
    """Whether `module` is installed, without importing it (its parent packages may be)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent is absent, or a None placeholder in sys.modules
        return False


def _translate(
    exc: Exception, traceback: TracebackType | None, extra: str, feature: str | None
) -> AgentlibError:
    # The first traceback entry is the block's own frame; importlib's machinery frames are
    # "<frozen ...>". Any other frame means the error happened while a package's code ran.
    inside = [
        entry
        for entry in _entries(traceback)[1:]
        if not entry.tb_frame.f_code.co_filename.startswith("<frozen")
    ]
    importer = str(inside[-1].tb_frame.f_globals.get("__name__", "?")) if inside else None
    name = exc.name if isinstance(exc, ImportError) else None
    if isinstance(exc, ModuleNotFoundError) and importer is None and name:
        top = name.partition(".")[0]
        if top == name or not _present(top):
            return MissingExtraError(top, extra, feature=feature)
        # The package is there but has no such submodule: another version than expected.
        return BrokenDependencyError(top, extra, dependency=name, error=exc, feature=feature)
    dependency = name or (importer or "?").partition(".")[0]
    package = (
        inside[0].tb_frame.f_globals.get("__name__", dependency) if inside else dependency
    ).partition(".")[0]
    return BrokenDependencyError(
        package, extra, dependency=dependency, origin=importer, error=exc, feature=feature
    )


def _entries(traceback: TracebackType | None) -> list[TracebackType]:
    entries = []
    while traceback is not None:
        entries.append(traceback)
        traceback = traceback.tb_next
    return entries


def _present(module: str) -> bool:
    return sys.modules.get(module) is not None or available(module)

"""One helper for the lazy re-exports of a package's face.

A module that re-exports names from heavier modules calls `lazy_exports` with a map from each
name to the module that defines it and binds the two functions it returns as its own
`__getattr__` and `__dir__` (PEP 562). The first access imports the defining module and caches the
value in the package's namespace, so later accesses cost a dictionary look-up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make `__getattr__` and `__dir__` for `package`, loading each name in `where` on first use.

    Args:
        package: The module's `__name__`.
        where: Each lazily loaded name and the module that defines it (absolute, or relative to
            `package` when it starts with a dot).
        public: The names `dir(package)` lists (its `__all__`).
    """
    names = sorted(public)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__

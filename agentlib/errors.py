"""The exception hierarchy: every error agentlib raises derives from `AgentlibError`.

```
AgentlibError
├── ConfigurationError        the caller's mistake
│   ├── MissingExtraError     also an ImportError; names the extra
│   └── BrokenDependencyError also an ImportError; installed but does not import
├── ModelError                the backend failed
│   └── ModelOutputError      still invalid after retries; keeps the raw text
├── StoreError                a conversation store failed; keeps the store's URL
└── ToolError                 becomes an observation inside the loop
```

Messages say what was wrong and what to do; data goes on attributes. Constructors have no
side effects. How a run stopped is a value in `RunResult`, never an exception.
"""

from __future__ import annotations

__all__ = [
    "AgentlibError",
    "BrokenDependencyError",
    "ConfigurationError",
    "MissingExtraError",
    "ModelError",
    "ModelOutputError",
    "StoreError",
    "ToolError",
]

DISTRIBUTION = "agentlib-typed"
"""The name agentlib is installed under (`pip install agentlib-typed`); the import name is
`agentlib`. (`agentlib` on PyPI is another project.)"""


def install_hint(extra: str) -> str:
    """The command that installs `extra`: `pip install "agentlib-typed[sql]"`."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


class AgentlibError(Exception):
    """Base class of every error raised by agentlib."""


class ConfigurationError(AgentlibError, ValueError):
    """The caller configured something wrongly (a duplicate tool name, a bad schema, ...)."""


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, *, feature: str | None = None) -> None:
        self.package = package
        """The import name that failed."""
        self.extra = extra
        """The agentlib extra that provides it."""
        what = feature or "this feature"
        super().__init__(
            f"{what} needs the '{package}' package, which is not installed; "
            f"install it with: {install_hint(extra)}"
        )


class BrokenDependencyError(ConfigurationError, ImportError):
    """An optional dependency is installed but fails to import; the message keeps its real error.

    Raised instead of `MissingExtraError` so that a broken installation (a package whose own
    dependency is missing or of the wrong version, a native library that does not load) is not
    reported as an absent package.
    """

    def __init__(
        self,
        package: str,
        extra: str,
        *,
        dependency: str,
        error: BaseException,
        origin: str | None = None,
        feature: str | None = None,
    ) -> None:
        self.package = package
        """The package agentlib imported."""
        self.extra = extra
        """The agentlib extra that provides it."""
        self.dependency = dependency
        """The broken dependency: the module that is missing, or the package that raised."""
        self.origin = origin
        """The module whose code raised the error, when it was not agentlib's import itself."""
        self.error = error
        """The real exception (also chained as `__cause__`)."""
        what = feature or "this feature"
        where = [f"in '{origin}'"] if origin else []
        if dependency != package:
            where.append(f"the broken dependency is '{dependency}'")
        context = f" ({'; '.join(where)})" if where else ""
        super().__init__(
            f"{what} needs the '{package}' package, which is installed but fails to import: "
            f"{type(error).__name__}: {error}{context}; "
            f"repair the installation, e.g. with: {install_hint(extra)}"
        )


class ModelError(AgentlibError):
    """The model backend failed: unreachable server, HTTP error, unknown model, ..."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        """The HTTP status code, when the backend answered with one."""
        self.retryable = retryable
        """Whether trying the same request again may succeed."""


class ModelOutputError(ModelError):
    """The model's output was still invalid after the allowed retries."""

    def __init__(self, message: str, *, raw_output: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        """The last raw text the model produced."""
        self.attempts = attempts
        """How many generations were tried."""


class StoreError(AgentlibError):
    """A conversation store failed: the database is unreachable, unwritable or stayed locked."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url
        """The store's URL (without its password)."""


class ToolError(AgentlibError):
    """A tool failed in a way the model should hear about; becomes an observation in the loop."""

    def __init__(self, message: str, *, tool_name: str | None = None) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        """The tool that failed, when known."""

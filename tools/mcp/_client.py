"""`MCPToolset`: the tools of an MCP server (stdio subprocess or streamable HTTP) as agentlib tools.

The MCP session lives on its own event loop in a background thread, so one toolset serves sync
code (`Agent.run`, which starts a loop per run) and async code alike, and outlives any caller's
loop; tool calls are marshalled to it. Each server tool becomes a `Tool.from_schema` (the same
JSON-schema path as every other tool), so it enters the compiled step schema and is constrained
on local models like a `@tool`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import logging
import os
import shlex
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from agentlib import (
    ConfigurationError,
    MissingExtraError,
    Tool,
    ToolError,
    Toolset,
    fence_untrusted,
)

__all__ = ["MCPToolset"]

logger = logging.getLogger(__name__)

Unsupported = Literal["error", "skip", "keep"]

# Toolsets with a live session: closed at exit, so a forgotten one leaves no server running
# (its session task holds it, so `__del__` would never run while connected).
_OPEN: set[MCPToolset] = set()


@atexit.register
def _close_open_toolsets() -> None:
    for toolset in list(_OPEN):
        toolset.close()


def _sdk() -> Any:
    try:
        import mcp
    except ImportError as exc:
        raise MissingExtraError("mcp", "mcp", feature="MCP servers") from exc
    return mcp


class MCPToolset(Toolset):
    """The tools of one MCP server, as agentlib tools.

    Args:
        server: A URL (`http://127.0.0.1:8000/mcp`: streamable HTTP), or a command that starts
            a stdio server: a string split like a shell does (`"python server.py"`) or a list
            of arguments. The subprocess is started on first use and stopped by `close`.
        headers: HTTP headers for every request to a URL server (`{"Authorization": "Bearer
            ..."}`).
        env: Extra environment variables for a stdio server (merged over the SDK's safe
            defaults: `PATH`, `HOME`, ...; the rest of this process's environment is not
            passed on).
        cwd: The working directory of a stdio server.
        prefix: Put before every tool name (`"files_"` makes `read` into `files_read`), to
            keep several servers' names apart.
        include: Offer only these server tools (their names on the server).
        unsupported: What to do with a tool whose argument schema the local constraint
            engine (llguidance, when the `local` extra is installed) cannot enforce: `"error"`
            (raise, naming each tool and why), `"skip"` (leave those tools out; see
            `unsupported_tools`), `"keep"` (offer them anyway). Schemas OpenAI's strict mode
            cannot express are listed in `strict_mode_problems` (and logged): an
            `OpenAIModel` can still use them in its `json_object` or `prompted` mode.
        timeout: Seconds to wait for the server to start, and for each tool call.
        max_output_chars: The most characters of a tool result given to the model.

    Raises:
        ConfigurationError: `server` is empty or not a URL or command.
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        prefix: str = "",
        include: Sequence[str] | None = None,
        unsupported: Unsupported = "error",
        timeout: float = 60.0,
        max_output_chars: int = 8000,
    ) -> None:
        super().__init__()
        if isinstance(server, str):
            if server.startswith(("http://", "https://")):
                self.url: str | None = server
                self.command: list[str] = []
            else:
                self.url, self.command = None, shlex.split(server)
        else:
            self.url, self.command = None, [str(part) for part in server]
        if not self.url and not self.command:
            raise ConfigurationError(
                "MCPToolset needs a server: a URL (http://host:port/mcp) or a command "
                "that starts a stdio MCP server ('python server.py')"
            )
        if unsupported not in ("error", "skip", "keep"):
            raise ConfigurationError(
                f"unsupported must be 'error', 'skip' or 'keep', got {unsupported!r}"
            )
        if headers and not self.url:
            raise ConfigurationError("headers= is for URL servers; a stdio server takes env=")
        self.headers = dict(headers or {})
        self.env = dict(env or {})
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.prefix = prefix
        self.include = list(include) if include is not None else None
        self.unsupported = unsupported
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.unsupported_tools: dict[str, str] = {}
        """Server tools left out (`unsupported="skip"`) or kept anyway, with the reason."""
        self.strict_mode_problems: dict[str, str] = {}
        """Offered tools whose schema OpenAI's strict mode cannot express, with the reason."""
        self.server_name = ""
        """The name the server gave itself (empty until connected)."""
        self._tools: list[Tool] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._session_task: concurrent.futures.Future[None] | None = None
        self._death: str | None = None

    def __repr__(self) -> str:
        return f"MCPToolset({self.url or shlex.join(self.command)!r})"

    @property
    def label(self) -> str:
        """How observations and errors name this server."""
        return self.server_name or self.url or (self.command[0] if self.command else "server")

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def tools(self) -> list[Tool]:
        """The server's tools as agentlib tools (connects on first use)."""
        if self._tools is None:
            self.connect()
        assert self._tools is not None
        return [*self._tools, *self._extra_tools]

    def connect(self) -> None:
        """Start (or reach) the server and list its tools; does nothing when connected.

        Raises:
            ConfigurationError: The server cannot be started or reached, or a tool's schema
                cannot be enforced (with `unsupported="error"`).
        """
        with self._lock:
            if self._client is not None and self._death is None:
                return
            listing = self._start()
            if self._tools is None:
                self._tools = self._make_tools(listing)

    async def aconnect(self) -> None:
        """`connect` without blocking the caller's event loop."""
        await asyncio.to_thread(self.connect)

    def __enter__(self) -> MCPToolset:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> MCPToolset:
        await self.aconnect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Stop the session (and a stdio server's process) and the background loop."""
        with self._lock:
            self._shutdown()

    async def aclose(self) -> None:
        """`close` without blocking the caller's event loop."""
        await asyncio.to_thread(self.close)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name=f"mcp-{self.label}", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
            _OPEN.add(self)
        return self._loop

    def _start(self) -> list[Any]:
        """Open a session on the background loop; return the server's tool listing."""
        loop = self._ensure_loop()
        self._death = None
        ready: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        self._session_task = asyncio.run_coroutine_threadsafe(self._session(ready), loop)
        try:
            return ready.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            self._shutdown()
            raise ConfigurationError(
                f"MCP server {self.label!r} did not answer within {self.timeout:g} s; check "
                "that it starts on its own (run the command by hand) or raise `timeout`"
            ) from None
        except Exception as exc:
            self._shutdown()
            raise ConfigurationError(
                f"cannot connect to MCP server {self.label!r}: {_describe(exc)}"
            ) from exc

    def _target(self) -> Any:
        mcp = _sdk()
        if self.url and self.headers:
            return _http_with_headers(self.url, self.headers)
        if self.url:
            return self.url
        return mcp.StdioServerParameters(
            command=self.command[0], args=self.command[1:], env=self.env or None, cwd=self.cwd
        )

    async def _session(self, ready: concurrent.futures.Future[list[Any]]) -> None:
        mcp = _sdk()
        self._stop = asyncio.Event()
        try:
            async with mcp.Client(
                self._target(), read_timeout_seconds=self.timeout, mode="legacy"
            ) as client:
                listing = await _list_all(client)
                info = client.server_info
                self.server_name = info.name if info is not None and info.name else ""
                self._client = client
                ready.set_result(listing)
                await self._stop.wait()
        except BaseException as exc:  # the server died or could not start
            self._death = _describe(exc)
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None
            if self._death is None:
                self._death = "the session was closed"

    def _shutdown(self) -> None:
        loop, stop, task = self._loop, self._stop, self._session_task
        if loop is None:
            return
        if stop is not None and task is not None and not task.done():
            loop.call_soon_threadsafe(stop.set)
            try:
                task.result(timeout=10)
            except Exception as exc:  # the server was already gone: nothing to stop
                logger.debug("MCP session %s ended with %s", self.label, _describe(exc))
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        loop.close()
        _OPEN.discard(self)
        self._loop = self._thread = self._session_task = self._stop = None
        self._client = None

    # -- tools ------------------------------------------------------------------------------

    def _make_tools(self, listing: list[Any]) -> list[Tool]:
        tools: list[Tool] = []
        problems: dict[str, str] = {}
        strict_problems: dict[str, str] = {}
        for spec in listing:
            if self.include is not None and spec.name not in self.include:
                continue
            name = f"{self.prefix}{spec.name}"
            try:
                made = Tool.from_schema(
                    name, spec.description or "", spec.input_schema or {}, self._caller(spec.name)
                )
            except ConfigurationError as exc:
                problems[name] = str(exc)
                continue
            reason = _local_problem(made.parameters)
            strict = _strict_problem(made.parameters)
            if strict is not None:
                strict_problems[name] = strict
            if reason is not None:
                problems[name] = reason
                if self.unsupported != "keep":
                    continue
            tools.append(made)
        if self.include is not None:
            missing = sorted(set(self.include) - {spec.name for spec in listing})
            if missing:
                known = ", ".join(spec.name for spec in listing)
                raise ConfigurationError(
                    f"MCP server {self.label!r} has no tool(s) {', '.join(missing)}; "
                    f"its tools: {known}"
                )
        self.unsupported_tools = problems
        self.strict_mode_problems = {
            name: reason for name, reason in strict_problems.items() if name not in problems
        }
        for name, reason in self.strict_mode_problems.items():
            logger.warning("MCP tool %s: %s", name, reason)
        if problems and self.unsupported == "error":
            self._shutdown()
            details = "; ".join(f"{name}: {reason}" for name, reason in problems.items())
            raise ConfigurationError(
                f"MCP server {self.label!r} has {len(problems)} tool(s) whose argument schema "
                f"cannot be enforced: {details}. Pass unsupported='skip' to leave them out or "
                "unsupported='keep' to offer them unconstrained"
            )
        for name, reason in problems.items():
            logger.warning("MCP tool %s: %s", name, reason)
        return tools

    def _caller(self, remote_name: str) -> Any:
        async def call(**arguments: Any) -> str:
            return await self.acall_tool(remote_name, arguments)

        call.__name__ = remote_name
        return call

    async def acall_tool(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Call the server's tool `name` and return its result as observation text.

        A dead server is restarted. When the session had already ended (a closed HTTP
        session, a server that exited on its own), the call is made on the new session and
        the observation starts with a note saying so; when the connection breaks during the
        call (the process was killed or crashed), the call is not repeated, since it may
        have run: a `ToolError` says the server was restarted and to call again.

        Raises:
            ToolError: The tool reported an error (`isError`), or the server failed.
        """
        return await asyncio.to_thread(self._call_blocking, name, dict(arguments))

    def _call_blocking(self, name: str, arguments: dict[str, Any]) -> str:
        note = ""
        with self._lock:
            if self._client is None or self._death is not None:
                reason = self._death or "not connected"
                self._restart(name, reason, ran=False)
                note = f"(the MCP server had stopped: {reason}; it was restarted)\n"
            loop, client = self._loop, self._client
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(client.call_tool(name, arguments), loop)
        try:
            result = future.result(timeout=self.timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ToolError(
                f"MCP tool '{name}' on {self.label!r} gave no result within {self.timeout:g} s",
                tool_name=name,
            ) from None
        except Exception as exc:
            with self._lock:
                self._restart(name, _describe(exc), ran=True)
            raise ToolError(
                f"MCP server {self.label!r} stopped or broke the connection during '{name}' "
                f"({_describe(exc)}); the "
                "connection was restarted: the call may or may not have run, call it again "
                "if you still need it",
                tool_name=name,
            ) from exc
        return note + self._render(name, result)

    def _restart(self, name: str, reason: str, *, ran: bool) -> None:
        logger.warning("MCP server %s: %s; restarting", self.label, reason)
        self._shutdown()
        try:
            self._start()
        except ConfigurationError as exc:
            raise ToolError(
                f"MCP server {self.label!r} stopped ({reason}) and could not be restarted: {exc}",
                tool_name=name,
            ) from exc

    def _render(self, name: str, result: Any) -> str:
        parts = []
        for block in result.content or ():
            kind = getattr(block, "type", "")
            if kind == "text":
                parts.append(block.text)
            elif kind == "resource" and hasattr(block.resource, "text"):
                parts.append(block.resource.text)
            elif kind == "resource_link":
                parts.append(f"[resource {block.uri}]")
            else:
                parts.append(f"[{kind or 'unknown'} content: {getattr(block, 'mime_type', '')}]")
        if result.structured_content is not None and not parts:
            parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        text = "\n".join(parts) or "(no output)"
        if len(text) > self.max_output_chars:
            keep = self.max_output_chars
            text = f"{text[:keep]}\n…[truncated: showing {keep} of {len(text)} characters]"
        fenced = fence_untrusted(text, source=f"MCP tool {name} on {self.label}")
        if result.is_error:
            raise ToolError(f"MCP tool '{name}' reported an error:\n{fenced}", tool_name=name)
        return fenced


@contextlib.asynccontextmanager
async def _http_with_headers(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """The SDK's streamable HTTP transport on an HTTP client that sends `headers`."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


async def _list_all(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    for _ in range(100):  # a bound on pagination, against a server that loops
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _strict_problem(schema: Mapping[str, Any]) -> str | None:
    """Why OpenAI's strict mode cannot express `schema` (`None`: it can)."""
    from agentlib._strict import strict_schema  # the one owner of the strict-mode rules

    try:
        strict_schema(schema)
    except ConfigurationError as exc:
        return f"strict mode cannot express it: {exc}"
    return None


def _local_problem(schema: Mapping[str, Any]) -> str | None:
    """Why llguidance cannot enforce `schema` (`None`: it can, or it is not installed)."""
    try:
        from llguidance import LLMatcher
    except ImportError:  # no local extra: no local model to constrain
        return None
    grammar = LLMatcher.grammar_from_json_schema(
        dict(schema), overrides={"whitespace_flexible": False}
    )
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        return f"llguidance cannot enforce it: {'; '.join(messages)}"
    return None


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

"""A sandboxed, stateful Python interpreter tool: `PythonInterpreter`.

Code never runs in the host process. A `SandboxPool` keeps one *template* process that has
already imported the heavy modules (numpy, pandas, the allowed stdlib); each `PythonSession`
gets its own worker forked from it, isolated by Linux namespaces, a private filesystem view,
Landlock, seccomp, resource limits and its own uid (see `docs/security.md` for what each
protection promises and rests on). Code and results cross the boundary as JSON, one socket
per call, so each reply is paired with its call by the kernel; nothing is unpickled. A worker
that crashes, is killed or times out is replaced on the next call, and the model is told that
the session's state was lost.

Linux only: on other systems, run agentlib inside a Linux container.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import importlib.util
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from agentlib import ConfigurationError, ToolError, Toolset, tool

from ._worker import ProtocolError, Worker, max_reply_bytes

__all__ = [
    "DEFAULT_ALLOWED_IMPORTS",
    "ExecutionResult",
    "PythonInterpreter",
    "PythonSession",
    "SandboxLimits",
    "SandboxPool",
]

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "array",
        "base64",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "itertools",
        "json",
        "math",
        "numbers",
        "numpy",
        "operator",
        "pandas",
        "pprint",
        "random",
        "re",
        "statistics",
        "string",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
        "zoneinfo",
    }
)
"""Modules the session's code may import by default. numpy and pandas work when installed."""

_HEAVY_PRELOAD = ("numpy", "pandas")
_WORKER_PROGRAM = Path(__file__).with_name("_sandbox_worker.py")
_UID_BASE = 1_500_000_000  # far above any real account; each worker gets its own uid
_UID_SPAN = 100_000_000
_START_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SandboxLimits:
    """Resource limits of one sandbox session."""

    timeout: float = 10.0
    """Wall-clock seconds one call may take; then the worker is killed and replaced."""
    cpu_seconds: int = 10
    """CPU seconds one call may use (`RLIMIT_CPU`, re-armed per call)."""
    lifetime_cpu_seconds: int = 600
    """CPU seconds a worker may use over its whole life (the hard `RLIMIT_CPU`)."""
    memory_mb: int = 512
    """Address space the code may add on top of the preloaded interpreter (`RLIMIT_AS`)."""
    disk_mb: int = 64
    """Size of the private working directory (a tmpfs)."""
    file_mb: int = 16
    """Largest file the code may write (`RLIMIT_FSIZE`)."""
    open_files: int = 64
    """Open file descriptors (`RLIMIT_NOFILE`)."""
    threads: int = 16
    """Threads of the worker's uid (`RLIMIT_NPROC`); new processes are refused outright."""
    max_output_chars: int = 8000
    """Characters of stdout, and of stderr, kept per call; the rest is cut with a marker."""
    max_value_chars: int = 2000
    """Characters of the last expression's `repr` kept per call."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ConfigurationError(
                    f"SandboxLimits.{field.name} must be positive, got {getattr(self, field.name)}"
                )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResult:
    """What one call to the sandbox produced."""

    stdout: str = ""
    """What the code printed (capped, with a truncation marker)."""
    stderr: str = ""
    """What the code wrote to stderr (capped)."""
    value: str | None = None
    """The `repr` of the last line's value when it is an expression that is not `None`."""
    error: str | None = None
    """The error with a short traceback, or why the worker was lost."""
    state_lost: bool = False
    """The worker was killed or crashed: variables from earlier calls are gone."""
    notice: str | None = None
    """A note about the session itself, such as a worker replaced before this call."""

    def render(self) -> str:
        """Render the result as observation text for a model."""
        parts = [f"Note: {self.notice}"] if self.notice else []
        if self.stdout:
            parts.append(f"Printed:\n{self.stdout.rstrip(chr(10))}")
        if self.stderr:
            parts.append(f"Stderr:\n{self.stderr.rstrip(chr(10))}")
        if self.value is not None:
            parts.append(f"Result: {self.value}")
        if self.error is not None:
            parts.append(f"Error:\n{self.error}")
        if len(parts) == (1 if self.notice else 0):
            parts.append("Done: no output and no result. Use print(...) to show values.")
        return "\n".join(parts)


def _clean_environment() -> dict[str, str]:
    """The template's environment: nothing from the host, single-threaded numeric libraries."""
    environment = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment[name] = "1"
    return environment


class SandboxPool:
    """A pre-started template process that forks sandboxed workers for sessions.

    Starting the template once (with numpy and pandas imported) is what makes a new session
    cheap: a worker is a fork of it, not a fresh interpreter. Share one pool between many
    sessions; `SandboxPool.default()` is the process-wide one.

    Args:
        preload: Modules the template imports before forking workers; absent ones are skipped.
        python: The interpreter that runs the template; defaults to the current one.
        spares: Workers kept forked and half set up ahead of time, so a session start only
            pays for its own settings.
    """

    _default: SandboxPool | None = None
    _default_lock = threading.Lock()

    def __init__(
        self,
        *,
        preload: Collection[str] | None = None,
        python: str | None = None,
        spares: int = 1,
    ) -> None:
        if preload is None:
            stdlib = sorted(DEFAULT_ALLOWED_IMPORTS - set(_HEAVY_PRELOAD))
            heavy = [name for name in _HEAVY_PRELOAD if importlib.util.find_spec(name)]
            preload = [*stdlib, *heavy]
        self.preload = list(preload)
        self.python = python or sys.executable
        if spares < 0:
            raise ConfigurationError(f"spares must be 0 or more, got {spares}")
        self.spares = spares
        self._staging: str | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    @classmethod
    def default(cls) -> SandboxPool:
        """The process-wide pool, started on first use and stopped when the process exits."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
                atexit.register(cls._default.close)
            return cls._default

    @property
    def template_pid(self) -> int | None:
        """The template process's pid, or None when it is not running."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def _start(self) -> None:
        if not sys.platform.startswith("linux"):
            raise ConfigurationError(
                "the Python sandbox needs Linux (namespaces, seccomp, Landlock); "
                "on other systems run agentlib inside a Linux container"
            )
        host_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The spares mount their private root on this directory inside their own mount
        # namespaces; on the host it stays empty.
        self._staging = tempfile.mkdtemp(prefix="agentlib-sandbox-root-")
        config = json.dumps(
            {
                "preload": self.preload,
                "control_fd": template_end.fileno(),
                "staging": self._staging,
                "spares": self.spares,
            }
        )
        try:
            process = subprocess.Popen(
                [self.python, "-I", str(_WORKER_PROGRAM), config],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_clean_environment(),
                cwd="/",
                start_new_session=True,
                pass_fds=(template_end.fileno(),),
            )
        except OSError as exc:
            host_end.close()
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
            raise ConfigurationError(
                f"cannot start the sandbox template with {self.python!r}: {exc}; "
                "pass SandboxPool(python=...) an existing Python interpreter"
            ) from exc
        finally:
            template_end.close()
        self._process = process
        self._control = host_end
        logger.debug("started sandbox template pid %s", self._process.pid)

    def spawn(self, request: Mapping[str, Any]) -> socket.socket:
        """Ask the template for a new worker; return the host end of its session socket."""
        host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        message = json.dumps({"op": "spawn", **request}).encode()
        try:
            with self._lock:
                for attempt in range(2):
                    running = self._process is not None and self._process.poll() is None
                    if self._control is None or not running:
                        self._stop_locked()
                        self._start()
                    assert self._control is not None
                    try:
                        socket.send_fds(self._control, [message], [worker_end.fileno()])
                        break
                    except OSError:
                        self._stop_locked()  # the template died: start a new one once
                        if attempt:
                            raise
        except BaseException:
            host_end.close()
            raise
        finally:
            worker_end.close()
        return host_end

    def _stop_locked(self) -> None:
        if self._control is not None:
            self._control.close()  # the template kills its workers when the socket closes
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def close(self) -> None:
        """Stop the template and, with it, every worker it started."""
        with self._lock:
            self._stop_locked()

    async def aclose(self) -> None:
        """Asynchronous `close`."""
        await asyncio.to_thread(self.close)


class PythonSession:
    """One stateful interpreter: variables, functions and imports persist between calls.

    The worker starts on the first call. When it crashes, is killed or times out, the call
    reports it and the next call starts a fresh worker.

    Args:
        pool: The pool that forks workers; defaults to `SandboxPool.default()`.
        limits: Resource limits; defaults to `SandboxLimits()`.
        allowed_imports: Top-level modules the code may import, or None for no import policy
            (the OS sandbox still applies).
        audit_hook: Refuse process, socket and ctypes operations with an audit hook inside the
            worker. Defence in depth only: turning it off (with `allowed_imports=None`) leaves
            the OS sandbox as the sole boundary, which is how the security tests prove it holds.
    """

    def __init__(
        self,
        pool: SandboxPool | None = None,
        *,
        limits: SandboxLimits | None = None,
        allowed_imports: Collection[str] | None = DEFAULT_ALLOWED_IMPORTS,
        audit_hook: bool = True,
    ) -> None:
        self.pool = pool or SandboxPool.default()
        self.limits = limits or SandboxLimits()
        self.allowed_imports = None if allowed_imports is None else frozenset(allowed_imports)
        self.audit_hook = audit_hook
        self._max_reply = max_reply_bytes(self.limits.max_output_chars, self.limits.max_value_chars)
        self._worker: Worker | None = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False

    @property
    def worker_pid(self) -> int | None:
        """The running worker's pid as the host sees it, or None before the first call."""
        return self._worker.pid if self._worker else None

    @property
    def protections(self) -> dict[str, str]:
        """The protections in force in the current worker, by name (empty before a call)."""
        return dict(self._worker.protections) if self._worker else {}

    @property
    def missing_protections(self) -> dict[str, str]:
        """Protections the kernel refused for the current worker, with the reason."""
        return dict(self._worker.missing) if self._worker else {}

    def _lock(self) -> asyncio.Lock:
        # One lock per event loop: `Toolset.close()` and sync callers use fresh loops.
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _spawn_request(self, session_dir: str) -> dict[str, Any]:
        uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
        request = dataclasses.asdict(self.limits)
        request.update(
            session_dir=session_dir,
            uid=uid,
            gid=uid,
            allowed_imports=None if self.allowed_imports is None else sorted(self.allowed_imports),
            audit_hook=self.audit_hook,
        )
        return request

    async def _start_worker(self) -> Worker:
        session_dir = tempfile.mkdtemp(prefix="agentlib-python-")
        try:
            channel = await asyncio.to_thread(self.pool.spawn, self._spawn_request(session_dir))
        except OSError as exc:
            shutil.rmtree(session_dir, ignore_errors=True)
            raise ToolError(f"the Python sandbox could not start: {exc}") from exc
        except BaseException:
            shutil.rmtree(session_dir, ignore_errors=True)
            raise
        channel.setblocking(False)
        worker = Worker(channel, 0, session_dir)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                worker.pid = int((await worker.read_message())["pid"])
                ready = await worker.read_message()
            if not ready.get("ready"):
                raise ToolError(str(ready.get("error", "the sandbox did not start")))
            # Opened only once the worker has answered, so the pid cannot have been reused.
            worker.pidfd = os.pidfd_open(worker.pid)
        except (TimeoutError, ConnectionError, ValueError, KeyError, OSError) as exc:
            worker.kill()
            raise ToolError(f"the Python sandbox could not start: {exc}") from exc
        except BaseException:
            worker.kill()
            raise
        worker.protections = dict(ready.get("protections", {}))
        worker.missing = dict(ready.get("missing", {}))
        return worker

    async def arun(self, code: str) -> ExecutionResult:
        """Run `code` in the session and return what it printed, its value and its error.

        Raises:
            ToolError: The session is closed, the sandbox cannot start, or the worker broke the
                reply protocol (code in the session wrote to the sandbox's sockets); the worker
                is then stopped and the next call starts a fresh one.
        """
        async with self._lock():
            if self._closed:
                raise ToolError("this Python session is closed; start a new one")
            notice = None
            if self._worker is not None and not self._worker.alive():
                await self._discard_worker()
                notice = "the previous Python worker had stopped; session state was lost"
            if self._worker is None:
                self._worker = await self._start_worker()
            worker = self._worker
            request = json.dumps({"code": code}).encode()
            try:
                async with asyncio.timeout(self.limits.timeout):
                    worker.check_quiet()
                    message = await worker.call(
                        request,
                        max_reply_bytes(self.limits.max_output_chars, self.limits.max_value_chars),
                    )
            except TimeoutError:
                return await self._lose_worker(f"timed out after {self.limits.timeout:g} s")
            except ProtocolError as exc:
                await self._discard_worker()
                raise ToolError(
                    f"the Python worker broke the sandbox's reply protocol ({exc}): code in the "
                    "session wrote to the sandbox's own sockets. The worker was stopped and the "
                    "session's state is lost; the next call starts a fresh interpreter"
                ) from None
            except (ConnectionError, OSError, ValueError):
                return await self._lose_worker(
                    "the Python worker stopped (it crashed or hit a memory or CPU limit)"
                )
            except BaseException:  # cancelled mid-call: the worker's state is unknown
                worker.kill()
                self._worker = None
                raise
        return ExecutionResult(
            stdout=message["stdout"] or "",
            stderr=message["stderr"] or "",
            value=message["value"],
            error=message["error"],
            state_lost=notice is not None,
            notice=notice,
        )

    def run(self, code: str) -> ExecutionResult:
        """Synchronous `arun` (outside an event loop)."""
        return asyncio.run(self.arun(code))

    async def _discard_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.to_thread(worker.kill)

    async def _lose_worker(self, reason: str) -> ExecutionResult:
        await self._discard_worker()
        return ExecutionResult(
            error=f"{reason}; session state was lost (variables and imports are gone, "
            "the next call starts a fresh interpreter)",
            state_lost=True,
        )

    async def aclose(self) -> None:
        """Kill the worker and remove its working directory. Closing twice is harmless."""
        self._closed = True
        await self._discard_worker()

    def close(self) -> None:
        """Synchronous `aclose`."""
        asyncio.run(self.aclose())


class PythonInterpreter(Toolset):
    """A toolset with one `python` tool that runs code in a sandboxed, stateful session.

    Each agent run gets its own session through `for_run()`; the instance itself also holds
    one session for direct use. Close what you create with `aclose()`.

    Args:
        limits: Resource limits for each session; defaults to `SandboxLimits()`.
        allowed_imports: Top-level modules the code may import; None disables the import
            policy (the OS sandbox still applies).
        pool: The pool that forks workers; defaults to `SandboxPool.default()`.

    Example:
        ```python
        interpreter = PythonInterpreter(limits=SandboxLimits(timeout=5))
        agent = Agent(model, tools=[interpreter])
        ```
    """

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        allowed_imports: Collection[str] | None = DEFAULT_ALLOWED_IMPORTS,
        pool: SandboxPool | None = None,
    ) -> None:
        super().__init__()
        self.limits = limits or SandboxLimits()
        self.allowed_imports = allowed_imports
        self.pool = pool
        self.session = PythonSession(pool, limits=self.limits, allowed_imports=self.allowed_imports)

    def for_run(self) -> PythonInterpreter:
        """A new interpreter with a fresh session, sharing this one's pool and settings."""
        return PythonInterpreter(
            limits=self.limits, allowed_imports=self.allowed_imports, pool=self.pool
        )

    @tool
    async def python(self, code: str) -> str:
        """Run Python code and return what it prints and the value of its last line.

        Variables, functions and imports are kept between calls. There is no internet access.
        Common modules can be imported: math, statistics, json, re, datetime, itertools,
        collections, fractions, decimal, random, numpy and pandas.

        Args:
            code: Python source code to run, for example `17 * 23` or `print(sum(range(10)))`.
        """
        result = await self.session.arun(code)
        return result.render()

    async def aclose(self) -> None:
        """Kill this toolset's worker and remove its working directory."""
        await self.session.aclose()

"""Running the session's code inside a sandbox worker: one call at a time, one cell per call.

Loaded by the worker program (`_sandbox_worker.py`) in the sandbox's template process, before
any worker is forked, so no worker reads this file (its folder is not mounted in the private
root); never imported by agentlib, and it uses only the stdlib. `serve` takes each call over
its own socket; `_execute` runs a cell's code in the session's namespace with its output
captured and capped, the call's CPU time armed as a soft `RLIMIT_CPU`, and a traceback of the
session's own frames only.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import linecache
import math
import resource
import signal
import socket
import sys
import traceback
from typing import Any

__all__ = ["serve"]


class _CappedText(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.total += len(text)
        room = self.limit - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(text)

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.total > self.kept:
            text += f"\n…[output truncated: showing {self.kept} of {self.total} characters]"
        return text


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"…[truncated: showing {limit} of {len(text)} characters]"


def _clean(text: str) -> str:
    """Replace lone surrogates so the host always receives valid UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _CpuTimeExceededError(BaseException):
    """Raised in the session's code when its CPU time for this call runs out."""


def _on_cpu_limit(_signal: int, _frame: object) -> None:
    raise _CpuTimeExceededError("the CPU time limit for this call was exceeded")


def _arm_cpu_limit(seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used) + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _disarm_cpu_limit() -> None:
    # Between calls the soft limit goes back up to the lifetime cap, so no SIGXCPU arrives
    # while the worker reports.
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def _short_traceback(exc: BaseException, filename_prefix: str, max_lines: int) -> str:
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.startswith(filename_prefix)
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames[-8:])
    lines += traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).rstrip()
    kept = text.splitlines()[-max_lines:]
    return "\n".join(kept)


def _execute(
    code: str, namespace: dict[str, Any], cell: int, limits: dict[str, Any]
) -> dict[str, Any]:
    filename = f"<cell {cell}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    stdout, stderr = (
        _CappedText(limits["max_output_chars"]),
        _CappedText(limits["max_output_chars"]),
    )
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    value: str | None = None
    error: str | None = None
    try:
        _arm_cpu_limit(limits["cpu_seconds"])
        tree = ast.parse(code, filename, "exec")
        last: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            del tree.body[-1]
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            result = eval(compile(last, filename, "eval"), namespace)
            if result is not None:
                namespace["_"] = result
                value = _cap(repr(result), limits["max_value_chars"])
    except SyntaxError as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    except _CpuTimeExceededError:
        error = f"CPU time limit exceeded: the call used more than {limits['cpu_seconds']} s of CPU"
    except BaseException as exc:  # the session's code may raise anything, SystemExit included
        error = _short_traceback(exc, "<cell ", 30)
    finally:
        sys.stdout, sys.stderr = saved
        _disarm_cpu_limit()
    return {
        "stdout": _clean(stdout.getvalue()),
        "stderr": _clean(stderr.getvalue()),
        "value": _clean(value) if value is not None else None,
        "error": _clean(_cap(error, 4000)) if error is not None else None,
    }


def serve(channel: socket.socket, limits: dict[str, Any], wrapping: list[bool]) -> None:
    """Run one call per socket the host passes over `channel`, until the host goes away.

    Each call comes with its own socket (SCM_RIGHTS on a one-byte message): the request is read
    from it up to the host's end of stream, the reply written to it, and its sending side shut
    down, so no later write, by the session's code or anyone, can reach that call's reader.
    The host pairs each reply with its call through that socket, never through the order of
    replies on a shared stream that the session's code could write to.
    """
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    cell = 0
    while True:
        message, descriptors, _flags, _address = socket.recv_fds(channel, 1, 1)
        if not message:
            return  # the host closed the session
        if not descriptors:
            continue  # the descriptor did not fit under RLIMIT_NOFILE: the host sees no reply
        cell += 1
        wrapping[0] = True
        try:
            call = socket.socket(fileno=descriptors[0])
        finally:
            wrapping[0] = False
        with call:
            _answer(call, namespace, cell, limits)


def _answer(
    call: socket.socket, namespace: dict[str, Any], cell: int, limits: dict[str, Any]
) -> None:
    try:
        call.setblocking(True)
        request = b""
        while chunk := call.recv(1 << 20):
            request += chunk
        code = json.loads(request)["code"]
        try:
            response = _execute(code, namespace, cell, limits)
        except BaseException as exc:  # a failure while reporting (MemoryError in repr, ...)
            response = {"stdout": "", "stderr": "", "value": None, "error": f"{type(exc).__name__}"}
        call.sendall(json.dumps(response).encode() + b"\n")
        call.shutdown(socket.SHUT_WR)
    except (OSError, ValueError, KeyError, TypeError):
        return  # the session's code tampered with the call's socket: the host sees no reply

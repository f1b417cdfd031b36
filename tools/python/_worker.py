"""The host's side of one sandbox worker: its sockets, its pidfd, and the reply protocol.

Each call travels on a socket pair of its own, whose worker end is passed over the session
socket (`SCM_RIGHTS`); the reply is read from the host's end up to the end of stream, so the
kernel pairs every reply with its call. Anything outside the protocol (a byte on the session
socket, a reply that is not exactly one result) is a `ProtocolError`: code in the session wrote
to the sandbox's sockets, and `PythonSession` kills the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import socket
from typing import Any

__all__ = ["ProtocolError", "Worker", "max_reply_bytes"]

_MAX_START_MESSAGE_BYTES = 4 * 1024 * 1024


class ProtocolError(Exception):
    """The worker answered outside the protocol: the session's code wrote to its channels."""


_REPLY_FIELDS = {"stdout": (str,), "stderr": (str,), "value": (str, type(None))}
_REPLY_FIELDS["error"] = (str, type(None))


def _parse_reply(data: bytes) -> dict[str, str | None]:
    """Check a call's reply: exactly one JSON line holding the four fields, each of its type.

    Anything else means code in the session wrote to the call's socket.
    """
    line, newline, rest = data.partition(b"\n")
    if not newline or rest:
        raise ProtocolError("the reply was not exactly one line")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"the reply was not valid JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict) or set(message) != set(_REPLY_FIELDS):
        raise ProtocolError("the reply was not a result object")
    for name, types in _REPLY_FIELDS.items():
        if not isinstance(message[name], types):
            raise ProtocolError(f"the reply's {name} was a {type(message[name]).__name__}")
    return message


def max_reply_bytes(max_output_chars: int, max_value_chars: int) -> int:
    """The largest well-formed reply under these limits, in bytes."""
    # Each kept character is at most 12 bytes of JSON (a surrogate pair as two \u escapes);
    # the markers, the traceback cap (4000) and the field names fit in the extra 4600.
    characters = 2 * max_output_chars + max_value_chars + 4600
    return 12 * characters + 1024


class _ReplyCollector:
    """Reads a call's socket to its end of stream; any byte on the session socket fails it.

    Both sockets are watched from the event loop's own callbacks (no tasks), which keeps a
    call's round trip at one wake-up each way.
    """

    def __init__(self, call: socket.socket, session: socket.socket, limit: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.call, self.session, self.limit = call, session, limit
        self.done: asyncio.Future[bytes] = self.loop.create_future()
        self.data = bytearray()

    async def collect(self) -> bytes:
        """The reply's bytes.

        Raises:
            ConnectionError: Reading the call's socket failed.
            ProtocolError: The reply is over the limit, or the session socket got data.
        """
        self.loop.add_reader(self.call.fileno(), self._on_reply)
        self.loop.add_reader(self.session.fileno(), self._on_session)
        try:
            return await self.done
        finally:
            self._stop()

    def _stop(self) -> None:
        self.loop.remove_reader(self.call.fileno())
        self.loop.remove_reader(self.session.fileno())

    def _finish(self, error: BaseException | None = None) -> None:
        self._stop()
        if self.done.done():
            return
        if error is None:
            self.done.set_result(bytes(self.data))
        else:
            self.done.set_exception(error)

    def _on_reply(self) -> None:
        try:
            chunk = self.call.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(ConnectionError(f"the worker's call socket failed: {exc}"))
            return
        if not chunk:
            self._finish()
            return
        self.data.extend(chunk)
        if len(self.data) > self.limit:
            self._finish(ProtocolError(f"the reply was over {self.limit} bytes"))

    def _on_session(self) -> None:
        try:
            pending = self.session.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            pending = b""
        if pending:
            self._finish(ProtocolError("code in the session wrote to the session socket"))
        else:  # the worker is gone: its call socket reports it
            self.loop.remove_reader(self.session.fileno())


class Worker:
    """The host's handle on one running worker: its socket, pidfd and scratch directory."""

    def __init__(self, channel: socket.socket, pid: int, session_dir: str) -> None:
        self.channel = channel
        self.pid = pid
        self.session_dir = session_dir
        self.pidfd: int | None = None
        self.buffer = b""
        self.protections: dict[str, str] = {}
        self.missing: dict[str, str] = {}

    async def read_message(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while b"\n" not in self.buffer:
            chunk = await loop.sock_recv(self.channel, 65536)
            if not chunk:
                raise ConnectionError("the worker closed its connection")
            self.buffer += chunk
            if len(self.buffer) > _MAX_START_MESSAGE_BYTES:
                raise ConnectionError("the worker sent an oversized response")
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    async def call(self, request: bytes, max_reply: int) -> dict[str, str | None]:
        """Run one call on a socket of its own and return its checked reply.

        The worker's end of a fresh socket pair goes over the session socket; the request is
        written to the host's end and the reply read from it up to the worker's end of stream.
        A reply can only come from that socket, so it belongs to this call whatever the session's
        code writes elsewhere.

        Raises:
            ConnectionError: The worker died.
            ProtocolError: The reply was not exactly one result, or the session socket carried
                bytes it never should.
        """
        loop = asyncio.get_running_loop()
        host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with host_end:
            # The request goes in before the worker gets the socket, so the worker finds it
            # whole (one wake-up, as with a shared stream); a large one is finished after.
            host_end.setblocking(False)
            try:
                sent = host_end.send(request)
            except BlockingIOError:
                sent = 0
            if sent == len(request):
                host_end.shutdown(socket.SHUT_WR)
            try:
                socket.send_fds(self.channel, [b"c"], [worker_end.fileno()])
            except BlockingIOError:
                raise ProtocolError("the worker stopped taking calls") from None
            finally:
                worker_end.close()
            if sent < len(request):
                await loop.sock_sendall(host_end, request[sent:])
                host_end.shutdown(socket.SHUT_WR)
            # The session socket is watched during the call, so a write there is caught at
            # once and never fills its buffer.
            reply = await _ReplyCollector(host_end, self.channel, max_reply).collect()
        try:
            message = _parse_reply(reply)
        except ProtocolError:
            if await self.exited(1.0):
                raise ConnectionError("the worker stopped during the call") from None
            raise
        self.check_quiet()
        return message

    def check_quiet(self) -> None:
        """Raise `ProtocolError` if the session socket holds unread bytes.

        After start-up the worker never writes there, so only the session's code can have.
        """
        try:
            pending = self.buffer or self.channel.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if pending:
            raise ProtocolError("code in the session wrote to the session socket")

    async def exited(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the worker to exit; whether it did."""
        if self.pidfd is None:
            return True
        readable, _, _ = await asyncio.to_thread(select.select, [self.pidfd], [], [], timeout)
        return bool(readable)

    def alive(self) -> bool:
        """Whether the worker process is still running (its pidfd is not yet readable)."""
        if self.pidfd is None:
            return False
        readable, _, _ = select.select([self.pidfd], [], [], 0)
        return not readable

    def kill(self) -> None:
        """Kill the worker (and, as pid 1 of its namespace, everything it started)."""
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            # The pidfd becomes readable once the worker and its namespace are gone.
            select.select([self.pidfd], [], [], 5.0)
            os.close(self.pidfd)
            self.pidfd = None
        self.channel.close()
        shutil.rmtree(self.session_dir, ignore_errors=True)

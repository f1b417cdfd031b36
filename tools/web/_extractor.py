"""Page extraction in worker processes the host can kill: `fetch_page`'s time and memory bound.

Parsers are the part of a fetch that a hostile page can make unbounded: a PDF of nested forms
takes minutes in pypdf, a 5 MB table gigabytes in lxml. So extraction runs in a separate
process (`_extract_worker.py`, run by path) with `RLIMIT_AS` at what its parsers take plus
`FetchConfig.extraction_memory_mb`, and the host waits for it only until the fetch's
`total_timeout` runs out; then the worker is killed (SIGKILL) and a fresh one serves the next
page. The host process holds only the downloaded bytes (at most `max_bytes`) and the text.

Idle workers are kept (two per limit) so a fetch does not pay for starting Python and importing
trafilatura each time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agentlib import MissingExtraError, ToolError

__all__ = ["Extractor", "extractor_for"]

_PROGRAM = Path(__file__).with_name("_extract_worker.py")
_IDLE_WORKERS = 2


class _WorkerLostError(Exception):
    """The worker died or answered outside its protocol."""


class _Worker:
    """One extraction process and its pipes."""

    def __init__(self, memory_mb: int, max_body: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(_PROGRAM), str(memory_mb), str(max_body)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"},
            start_new_session=True,  # a signal to the host's process group spares it
        )
        self.max_reply = 8 * max_body + (1 << 20)  # the text, JSON-escaped, fits in this

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, header: bytes, body: bytes, timeout: float) -> dict[str, Any] | None:
        """Send one request and wait up to `timeout` seconds; `None` when time ran out.

        Raises:
            _WorkerLostError: The worker died or broke the framing.
        """
        deadline = time.monotonic() + timeout
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            frames = struct.pack(">I", len(header)) + header + struct.pack(">I", len(body))
            self.process.stdin.write(frames + body)
            self.process.stdin.flush()
        except OSError as exc:
            raise _WorkerLostError(f"the page reader stopped ({exc})") from exc
        source = self.process.stdout.fileno()
        prefix = self._read(source, 4, deadline)
        if prefix is None:
            return None
        (size,) = struct.unpack(">I", prefix)
        if size > self.max_reply:
            raise _WorkerLostError(f"the page reader sent {size} bytes")
        data = self._read(source, size, deadline)
        if data is None:
            return None
        try:
            reply = json.loads(data)
        except ValueError as exc:
            raise _WorkerLostError("the page reader sent a malformed reply") from exc
        if not isinstance(reply, dict):
            raise _WorkerLostError("the page reader sent a malformed reply")
        return reply

    @staticmethod
    def _read(source: int, size: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([source], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(source, min(size - len(data), 1 << 20))
            if not chunk:
                raise _WorkerLostError("the page reader stopped (it crashed or ran out of memory)")
            data += chunk
        return bytes(data)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class Extractor:
    """Hands pages to extraction workers with one memory limit, and kills them at deadlines.

    Args:
        memory_mb: Address space a worker may add on top of its loaded parsers (`RLIMIT_AS`).
        max_body: The largest body a worker accepts (the fetch's `max_bytes`).
    """

    def __init__(self, memory_mb: int, max_body: int) -> None:
        self.memory_mb = memory_mb
        self.max_body = max_body
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.kill()
        return _Worker(self.memory_mb, self.max_body)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < _IDLE_WORKERS:
                self._idle.append(worker)
                return
        worker.kill()

    async def extract(
        self, request: dict[str, Any], body: bytes, *, timeout: float, url: str
    ) -> tuple[str, str]:
        """Extract `(title, text)` from `body` within `timeout` seconds.

        Raises:
            ToolError: The page cannot be read, or reading it ran out of time or memory (the
                worker is then killed).
            MissingExtraError: A parser is not installed.
        """
        if timeout <= 0:
            raise _deadline_error(url)
        header = json.dumps(request).encode()
        worker = await asyncio.to_thread(self._take)
        try:
            reply = await asyncio.to_thread(worker.run, header, body, timeout)
        except _WorkerLostError as exc:
            await asyncio.to_thread(worker.kill)
            raise ToolError(f"reading {url} failed: {exc}") from None
        except BaseException:  # cancelled: the worker may still be parsing
            worker.kill()
            raise
        if reply is None:
            await asyncio.to_thread(worker.kill)
            raise _deadline_error(url)
        if reply.get("memory"):
            await asyncio.to_thread(worker.kill)
            raise ToolError(
                f"reading {url} needs more than {self.memory_mb} MB of memory, the limit for "
                "extracting one page; try a smaller page or another source"
            )
        self._give_back(worker)
        if isinstance(reply.get("missing"), str):
            raise MissingExtraError(reply["missing"], "web", feature="fetch_page")
        if isinstance(reply.get("error"), str):
            raise ToolError(f"cannot read {url}: {reply['error']}")
        title, text = reply.get("title"), reply.get("text")
        if not isinstance(title, str) or not isinstance(text, str):
            raise ToolError(f"reading {url} failed: the page reader sent a malformed reply")
        return title, text

    def close(self) -> None:
        """Stop the idle workers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


def _deadline_error(url: str) -> ToolError:
    return ToolError(
        f"reading {url} did not finish within the fetch's total_timeout, so it was stopped; "
        "the page is too large or too complex to read, try another source"
    )


_extractors: dict[tuple[int, int], Extractor] = {}
_extractors_lock = threading.Lock()


def extractor_for(memory_mb: int, max_body: int) -> Extractor:
    """The process-wide extractor for these limits (its idle workers stop at exit)."""
    with _extractors_lock:
        if not _extractors:
            atexit.register(_close_all)
        key = (memory_mb, max_body)
        if key not in _extractors:
            _extractors[key] = Extractor(memory_mb, max_body)
        return _extractors[key]


def _close_all() -> None:
    with _extractors_lock:
        extractors = list(_extractors.values())
    for extractor in extractors:
        extractor.close()

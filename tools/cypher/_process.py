"""The killable child process that runs embedded-engine queries, seen from the parent."""

from __future__ import annotations

import subprocess
import sys
import threading
import typing
from queue import Empty, Queue
from typing import Any

from agentlib import ToolError

from . import _worker
from ._worker import Outcome, read_frame, write_frame

__all__ = ["QueryWorker"]

_STARTUP_TIMEOUT = 120.0


class QueryWorker:
    """Runs queries in a child process (`_worker.py`) that is killed when a query times out.

    The child gets its engine's name and a pickled payload (the graph, for ladybug also the
    table plan) when it starts, lazily at the first query; a killed child is replaced at the
    next query. Calls are serialised by a lock.

    Args:
        engine: `ladybug` or `grand-cypher`.
        payload: What the engine loads: the graph, or `(graph, plan)` for ladybug.
    """

    def __init__(self, engine: str, payload: Any) -> None:
        self._engine = engine
        self._payload = payload
        self._process: subprocess.Popen[bytes] | None = None
        self._replies: Queue[Any] = Queue()
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            # -P: do not put tools/ on sys.path (its web.py, sql.py... would shadow modules).
            [sys.executable, "-P", _worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None and process.stdout is not None
        replies: Queue[Any] = Queue()
        stdout = process.stdout

        def pump() -> None:
            while True:
                try:
                    replies.put(read_frame(stdout))
                except (EOFError, OSError, ValueError):
                    replies.put(EOFError())
                    return

        threading.Thread(target=pump, name="cypher-worker-reader", daemon=True).start()
        self._replies = replies
        self._process = process
        # The query clock starts once the child has imported grand-cypher and read the graph.
        try:
            write_frame(process.stdin, (self._engine, self._payload))
            ready = replies.get(timeout=_STARTUP_TIMEOUT)
        except (Empty, OSError) as exc:
            self._kill()
            raise ToolError("the query worker did not start; try again") from exc
        if ready != "ready":
            self._kill()
            raise ToolError("the query worker did not start; try again")
        return process

    def run(self, query: str, options: dict[str, Any], *, timeout: float) -> Outcome:
        """Run `query` in the child; kill the child if it takes longer than `timeout` seconds.

        Returns:
            The child's outcome: `("ok", columns, rows)` or `("error", kind, message)`.

        Raises:
            ToolError: The query timed out or the child died.
        """
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            process = self._process
            assert process.stdin is not None
            try:
                write_frame(process.stdin, (query, options))
                reply = self._replies.get(timeout=timeout)
            except Empty:
                self._kill()
                raise ToolError(
                    f"the query took longer than {timeout:g} s and was stopped; make the "
                    "pattern more specific (labels, property filters) or add a LIMIT"
                ) from None
            except (BrokenPipeError, OSError) as exc:
                self._kill()
                raise ToolError(
                    f"the query worker stopped unexpectedly ({exc}); try again"
                ) from exc
            if isinstance(reply, EOFError):
                self._kill()
                raise ToolError(
                    "the query worker stopped while running the query (out of memory?); "
                    "make the pattern more specific or add a LIMIT"
                )
        return typing.cast(Outcome, reply)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Stop the child process, if one runs."""
        with self._lock:
            self._kill()

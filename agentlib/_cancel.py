"""`CancelToken`: stops runs from anywhere (another thread, a UI's Stop button)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["CancelToken", "retrieve_outcome"]


class CancelToken:
    """Cancels runs from anywhere (another thread, a UI's Stop button): `token.cancel()`.

    A run given the token stops at once, cancelling the model call or tools in flight, and
    returns its result with `stop_reason="cancelled"`.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Ask every run holding this token to stop; safe from any thread."""
        self._cancelled.set()
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self) -> None:
        """Wait until the token is cancelled."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(entry)
        try:
            if self.cancelled:
                return
            await event.wait()
        finally:
            with self._lock:
                self._waiters.remove(entry)


def retrieve_outcome(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned future's outcome as seen, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()

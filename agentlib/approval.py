"""Human approval for risky tools: the decisions (`Approve`, `Deny`) and the approver's shape.

A tool made with `@tool(requires_approval=True)` (or a policy on its arguments) does not run
when the model calls it until a decision is made. With no approver the run pauses: its
`RunResult` has stop reason `approval_required`, the calls in `pending`, and its state in
`checkpoint`; `Agent.resume(result, {call_id: Approve()})` continues it. With an approver
(`agent.run(task, approver=...)`, as the CLI's terminal prompt) the run asks and goes on.

The timeout (`Agent(approval_timeout=...)`) is counted from the moment a call was requested:
a call with no decision by then is denied with the reason "no decision within N s", which
the model sees; this holds for an approver that does not answer and for a paused run
resumed too late.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from agentlib.steps import ApprovalRequest

__all__ = ["Approve", "Approver", "Decision", "Deny"]


@dataclass(frozen=True, slots=True)
class Approve:
    """Run the call, as the model sent it or with `arguments` instead (an edit)."""

    arguments: Mapping[str, Any] | None = None
    """Replacement arguments (validated against the tool's schema), or `None` to keep the
    model's."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not run the call; the model sees `reason` as the call's (error) observation."""

    reason: str = "the user denied this call"
    """Why, in words the model can act on."""


Decision: TypeAlias = Approve | Deny
"""What a person decided about one pending call."""

Approver: TypeAlias = Callable[[ApprovalRequest], "Awaitable[Decision | None] | Decision | None"]
"""Called once per call that needs approval; returns a `Decision`, or `None` to pause the run.

An `async def` approver is awaited; a plain function runs in a daemon thread, so one that
blocks (a terminal prompt) cannot keep the program from exiting after a timeout.
"""


def timeout_reason(timeout: float) -> str:
    """The denial the model sees when nobody decided in time."""
    return f"no decision within {timeout:g} s: the call was denied automatically"


def expired(request: ApprovalRequest, timeout: float | None, now: float | None = None) -> bool:
    """Whether `request` has waited longer than `timeout` seconds."""
    if timeout is None:
        return False
    return (time.time() if now is None else now) - request.requested_at >= timeout


async def ask(
    approver: Approver, requests: Sequence[ApprovalRequest], timeout: float | None
) -> dict[str, Decision | None]:
    """Ask `approver` about each request in order; `None` where it chose to pause."""
    decisions: dict[str, Decision | None] = {}
    for request in requests:
        remaining = None if timeout is None else timeout - (time.time() - request.requested_at)
        try:
            decision = await asyncio.wait_for(_call(approver, request), remaining)
        except TimeoutError:
            decision = Deny(timeout_reason(timeout or 0.0))
        if decision is not None and not isinstance(decision, Approve | Deny):
            raise TypeError(
                f"the approver returned {decision!r} for call {request.call.id}; "
                "return Approve(), Approve(arguments=...), Deny(reason) or None (pause)"
            )
        decisions[request.call.id] = decision
    return decisions


async def _call(approver: Approver, request: ApprovalRequest) -> Decision | None:
    if inspect.iscoroutinefunction(approver) or inspect.iscoroutinefunction(
        getattr(approver, "__call__", None)  # noqa: B004 (an object with an async __call__)
    ):
        return await approver(request)  # type: ignore[no-any-return, misc]
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        try:
            value, error = approver(request), None
        except BaseException as exc:  # handed to the awaiting task
            value, error = None, exc
        # After a timeout the run may be over and its loop closed: then nobody waits.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, value, error)

    threading.Thread(target=work, name="agentlib-approver", daemon=True).start()
    result = await future
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[no-any-return]


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():  # the wait timed out meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)

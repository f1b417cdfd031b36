"""Ask a model until its reply passes a check: the one retry loop of the loop and `generate`.

Each invalid reply is shown back to the model with the exact error as the last message (where
the model reads it last), and the caller may change the request for the retry from the
`Failure` it gets (a constraint that excludes the failed value, a sampled generation). A reply
identical to an earlier invalid one means the model cannot progress (greedy decoding
reproduces the same text from nearly the same prompt): the loop stops at once instead of
spending the remaining retries on the same tokens.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from agentlib.errors import ModelOutputError
from agentlib.models.base import Message, ModelResponse

__all__ = ["Ask", "Failure", "RetriesExhausted", "Validated", "generate_until_valid"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """The invalid attempt a retry follows."""

    response: ModelResponse
    """The invalid response."""
    error: Exception
    """Why `check` refused it (a `ModelOutputError` or `ValueError`)."""
    attempt: int
    """Its number (1 for the first generation)."""


Ask = Callable[[list[Message], "Failure | None"], Awaitable[ModelResponse]]
"""`(messages, the previous invalid attempt or None) -> response`: one model call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Validated(Generic[T]):
    """The accepted reply and what it cost."""

    value: T
    """What `check` returned."""
    response: ModelResponse
    """The accepted response."""
    attempts: int
    """Generations tried (1 when the first was valid)."""


class RetriesExhausted(Exception):
    """Internal: every attempt was invalid, or the model repeated an invalid reply."""

    def __init__(self, error: str, response: ModelResponse, attempts: int, *, repeated: bool):
        super().__init__(error)
        self.error = error
        self.response = response
        self.attempts = attempts
        self.repeated = repeated


def correction_message(error: str) -> str:
    """The retry message: the error first, then what to do."""
    return f"Your last reply was invalid: {error}. Reply again with one valid JSON object."


async def generate_until_valid(
    ask: Ask,
    messages: Sequence[Message],
    check: Callable[[ModelResponse], T | Awaitable[T]],
    *,
    retries: int,
    correction: Callable[[str], str] = correction_message,
    on_invalid: Callable[[str, bool], None] | None = None,
) -> Validated[T]:
    """Call `ask` until `check` accepts a response, at most `retries + 1` times.

    Args:
        ask: Makes one model call; gets the previous invalid response on a retry.
        messages: The request's messages.
        check: Returns the validated value (or an awaitable of it), or raises
            `ModelOutputError` or `ValueError`.
        retries: How many more calls after an invalid one.
        correction: Turns an error into the message shown to the model.
        on_invalid: Called with each error and whether another attempt follows.

    Raises:
        RetriesExhausted: Every attempt was invalid, or a reply repeated an invalid one.
    """
    history = list(messages)
    seen: set[str] = set()
    previous: Failure | None = None
    for attempt in range(1, retries + 2):
        response = await ask(history, previous)
        try:
            value = check(response)
            if inspect.isawaitable(value):
                value = await value
            return Validated(value=value, response=response, attempts=attempt)
        except (ModelOutputError, ValueError) as exc:
            error = str(exc)
            repeated = response.text in seen
            will_retry = attempt <= retries and not repeated
            if on_invalid is not None:
                on_invalid(error, will_retry)
            if not will_retry:
                raise RetriesExhausted(error, response, attempt, repeated=repeated) from exc
            seen.add(response.text)
            previous = Failure(response=response, error=exc, attempt=attempt)
            history = [
                *history,
                Message(role="assistant", content=response.text),
                Message(role="user", content=correction(error)),
            ]
    raise AssertionError("unreachable")  # pragma: no cover

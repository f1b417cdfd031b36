"""Deterministic models for tests and docs: `ScriptedModel` and `FunctionModel`.

They implement the `Model` protocol without any network or weights, so the loop, tools and
structured outputs can be exercised exactly and quickly.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from agentlib.errors import ConfigurationError, ModelError
from agentlib.models.base import Message, ModelCapabilities, ModelResponse, OutputSchema

__all__ = ["FunctionModel", "ModelRequest", "ScriptedModel", "call", "final"]

Reply: TypeAlias = str | Mapping[str, Any] | BaseException
"""What a test model returns: raw text, a JSON-able dict (dumped to JSON), or an exception to
raise (simulating a backend failure)."""


def call(tool_name: str, thought: str = "", /, **arguments: Any) -> dict[str, Any]:
    """A step that calls `tool_name` with `arguments` (for `ScriptedModel` scripts)."""
    return {"thought": thought, "action": {"tool": tool_name, "arguments": arguments}}


def final(answer: Any, thought: str = "") -> dict[str, Any]:
    """A step that gives the final answer (for `ScriptedModel` scripts)."""
    return {"thought": thought, "action": {"tool": "final_answer", "answer": answer}}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """What a test model was asked: kept on `.requests` so tests can inspect prompts."""

    messages: tuple[Message, ...]
    """The messages sent."""
    output: OutputSchema | None
    """The schema the reply had to satisfy."""


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _response(reply: Reply, messages: Sequence[Message], name: str) -> ModelResponse:
    if isinstance(reply, BaseException):
        raise reply
    text = reply if isinstance(reply, str) else json.dumps(reply)
    prompt = sum(_estimate_tokens(message.content) for message in messages)
    return ModelResponse(
        text=text,
        path="scripted",
        input_tokens=prompt,
        output_tokens=_estimate_tokens(text),
        model_name=name,
        finish_reason="stop",
    )


class ScriptedModel:
    """Plays back a fixed list of replies, one per generation.

    Args:
        replies: Each reply is raw text, a dict (sent as JSON; see `call` and `final`), or an
            exception to raise.
        context_window: The context size to report.

    Raises:
        ModelError: (from `agenerate`) the script ran out of replies.
    """

    def __init__(self, replies: Iterable[Reply], *, context_window: int = 8192) -> None:
        self._replies = list(replies)
        self._position = 0
        self._capabilities = ModelCapabilities(context_window=context_window)
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""

    @property
    def name(self) -> str:
        """`scripted`."""
        return "scripted"

    @property
    def capabilities(self) -> ModelCapabilities:
        """No constraint support: outputs are validated afterwards."""
        return self._capabilities

    @property
    def remaining(self) -> int:
        """Replies not yet played."""
        return len(self._replies) - self._position

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """Return the next scripted reply."""
        self.requests.append(ModelRequest(messages=tuple(messages), output=output))
        if self._position >= len(self._replies):
            raise ModelError(
                f"ScriptedModel ran out of replies after {len(self._replies)}; "
                "add more replies to the script"
            )
        reply = self._replies[self._position]
        self._position += 1
        return _response(reply, messages, self.name)


ModelFunction: TypeAlias = Callable[
    [Sequence[Message], OutputSchema | None], Reply | Awaitable[Reply]
]
"""`FunctionModel`'s function: `(messages, output_schema) -> reply` (sync or async)."""


class FunctionModel:
    """Lets a Python function decide each reply from the messages (and the requested schema).

    Args:
        function: `(messages, output_schema) -> reply`, sync or async; a reply is raw text, a
            dict (sent as JSON), or an exception to raise.
        name: The model name to report.
        context_window: The context size to report.
    """

    def __init__(
        self,
        function: ModelFunction,
        *,
        name: str = "function",
        context_window: int = 8192,
    ) -> None:
        if not callable(function):
            raise ConfigurationError("FunctionModel needs a callable (messages, output) -> reply")
        self._function = function
        self._name = name
        self._capabilities = ModelCapabilities(context_window=context_window)
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        """No constraint support: outputs are validated afterwards."""
        return self._capabilities

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """Call the function and return its reply."""
        self.requests.append(ModelRequest(messages=tuple(messages), output=output))
        reply = self._function(messages, output)
        if inspect.isawaitable(reply):
            reply = await reply
        return _response(reply, messages, self.name)

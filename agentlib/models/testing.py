"""Deterministic models for tests and docs: `ScriptedModel`, `FunctionModel` and `TestModel`.

They implement the `Model` protocol without any network or weights, so the loop, tools and
structured outputs can be exercised exactly and quickly. `call()` and `final()` build steps
that the model writes in whatever shape the agent's step format asks for (its
`OutputSchema.actions`), so a script works with `parallel_calls > 1` and every step option.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from agentlib._schema_values import example_value
from agentlib.errors import ConfigurationError, ModelError
from agentlib.models.base import (
    FINAL_ANSWER,
    Message,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
    StepActions,
)

__all__ = [
    "FunctionModel",
    "ModelRequest",
    "ScriptedModel",
    "StepReply",
    "TestModel",
    "call",
    "final",
    "parallel",
]


class StepReply(dict[str, Any]):
    """A step for a test model to write, in the shape the request's step format asks for.

    Made by `call`, `final` and `parallel`. It is also a plain dict in the default step shape
    (what `call`/`final` always returned), used when a request carries no step format.
    """

    def __init__(self, thought: str, actions: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
        items = [
            {"tool": FINAL_ANSWER, "answer": arguments.get("answer")}
            if name == FINAL_ANSWER
            else {"tool": name, "arguments": dict(arguments)}
            for name, arguments in actions
        ]
        super().__init__(
            {"thought": thought, "action": items[0]}
            if len(items) == 1
            else {"thought": thought, "actions": items}
        )
        self.thought = thought
        """The step's thought."""
        self.actions = actions
        """`(branch name, arguments)` pairs; the final answer's arguments are `{"answer": ...}`."""

    def render(self, output: OutputSchema | None) -> str:
        """The step's text under `output`'s step format (the default shape without one)."""
        if output is None or output.actions is None:
            return json.dumps(self)
        return output.actions.assemble(self.thought, self.actions)


Reply: TypeAlias = str | Mapping[str, Any] | BaseException
"""What a test model returns: raw text, a JSON-able dict (dumped to JSON; a `StepReply` from
`call`/`final` is written in the request's step shape), or an exception to raise (simulating a
backend failure)."""


def call(tool_name: str, thought: str = "", /, **arguments: Any) -> StepReply:
    """A step that calls `tool_name` with `arguments` (for `ScriptedModel` scripts)."""
    return StepReply(thought, ((tool_name, arguments),))


def final(answer: Any, thought: str = "") -> StepReply:
    """A step that gives the final answer (for `ScriptedModel` scripts)."""
    return StepReply(thought, ((FINAL_ANSWER, {"answer": answer}),))


def parallel(*steps: StepReply, thought: str = "") -> StepReply:
    """One step holding the calls of several `call(...)` steps (for `parallel_calls > 1`)."""
    return StepReply(thought, tuple(action for step in steps for action in step.actions))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """What a test model was asked: kept on `.requests` so tests can inspect prompts."""

    messages: tuple[Message, ...]
    """The messages sent."""
    output: OutputSchema | None
    """The schema the reply had to satisfy."""


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _response(
    reply: Reply, messages: Sequence[Message], name: str, output: OutputSchema | None
) -> ModelResponse:
    if isinstance(reply, BaseException):
        raise reply
    if isinstance(reply, StepReply):
        text = reply.render(output)
    else:
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


class _DeterministicModel:
    """What the test models share: a name, no constraint support, and the requests kept."""

    def __init__(self, name: str, context_window: int) -> None:
        self._name = name
        self._capabilities = ModelCapabilities(context_window=context_window)
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""

    @property
    def name(self) -> str:
        """The model's name (`scripted`, `test`, or the one given)."""
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        """No constraint support: outputs are validated afterwards."""
        return self._capabilities

    def _record(self, messages: Sequence[Message], output: OutputSchema | None) -> None:
        self.requests.append(ModelRequest(messages=tuple(messages), output=output))


class ScriptedModel(_DeterministicModel):
    """Plays back a fixed list of replies, one per generation.

    Args:
        replies: Each reply is raw text, a dict (sent as JSON; see `call` and `final`), or an
            exception to raise.
        context_window: The context size to report.

    Raises:
        ModelError: (from `agenerate`) the script ran out of replies.
    """

    def __init__(self, replies: Iterable[Reply], *, context_window: int = 8192) -> None:
        super().__init__("scripted", context_window)
        self._replies = list(replies)
        self._position = 0

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
        self._record(messages, output)
        if self._position >= len(self._replies):
            raise ModelError(
                f"ScriptedModel ran out of replies after {len(self._replies)}; "
                "add more replies to the script"
            )
        reply = self._replies[self._position]
        self._position += 1
        return _response(reply, messages, self.name, output)


ModelFunction: TypeAlias = Callable[
    [Sequence[Message], OutputSchema | None], Reply | Awaitable[Reply]
]
"""`FunctionModel`'s function: `(messages, output_schema) -> reply` (sync or async)."""


class FunctionModel(_DeterministicModel):
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
        super().__init__(name, context_window)
        self._function = function

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """Call the function and return its reply."""
        self._record(messages, output)
        reply = self._function(messages, output)
        if inspect.isawaitable(reply):
            reply = await reply
        return _response(reply, messages, self.name, output)


class TestModel(_DeterministicModel):
    """A schema-driven model: calls every tool once, then answers, for any toolset and type.

    Arguments and the answer are generated from the JSON schemas the request carries (like
    pydantic-ai's `TestModel`), so a test needs no script: the run exercises every tool with
    valid arguments and ends with a value valid for the output type. With `parallel_calls > 1`
    the calls are grouped that many per step. A request that is not an agent step (`generate`)
    gets a value generated from its schema.

    Args:
        call_tools: The tools to call, in order; `None` (the default) calls every tool (a
            handoff branch only when named here: taking one ends the agent's part of the run).
        answer: The final answer to give; default, one generated from the output schema.
        text: The string used wherever a schema leaves strings free.
        context_window: The context size to report.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        call_tools: Sequence[str] | None = None,
        answer: Any = None,
        text: str = "a",
        context_window: int = 8192,
    ) -> None:
        super().__init__("test", context_window)
        self._call_tools = None if call_tools is None else tuple(call_tools)
        self._answer = answer
        self._text = text
        self._plan: list[StepReply] = []

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """The next step of the plan (a new plan after each final answer)."""
        self._record(messages, output)
        if output is None:
            return _response(self._text, messages, self.name, output)
        if output.actions is None:
            return _response(
                example_value(output.schema, text=self._text), messages, self.name, output
            )
        if not self._plan:
            self._plan = self._make_plan(output.actions)
        return _response(self._plan.pop(0), messages, self.name, output)

    def _make_plan(self, actions: StepActions) -> list[StepReply]:
        by_name = {branch.name: branch for branch in actions.branches}
        names = self._call_tools or tuple(
            b.name for b in actions.branches if not (b.is_final or b.is_handoff)
        )
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ModelError(
                f"TestModel: unknown tool(s) {', '.join(unknown)}; the step offers: "
                f"{', '.join(by_name)}"
            )
        calls = [(name, example_value(by_name[name].parameters, text=self._text)) for name in names]
        plan = [
            StepReply(f"I call {', '.join(name for name, _ in chunk)}.", tuple(chunk))
            for chunk in (
                calls[start : start + actions.parallel_calls]
                for start in range(0, len(calls), actions.parallel_calls)
            )
        ]
        final_branch = next(branch for branch in actions.branches if branch.is_final)
        if self._answer is None:
            arguments = example_value(final_branch.parameters, text=self._text)
        else:
            arguments = {"answer": self._answer}
        plan.append(StepReply("I can answer now.", ((final_branch.name, arguments),)))
        return plan

"""One schema-valid object from any model: `generate` and `generate_result` (and async twins).

The same three paths as the loop: a model that can enforce JSON schemas (`capabilities.
supports_json_schema`) gets the schema as a constraint; any other gets it in the prompt. Every
output is validated with pydantic (or jsonschema, for a raw schema) whatever the path, and an
invalid one is retried a bounded number of times with the exact validation error shown.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from agentlib._output import (
    WRAPPED_KEY,
    OutputSpec,
    OutputValidationError,
    output_spec,
    request_schema,
)
from agentlib._prompts import template
from agentlib._retry import Failure, RetriesExhausted, generate_until_valid
from agentlib.errors import ConfigurationError, ModelOutputError, ToolError
from agentlib.models.base import (
    Message,
    Model,
    ModelResponse,
    OutputSchema,
    Sampling,
    SamplingModel,
)
from agentlib.models.profiles import DEFAULT_MAX_STRING_LENGTH, DEFAULT_RETRY_TEMPERATURE
from agentlib.step_format import extract_json

__all__ = ["Generation", "agenerate", "agenerate_result", "generate", "generate_result"]

T = TypeVar("T")

Check = Callable[[Any], "Awaitable[object] | object"]
"""A hook on each schema-valid value: raise `ToolError` or `ValueError` to refuse it."""

_WRAPPED = WRAPPED_KEY


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation(Generic[T]):
    """A validated structured output and how it was obtained."""

    output: T
    """The validated value."""
    path: str
    """The generation path that produced it (`constrained`, `strict_schema`, `prompted`, ...)."""
    raw_output: str
    """The model's raw text for the accepted attempt."""
    attempts: int
    """Generations tried (1 when the first was valid)."""
    input_tokens: int = 0
    """Prompt tokens over all attempts."""
    output_tokens: int = 0
    """Generated tokens over all attempts."""


def _schema_name(output_type: Any) -> str:
    raw = getattr(output_type, "__name__", None) or "output"
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(raw))[:48]
    return name or "output"


def _messages(
    prompt: str | Sequence[Message], schema: OutputSchema, instructions: str | None
) -> list[Message]:
    system = template("structured").substitute(
        instructions=instructions or "Extract or produce the requested data.",
        schema=json.dumps(schema.schema, separators=(",", ":")),
    )
    if isinstance(prompt, str):
        return [Message(role="system", content=system), Message(role="user", content=prompt)]
    return [Message(role="system", content=system), *prompt]


def _validated(response: ModelResponse, spec: OutputSpec, max_tokens: int | None) -> Any:
    """The reply's value, validated; a reply cut off at the token limit says so."""
    try:
        data = extract_json(response.text)
        if not spec.is_object:
            if not isinstance(data, dict) or _WRAPPED not in data:
                raise OutputValidationError(f"expected an object with the key '{_WRAPPED}'")
            data = data[_WRAPPED]
        return spec.validate(data)
    except ValueError as exc:  # OutputValidationError included
        if response.finish_reason == "length":
            raise OutputValidationError(_cut_off(str(exc), max_tokens)) from exc
        raise


def _cut_off(error: str, max_tokens: int | None) -> str:
    limit = f"max_tokens={max_tokens}" if max_tokens else "the server's default max_tokens"
    return (
        f"the reply was cut off at the token limit ({limit}) before it was complete ({error}); "
        "raise max_tokens=, or ask for shorter output (fewer items, shorter strings)"
    )


@overload
async def agenerate_result(
    model: Model,
    output_type: type[T],
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    check: Check | None = None,
) -> Generation[T]: ...


@overload
async def agenerate_result(
    model: Model,
    output_type: Any,
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    check: Check | None = None,
) -> Generation[Any]: ...


async def agenerate_result(
    model: Model,
    output_type: Any,
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    check: Check | None = None,
) -> Generation[Any]:
    """Generate one value of `output_type` and report how it was obtained.

    Args:
        model: Any `Model`.
        output_type: A pydantic model, dataclass, TypedDict, Literal, enum, builtin type, or a raw
            JSON schema given as a dict (the value is then plain JSON data).
        prompt: The user's text, or a list of messages.
        instructions: The system instructions put before the schema.
        retries: How many more generations to try after an invalid one.
        max_tokens: The generation limit per attempt.
        max_string_length: The bound given to strings the schema leaves unbounded.
        check: Runs on each schema-valid value (sync or async); a `ToolError` or `ValueError`
            it raises makes that attempt invalid, and its message is shown to the model on the
            retry (a SQL validator refusing a query, say). Its return value is ignored.

    Raises:
        ConfigurationError: The output type has no JSON schema, or `retries` is negative.
        ModelOutputError: Every attempt was invalid; `raw_output` keeps the last text.
        ToolError: `check` refused the last attempt (its own error, re-raised).
        ModelError: The backend failed.
    """
    if retries < 0:
        raise ConfigurationError("retries must be 0 or more")
    spec = output_spec(output_type)
    schema = request_schema(spec, _schema_name(output_type), max_string_length)
    messages = _messages(prompt, schema, instructions)
    tokens = [0, 0]

    async def ask(history: list[Message], failure: Failure | None) -> ModelResponse:
        if failure is not None and model.capabilities.supports_sampling:
            # A retry is sampled (seeded) so that it need not repeat a greedy reply.
            sampling = Sampling(temperature=DEFAULT_RETRY_TEMPERATURE, seed=failure.attempt)
            response = await cast(SamplingModel, model).agenerate(
                history, output=schema, max_tokens=max_tokens, sampling=sampling
            )
        else:
            response = await model.agenerate(history, output=schema, max_tokens=max_tokens)
        tokens[0] += response.input_tokens
        tokens[1] += response.output_tokens
        return response

    async def accept(response: ModelResponse) -> Any:
        value = _validated(response, spec, max_tokens)
        if check is not None:
            try:
                checked = check(value)
                if inspect.isawaitable(checked):
                    await checked
            except ToolError as exc:
                raise _Refused(exc) from exc
        return value

    try:
        validated = await generate_until_valid(
            ask, messages, accept, retries=retries, correction=_correction
        )
    except RetriesExhausted as exc:
        if isinstance(exc.__cause__, _Refused):
            raise exc.__cause__.error from exc
        why = " (the model repeated an invalid reply word for word)" if exc.repeated else ""
        raise ModelOutputError(
            f"the model's output was still invalid after {exc.attempts} attempt(s){why}: "
            f"{exc.error}",
            raw_output=exc.response.text,
            attempts=exc.attempts,
        ) from exc
    return Generation(
        output=validated.value,
        path=validated.response.path,
        raw_output=validated.response.text,
        attempts=validated.attempts,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


class _Refused(ValueError):
    """A `check` refused a schema-valid value: an invalid attempt that keeps its `ToolError`."""

    def __init__(self, error: ToolError) -> None:
        super().__init__(str(error))
        self.error = error


def _correction(error: str) -> str:
    return f"That reply was invalid: {error}. Reply again with only the corrected JSON object."


async def agenerate(
    model: Model,
    output_type: type[T],
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
) -> T:
    """Generate one validated value of `output_type` (see `agenerate_result` for the options)."""
    result = await agenerate_result(
        model,
        output_type,
        prompt,
        instructions=instructions,
        retries=retries,
        max_tokens=max_tokens,
        max_string_length=max_string_length,
    )
    return result.output


def generate(
    model: Model,
    output_type: type[T],
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
) -> T:
    """Synchronous `agenerate`: one validated value of `output_type`."""
    return asyncio.run(
        agenerate(
            model,
            output_type,
            prompt,
            instructions=instructions,
            retries=retries,
            max_tokens=max_tokens,
            max_string_length=max_string_length,
        )
    )


def generate_result(
    model: Model,
    output_type: Any,
    prompt: str | Sequence[Message],
    *,
    instructions: str | None = None,
    retries: int = 2,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    check: Check | None = None,
) -> Generation[Any]:
    """Synchronous `agenerate_result`."""
    return asyncio.run(
        agenerate_result(
            model,
            output_type,
            prompt,
            instructions=instructions,
            retries=retries,
            max_tokens=max_tokens,
            max_string_length=max_string_length,
            check=check,
        )
    )

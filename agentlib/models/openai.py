"""`OpenAIModel`: any OpenAI-compatible chat-completions server, through the `openai` SDK.

OpenAI, vLLM, TGI, Ollama, llama.cpp's server (and llama-cpp-python's), LM Studio. How the
reply is kept to the requested schema is the `mode`:

- `json_schema`: `response_format` `json_schema` with `strict: true`; the schema is first made
  strict-compatible (`agentlib._strict`). Path `strict_schema`.
- `json_object`: the same strict-compatible schema in the envelope llama-cpp-python's server
  (and llama.cpp's, Together, Anyscale) enforce with a grammar:
  `response_format` `{"type": "json_object", "schema": ...}`. Path `strict_schema`. (The
  strict form matters there too: llama-cpp-python 0.3 turns `maxLength` into nested grammar
  rules, and at `maxLength: 2000` the grammar fails to parse and the server process dies;
  1000 worked.)
- `tools`: native tool calls with `strict: true`. For the agent's step (an `OutputSchema` that
  carries its branches as data, `actions`) each branch is one function tool and the returned
  calls are turned back into the step's text by the step format's own `assemble`; any other
  schema becomes one forced function. Path `native_tools`.
- `prompted`: nothing is sent but the messages (which already describe the schema); the caller
  validates. Path `prompted`.
- `auto` (the default): `json_schema`; if the server rejects that `response_format`, the model
  switches to `json_object`, then to `prompted`, logging a warning each time, and remembers it.

A server that silently ignores the constraint does not slip through. Every reply produced
under a constraint is checked against the schema that was sent; one that does not fit (and was
not cut short by `max_tokens`) is returned as-is for the caller's validation and retry, but
reported with `path="prompted"` (nothing kept it to the schema) and
`finish_reason="schema_ignored"`, and logged as a warning naming the server.

Errors from the SDK are translated at this boundary (`agentlib.models._openai_errors`) into
`ModelError` with `status_code` and `retryable`; the rest of agentlib never sees an `openai`
exception. What each mode puts in the request, and how tools mode's calls become the step's
text again, is `agentlib.models._openai_modes`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Literal, TypeAlias

import jsonschema
import openai

from agentlib import _json
from agentlib._formats import format_checker
from agentlib._strict import restore_optional
from agentlib.errors import ConfigurationError, ModelError
from agentlib.models._openai_errors import (
    malformed,
    mentions_invalid_schema,
    mentions_response_format,
    one_line,
    translate_error,
)
from agentlib.models._openai_modes import Prepared, prepare, step_from_calls
from agentlib.models.base import (
    GenerationPath,
    Message,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
    Sampling,
    TextCallback,
)

__all__ = ["OpenAIMode", "OpenAIModel"]

logger = logging.getLogger(__name__)

OpenAIMode: TypeAlias = Literal["auto", "json_schema", "json_object", "tools", "prompted"]
"""How `OpenAIModel` asks the server to keep to a schema (see the module docstring)."""

_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "tools", "prompted")
_PATHS: dict[str, GenerationPath] = {
    "json_schema": "strict_schema",
    "json_object": "strict_schema",
    "tools": "native_tools",
    "prompted": "prompted",
}
_FALLBACK = {"json_schema": "json_object", "json_object": "prompted"}
_PLACEHOLDER_KEY = "not-needed"
"""Sent to servers given by `base_url` when no key exists: local servers ignore it, and the SDK
refuses to start without one."""


class OpenAIModel:
    """A model behind any OpenAI-compatible chat-completions API.

    Args:
        model: The model name the server knows (`gpt-4o-mini`, `qwen2.5:7b`, ...).
        base_url: The API root, e.g. `http://127.0.0.1:8000/v1`; defaults to the
            `OPENAI_BASE_URL` environment variable, then to OpenAI.
        api_key: The API key; defaults to `OPENAI_API_KEY`. Not needed when `base_url` is set
            (a placeholder is sent).
        client: An `openai.AsyncOpenAI` you built (proxies, headers, Azure, ...): wrapped as
            is; do not combine with `base_url` or `api_key`.
        mode: How replies are kept to the schema: `auto`, `json_schema`, `json_object`,
            `tools` or `prompted` (see the module docstring).
        timeout: Seconds to wait for one request; `None` keeps the SDK's default.
        max_retries: How often the SDK retries connection errors, 429 and 5xx; `None` keeps the
            SDK's default (2).
        context_window: The model's context size in tokens, reported to the loop.
        temperature: The sampling temperature; `None` keeps the server's default.
        strict_keywords: JSON-schema value keywords (`pattern`, `minimum`, `maxLength`, ...)
            the server enforces, kept in the schema sent. By default none: each is moved into
            its property's description and checked after generation, which every server
            accepts. `agentlib._strict.OPENAI_STRICT_KEYWORDS` is OpenAI's documented list.

    Raises:
        ConfigurationError: No API key for OpenAI itself, an unknown mode, or `client`
            combined with `base_url`/`api_key`.
    """

    __module__ = "agentlib"  # the public name: agentlib.OpenAIModel

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: openai.AsyncOpenAI | None = None,
        mode: OpenAIMode = "auto",
        timeout: float | None = None,
        max_retries: int | None = None,
        context_window: int = 8192,
        temperature: float | None = None,
        strict_keywords: frozenset[str] | set[str] | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ConfigurationError(f"unknown mode {mode!r}; use one of: {', '.join(_MODES)}")
        if not model:
            raise ConfigurationError("OpenAIModel needs a model name, e.g. 'gpt-4o-mini'")
        self.model = model
        """The model name sent with every request."""
        self.mode: OpenAIMode = mode
        """The mode asked for at construction."""
        self.temperature = temperature
        """The sampling temperature, or `None` for the server's default."""
        self._client = _build_client(client, base_url, api_key, timeout, max_retries)
        self._timeout = timeout
        self._active_mode: str = "json_schema" if mode == "auto" else mode
        self._strict_keywords = frozenset(strict_keywords or ())
        self._prepared: dict[tuple[str, str], Prepared] = {}
        self._validators: dict[str, Any] = {}
        self._capabilities = ModelCapabilities(
            supports_json_schema=mode != "prompted",
            supports_native_tools=mode == "tools",
            context_window=context_window,
            supports_sampling=True,
        )

    @property
    def name(self) -> str:
        """`openai:<model>`."""
        return f"openai:{self.model}"

    @property
    def capabilities(self) -> ModelCapabilities:
        """JSON-schema support unless `mode="prompted"`; native tools in `tools` mode."""
        return self._capabilities

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return str(self._client.base_url).rstrip("/")

    @property
    def active_mode(self) -> str:
        """The mode in use now: differs from `mode` after `auto` fell back."""
        return self._active_mode

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """Generate one reply, kept to `output` by the active mode.

        `sampling` sends its `temperature` (instead of the constructor's) and `seed`.

        Raises:
            ModelError: The server failed, refused, or answered with a malformed body; the
                message says which and what to do.
            ConfigurationError: `output` uses something strict mode cannot express.
        """
        prepared, completion = await self._create(
            messages, output, max_tokens, stream=False, sampling=sampling
        )
        return self._response(completion, output, prepared)

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        """Yield the reply's text as it is generated, with the same request as `agenerate`.

        In `tools` mode the step is rebuilt from the tool call once the call is complete, so it
        arrives as one piece. Nulls added for strict mode are not removed from streamed text.

        Raises:
            ModelError: As `agenerate`.
        """
        prepared, stream = await self._create(messages, output, max_tokens, stream=True)
        gathered = _Gathered()
        try:
            async for chunk in stream:
                texts = gathered.add(chunk)
                if gathered.refusal:
                    raise ModelError(f"the model refused: {one_line(''.join(gathered.refusal))}")
                for text in texts:
                    yield text
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        except ValueError as exc:
            raise malformed(self.base_url, exc) from exc
        if prepared.actions is not None and gathered.calls:
            yield step_from_calls("", gathered.tool_calls(), prepared.actions)

    async def agenerate_streaming(
        self,
        messages: Sequence[Message],
        *,
        on_text: TextCallback,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """`agenerate` with SDK streaming, calling `on_text` with each piece of content.

        The streamed chunks are gathered into one completion and checked exactly as
        `agenerate` checks a whole one, so the returned response is the same.

        Raises:
            ModelError: As `agenerate`.
        """
        prepared, stream = await self._create(
            messages, output, max_tokens, stream=True, stream_usage=True, sampling=sampling
        )
        gathered = _Gathered()
        try:
            async for chunk in stream:
                for text in gathered.add(chunk):
                    on_text(text)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        except ValueError as exc:
            raise malformed(self.base_url, exc) from exc
        return self._response(gathered.completion(self.model), output, prepared)

    # -- the request --------------------------------------------------------------------------

    async def _create(
        self,
        messages: Sequence[Message],
        output: OutputSchema | None,
        max_tokens: int | None,
        *,
        stream: bool,
        stream_usage: bool = False,
        sampling: Sampling | None = None,
    ) -> tuple[Prepared, Any]:
        """Send the request; in `auto` mode, step down and resend while the format is rejected.

        Returns the request's `Prepared` and the SDK's completion (a stream when `stream`).
        """
        while True:
            prepared = self._prepare(output)
            request = self._request(messages, prepared, max_tokens, stream=stream)
            if sampling is not None:
                request["temperature"] = sampling.temperature
                if sampling.seed is not None:
                    request["seed"] = sampling.seed
            if stream_usage and _is_openai(self.base_url):  # other servers may reject it
                request["stream_options"] = {"include_usage": True}
            try:
                return prepared, await self._client.chat.completions.create(**request)
            except openai.OpenAIError as exc:
                error = self._translate(exc)
                if not self._fall_back(prepared, error):
                    raise error from exc
            except ValueError as exc:  # the SDK lets a body that is not JSON through as is
                raise malformed(self.base_url, exc) from exc

    def _prepare(self, output: OutputSchema | None) -> Prepared:
        mode = self._active_mode if output is not None else "prompted"
        key = (output.key if output is not None else "", mode)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = prepare(output, mode, self._strict_keywords)
            self._prepared[key] = prepared
        return prepared

    def _request(
        self,
        messages: Sequence[Message],
        prepared: Prepared,
        max_tokens: int | None,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": item.role, "content": item.content} for item in messages],
            **prepared.options,
        }
        if max_tokens is not None:
            # OpenAI's newer models accept only max_completion_tokens; most compatible servers
            # (llama-cpp-python, older vLLM and TGI) only max_tokens.
            limit_key = "max_completion_tokens" if _is_openai(self.base_url) else "max_tokens"
            request[limit_key] = max_tokens
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if stream:
            request["stream"] = True
        return request

    def _fall_back(self, prepared: Prepared, error: ModelError) -> bool:
        """In `auto` mode, step down when the server rejects the `response_format` itself."""
        message = str(error)
        rejected = (
            error.status_code in (400, 422, 500)
            and mentions_response_format(message)
            # A server that understood the format but refused this schema: stepping down
            # would only hide the problem.
            and not mentions_invalid_schema(message)
        )
        next_mode = _FALLBACK.get(prepared.mode)
        if self.mode != "auto" or not rejected or next_mode is None:
            return False
        logger.warning(
            "%s rejected response_format %s; switching %s to mode %r",
            self.base_url,
            prepared.mode,
            self.name,
            next_mode,
        )
        self._active_mode = next_mode
        return True

    # -- the reply ----------------------------------------------------------------------------

    def _response(
        self, completion: Any, output: OutputSchema | None, prepared: Prepared
    ) -> ModelResponse:
        choices = getattr(completion, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise ModelError(
                f"malformed response from {self.base_url}: no choices with a message; "
                "check that the server implements /chat/completions",
                retryable=True,
            )
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise ModelError(f"the model refused: {one_line(message.refusal)}")
        finish_reason = choice.finish_reason
        if finish_reason == "content_filter":
            raise ModelError(
                f"the reply was withheld by {self.base_url}'s content filter; rephrase the task"
            )
        text = message.content or ""
        tool_calls = getattr(message, "tool_calls", None) or []
        if prepared.actions is not None and tool_calls:
            calls = [(call.function.name, call.function.arguments) for call in tool_calls]
            text = step_from_calls(text, calls, prepared.actions)
        elif prepared.mode == "tools" and tool_calls:
            text = tool_calls[0].function.arguments or ""
        path = _PATHS[prepared.mode]
        if prepared.checked_schema is not None and output is not None:
            text, kept = self._check(text, output, prepared.mode, prepared.checked_schema)
            if not kept and finish_reason != "length":
                logger.warning(
                    "%s returned a reply that does not fit the %s schema %r although it was "
                    "asked to enforce it (mode %r); the reply is validated and retried as if "
                    "prompted. If this repeats, use mode='json_object' or mode='prompted'.",
                    self.base_url,
                    "tool" if prepared.mode == "tools" else "response_format",
                    output.name,
                    prepared.mode,
                )
                path, finish_reason = "prompted", "schema_ignored"
        usage = getattr(completion, "usage", None)
        return ModelResponse(
            text=text,
            path=path,
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0,
            model_name=getattr(completion, "model", None) or self.model,
            finish_reason=finish_reason,
        )

    def _check(
        self, text: str, output: OutputSchema, mode: str, sent: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Whether `text` fits the schema the server was asked to enforce; nulls restored."""
        try:
            value = _json.loads(text)
        except json.JSONDecodeError:  # NaN, Infinity and 1e999 included: they are not JSON
            return text, False
        # The sent schema (what the server promised) or the caller's own (a server may enforce
        # `required` without strict mode's forced nulls): either means the constraint held.
        if not self._fits(value, sent, f"{mode}:{output.key}") and not self._fits(
            value, output.schema, output.key
        ):
            return text, False
        return json.dumps(restore_optional(value, output.schema), ensure_ascii=False), True

    def _fits(self, value: Any, schema: Mapping[str, Any], key: str) -> bool:
        validator = self._validators.get(key)
        if validator is None:
            # `format` is checked where the schema still has it: in the caller's schema, and
            # in the sent one only when kept there (strict_keywords=), i.e. promised.
            validator = jsonschema.Draft202012Validator(schema, format_checker=format_checker())
            self._validators[key] = validator
        return bool(validator.is_valid(value))

    def _translate(self, exc: openai.OpenAIError) -> ModelError:
        return translate_error(exc, model=self.model, base_url=self.base_url, timeout=self._timeout)


class _Gathered:
    """Streamed chunks gathered into the shape of one completion (what `_response` reads)."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, list[str]] = {}
        self.refusal: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.model: str | None = None

    def add(self, chunk: Any) -> list[str]:
        """Take one chunk in; return its new content text."""
        self.model = getattr(chunk, "model", None) or self.model
        self.usage = getattr(chunk, "usage", None) or self.usage
        texts: list[str] = []
        for choice in getattr(chunk, "choices", None) or []:
            self.finish_reason = choice.finish_reason or self.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if getattr(delta, "refusal", None):
                self.refusal.append(delta.refusal)
            for call in getattr(delta, "tool_calls", None) or []:
                parts = self.calls.setdefault(call.index, ["", ""])
                if call.function is not None:
                    parts[0] = call.function.name or parts[0]
                    parts[1] += call.function.arguments or ""
            if delta.content:
                self.content.append(delta.content)
                texts.append(delta.content)
        return texts

    def tool_calls(self) -> list[tuple[str, str]]:
        """The gathered tool calls as (name, arguments text), in the server's order."""
        return [(name, arguments) for _, (name, arguments) in sorted(self.calls.items())]

    def completion(self, model: str) -> Any:
        """The gathered completion, with the attributes a non-streamed one has."""
        tool_calls = [
            SimpleNamespace(function=SimpleNamespace(name=name, arguments=arguments))
            for name, arguments in self.tool_calls()
        ]
        message = SimpleNamespace(
            content="".join(self.content),
            refusal="".join(self.refusal) or None,
            tool_calls=tool_calls,
        )
        return SimpleNamespace(
            choices=[SimpleNamespace(message=message, finish_reason=self.finish_reason)],
            usage=self.usage,
            model=self.model or model,
        )


def _build_client(
    client: openai.AsyncOpenAI | None,
    base_url: str | None,
    api_key: str | None,
    timeout: float | None,
    max_retries: int | None,
) -> openai.AsyncOpenAI:
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    if client is not None:
        if base_url is not None or api_key is not None:
            raise ConfigurationError(
                "pass either client= or base_url=/api_key=, not both: configure the client you "
                "built instead"
            )
        return client.with_options(**options) if options else client
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if api_key is None:
        if base_url is None:
            raise ConfigurationError(
                "no OpenAI API key: set the OPENAI_API_KEY environment variable or pass "
                "api_key=...; for a local server pass base_url= (or set OPENAI_BASE_URL)"
            )
        api_key = _PLACEHOLDER_KEY
    return openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, http_client=_http_client(), **options
    )


def _http_client() -> Any:
    """The SDK's default async HTTP client, without keep-alive connections.

    `agent.run()` and `generate()` each run their own event loop (`asyncio.run`); a pooled
    connection opened in one loop cannot be used or closed from the next, and leaks. Closing
    each connection after its response costs one TCP (and TLS) handshake per request, small
    next to a generation. Pass your own `client=` to pool connections within one loop.
    """
    # The SDK is built on httpx (or its fork httpx2, depending on the SDK version): take
    # `Limits` from whichever package the SDK's client class comes from.
    for klass in openai.DefaultAsyncHttpxClient.__mro__:
        package = klass.__module__.split(".")[0]
        if package.startswith("httpx"):
            limits = importlib.import_module(package).Limits(max_keepalive_connections=0)
            return openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.DefaultAsyncHttpxClient()


def _is_openai(base_url: str) -> bool:
    return "api.openai.com" in base_url

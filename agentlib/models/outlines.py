"""`OutlinesModel`: any Outlines model, with token-level constrained decoding of JSON schemas.

The step schema (or any `OutputSchema`) is compiled once per `OutputSchema.key` into a guide
for the chosen constraint backend and kept in a small LRU cache, so every later step with the
same toolset pays a dictionary look-up and a copy of the compiled matcher (about a
microsecond), not a compilation. Whitespace between JSON tokens is fixed (`", "` and `": "`,
nothing else): with free whitespace a small model can emit newlines until it runs out of
tokens.

Backends, chosen by measurement on SmolLM2-135M with Outlines 1.3.3 (see
`benchmarks/constrained_decoding.md`):

- `llguidance` (default): compiles a step schema in about a millisecond and computes each
  token's mask lazily; it rejects unsupported keywords up front by name.
- `outlines_core`: builds a full regex index per schema (slow for large unions) and silently
  ignores keywords it does not support.

The compilers, guides and logits processors of both backends live in
`agentlib.models._guides`. Schemas that come from users go through `compile_schema_guarded`
first: it compiles them in a separate process under a time and memory bound.

Generation is blocking, so it runs in a worker thread, one at a time per model: llama.cpp
contexts are not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentlib._optional import optional_imports
from agentlib._output import output_spec, request_schema
from agentlib.errors import ConfigurationError, ModelError
from agentlib.models._guides import Guide, Metered, make_compiler
from agentlib.models._guides import llguidance_grammar as llguidance_grammar  # importable here
from agentlib.models._schema_check import compile_schema_guarded
from agentlib.models.base import (
    Message,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
    Sampling,
    TextCallback,
)
from agentlib.models.profiles import DEFAULT_MAX_STRING_LENGTH, ModelProfile, profile_for

__all__ = ["ConstraintBackend", "GuideCacheInfo", "OutlinesModel", "compile_schema_guarded"]

logger = logging.getLogger(__name__)

ConstraintBackend = Literal["llguidance", "outlines_core"]
"""The token-level constraint engines `OutlinesModel` can use for JSON schemas."""

_GUIDE_CACHE_SIZE = 64
# Generation-length keyword per Outlines model class; llama.cpp and MLX use `max_tokens`.
_MAX_TOKENS_KEYWORD = {"Transformers": "max_new_tokens", "TransformersMultiModal": "max_new_tokens"}


# A request's `Sampling` as generation keywords, per Outlines model class that takes them:
# llama.cpp's create_chat_completion has `temperature` and `seed`; transformers' generate has
# no seed (a global torch seed would touch other users' state), and samples only when told.
def _llamacpp_sampling(sampling: Sampling) -> dict[str, Any]:
    seed = {} if sampling.seed is None else {"seed": sampling.seed}
    return {"temperature": sampling.temperature, **seed}


def _transformers_sampling(sampling: Sampling) -> dict[str, Any]:
    return {"temperature": sampling.temperature or None, "do_sample": sampling.temperature > 0}


_SAMPLING_KEYWORDS: dict[str, Callable[[Sampling], dict[str, Any]]] = {
    "LlamaCpp": _llamacpp_sampling,
    "Transformers": _transformers_sampling,
}


# One lock per underlying model, shared by every OutlinesModel wrapping it: llama.cpp
# contexts are not thread-safe, and two wrappers of one Llama must not decode at once.
_generation_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_generation_locks_guard = threading.Lock()


def _generation_lock(model: Any) -> threading.Lock:
    with _generation_locks_guard:
        return _generation_locks.setdefault(model, threading.Lock())


@dataclass(frozen=True, slots=True, kw_only=True)
class GuideCacheInfo:
    """Counters of the compiled-guide cache (like `functools.lru_cache`'s `cache_info`)."""

    hits: int
    """Requests served by an already compiled guide."""
    compilations: int
    """Schemas compiled (cache misses)."""
    size: int
    """Guides currently cached."""
    compile_seconds: float
    """Total time spent compiling."""


class OutlinesModel:
    """Any Outlines model, with every structured reply constrained token by token.

    ```python
    import outlines
    from llama_cpp import Llama
    from agentlib import OutlinesModel

    model = OutlinesModel(outlines.from_llamacpp(Llama(model_path="qwen2.5-7b.gguf")))
    ```

    Messages are rendered with the model's own chat template. Structured requests report
    `path="constrained"`; free text reports `path="prompted"`.

    Args:
        outlines_model: A steerable Outlines model (`outlines.from_llamacpp`,
            `outlines.from_transformers`, `outlines.from_mlxlm`).
        backend: The constraint engine, `llguidance` (default, faster) or `outlines_core`.
        context_window: The model's context size in tokens; read from llama.cpp when omitted.
        name: The model name to report; derived from the model when omitted.
        inference_kwargs: Extra keyword arguments for every generation (`temperature`, ...).
        default_max_tokens: The generation limit when a request gives none.

    Raises:
        ConfigurationError: An unknown backend, or a model Outlines cannot steer.
    """

    __module__ = "agentlib"  # the public name: agentlib.OutlinesModel

    def __init__(
        self,
        outlines_model: Any,
        *,
        backend: ConstraintBackend = "llguidance",
        context_window: int | None = None,
        name: str | None = None,
        inference_kwargs: Mapping[str, Any] | None = None,
        default_max_tokens: int = 512,
    ) -> None:
        if not hasattr(outlines_model, "tensor_library_name"):
            raise ConfigurationError(
                f"OutlinesModel needs a steerable Outlines model (from_llamacpp, "
                f"from_transformers, from_mlxlm), got {type(outlines_model).__name__}; for an "
                "OpenAI-compatible server use OpenAIModel"
            )
        self.outlines_model = outlines_model
        """The wrapped Outlines model."""
        self.backend: ConstraintBackend = backend
        """The constraint engine in use."""
        self._compiler = make_compiler(backend, outlines_model)
        self._name = name or _model_name(outlines_model)
        self._capabilities = ModelCapabilities(
            supports_json_schema=True,
            supports_regex=True,
            supports_cfg=backend == "llguidance",
            context_window=context_window or _context_window(outlines_model),
            supports_sampling=type(outlines_model).__name__ in _SAMPLING_KEYWORDS,
        )
        self._inference_kwargs = dict(inference_kwargs or {})
        self._default_max_tokens = default_max_tokens
        self._max_tokens_keyword = _MAX_TOKENS_KEYWORD.get(
            type(outlines_model).__name__, "max_tokens"
        )
        # llama.cpp models are driven directly to keep the prompt's KV cache between calls.
        self._llama: Any = (
            outlines_model.model if type(outlines_model).__name__ == "LlamaCpp" else None
        )
        self._guides: OrderedDict[str, Guide] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._generation_lock = _generation_lock(
            self._llama if self._llama is not None else outlines_model
        )
        self._hits = 0
        self._compilations = 0
        self._compile_seconds = 0.0

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        """Constrained JSON schema and regex (CFG too with llguidance)."""
        return self._capabilities

    @property
    def profile(self) -> ModelProfile:
        """The step options and generation defaults matched from the model's name."""
        return profile_for(self._name)

    def count_tokens(self, text: str) -> int:
        """The number of tokens `text` takes, counted with the model's own tokenizer."""
        if self._llama is not None:
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        tokenizer = getattr(self.outlines_model, "tokenizer", None)
        encode = getattr(tokenizer, "encode", None)
        if callable(encode):
            ids = encode(text)
            first = ids[0] if isinstance(ids, tuple) else ids
            return int(getattr(first, "shape", [len(first)])[-1])
        return len(text) // 4  # no tokenizer exposed: a characters-based estimate

    def guide_cache_info(self) -> GuideCacheInfo:
        """How often a compiled guide was reused, and how many schemas were compiled."""
        with self._cache_lock:
            return GuideCacheInfo(
                hits=self._hits,
                compilations=self._compilations,
                size=len(self._guides),
                compile_seconds=self._compile_seconds,
            )

    def compile(self, output: OutputSchema) -> None:
        """Compile `output`'s guide now (it is cached), instead of on its first generation.

        Raises:
            ConfigurationError: The backend cannot enforce the schema; the message names the
                keywords and the backend.
        """
        self._guide(output)

    @staticmethod
    def check_schema(
        schema: Mapping[str, Any],
        *,
        backend: ConstraintBackend = "llguidance",
        timeout: float = 5.0,
        memory_mb: int = 1024,
        max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    ) -> None:
        """Check that `generate(model, schema, ...)` can use a user-supplied raw schema.

        The same code path as generation: the schema is checked against its meta-schema and
        prepared as `generate` prepares it (references resolved, objects closed, strings
        bounded, a non-object root wrapped), then compiled with the same backend options,
        in a separate process under a time and memory bound (`compile_schema_guarded`). A
        schema that passes compiles for generation; one that fails raises what generation
        would.

        Raises:
            ConfigurationError: The schema is invalid, unsupported, too slow or too large to
                compile.
        """
        prepared = request_schema(output_spec(dict(schema)), "output", max_string_length)
        compile_schema_guarded(
            prepared.schema, backend=backend, timeout=timeout, memory_mb=memory_mb
        )

    def _guide(self, output: OutputSchema) -> Guide:
        with self._cache_lock:
            guide = self._guides.get(output.key)
            if guide is not None:
                self._guides.move_to_end(output.key)
                self._hits += 1
                return guide
        started = time.perf_counter()
        guide = self._compiler.compile(output)
        elapsed = time.perf_counter() - started
        logger.debug(
            "compiled schema %r with %s in %.1f ms", output.name, self.backend, elapsed * 1e3
        )
        with self._cache_lock:
            self._compilations += 1
            self._compile_seconds += elapsed
            self._guides[output.key] = guide
            while len(self._guides) > _GUIDE_CACHE_SIZE:
                self._guides.popitem(last=False)
        return guide

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """Generate one reply; with `output`, JSON that the constraint keeps to its schema.

        Args:
            messages: The conversation.
            output: The schema to constrain the reply to (its `enforced` form).
            max_tokens: The generation limit.
            sampling: Temperature and seed for this request instead of `inference_kwargs`'
                (llama.cpp: both; transformers: the temperature, sampling when above 0).

        Raises:
            ConfigurationError: The backend cannot enforce the schema.
            ModelError: The underlying model failed (for example, the prompt is too long).
        """
        guide = self._guide(output) if output is not None else None
        return await asyncio.to_thread(
            self._generate, messages, guide, max_tokens, None, self._sampled(sampling)
        )

    async def agenerate_streaming(
        self,
        messages: Sequence[Message],
        *,
        on_text: TextCallback,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """`agenerate`, calling `on_text` (from a worker thread) with each piece of text.

        llama.cpp streams token by token; other Outlines backends report the whole text at once.
        """
        guide = self._guide(output) if output is not None else None
        return await asyncio.to_thread(
            self._generate, messages, guide, max_tokens, on_text, self._sampled(sampling)
        )

    def _sampled(self, sampling: Sampling | None) -> dict[str, Any]:
        """The generation keywords: `inference_kwargs`, with `sampling`'s in their place."""
        keywords = _SAMPLING_KEYWORDS.get(type(self.outlines_model).__name__)
        if sampling is None or keywords is None:
            return self._inference_kwargs
        return {**self._inference_kwargs, **keywords(sampling)}

    def _generate(
        self,
        messages: Sequence[Message],
        guide: Guide | None,
        max_tokens: int | None,
        on_text: TextCallback | None,
        kwargs: dict[str, Any],
    ) -> ModelResponse:
        limit = max_tokens or self._default_max_tokens
        with self._generation_lock:
            metered = guide.start() if guide is not None else None
            try:
                if self._llama is not None and on_text is not None:
                    response = self._stream_llamacpp(messages, metered, limit, on_text, kwargs)
                elif self._llama is not None:
                    response = self._generate_llamacpp(messages, metered, limit, kwargs)
                else:
                    response = self._generate_outlines(messages, metered, limit, kwargs)
                    if on_text is not None and response.text:
                        on_text(response.text)
            except (ValueError, RuntimeError) as exc:  # llama.cpp: context overflow, decode error
                raise ModelError(f"{self._name} failed to generate: {exc}") from exc
        return response

    def _generate_llamacpp(
        self,
        messages: Sequence[Message],
        metered: Metered | None,
        limit: int,
        kwargs: dict[str, Any],
    ) -> ModelResponse:
        """Generate with llama.cpp itself, keeping the KV cache of the shared prompt prefix.

        Outlines' `generate` resets the context after every call, which throws away the cache
        that consecutive agent steps share (measured: re-evaluating a 496-token prompt took
        42 s on a loaded 2-core machine, the cached prefix 0.0 s). The chat template (the
        GGUF's) and the logits processor are the same as through Outlines.
        """
        with optional_imports("local", feature="OutlinesModel on llama.cpp"):
            from llama_cpp import LogitsProcessorList

        completion = self._llama.create_chat_completion(
            messages=[{"role": message.role, "content": message.content} for message in messages],
            logits_processor=(
                LogitsProcessorList([metered.processor]) if metered is not None else None
            ),
            max_tokens=limit,
            **kwargs,
        )
        choice = completion["choices"][0]
        usage = completion.get("usage") or {}
        return ModelResponse(
            text=choice["message"]["content"] or "",
            path="constrained" if metered is not None else "prompted",
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            model_name=self._name,
            finish_reason=choice.get("finish_reason"),
        )

    def _stream_llamacpp(
        self,
        messages: Sequence[Message],
        metered: Metered | None,
        limit: int,
        on_text: TextCallback,
        kwargs: dict[str, Any],
    ) -> ModelResponse:
        """`_generate_llamacpp` with `stream=True`; the meter counts the tokens it sampled."""
        from llama_cpp import LogitsProcessorList

        meter = metered or Metered(None, self._compiler.tensor_library_name)
        chunks = self._llama.create_chat_completion(
            messages=[{"role": message.role, "content": message.content} for message in messages],
            logits_processor=LogitsProcessorList([meter.processor]),
            max_tokens=limit,
            stream=True,
            **kwargs,
        )
        pieces: list[str] = []
        finish_reason: str | None = None
        for chunk in chunks:
            choice = chunk["choices"][0]
            piece = choice.get("delta", {}).get("content") or ""
            if piece:
                pieces.append(piece)
                on_text(piece)
            finish_reason = choice.get("finish_reason") or finish_reason
        return ModelResponse(
            text="".join(pieces),
            path="constrained" if metered is not None else "prompted",
            input_tokens=meter.prompt_tokens,
            output_tokens=meter.calls,
            model_name=self._name,
            finish_reason=finish_reason,
        )

    def _generate_outlines(
        self,
        messages: Sequence[Message],
        metered: Metered | None,
        limit: int,
        kwargs: dict[str, Any],
    ) -> ModelResponse:
        from outlines.inputs import Chat

        chat = Chat([{"role": message.role, "content": message.content} for message in messages])
        # Free text is metered too, to learn the token counts Outlines does not return.
        meter = metered or Metered(None, self._compiler.tensor_library_name)
        text = self.outlines_model.generate(
            chat, meter.processor, **{**kwargs, self._max_tokens_keyword: limit}
        )
        return ModelResponse(
            text=text,
            path="constrained" if metered is not None else "prompted",
            input_tokens=meter.prompt_tokens,
            output_tokens=meter.calls,
            model_name=self._name,
            finish_reason=_finish_reason(meter, limit),
        )


def _finish_reason(metered: Metered, limit: int) -> str:
    if metered.finished is True:
        return "stop"
    return "length" if metered.calls >= limit else "stop"


def _model_name(outlines_model: Any) -> str:
    llama = getattr(outlines_model, "model", None)
    metadata = getattr(llama, "metadata", None)
    if isinstance(metadata, Mapping) and metadata.get("general.name"):
        return f"outlines:{metadata['general.name']}"
    config = getattr(llama, "config", None)
    if config is not None and getattr(config, "_name_or_path", None):
        return f"outlines:{config._name_or_path}"
    return f"outlines:{type(outlines_model).__name__}"


def _context_window(outlines_model: Any) -> int:
    n_ctx = getattr(getattr(outlines_model, "model", None), "n_ctx", None)
    if callable(n_ctx):
        return int(n_ctx())
    return ModelCapabilities().context_window

"""The constraint guides `OutlinesModel` decodes with: one compiler per backend.

A compiler turns an `OutputSchema` into a `Guide` once (the model caches it); each generation
`start`s the guide, which hands llama.cpp or transformers a fresh logits processor wrapped in a
`Metered` that counts the prompt and generated tokens Outlines does not report.

- `llguidance`: the schema becomes a grammar (`llguidance_grammar`: fixed separators, few
  escapes, finite numbers), compiled into a matcher that is deep-copied per generation and
  masks logits lazily, token by token.
- `outlines_core`: Outlines' own regex-index processor, reset per generation; it compiles
  what it can express of the constraint (`outlines_core_schema`).

Caching, locking and the generation itself stay in `agentlib.models.outlines`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from agentlib._optional import optional_imports
from agentlib._string_constraints import outlines_core_form
from agentlib._tool_call_format import bind_special_tokens
from agentlib.errors import ConfigurationError
from agentlib.models._schema_check import LLGUIDANCE_OVERRIDES, constraint_schema
from agentlib.models.base import OutputSchema

__all__ = [
    "Compiler",
    "Guide",
    "Metered",
    "llguidance_grammar",
    "make_compiler",
    "outlines_core_schema",
]

# outlines_core takes a whitespace regex instead of separators; one optional space keeps the
# model close to the `", "` / `": "` layout it saw in training, and bounds it.
_OUTLINES_CORE_WHITESPACE = r"[ ]?"


class _Processor(Protocol):
    """What llama.cpp / transformers call once per generated token (an Outlines processor)."""

    def __call__(self, input_ids: Any, logits: Any) -> Any: ...


class Guide(Protocol):
    """A schema compiled for one backend: makes a fresh, unstarted processor per generation."""

    def start(self) -> Metered: ...


class Metered:
    """Wraps a constraint for one generation and counts what llama.cpp or transformers did.

    Called once per sampled token with all token ids so far (prompt first), so it learns the
    prompt's length on the first call and the number of generated tokens from the calls.
    """

    def __init__(self, inner: Any | None, tensor_library_name: str) -> None:
        from outlines.processors.base_logits_processor import OutlinesLogitsProcessor

        outer = self

        class _Adapter(OutlinesLogitsProcessor):
            def process_logits(self, input_ids: Any, logits: Any) -> Any:
                return outer.process(input_ids, logits)

        self.processor: _Processor = _Adapter(tensor_library_name)
        self._inner = inner
        self.prompt_tokens = 0
        self.calls = 0

    def process(self, input_ids: Any, logits: Any) -> Any:
        if self.calls == 0:
            self.prompt_tokens = int(input_ids.shape[-1])
        self.calls += 1
        if self._inner is None:
            return logits
        return self._inner.process_logits(input_ids, logits)

    @property
    def finished(self) -> bool | None:
        """Whether the constraint reached an accepting end (None when not known)."""
        is_accepting = getattr(self._inner, "is_accepting", None)
        return is_accepting() if callable(is_accepting) else None


class _LLGuidanceProcessor:
    """Masks logits with an llguidance matcher copied from a compiled one (no recompilation)."""

    def __init__(self, compiled: Any, vocab_size: int, tensor_library_name: str) -> None:
        self._compiled = compiled
        self._vocab_size = vocab_size
        self._tensor_library_name = tensor_library_name
        self._matchers: list[Any] = []
        self._bitmask: Any = None
        self.error = ""

    def is_accepting(self) -> bool:
        return bool(self._matchers) and all(matcher.is_accepting() for matcher in self._matchers)

    def process_logits(self, input_ids: Any, logits: Any) -> Any:
        with optional_imports("local", feature="the llguidance backend"):
            import llguidance.numpy

        batch = int(input_ids.shape[0])
        if not self._matchers:
            # A deep copy of the compiled matcher shares its grammar and lexer: ~1 µs.
            self._matchers = [self._compiled.deep_copy() for _ in range(batch)]
            self._bitmask = llguidance.numpy.allocate_token_bitmask(batch, self._vocab_size)
        else:
            for index, matcher in enumerate(self._matchers):
                if not matcher.consume_token(int(input_ids[index, -1])):
                    self.error = matcher.get_error()
        for index, matcher in enumerate(self._matchers):
            llguidance.numpy.fill_next_token_bitmask(matcher, self._bitmask, index)
        return self._apply(logits)

    def _apply(self, logits: Any) -> Any:
        import numpy as np

        width = int(logits.shape[-1])
        # Same result as llguidance.numpy's repeat/tile kernel, ~2.5x faster (measured 0.27 vs
        # 0.71 ms for SmolLM2's 49,152 tokens).
        allowed = np.unpackbits(self._bitmask.view(np.uint8), axis=1, bitorder="little")
        allowed = allowed[:, :width]
        if self._tensor_library_name == "numpy":
            if allowed.shape[1] < width:
                logits[:, allowed.shape[1] :] = -np.inf
            logits[:, : allowed.shape[1]][allowed == 0] = -np.inf
            return logits
        import torch

        mask = torch.from_numpy(allowed == 0).to(logits.device)
        if mask.shape[1] < width:
            logits[:, mask.shape[1] :] = float("-inf")
        logits[:, : mask.shape[1]].masked_fill_(mask, float("-inf"))
        return logits


@dataclass(frozen=True, slots=True)
class _LLGuidanceGuide:
    compiled: Any
    vocab_size: int
    tensor_library_name: str

    def start(self) -> Metered:
        inner = _LLGuidanceProcessor(self.compiled, self.vocab_size, self.tensor_library_name)
        return Metered(inner, self.tensor_library_name)


@dataclass(frozen=True, slots=True)
class _OutlinesCoreGuide:
    processor: Any
    tensor_library_name: str

    def start(self) -> Metered:
        # The processor holds the compiled index; reset() only drops per-generation state.
        self.processor.reset()
        return Metered(self.processor, self.tensor_library_name)


def llguidance_grammar(schema: Mapping[str, Any]) -> str:
    """The llguidance grammar for `schema`: fixed separators, no free whitespace, few escapes.

    Strings may escape only a quote, a backslash, a newline and a tab: with llguidance's
    default a small model filled a 300-character thought with control-character escapes
    (`u001b` after a backslash: 6 characters, several tokens each) until the step ran out of
    tokens (issue 25, item 2). Without them a character costs at most two JSON characters, so
    the step format's string bounds keep a step within its token budget.

    Numbers are kept finite (`constraint_schema`): llguidance's JSON grammar otherwise allows
    `1e999`, which is no double. The options are `LLGUIDANCE_OVERRIDES`, shared with
    `check_schema`.
    """
    with optional_imports("local", feature="the llguidance backend"):
        from llguidance import LLMatcher

    grammar: str = LLMatcher.grammar_from_json_schema(
        constraint_schema(schema, "llguidance"), overrides=cast(Any, LLGUIDANCE_OVERRIDES)
    )
    return grammar


class Compiler(Protocol):
    """Compiles a schema into a `Guide` for one backend and one model's tokenizer."""

    tensor_library_name: str

    def compile(self, schema: OutputSchema) -> Guide: ...


class _LLGuidanceCompiler:
    def __init__(self, outlines_model: Any) -> None:
        with optional_imports("local", feature="the llguidance backend"):
            import llguidance  # noqa: F401  (first: absent, it is a missing extra)
            from outlines.backends.llguidance import LLGuidanceBackend
        with warnings.catch_warnings():
            # llguidance's llama.cpp vocabulary reader calls a function llama-cpp-python
            # deprecated; harmless, and outside our control.
            warnings.filterwarnings(
                "ignore", message=r"llama_token_get_attr is deprecated", category=DeprecationWarning
            )
            backend = LLGuidanceBackend(outlines_model)
        self.tokenizer = backend.llg_tokenizer
        self.tensor_library_name: str = outlines_model.tensor_library_name

    def compile(self, schema: OutputSchema) -> Guide:
        with optional_imports("local", feature="the llguidance backend"):
            from llguidance import LLMatcher

        grammar = (
            LLMatcher.grammar_from_lark(bind_special_tokens(schema.grammar, self.tokenizer))
            if schema.grammar is not None
            else llguidance_grammar(schema.enforced)
        )
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, self.tokenizer)
        if is_error:
            raise ConfigurationError(_unsupported_message(schema.name, "llguidance", messages))
        matcher = LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise ConfigurationError(
                _unsupported_message(schema.name, "llguidance", [matcher.get_error()])
            )
        return _LLGuidanceGuide(matcher, self.tokenizer.vocab_size, self.tensor_library_name)


def outlines_core_schema(schema: OutputSchema) -> dict[str, Any]:
    """The schema outlines-core compiles for `schema`: as much of its constraint as it can say.

    A schema with a stricter constraint (the step's) gives outlines-core its byte and digit
    bounds (`outlines_core_form`); the placeholder and excluded-value patterns are
    intersections outlines-core cannot express (the parse-time check refuses placeholders).
    Any other schema is compiled as it is.
    """
    if schema.constraint is None:
        return dict(schema.schema)
    return outlines_core_form(schema.schema)


class _OutlinesCoreCompiler:
    def __init__(self, outlines_model: Any) -> None:
        from outlines.backends.outlines_core import OutlinesCoreBackend

        if outlines_model.tensor_library_name == "numpy":
            # outlines_core's numpy kernels (llama.cpp models) are written in numba.
            try:
                import numba  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError(
                    "the outlines_core backend needs the 'numba' package for llama.cpp models; "
                    "install it with: pip install numba (or use backend='llguidance')"
                ) from exc
        self.backend = OutlinesCoreBackend(outlines_model)
        self.tensor_library_name: str = outlines_model.tensor_library_name

    def compile(self, schema: OutputSchema) -> Guide:
        try:
            processor = self.backend.get_json_schema_logits_processor(
                json.dumps(outlines_core_schema(schema)), _OUTLINES_CORE_WHITESPACE
            )
        except Exception as exc:  # outlines_core raises ValueError/TypeError/its own errors
            raise ConfigurationError(
                f"the outlines_core backend cannot compile the schema '{schema.name}': {exc}; "
                "simplify the schema or use backend='llguidance'"
            ) from exc
        return _OutlinesCoreGuide(processor, self.tensor_library_name)


def _unsupported_message(name: str, backend: str, messages: Sequence[str]) -> str:
    detail = "; ".join(messages) or "unknown error"
    return (
        f"the {backend} backend cannot enforce the schema '{name}': {detail}; remove or "
        "rewrite those keywords (they would otherwise be silently ignored)"
    )


def make_compiler(backend: str, outlines_model: Any) -> Compiler:
    """The compiler for `backend` (`llguidance` or `outlines_core`) and `outlines_model`."""
    if backend == "llguidance":
        return _LLGuidanceCompiler(outlines_model)
    if backend == "outlines_core":
        return _OutlinesCoreCompiler(outlines_model)
    raise ConfigurationError(
        f"unknown constraint backend {backend!r}; use 'llguidance' or 'outlines_core'"
    )

"""Does a compiled constraint accept a text? llguidance's real matcher over a byte vocabulary.

With one token per byte (and an end-of-sequence token) a matcher accepts a text exactly when
the grammar does, so schema-level questions (would the constraint let this JSON through?) are
answered without a model. The grammar is the one `OutlinesModel` compiles
(`llguidance_grammar`: the same schema transformation and options).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ByteConstraint",
    "OutlinesCoreConstraint",
    "SmolLM2Constraint",
    "as_generated",
    "smollm2",
]

_EOS = 256


class _ByteVocabulary:
    eos_token_id = _EOS
    bos_token_id = None
    tokens: ClassVar[list[bytes]] = [bytes([index]) for index in range(256)] + [b"<eos>"]
    special_token_ids: ClassVar[list[int]] = [_EOS]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text.encode() if isinstance(text, str) else text)


class ByteConstraint:
    """`schema` compiled as `OutlinesModel` compiles it; `accepts(text)` runs the matcher.

    Raises:
        ValueError: llguidance cannot compile the schema (the message is llguidance's).
    """

    _tokenizer: Any = None

    def __init__(self, schema: Mapping[str, Any], *, lark: str | None = None) -> None:
        from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

        from agentlib.models.outlines import llguidance_grammar

        if ByteConstraint._tokenizer is None:
            ByteConstraint._tokenizer = LLTokenizer(TokenizerWrapper(_ByteVocabulary()))
        # `lark`: an `OutputSchema.grammar`, compiled instead of the schema (as OutlinesModel does)
        grammar = LLMatcher.grammar_from_lark(lark) if lark else llguidance_grammar(schema)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, self._tokenizer)
        if is_error:
            raise ValueError("; ".join(messages))
        self._matcher = LLMatcher(self._tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise ValueError(self._matcher.get_error())

    def accepts(self, text: str) -> bool:
        """Whether the constraint lets exactly `text` through (and then stop)."""
        matcher = self._matcher.deep_copy()
        if not matcher.consume_tokens(list(text.encode())):
            return False
        return bool(matcher.is_accepting() and matcher.consume_token(_EOS))


def as_generated(value: Any) -> str:
    """`value` laid out as the constraint generates JSON (`", "` and `": "`, no other space)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@functools.cache
def smollm2() -> Any:
    """The llguidance tokenizer of the embedded SmolLM2 (its GGUF file's vocabulary)."""
    import llama_cpp
    from llguidance.llamacpp import lltokenizer_from_vocab

    from agentlib.models.local import default_model_path

    llama = llama_cpp.Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    with warnings.catch_warnings():
        # llguidance's vocabulary reader calls a function llama-cpp-python deprecated.
        warnings.filterwarnings("ignore", "llama_token_get_attr", DeprecationWarning)
        tokenizer = lltokenizer_from_vocab(llama_cpp.llama_model_get_vocab(llama.model))
    _keep.append(llama)  # the tokenizer reads llama.cpp's vocabulary: keep it loaded
    return tokenizer


_keep: list[Any] = []


class SmolLM2Constraint:
    """`schema` compiled as `OutlinesModel` compiles it, on the real SmolLM2 vocabulary.

    `accepts(text)` feeds the matcher the tokens SmolLM2's tokenizer makes of `text`, then
    its end-of-sequence token, as generation would.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        from llguidance import LLMatcher

        from agentlib.models.outlines import llguidance_grammar

        self.tokenizer = smollm2()
        grammar = llguidance_grammar(schema)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, self.tokenizer)
        if is_error:
            raise ValueError("; ".join(messages))
        self._matcher = LLMatcher(self.tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise ValueError(self._matcher.get_error())

    def tokens(self, text: str) -> list[int]:
        """SmolLM2's own tokens for `text` (llama.cpp's tokenizer, through llguidance)."""
        return list(self.tokenizer.tokenize_str(text))

    def accepts(self, text: str) -> bool:
        """Whether the constraint lets exactly `text` through (and then stop)."""
        matcher = self._matcher.deep_copy()
        if not matcher.consume_tokens(self.tokens(text)):
            return False
        return bool(matcher.is_accepting() and matcher.consume_token(self.tokenizer.eos_token))


@functools.cache
def _smollm2_outlines_core_vocabulary() -> Any:
    """SmolLM2's vocabulary as outlines-core takes it (each token's bytes; special ones out)."""
    from outlines_core import Vocabulary

    tokenizer = smollm2()
    tokens: dict[bytes, list[int]] = {}
    for token in range(tokenizer.vocab_size):
        if not tokenizer.is_special_token(token):
            tokens.setdefault(tokenizer.decode_bytes([token]), []).append(token)
    return Vocabulary(tokenizer.eos_token, tokens)


class OutlinesCoreConstraint:
    """`output` compiled as `OutlinesModel(backend="outlines_core")` compiles it, on SmolLM2.

    The regex comes from the schema the backend compiles (`outlines_core_schema`) with the
    backend's whitespace; the index is outlines-core's own over SmolLM2's real vocabulary.
    """

    def __init__(self, output: Any) -> None:
        from outlines_core import Guide, Index
        from outlines_core.json_schema import build_regex_from_schema

        from agentlib.models._guides import _OUTLINES_CORE_WHITESPACE, outlines_core_schema

        self.tokenizer = smollm2()
        self.schema = outlines_core_schema(output)
        regex = build_regex_from_schema(json.dumps(self.schema), _OUTLINES_CORE_WHITESPACE)
        self._index = Index(regex, _smollm2_outlines_core_vocabulary())
        self._guide = Guide

    def accepts(self, text: str) -> bool:
        """Whether the index lets SmolLM2's tokens of exactly `text` through, then stop."""
        guide = self._guide(self._index)
        for token in self.tokenizer.tokenize_str(text):
            if token not in guide.get_tokens():
                return False
            guide.advance(token, return_tokens=False)
        return bool(self.tokenizer.eos_token in guide.get_tokens())

"""Does a compiled constraint accept a text? llguidance's real matcher over a byte vocabulary.

With one token per byte (and an end-of-sequence token) a matcher accepts a text exactly when
the grammar does, so schema-level questions (would the constraint let this JSON through?) are
answered without a model. The grammar is the one `OutlinesModel` compiles
(`llguidance_grammar`: the same schema transformation and options).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["ByteConstraint", "as_generated"]

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

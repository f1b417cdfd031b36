"""The `Model` protocol every backend implements, and the message types it consumes.

The loop never branches on a backend's name: what differs between backends is data on the
model (`ModelCapabilities`) and the `GenerationPath` each response reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "FINAL_ANSWER",
    "ActionBranch",
    "GenerationPath",
    "Message",
    "Model",
    "ModelCapabilities",
    "ModelResponse",
    "OutputSchema",
    "Role",
    "Sampling",
    "SamplingModel",
    "StepActions",
    "StreamingModel",
    "TextCallback",
    "TokenCounter",
]

Role = Literal["system", "user", "assistant"]

GenerationPath = Literal["constrained", "strict_schema", "native_tools", "prompted", "scripted"]
"""How a response was kept to its schema.

- `constrained`: token-level constrained decoding (Outlines); invalid output cannot be produced.
- `strict_schema`: the server's strict JSON-schema `response_format`.
- `native_tools`: the server's native tool calls with `strict: true`.
- `prompted`: the schema was described in the prompt; the output was validated afterwards.
- `scripted`: a deterministic test model played back prepared output.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One chat message."""

    role: Role
    """Who speaks: `system`, `user` or `assistant`."""
    content: str
    """The text of the message."""


FINAL_ANSWER = "final_answer"
"""The name of the step's final-answer branch (no tool may take it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionBranch:
    """One action a step may hold, as a function a backend can offer natively."""

    name: str
    """The function name (a tool's name, or the final answer's)."""
    description: str
    """What the function does, for the model."""
    parameters: Mapping[str, Any]
    """The JSON schema (an object) of the function's arguments."""
    is_final: bool = False
    """Whether this branch is the final answer."""
    is_handoff: bool = False
    """Whether this branch hands the conversation to another agent (it has no arguments)."""


StepAssembler = Callable[[str, Sequence[tuple[str, Mapping[str, Any]]]], str]
"""`(thought, [(branch name, arguments)]) -> the step's text in its format`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepActions:
    """The step's branches as data, for backends that call them natively (tool calls).

    The step format builds it; a backend offers each branch as a function and turns the calls
    it gets back into the step's text with `assemble`, without knowing the step's keys.
    """

    branches: tuple[ActionBranch, ...]
    """Every tool, then the final answer."""
    parallel_calls: int
    """How many calls one step may hold."""
    assemble: StepAssembler
    """Builds the step's text from a thought and the calls made."""


@dataclass(frozen=True, slots=True, eq=False)
class OutputSchema:
    """A JSON schema the model's reply must satisfy, with a stable key for caching compiled forms.

    Args:
        name: A short identifier (letters, digits, `_`), used as the schema name by servers.
        schema: The JSON schema (a JSON-able dict). Treat it as read-only.
        key: The cache key; by default a digest of the schema (property order included: it is
            generation order for constrained decoding).
        actions: For the agent's step, its branches as data (see `StepActions`).
        constraint: A stricter schema for token-level constraint engines, admitting a subset
            of what `schema` admits (the step format's: no placeholder arguments, bounded
            bytes, a failed value excluded on a retry); `None`: `schema` itself. Servers'
            strict modes and prompts use `schema`.
        grammar: An llguidance Lark grammar that replaces the schema for backends that
            enforce grammars (`supports_cfg`), when the reply is not plain JSON (the
            `<tool_call>` step format); the schema stays what the other backends get.
    """

    name: str
    schema: Mapping[str, Any]
    key: str = field(default="", compare=False)
    actions: StepActions | None = field(default=None, compare=False)
    constraint: Mapping[str, Any] | None = field(default=None, compare=False)
    grammar: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            both = [self.schema, self.constraint] if self.constraint is not None else self.schema
            text = json.dumps(both, separators=(",", ":")) + (self.grammar or "")
            digest = hashlib.sha256(text.encode()).hexdigest()[:24]
            object.__setattr__(self, "key", digest)

    @property
    def enforced(self) -> Mapping[str, Any]:
        """What a token-level constraint engine enforces: `constraint`, else `schema`."""
        return self.schema if self.constraint is None else self.constraint

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputSchema) and other.key == self.key


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCapabilities:
    """What a backend can enforce; the loop and `generate` read these instead of backend names."""

    supports_json_schema: bool = False
    """Output can be constrained to a JSON schema (token-level or server-side strict)."""
    supports_regex: bool = False
    """Output can be constrained to a regular expression."""
    supports_cfg: bool = False
    """Output can be constrained to a context-free grammar."""
    supports_native_tools: bool = False
    """The server has native (strict) tool calling."""
    context_window: int = 8192
    """The context size in tokens; the loop keeps prompts within it."""
    supports_sampling: bool = False
    """`agenerate` takes `sampling=` (see `SamplingModel`): a retry may sample."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """How to sample one generation, overriding the model's own settings for that request.

    The loop asks for it on a retry after an invalid step, so the retry need not repeat a
    greedy reply token for token; the seed keeps the run reproducible.
    """

    temperature: float
    """The sampling temperature (0: greedy)."""
    seed: int | None = None
    """The sampling seed; `None` leaves it to the backend (not reproducible)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be at least 0, got {self.temperature}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """One generation: the raw text, how it was produced, and what it cost."""

    text: str
    """The raw output; for structured requests, a JSON document (not yet validated)."""
    path: GenerationPath
    """How the output was kept to the schema."""
    input_tokens: int = 0
    """Prompt tokens, as reported by the backend (or estimated)."""
    output_tokens: int = 0
    """Generated tokens."""
    model_name: str = ""
    """The backend's name for the model that answered."""
    finish_reason: str | None = None
    """Why generation stopped (`stop`, `length`, ...), when known."""


@runtime_checkable
class Model(Protocol):
    """What the loop consumes: one async generation under an optional JSON schema.

    Implementations: `OpenAIModel`, `OutlinesModel`, `LocalModel`, `ScriptedModel`,
    `FunctionModel`. A user's own class fits without inheriting.
    """

    @property
    def name(self) -> str:
        """A human-readable name (`local:SmolLM2-135M-Instruct`, `openai:gpt-4o-mini`)."""
        ...

    @property
    def capabilities(self) -> ModelCapabilities:
        """What this backend can enforce."""
        ...

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """Generate one reply; when `output` is given, the reply should be JSON valid against it.

        Backends that cannot enforce the schema still return their best attempt and report
        `path="prompted"`: the caller validates every output.

        Raises:
            ModelError: The backend failed (unreachable, HTTP error, unknown model, ...).
        """
        ...


TextCallback = Callable[[str], None]
"""Receives each new piece of generated text; may be called from a worker thread."""


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A `Model` that can also report its text as it is generated (token streaming).

    Optional: the loop uses it when a model has it (`LocalModel`, `OutlinesModel` on
    llama.cpp, `OpenAIModel`) and emits the pieces as `TextEvent`s, so a UI shows the thought
    while it is written; other models are called with `agenerate` as before.
    """

    async def agenerate_streaming(
        self,
        messages: Sequence[Message],
        *,
        on_text: TextCallback,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """Like `agenerate`, calling `on_text` with each new piece of text as it is produced.

        The pieces, joined, equal the returned `text`.
        """
        ...


@runtime_checkable
class SamplingModel(Model, Protocol):
    """A `Model` whose generations take a per-request `Sampling` (optional).

    A model says so with `capabilities.supports_sampling`; the loop passes `sampling=` only
    then, so a model without the parameter keeps working. `LocalModel`, `OutlinesModel` and
    `OpenAIModel` have it, on `agenerate_streaming` too.
    """

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """`Model.agenerate`, sampled as `sampling` says (the model's own settings if `None`)."""
        ...

    async def agenerate_streaming(
        self,
        messages: Sequence[Message],
        *,
        on_text: TextCallback,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """`StreamingModel.agenerate_streaming`, sampled as `sampling` says."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """A model that can count tokens with its own tokenizer (used to check a task fits)."""

    def count_tokens(self, text: str) -> int:
        """The number of tokens `text` takes in this model's prompt."""
        ...

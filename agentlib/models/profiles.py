"""Model profiles: how the step is shaped and generated for one model family, as data.

A `ModelProfile` holds the step format's options (`StepOptions`: where the thought goes, the
key shape, how tools are described, examples) and generation defaults (repetition penalty,
worked examples). A model exposes its profile as `model.profile`; `profile_of(model)` reads it
and falls back to the profile matched from the model's name, so the CLI, the demos and a bare
`Agent(LocalModel())` all behave the same. Every per-family choice lives in `PROFILES` below,
never as a special case in the CLI, the demos or the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agentlib.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_STRING_LENGTH",
    "DEFAULT_MAX_THOUGHT_LENGTH",
    "DEFAULT_PROFILE",
    "DEFAULT_RETRY_TEMPERATURE",
    "FORMAT_EXAMPLE",
    "PROFILES",
    "ModelProfile",
    "StepOptions",
    "WorkedExample",
    "profile_for",
    "profile_of",
]

ThoughtPosition = Literal["before", "after", "none"]
"""Where the step's `thought` goes: before the action (think, then act), after it, or nowhere."""
KeyShape = Literal["tool", "name"]
"""`tool`: `{"tool": ..., "arguments": ...}`; `name`: `{"name": ..., "arguments": ...}`, the
shape SmolLM2 and Qwen were trained on inside `<tool_call>`."""
ToolDescriptionStyle = Literal["json_schema", "signature"]
"""How the prompt lists tools: their JSON schema, or a compact Python-like signature."""
ToolFormat = Literal["json", "tool_call"]
"""`json`: the step is one JSON object; `tool_call`: the chat-template shape, each call a
`<tool_call>{"name": ..., "arguments": ...}</tool_call>` block and the answer plain text."""
Decoding = Literal["joint", "tool_first"]
"""`joint`: one constrained generation of the whole step; `tool_first`: the tool's name is
chosen first (under an enum), then its arguments, seeing only that tool's description."""

DEFAULT_MAX_THOUGHT_LENGTH = 300
"""The default bound on a step's thought, in characters."""
DEFAULT_MAX_STRING_LENGTH = 4000
"""The default bound on every string a schema leaves unbounded (steps and `generate`)."""
DEFAULT_RETRY_TEMPERATURE = 0.7
"""The default temperature of a sampled retry (a common sampling default; not measured)."""

DEFAULT_FINAL_ANSWER_WORDING = (
    'When you know the answer, use the tool "final_answer" with the answer under "answer".'
)
ABSTAIN_FINAL_ANSWER_WORDING = (
    'When you know the answer, or when no tool fits the task, use the tool "final_answer" '
    'with the answer under "answer" (say plainly when no tool can do it).'
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOptions:
    """The step format's variants (see `agentlib.step_format.StepFormat`).

    The defaults are the format agentlib has always used.
    """

    thought: ThoughtPosition = "before"
    """Where the thought goes in the step."""
    key_shape: KeyShape = "tool"
    """The key naming the chosen tool: `tool` or `name`."""
    tool_descriptions: ToolDescriptionStyle = "json_schema"
    """How the prompt describes each tool."""
    tool_examples: bool = False
    """Show one generated example call per tool in the prompt."""
    final_answer_wording: str = DEFAULT_FINAL_ANSWER_WORDING
    """The rule that tells the model when and how to give the final answer."""
    max_thought_length: int = DEFAULT_MAX_THOUGHT_LENGTH
    """The bound on the thought, in characters (small models otherwise ramble in it)."""
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH
    """The bound given to every other string the schema leaves unbounded."""
    tool_format: ToolFormat = "json"
    """The step's shape: JSON, or the chat template's `<tool_call>` blocks (no thought)."""
    decoding: Decoding = "joint"
    """One generation per step, or the tool first and then its arguments (two)."""
    distinct_calls: bool = False
    """A step's identical calls (same tool, same arguments) run once: small models repeat a
    call to fill a parallel step (SmolLM2 wrote 3 calls for 2 on BFCL parallel)."""

    def __post_init__(self) -> None:
        if self.tool_format == "tool_call" and self.thought != "none":
            raise ConfigurationError(
                f"tool_format='tool_call' has no thought; use thought='none' "
                f"(got thought={self.thought!r})"
            )
        if self.decoding == "tool_first" and self.tool_format != "json":
            raise ConfigurationError(
                "decoding='tool_first' works with tool_format='json' only; "
                f"got tool_format={self.tool_format!r}"
            )
        for label, value in (
            ("max_thought_length", self.max_thought_length),
            ("max_string_length", self.max_string_length),
        ):
            if value < 1:
                raise ConfigurationError(f"{label} must be at least 1, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkedExample:
    """A worked example of one tool, shown in the prompt when the agent has that tool.

    Stored as data, not text, so the step format renders it in its own shape.
    """

    tool: str
    """The tool's name."""
    task: str
    """An example task."""
    thought: str
    """The thought before the call."""
    arguments: Mapping[str, Any]
    """The call's arguments."""
    observation: str
    """What the tool returned."""
    answer_thought: str
    """The thought before the final answer."""
    answer: Any
    """The final answer."""
    more_arguments: tuple[Mapping[str, Any], ...] = ()
    """Further calls of the same tool in the call's step, shown when a step may hold
    several calls (`parallel_calls`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelProfile:
    """What one model family needs: the step format's options and generation defaults."""

    name: str = "default"
    """A label for logs and results."""
    step: StepOptions = field(default_factory=StepOptions)
    """The step format's options."""
    repeat_penalty: float | None = None
    """The repetition penalty for backends that take one (`None`: the backend's default)."""
    max_tokens_per_step: int = 512
    """The generation limit for one step."""
    instructions: str | None = None
    """Instructions added before the caller's own."""
    examples: tuple[WorkedExample, ...] = ()
    """Worked examples, each shown when the agent has its tool."""
    retry_temperature: float | None = DEFAULT_RETRY_TEMPERATURE
    """The sampling temperature of a retry after an invalid step, on models that take one
    (`capabilities.supports_sampling`); the seed is the attempt's number. `None`: retries
    decode as the first attempt did."""


DEFAULT_PROFILE = ModelProfile()
"""The profile of models with no entry in `PROFILES`: agentlib's usual step."""

_CALCULATOR_EXAMPLE = WorkedExample(
    tool="calculator",
    task="What is 6 + 4?",
    thought="I use the calculator.",
    arguments={"expression": "6 + 4"},
    observation="10",
    answer_thought="The result is 10.",
    answer="10",
)

FORMAT_EXAMPLE = WorkedExample(
    tool="get_weather",
    task="Is it raining in Oslo or in Paris?",
    thought="I call get_weather with the city from the task.",
    arguments={"city": "Oslo"},
    more_arguments=({"city": "Paris"},),
    observation="Oslo: rain. Paris: sun.",
    answer_thought="I have the result, so I answer.",
    answer="It is raining in Oslo, not in Paris.",
)
"""The step the prompt shows when no worked example's tool is offered: a call of a tool the
agent does not have, with real values. Small models copy what the prompt shows: with a call of
the agent's own first tool filled with generated values (`"a"`, `1`), SmolLM2-135M wrote those
values into 29 of its 58 failed BFCL simple_python calls and called the shown tool in 40 of 52
BFCL multiple cases (benchmarks/tool_calling.md). The constraint keeps the made-up tool out of
real steps."""

PROFILES: dict[str, ModelProfile] = {
    # SmolLM2-135M (the embedded model). Measured with `agentlib run "What is 17 * 23?"`
    # (2026-11-28): without a worked example it rambled in the thought and never answered; a
    # 100-character thought and 200-character strings keep it on track; repeat_penalty 1.1
    # kept it from copying the observation's digits into its answer, 1.0 answered 391.
    "smollm2": ModelProfile(
        name="smollm2",
        step=StepOptions(max_thought_length=100, max_string_length=200, distinct_calls=True),
        repeat_penalty=1.0,
        examples=(_CALCULATOR_EXAMPLE,),
    ),
}
"""Profiles by family, matched against the lower-cased model name (the first key it contains)."""


def profile_for(model_name: str) -> ModelProfile:
    """The profile whose key occurs in `model_name` (case-insensitive), else `DEFAULT_PROFILE`."""
    lowered = model_name.lower()
    for key, profile in PROFILES.items():
        if key in lowered:
            return profile
    return DEFAULT_PROFILE


def profile_of(model: object) -> ModelProfile:
    """`model.profile` when the model has one, else the profile matched from `model.name`."""
    profile = getattr(model, "profile", None)
    if isinstance(profile, ModelProfile):
        return profile
    return profile_for(str(getattr(model, "name", "")))

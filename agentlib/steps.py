"""The data of a run: steps, tool calls, observations, the result, and the streamed events.

Everything here is a frozen, slotted, keyword-only dataclass: plain data the loop produces and
users read, store and render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar

__all__ = [
    "AgentEvent",
    "ApprovalRequest",
    "ApprovalRequestEvent",
    "ErrorEvent",
    "FinalAnswerEvent",
    "Handoff",
    "HandoffEvent",
    "Observation",
    "RunFinishedEvent",
    "RunResult",
    "Step",
    "StepStartedEvent",
    "StopReason",
    "SubagentEvent",
    "TextEvent",
    "ThoughtEvent",
    "ToolCall",
    "ToolCallEvent",
    "ToolResultEvent",
    "Usage",
]

OutputT = TypeVar("OutputT")

StopReason = Literal[
    "final_answer",
    "max_steps",
    "time_budget",
    "token_budget",
    "cancelled",
    "repeated_call",
    "invalid_output",
    "model_error",
    "approval_required",
    "handoff",
]
"""Why a run stopped.

- `final_answer`: the model answered; `RunResult.output` holds the typed answer.
- `max_steps`: the step limit was reached.
- `time_budget`: the wall-clock budget ran out (work in flight was cancelled).
- `token_budget`: the token budget was used up.
- `cancelled`: the task was cancelled or the cancel token was set.
- `repeated_call`: the model called the same tool with the same arguments, getting the same
  observation, too many times in a row.
- `invalid_output`: the model's step was still invalid after the allowed retries.
- `model_error`: the backend failed (unreachable server, HTTP error, ...).
- `approval_required`: the model called a tool that needs a person's approval; the run is
  paused, `RunResult.pending` lists the calls, and `Agent.resume` continues it.
- `handoff`: the model handed the conversation to another agent and the handoff was not
  followed: the run's `max_handoffs` was reached (a run that follows its handoffs ends with
  the last agent's stop reason).
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens and requests spent."""

    requests: int = 0
    """Model calls made, retries included."""
    input_tokens: int = 0
    """Prompt tokens."""
    output_tokens: int = 0
    """Generated tokens."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """The model's request to run one tool."""

    id: str
    """Unique within the run (`call_1`, `call_2`, ...)."""
    tool_name: str
    """The tool to run."""
    arguments: Mapping[str, Any]
    """The arguments, as the model sent them (already validated against the tool's schema)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What a tool call produced, as the model sees it."""

    call_id: str
    """The `ToolCall.id` this answers."""
    tool_name: str
    """The tool that ran."""
    content: str
    """The text shown to the model (rendered, possibly truncated)."""
    is_error: bool = False
    """Whether the tool raised; `content` then names the error type and message."""
    error_type: str | None = None
    """The exception's class name, when the tool raised."""
    duration: float = 0.0
    """Seconds the call took."""
    value: Any = field(default=None, repr=False, compare=False)
    """The tool's raw return value (not serialised; `None` on error)."""
    run: RunResult[Any] | None = field(default=None, repr=False, compare=False)
    """The sub-agent's whole run, when the tool is an agent (`Agent.as_tool`), failed or not."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
    """A tool call that waits for a person's decision before it runs."""

    call: ToolCall
    """The call: tool, arguments (validated) and call id."""
    step: int
    """The 1-based index of the step that holds the call."""
    requested_at: float
    """When the approval was asked for (seconds since the epoch, `time.time()`)."""
    description: str = ""
    """The tool's description, for the person deciding."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One turn of the loop: the model's thought and calls, and what the calls produced."""

    index: int
    """1-based position in the run."""
    thought: str
    """The model's reasoning for this step."""
    calls: tuple[ToolCall, ...] = ()
    """The tool calls made (empty on the final step)."""
    observations: tuple[Observation, ...] = ()
    """One per call, in the same order."""
    final_answer: Any = None
    """The validated answer, on the final step."""
    is_final: bool = False
    """Whether this step gave the final answer."""
    raw_output: str = ""
    """The model's raw text for the accepted step."""
    retries: int = 0
    """How many invalid outputs the model produced before this valid one."""
    generation_path: str = ""
    """How the output was kept to the step schema (see `GenerationPath`)."""
    usage: Usage = field(default_factory=Usage)
    """Tokens spent on this step, retries included."""
    model_seconds: float = 0.0
    """Time spent waiting for the model."""
    tool_seconds: float = 0.0
    """Time spent running tools (concurrent calls overlap)."""
    handoff: str | None = None
    """The handoff branch the model took (`transfer_to_<agent>`), on a handoff step."""
    agent_name: str = ""
    """The agent that took this step (differs between steps after a handoff)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff:
    """One agent handing the conversation to another (`Agent(handoffs=[...])`)."""

    step: int
    """The 1-based index (in `RunResult.steps`) of the step that handed over."""
    from_agent: str
    """The agent that handed over."""
    to_agent: str
    """The agent that took over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult(Generic[OutputT]):
    """Everything a run produced: the typed output, the steps, and how it ended."""

    output: OutputT | None
    """The final answer, validated against the agent's output type; `None` if the run stopped
    without one (see `stop_reason`)."""
    stop_reason: StopReason
    """Why the run stopped."""
    steps: tuple[Step, ...]
    """Every step, in order."""
    usage: Usage
    """Tokens and requests over the whole run."""
    duration: float
    """Wall-clock seconds for the run."""
    generation_paths: tuple[str, ...] = ()
    """The distinct generation paths used, in order of first use."""
    error: str | None = None
    """A description of what went wrong, when the run did not end with a final answer."""
    task: str = ""
    """The task the run was given."""
    pending: tuple[ApprovalRequest, ...] = ()
    """The calls waiting for approval, when `stop_reason` is `approval_required`."""
    checkpoint: Mapping[str, Any] | None = field(default=None, repr=False)
    """The paused run's state as versioned JSON data (messages, steps, usage, the pending
    step), when `stop_reason` is `approval_required`: `Agent.resume` continues from it, in
    this process or, after it was stored, in another one."""
    run_id: str = ""
    """The run's id: with `Agent(checkpoints=store)`, `Agent.resume(run_id)` continues the
    run from its last checkpoint, in any process."""
    agent_name: str = ""
    """The agent that gave the answer (the last one, after handoffs)."""
    handoffs: tuple[Handoff, ...] = ()
    """Each handoff of the run, in order."""
    tools_offered: tuple[str, ...] = ()
    """The names of the tools the model was offered (after any selection, e.g. `--max-tools`)."""

    @property
    def ok(self) -> bool:
        """Whether the run ended with a final answer."""
        return self.stop_reason == "final_answer"

    @property
    def generation_path(self) -> str:
        """The generation path of the last step (`constrained`, `strict_schema`, ...)."""
        return self.steps[-1].generation_path if self.steps else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStartedEvent:
    """A step began."""

    step: int
    """1-based step index."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextEvent:
    """A piece of a step's raw output, as the model produces it (streaming models only).

    The pieces of one attempt, joined, are the step's raw JSON text before it is validated; a
    retried step starts again with `attempt` one higher. UIs use them to show the thought and
    the answer while they are written; the validated step follows as the usual events.
    """

    step: int
    """1-based step index."""
    delta: str
    """The new text."""
    attempt: int = 0
    """0 for the first try at this step, 1 for the first retry, ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThoughtEvent:
    """The model's thought for a step."""

    step: int
    """1-based step index."""
    thought: str
    """The text of the thought."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEvent:
    """A tool call is about to run."""

    step: int
    """1-based step index."""
    call: ToolCall
    """The call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultEvent:
    """A tool call finished (or failed)."""

    step: int
    """1-based step index."""
    observation: Observation
    """What the call produced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequestEvent:
    """A tool call needs approval: the run asks its approver, or pauses."""

    step: int
    """1-based step index."""
    request: ApprovalRequest
    """The call waiting for a decision."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalAnswerEvent:
    """The model gave its final answer."""

    step: int
    """1-based step index."""
    output: Any
    """The validated answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent:
    """Something went wrong that the run reacts to (an invalid step, a backend failure)."""

    step: int
    """1-based step index."""
    message: str
    """What went wrong."""
    will_retry: bool = False
    """Whether the loop asks the model again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinishedEvent:
    """The run ended; the last event of every stream."""

    result: RunResult[Any]
    """The complete result."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffEvent:
    """The conversation passes to another agent; the next events are the new agent's."""

    step: int
    """1-based index of the step that handed over."""
    from_agent: str
    """The agent that handed over."""
    to_agent: str
    """The agent that takes over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubagentEvent:
    """An event of a sub-agent (`Agent.as_tool`) running as one of this run's tool calls."""

    step: int
    """1-based index of the parent's step whose call runs the sub-agent."""
    call_id: str
    """The parent's `ToolCall.id` that runs the sub-agent."""
    agent_name: str
    """The sub-agent's tool name."""
    event: AgentEvent
    """The sub-agent's own event (its step numbers are its own; may itself be nested)."""


AgentEvent: TypeAlias = (
    StepStartedEvent
    | TextEvent
    | ThoughtEvent
    | ToolCallEvent
    | ToolResultEvent
    | ApprovalRequestEvent
    | FinalAnswerEvent
    | ErrorEvent
    | RunFinishedEvent
    | HandoffEvent
    | SubagentEvent
)
"""Any event `Agent.stream` yields."""

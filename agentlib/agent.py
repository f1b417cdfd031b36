"""`Agent`: configuration, `run`/`arun`/`stream`, and the ReAct loop.

Each step renders the prompt (instructions, tools, history within the context budget), asks the
model for one step under the step schema, validates it (retrying with the exact error when it is
invalid), runs the tool calls concurrently, and records the observations. A tool error becomes
an observation; every way a run can stop is a `StopReason` in the `RunResult`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, runtime_checkable

from typing_extensions import TypeVar

from agentlib import _approval_flow, _checkpoint, _tracing
from agentlib._cancel import CancelToken, retrieve_outcome
from agentlib._prompting import check_task, fit_to_context, observation_message
from agentlib._retry import RetriesExhausted, generate_until_valid
from agentlib._subagents import (
    ToolScope,
    agent_tool,
    check_agent_name,
    handoff_branches,
    run_events,
)
from agentlib._tool_first import agenerate_tool_first
from agentlib.approval import Approver, Decision
from agentlib.errors import ConfigurationError, ModelError, ModelOutputError, ToolError
from agentlib.models.base import Message, Model, ModelResponse, OutputSchema, StreamingModel
from agentlib.models.profiles import ModelProfile, StepOptions, profile_of
from agentlib.step_format import ParsedStep, StepFormat
from agentlib.steps import (
    AgentEvent,
    ErrorEvent,
    FinalAnswerEvent,
    Observation,
    RunFinishedEvent,
    RunResult,
    Step,
    StepStartedEvent,
    StopReason,
    TextEvent,
    ThoughtEvent,
    ToolCall,
    ToolCallEvent,
    ToolResultEvent,
    Usage,
)
from agentlib.tool import Tool, Toolset, collect_tools, render_observation, truncate

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["Agent", "CancelToken", "ConversationLike"]

logger = logging.getLogger(__name__)

OutputT = TypeVar("OutputT", default=str)


@runtime_checkable
class ConversationLike(Protocol):
    """What `Agent.arun(conversation=...)` needs from a conversation (see `agentlib.memory`)."""

    async def ahistory(self, model: Model, task: str) -> list[Message]:
        """The earlier turns as messages for `task`, fitted to `model`'s context by the strategy."""
        ...

    async def arecord_step(self, task: str, step: Step) -> None:
        """Save one finished step of the run in flight, so a crash loses at most the next."""
        ...

    async def arecord(self, task: str, result: RunResult[Any]) -> None:
        """Append this run as a turn (and persist it, for a stored conversation)."""
        ...


class _Stop(Exception):
    """Internal: ends the loop with a stop reason."""

    def __init__(self, reason: StopReason, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class _RunState:
    task: str
    started: float
    deadline: float | None
    cancel_token: CancelToken | None
    messages: list[Message]
    first_shortenable: int
    """Messages before this index (system prompt, history, task) are never shortened."""
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    paths: list[str] = field(default_factory=list)
    next_call_id: int = 1
    last_signature: str | None = None
    repeats: int = 0
    trace: _tracing.RunTrace | None = None
    """The run's spans, when the agent traces (see `agentlib._tracing`)."""
    text: asyncio.Queue[TextEvent] | None = None
    """Where a streaming model's text goes while a step is generated (None: not streaming)."""
    step_index: int = 0
    attempt: int = 0
    accepted: _Accepted | None = None
    """The step just generated, for the loop to act on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Accepted:
    """A valid step from the model, before its tools ran."""

    parsed: ParsedStep
    calls: tuple[ToolCall, ...]
    response: ModelResponse
    retries: int
    usage: Usage
    model_seconds: float
    agent_name: str = ""

    def to_step(self, index: int, **extra: Any) -> Step:
        return Step(
            index=index,
            thought=self.parsed.thought,
            calls=self.calls,
            raw_output=self.response.text,
            retries=self.retries,
            generation_path=self.response.path,
            usage=self.usage,
            model_seconds=self.model_seconds,
            is_final=self.parsed.is_final,
            final_answer=self.parsed.answer,
            handoff=self.parsed.handoff,
            agent_name=self.agent_name,
            **extra,
        )


def _ended(step: Step) -> tuple[StopReason, Any, str | None] | None:
    """How the run ends after `step`: with its final answer or its handoff (`None`: it goes on)."""
    if step.is_final:
        return "final_answer", step.final_answer, None
    if step.handoff is not None:
        return "handoff", None, f"handed over with {step.handoff}"
    return None


class Agent(Generic[OutputT]):
    """A ReAct agent: a model choosing among tools, step by step, until it answers.

    Args:
        model: Any `Model` (`LocalModel()`, `OpenAIModel(...)`, `ScriptedModel([...])`, ...).
        tools: Functions, `Tool`s and `Toolset`s; names must be unique.
        output_type: The type of the final answer (`str`, a pydantic model, a dataclass, ...).
        instructions: Extra system instructions (the agent's role, house rules).
        max_steps: The most steps (model calls that are accepted) per run.
        max_retries: How many invalid steps in a row the model may produce before the run
            stops with `invalid_output`; each retry shows the model the exact error.
        time_budget: Wall-clock seconds per run; work in flight is cancelled when it runs out.
        token_budget: The most tokens (input plus output) per run.
        max_repeated_calls: Stop when the same calls with the same arguments give the same
            observations this many times in a row.
        parallel_calls: The most tool calls one step may hold; they run concurrently.
        max_observation_chars: Observations longer than this are cut, with a visible marker.
        max_thought_length: The bound on each step's thought, in characters (small models
            otherwise ramble in it until they run out of tokens); default: the profile's.
        max_string_length: The bound given to every other string the schema leaves
            unbounded (tool arguments, a `str` answer); default: the profile's.
        max_tokens_per_step: The generation limit for one step.
        profile: The model profile (step options, worked examples); default
            `model.profile`, or the profile matched from the model's name.
        step_options: The step format's options, replacing the profile's.
        name: The agent's name: in traces (`invoke_agent {name}`), its tool's name in
            `as_tool`, its handoff branch (`transfer_to_<name>`) and `RunResult.agent_name`.
        tracing: OpenTelemetry spans for each run, step, model call and tool call: `True`
            for the global `TracerProvider`, or the provider to use; off by default.
        trace_content: Record prompts, answers, tool arguments and results in the spans
            (off by default: they may hold private data).
        approval_timeout: Seconds a call that needs approval may wait for a decision,
            counted from when it was requested; then it is denied (see `agentlib.approval`).
        require_approval: Names of tools whose every call needs approval, besides those
            made with `@tool(requires_approval=...)` (for tools you did not write).
        description: What the agent does, for the models of other agents (its handoff
            branch's and its tool's description).
        handoffs: Agents this one may hand the conversation to: each is a
            `transfer_to_<name>` branch of the step; the target continues with the task and
            the transcript, and answers (see `docs/concepts/multi-agent.md`).
        max_handoffs: The most handoffs one run follows (a bound against agents handing a
            conversation back and forth); the run then stops with `handoff`.

    Raises:
        ConfigurationError: Duplicate tool names, a bad output type or an invalid limit.
    """

    def __init__(
        self,
        model: Model,
        *,
        tools: Iterable[Tool | Toolset | Callable[..., Any]] = (),
        output_type: type[OutputT] = str,  # type: ignore[assignment]
        instructions: str | None = None,
        max_steps: int = 10,
        max_retries: int = 2,
        time_budget: float | None = None,
        token_budget: int | None = None,
        max_repeated_calls: int = 3,
        parallel_calls: int = 1,
        max_observation_chars: int = 4000,
        max_thought_length: int | None = None,
        max_string_length: int | None = None,
        max_tokens_per_step: int | None = 512,
        profile: ModelProfile | None = None,
        step_options: StepOptions | None = None,
        name: str = "agent",
        tracing: bool | TracerProvider = False,
        trace_content: bool = False,
        approval_timeout: float | None = None,
        require_approval: Iterable[str] = (),
        description: str | None = None,
        handoffs: Iterable[Agent[Any]] = (),
        max_handoffs: int = 5,
    ) -> None:
        for label, value in (
            ("max_steps", max_steps),
            ("parallel_calls", parallel_calls),
            ("max_repeated_calls", max_repeated_calls),
        ):
            if value < 1:
                raise ConfigurationError(f"{label} must be at least 1, got {value}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {max_retries}")
        if max_handoffs < 0:
            raise ConfigurationError(f"max_handoffs must be 0 or more, got {max_handoffs}")
        if approval_timeout is not None and approval_timeout <= 0:
            raise ConfigurationError(
                f"approval_timeout must be a positive number of seconds, got {approval_timeout}"
            )
        self.name = check_agent_name(name)
        """The agent's name."""
        self.description = description
        """What the agent does, for other agents' models."""
        self.handoffs = tuple(handoffs)
        """The agents this one may hand the conversation to."""
        self.max_handoffs = max_handoffs
        self._handoff_branches = handoff_branches(self.handoffs)
        self.approval_timeout = approval_timeout
        self.require_approval = frozenset(require_approval)
        """Tools whose every call needs approval, by name."""
        self._tracing = (
            None
            if tracing is False
            else _tracing.Tracing(
                None if tracing is True else tracing, record_content=trace_content
            )
        )
        self.model = model
        self._tool_sources = list(tools)
        self.tools = collect_tools(self._tool_sources)
        unknown = sorted(self.require_approval - {item.name for item in self.tools})
        if unknown:
            raise ConfigurationError(
                f"require_approval names unknown tools: {', '.join(unknown)}; "
                f"known tools: {', '.join(item.name for item in self.tools) or 'none'}"
            )
        self._may_need_approval = bool(self.require_approval) or any(
            item.requires_approval is not False for item in self.tools
        )
        self.output_type = output_type
        self.instructions = instructions
        self.max_steps = max_steps
        self.max_retries = max_retries
        self.time_budget = time_budget
        self.token_budget = token_budget
        self.max_repeated_calls = max_repeated_calls
        self.max_observation_chars = max_observation_chars
        self.max_tokens_per_step = max_tokens_per_step
        self.profile = profile or profile_of(model)
        """The model profile in use."""
        options = step_options or self.profile.step
        options = replace(
            options,
            max_thought_length=(
                options.max_thought_length if max_thought_length is None else max_thought_length
            ),
            max_string_length=(
                options.max_string_length if max_string_length is None else max_string_length
            ),
        )
        self.step_format = StepFormat.build(
            self.tools,
            output_type,
            parallel_calls=parallel_calls,
            options=options,
            max_tokens=max_tokens_per_step,
            handoffs=[(branch, about) for branch, (about, _) in self._handoff_branches.items()],
        )
        """The step format: schema, prompt text, parser (see `agentlib.step_format`)."""
        self._narrowed: StepFormat | None = None
        preamble = [part for part in (self.profile.instructions, instructions) if part]
        self._system_prompt = self.step_format.render_prompt(
            "\n\n".join(preamble) or None, examples=self.profile.examples
        )

    @property
    def parallel_calls(self) -> int:
        """The most tool calls one step may hold (owned by the step format)."""
        return self.step_format.parallel_calls

    @property
    def step_schema(self) -> StepFormat:
        """The earlier name of `step_format`."""
        return self.step_format

    # -- public API -------------------------------------------------------------------------

    def as_tool(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        input_type: Any = str,
        max_steps: int | None = None,
        time_budget: float | None = None,
        token_budget: int | None = None,
        make_task: Callable[[Any], str] | None = None,
    ) -> Tool:
        """This agent as a tool another agent can call: a sub-agent.

        Each call runs this agent on a task made from the call's input and returns its typed
        output. Its steps are on the parent's `Observation.run`, its events in the parent's
        stream (`SubagentEvent`); its tokens count in the parent's usage and token budget;
        cancelling the parent cancels it. A run that stops without an answer is a tool
        error the parent's model sees, naming the stop reason.

        Args:
            name: The tool's name; default, the agent's `name`.
            description: What the tool does, for the parent's model; default, the agent's
                `description`.
            input_type: `str` (the tool takes one `task` string) or an object type (a
                pydantic model, a dataclass): the tool's arguments are its fields.
            max_steps: The child's step limit per call; default, this agent's.
            time_budget: Seconds per call, further capped by the parent's remaining time.
            token_budget: Tokens per call, further capped by what the parent has left.
            make_task: Turns the validated input into the child's task; default, the text
                itself or the input as JSON.

        Raises:
            ConfigurationError: The name is not valid, `input_type` is not an object type,
                or `max_steps` is below 1.
        """
        return agent_tool(
            self,
            name,
            description,
            input_type=input_type,
            max_steps=max_steps,
            time_budget=time_budget,
            token_budget=token_budget,
            make_task=make_task,
        )

    async def arun(
        self,
        task: str,
        *,
        conversation: ConversationLike | None = None,
        history: Sequence[Message] = (),
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> RunResult[OutputT]:
        """Run the agent on `task` until it answers or a limit stops it.

        Args:
            task: What to do, in the user's words.
            conversation: A conversation to continue: the model sees its earlier turns, and
                this run is recorded in it as the next turn.
            history: Earlier messages to put between the system prompt and the task (for
                callers that manage history themselves).
            cancel_token: A token that stops the run when cancelled.
            approver: Decides on calls to tools that need approval (see
                `agentlib.approval`); without one, such a call pauses the run with stop
                reason `approval_required`.

        Returns:
            The result; `result.output` holds the typed answer when `result.ok`.
        """
        return await self._finished(
            run_events(self, task, conversation, history, cancel_token, approver)
        )

    @staticmethod
    async def _finished(events: AsyncIterator[AgentEvent]) -> RunResult[OutputT]:
        result: RunResult[OutputT] | None = None
        async for event in events:
            if isinstance(event, RunFinishedEvent):
                result = event.result
        assert result is not None  # the event stream always ends with RunFinishedEvent
        return result

    async def aresume(
        self,
        paused: RunResult[Any] | Mapping[str, Any],
        decisions: Mapping[str, Decision] | None = None,
        *,
        conversation: ConversationLike | None = None,
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> RunResult[OutputT]:
        """Continue a run that paused for approval, with a decision for each pending call.

        Args:
            paused: The paused run's `RunResult`, or its `checkpoint` (read back from a
                store, in this process or another: `conversation.checkpoint`).
            decisions: Call id -> `Approve()`, `Approve(arguments={...})` (an edit) or
                `Deny("reason the model sees")`, for every call in `result.pending` (a call
                past `approval_timeout` is denied whatever was decided).
            conversation: The conversation the run belongs to: the resumed run completes
                the same turn.
            cancel_token: A token that stops the run when cancelled.
            approver: Decides on later calls that need approval (otherwise they pause).

        Raises:
            ConfigurationError: `paused` is not a paused run; a decision is missing, names
                an unknown call or holds arguments the tool rejects; or the paused step no
                longer fits this agent's tools.
        """
        return await self._finished(
            self.stream_resume(
                paused,
                decisions,
                conversation=conversation,
                cancel_token=cancel_token,
                approver=approver,
            )
        )

    def resume(
        self,
        paused: RunResult[Any] | Mapping[str, Any],
        decisions: Mapping[str, Decision] | None = None,
        *,
        conversation: ConversationLike | None = None,
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> RunResult[OutputT]:
        """Synchronous `aresume`; call it outside an event loop."""
        return asyncio.run(
            self.aresume(
                paused,
                decisions,
                conversation=conversation,
                cancel_token=cancel_token,
                approver=approver,
            )
        )

    def stream_resume(
        self,
        paused: RunResult[Any] | Mapping[str, Any],
        decisions: Mapping[str, Decision] | None = None,
        *,
        conversation: ConversationLike | None = None,
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """`aresume` as a stream of events, as `stream` is to `arun`.

        Raises:
            ConfigurationError: As for `aresume`, before any event.
        """
        checkpoint = paused.checkpoint if isinstance(paused, RunResult) else paused
        if checkpoint is None:
            raise ConfigurationError(
                f"this run stopped with {paused.stop_reason}, not approval_required: "  # type: ignore[union-attr]
                "there is nothing to resume"
            )
        resumed = _approval_flow.load(
            checkpoint, decisions or {}, self.tools, self.approval_timeout
        )
        return self._events(
            resumed.checkpoint.task,
            conversation,
            (),
            cancel_token,
            approver=approver,
            resumed=resumed,
        )

    def run(
        self,
        task: str,
        *,
        conversation: ConversationLike | None = None,
        history: Sequence[Message] = (),
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> RunResult[OutputT]:
        """Synchronous `arun`; call it outside an event loop."""
        return asyncio.run(
            self.arun(
                task,
                conversation=conversation,
                history=history,
                cancel_token=cancel_token,
                approver=approver,
            )
        )

    def stream(
        self,
        task: str,
        *,
        conversation: ConversationLike | None = None,
        history: Sequence[Message] = (),
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
        text: bool = False,
    ) -> AsyncIterator[AgentEvent]:
        """Run the agent, yielding events as they happen; the last is a `RunFinishedEvent`.

        Stopping the iteration early (`break`) ends the run and releases its tools.

        Args:
            task: What to do, as for `arun`.
            conversation: As for `arun`.
            history: As for `arun`.
            cancel_token: As for `arun`.
            approver: As for `arun`.
            text: Also yield `TextEvent`s: each step's text as the model writes it, token by
                token, when the model streams (`StreamingModel`: `LocalModel`, `OpenAIModel`).
        """
        return run_events(self, task, conversation, history, cancel_token, approver, text=text)

    async def aplan(self, task: str, *, history: Sequence[Message] = ()) -> Step:
        """The model's next step for `task`, validated, without running any tool.

        For evaluation (which tool would it call, with what arguments?) and for approval
        UIs (show the calls, run them only once approved). The step's `calls` are validated
        against the tools; `observations` is empty; a final step holds the typed answer.

        Raises:
            ModelOutputError: The model's step was still invalid after the retries.
            ModelError: The backend failed.
            ConfigurationError: The task is empty or does not fit the context window.
        """
        state = self._start(task, history, None, time.perf_counter())
        _run_toolsets, tools = self._tools_for_run()
        try:
            accepted, _events = await self._step(state, 1, tools)
        except _Stop as stop:
            cause = stop.__cause__
            if stop.reason == "model_error" and isinstance(cause, ModelError):
                raise cause from None
            if isinstance(cause, RetriesExhausted):
                raise ModelOutputError(
                    stop.message or stop.reason,
                    raw_output=cause.response.text,
                    attempts=cause.attempts,
                ) from cause
            raise ModelError(stop.message or stop.reason) from cause
        finally:
            await self._close_run_toolsets(_run_toolsets)
        return accepted.to_step(1)

    def plan(self, task: str, *, history: Sequence[Message] = ()) -> Step:
        """Synchronous `aplan`: the next step for `task`, without running tools."""
        return asyncio.run(self.aplan(task, history=history))

    # -- the loop -----------------------------------------------------------------------------

    def _start(
        self,
        task: str,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        started: float,
        *,
        text: bool = False,
    ) -> _RunState:
        check_task(
            task,
            self.model,
            system_prompt=self._system_prompt,
            reserve_tokens=self._reserve_tokens,
        )
        return _RunState(
            task=task,
            started=started,
            deadline=started + self.time_budget if self.time_budget is not None else None,
            cancel_token=cancel_token,
            messages=[
                Message(role="system", content=self._system_prompt),
                *history,
                Message(role="user", content=task),
            ],
            first_shortenable=len(history) + 2,
            text=asyncio.Queue() if text and isinstance(self.model, StreamingModel) else None,
        )

    @property
    def _reserve_tokens(self) -> int:
        return (self.max_tokens_per_step or 1024) + 64

    async def _events(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        *,
        approver: Approver | None = None,
        resumed: _approval_flow.Resumed | None = None,
        text: bool = False,
    ) -> AsyncIterator[AgentEvent]:
        state = await self._begin(task, conversation, history, cancel_token, resumed, text=text)
        run_toolsets, tools = self._tools_for_run()
        reason: StopReason = "max_steps"
        error: str | None = None
        output: Any = None
        paused: _approval_flow.Paused | None = None
        first = resumed.checkpoint.step.index if resumed is not None else 1
        try:
            for index in range(first, self.max_steps + 1):
                if cancel_token is not None and cancel_token.cancelled:
                    raise _Stop("cancelled")
                step_resumed = resumed if index == first else None
                async for event in self._one_step(state, index, tools, approver, step_resumed):
                    yield event
                if conversation is not None:
                    await conversation.arecord_step(task, state.steps[-1])
                ended = _ended(state.steps[-1])
                if ended is not None:
                    reason, output, error = ended
                    break
                self._check_limits(state)
            else:
                error = f"no final answer within max_steps={self.max_steps}"
        except _approval_flow.Paused as pause:
            paused, reason, error = pause, "approval_required", str(pause)
            if conversation is not None:
                await conversation.arecord_step(task, state.steps[-1])
        except _Stop as stop:
            reason, error = stop.reason, stop.message
            if stop.reason == "invalid_output" or stop.reason == "model_error":
                yield ErrorEvent(step=len(state.steps) + 1, message=stop.message or stop.reason)
        except asyncio.CancelledError:
            reason, error = "cancelled", "the run's task was cancelled"
        finally:
            await self._close_run_toolsets(run_toolsets)
        result = self._result(state, reason, output, error, paused)
        logger.debug("run finished: %s after %d steps", reason, len(state.steps))
        if conversation is not None:
            await asyncio.shield(conversation.arecord(task, result))
        yield RunFinishedEvent(result=result)

    def _result(
        self,
        state: _RunState,
        reason: StopReason,
        output: Any,
        error: str | None,
        paused: _approval_flow.Paused | None,
    ) -> RunResult[OutputT]:
        result: RunResult[OutputT] = RunResult(
            output=output,
            stop_reason=reason,
            steps=tuple(state.steps),
            usage=state.usage,
            duration=time.perf_counter() - state.started,
            generation_paths=tuple(state.paths),
            error=error if reason != "final_answer" else None,
            task=state.task,
            agent_name=self.name,
            tools_offered=self.step_format.tool_names,
            pending=paused.requests if paused is not None else (),
            checkpoint=paused.checkpoint if paused is not None else None,
        )
        if state.trace is not None:
            state.trace.finish(result)
        return result

    async def _begin(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        resumed: _approval_flow.Resumed | None,
        *,
        text: bool = False,
    ) -> _RunState:
        started = time.perf_counter()
        if resumed is not None:
            state = self._restore(resumed, cancel_token, started)
        else:
            if conversation is not None:
                history = [*(await conversation.ahistory(self.model, task)), *history]
            state = self._start(task, history, cancel_token, started)
        if text and isinstance(self.model, StreamingModel):
            state.text = asyncio.Queue()
        if self._tracing is not None:
            state.trace = self._tracing.start_run(
                agent_name=self.name,
                model_name=self.model.name,
                task=task,
                system_prompt=self._system_prompt,
                resumed_from=resumed.checkpoint.trace if resumed is not None else None,
            )
        return state

    async def _one_step(
        self,
        state: _RunState,
        index: int,
        tools: dict[str, Tool],
        approver: Approver | None,
        resumed: _approval_flow.Resumed | None,
    ) -> AsyncIterator[AgentEvent]:
        """One step: ask the model (or take the paused step), get approvals, run the calls."""
        if state.trace is not None:
            state.trace.step_started(index)
        events: list[AgentEvent] = []
        if resumed is not None:
            accepted, decided = self._accepted_from(resumed, tools), dict(resumed.decisions)
        else:
            yield StepStartedEvent(step=index)
            async for event in self._streamed_step(state, index, tools):
                yield event
            assert state.accepted is not None
            accepted, decided = state.accepted, {}
        for event in events:
            yield event
        requests = (
            _approval_flow.requests_for(index, accepted, tools, decided, self.require_approval)
            if self._may_need_approval
            else []
        )
        try:
            if requests:
                async for event in _approval_flow.decide(
                    requests,
                    tools,
                    decided,
                    approver,
                    self.approval_timeout,
                    lambda asking: self._guarded(state, asking),
                ):
                    yield event
        except _approval_flow.Paused as pause:
            pause.checkpoint = self._checkpoint(state, pause, accepted, index)
            state.steps.append(accepted.to_step(index))  # its calls, no results yet
            raise
        if decided:
            accepted = replace(accepted, calls=_approval_flow.edited(accepted.calls, decided))
        async for event in self._act(state, index, accepted, tools, decided):
            yield event
        if state.trace is not None:
            state.trace.step_finished(state.steps[-1])

    # -- pausing for approval and resuming (the state in `agentlib._checkpoint`) -------------

    def _checkpoint(
        self, state: _RunState, pause: _approval_flow.Paused, accepted: _Accepted, index: int
    ) -> dict[str, Any]:
        return _checkpoint.dump(
            task=state.task,
            messages=state.messages,
            first_shortenable=state.first_shortenable,
            steps=state.steps,
            usage=state.usage,
            paths=state.paths,
            next_call_id=state.next_call_id,
            last_signature=state.last_signature,
            repeats=state.repeats,
            elapsed=time.perf_counter() - state.started,
            step=_checkpoint.PausedStep(
                index=index,
                raw_output=accepted.response.text,
                retries=accepted.retries,
                generation_path=accepted.response.path,
                usage=accepted.usage,
                model_seconds=accepted.model_seconds,
                calls=accepted.calls,
            ),
            pending=pause.requests,
            decisions={key: item.stored() for key, item in pause.decided.items()},
            trace=state.trace.reference() if state.trace is not None else None,
        )

    def _restore(
        self, resumed: _approval_flow.Resumed, cancel_token: CancelToken | None, now: float
    ) -> _RunState:
        saved = resumed.checkpoint
        started = now - saved.elapsed  # the time budget counts work, not the wait for approval
        return _RunState(
            task=saved.task,
            started=started,
            deadline=started + self.time_budget if self.time_budget is not None else None,
            cancel_token=cancel_token,
            messages=list(saved.messages),
            first_shortenable=saved.first_shortenable,
            steps=list(saved.steps),
            usage=saved.usage,
            paths=list(saved.paths),
            next_call_id=saved.next_call_id,
            last_signature=saved.last_signature,
            repeats=saved.repeats,
        )

    def _accepted_from(self, resumed: _approval_flow.Resumed, tools: dict[str, Tool]) -> _Accepted:
        """The paused step, its raw output parsed again against this run's tools."""
        saved = resumed.checkpoint.step
        try:
            parsed = self.step_format.parse(saved.raw_output, tools)
        except ModelOutputError as exc:
            raise ConfigurationError(
                f"the paused step {saved.index} no longer fits this agent's tools ({exc}); "
                "resume it with the agent (tools and output type) that paused it"
            ) from exc
        if [call.name for call in parsed.calls] != [call.tool_name for call in saved.calls]:
            raise ConfigurationError(
                f"the paused step {saved.index} parses to other calls with this agent; "
                "resume it with the agent that paused it"
            )
        return _Accepted(
            parsed=parsed,
            calls=saved.calls,
            response=ModelResponse(text=saved.raw_output, path=saved.generation_path),  # type: ignore[arg-type]
            retries=saved.retries,
            usage=saved.usage,
            model_seconds=saved.model_seconds,
            agent_name=self.name,
        )

    def _tools_for_run(self) -> tuple[list[Toolset], dict[str, Tool]]:
        """Give each run its own toolset instances where a toolset asks for that."""
        run_toolsets: list[Toolset] = []
        sources: list[Tool | Toolset | Callable[..., Any]] = []
        for source in self._tool_sources:
            if isinstance(source, Toolset):
                scoped = source.for_run()
                if scoped is not source:
                    run_toolsets.append(scoped)
                sources.append(scoped)
            else:
                sources.append(source)
        tools = collect_tools(sources) if run_toolsets else self.tools
        return run_toolsets, {item.name: item for item in tools}

    @staticmethod
    async def _close_run_toolsets(toolsets: list[Toolset]) -> None:
        for toolset in toolsets:
            try:
                await asyncio.shield(toolset.aclose())
            except Exception:  # closing must not hide the run's result
                logger.exception("closing toolset %r failed", toolset)

    async def _streamed_step(
        self, state: _RunState, index: int, tools: dict[str, Tool]
    ) -> AsyncIterator[AgentEvent]:
        """`_step`'s events, after the model's text as it streams (when asked).

        The accepted step is left in `state.accepted`.
        """
        state.step_index, state.attempt = index, 0
        if state.text is None:
            accepted, events = await self._step(state, index, tools)
        else:
            work = asyncio.ensure_future(self._step(state, index, tools))
            async for text_event in _while_running(state.text, work):
                yield text_event
            accepted, events = work.result()
        state.accepted = accepted
        for event in events:
            yield event

    async def _step(
        self, state: _RunState, index: int, tools: dict[str, Tool]
    ) -> tuple[_Accepted, list[AgentEvent]]:
        """Ask the model for one valid step, retrying invalid ones; returns it and its events."""
        events: list[AgentEvent] = []
        messages = fit_to_context(
            state.messages,
            context_window=self.model.capabilities.context_window,
            reserve_tokens=self._reserve_tokens,
            first=state.first_shortenable,
        )
        usage = Usage()
        model_seconds = 0.0

        async def ask(history: list[Message], previous: ModelResponse | None) -> ModelResponse:
            nonlocal usage, model_seconds
            began = time.perf_counter()
            response = await self._ask_model(state, history, self._output_after(previous))
            state.attempt += 1
            model_seconds += time.perf_counter() - began
            usage = usage + Usage(
                requests=1,
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
            )
            if response.path not in state.paths:
                state.paths.append(response.path)
            return response

        def on_invalid(error: str, will_retry: bool) -> None:
            events.append(ErrorEvent(step=index, message=error, will_retry=will_retry))

        try:
            validated = await generate_until_valid(
                ask,
                messages,
                lambda response: self.step_format.parse(response.text, tools),
                retries=self.max_retries,
                on_invalid=on_invalid,
            )
        except RetriesExhausted as exc:
            why = (
                " (the model repeated an invalid reply word for word, so retrying cannot help)"
                if exc.repeated
                else ""
            )
            raise _Stop(
                "invalid_output",
                f"step {index} was still invalid after {exc.attempts} attempt(s){why}: {exc.error}",
            ) from exc
        finally:
            state.usage = state.usage + usage
        parsed = validated.value
        calls = []
        for call in parsed.calls:
            calls.append(
                ToolCall(
                    id=f"call_{state.next_call_id}", tool_name=call.name, arguments=call.arguments
                )
            )
            state.next_call_id += 1
        events.append(ThoughtEvent(step=index, thought=parsed.thought))
        accepted = _Accepted(
            parsed=parsed,
            calls=tuple(calls),
            response=validated.response,
            retries=validated.attempts - 1,
            usage=usage,
            model_seconds=model_seconds,
            agent_name=self.name,
        )
        return accepted, events

    def _output_after(self, previous: ModelResponse | None) -> OutputSchema:
        """The step schema for the next attempt: narrower after a reply cut by the token limit.

        A reply cut short under constraint would be cut again at the same point; halving the
        string bounds excludes the over-long choice, so the retry can differ.
        """
        if previous is None or previous.finish_reason != "length":
            return self.step_format.output
        if self._narrowed is None:
            self._narrowed = self.step_format.narrowed()
        return self._narrowed.output

    async def _ask_model(
        self, state: _RunState, messages: list[Message], output: OutputSchema
    ) -> ModelResponse:
        limit = self.max_tokens_per_step
        if self.step_format.options.decoding == "tool_first":  # two generations per step
            call = agenerate_tool_first(self.model, self.step_format, messages, max_tokens=limit)
        elif state.text is not None and isinstance(self.model, StreamingModel):
            loop, queue = asyncio.get_running_loop(), state.text
            step, attempt = state.step_index, state.attempt

            def on_text(delta: str) -> None:  # called from the model's worker thread, too
                event = TextEvent(step=step, delta=delta, attempt=attempt)
                loop.call_soon_threadsafe(queue.put_nowait, event)

            call = self.model.agenerate_streaming(
                messages, on_text=on_text, output=output, max_tokens=limit
            )
        else:
            call = self.model.agenerate(messages, output=output, max_tokens=limit)
        try:
            with _tracing.model_span(state.trace, messages, limit) as span:
                response: ModelResponse = await self._guarded(state, call)
                span.record(response)
        except ModelError as exc:
            raise _Stop("model_error", f"{type(exc).__name__}: {exc}") from exc
        return response

    async def _act(
        self,
        state: _RunState,
        index: int,
        accepted: _Accepted,
        tools: dict[str, Tool],
        decided: Mapping[str, _approval_flow.Resolved] | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run the step's tool calls concurrently and record the step with what they return."""
        parsed = accepted.parsed
        echo = Message(role="assistant", content=self.step_format.echo(parsed))
        if parsed.is_final or parsed.handoff is not None:
            state.steps.append(accepted.to_step(index))
            state.messages.append(echo)
            if parsed.is_final:
                yield FinalAnswerEvent(step=index, output=parsed.answer)
            return
        for item in accepted.calls:
            yield ToolCallEvent(step=index, call=item)
        began = time.perf_counter()
        # What sub-agent tools share with this run; `None` (no cost) when no call runs one.
        scope = ToolScope.for_step(state, self.token_budget, index, accepted.calls, tools)
        try:
            runs = [
                self._execute(
                    item,
                    tools[item.tool_name],
                    call.values,
                    state.trace,
                    (decided or {}).get(item.id),
                )
                for item, call in zip(accepted.calls, parsed.calls, strict=True)
            ]
            if scope is None:
                observations = await self._guarded(state, asyncio.gather(*runs))
            else:
                tracked = asyncio.gather(*scope.track_all(accepted.calls, runs))
                async for event in scope.relay(self._guarded(state, tracked)):
                    yield event  # a sub-agent's events, as they happen
                observations = scope.observations
        except (_Stop, asyncio.CancelledError):
            state.steps.append(accepted.to_step(index))  # interrupted: its calls, no results
            raise
        tool_seconds = time.perf_counter() - began
        for observation in observations:
            yield ToolResultEvent(step=index, observation=observation)
        state.steps.append(
            accepted.to_step(index, observations=tuple(observations), tool_seconds=tool_seconds)
        )
        self._track_repeats(state, list(accepted.calls), observations)
        state.messages.append(echo)
        state.messages.append(
            Message(
                role="user",
                content=observation_message(observations, repeated=state.repeats > 1),
            )
        )

    async def _execute(
        self,
        call: ToolCall,
        item: Tool,
        values: Mapping[str, Any],
        trace: _tracing.RunTrace | None = None,
        decision: _approval_flow.Resolved | None = None,
    ) -> Observation:
        with _tracing.tool_span(
            trace, call, item, decision.label if decision is not None else None
        ) as span:
            if decision is not None and not decision.approved:
                observation = decision.denial(call)
            else:
                observation = await self._run_tool(call, item, values, decision)
            span.record(observation)
        return observation

    async def _run_tool(
        self,
        call: ToolCall,
        item: Tool,
        values: Mapping[str, Any],
        decision: _approval_flow.Resolved | None,
    ) -> Observation:
        began = time.perf_counter()
        if decision is not None and decision.values is not None:
            values = decision.values
        try:
            value = await item.acall_validated(values)
        except ToolError as exc:
            return self._error_observation(call, exc, began, show_type=False)
        except Exception as exc:  # a tool's failure is an observation, never a crash
            return self._error_observation(call, exc, began, show_type=True)
        content = render_observation(value, self.max_observation_chars)
        return Observation(
            call_id=call.id,
            tool_name=call.tool_name,
            content=decision.note(content) if decision is not None else content,
            duration=time.perf_counter() - began,
            value=value,
        )

    def _error_observation(
        self, call: ToolCall, exc: Exception, began: float, *, show_type: bool
    ) -> Observation:
        text = f"{type(exc).__name__}: {exc}" if show_type else f"error: {exc}"
        logger.debug("tool %s failed: %s", call.tool_name, text)
        return Observation(
            call_id=call.id,
            tool_name=call.tool_name,
            content=truncate(text, self.max_observation_chars),
            is_error=True,
            error_type=type(exc).__name__,
            duration=time.perf_counter() - began,
        )

    def _track_repeats(
        self, state: _RunState, calls: list[ToolCall], observations: Sequence[Observation]
    ) -> None:
        signature = json.dumps(
            [
                [c.tool_name, c.arguments, o.content]
                for c, o in zip(calls, observations, strict=True)
            ],
            sort_keys=True,
            default=str,
        )
        state.repeats = state.repeats + 1 if signature == state.last_signature else 1
        state.last_signature = signature

    def _check_limits(self, state: _RunState) -> None:
        if state.repeats >= self.max_repeated_calls:
            call = state.steps[-1].calls[0]
            raise _Stop(
                "repeated_call",
                f"the model called {call.tool_name} with the same arguments "
                f"{state.repeats} times in a row without progress",
            )
        if self.token_budget is not None and state.usage.total_tokens >= self.token_budget:
            raise _Stop(
                "token_budget",
                f"used {state.usage.total_tokens} tokens of the budget of {self.token_budget}",
            )

    async def _guarded(self, state: _RunState, awaitable: Coroutine[Any, Any, Any] | Any) -> Any:
        """Await `awaitable`, cancelling it when the time budget ends or the token is set."""
        if state.deadline is None and state.cancel_token is None:
            return await awaitable
        work = asyncio.ensure_future(awaitable)
        watchers: set[asyncio.Future[Any]] = {work}
        cancel_wait = None
        if state.cancel_token is not None:
            cancel_wait = asyncio.ensure_future(state.cancel_token.wait())
            watchers.add(cancel_wait)
        timeout = None if state.deadline is None else max(0.0, state.deadline - time.perf_counter())
        try:
            done, _pending = await asyncio.wait(
                watchers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            work.add_done_callback(retrieve_outcome)
            work.cancel()
            raise
        finally:
            if cancel_wait is not None:
                cancel_wait.cancel()
        if work in done:
            return work.result()
        work.add_done_callback(retrieve_outcome)
        work.cancel()
        if cancel_wait is not None and cancel_wait in done:
            raise _Stop("cancelled", "the run was cancelled with its cancel token")
        raise _Stop("time_budget", f"the time budget of {self.time_budget} s ran out")


async def _while_running(
    queue: asyncio.Queue[TextEvent], work: asyncio.Future[Any]
) -> AsyncIterator[TextEvent]:
    """Yield the queued text events until `work` is done; cancel `work` if the caller stops."""
    try:
        while not work.done():
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()
        while not queue.empty():
            yield queue.get_nowait()
    finally:
        if not work.done():
            work.cancel()
            work.add_done_callback(retrieve_outcome)

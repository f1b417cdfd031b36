"""`Agent`: configuration, `run`/`arun`/`stream`, and the ReAct loop.

Each step renders the prompt (instructions, tools, history within the context budget), asks the
model for one step under the step schema, validates it (retrying with the exact error when it is
invalid), runs the tool calls concurrently, and records the observations. A tool error becomes
an observation; every way a run can stop is a `StopReason` in the `RunResult`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, runtime_checkable

from typing_extensions import TypeVar

from agentlib import _approval_flow, _run, _run_state, _run_tools, _tracing
from agentlib._cancel import CancelToken
from agentlib._retry import RetriesExhausted
from agentlib._subagents import (
    agent_tool,
    check_agent_name,
    handoff_branches,
    run_events,
)
from agentlib._tool_selection import select_tools
from agentlib.approval import Approver, Decision
from agentlib.errors import ConfigurationError, ModelError, ModelOutputError
from agentlib.models.base import Message, Model
from agentlib.models.profiles import ModelProfile, StepOptions, profile_of
from agentlib.step_format import StepFormat
from agentlib.steps import (
    AgentEvent,
    RunFinishedEvent,
    RunResult,
    Step,
)
from agentlib.tool import Tool, Toolset, collect_tools

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from agentlib.memory.stores import CheckpointStore

__all__ = ["Agent", "CancelToken", "ConversationLike"]

logger = logging.getLogger(__name__)

OutputT = TypeVar("OutputT", default=str)

_MAX_OFFERINGS = 32  # twins kept per agent with `max_tools`: one compiled schema each


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
        checkpoints: A store for the run's state (`SQLStore(url)`, `InMemoryStore()`, any
            `agentlib.memory.CheckpointStore`): each run writes a versioned checkpoint after
            every step, and `resume(run_id)` continues it from there in any process; a tool
            call whose result was checkpointed never runs again (see
            `docs/concepts/durable.md`).
        max_tools: Offer each run at most this many tools, the most relevant to its task
            (`select_tools`: BM25 over names, descriptions and argument names), so a toolset
            of hundreds (an MCP server) fits a small model's context and a short step
            schema; `RunResult.tools_offered` says which. `None` offers every tool.

    Raises:
        ConfigurationError: Duplicate tool names, a bad output type or an invalid limit.
    """

    _run_type: Callable[[Agent[Any], Approver | None], _run.Run[Any]] = _run.Run
    """Makes each run: a durable engine (`agentlib.durable`) puts one here whose seams,
    `Run.call_model` and `Run.call_tool`, are checkpointed; the loop itself is unchanged."""

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
        checkpoints: CheckpointStore | None = None,
        max_tools: int | None = None,
    ) -> None:
        if max_tools is not None and max_tools < 1:
            raise ConfigurationError(f"max_tools must be at least 1 or None, got {max_tools}")
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
        if checkpoints is not None and not callable(getattr(checkpoints, "save_checkpoint", None)):
            raise ConfigurationError(
                f"checkpoints must be a checkpoint store (SQLStore, InMemoryStore or another "
                f"agentlib.memory.CheckpointStore), got {type(checkpoints).__name__}"
            )
        self.checkpoints = checkpoints
        """Where each run's checkpoints go (`None`: runs are not checkpointed)."""
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
        self._format_options = (parallel_calls, options)
        self.max_tools = max_tools
        """The most tools one run is offered (`None`: all)."""
        self._offerings: dict[tuple[str, ...], Agent[OutputT]] = {}
        self._offer(self.tools)

    def _offer(self, tools: Sequence[Tool]) -> None:
        """Build the step format and system prompt for these tools."""
        parallel_calls, options = self._format_options
        self.step_format = StepFormat.build(
            tools,
            self.output_type,
            parallel_calls=parallel_calls,
            options=options,
            max_tokens=self.max_tokens_per_step,
            handoffs=[(branch, about) for branch, (about, _) in self._handoff_branches.items()],
        )
        """The step format: schema, prompt text, parser (see `agentlib.step_format`)."""
        self._narrowed: StepFormat | None = None
        preamble = [part for part in (self.profile.instructions, self.instructions) if part]
        self._system_prompt = self.step_format.render_prompt(
            "\n\n".join(preamble) or None, examples=self.profile.examples
        )

    def _for_task(self, task: str) -> Agent[OutputT]:
        """This agent, or (with `max_tools`) its twin offering the tools chosen for `task`.

        A twin shares everything but the offered tools' step format and prompt; twins are
        kept per choice of tools, so a task that picks the same tools reuses the compiled
        schema. A resumed run chooses again from its task: the same tools.
        """
        if self.max_tools is None or len(self.tools) <= self.max_tools:
            return self
        chosen = select_tools(self.tools, task, max_tools=self.max_tools)
        key = tuple(item.name for item in chosen)
        twin = self._offerings.get(key)
        if twin is None:
            twin = copy.copy(self)
            twin.max_tools = None
            twin.tools = chosen
            twin._offer(chosen)
            if len(self._offerings) >= _MAX_OFFERINGS:
                self._offerings.pop(next(iter(self._offerings)))
            self._offerings[key] = twin
        return twin

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
        run_id: str | None = None,
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
            run_id: The run's id (default: a new random one), its key in the agent's
                checkpoint store: choose it to resume the run from another process even if
                this one dies before it sees the result.

        Returns:
            The result; `result.output` holds the typed answer when `result.ok`.

        Raises:
            ConfigurationError: The task is empty or too long, or `run_id` is already in
                the checkpoint store.
            StoreError: The checkpoint store failed.
        """
        return await self._finished(
            run_events(self, task, conversation, history, cancel_token, approver, run_id=run_id)
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
        paused: RunResult[Any] | Mapping[str, Any] | str,
        decisions: Mapping[str, Decision] | None = None,
        *,
        conversation: ConversationLike | None = None,
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
    ) -> RunResult[OutputT]:
        """Continue a run from its checkpoint: paused for approval, or cut off by a crash.

        Args:
            paused: The run's id (`RunResult.run_id`, or the `run_id` given to `arun`),
                read from this agent's `checkpoints` store, in this process or another;
                or a paused run's `RunResult`, or its `checkpoint` (`conversation.checkpoint`).
                A call that was running when the run's process died is reported to the
                model as interrupted, or run again if its tool is `idempotent`.
            decisions: Call id -> `Approve()`, `Approve(arguments={...})` (an edit) or
                `Deny("reason the model sees")`, for every call in `result.pending` (a call
                past `approval_timeout` is denied whatever was decided); none for a run
                that did not pause.
            conversation: The conversation the run belongs to: the resumed run completes
                the same turn.
            cancel_token: A token that stops the run when cancelled.
            approver: Decides on later calls that need approval (otherwise they pause).

        Raises:
            ConfigurationError: No run has this id in the store (or the agent has none);
                the run already finished; `paused` is not a checkpoint, or one of a newer
                agentlib or of an agent with other tools; a decision is missing, names an
                unknown call or holds arguments the tool rejects.
            StoreError: The checkpoint store failed.
        """
        if isinstance(paused, str):
            paused = await asyncio.to_thread(self._stored_checkpoint, paused)
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
        paused: RunResult[Any] | Mapping[str, Any] | str,
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
        paused: RunResult[Any] | Mapping[str, Any] | str,
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
        if isinstance(paused, str):
            paused = self._stored_checkpoint(paused)
        checkpoint = paused.checkpoint if isinstance(paused, RunResult) else paused
        if checkpoint is None:
            raise ConfigurationError(
                f"this run stopped with {paused.stop_reason}, not approval_required: "  # type: ignore[union-attr]
                "there is nothing to resume"
            )
        task = checkpoint.get("task") if isinstance(checkpoint, Mapping) else None
        offered = self._for_task(task) if isinstance(task, str) else self  # what its task chose
        resumed = _approval_flow.load(
            checkpoint, decisions or {}, offered.tools, self.approval_timeout
        )
        return self._events(
            resumed.checkpoint.task,
            conversation,
            (),
            cancel_token,
            approver=approver,
            resumed=resumed,
        )

    def _stored_checkpoint(self, run_id: str) -> dict[str, Any]:
        """The latest checkpoint of run `run_id` in this agent's store.

        Raises:
            ConfigurationError: The agent has no store, or the store no such run.
        """
        if self.checkpoints is None:
            raise ConfigurationError(
                f"to resume run {run_id!r} by its id, the agent needs the store its "
                "checkpoints were written to: Agent(..., checkpoints=store)"
            )
        data = self.checkpoints.load_checkpoint(run_id)
        if data is None:
            raise ConfigurationError(
                f"no run {run_id!r} in the checkpoint store {self.checkpoints!r}; a run's id "
                "is RunResult.run_id, or the run_id given to run()"
            )
        return data

    def run(
        self,
        task: str,
        *,
        conversation: ConversationLike | None = None,
        history: Sequence[Message] = (),
        cancel_token: CancelToken | None = None,
        approver: Approver | None = None,
        run_id: str | None = None,
    ) -> RunResult[OutputT]:
        """Synchronous `arun`; call it outside an event loop."""
        return asyncio.run(
            self.arun(
                task,
                conversation=conversation,
                history=history,
                cancel_token=cancel_token,
                approver=approver,
                run_id=run_id,
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
        run_id: str | None = None,
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
            run_id: As for `arun`.
        """
        return run_events(
            self, task, conversation, history, cancel_token, approver, text=text, run_id=run_id
        )

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
        agent = self._for_task(task)
        run: _run.Run[OutputT] = _run.Run(agent)
        run.state = _run_state.fresh_state(agent, task, history, None, time.perf_counter())
        run_toolsets, run.tools = _run_tools.tools_for_run(agent)
        try:
            accepted, _events = await run.step(1)
        except _run_state.Stop as stop:
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
            await _run_tools.close_run_toolsets(run_toolsets)
        return accepted.to_step(1)

    def plan(self, task: str, *, history: Sequence[Message] = ()) -> Step:
        """Synchronous `aplan`: the next step for `task`, without running tools."""
        return asyncio.run(self.aplan(task, history=history))

    # -- the run (in `agentlib._run`) ---------------------------------------------------------

    def _events(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        *,
        approver: Approver | None = None,
        resumed: _approval_flow.Resumed | None = None,
        text: bool = False,
        run_id: str | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """One run of this agent (no handoffs followed) as its events."""
        run: _run.Run[OutputT] = self._run_type(self._for_task(task), approver)
        return run.events(
            task, conversation, history, cancel_token, resumed=resumed, text=text, run_id=run_id
        )

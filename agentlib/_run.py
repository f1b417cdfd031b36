"""One run of an agent: its state, the loop, and the two seams every call goes through.

`Run` holds the agent (its configuration, read-only here) and one run's `RunState`: the
messages, steps, usage and budgets spent. `Run.events` is the loop: each step renders the
prompt, asks the model for one step (retrying invalid ones with the exact error), gets
approvals, runs the tool calls concurrently and records the observations, until the run ends.

Every model call goes through `Run.call_model` and every tool call through `Run.call_tool`:
these are the seams a durable engine wraps (a DBOS step each), and what tracing, the time
budget and cancellation already wrap. Nothing else reaches the model or a tool.

`agent.py` keeps `Agent`'s configuration and public methods; it builds a `Run` per run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from agentlib import _approval_flow, _checkpoint, _tracing
from agentlib._cancel import CancelToken, retrieve_outcome
from agentlib._prompting import check_task, fit_to_context, observation_message
from agentlib._retry import RetriesExhausted, generate_until_valid
from agentlib._subagents import ToolScope
from agentlib.approval import Approver
from agentlib.errors import ConfigurationError, ModelError, ModelOutputError, ToolError
from agentlib.models.base import Message, ModelResponse, OutputSchema, StreamingModel
from agentlib.step_format import ParsedStep
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
    from agentlib.agent import Agent, ConversationLike

__all__ = ["Accepted", "Run", "RunState", "Stop"]

logger = logging.getLogger("agentlib.agent")  # the loop's records keep the logger they had

OutputT = TypeVar("OutputT", default=str)


class Stop(Exception):
    """Ends the loop with a stop reason."""

    def __init__(self, reason: StopReason, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class RunState:
    """What one run has done so far: everything a checkpoint needs, and the run's plumbing."""

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
    accepted: Accepted | None = None
    """The step just generated, for the loop to act on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
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


def ended(step: Step) -> tuple[StopReason, Any, str | None] | None:
    """How the run ends after `step`: with its final answer or its handoff (`None`: it goes on)."""
    if step.is_final:
        return "final_answer", step.final_answer, None
    if step.handoff is not None:
        return "handoff", None, f"handed over with {step.handoff}"
    return None


def reserve_tokens(agent: Agent[Any]) -> int:
    """The tokens kept free in the context window for the model's reply."""
    return (agent.max_tokens_per_step or 1024) + 64


def fresh_state(
    agent: Agent[Any],
    task: str,
    history: Sequence[Message],
    cancel_token: CancelToken | None,
    started: float,
) -> RunState:
    """The state of a new run on `task`, after checking that the task fits the context.

    Raises:
        ConfigurationError: The task is empty or does not fit the model's context window.
    """
    check_task(
        task,
        agent.model,
        system_prompt=agent._system_prompt,
        reserve_tokens=reserve_tokens(agent),
    )
    return RunState(
        task=task,
        started=started,
        deadline=started + agent.time_budget if agent.time_budget is not None else None,
        cancel_token=cancel_token,
        messages=[
            Message(role="system", content=agent._system_prompt),
            *history,
            Message(role="user", content=task),
        ],
        first_shortenable=len(history) + 2,
    )


def restored_state(
    agent: Agent[Any], saved: _checkpoint.Checkpoint, cancel_token: CancelToken | None, now: float
) -> RunState:
    """The state of a run read back from its checkpoint."""
    started = now - saved.elapsed  # the time budget counts work, not the wait for approval
    return RunState(
        task=saved.task,
        started=started,
        deadline=started + agent.time_budget if agent.time_budget is not None else None,
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


def tools_for_run(agent: Agent[Any]) -> tuple[list[Toolset], dict[str, Tool]]:
    """Give each run its own toolset instances where a toolset asks for that."""
    run_toolsets: list[Toolset] = []
    sources: list[Tool | Toolset | Callable[..., Any]] = []
    for source in agent._tool_sources:
        if isinstance(source, Toolset):
            scoped = source.for_run()
            if scoped is not source:
                run_toolsets.append(scoped)
            sources.append(scoped)
        else:
            sources.append(source)
    tools = collect_tools(sources) if run_toolsets else agent.tools
    return run_toolsets, {item.name: item for item in tools}


async def close_run_toolsets(toolsets: list[Toolset]) -> None:
    """Close the toolsets made for one run; a failure is logged, never raised."""
    for toolset in toolsets:
        try:
            await asyncio.shield(toolset.aclose())
        except Exception:  # closing must not hide the run's result
            logger.exception("closing toolset %r failed", toolset)


class Run(Generic[OutputT]):
    """One run of `agent`: its state, its tools, and the loop over them.

    `events` starts the run (or resumes it) and sets `state` and `tools`; `aplan` sets them
    itself to ask for one step.

    Args:
        agent: The agent whose configuration the run follows.
        approver: Decides on calls that need approval (`None`: such a call pauses the run).
    """

    state: RunState
    """What the run has done so far."""
    tools: dict[str, Tool]
    """The run's tools by name (`tools_for_run`)."""

    def __init__(self, agent: Agent[OutputT], approver: Approver | None = None) -> None:
        self.agent = agent
        self.approver = approver

    # -- the two seams: every model call and every tool call ------------------------------

    async def call_model(self, messages: list[Message], output: OutputSchema) -> ModelResponse:
        """Ask the model for one reply under `output`, within the run's budgets.

        Raises:
            Stop: The backend failed (`model_error`), the time budget ran out or the run was
                cancelled.
        """
        agent, state = self.agent, self.state
        model, limit = agent.model, agent.max_tokens_per_step
        if state.text is not None and isinstance(model, StreamingModel):
            loop, queue = asyncio.get_running_loop(), state.text
            step, attempt = state.step_index, state.attempt

            def on_text(delta: str) -> None:  # called from the model's worker thread, too
                event = TextEvent(step=step, delta=delta, attempt=attempt)
                loop.call_soon_threadsafe(queue.put_nowait, event)

            call = model.agenerate_streaming(
                messages, on_text=on_text, output=output, max_tokens=limit
            )
        else:
            call = model.agenerate(messages, output=output, max_tokens=limit)
        try:
            with _tracing.model_span(state.trace, messages, limit) as span:
                response: ModelResponse = await self.guarded(call)
                span.record(response)
        except ModelError as exc:
            raise Stop("model_error", f"{type(exc).__name__}: {exc}") from exc
        return response

    async def call_tool(
        self,
        call: ToolCall,
        item: Tool,
        values: Mapping[str, Any],
        decision: _approval_flow.Resolved | None = None,
    ) -> Observation:
        """Run one tool call (or record its denial); a tool's failure is an observation."""
        with _tracing.tool_span(
            self.state.trace, call, item, decision.label if decision is not None else None
        ) as span:
            if decision is not None and not decision.approved:
                observation = decision.denial(call)
            else:
                observation = await self._run_tool(call, item, values, decision)
            span.record(observation)
        return observation

    # -- the loop -------------------------------------------------------------------------

    async def events(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        *,
        resumed: _approval_flow.Resumed | None = None,
        text: bool = False,
    ) -> AsyncIterator[AgentEvent]:
        """The run's events, step by step; the last is a `RunFinishedEvent`.

        Raises:
            ConfigurationError: The task is empty or does not fit the context, before any event.
        """
        await self._begin(task, conversation, history, cancel_token, resumed, text=text)
        run_toolsets, self.tools = tools_for_run(self.agent)
        agent, state = self.agent, self.state
        task, cancel_token = state.task, state.cancel_token
        reason: StopReason = "max_steps"
        error: str | None = None
        output: Any = None
        paused: _approval_flow.Paused | None = None
        first = resumed.checkpoint.step.index if resumed is not None else 1
        try:
            for index in range(first, agent.max_steps + 1):
                if cancel_token is not None and cancel_token.cancelled:
                    raise Stop("cancelled")
                step_resumed = resumed if index == first else None
                async for event in self._one_step(index, step_resumed):
                    yield event
                if conversation is not None:
                    await conversation.arecord_step(task, state.steps[-1])
                end = ended(state.steps[-1])
                if end is not None:
                    reason, output, error = end
                    break
                self._check_limits()
            else:
                error = f"no final answer within max_steps={agent.max_steps}"
        except _approval_flow.Paused as pause:
            paused, reason, error = pause, "approval_required", str(pause)
            if conversation is not None:
                await conversation.arecord_step(task, state.steps[-1])
        except Stop as stop:
            reason, error = stop.reason, stop.message
            if stop.reason == "invalid_output" or stop.reason == "model_error":
                yield ErrorEvent(step=len(state.steps) + 1, message=stop.message or stop.reason)
        except asyncio.CancelledError:
            reason, error = "cancelled", "the run's task was cancelled"
        finally:
            await close_run_toolsets(run_toolsets)
        result = self.result(reason, output, error, paused)
        logger.debug("run finished: %s after %d steps", reason, len(state.steps))
        if conversation is not None:
            await asyncio.shield(conversation.arecord(task, result))
        yield RunFinishedEvent(result=result)

    async def _begin(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        resumed: _approval_flow.Resumed | None,
        *,
        text: bool = False,
    ) -> None:
        agent = self.agent
        started = time.perf_counter()
        if resumed is not None:
            state = restored_state(agent, resumed.checkpoint, cancel_token, started)
        else:
            if conversation is not None:
                history = [*(await conversation.ahistory(agent.model, task)), *history]
            state = fresh_state(agent, task, history, cancel_token, started)
        if text and isinstance(agent.model, StreamingModel):
            state.text = asyncio.Queue()
        if agent._tracing is not None:
            state.trace = agent._tracing.start_run(
                agent_name=agent.name,
                model_name=agent.model.name,
                task=task,
                system_prompt=agent._system_prompt,
                resumed_from=resumed.checkpoint.trace if resumed is not None else None,
            )
        self.state = state

    def result(
        self,
        reason: StopReason,
        output: Any,
        error: str | None,
        paused: _approval_flow.Paused | None,
    ) -> RunResult[OutputT]:
        """The run's `RunResult` as it stands (and the end of its trace)."""
        state = self.state
        result: RunResult[OutputT] = RunResult(
            output=output,
            stop_reason=reason,
            steps=tuple(state.steps),
            usage=state.usage,
            duration=time.perf_counter() - state.started,
            generation_paths=tuple(state.paths),
            error=error if reason != "final_answer" else None,
            task=state.task,
            agent_name=self.agent.name,
            tools_offered=self.agent.step_format.tool_names,
            pending=paused.requests if paused is not None else (),
            checkpoint=paused.checkpoint if paused is not None else None,
        )
        if state.trace is not None:
            state.trace.finish(result)
        return result

    async def _one_step(
        self, index: int, resumed: _approval_flow.Resumed | None
    ) -> AsyncIterator[AgentEvent]:
        """One step: ask the model (or take the paused step), get approvals, run the calls."""
        agent, state, tools = self.agent, self.state, self.tools
        if state.trace is not None:
            state.trace.step_started(index)
        if resumed is not None:
            accepted, decided = self._accepted_from(resumed), dict(resumed.decisions)
        else:
            yield StepStartedEvent(step=index)
            async for event in self._streamed_step(index):
                yield event
            assert state.accepted is not None
            accepted, decided = state.accepted, {}
        requests = (
            _approval_flow.requests_for(index, accepted, tools, decided, agent.require_approval)
            if agent._may_need_approval
            else []
        )
        try:
            if requests:
                async for event in _approval_flow.decide(
                    requests,
                    tools,
                    decided,
                    self.approver,
                    agent.approval_timeout,
                    self.guarded,
                ):
                    yield event
        except _approval_flow.Paused as pause:
            pause.checkpoint = self._checkpoint(pause, accepted, index)
            state.steps.append(accepted.to_step(index))  # its calls, no results yet
            raise
        if decided:
            accepted = replace(accepted, calls=_approval_flow.edited(accepted.calls, decided))
        async for event in self._act(index, accepted, decided):
            yield event
        if state.trace is not None:
            state.trace.step_finished(state.steps[-1])

    async def _streamed_step(self, index: int) -> AsyncIterator[AgentEvent]:
        """`step`'s events, after the model's text as it streams (when asked).

        The accepted step is left in `state.accepted`.
        """
        state = self.state
        state.step_index, state.attempt = index, 0
        if state.text is None:
            accepted, events = await self.step(index)
        else:
            work = asyncio.ensure_future(self.step(index))
            async for text_event in _while_running(state.text, work):
                yield text_event
            accepted, events = work.result()
        state.accepted = accepted
        for event in events:
            yield event

    async def step(self, index: int) -> tuple[Accepted, list[AgentEvent]]:
        """Ask the model for one valid step, retrying invalid ones; returns it and its events.

        Raises:
            Stop: The step was still invalid after the retries, or `call_model` stopped.
        """
        agent, state, tools = self.agent, self.state, self.tools
        events: list[AgentEvent] = []
        messages = fit_to_context(
            state.messages,
            context_window=agent.model.capabilities.context_window,
            reserve_tokens=reserve_tokens(agent),
            first=state.first_shortenable,
        )
        usage = Usage()
        model_seconds = 0.0

        async def ask(history: list[Message], previous: ModelResponse | None) -> ModelResponse:
            nonlocal usage, model_seconds
            began = time.perf_counter()
            response = await self.call_model(history, self._output_after(previous))
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
                lambda response: agent.step_format.parse(response.text, tools),
                retries=agent.max_retries,
                on_invalid=on_invalid,
            )
        except RetriesExhausted as exc:
            why = (
                " (the model repeated an invalid reply word for word, so retrying cannot help)"
                if exc.repeated
                else ""
            )
            raise Stop(
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
        accepted = Accepted(
            parsed=parsed,
            calls=tuple(calls),
            response=validated.response,
            retries=validated.attempts - 1,
            usage=usage,
            model_seconds=model_seconds,
            agent_name=agent.name,
        )
        return accepted, events

    def _output_after(self, previous: ModelResponse | None) -> OutputSchema:
        """The step schema for the next attempt: narrower after a reply cut by the token limit.

        A reply cut short under constraint would be cut again at the same point; halving the
        string bounds excludes the over-long choice, so the retry can differ.
        """
        agent = self.agent
        if previous is None or previous.finish_reason != "length":
            return agent.step_format.output
        if agent._narrowed is None:
            agent._narrowed = agent.step_format.narrowed()
        return agent._narrowed.output

    async def _act(
        self,
        index: int,
        accepted: Accepted,
        decided: Mapping[str, _approval_flow.Resolved] | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run the step's tool calls concurrently and record the step with what they return."""
        agent, state, tools = self.agent, self.state, self.tools
        parsed = accepted.parsed
        echo = Message(role="assistant", content=agent.step_format.echo(parsed))
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
        scope = ToolScope.for_step(state, agent.token_budget, index, accepted.calls, tools)
        try:
            runs = [
                self.call_tool(
                    item, tools[item.tool_name], call.values, (decided or {}).get(item.id)
                )
                for item, call in zip(accepted.calls, parsed.calls, strict=True)
            ]
            if scope is None:
                observations = await self.guarded(asyncio.gather(*runs))
            else:
                tracked = asyncio.gather(*scope.track_all(accepted.calls, runs))
                async for event in scope.relay(self.guarded(tracked)):
                    yield event  # a sub-agent's events, as they happen
                observations = scope.observations
        except (Stop, asyncio.CancelledError):
            state.steps.append(accepted.to_step(index))  # interrupted: its calls, no results
            raise
        tool_seconds = time.perf_counter() - began
        for observation in observations:
            yield ToolResultEvent(step=index, observation=observation)
        state.steps.append(
            accepted.to_step(index, observations=tuple(observations), tool_seconds=tool_seconds)
        )
        self._track_repeats(list(accepted.calls), observations)
        state.messages.append(echo)
        state.messages.append(
            Message(
                role="user",
                content=observation_message(observations, repeated=state.repeats > 1),
            )
        )

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
        content = render_observation(value, self.agent.max_observation_chars)
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
            content=truncate(text, self.agent.max_observation_chars),
            is_error=True,
            error_type=type(exc).__name__,
            duration=time.perf_counter() - began,
        )

    def _track_repeats(self, calls: list[ToolCall], observations: Sequence[Observation]) -> None:
        state = self.state
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

    def _check_limits(self) -> None:
        agent, state = self.agent, self.state
        if state.repeats >= agent.max_repeated_calls:
            call = state.steps[-1].calls[0]
            raise Stop(
                "repeated_call",
                f"the model called {call.tool_name} with the same arguments "
                f"{state.repeats} times in a row without progress",
            )
        if agent.token_budget is not None and state.usage.total_tokens >= agent.token_budget:
            raise Stop(
                "token_budget",
                f"used {state.usage.total_tokens} tokens of the budget of {agent.token_budget}",
            )

    async def guarded(self, awaitable: Coroutine[Any, Any, Any] | Any) -> Any:
        """Await `awaitable`, cancelling it when the time budget ends or the token is set."""
        state = self.state
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
            raise Stop("cancelled", "the run was cancelled with its cancel token")
        raise Stop("time_budget", f"the time budget of {self.agent.time_budget} s ran out")

    # -- pausing for approval and resuming (the state in `agentlib._checkpoint`) -----------

    def _checkpoint(
        self, pause: _approval_flow.Paused, accepted: Accepted, index: int
    ) -> dict[str, Any]:
        state = self.state
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

    def _accepted_from(self, resumed: _approval_flow.Resumed) -> Accepted:
        """The paused step, its raw output parsed again against this run's tools."""
        saved = resumed.checkpoint.step
        try:
            parsed = self.agent.step_format.parse(saved.raw_output, self.tools)
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
        return Accepted(
            parsed=parsed,
            calls=saved.calls,
            response=ModelResponse(text=saved.raw_output, path=saved.generation_path),  # type: ignore[arg-type]
            retries=saved.retries,
            usage=saved.usage,
            model_seconds=saved.model_seconds,
            agent_name=self.agent.name,
        )


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

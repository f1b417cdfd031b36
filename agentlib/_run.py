"""One run of an agent: its state, the loop, and the two seams every call goes through.

`Run` holds the agent (its configuration, read-only here) and one run's `RunState`: the
messages, steps, usage and budgets spent. `Run.events` is the loop: each step renders the
prompt, asks the model for one step (retrying invalid ones with the exact error), gets
approvals, runs the tool calls concurrently and records the observations, until the run ends.

Every model call goes through `Run.call_model` and every tool call through `Run.call_tool`:
these are the seams a durable engine wraps (a DBOS step each), and what tracing, the time
budget and cancellation already wrap. Nothing else reaches the model or a tool.

`agent.py` keeps `Agent`'s configuration and public methods; it builds a `Run` per run.
Asking the model for one valid step is in `_run_step.py`, acting on the step's calls (and
the run's own toolsets) in `_run_tools.py`; the state and its checkpoints are in
`_run_state.py` and `_run_checkpoints.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, cast

from typing_extensions import TypeVar

from agentlib import _approval_flow, _tracing
from agentlib._cancel import CancelToken, retrieve_outcome
from agentlib._run_checkpoints import CheckpointWriter, open_step, snapshot
from agentlib._run_state import Accepted, RunState, Stop, ended, fresh_state, restored_state
from agentlib._run_step import ask_for_step
from agentlib._run_tools import act, close_run_toolsets, run_tool, tools_for_run
from agentlib.approval import Approver
from agentlib.errors import ConfigurationError, ModelError, ModelOutputError
from agentlib.models.base import (
    Message,
    ModelResponse,
    OutputSchema,
    Sampling,
    SamplingModel,
    StreamingModel,
)
from agentlib.steps import (
    AgentEvent,
    ErrorEvent,
    Observation,
    RunFinishedEvent,
    RunResult,
    StepStartedEvent,
    StopReason,
    TextEvent,
    ToolCall,
)
from agentlib.tool import Tool

if TYPE_CHECKING:
    from agentlib.agent import Agent, ConversationLike

__all__ = ["Accepted", "Run", "RunState", "Stop"]

logger = logging.getLogger("agentlib.agent")  # the loop's records keep the logger they had

OutputT = TypeVar("OutputT", default=str)


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
        self.writer: CheckpointWriter | None = None
        """Writes the run's checkpoints to the agent's store (`None`: no store)."""

    # -- the two seams: every model call and every tool call ------------------------------

    async def call_model(
        self,
        messages: list[Message],
        output: OutputSchema,
        sampling: Sampling | None = None,
        *,
        max_tokens: int | None = None,
        stream: bool = True,
    ) -> ModelResponse:
        """Ask the model for one reply under `output`, within the run's budgets.

        `sampling` is passed on only to a model that takes it (`supports_sampling`).
        `max_tokens` lowers the step's token limit for this request (tool-first's choice);
        `stream=False` keeps its text out of the run's text events.

        Raises:
            Stop: The backend failed (`model_error`), the time budget ran out or the run was
                cancelled.
        """
        agent, state = self.agent, self.state
        model, limit = agent.model, agent.max_tokens_per_step
        if max_tokens is not None:
            limit = max_tokens if limit is None else min(limit, max_tokens)
        if stream and state.text is not None and isinstance(model, StreamingModel):
            loop, queue = asyncio.get_running_loop(), state.text
            step, attempt = state.step_index, state.attempt

            def on_text(delta: str) -> None:  # called from the model's worker thread, too
                event = TextEvent(step=step, delta=delta, attempt=attempt)
                loop.call_soon_threadsafe(queue.put_nowait, event)

            if sampling is not None:
                call = cast(SamplingModel, model).agenerate_streaming(
                    messages, on_text=on_text, output=output, max_tokens=limit, sampling=sampling
                )
            else:
                call = model.agenerate_streaming(
                    messages, on_text=on_text, output=output, max_tokens=limit
                )
        elif sampling is not None:
            call = cast(SamplingModel, model).agenerate(
                messages, output=output, max_tokens=limit, sampling=sampling
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
                observation = await run_tool(
                    call, item, values, decision, self.agent.max_observation_chars
                )
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
        run_id: str | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """The run's events, step by step; the last is a `RunFinishedEvent`.

        Raises:
            ConfigurationError: The task is empty or does not fit the context, or `run_id`
                is taken in the checkpoint store, before any event.
            StoreError: The checkpoint store failed.
        """
        await self._begin(task, conversation, history, cancel_token, resumed, text, run_id)
        run_toolsets, self.tools = tools_for_run(self.agent)
        agent, state = self.agent, self.state
        task, cancel_token = state.task, state.cancel_token
        reason: StopReason = "max_steps"
        error: str | None = None
        output: Any = None
        paused: _approval_flow.Paused | None = None
        first, in_step = _first_step(state, resumed)
        try:
            for index in range(first, agent.max_steps + 1):
                if cancel_token is not None and cancel_token.cancelled:
                    raise Stop("cancelled")
                step_resumed = in_step if index == first else None
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
        yield RunFinishedEvent(
            result=await self._finish(reason, output, error, paused, conversation)
        )

    async def _finish(
        self,
        reason: StopReason,
        output: Any,
        error: str | None,
        paused: _approval_flow.Paused | None,
        conversation: ConversationLike | None,
    ) -> RunResult[OutputT]:
        """The run's result, once its last checkpoint and its conversation turn are saved."""
        if paused is None and self.writer is not None:
            await asyncio.shield(self.writer.save("finished", stop_reason=reason, error=error))
        result = self.result(reason, output, error, paused)
        logger.debug("run finished: %s after %d steps", reason, len(self.state.steps))
        if conversation is not None:
            await asyncio.shield(conversation.arecord(self.state.task, result))
        return result

    async def _begin(
        self,
        task: str,
        conversation: ConversationLike | None,
        history: Sequence[Message],
        cancel_token: CancelToken | None,
        resumed: _approval_flow.Resumed | None,
        text: bool,
        run_id: str | None,
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
        if resumed is None:
            state.run_id = run_id or uuid.uuid4().hex
        if agent.checkpoints is not None:
            self.writer = CheckpointWriter(agent, state, agent.checkpoints)
            if resumed is None:
                await self.writer.claim(check_unused=run_id is not None)

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
            run_id=state.run_id,
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
            pause.checkpoint = snapshot(
                agent,
                state,
                "paused",
                step=open_step(accepted, index),
                pending=pause.requests,
                decided=pause.decided,
            )
            state.steps.append(accepted.to_step(index))  # its calls, no results yet
            if self.writer is not None:
                await self.writer.write(pause.checkpoint)
            raise
        if decided:
            accepted = replace(accepted, calls=_approval_flow.edited(accepted.calls, decided))
        # A step that was running when its process died (not one paused before its calls ran).
        running = (
            resumed.checkpoint.step
            if resumed is not None and resumed.checkpoint.status == "running"
            else None
        )
        async for event in act(self, index, accepted, decided, running):
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
        return await ask_for_step(self, index)

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

    def _accepted_from(self, resumed: _approval_flow.Resumed) -> Accepted:
        """The open step, its raw output parsed again against this run's tools."""
        saved = resumed.checkpoint.step
        assert saved is not None  # only a checkpoint with an open step resumes in it
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


def _first_step(
    state: RunState, resumed: _approval_flow.Resumed | None
) -> tuple[int, _approval_flow.Resumed | None]:
    """The index the loop starts at, and `resumed` if the run resumes inside that step."""
    if resumed is None:
        return 1, None
    step = resumed.checkpoint.step
    if step is None:  # checkpointed between two steps
        return len(state.steps) + 1, None
    return step.index, resumed


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

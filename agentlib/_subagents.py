"""Agents that use agents: sub-agents as tools (`Agent.as_tool`) and handoffs between agents.

A sub-agent tool runs the child agent (`Agent.stream`) for each call. What the child shares
with the parent run that called it, through `ToolScope` (one per step of the parent):

- cancellation: the child holds the parent's `CancelToken`, and the parent's own cancellation
  (its time budget, its task) cancels the tool call, hence the child's task;
- tokens: the child's usage is added to the parent's `RunResult.usage` and counts against the
  parent's `token_budget`; the child's own budget is the smallest of its agent's
  `token_budget`, the `as_tool` cap and what the parent has left;
- time: the child's budget is the smallest of its agent's `time_budget`, the `as_tool` cap and
  the parent's remaining time;
- steps: the child's steps are its own (`max_steps` of the `as_tool` call, else its agent's);
  the parent's `max_steps` counts the parent's steps only (one call is one parent step).

The child's events reach the parent's stream wrapped in `SubagentEvent`s as they happen; its
whole `RunResult` is on the parent's `Observation.run`. A child that stops without a final
answer is a `ToolError` observation naming its stop reason.

Handoffs (`run_events`): an agent's step may take a `transfer_to_<agent>` branch (built by the
step format); the target agent then continues with the task and the transcript so far, until
an agent answers, stops, or the first agent's `max_handoffs` is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import json
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

import pydantic

from agentlib._cancel import CancelToken, retrieve_outcome
from agentlib._prompting import observation_message
from agentlib._tool_names import NAME_PATTERN
from agentlib.errors import ConfigurationError, ToolError
from agentlib.models.base import Message
from agentlib.steps import (
    AgentEvent,
    Handoff,
    HandoffEvent,
    Observation,
    RunFinishedEvent,
    RunResult,
    Step,
    SubagentEvent,
    ToolCall,
    Usage,
)
from agentlib.tool import Tool

if TYPE_CHECKING:
    from agentlib.agent import Agent, ConversationLike
    from agentlib.approval import Approver

__all__ = ["ToolScope", "agent_tool", "check_agent_name", "handoff_branches", "run_events"]


class _ParentState(Protocol):
    """What a `ToolScope` reads and updates on the parent's run state."""

    deadline: float | None
    cancel_token: CancelToken | None
    usage: Usage


@dataclass(slots=True)
class _CallSlot:
    """One tool call of the parent: where a sub-agent finds its parent and leaves its run."""

    scope: ToolScope
    call_id: str
    run: RunResult[Any] | None = None


_AGENT_FUNCTIONS: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
"""The functions of the sub-agent tools (`agent_tool`), to find the steps that run one."""

_CALL: contextvars.ContextVar[_CallSlot | None] = contextvars.ContextVar(
    "agentlib_subagent_call", default=None
)


class ToolScope:
    """The parent's side of one step's tool calls: budgets, cancellation, children's events.

    Args:
        state: The parent's run state (its deadline, cancel token and usage).
        token_budget: The parent's token budget (`None`: none).
        step: The parent's step index, for the wrapped events.
    """

    def __init__(self, state: _ParentState, token_budget: int | None, step: int) -> None:
        self.state = state
        self.token_budget = token_budget
        self.step = step
        self.observations: list[Observation] = []
        """The calls' observations, once `relay` has finished."""
        self._events: asyncio.Queue[AgentEvent] = asyncio.Queue()

    @classmethod
    def for_step(
        cls,
        state: _ParentState,
        token_budget: int | None,
        step: int,
        calls: Sequence[ToolCall],
        tools: Mapping[str, Tool],
    ) -> ToolScope | None:
        """A scope for a step's calls, or `None` when none of them runs a sub-agent.

        Relaying costs a task and a queue per step (about 70 µs, `benchmarks/loop_overhead.py`);
        steps without sub-agents skip it.
        """
        if not any(tools[call.tool_name].function in _AGENT_FUNCTIONS for call in calls):
            return None
        return cls(state, token_budget, step)

    def track_all(
        self, calls: Sequence[ToolCall], runs: Sequence[Awaitable[Observation]]
    ) -> list[Awaitable[Observation]]:
        """`track` each call's run."""
        return [self.track(call, run) for call, run in zip(calls, runs, strict=True)]

    async def track(self, call: ToolCall, work: Awaitable[Observation]) -> Observation:
        """Run one call's `work` (in its own task), attaching a sub-agent's run to the result."""
        slot = _CallSlot(self, call.id)
        _CALL.set(slot)  # the call runs in its own task: the value stays in that task
        observation = await work
        return observation if slot.run is None else replace(observation, run=slot.run)

    async def relay(self, calls: Awaitable[list[Observation]]) -> AsyncIterator[AgentEvent]:
        """Run `calls`, yielding the children's events as they come.

        Then `observations` holds the results; an exception of `calls` is raised here, and
        leaving early cancels them.
        """
        work = asyncio.ensure_future(calls)
        getter: asyncio.Future[AgentEvent] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(self._events.get())
                done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    break
                yield getter.result()
            while not self._events.empty():
                yield self._events.get_nowait()
            self.observations = work.result()
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
            if not work.done():
                work.add_done_callback(retrieve_outcome)
                work.cancel()

    def emit(self, call_id: str, agent_name: str, event: AgentEvent) -> None:
        """Queue a child's event for the parent's stream."""
        self._events.put_nowait(
            SubagentEvent(step=self.step, call_id=call_id, agent_name=agent_name, event=event)
        )

    def add_usage(self, usage: Usage) -> None:
        """Count a child's tokens in the parent's usage (and so against its token budget)."""
        self.state.usage = self.state.usage + usage

    def remaining_time(self) -> float | None:
        """Seconds left of the parent's time budget (`None`: no budget)."""
        if self.state.deadline is None:
            return None
        return max(0.0, self.state.deadline - time.perf_counter())

    def remaining_tokens(self) -> int | None:
        """Tokens left of the parent's token budget (`None`: no budget)."""
        if self.token_budget is None:
            return None
        return max(0, self.token_budget - self.state.usage.total_tokens)


def check_agent_name(name: str) -> str:
    """Check an agent's name (it names its tool and its handoff branch).

    Raises:
        ConfigurationError: The name is not a valid tool name.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > 52:
        raise ConfigurationError(
            f"agent name {name!r} is not valid: use letters, digits, '_', '-' and '.' "
            "(1 to 52 characters, so that 'transfer_to_<name>' is a valid tool name)"
        )
    return name


def _closing(
    events: AsyncIterator[AgentEvent],
) -> contextlib.aclosing[AsyncGenerator[AgentEvent, None]]:
    """Close a run's event stream when its consumer stops early (the run's tools close too)."""
    return contextlib.aclosing(cast("AsyncGenerator[AgentEvent, None]", events))


def _smallest(*values: float | None) -> Any:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _task_maker(
    input_type: Any, make_task: Callable[[Any], str] | None
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """The tool's argument schema and how its arguments become the child's task."""
    if input_type is str:
        schema = {
            "type": "object",
            "properties": {
                "task": {"type": "string", "description": "The task, in full sentences."}
            },
            "required": ["task"],
        }

        def from_text(arguments: dict[str, Any]) -> str:
            text: str = arguments["task"]
            return make_task(text) if make_task is not None else text

        return schema, from_text
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(input_type)
        schema = adapter.json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
        raise ConfigurationError(
            f"as_tool: input_type {input_type!r} has no JSON schema ({exc}); pass str, a "
            "pydantic model or a dataclass"
        ) from exc
    if schema.get("type") != "object":
        raise ConfigurationError(
            f"as_tool: input_type must be str or an object type (a pydantic model, a "
            f"dataclass, a TypedDict), got {input_type!r}"
        )

    def from_value(arguments: dict[str, Any]) -> str:
        value = adapter.validate_python(arguments)
        if make_task is not None:
            return make_task(value)
        return json.dumps(adapter.dump_python(value, mode="json"), ensure_ascii=False)

    return schema, from_value


def agent_tool(
    agent: Agent[Any],
    name: str | None,
    description: str | None,
    *,
    input_type: Any,
    max_steps: int | None,
    time_budget: float | None,
    token_budget: int | None,
    make_task: Callable[[Any], str] | None,
) -> Tool:
    """The tool that runs `agent` as a sub-agent (see `Agent.as_tool`)."""
    tool_name = name or agent.name
    if max_steps is not None and max_steps < 1:
        raise ConfigurationError(f"as_tool: max_steps must be at least 1, got {max_steps}")
    schema, to_task = _task_maker(input_type, make_task)
    summary = description or agent.description or f"Ask the agent '{tool_name}' to do a task."

    async def run_agent(**arguments: Any) -> Any:
        slot = _CALL.get()
        scope = slot.scope if slot is not None else None
        child = copy.copy(agent)  # per call: the caps must not leak into the shared agent
        child.max_steps = max_steps or agent.max_steps
        child.time_budget = _smallest(
            agent.time_budget, time_budget, scope.remaining_time() if scope else None
        )
        child.token_budget = _smallest(
            agent.token_budget, token_budget, scope.remaining_tokens() if scope else None
        )
        cancel_token = scope.state.cancel_token if scope is not None else None
        result: RunResult[Any] | None = None
        try:
            events = child.stream(to_task(arguments), cancel_token=cancel_token)
            async with _closing(events):
                async for event in events:
                    if isinstance(event, RunFinishedEvent):
                        result = event.result
                    if slot is not None:
                        slot.scope.emit(slot.call_id, tool_name, event)
        finally:
            if slot is not None and result is not None:
                slot.run = result
                slot.scope.add_usage(result.usage)
        assert result is not None  # every stream ends with RunFinishedEvent
        if not result.ok:
            raise ToolError(
                f"agent '{tool_name}' stopped without an answer ({result.stop_reason}): "
                f"{result.error}",
                tool_name=tool_name,
            )
        return result.output

    _AGENT_FUNCTIONS.add(run_agent)
    return Tool.from_schema(tool_name, summary, schema, run_agent)


# -- handoffs ---------------------------------------------------------------------------------


def handoff_branches(targets: Sequence[Agent[Any]]) -> dict[str, tuple[str, Agent[Any]]]:
    """`{branch name: (description, target)}` for an agent's handoffs."""
    branches: dict[str, tuple[str, Agent[Any]]] = {}
    for target in targets:
        about = f": {target.description}" if target.description else ""
        description = f"Hand the whole conversation to the agent '{target.name}'{about}"
        branches[f"transfer_to_{target.name}"] = (description, target)
    return branches


class _StepRecorder:
    """Lets each agent of a handoff chain save its steps; the whole run is recorded once."""

    def __init__(self, conversation: ConversationLike, task: str) -> None:
        self._conversation = conversation
        self._task = task
        self.offset = 0
        """The steps of the agents before this one (their numbering continues)."""

    async def ahistory(self, model: Any, task: str) -> list[Message]:
        return []  # the chain's runner put the conversation's history in already

    async def arecord_step(self, task: str, step: Step) -> None:
        shifted = replace(step, index=step.index + self.offset)
        await self._conversation.arecord_step(self._task, shifted)

    async def arecord(self, task: str, result: RunResult[Any]) -> None:
        return None


def _transcript(task: str, steps: Sequence[Step]) -> list[Message]:
    """One agent's part of the run as messages, for the agent it hands over to."""
    messages = [Message(role="user", content=task)]
    for step in steps:
        messages.append(Message(role="assistant", content=step.raw_output))
        if step.observations:
            messages.append(Message(role="user", content=observation_message(step.observations)))
    return messages


def _shifted(event: AgentEvent, offset: int) -> AgentEvent:
    if offset == 0 or isinstance(event, RunFinishedEvent):
        return event
    return replace(event, step=event.step + offset)


def run_events(
    agent: Agent[Any],
    task: str,
    conversation: ConversationLike | None,
    history: Sequence[Message],
    cancel_token: CancelToken | None,
    approver: Approver | None = None,
    *,
    text: bool = False,
    run_id: str | None = None,
) -> AsyncIterator[AgentEvent]:
    """The events of a run (following its handoffs); the last is the whole run's result.

    With handoffs, `run_id` names the first agent's run; each agent's part is a run of its own.
    """
    if not agent.handoffs:
        return agent._events(
            task, conversation, history, cancel_token, approver=approver, text=text, run_id=run_id
        )
    return _handoff_events(agent, task, conversation, history, cancel_token, approver, text, run_id)


async def _handoff_events(
    agent: Agent[Any],
    task: str,
    conversation: ConversationLike | None,
    history: Sequence[Message],
    cancel_token: CancelToken | None,
    approver: Approver | None,
    text: bool,
    run_id: str | None = None,
) -> AsyncIterator[AgentEvent]:
    started = time.perf_counter()
    earlier = list(history)
    recorder = None
    if conversation is not None:
        earlier = [*(await conversation.ahistory(agent.model, task)), *earlier]
        recorder = _StepRecorder(conversation, task)
    current, current_task = agent, task
    steps: list[Step] = []
    handoffs: list[Handoff] = []
    usage = Usage()
    paths: list[str] = []
    while True:
        offset = len(steps)
        if recorder is not None:
            recorder.offset = offset
        result: RunResult[Any] | None = None
        events = current._events(
            current_task,
            recorder,
            earlier,
            cancel_token,
            approver=approver,
            text=text,
            run_id=run_id if current is agent else None,
        )
        async with _closing(events):  # a consumer's `break` ends the agent's run
            async for event in events:
                if isinstance(event, RunFinishedEvent):
                    result = event.result
                else:
                    yield _shifted(event, offset)
        assert result is not None  # every stream ends with RunFinishedEvent
        steps.extend(replace(step, index=step.index + offset) for step in result.steps)
        usage = usage + result.usage
        paths.extend(path for path in result.generation_paths if path not in paths)
        target = None
        if result.stop_reason == "handoff" and result.steps:
            target = current._handoff_branches[str(result.steps[-1].handoff)][1]
        if target is None:
            break
        if len(handoffs) >= agent.max_handoffs:
            result = replace(
                result,
                error=f"{current.name} handed over to {target.name}, but the run already made "
                f"max_handoffs={agent.max_handoffs} handoff(s)",
            )
            break
        handoffs.append(Handoff(step=len(steps), from_agent=current.name, to_agent=target.name))
        yield HandoffEvent(step=len(steps), from_agent=current.name, to_agent=target.name)
        earlier = [*earlier, *_transcript(current_task, result.steps)]
        current_task = (
            f"The agent '{current.name}' handed this conversation to you. The task: {task}"
        )
        current = target
    whole: RunResult[Any] = replace(
        result,
        steps=tuple(steps),
        usage=usage,
        duration=time.perf_counter() - started,
        generation_paths=tuple(paths),
        task=task,
        agent_name=current.name,
        handoffs=tuple(handoffs),
    )
    if conversation is not None:
        await asyncio.shield(conversation.arecord(task, whole))
    yield RunFinishedEvent(result=whole)

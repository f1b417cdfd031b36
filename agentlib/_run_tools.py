"""A run's tools: its own toolset instances, and running a step's calls.

`act` runs one accepted step's tool calls concurrently (each through `Run.call_tool`, the
seam a durable engine wraps), checkpointing them when the agent has a store, and records the
step with their observations; `run_tool` is what `Run.call_tool` does inside its span. A
tool's failure becomes an error observation here, the one place a broad `Exception` is
caught. When a run's toolsets are made and closed is `Run.events`' decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentlib import _approval_flow, _checkpoint
from agentlib._prompting import observation_message
from agentlib._run_checkpoints import interrupted, open_step
from agentlib._run_state import Accepted, RunState, Stop
from agentlib._subagents import ToolScope
from agentlib.errors import ToolError
from agentlib.models.base import Message
from agentlib.steps import (
    AgentEvent,
    FinalAnswerEvent,
    Observation,
    ToolCall,
    ToolCallEvent,
    ToolResultEvent,
)
from agentlib.tool import Tool, Toolset, collect_tools, render_observation, truncate

if TYPE_CHECKING:
    from agentlib._run import Run
    from agentlib.agent import Agent

__all__ = ["act", "close_run_toolsets", "run_tool", "tools_for_run"]

logger = logging.getLogger("agentlib.agent")  # the loop's records keep the logger they had


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


async def act(
    run: Run[Any],
    index: int,
    accepted: Accepted,
    decided: Mapping[str, _approval_flow.Resolved] | None = None,
    resumed: _checkpoint.OpenStep | None = None,
) -> AsyncIterator[AgentEvent]:
    """Run the step's tool calls concurrently and record the step with what they return.

    `resumed`: the step as checkpointed before the process died; its calls with an
    observation are not run again.
    """
    agent, state, tools = run.agent, run.state, run.tools
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
        runs = await _calls(run, index, accepted, decided or {}, resumed)
        if scope is None:
            observations = await run.guarded(asyncio.gather(*runs))
        else:
            tracked = asyncio.gather(*scope.track_all(accepted.calls, runs))
            async for event in scope.relay(run.guarded(tracked)):
                yield event  # a sub-agent's events, as they happen
            observations = scope.observations
    except (Stop, asyncio.CancelledError):
        state.steps.append(accepted.to_step(index))  # interrupted: its calls, no results
        raise
    tool_seconds = time.perf_counter() - began
    state.steps.append(
        accepted.to_step(index, observations=tuple(observations), tool_seconds=tool_seconds)
    )
    _track_repeats(state, list(accepted.calls), observations)
    state.messages.append(echo)
    state.messages.append(
        Message(
            role="user",
            content=observation_message(observations, repeated=state.repeats > 1),
        )
    )
    if run.writer is not None:
        await run.writer.save("running")  # before anyone sees the results
    for observation in observations:
        yield ToolResultEvent(step=index, observation=observation)


async def _calls(
    run: Run[Any],
    index: int,
    accepted: Accepted,
    decided: Mapping[str, _approval_flow.Resolved],
    resumed: _checkpoint.OpenStep | None,
) -> list[Awaitable[Observation]]:
    """The step's calls, ready to run; checkpointed first when the agent has a store."""
    tools = run.tools
    pairs = zip(accepted.calls, accepted.parsed.calls, strict=True)
    if run.writer is None and resumed is None:
        return [
            run.call_tool(item, tools[item.tool_name], call.values, decided.get(item.id))
            for item, call in pairs
        ]
    done = {o.call_id: o for o in resumed.observations} if resumed is not None else {}
    if resumed is None and run.writer is not None:
        # The calls are in flight from here: a crash now makes them `interrupted`.
        await run.writer.save("running", step=open_step(accepted, index), decided=decided)
    return [
        _checkpointed_call(run, index, accepted, decided, done, item, call.values, resumed)
        for item, call in pairs
    ]


async def _checkpointed_call(
    run: Run[Any],
    index: int,
    accepted: Accepted,
    decided: Mapping[str, _approval_flow.Resolved],
    done: dict[str, Observation],
    call: ToolCall,
    values: Mapping[str, Any],
    resumed: _checkpoint.OpenStep | None,
) -> Observation:
    """One call of a checkpointed run: never run twice once its observation is saved."""
    if call.id in done:
        return done[call.id]
    item = run.tools[call.tool_name]
    if resumed is not None and not item.idempotent:
        observation = interrupted(call)
    else:
        observation = await run.call_tool(call, item, values, decided.get(call.id))
    done[call.id] = observation
    if len(accepted.calls) > 1 and run.writer is not None:
        finished = tuple(done[c.id] for c in accepted.calls if c.id in done)
        await run.writer.save("running", step=open_step(accepted, index, finished), decided=decided)
    return observation


async def run_tool(
    call: ToolCall,
    item: Tool,
    values: Mapping[str, Any],
    decision: _approval_flow.Resolved | None,
    max_observation_chars: int,
) -> Observation:
    """Call `item` with `values` (or the approver's edit); its failure is an error observation."""
    began = time.perf_counter()
    if decision is not None and decision.values is not None:
        values = decision.values
    try:
        value = await item.acall_validated(values)
    except ToolError as exc:
        return _error_observation(call, exc, began, max_observation_chars, show_type=False)
    except Exception as exc:  # a tool's failure is an observation, never a crash
        return _error_observation(call, exc, began, max_observation_chars, show_type=True)
    content = render_observation(value, max_observation_chars)
    return Observation(
        call_id=call.id,
        tool_name=call.tool_name,
        content=decision.note(content) if decision is not None else content,
        duration=time.perf_counter() - began,
        value=value,
    )


def _error_observation(
    call: ToolCall, exc: Exception, began: float, max_observation_chars: int, *, show_type: bool
) -> Observation:
    text = f"{type(exc).__name__}: {exc}" if show_type else f"error: {exc}"
    logger.debug("tool %s failed: %s", call.tool_name, text)
    return Observation(
        call_id=call.id,
        tool_name=call.tool_name,
        content=truncate(text, max_observation_chars),
        is_error=True,
        error_type=type(exc).__name__,
        duration=time.perf_counter() - began,
    )


def _track_repeats(
    state: RunState, calls: list[ToolCall], observations: Sequence[Observation]
) -> None:
    signature = json.dumps(
        [[c.tool_name, c.arguments, o.content] for c, o in zip(calls, observations, strict=True)],
        sort_keys=True,
        default=str,
    )
    state.repeats = state.repeats + 1 if signature == state.last_signature else 1
    state.last_signature = signature

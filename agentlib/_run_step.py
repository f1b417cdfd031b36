"""Asking the model for one valid step: the request, and how each retry differs.

`ask_for_step` renders the run's messages into the context window and asks for a step
until one parses against the run's tools (`generate_until_valid`), each request through
`Run.call_model`. A retry differs from the failed attempt: a reply cut short gets the
narrowed format, refused string values are excluded from the constraint, and where the model
takes sampling it is sampled (the profile's retry temperature). `Run.step` is its face.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentlib._prompting import fit_to_context
from agentlib._retry import Failure, RetriesExhausted, generate_until_valid
from agentlib._run_state import Accepted, Stop, reserve_tokens
from agentlib._tool_first import agenerate_tool_first
from agentlib.models.base import Message, ModelResponse, OutputSchema, Sampling
from agentlib.step_format import Rejection, StepFormat, rejected_values
from agentlib.steps import AgentEvent, ErrorEvent, ThoughtEvent, ToolCall, Usage

if TYPE_CHECKING:
    from agentlib._run import Run
    from agentlib.agent import Agent

__all__ = ["ask_for_step"]


async def ask_for_step(run: Run[Any], index: int) -> tuple[Accepted, list[AgentEvent]]:
    """Ask the model for one valid step, retrying invalid ones; returns it and its events.

    Raises:
        Stop: The step was still invalid after the retries, or `call_model` stopped.
    """
    agent, state, tools = run.agent, run.state, run.tools
    events: list[AgentEvent] = []
    messages = fit_to_context(
        state.messages,
        context_window=agent.model.capabilities.context_window,
        reserve_tokens=reserve_tokens(agent),
        first=state.first_shortenable,
    )
    usage = Usage()
    model_seconds = 0.0
    rejected: list[Rejection] = []

    async def ask(history: list[Message], failure: Failure | None) -> ModelResponse:
        nonlocal usage, model_seconds
        began = time.perf_counter()
        if failure is not None:
            rejected.extend(rejected_values(failure.error))
        response = await _ask_once(
            run, history, _format_after(agent, failure, rejected), _sampling_after(agent, failure)
        )
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
            ToolCall(id=f"call_{state.next_call_id}", tool_name=call.name, arguments=call.arguments)
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


async def _ask_once(
    run: Run[Any], messages: list[Message], step_format: StepFormat, sampling: Sampling | None
) -> ModelResponse:
    """One attempt at a step under `step_format`: one request, or tool-first's two.

    Tool-first's requests go through `call_model` too, with the attempt's narrowed
    format and sampling, so its retry differs as a joint step's does.
    """
    if step_format.options.decoding != "tool_first":
        return await run.call_model(messages, step_format.output, sampling)

    async def request(
        history: list[Message], output: OutputSchema, max_tokens: int | None, stream: bool
    ) -> ModelResponse:
        return await run.call_model(history, output, sampling, max_tokens=max_tokens, stream=stream)

    return await agenerate_tool_first(
        request, step_format, messages, max_tokens=run.agent.max_tokens_per_step
    )


def _format_after(
    agent: Agent[Any], failure: Failure | None, rejected: Sequence[Rejection]
) -> StepFormat:
    """The step format for the next attempt, narrowed after an invalid one.

    A reply cut short under constraint would be cut again at the same point: halving the
    string bounds excludes the over-long choice. A string value validation refused
    (`rejected`, every one of this step's attempts so far) is excluded from the
    constraint, so a greedy retry cannot write it again (issue 25, item 3).
    """
    step_format = agent.step_format
    if failure is not None and failure.response.finish_reason == "length":
        if agent._narrowed is None:
            agent._narrowed = agent.step_format.narrowed()
        step_format = agent._narrowed
    return step_format.excluding(rejected) if rejected else step_format


def _sampling_after(agent: Agent[Any], failure: Failure | None) -> Sampling | None:
    """A retry is sampled (profile's temperature, the attempt as seed) where models allow."""
    temperature = agent.profile.retry_temperature
    if failure is None or temperature is None:
        return None
    if not agent.model.capabilities.supports_sampling:
        return None
    return Sampling(temperature=temperature, seed=failure.attempt)

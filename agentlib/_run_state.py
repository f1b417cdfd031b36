"""One run's state (`RunState`), its accepted step (`Accepted`), and how a run ends (`Stop`).

What the loop in `agentlib._run` works on, and what a checkpoint (`agentlib._run_checkpoints`)
records: `fresh_state` starts a run, `restored_state` reads one back from its checkpoint.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentlib import _checkpoint, _tracing
from agentlib._cancel import CancelToken
from agentlib._prompting import check_task
from agentlib.models.base import Message, ModelResponse
from agentlib.step_format import ParsedStep
from agentlib.steps import Step, StopReason, TextEvent, ToolCall, Usage

if TYPE_CHECKING:
    from agentlib.agent import Agent

__all__ = [
    "Accepted",
    "RunState",
    "Stop",
    "ended",
    "fresh_state",
    "reserve_tokens",
    "restored_state",
]


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
    run_id: str = ""
    """The run's id: its key in the agent's checkpoint store."""


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
        run_id=saved.run_id or uuid.uuid4().hex,
    )
